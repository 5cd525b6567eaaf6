// The liblustreapi test double (test/lustre-double): built on demand, and handed to the addon
// the way a user points it at a real library, through STRIPEMOVER_LIBLUSTREAPI.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const repo = fileURLToPath(new URL('../..', import.meta.url));
export const doubleLibrary = `${repo}build/test-double/liblustreapi.so.1`;

/** Builds the double (if stale) and makes this process load it; call before any Lustre call. */
export function useLustreDouble(mounts: string[], osts = 8): void {
  execFileSync('sh', [`${repo}test/lustre-double/build.sh`], { stdio: 'inherit' });
  process.env.STRIPEMOVER_LIBLUSTREAPI = doubleLibrary;
  setMounts(mounts, osts);
}

/** Which directories the double counts as Lustre mounts (read by it on every call). */
export function setMounts(mounts: string[], osts = 8): void {
  process.env.LLAPI_DOUBLE_MOUNTS = mounts.join(':');
  process.env.LLAPI_DOUBLE_OSTS = String(osts);
}

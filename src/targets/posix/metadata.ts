// Metadata of a copied object, applied after its data: owner (as root), mode, xattrs
// (POSIX ACLs are the system.posix_acl_* xattrs), then times, last because the others touch ctime only.
import { native } from '../../native.js';
import type { NativeStat } from '../../native.js';

const isRoot = process.getuid?.() === 0;
const S_IFLNK = 0o120000;

/** Names we do not copy: security labels are the target system's business. */
const skipXattr = (name: string) => name.startsWith('security.');

export function copyXattrs(src: Buffer, dst: Buffer): void {
  for (const name of native.listXattrs(src)) {
    if (skipXattr(name)) continue;
    let value: Buffer;
    try {
      value = native.getXattr(src, name);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENODATA') continue; // removed meanwhile
      throw err;
    }
    native.setXattr(dst, name, value);
  }
}

export function applyMetadata(src: Buffer, dst: Buffer, st: NativeStat): void {
  const isLink = (st.mode & 0o170000) === S_IFLNK;
  // chown before chmod: chown clears setuid/setgid bits.
  if (isRoot) native.lchown(dst, st.uid, st.gid);
  if (!isLink) native.chmod(dst, st.mode & 0o7777);
  copyXattrs(src, dst);
  native.setTimes(dst, st.atimeNs, st.mtimeNs);
}

// `stripemover layout PATH...` (what `lfs getstripe` shows), `path2fid PATH...` and
// `fid2path MOUNT FID...`, through liblustreapi loaded at run time.
import type { Command } from 'commander';
import { native } from '../native.js';
import { displayPath } from '../errors.js';
import { formatLayout } from '../layout/spec.js';
import { argBytes } from './raw-argv.js';
import { writeOut } from './output.js';
import { Exit } from './exit.js';

/** Runs each item, printing errors as they come; exit 1 if any failed. Refuses at once without liblustreapi. */
function eachPath(items: string[], work: (item: string) => void): void {
  const st = native.lustre.status();
  if (!st.loaded) {
    process.stderr.write(
      `stripemover: liblustreapi is not available (${st.error}); set STRIPEMOVER_LIBLUSTREAPI to its path\n`,
    );
    process.exitCode = Exit.failures;
    return;
  }
  let failed = 0;
  for (const item of items) {
    try {
      work(item);
    } catch (err) {
      failed++;
      process.stderr.write(`stripemover: ${(err as Error).message}\n`);
    }
  }
  if (failed) process.exitCode = Exit.failures;
}

export function lustreCommands(program: Command): void {
  program
    .command('layout')
    .description('print the Lustre layout of each path, as `lfs getstripe` does')
    .argument('<paths...>', 'files or directories on Lustre')
    .option('--json', 'one JSON line per path: {path, fid, layout}')
    .action((paths: string[], opts: { json?: boolean }) =>
      eachPath(paths, (p) => {
        const path = argBytes(p);
        const layout = native.lustre.layout(path);
        if (opts.json) {
          const fid = native.lustre.pathToFid(path);
          process.stdout.write(JSON.stringify({ path: displayPath(path), fid, layout }) + '\n');
        } else {
          process.stdout.write(formatLayout(displayPath(path), layout));
        }
      }),
    );
  program
    .command('path2fid')
    .description('print the FID of each path, as `lfs path2fid` does')
    .argument('<paths...>')
    .action((paths: string[]) =>
      eachPath(paths, (p) => writeOut(argBytes(p), `: ${native.lustre.pathToFid(argBytes(p))}\n`)),
    );
  program
    .command('fid2path')
    .description('print the path of each FID below the mount point, as `lfs fid2path` does')
    .argument('<mount>', 'the Lustre mount point')
    .argument('<fids...>', 'FIDs such as [0x200000400:0x1:0x0]')
    .action((mount: string, fids: string[]) =>
      eachPath(fids, (fid) => {
        const rel = native.lustre.fidToPath(argBytes(mount), fid);
        writeOut(Buffer.concat([argBytes(mount), Buffer.from('/'), rel]), '\n');
      }),
    );
}

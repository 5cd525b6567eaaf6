// `stripemover copy SRC DST`: progress on stderr (a bar on a TTY, a status line otherwise),
// per-file errors on stderr, a summary; or JSON lines with --json. Exit codes: see main.ts.
import type { Command } from 'commander';
import { copy } from '../engine/copy.js';
import type { CopySummary, Progress } from '../engine/copy.js';
import { argBytes } from './raw-argv.js';
import { Exit } from './exit.js';
import { parseSize } from '../filter/index.js';

/** 1536 -> "1.5 KiB". */
export function fmtBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let i = 0;
  for (; n >= 1024 && i < units.length - 1; i++) n /= 1024;
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

const statusLine = (p: Progress) =>
  `${p.files} files, ${fmtBytes(p.bytes)} at ${fmtBytes(p.bytesPerSecond)}/s, ${p.skipped} skipped, ${p.failed} failed, ${p.elapsedSeconds.toFixed(1)} s`;

export function copyCommand(program: Command): void {
  program
    .command('copy')
    .description('copy a tree: parallel, every byte hashed, metadata kept, resumable by rerunning')
    .argument('<src>', 'source directory')
    .argument('<dst>', 'destination directory (created if missing)')
    .option('--verify', 're-read every written file from the device and compare digests')
    .option('--no-hash', 'do not hash (measures the cost of hashing; incompatible with --verify)')
    .option('--threads <n>', 'worker threads', (v) => parseInt(v, 10))
    .option('--max-streams <n>', 'units running at once per device/OST', (v) => parseInt(v, 10))
    .option('--chunk-size <bytes>', 'large files are copied in chunks of this size', (v) => parseInt(v, 10))
    .option(
      '--fsync <policy>',
      "when data is made durable, always before a file gets its final name: 'batch' (one syncfs per batch, default), 'file' (fdatasync each), 'none'",
      'batch',
    )
    .option('--bwlimit <rate>', 'bytes per second over the whole run (suffixes K, M, G: 1024-based)', parseSize)
    .option('--one-file-system', 'do not cross into other file systems')
    .option('--json', 'JSON lines on stdout: status, error, summary')
    .action(async (src: string, dst: string, opts) => {
      const ac = new AbortController();
      let interrupts = 0;
      const onSignal = (sig: NodeJS.Signals) => {
        // First signal: stop cleanly (finished files stay, a rerun resumes). Second: abort now.
        if (++interrupts > 1) process.exit(Exit.interrupted);
        process.stderr.write(
          `\nstripemover: ${sig}: stopping after the files in flight; press Ctrl-C again to abort\n`,
        );
        ac.abort();
      };
      process.on('SIGINT', onSignal).on('SIGTERM', onSignal);
      const json = (o: object) =>
        process.stdout.write(JSON.stringify(o, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)) + '\n');
      const tty = process.stderr.isTTY && !opts.json;
      const handle = copy(argBytes(src), argBytes(dst), {
        verify: opts.verify,
        hash: opts.hash,
        threads: opts.threads,
        maxStreams: opts.maxStreams,
        chunkSize: opts.chunkSize,
        fsync: opts.fsync,
        bwlimit: opts.bwlimit,
        oneFileSystem: opts.oneFileSystem,
        signal: ac.signal,
      });
      let lastStatus = 0;
      handle.on('progress', (p: Progress) => {
        if (opts.json) return json({ type: 'status', ...p });
        if (tty) return process.stderr.write(`\r\x1b[K${statusLine(p)}`);
        if (Date.now() - lastStatus > 10_000) {
          lastStatus = Date.now();
          process.stderr.write(`${statusLine(p)}\n`);
        }
      });
      handle.on('error-record', (r) => {
        if (opts.json) json({ type: 'error', ...r });
        else process.stderr.write(`${tty ? '\r\x1b[K' : ''}stripemover: ${r.error.message}\n`);
      });
      const summary: CopySummary = await handle.done;
      process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
      if (opts.json) json({ type: 'summary', ...summary, failures: undefined });
      else {
        process.stderr.write(
          `${tty ? '\r\x1b[K' : ''}${summary.interrupted ? 'interrupted: ' : ''}${statusLine(summary)}; ${summary.dirs} dirs, ${summary.links} hard links, ${summary.specials} other, ${summary.verified} verified\n`,
        );
      }
      process.exitCode = summary.interrupted ? Exit.interrupted : summary.failed ? Exit.failures : Exit.ok;
    });
}

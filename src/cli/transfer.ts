// `stripemover copy` and `stripemover sync`: one definition, sync adding --delete and --link-dest.
// Progress goes to stderr (a live line on a TTY, a status line every 10 s otherwise), per-file
// errors to stderr, then a summary; --json writes JSON lines to stdout instead.
import { InvalidArgumentError, Option, type Command } from 'commander';
import type { Change, CopyFailure, CopySummary, Progress } from '../engine/copy.js';
import { filterOptions, int, size } from './options.js';
import { parseLayoutSpec } from '../layout/spec.js';
import type { LayoutPolicy } from '../engine/lustre.js';
import { argBytes } from './raw-argv.js';
import { Exit } from './exit.js';

/** 1536 -> "1.5 KiB". */
function fmtBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let i = 0;
  for (; n >= 1024 && i < units.length - 1; i++) n /= 1024;
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

const statusLine = (p: Progress) =>
  `${p.files} files, ${fmtBytes(p.bytes)} at ${fmtBytes(p.bytesPerSecond)}/s, ${p.skipped} skipped, ${p.failed} failed, ` +
  `${p.elapsedSeconds.toFixed(1)} s${p.etaSeconds !== undefined ? `, ETA ${p.etaSeconds.toFixed(0)} s` : ''}`;

/** "[#########-----------]  45% " once the scan has sized the job, "[scanning] " before. */
function progressBar(p: Progress): string {
  if (p.fraction === undefined) return '[scanning] ';
  const width = 20;
  const filled = Math.round(p.fraction * width);
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${(p.fraction * 100).toFixed(0).padStart(3)}% `;
}

/** One line per OST (or MDT) stream: what each moved, at what rate; nothing off Lustre. */
function perStream(s: CopySummary): string {
  const keys = Object.keys(s.streams).filter((k) => k.startsWith('ost:') || k === 'mdt');
  keys.sort((a, b) => (parseInt(a.slice(4)) || -1) - (parseInt(b.slice(4)) || -1));
  return keys
    .map((k) => {
      const bytes = s.streams[k]!;
      return `  ${k.padEnd(8)} ${fmtBytes(bytes).padStart(10)}  ${fmtBytes(bytes / Math.max(s.elapsedSeconds, 1e-3))}/s\n`;
    })
    .join('');
}

function layoutPolicy(value: string): LayoutPolicy {
  if (value === 'reset' || value === 'keep' || value === 'inherit') return value;
  try {
    return parseLayoutSpec(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

export function transferCommands(program: Command): void {
  define(program, 'copy', 'copy a tree: parallel, every byte hashed, metadata kept; rerun to resume', false);
  define(program, 'sync', 'make DST like SRC: copy what is new or changed, optionally delete the rest', true);
}

function define(program: Command, name: 'copy' | 'sync', description: string, isSync: boolean): void {
  const cmd = program
    .command(name)
    .description(description)
    .argument('<src>', 'source directory')
    .argument('<dst>', 'destination directory (created if missing)')
    .option('--verify', 're-read every written file from the device and compare digests')
    .option('--no-hash', 'do not hash (measures the cost of hashing; incompatible with --verify)')
    .option('-c, --checksum', 'compare same-size files by content (XXH64), not by mtime')
    .option('-n, --dry-run', 'list what would change; write nothing')
    .option('--one-file-system', 'do not cross into other file systems')
    .option(
      '--bwlimit <rate>',
      'bytes read per second over the whole run, previous copies compared with included (suffixes K, M, G: 1024-based)',
      size,
    )
    .option('--threads <n>', 'worker threads', int)
    .option('--max-streams <n>', 'units running at once per OST (default 2) or device (default: --threads)', int)
    .option('--chunk-size <bytes>', 'large files are copied in chunks of this size', size)
    .addOption(
      new Option(
        '--fsync <policy>',
        "when data is made durable, always before a file gets its final name: 'batch' (one syncfs per batch), 'file' (fdatasync each), 'none'",
      )
        .choices(['batch', 'file', 'none'])
        .default('batch'),
    )
    .option(
      '--layout <policy>',
      "layout of new files on a Lustre destination: 'reset' (the source's, OSTs chosen afresh), 'keep' (same OSTs), 'inherit' (the directory's default), or setstripe options such as '-E 64M -c 1 -E -1 -c 4'",
      layoutPolicy,
      'reset',
    )
    .option(
      '--no-stripe-aware',
      'ignore Lustre layouts when cutting files: contiguous chunks in file order (for comparisons)',
    )
    .option(
      '--no-reflink',
      'write every copy in full: no reflink clones of the source or, with --link-dest, of the previous copy (XFS, Btrfs, ZFS)',
    )
    .option('--json', 'JSON lines on stdout: status, change, error, summary');
  const filterOf = filterOptions(cmd);
  if (isSync) {
    cmd
      .option('--delete', 'remove from DST what SRC does not have (excluded entries are kept)')
      .option('--link-dest <dir>', 'hard-link files unchanged in this previous copy instead of copying them');
  }
  cmd.action(async (src: string, dst: string, opts) => {
    if (opts.verify && opts.hash === false)
      cmd.error('error: --verify needs hashing: drop --no-hash', { exitCode: Exit.usage });
    const filter = filterOf(opts);
    const ac = new AbortController();
    let interrupts = 0;
    const onSignal = (sig: NodeJS.Signals) => {
      // First signal: stop cleanly (finished files stay, a rerun resumes). Second: abort now.
      if (++interrupts > 1) process.exit(Exit.interrupted);
      process.stderr.write(`\nstripemover: ${sig}: stopping after the files in flight; press Ctrl-C again to abort\n`);
      ac.abort();
    };
    process.on('SIGINT', onSignal).on('SIGTERM', onSignal);
    const json = (o: object) =>
      process.stdout.write(JSON.stringify(o, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)) + '\n');
    const tty = process.stderr.isTTY && !opts.json;
    const clear = tty ? '\r\x1b[K' : '';
    // Loaded here: the engine and its worker pool are for copy and sync only.
    const { sync } = await import('../engine/copy.js');
    const handle = sync(argBytes(src), argBytes(dst), {
      verify: opts.verify,
      hash: opts.hash,
      checksum: opts.checksum,
      dryRun: opts.dryRun,
      filter,
      oneFileSystem: opts.oneFileSystem,
      bwlimit: opts.bwlimit,
      threads: opts.threads,
      maxStreams: opts.maxStreams,
      chunkSize: opts.chunkSize,
      fsync: opts.fsync,
      layout: opts.layout,
      stripeAware: opts.stripeAware,
      delete: opts.delete,
      linkDest: opts.linkDest === undefined ? undefined : argBytes(opts.linkDest),
      reflink: opts.reflink,
      signal: ac.signal,
    });
    let lastStatus = Date.now();
    handle.on('progress', (p: Progress) => {
      if (opts.json) return json({ type: 'status', ...p });
      if (tty) return process.stderr.write(`${clear}${progressBar(p)}${statusLine(p)}`);
      if (Date.now() - lastStatus >= 10_000) {
        lastStatus = Date.now();
        process.stderr.write(`${statusLine(p)}\n`);
      }
    });
    handle.on('change', (c: Change) => {
      if (opts.json) json({ type: 'change', ...c });
      else process.stdout.write(`${c.action} ${c.path}\n`);
    });
    handle.on('warning', (message: string) => {
      if (opts.json) json({ type: 'warning', message });
      else process.stderr.write(`${clear}stripemover: warning: ${message}\n`);
    });
    handle.on('error-record', (r: CopyFailure) => {
      if (opts.json) json({ type: 'error', ...r });
      else process.stderr.write(`${clear}stripemover: ${r.error.message}\n`);
    });
    const summary: CopySummary = await handle.done;
    process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
    if (opts.json) json({ type: 'summary', ...summary, failures: undefined });
    else {
      const extra = [
        `${summary.dirs} dirs`,
        `${summary.links} hard links`,
        `${summary.specials} other`,
        `${summary.verified} verified`,
        ...(summary.linked ? [`${summary.linked} linked from --link-dest`] : []),
        ...(opts.delete ? [`${summary.deleted} deleted`] : []),
      ].join(', ');
      const head = summary.interrupted ? 'interrupted (rerun to resume): ' : opts.dryRun ? 'dry run: ' : '';
      process.stderr.write(`${clear}${head}${statusLine(summary)}; ${extra}\n`);
      process.stderr.write(perStream(summary));
    }
    process.exitCode = summary.interrupted ? Exit.interrupted : summary.failed ? Exit.failures : Exit.ok;
  });
}

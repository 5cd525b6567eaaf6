// The repository commands: backup, snapshots, ls, restore, verify, prune, diff. The repository
// comes from --repo, else STRIPEMOVER_REPO, else the config file's `repository` (see config.ts).
import type { Command } from 'commander';
import type { BackupConfig } from '../repo/config.js';
import type { RetentionPolicy } from '../repo/retention.js';
import type { CopyFailure } from '../engine/copy.js';
import { filterOptions, int, count } from './options.js';
import { writeOut } from './output.js';
import { Exit } from './exit.js';
import { argBytes } from './raw-argv.js';

interface RepoOpts {
  repo?: string;
  config?: string;
  json?: boolean;
}

const json = (o: object) => process.stdout.write(JSON.stringify(o) + '\n');

/** The library, loaded when a repository command runs: `copy`, `--help` and the rest start without it. */
const repoLibrary = () => import('../index.js');

/** Runs a command body; a repository error (locked, not found, damaged) is one line and exit 1. */
async function guarded(body: () => Promise<number | void>): Promise<void> {
  try {
    process.exitCode = (await body()) ?? Exit.ok;
  } catch (err) {
    const e = err as Error & { code?: string };
    if (e instanceof RangeError || e.code === 'USAGE') {
      process.stderr.write(`stripemover: ${e.message}\n`);
      process.exitCode = Exit.usage;
      return;
    }
    process.stderr.write(`stripemover: ${e.code ? `${e.code}: ` : ''}${e.message}\n`);
    process.exitCode = Exit.failures;
  }
}

function repoOf(opts: RepoOpts, config: BackupConfig): string {
  const repo = opts.repo ?? process.env.STRIPEMOVER_REPO ?? config.repository;
  if (!repo)
    throw new RangeError('no repository: give --repo, set STRIPEMOVER_REPO, or set "repository" in the config file');
  return repo;
}

function withRepo(cmd: Command): Command {
  return cmd
    .option('-r, --repo <dir>', 'the repository (default: $STRIPEMOVER_REPO, then the config file)')
    .option('--config <file>', 'configuration file (default: $STRIPEMOVER_CONFIG)')
    .option('--json', 'JSON lines on stdout');
}

/** Ctrl-C / SIGTERM stop cleanly (a rerun resumes); a second one aborts. */
function interruptible(): { signal: AbortSignal; done: () => void } {
  const ac = new AbortController();
  let n = 0;
  const on = (sig: NodeJS.Signals) => {
    if (++n > 1) process.exit(Exit.interrupted);
    process.stderr.write(`\nstripemover: ${sig}: stopping; rerun to resume\n`);
    ac.abort();
  };
  process.on('SIGINT', on).on('SIGTERM', on);
  return { signal: ac.signal, done: () => process.off('SIGINT', on).off('SIGTERM', on) };
}

const printFailure = (opts: RepoOpts) => (f: CopyFailure) =>
  opts.json ? json({ type: 'error', ...f }) : process.stderr.write(`stripemover: ${f.error.message}\n`);

export function repoCommands(program: Command): void {
  const b = withRepo(program.command('backup'))
    .description('snapshot a tree into a repository: full the first time, then only what changed')
    .argument('[source]', "directory to back up (default: the config file's sources, or --tier)")
    .option('--tier <name>', 'back up the sources of this tier of the config file')
    .option('--tag <tag>', 'tag the snapshot (repeatable)', (t: string, all: string[] = []) => [...all, t])
    .option('--one-file-system', 'do not cross into other file systems')
    .option('-c, --checksum', 'find changed files by content (XXH64) instead of size, mtime, ctime and inode')
    .option('--verify', 're-read what was written from the device and compare')
    .option(
      '--no-reflink',
      'write every changed file in full: no reflink clones of the parent snapshot (XFS, Btrfs, ZFS)',
    )
    .option('--threads <n>', 'worker threads', int)
    .option('--break-lock', 'take over a stale lock left by a process that no longer runs');
  const filterOf = filterOptions(b);
  b.action((source: string | undefined, opts) =>
    guarded(async () => {
      const { backup, loadConfig } = await repoLibrary();
      const config = loadConfig(opts.config);
      const repo = repoOf(opts, config);
      const jobs = config.jobs(source, opts.tier);
      const run = interruptible();
      let failed = 0;
      try {
        for (const job of jobs) {
          const filter = filterOf(opts) ?? job.filter;
          const r = await backup(repo, job.source, {
            tags: [...(opts.tag ?? []), ...job.tags],
            filter,
            oneFileSystem: opts.oneFileSystem ?? job.oneFileSystem,
            checksum: opts.checksum,
            verify: opts.verify,
            reflink: opts.reflink,
            threads: opts.threads,
            breakLock: opts.breakLock,
            signal: run.signal,
            onError: printFailure(opts),
            onWarning: (message) => {
              if (opts.json) json({ type: 'warning', message });
              else process.stderr.write(`stripemover: warning: ${message}\n`);
            },
          });
          failed += r.failures.length;
          if (r.interrupted) return Exit.interrupted;
          const s = r.snapshot!;
          if (opts.json) json({ type: 'snapshot', ...s });
          else {
            const st = s.stats;
            process.stderr.write(
              `snapshot ${s.id} of ${s.source}${r.resumed ? ' (resumed)' : ''}: ${st.files} files, ${st.dirs} dirs, ${st.others} other; ` +
                `${st.copiedFiles} new or changed (${st.copiedBytes} bytes` +
                `${st.sharedBytes ? `, ${st.sharedBytes} of them shared with the parent's copies` : ''}), ${st.unchangedFiles} unchanged` +
                `${st.failed ? `, ${st.failed} FAILED (not in the snapshot)` : ''}\n`,
            );
          }
        }
      } finally {
        run.done();
      }
      return failed ? Exit.failures : Exit.ok;
    }),
  );

  withRepo(program.command('snapshots'))
    .description('list the snapshots of a repository')
    .action((opts: RepoOpts) =>
      guarded(async () => {
        const { listSnapshots, loadConfig } = await repoLibrary();
        let damaged = 0;
        const onDamaged = (err: Error & { code: string }) => {
          damaged++;
          process.stderr.write(`stripemover: ${err.code}: ${err.message}\n`);
        };
        for (const s of listSnapshots(repoOf(opts, loadConfig(opts.config)), onDamaged)) {
          if (opts.json) json(s);
          else {
            const tags = s.tags.length ? ` [${s.tags.join(',')}]` : '';
            process.stdout.write(
              `${s.id}  ${s.time}  ${s.host}  ${s.source}  ${s.stats.files} files, ${s.stats.bytes} bytes${tags}\n`,
            );
          }
        }
        return damaged ? Exit.failures : Exit.ok;
      }),
    );

  withRepo(program.command('ls'))
    .description('list what a snapshot holds')
    .argument('<snapshot>', "snapshot id (or a unique part of it), or 'latest'")
    .action((ref: string, opts: RepoOpts) =>
      guarded(async () => {
        const { snapshotEntries, loadConfig } = await repoLibrary();
        for (const e of snapshotEntries(repoOf(opts, loadConfig(opts.config)), ref)) {
          const p = Buffer.from(e.path, 'base64');
          if (opts.json) json(e);
          else
            writeOut(
              `${e.type.padEnd(7)} ${(e.mode & 0o7777).toString(8).padStart(4, '0')} ${String(e.size).padStart(12)}  `,
              p.length ? p : '.',
              '\n',
            );
        }
      }),
    );

  withRepo(program.command('restore'))
    .description('restore a snapshot, or paths and globs in it, to a directory; every byte checked')
    .argument('<snapshot>', "snapshot id (or a unique part of it), or 'latest'")
    .argument('<target>', 'where to restore (created if missing); may be the original place')
    .option(
      '--path <glob>',
      'restore only this path or glob inside the snapshot (repeatable)',
      (p: string, all: string[] = []) => [...all, p],
    )
    .option('-n, --dry-run', 'list what would be restored; write nothing')
    .option('--no-reflink', "write every file in full, even on the repository's own file system (no reflink clones)")
    .option('--threads <n>', 'worker threads', int)
    .action((ref: string, target: string, opts) =>
      guarded(async () => {
        const { restore, loadConfig } = await repoLibrary();
        const run = interruptible();
        try {
          const r = await restore(repoOf(opts, loadConfig(opts.config)), ref, target, {
            paths: opts.path?.map(argBytes), // the bytes typed: a name need not be UTF-8
            dryRun: opts.dryRun,
            reflink: opts.reflink,
            threads: opts.threads,
            signal: run.signal,
            onError: printFailure(opts),
            onChange: (c) =>
              opts.json ? json({ type: 'change', ...c }) : process.stdout.write(`${c.action} ${c.path}\n`),
          });
          const s = r.summary;
          if (opts.json) json({ type: 'summary', snapshot: r.snapshot.id, ...s, failures: r.failures });
          else
            process.stderr.write(
              `restored ${r.restoredFiles} files from ${r.snapshot.id} (${s.files} copied, ${s.bytes} bytes; ${s.skipped} already in place, checked); ${r.failures.length} failed\n`,
            );
          return s.interrupted ? Exit.interrupted : r.failures.length ? Exit.failures : Exit.ok;
        } finally {
          run.done();
        }
      }),
    );

  withRepo(program.command('verify'))
    .description('check a repository: structure always, data with --read-data')
    .option('--read-data', 'read and hash every file and compare with the manifests')
    .option('--read-data-subset <n/m|p%>', 'read a deterministic part of the data: 1/7 .. 7/7 over a week, or 5%')
    .action((opts: RepoOpts & { readData?: boolean; readDataSubset?: string }) =>
      guarded(async () => {
        const { verify, loadConfig } = await repoLibrary();
        const r = await verify(repoOf(opts, loadConfig(opts.config)), {
          readData: opts.readData,
          subset: opts.readDataSubset,
          onProblem: (p) =>
            opts.json
              ? json({ type: 'problem', ...p })
              : process.stderr.write(
                  `stripemover: ${p.snapshot ? `snapshot ${p.snapshot}: ` : ''}${p.path ? `${p.path}: ` : ''}${p.problem}\n`,
                ),
        });
        if (opts.json) json({ type: 'summary', ...r, problems: r.problems.length });
        else {
          process.stderr.write(
            `${r.snapshots} snapshots, ${r.entries} entries checked; ${r.filesRead} files (${r.bytesRead} bytes) read and hashed; ` +
              `${r.problems.length ? `${r.problems.length} PROBLEMS` : 'no problems'}\n`,
          );
        }
        return r.problems.length ? Exit.failures : Exit.ok;
      }),
    );

  withRepo(program.command('prune'))
    .description('remove the snapshots a retention policy does not keep (per host and source)')
    .option('--keep-last <n>', 'keep the newest n', count)
    .option('--keep-hourly <n>', 'keep the newest of each of the last n hours', count)
    .option('--keep-daily <n>', 'keep the newest of each of the last n days', count)
    .option('--keep-weekly <n>', 'keep the newest of each of the last n ISO weeks', count)
    .option('--keep-monthly <n>', 'keep the newest of each of the last n months', count)
    .option('--keep-yearly <n>', 'keep the newest of each of the last n years', count)
    .option('--tier <name>', "use this tier's retention from the config file (flags override it)")
    .option('-n, --dry-run', 'say what would be removed; remove nothing')
    .option('--break-lock', 'take over a stale lock left by a process that no longer runs')
    .action((opts) =>
      guarded(async () => {
        const { prune, loadConfig } = await repoLibrary();
        const config = loadConfig(opts.config);
        const flags: RetentionPolicy = {
          last: opts.keepLast,
          hourly: opts.keepHourly,
          daily: opts.keepDaily,
          weekly: opts.keepWeekly,
          monthly: opts.keepMonthly,
          yearly: opts.keepYearly,
        };
        const fromTier = opts.tier ? config.retention(opts.tier) : {};
        const policy = { ...fromTier, ...Object.fromEntries(Object.entries(flags).filter(([, v]) => v !== undefined)) };
        const sources = opts.tier ? config.jobs(undefined, opts.tier).map((j) => j.source) : undefined;
        const r = prune(repoOf(opts, config), policy, { dryRun: opts.dryRun, breakLock: opts.breakLock, sources });
        for (const s of r.remove) {
          if (opts.json) json({ type: 'remove', id: s.id, time: s.time, source: s.source, dryRun: !!opts.dryRun });
          else process.stdout.write(`${opts.dryRun ? 'would remove' : 'removed'} ${s.id}  ${s.time}  ${s.source}\n`);
        }
        if (!opts.json)
          process.stderr.write(
            `kept ${r.keep.length}, ${opts.dryRun ? 'would remove' : 'removed'} ${r.remove.length}\n`,
          );
      }),
    );

  withRepo(program.command('diff'))
    .description('what changed between two snapshots, or between a snapshot and a live tree (like dcmp)')
    .argument('<a>', 'snapshot')
    .argument('[b]', 'snapshot (default: --live)')
    .option('--live <dir>', 'compare with this directory as it is now')
    .action((a: string, b: string | undefined, opts: RepoOpts & { live?: string }) =>
      guarded(async () => {
        const { diffSnapshots, diffLive, loadConfig } = await repoLibrary();
        const repo = repoOf(opts, loadConfig(opts.config));
        if ((b === undefined) === (opts.live === undefined))
          throw new RangeError('diff takes a second snapshot or --live DIR');
        const changes = b !== undefined ? diffSnapshots(repo, a, b) : diffLive(repo, a, opts.live!);
        let n = 0;
        for await (const c of changes) {
          n++;
          if (opts.json) json({ change: c.change, path: c.path.toString('utf8') });
          else writeOut(`${c.change === 'added' ? '+' : c.change === 'removed' ? '-' : 'M'} `, c.path, '\n');
        }
        if (!opts.json) process.stderr.write(`${n} differences\n`);
      }),
    );
}

// `copy SRC DST`: scan → plan → execute → commit. Directories are made as the scan meets them;
// file data moves in piscina workers, one queue per stream; hard links, then directory
// metadata, are committed last (directory times last of all: writing into a directory changes them).
import { EventEmitter } from 'node:events';
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { native, fsConstants as C } from '../native.js';
import type { NativeFile } from '../native.js';
import { isSparse, sameVersion, type Entry } from '../model/entry.js';
import { scan } from '../scan/index.js';
import type { ScanError } from '../scan/index.js';
import { planUnitsAsync, resolvePlanOptions } from '../plan/index.js';
import {
  lustreLayouts,
  lustreRoot,
  recordedLayouts,
  destinationLayouts,
  LAYOUT_RECORD_XATTR,
  type LayoutPolicy,
} from './lustre.js';
import type { WorkUnit } from '../plan/index.js';
import { isDirectoryOf, joinPath, PathList, sameInode, TreeRoot } from '../targets/posix/paths.js';
import { StreamScheduler } from './scheduler.js';
import { ChunkJournal, chunkFiles } from './chunk-journal.js';
import { Throttle } from './throttle.js';
import { deleteExtraneous, removeExtraneous, type DeleteOptions } from './delete.js';
import { DestinationIndex } from './destination.js';
import { ReverseSpool } from './reverse-spool.js';
import { DirectoryMaker } from './directory-maker.js';
import { StripemoverError, toErrorRecord, displayPath, sourceChanged } from '../errors.js';
import type { ErrorRecord } from '../errors.js';
import { LINKED, LINK_LEFT, LINK_SKIPPED } from '../worker/copy-task.js';
import type { CopyTask, FsyncPolicy, LinkResult, LinkTask, TaskResult } from '../worker/copy-task.js';

export interface CopyOptions {
  /** Worker threads (default: max(4, cores)): small-file copies wait on metadata, not CPU. */
  threads?: number;
  /** Units running at once on one stream: default 2 per OST on Lustre, one per thread on a device. */
  maxStreams?: number;
  /** Large files are copied in units of at most this size (default 64 MiB). */
  chunkSize?: number;
  /**
   * Cut files on Lustre along their stripes, one OST per unit and one queue per OST (default
   * true). false: contiguous chunks in file order, one queue per device, as other copiers do.
   */
  stripeAware?: boolean;
  /**
   * The layout of new files on a Lustre destination: 'reset' (default) the source's layout with
   * Lustre choosing the OSTs, 'keep' the same OSTs too, 'inherit' the destination directory's
   * default, or a Layout (see parseLayoutSpec) for every file. Ignored off Lustre.
   */
  layout?: LayoutPolicy;
  /** See FsyncPolicy; default 'batch'. */
  fsync?: FsyncPolicy;
  /** Hash every byte read (default true). */
  hash?: boolean;
  /** Re-read every written file from the device and compare digests. */
  verify?: boolean;
  /** Bytes per second over the whole run. */
  bwlimit?: number;
  oneFileSystem?: boolean;
  /** Same-size files are compared by content (XXH64 of both), not by mtime (rsync --checksum). */
  checksum?: boolean;
  /**
   * With checksum: whether a same-size file already at the destination (given its path there)
   * holds the source's bytes, judged instead of hashing both sides (restore compares it with
   * the manifest's digests: one read, not two).
   */
  matches?: (e: Entry, there: Buffer) => Promise<boolean>;
  /** Report what would change (as 'change' events) and write nothing. */
  dryRun?: boolean;
  /** Entries it excludes are neither copied nor (with delete) removed; excluded directories are not entered. */
  filter?: { excludes(e: Entry, bySize?: boolean): boolean };
  /**
   * Whether a regular file whose link count is above 1 may have other names in the tree, to be
   * linked to its copy (default: yes). Restore says which from its manifest: a snapshot tree's
   * unchanged files also have names in the other snapshots, and tracking those would hold one
   * entry per file for the whole run.
   */
  hardLinked?: (e: Entry) => boolean;
  /**
   * The source's entries only (never the root), in scan order, after the filter: false leaves
   * one out as the filter would (a directory with all it holds). Lets a caller walk a list of its
   * own in step with the scan (restore, its manifest). sync's delete pass does not consult it.
   */
  admit?: (e: Entry) => boolean;
  signal?: AbortSignal;
  /**
   * On a file system that clones files (reflinks: XFS, Btrfs, ZFS 2.2, some NFS 4.2 servers),
   * copies are clones. A file whose source is on the same file system is a clone of it, as with
   * `cp --reflink=auto`: nothing is written, and the clone's bytes are read back for the hash.
   * Otherwise, with linkDest, a changed file's copy starts as a clone of its previous copy and
   * only the blocks that differ are written, so a snapshot of an appended log or a partly
   * rewritten file costs only its changes (at the price of reading the previous copy). Default
   * true; elsewhere it does nothing.
   */
  reflink?: boolean;
  /**
   * With reflink: whether a source on the same file system is cloned (default true). A backup
   * turns it off: a clone shares its source's blocks, and so its media.
   */
  cloneSource?: boolean;
}

export interface SyncOptions extends CopyOptions {
  /** A previous copy: files unchanged there (size, mtime, mode, owner) are hard-linked from it, not copied. */
  linkDest?: string | Buffer;
  /**
   * With linkDest: a file is linked only if its xattrs and ACLs equal the previous copy's too, as
   * rsync -aX --link-dest compares them (default true; two more listxattr calls per file). A
   * backup turns it off: its own change detection compares ctime, which an xattr change moves.
   */
  linkXattrs?: boolean;

  /**
   * Sees every scanned entry, in scan order, before anything is done with it. For a regular file,
   * with linkDest, what it returns is the caller's own verdict on whether the file is unchanged
   * since the previous copy (a backup compares against its manifest; nothing returned: it may
   * be). A file called unchanged is still copied unless the previous copy matches in size,
   * mtime, mode and owner.
   */
  onEntry?: (e: Entry) => boolean | Promise<boolean> | void;
  /** Sees every scanned entry that failed (it is not in the destination), after onEntry saw it. */
  onFailed?: (e: Entry) => void;
  /** After the copy, remove what the destination holds and the source does not (filtered-out entries are kept). */
  delete?: boolean;
}

/** What became of one regular file: emitted as 'file' once it is in place. */
export interface FileResult {
  entry: Entry;
  outcome: 'copied' | 'linked' | 'skipped';
  /** XXH64 of the whole file, for files copied whole (when hashing). */
  digest?: string;
  /**
   * For a file copied in units: the XXH64 of each unit's bytes, by the unit's first offset (an
   * empty digest for a unit wholly in holes, not read); `cut` says how the file was cut.
   */
  units?: { cut: string; digests: Record<number, string> };
}

/** What a run does to one path; in a dry run, what it would do. */
export interface Change {
  action: 'mkdir' | 'copy' | 'link' | 'create' | 'delete';
  path: string;
}

export interface Progress {
  /** Files copied (complete and in place). */
  files: number;
  /** Bytes copied. */
  bytes: number;
  /** Files already complete at the destination (an earlier run): not copied again. */
  skipped: number;
  failed: number;
  /** Files and bytes the scan has found so far, and whether it is finished (then eta is known). */
  scannedFiles: number;
  scannedBytes: number;
  scanDone: boolean;
  elapsedSeconds: number;
  bytesPerSecond: number;
  etaSeconds?: number;
  /** Share of the job's bytes settled (copied, skipped or holes), once the scan is done. */
  fraction?: number;
  /** Bytes copied per stream (device or OST). */
  streams: Record<string, number>;
}

export interface CopyFailure {
  path: string;
  error: ErrorRecord;
}

export interface CopySummary extends Progress {
  /** Files hard-linked from linkDest instead of copied. */
  linked: number;
  /** Bytes of copied files left shared with their source or previous copy (see reflink), not written. */
  sharedBytes: number;
  /** Entries removed by delete (or that would be, in a dry run). */
  deleted: number;
  dirs: number;
  links: number;
  specials: number;
  verified: number;
  failures: CopyFailure[];
  interrupted: boolean;
}

export interface CopyHandle extends EventEmitter {
  /** The summary, once everything is committed (or the run was interrupted). */
  done: Promise<CopySummary>;
}

/** The workers' entry (CommonJS, see bin/copy-worker.cjs), which loads dist/worker/copy-task.js. */
const workerEntry = fileURLToPath(new URL('../../bin/copy-worker.cjs', import.meta.url));

/**
 * Copies a tree. Files the destination already holds (same size and mtime, or contents with
 * `checksum`) are skipped, so rerunning an interrupted copy finishes it.
 */
export function copy(src: string | Buffer, dst: string | Buffer, options: CopyOptions = {}): CopyHandle {
  return sync(src, dst, options);
}

/** Makes dst like src: copy() plus, as asked, deletion of extraneous entries and --link-dest snapshots. */
export function sync(src: string | Buffer, dst: string | Buffer, options: SyncOptions = {}): CopyHandle {
  const handle = new EventEmitter() as CopyHandle;
  handle.done = run(Buffer.from(src), Buffer.from(dst), options, handle);
  return handle;
}

const key = (p: Buffer) => p.toString('latin1');
const EMPTY = Buffer.alloc(0);

async function run(srcRoot: Buffer, dstRoot: Buffer, o: SyncOptions, events: EventEmitter): Promise<CopySummary> {
  const threads = o.threads ?? Math.max(4, os.availableParallelism());
  const fsync = o.fsync ?? 'batch';
  const cancel = new Int32Array(new SharedArrayBuffer(4));
  const onAbort = () => Atomics.store(cancel, 0, 1);
  o.signal?.addEventListener('abort', onAbort, { once: true });
  const throttle = o.bwlimit ? new Throttle(o.bwlimit) : undefined;
  // Started on the first unit: a run with nothing to copy (a no-op sync) never pays for
  // worker threads. Workers only pass plain data to native calls: small heaps bound the RSS.
  let pool: Piscina | undefined;
  // A worker that fails outside a task (its module cannot load, it runs out of memory) ends the
  // run with this error: piscina would start another in its place, and that one fail too.
  let poolFailure: { error: unknown } | undefined;
  const workers = () => {
    if (pool) return pool;
    pool = new Piscina({
      filename: workerEntry,
      minThreads: threads,
      maxThreads: threads,
      // Not the parent's flags: loaders a test runner or profiler put there cost each worker
      // hundreds of milliseconds to start, for code (plain calls into the addon) they never see.
      execArgv: [],
      resourceLimits: { maxOldGenerationSizeMb: 64, maxYoungGenerationSizeMb: 8 },
    });
    pool.on('error', workerFailed);
    return pool;
  };
  let poolDestroyed: Promise<void> | undefined;
  /**
   * A worker failed: outside a task, or in one, which the pool then rejects (tasks answer every
   * file's error as data, so a rejection is the worker's own failure, never a file's). The run
   * stops with it; nothing is charged to the files of the tasks under way.
   */
  const workerFailed = (err: unknown) => {
    if (poolFailure) return;
    const why = err instanceof Error ? err.message : String(err);
    poolFailure = { error: new StripemoverError('WORKER_FAILED', `a copy worker failed: ${why}`) };
    poolDestroyed = pool?.destroy(); // what waits on the pool is rejected
  };
  /**
   * A task on the pool. Once a worker has failed, none: a destroyed pool would start new workers
   * for it, which fail as they start, and the task would never settle. A rejection is always
   * poolFailure's error, so that the caller can tell it from its own (see isPoolFailure).
   */
  const onPool = <R>(task: CopyTask | LinkTask, transferList?: ArrayBuffer[]): Promise<R> => {
    if (poolFailure) return Promise.reject(poolFailure.error);
    return (workers().run(task, { transferList }) as Promise<R>).catch((err: unknown) => {
      if (o.signal?.aborted) throw err;
      workerFailed(err);
      throw poolFailure!.error;
    });
  };
  const isPoolFailure = (err: unknown) => poolFailure !== undefined && err === poolFailure.error;

  const [srcLustre, dstLustre] = [lustreRoot(srcRoot), lustreRoot(dstRoot)];
  // A recorded layout says where bytes were, not where they are: only Lustre sources cut by stripes.
  const plan = resolvePlanOptions({ chunkSize: o.chunkSize, stripeAware: o.stripeAware !== false && srcLustre.lustre });
  const perOst = plan.stripeAware;
  const started = process.hrtime.bigint();
  const s: CopySummary = {
    files: 0,
    bytes: 0,
    skipped: 0,
    failed: 0,
    scannedFiles: 0,
    scannedBytes: 0,
    scanDone: false,
    elapsedSeconds: 0,
    bytesPerSecond: 0,
    streams: {},
    linked: 0,
    sharedBytes: 0,
    deleted: 0,
    dirs: 0,
    links: 0,
    specials: 0,
    verified: 0,
    failures: [],
    interrupted: false,
  };
  let skippedBytes = 0;
  const fail = (p: Buffer, error: ErrorRecord, entry?: Entry) => {
    if (entry) o.onFailed?.(entry);
    s.failed++;
    const record = { path: displayPath(joinPath(srcRoot, p)), error };
    s.failures.push(record);
    events.emit('error-record', record);
  };
  /** A failure at the destination: the error names the destination's path when it has none. */
  const failAtDestination = (p: Buffer, err: unknown, entry?: Entry) =>
    fail(p, toErrorRecord(err, displayPath(joinPath(dstRoot, p))), entry);
  // Usable paths below each root, however deep (see TreeRoot).
  const src = new TreeRoot(srcRoot);
  const dst = new TreeRoot(dstRoot);
  const prev = o.linkDest === undefined ? undefined : new TreeRoot(Buffer.from(o.linkDest));
  const change = (action: Change['action'], p: Buffer) =>
    events.emit('change', { action, path: displayPath(joinPath(dstRoot, p)) } satisfies Change);
  const taskBase = {
    // The engine already skipped what the destination holds (see complete()).
    checkExisting: false,
    checksum: !!o.checksum,
    fsync,
    hash: o.hash !== false || !!o.verify,
    verify: !!o.verify,
    cancel,
    budget: throttle?.budget,
    reflink: o.reflink !== false,
    cloneSource: o.cloneSource !== false,
    compareXattrs: o.linkXattrs !== false,
  };

  // Large files: their units share one temporary file, committed when the last unit is in.
  const chunked = new Map<
    string,
    {
      entry: Entry;
      /** Units planned so far, and finished; all are planned once the one marked last is seen. */
      planned: number;
      finished: number;
      allPlanned: boolean;
      failed: boolean;
      /** Every chunk was re-read and compared in this run (none came from a journal or a hole). */
      verified: boolean;
      journal: ChunkJournal;
      extents?: { offset: number; length: number }[];
      /** How the file is cut into units (its journal's key). */
      cut: string;
      /** First offsets of the units that were all holes: not read, not in the journal. */
      holes: number[];
    }
  >();
  const dirs = new ReverseSpool(); // directory paths, for their metadata at the end
  // Later names of hard-linked files, made once their first names are copied: spooled too (a
  // tree of conda or spack environments holds millions), each as [u32 length][path][first name].
  const laterLinks = new ReverseSpool();
  const laterLink = (path: Buffer, target: Buffer) => {
    const item = Buffer.allocUnsafe(4 + path.length + target.length);
    item.writeUInt32LE(path.length, 0);
    path.copy(item, 4);
    target.copy(item, 4 + path.length);
    laterLinks.push(item);
  };
  const release = () => {
    dirs.close();
    laterLinks.close();
    for (const root of [src, dst, prev]) root?.close();
  };
  // dev:ino -> the first path of a hard-linked file, and how many of its names are yet to come:
  // forgotten once all have been met, so memory holds the groups under way, not all of them.
  const firstLink = new Map<string, { path: Buffer; left: number }>();
  const failedPaths = new Set<string>();
  /** Files past the link batches that may be hard-linked from linkDest (onEntry's verdict agreed). */
  const mayLink = new WeakSet<Entry>();

  const progress = (): Progress => {
    s.elapsedSeconds = Number(process.hrtime.bigint() - started) / 1e9;
    s.bytesPerSecond = s.elapsedSeconds > 0 ? s.bytes / s.elapsedSeconds : 0;
    const left = s.scannedBytes - s.bytes - skippedBytes;
    const { files, bytes, skipped, failed, scannedFiles, scannedBytes, scanDone, elapsedSeconds, bytesPerSecond } = s;
    return {
      files,
      bytes,
      skipped,
      failed,
      scannedFiles,
      scannedBytes,
      scanDone,
      elapsedSeconds,
      bytesPerSecond,
      ...(scanDone && bytesPerSecond > 0 ? { etaSeconds: Math.max(0, left) / bytesPerSecond } : {}),
      ...(scanDone ? { fraction: scannedBytes > 0 ? Math.min(1, (bytes + skippedBytes) / scannedBytes) : 1 } : {}),
      streams: { ...s.streams },
    };
  };
  const ticker = setInterval(() => events.emit('progress', progress()), 500);

  const chunkFile = (rel: Buffer) => chunkFiles(dst.path(rel), src.path(rel));

  /** Opens (or resumes) the temporary file and journal of a large file; returns chunks already done. */
  const startChunked = (e: Entry) => {
    const { tmp, journal: journalPath } = chunkFile(e.path);
    const cut = plan.stripeAware && e.layout ? 'stripes' : 'contiguous';
    const withFile = <T>(path: Buffer, flags: number, use: (f: NativeFile) => T): T => {
      const f = new native.File(path, flags, 0o600);
      try {
        return use(f);
      } finally {
        f.close();
      }
    };
    /** Makes the temporary file, sized; true when it is a clone (see CopyOptions.reflink). */
    const create = (): boolean => {
      const layout = layouts.of(e);
      if (layout) {
        rmSync(tmp, { force: true });
        native.lustre.createFile(tmp, layout, { size: e.size, keepOsts: layouts.keepOsts });
        return false;
      }
      // A clone of the source (the same file system), or of the previous copy: its chunks then
      // write only what differs. Not for a sparse source: its chunks in holes, skipped otherwise,
      // would have to be read and compared.
      const clone = !isSparse(e) && o.reflink !== false;
      const base = clone ? baseOf(e) : undefined;
      return withFile(tmp, C.O_WRONLY | C.O_CREAT | C.O_TRUNC, (f) => {
        const cloned =
          (clone && o.cloneSource !== false && f.cloneFrom(src.path(e.path))) ||
          (base !== undefined && f.cloneFrom(base));
        // Not a clone already of the right size: a truncate zeroes its last block's tail, unsharing it.
        if (!cloned || f.stat().size !== e.size) f.truncate(e.size);
        return cloned;
      });
    };
    const journal = ChunkJournal.open(
      journalPath,
      existsSync(tmp),
      e,
      `${cut}/${plan.chunkSize}`,
      fsync !== 'none',
      create,
      o.reflink !== false, // a clone left by an earlier run is not resumed without reflinks: made afresh
    );
    // A sparse file's chunks that fall wholly in holes need no worker: the sized temporary file
    // already has those holes (a 10 TiB image with 1 GiB of data is 16 chunks, not 163,840).
    // Not in a clone, which holds the earlier version there.
    let extents: { offset: number; length: number }[] | undefined;
    try {
      if (!journal.cloned && isSparse(e)) extents = withFile(src.path(e.path), C.O_RDONLY, (f) => f.dataExtents());
    } catch (err) {
      journal.close(false);
      throw err;
    }
    chunked.set(key(e.path), {
      entry: e,
      planned: 0,
      finished: 0,
      allPlanned: false,
      failed: false,
      verified: true,
      journal,
      extents,
      cut: `${cut}/${plan.chunkSize}`,
      holes: [],
    });
  };

  /** The previous copy's file, whose blocks a copy may share (see CopyOptions.reflink), if any. */
  const baseOf = (e: Entry): Buffer | undefined => {
    if (!prev || o.reflink === false) return undefined;
    try {
      return prev.path(e.path);
    } catch {
      return undefined; // deep, below directories the previous copy lacks
    }
  };

  /** Whether a chunk is already done: durable from an earlier run, or nothing but holes. */
  const chunkNeedsNoCopy = (unit: WorkUnit & { kind: 'chunk' }) => {
    const c = chunked.get(key(unit.entry.path))!;
    if (c.journal.done.has(unit.offset)) return true;
    const holes = c.extents;
    return (
      holes !== undefined &&
      unit.ranges.every((r) => !holes.some((x) => x.offset < r.offset + r.length && x.offset + x.length > r.offset))
    );
  };

  /** Counts a unit of a large file as planned (before it is submitted). */
  const chunkPlanned = (unit: WorkUnit & { kind: 'chunk' }) => {
    const c = chunked.get(key(unit.entry.path))!;
    c.planned++;
    if (unit.last) c.allPlanned = true;
  };

  const chunkDone = (rel: Buffer, ok: boolean) => {
    const c = chunked.get(key(rel))!;
    if (!ok) c.failed = true;
    if (++c.finished < c.planned || !c.allPlanned) return;
    chunked.delete(key(rel));
    const { tmp } = chunkFile(rel);
    // A failed chunk keeps the journal and the temporary file: a rerun redoes only what is missing.
    c.journal.close(!c.failed);
    if (c.failed) return;
    try {
      const srcPath = src.path(rel);
      const now = native.stat(srcPath);
      const e = c.entry;
      // Chunks check the version they read; this catches a change between them (or into a skipped hole).
      if (!sameVersion(now, e)) {
        rmSync(tmp, { force: true });
        throw sourceChanged(srcPath);
      }
      native.copyMetadata(srcPath, tmp);
      const record = layouts.record(e);
      if (record) native.setXattr(tmp, LAYOUT_RECORD_XATTR, record);
      renameSync(tmp, dst.path(rel));
      s.files++;
      if (o.verify && c.verified) s.verified++;
      const digests = Object.fromEntries([...c.holes.map((h) => [h, ''] as const), ...c.journal.done]);
      events.emit('file', { entry: e, outcome: 'copied', units: { cut: c.cut, digests } } satisfies FileResult);
    } catch (err) {
      failedPaths.add(key(rel));
      fail(rel, toErrorRecord(err), c.entry);
    }
  };

  const scheduler = new StreamScheduler<WorkUnit, TaskResult>(
    // Per OST: at most 2 units at once by default, so that a copy never swamps one OST; and a
    // deeper look-ahead, so that while some OSTs' queues are full the others still get work.
    perOst
      ? { maxRunning: threads, maxPerStream: o.maxStreams ?? 2, maxQueued: Math.max(threads * 4, 256) }
      : { maxRunning: threads, maxPerStream: o.maxStreams ?? Math.max(2, threads), maxQueued: threads * 4 },
    (unit) => dirMaker.ready().then(() => onPool<TaskResult>(toTask(unit))),
    (unit, result, error) => {
      if (!result && isPoolFailure(error)) return; // the run stops: nothing is charged to the files
      for (const { entry, error } of leftOut.get(unit) ?? []) {
        failedPaths.add(key(entry.path));
        fail(entry.path, error, entry);
      }
      leftOut.delete(unit);

      const paths = unit.kind === 'batch' ? unit.files.map((f) => f.path) : [unit.entry.path];
      const results = result ?? {
        copied: [],
        failed: paths.map((_, index) => ({ index, error: toErrorRecord(error) })),
      };
      const chunkUnit = unit.kind === 'chunk' ? unit : undefined;
      const chunk = chunkUnit && chunked.get(key(chunkUnit.entry.path))!;
      const failed = [...results.failed];
      for (const c of results.copied) {
        if (unit.kind === 'batch') {
          const outcome = c.linked ? 'linked' : c.skipped ? 'skipped' : 'copied';
          events.emit('file', { entry: unit.files[c.index]!, outcome, digest: c.digest } satisfies FileResult);
        }
        if (c.skipped || c.linked) {
          if (c.linked) s.linked++;
          else s.skipped++;
          skippedBytes += c.bytes;
          continue;
        }
        s.bytes += c.bytes;
        s.sharedBytes += c.sharedBytes ?? 0;
        s.streams[unit.stream] = (s.streams[unit.stream] ?? 0) + c.bytes;
        if (chunk) {
          if (!c.verified) chunk.verified = false;
          try {
            chunk.journal.record(chunkUnit!.offset, c.digest);
          } catch (err) {
            failed.push({ index: 0, error: toErrorRecord(err) }); // journal not durable: the chunk is not done
          }
        } else {
          s.files++;
          if (c.verified) s.verified++;
        }
      }
      for (const f of failed) {
        const p = paths[f.index]!;
        if (f.error.code === 'ECANCELED') continue; // interrupted, not failed: a rerun finishes it
        if (chunk?.failed) continue; // a large file is reported once, not once per chunk
        failedPaths.add(key(p));
        fail(p, f.error, unit.kind === 'batch' ? unit.files[f.index] : unit.entry);
        if (chunk) chunk.failed = true;
      }
      if (chunkUnit) chunkDone(chunkUnit.entry.path, failed.length === 0);
    },
  );

  /** Files of a batch that toTask left out, and why: reported with the batch's outcome. */
  const leftOut = new Map<WorkUnit, { entry: Entry; error: ErrorRecord }[]>();
  function toTask(unit: WorkUnit): CopyTask {
    if (unit.kind === 'batch') {
      const [sources, destinations, previous] = [new PathList(), new PathList(), prev && new PathList()];
      const bases = prev && o.reflink !== false ? new PathList() : undefined;
      const kept: Entry[] = [];
      for (const f of unit.files) {
        try {
          // A deep path is reached through descriptors on its directories, opened here: one
          // that cannot be (its directory was not made) fails this file, not its whole batch.
          if (!src.isShort(f.path)) src.path(f.path);
          if (!dst.isShort(f.path)) dst.path(f.path);
        } catch (err) {
          const left = leftOut.get(unit) ?? [];
          left.push({ entry: f, error: toErrorRecord(err) });
          leftOut.set(unit, left);
          continue;
        }
        kept.push(f);
        src.appendTo(sources, f.path);
        dst.appendTo(destinations, f.path);
        try {
          if (mayLink.has(f)) prev!.appendTo(previous!, f.path);
          else previous?.add();
        } catch {
          previous!.add(); // deep, below directories the previous copy lacks: copied
        }
        const base = bases && baseOf(f);
        if (base) bases!.add(base);
        else bases?.add(); // none
      }
      unit.files = kept;
      return {
        kind: 'batch',
        ...taskBase,
        sources: sources.take(),
        destinations: destinations.take(),
        previous: previous?.take(),
        bases: bases?.take(),
        ...(layouts.active
          ? { layouts: unit.files.map((f) => layouts.of(f) ?? null), keepOsts: layouts.keepOsts }
          : {}),
        ...(srcLustre.lustre && !dstLustre.lustre
          ? { layoutRecords: unit.files.map((f) => layouts.record(f) ?? null) }
          : {}),
      };
    }
    const e = unit.entry;
    return {
      kind: 'chunk',
      ...taskBase,
      source: src.path(e.path),
      temporary: chunkFile(e.path).tmp,
      ranges: unit.ranges,
      expect: { size: e.size, mtimeNs: e.mtimeNs, ctimeNs: e.ctimeNs },
      // A clone (made in this run or an earlier one) holds an earlier version's bytes where the
      // chunk has not written yet: every block is compared and written where it differs.
      writeChanges: chunked.get(key(e.path))!.journal.cloned,
    };
  }

  // A destination inside its source is not copied into itself: the scan finds the directories
  // this run makes as it goes (one not made failed, reported). A dry run makes nothing to find.
  const isDstRoot = isDirectoryOf(dstRoot);
  const isDestination = (e: Entry) => !o.dryRun && isDstRoot(e);
  // A source inside its destination is never deleted as extraneous (nor, holding it, are the
  // directories above it): `sync --delete top/src top` would otherwise remove its own source.
  const isSource = isDirectoryOf(srcRoot);
  const prune = (e: Entry) => isDestination(e) || (o.filter?.excludes(e) ?? false);
  // Size limits choose what is copied, not what is deleted (as rsync's): the rules alone.
  const deletePrune = (e: Entry) => isDestination(e) || isSource(e) || (o.filter?.excludes(e, false) ?? false);
  /** How --delete removes, in the final pass and where a directory must make way for a file. */
  const deleting: DeleteOptions = {
    prune: deletePrune,
    dryRun: o.dryRun,
    signal: o.signal,
    onDelete: (p) => change('delete', p),
    onError: failAtDestination,
  };
  for (const [root, what] of [
    [srcLustre, srcRoot],
    [dstLustre, dstRoot],
  ] as const) {
    if (root.warning) events.emit('warning', `${displayPath(what)}: ${root.warning}`);
  }
  const layouts = destinationLayouts(o.layout ?? 'reset', !o.dryRun && dstLustre.lustre);
  const destination = DestinationIndex.open(dstRoot, prune);

  /** The destination's regular file of the same size at e's path, if any (asked in scan order). */
  const sameSize = async (e: Entry): Promise<Entry | undefined> => {
    const d = await destination?.lookup(e.path);
    return d?.type === 'file' && d.size === e.size ? d : undefined;
  };
  /** Whether that file holds e's bytes: the same mtime, or with checksum, the same contents. */
  const sameContents = async (e: Entry, d: Entry): Promise<boolean> => {
    if (!o.checksum) return d.mtimeNs === e.mtimeNs;
    if (o.matches) return o.matches(e, dst.path(e.path));
    const [a, b] = await Promise.all([native.hashFileAsync(src.path(e.path)), native.hashFileAsync(dst.path(e.path))]);
    return a.digest === b.digest;
  };
  /** The destination's entry for a regular file it already holds; undefined when the file must be copied. */
  const complete = async (e: Entry): Promise<Entry | undefined> => {
    const d = await sameSize(e);
    return d && (await sameContents(e, d)) ? d : undefined;
  };
  const asRoot = process.geteuid?.() === 0;
  /**
   * A file left as it is still takes the source's mode, times, (as root) owner, xattrs and ACLs,
   * as with rsync -aX: a chmod on either side is undone by the next sync ('kept'). Xattrs are not
   * read for every file: only where the source's ctime is past its copy's (set when the copy got
   * its attributes: some attribute may have changed since), or with checksum (which reads every
   * byte anyway). A destination server whose clock runs ahead of the source's, or a later touch
   * of the copy's own attributes, can hide a change from the ctime rule. Not in place on an inode
   * with other names: it may be another snapshot's (a backup tree links its parent's), so the
   * file is copied afresh ('copy').
   */
  const keepAttributes = (e: Entry, there: Entry): 'kept' | 'copy' | 'failed' => {
    try {
      const sameStat =
        there.mode === e.mode &&
        there.mtimeNs === e.mtimeNs &&
        (!asRoot || (there.uid === e.uid && there.gid === e.gid));
      const ctimeMoved = e.ctimeNs > there.ctimeNs;
      if (sameStat && !ctimeMoved && !o.checksum) return 'kept';
      const [from, to] = [src.path(e.path), dst.path(e.path)];
      if (sameStat && native.sameXattrs(from, to)) {
        // Set again (the same), the copy's ctime passes the source's: later runs need not read
        // its xattrs. Not on an inode with other names: they are read again, run after run.
        if (ctimeMoved && there.nlink === 1) native.copyMetadata(from, to);
        return 'kept';
      }
      if (there.nlink > 1) return 'copy';
      native.copyMetadata(from, to);
      return 'kept';
    } catch (err) {
      failedPaths.add(key(e.path));
      failAtDestination(e.path, err, e);
      return 'failed';
    }
  };

  /** The previous copy's file, when it can stand for this one (same size, mtime, mode, owner). */
  const linkable = (e: Entry): Buffer | undefined => {
    if (!prev || !mayLink.has(e)) return undefined;
    const previous = prev.path(e.path);
    try {
      const p = native.stat(previous);
      const sameOwner = !asRoot || (p.uid === e.uid && p.gid === e.gid); // as the addon decides
      if (p.size === e.size && p.mtimeNs === e.mtimeNs && p.mode === e.mode && sameOwner) return previous;
    } catch {
      // not in the previous copy
    }
    return undefined;
  };

  /**
   * With --delete: a directory where a file, symlink or special file goes is removed first, as
   * rsync does (what the filter protects in it stays, and then so does it, and the copy fails).
   * Not one the filter protects itself (the destination index leaves those out), and never the
   * root: a source that is not a directory does not empty the destination (see deleteExtraneous).
   */
  const makeRoom = async (e: Entry) => {
    if (!o.delete || !destination || e.path.length === 0) return;
    const there = await destination.lookup(e.path);
    // Not the source itself either (SRC inside DST, holding an entry of its own name).
    if (there?.type !== 'dir' || deletePrune(there)) return;
    await dirMaker.ready();
    s.deleted += await removeExtraneous(dst, e.path, deleting); // never in a dry run: it returns before
  };

  /** In a dry run: whether the destination has this path (a deep one below directories it lacks has not). */
  const inDestination = (rel: Buffer) => {
    try {
      return existsSync(dst.path(rel));
    } catch {
      return false;
    }
  };

  /** In a dry run: what would happen to a file. */
  const dryRunFile = async (e: Entry) => {
    if (await complete(e)) return;
    change(linkable(e) ? 'link' : 'copy', e.path);
  };

  /**
   * The copy's directories (their modes are set at commit), made in scan order, parents first.
   * Whatever stands in a directory's place (a file, or a symlink planted to lead writes
   * elsewhere) is replaced, never followed; the root is the caller's to choose. A failed one is
   * reported, and the copy goes on without it.
   */
  const dirMaker = new DirectoryMaker<Entry>(0o700, (e, err) => {
    failedPaths.add(key(e.path));
    s.dirs--;
    failAtDestination(e.path, err, e);
  });
  const makeDir = (e: Entry) => {
    if (e.path.length === 0) mkdirSync(dstRoot, { recursive: true, mode: 0o700 });
    else dirMaker.add(e, dst.path(e.path));
  };

  // rsync --link-dest for the files that may be linked, whatever their size: in batches of their own, off the
  // planner (a snapshot's 10^5 unchanged files are 10^5 links, not 10^5 planned copies). A file
  // whose previous copy turns out to differ is left by the worker and comes back to be copied.
  // The first batches are smaller, so the workers start linking while the scan is still warming up.
  const LINK_BATCH = 2048;
  let linkBatch = 256;
  // A batch groups its files by directory: three directories per group, then only names, so a
  // file costs the engine one short append and the worker no path walk (see native linkFiles).
  // Each file goes with its stat data as scanned, which the previous copy's is compared with.
  let lane:
    | { entries: Entry[]; directories: PathList; names: PathList; dir?: Buffer; sizes: number[]; owners: number[] }
    | undefined;
  const linking = new Set<Promise<void>>();
  const leftByLinks: Entry[] = [];
  const linkedNow = (e: Entry, outcome: 'linked' | 'skipped') => {
    if (outcome === 'linked') s.linked++;
    else s.skipped++;
    skippedBytes += e.size;
    events.emit('file', { entry: e, outcome } satisfies FileResult);
  };
  const flushLane = () => {
    if (!lane) return;
    const { entries, directories, names, sizes, owners } = lane;
    lane = undefined;
    const task: LinkTask = {
      kind: 'link',
      ...taskBase,
      directories: directories.take(),
      names: names.take(),
      sizes: Float64Array.from(sizes),
      mtimesNs: BigInt64Array.from(entries, (e) => e.mtimeNs),
      owners: Uint32Array.from(owners),
    };
    // The lists are the batch's own buffers: moved to the worker, not copied.
    const transferList = [task.directories, task.names, task.sizes, task.mtimesNs, task.owners].map(
      (a) => a.buffer as ArrayBuffer,
    );
    const p = dirMaker
      .ready()
      .then(() => onPool<LinkResult>(task, transferList))
      .then(
        (r) => {
          if (r.statuses.length !== entries.length) throw new Error('link batch answered out of step');
          const errors = new Map(r.failed.map((f) => [f.index, f.error]));
          entries.forEach((e, i) => {
            const status = r.statuses[i];
            if (status === LINKED) linkedNow(e, 'linked');
            else if (status === LINK_SKIPPED) linkedNow(e, 'skipped');
            else if (status === LINK_LEFT) {
              // The copy batch tries the link once more, against the source as it is then (it
              // stats it before opening it anyway), and copies it otherwise.
              mayLink.add(e);
              leftByLinks.push(e);
            } else {
              failedPaths.add(key(e.path));
              fail(e.path, errors.get(i) ?? { code: 'LINK_FAILED', message: 'link failed' }, e);
            }
          });
        },
        (err) => {
          // Interrupted: a rerun links them. A failed worker stops the run, charged to no file.
          if (o.signal?.aborted || isPoolFailure(err)) return;
          for (const e of entries) {
            failedPaths.add(key(e.path));
            fail(e.path, toErrorRecord(err), e);
          }
        },
      )
      // What a listener of the events above throws ends the run, as the scheduler's onDone errors
      // do; it is never charged to whichever file the scan is at.
      .catch((error: unknown) => void (laneFailure ??= { error }))
      .finally(() => linking.delete(p));
    linking.add(p);
  };
  let laneFailure: { error: unknown } | undefined;
  /**
   * Queues a file for linking, answering as the scan's claim hook asks: true when it is queued, a
   * promise when its batch was sent off too (await it: it settles once there is room for the
   * next), false when it is not for a batch (the previous copy's directory cannot be reached, or
   * it is the root, a source that is one file, with no name in a directory to link by), and is
   * then copied as any other. A group's directories are made before its first file joins the
   * batch, so a batch never gets out of step with its lists.
   */
  const toLane = (e: Entry): boolean | Promise<void> => {
    if (e.path.length === 0) return false;
    const slash = e.path.lastIndexOf(0x2f);
    const dirLength = Math.max(slash, 0);
    // Most files are in the directory of the one before: compared in place, no view made.
    if (!(lane?.dir?.length === dirLength && e.path.compare(lane.dir, 0, dirLength, 0, dirLength) === 0)) {
      const dir = slash < 0 ? EMPTY : e.path.subarray(0, slash);
      let dirs: Buffer[];
      try {
        // A deep one is reached through anchors on its directories, which the previous copy may not have.
        dirs = [src.path(dir), dst.path(dir), prev!.path(dir)];
      } catch {
        return false;
      }
      if (lane) lane.names.add(); // the next group
      lane ??= { entries: [], directories: new PathList(), names: new PathList(), sizes: [], owners: [] };
      for (const d of dirs) lane.directories.add(d);
      lane.dir = dir;
    }
    lane.entries.push(e);
    lane.names.addRange(e.path, slash + 1);
    lane.sizes.push(e.size);
    lane.owners.push(e.mode, e.uid, e.gid);
    if (lane.entries.length < linkBatch) return true;
    linkBatch = Math.min(2 * linkBatch, LINK_BATCH);
    flushLane();
    return laneRoom();
  };
  /** Waits while as many link batches run as there are threads. */
  const laneRoom = async () => {
    while (linking.size >= threads) await Promise.race(linking);
    if (poolFailure) throw poolFailure.error; // the walk stops
  };

  // A new tree (nothing at the destination yet: a backup's snapshot): a file to link has nothing
  // there to be compared with, and goes to its batch at once. Most do so as the scan reaches
  // them (claimLink): 10^5 unchanged files never pass through filesToCopy's generator.
  const fresh = prev !== undefined && !o.dryRun && !destination;
  /** onEntry's verdict on the entry claimLink asked about and gave back: filesToCopy takes it from there. */
  let asked: { entry: Entry; verdict: ReturnType<NonNullable<SyncOptions['onEntry']>> } | undefined;
  const claimLink = (e: Entry): boolean | Promise<void> => {
    if (poolFailure) throw poolFailure.error; // the walk stops
    // Not a hard link (its names are tracked by filesToCopy), nor while files the link batches
    // gave back wait to be planned there.
    if (e.type !== 'file' || e.nlink > 1 || leftByLinks.length > 0) return false;
    const verdict = o.onEntry?.(e);
    if (verdict instanceof Promise) verdict.catch(() => {}); // seen where filesToCopy awaits it
    const taken = verdict === undefined || verdict === true ? toLane(e) : false;
    if (taken === false) {
      asked = { entry: e, verdict };
      return false;
    }
    s.scannedFiles++;
    s.scannedBytes += e.size;
    return taken;
  };

  /** A file for the planner: a large one gets its temporary file and journal first. */
  const forPlanner = (e: Entry): boolean => {
    if (e.size <= plan.largeFileThreshold) return true;
    try {
      startChunked(e);
      return true;
    } catch (err) {
      failedPaths.add(key(e.path));
      fail(e.path, toErrorRecord(err, displayPath(joinPath(srcRoot, e.path))), e);
      return false;
    }
  };

  /**
   * What becomes of a regular file once it is known whether the destination's file of the same
   * size (`d`, if any) holds its bytes (`same`): left as it is, linked, or returned for the planner.
   */
  const place = async (e: Entry, d: Entry | undefined, same: boolean, linkIt: boolean) => {
    const kept = d && same ? keepAttributes(e, d) : 'copy';
    if (kept === 'failed') return undefined; // reported
    if (kept === 'kept') {
      s.skipped++;
      skippedBytes += e.size;
      events.emit('file', { entry: e, outcome: 'skipped' } satisfies FileResult);
      return undefined;
    }
    if (!d) await makeRoom(e); // a file found there needs no room made
    if (linkIt) {
      const queued = toLane(e);
      if (queued !== false) {
        await queued;
        return undefined;
      }
      // No batch for it: copied; the root (a source that is one file) linked by its copy batch
      // if its previous copy matches, as any file the link batches give back.
      if (e.path.length === 0) mayLink.add(e);
    }
    // A large file's temporary file is made now, in its directory.
    if (e.size > plan.largeFileThreshold) await dirMaker.ready();
    return forPlanner(e) ? e : undefined;
  };
  /** A file that failed before reaching the planner: reported, and later names of its inode not linked to it. */
  const failBefore = (e: Entry, err: unknown) => {
    failedPaths.add(key(e.path));
    fail(e.path, toErrorRecord(err, displayPath(joinPath(srcRoot, e.path))), e);
  };
  // With checksum, files the destination holds at the same size are compared CHECKS_AHEAD at a
  // time while the scan goes on (one at a time, 10^5 small files would wait on 10^5 round trips
  // to the pool); each is placed once its verdict is in, oldest first.
  const CHECKS_AHEAD = 4 * threads;
  const checking: { e: Entry; d: Entry; linkIt: boolean; same: Promise<boolean> }[] = [];
  const settleOldest = async (): Promise<Entry | undefined> => {
    const { e, d, linkIt, same } = checking.shift()!;
    try {
      return await place(e, d, await same, linkIt);
    } catch (err) {
      failBefore(e, err);
      return undefined;
    }
  };

  /** Makes everything that is not regular-file data on the spot; passes on the files to copy. */
  async function* filesToCopy(entries: AsyncIterable<Entry>): AsyncGenerator<Entry> {
    for await (const e of entries) {
      for (let l; (l = leftByLinks.pop());) if (forPlanner(l)) yield l;
      const verdict = asked?.entry === e ? asked.verdict : o.onEntry?.(e);
      asked = undefined;
      // Not every verdict is awaited below (a later name of a hard link is linked to its first):
      // one left alone must not become an unhandled rejection; awaiting still sees its error.
      if (verdict instanceof Promise) verdict.catch(() => {});
      try {
        switch (e.type) {
          case 'dir':
            if (o.dryRun) {
              if (!inDestination(e.path)) change('mkdir', e.path);
              continue;
            }
            // A deep path is reached through descriptors on directories above it: those must exist.
            if (e.path.length > 0 && !dst.isShort(e.path)) await dirMaker.ready();
            makeDir(e);
            s.dirs++;
            dirs.push(e.path);
            continue;
          case 'file': {
            if (e.nlink > 1 && (o.hardLinked?.(e) ?? true)) {
              const inode = `${e.dev}:${e.ino}`;
              const first = firstLink.get(inode);
              if (first) {
                laterLink(e.path, first.path);
                if (--first.left === 0) firstLink.delete(inode);
                continue;
              }
              firstLink.set(inode, { path: e.path, left: e.nlink - 1 });
            }
            s.scannedFiles++;
            s.scannedBytes += e.size;
            // Hooks and lookups that answer at once are not awaited: 10^5 files, 10^5 turns saved each.
            const unchanged = prev && (verdict ?? true);
            const linkIt = unchanged === true || (unchanged instanceof Promise && (await unchanged));
            // mayLink (a WeakSet) only for what goes on past the link batches: few files.
            if (linkIt && o.dryRun) mayLink.add(e);
            if (o.dryRun) {
              await dryRunFile(e);
              continue;
            }
            if (linkIt && fresh) {
              const queued = toLane(e);
              if (queued !== true && queued !== false) await queued;
              if (queued !== false) continue;
            }
            const d = await sameSize(e);
            if (d && o.checksum) {
              const same = sameContents(e, d);
              same.catch(() => {}); // seen when settled
              checking.push({ e, d, linkIt, same });
              if (checking.length >= CHECKS_AHEAD) {
                const next = await settleOldest();
                if (next) yield next;
              }
              continue;
            }
            const next = await place(e, d, !!d && (await sameContents(e, d)), linkIt);
            if (next) yield next;
            continue;
          }
          case 'symlink':
          case 'fifo':
          case 'char':
          case 'block': {
            if (o.dryRun) {
              if (!inDestination(e.path)) change('create', e.path);
              continue;
            }
            await dirMaker.ready();
            const [from, to] = [src.path(e.path), dst.path(e.path)];
            await makeRoom(e);
            rmSync(to, { force: true }); // left by an interrupted run
            if (e.type === 'symlink') native.symlink(native.readlink(from), to);
            else if (e.type === 'fifo') native.mkfifo(to, 0o600);
            else native.mknod(to, (e.mode & 0o170000) | 0o600, e.rdev);
            native.copyMetadata(from, to);
            s.specials++;
            continue;
          }
          case 'socket':
            continue; // a socket is a live endpoint, not data: nothing to copy
        }
      } catch (err) {
        failBefore(e, err);
      }
    }
    while (checking.length > 0) {
      const next = await settleOldest();
      if (next) yield next;
    }
    flushLane();
    while (linking.size > 0) {
      await Promise.race(linking);
      for (let l; (l = leftByLinks.pop());) if (forPlanner(l)) yield l;
    }
    s.scanDone = true;
  }

  // A run with a previous copy to link from has work for them from its first files: they boot
  // (tens of ms each, more from a cold cache) while the scan starts. Here, where the finally
  // below is sure to stop them.
  if (o.linkDest !== undefined && !o.dryRun) workers();
  try {
    const onError = (err: ScanError) =>
      fail(err.path, { code: err.code, errno: err.errno, syscall: err.syscall, message: err.message });
    const admit = o.admit;
    // Layouts: read from Lustre, or recorded by an earlier copy off Lustre and now going back on.
    const layoutsFrom = srcLustre.lustre
      ? lustreLayouts
      : dstLustre.lustre && layouts.active
        ? recordedLayouts
        : undefined;
    const scanned = scan(srcRoot, {
      oneFileSystem: o.oneFileSystem,
      signal: o.signal,
      onError,
      prune: admit ? (e) => prune(e) || !admit(e) : prune,
      // Not before an entry has its layout.
      claim: fresh && !layoutsFrom ? claimLink : undefined,
    });
    const entries = layoutsFrom ? layoutsFrom(scanned, src) : scanned;
    for await (const unit of planUnitsAsync(filesToCopy(entries), plan)) {
      if (o.signal?.aborted || poolFailure) break;
      if (unit.kind === 'chunk') chunkPlanned(unit);
      if (unit.kind === 'chunk' && chunkNeedsNoCopy(unit)) {
        const c = chunked.get(key(unit.entry.path))!;
        c.verified = false; // nothing of it was re-read in this run
        if (!c.journal.done.has(unit.offset)) c.holes.push(unit.offset);
        skippedBytes += unit.bytes;
        chunkDone(unit.entry.path, true);
        continue;
      }
      await scheduler.submit(unit);
    }
    await dirMaker.ready(); // those with nothing copied into them too
    await scheduler.drain();
    const failure = poolFailure ?? laneFailure ?? dirMaker.failure;
    if (failure) throw failure.error;
  } catch (err) {
    if (!o.signal?.aborted) {
      // What still runs uses the roots' anchors: it ends before they are closed.
      await Promise.allSettled([...linking, scheduler.settle(), dirMaker.ready()]);
      release();
      throw err;
    }
  } finally {
    clearInterval(ticker);
    throttle?.stop();
    await destination?.close();
    o.signal?.removeEventListener('abort', onAbort);
    // Before the pool goes: what still runs in it ends (an abort stops copies between buffers)
    // and its outcomes are recorded. A worker terminated inside a native call takes the process.
    await Promise.allSettled([...linking, dirMaker.ready(), scheduler.settle()]);
    await (poolDestroyed ?? pool?.destroy());
    // Large files left unfinished (interrupted, or failed): their journals stay for a rerun.
    for (const c of chunked.values()) c.journal.close(false);
    chunked.clear();
  }
  s.interrupted = !!o.signal?.aborted;
  if (!s.interrupted && o.delete) {
    try {
      s.deleted += await deleteExtraneous(srcRoot, dst, deleting);
    } catch (err) {
      if (!o.signal?.aborted) throw err;
      s.interrupted = true; // stopped while deleting: a rerun goes on
    }
  }
  if (!s.interrupted && !o.dryRun) {
    for (const item of laterLinks.drain()) {
      const at = 4 + item.readUInt32LE(0);
      const l = { path: item.subarray(4, at), target: item.subarray(at) };
      if (failedPaths.has(key(l.target))) {
        fail(l.path, { code: 'LINK_TARGET_FAILED', message: `not linked: ${displayPath(l.target)} failed to copy` });
        continue;
      }
      try {
        const to = dst.path(l.path);
        const target = dst.path(l.target);
        if (sameInode(to, target)) continue; // linked by an earlier run
        rmSync(to, { force: true });
        native.link(target, to);
        s.links++;
      } catch (err) {
        fail(l.path, toErrorRecord(err));
      }
    }
    // Deepest first, so setting a directory's times is the last write into its parent.
    for (const d of dirs.drain()) {
      if (failedPaths.has(key(d))) continue; // not made: reported
      try {
        native.copyMetadata(src.path(d), dst.path(d));
      } catch (err) {
        fail(d, toErrorRecord(err));
      }
    }
  }
  release();
  const summary = { ...s, ...progress() };
  events.emit('progress', progress());
  return summary;
}

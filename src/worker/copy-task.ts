// The piscina task that moves data: a batch of small files, or one chunk of a large file.
// Runs in a worker thread and blocks it in native calls; takes and returns plain data only.
// Paths arrive ready to use (the engine resolves long ones), results come back by index.
import { native, fsConstants as C } from '../native.js';
import type { FsyncPolicy, NativeFile } from '../native.js';
import { toErrorRecord, displayPath, sourceChanged, StripemoverError } from '../errors.js';
import { sameVersion } from '../model/entry.js';
import type { ErrorRecord } from '../errors.js';
import type { Layout } from '../layout/model.js';

export type { FsyncPolicy };

export interface TaskOptions {
  fsync: FsyncPolicy;
  hash: boolean;
  /** Re-read what was written, from the device (O_DIRECT), and compare digests. */
  verify: boolean;
  checksum: boolean;
  /** Look for a complete copy at the destination before copying (the engine may have already). */
  checkExisting: boolean;
  /** Int32Array over a SharedArrayBuffer; nonzero stops copies between buffers. */
  cancel?: Int32Array;
  /** Shared bandwidth budget (BigInt64Array over a SharedArrayBuffer), refilled by the engine. */
  budget?: BigInt64Array;
  /** Copies may be reflink clones (see CopyOptions.reflink), of their source too with cloneSource. */
  reflink: boolean;
  cloneSource: boolean;
  /** See SyncOptions.linkXattrs. */
  compareXattrs: boolean;
}

export interface BatchTask extends TaskOptions {
  kind: 'batch';
  /** Path lists (see PathList), one path per file. */
  sources: Uint8Array;
  destinations: Uint8Array;
  /** rsync --link-dest: the previous copy's file for each ('' for none), hard-linked if unchanged. */
  previous?: Uint8Array;
  /** An earlier version of each ('' for none) whose blocks the copy may share (see native FileJob). */
  bases?: Uint8Array;
  /** On a Lustre destination: the layout to create each file with (null: the directory's default). */
  layouts?: (Layout | null)[];
  keepOsts?: boolean;
  /** Off Lustre: each source layout as JSON, recorded in an xattr of the copy. */
  layoutRecords?: (string | null)[];
}

/** Byte ranges of a large file (one range, or one OST's stripes) into its (already sized) temporary file. */
export interface ChunkTask extends TaskOptions {
  kind: 'chunk';
  source: Uint8Array;
  temporary: Uint8Array;
  ranges: { offset: number; length: number }[];
  /** The source's stat at scan time: a chunk of a file that changed since is refused. */
  expect: { size: number; mtimeNs: bigint; ctimeNs: bigint };
  /** The temporary file is a clone of an earlier version: write only the blocks that differ. */
  writeChanges?: boolean;
}

/** rsync --link-dest for files the caller expects unchanged, grouped by directory: see native linkFiles. */
export interface LinkTask extends TaskOptions {
  kind: 'link';
  /** Path list: per group, its source, destination and previous copy's directories. */
  directories: Uint8Array;
  /** Path list of names; an empty one starts the next group. */
  names: Uint8Array;
  /** Per file as scanned: size, mtime, and mode, uid, gid (three each). */
  sizes: Float64Array;
  mtimesNs: BigInt64Array;
  owners: Uint32Array;
}

export type CopyTask = BatchTask | ChunkTask;

/** Per file of a LinkTask: 0 linked, 1 skipped, 2 left for a copy, 3 failed (in `failed`). */
export interface LinkResult {
  statuses: Uint8Array;
  failed: { index: number; error: ErrorRecord }[];
}

export const LINKED = 0;
export const LINK_SKIPPED = 1;
export const LINK_LEFT = 2;
export const LINK_FAILED = 3;

/** The outcome of file `index` of the task (always 0 for a chunk). */
export interface CopiedFile {
  index: number;
  bytes: number;
  dataBytes: number;
  digest?: string;
  /** Already at the destination from an earlier run (same size and mtime): not copied again. */
  skipped?: boolean;
  /** Hard-linked from the previous copy (linkDest), not copied. */
  linked?: boolean;
  /** Bytes left shared with the file's source or base (a reflink clone), not written. */
  sharedBytes?: number;
  verified?: boolean;
}

export interface TaskResult {
  copied: CopiedFile[];
  failed: { index: number; error: ErrorRecord }[];
}

/** The options of native copyFiles and linkFiles, out of a task. */
function filesOptions(t: TaskOptions & { keepOsts?: boolean }) {
  const { fsync, hash, verify, checksum, checkExisting, cancel, budget, keepOsts, reflink, cloneSource } = t;
  const { compareXattrs } = t;
  return {
    fsync,
    hash,
    verify,
    checksum,
    checkExisting,
    cancel,
    budget,
    keepOsts,
    reflink,
    cloneSource,
    compareXattrs,
  };
}

/** Small files: the whole batch in one native call (see native copyFiles). */
function runBatch(t: BatchTask, result: TaskResult): void {
  const options = filesOptions(t);
  const { sources, destinations, previous, layouts, layoutRecords, bases } = t;
  native.copyFiles(options, sources, destinations, previous, layouts, layoutRecords, bases).forEach((r, index) => {
    if (r.status === 'failed') result.failed.push({ index, error: r.error! });
    else {
      const { bytes, dataBytes, sharedBytes, digest, verified } = r;
      result.copied.push({
        index,
        bytes,
        dataBytes,
        sharedBytes,
        digest,
        verified,
        skipped: r.status === 'skipped',
        linked: r.status === 'linked',
      });
    }
  });
}

function copyChunk(t: ChunkTask): CopiedFile {
  const s = new native.File(t.source, C.O_RDONLY, 0, { direct: true });
  let d: NativeFile | undefined;
  try {
    d = new native.File(t.temporary, C.O_RDWR, 0, { direct: true });
    if (!sameVersion(s.stat(), t.expect)) throw sourceChanged(t.source);
    // One digest over the unit's ranges in order; verify re-reads the same ranges.
    const hash = t.hash ? new native.Xxh64() : undefined;
    let bytes = 0;
    let dataBytes = 0;
    let sharedBytes = 0;
    for (const { offset, length } of t.ranges) {
      const r = native.copyRange(s, d, {
        srcOffset: offset,
        length,
        sparse: true,
        writeChanges: t.writeChanges,
        hash,
        cancel: t.cancel,
        budget: t.budget,
      });
      if (r.bytes !== length) throw sourceChanged(t.source);
      bytes += r.bytes;
      dataBytes += r.dataBytes;
      sharedBytes += r.sharedBytes ?? 0;
    }
    if (!sameVersion(s.stat(), t.expect)) throw sourceChanged(t.source);
    if (t.fsync !== 'none') d.fdatasync();
    const digest = hash?.digest();
    if (t.verify) {
      const again = new native.Xxh64();
      for (const { offset, length } of t.ranges) native.copyRange(d, null, { srcOffset: offset, length, hash: again });
      if (again.digest() !== digest) {
        const shown = displayPath(Buffer.from(t.temporary));
        throw new StripemoverError(
          'VERIFY_MISMATCH',
          `destination differs from source in bytes ${t.ranges[0]!.offset}+ (${bytes} bytes): ${shown}`,
          shown,
        );
      }
    }
    return { index: 0, bytes, dataBytes, sharedBytes, digest, verified: t.verify };
  } finally {
    s.close();
    d?.close();
  }
}

/**
 * Every error is answered as data, charged to the task's files: a task the pool rejects is then
 * always the worker's own failure (see the engine's workerFailed), never a file's.
 */
export default function run(task: CopyTask | LinkTask): TaskResult | LinkResult {
  if (task.kind === 'link') {
    const { directories, names, sizes, mtimesNs, owners } = task;
    try {
      const r = native.linkFiles(filesOptions(task), directories, names, sizes, mtimesNs, owners);
      return { statuses: r.statuses, failed: r.failures };
    } catch (err) {
      const error = toErrorRecord(err);
      return {
        statuses: new Uint8Array(sizes.length).fill(LINK_FAILED),
        failed: Array.from(sizes, (_, index) => ({ index, error })),
      };
    }
  }
  const result: TaskResult = { copied: [], failed: [] };
  if (task.kind === 'batch') {
    try {
      runBatch(task, result);
    } catch (err) {
      const error = toErrorRecord(err);
      let files = 0;
      for (const byte of task.sources) if (byte === 0) files++; // one NUL ends each path
      result.failed = Array.from({ length: files }, (_, index) => ({ index, error }));
    }
  } else {
    try {
      result.copied.push(copyChunk(task));
    } catch (err) {
      result.failed.push({ index: 0, error: toErrorRecord(err, displayPath(Buffer.from(task.source))) });
    }
  }
  return result;
}

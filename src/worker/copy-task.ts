// The piscina task that moves data: a batch of small files, or one chunk of a large file.
// Runs in a worker thread and blocks it in native calls; takes and returns plain data only.
// Paths arrive ready to use (the engine resolves long ones), results come back by index.
import { native, fsConstants as C } from '../native.js';
import type { FsyncPolicy, NativeFile } from '../native.js';
import { toErrorRecord, displayPath, sourceChanged, StripemoverError } from '../errors.js';
import { sameVersion } from '../model/entry.js';
import type { ErrorRecord } from '../errors.js';

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
}

export interface BatchTask extends TaskOptions {
  kind: 'batch';
  sources: Uint8Array[];
  destinations: Uint8Array[];
  /** rsync --link-dest: the previous copy's file for each, hard-linked if unchanged. */
  previous?: (Uint8Array | null)[];
}

/** One range of a large file into its (already sized) temporary file. */
export interface ChunkTask extends TaskOptions {
  kind: 'chunk';
  source: Uint8Array;
  temporary: Uint8Array;
  offset: number;
  length: number;
  /** The source's stat at scan time: a chunk of a file that changed since is refused. */
  expect: { size: number; mtimeNs: bigint; ctimeNs: bigint };
}

export type CopyTask = BatchTask | ChunkTask;

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
  verified?: boolean;
}

export interface TaskResult {
  copied: CopiedFile[];
  failed: { index: number; error: ErrorRecord }[];
}

/** Small files: the whole batch in one native call (see native copyFiles). */
function runBatch(t: BatchTask, result: TaskResult): void {
  const { fsync, hash, verify, checksum, checkExisting, cancel, budget } = t;
  const options = { fsync, hash, verify, checksum, checkExisting, cancel, budget };
  native.copyFiles(options, t.sources, t.destinations, t.previous).forEach((r, index) => {
    if (r.status === 'failed') result.failed.push({ index, error: r.error! });
    else {
      const { bytes, dataBytes, digest, verified } = r;
      result.copied.push({
        index,
        bytes,
        dataBytes,
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
    const hash = t.hash ? new native.Xxh64() : undefined;
    const range = { srcOffset: t.offset, length: t.length, sparse: true };
    const r = native.copyRange(s, d, { ...range, hash, cancel: t.cancel, budget: t.budget });
    if (!sameVersion(s.stat(), t.expect) || r.bytes !== t.length) throw sourceChanged(t.source);
    if (t.fsync !== 'none') d.fdatasync();
    const digest = hash?.digest();
    if (t.verify) {
      const again = new native.Xxh64();
      native.copyRange(d, null, { ...range, hash: again });
      if (again.digest() !== digest) {
        const shown = displayPath(Buffer.from(t.temporary));
        throw new StripemoverError(
          'VERIFY_MISMATCH',
          `destination differs from source at offset ${t.offset}: ${shown}`,
          shown,
        );
      }
    }
    return { index: 0, bytes: r.bytes, dataBytes: r.dataBytes, digest, verified: t.verify };
  } finally {
    s.close();
    d?.close();
  }
}

export default function run(task: CopyTask): TaskResult {
  const result: TaskResult = { copied: [], failed: [] };
  if (task.kind === 'batch') {
    runBatch(task, result);
  } else {
    try {
      result.copied.push(copyChunk(task));
    } catch (err) {
      result.failed.push({ index: 0, error: toErrorRecord(err, displayPath(Buffer.from(task.source))) });
    }
  }
  return result;
}

// The piscina task that moves data: a batch of small files, or one chunk of a large file.
// Runs in a worker thread and blocks it in native calls; takes and returns plain data only.
import { native, fsConstants as C } from '../native.js';
import type { FsyncPolicy, NativeStat } from '../native.js';
import { toErrorRecord, displayPath, StripemoverError } from '../errors.js';
import type { ErrorRecord } from '../errors.js';
import { joinPath, tempPath } from '../targets/posix/paths.js';

export type { FsyncPolicy };

export interface TaskOptions {
  srcRoot: Uint8Array;
  dstRoot: Uint8Array;
  fsync: FsyncPolicy;
  hash: boolean;
  /** Re-read what was written, from the device (O_DIRECT), and compare digests. */
  verify: boolean;
  checksum: boolean;
  /** Look for a complete copy at the destination before copying (the engine may have already). */
  checkExisting: boolean;
  linkDest?: Uint8Array;
  /** Int32Array over a SharedArrayBuffer; nonzero stops copies between buffers. */
  cancel?: Int32Array;
  /** Shared bandwidth budget (BigInt64Array over a SharedArrayBuffer), refilled by the engine. */
  budget?: BigInt64Array;
}

export interface BatchTask extends TaskOptions {
  kind: 'batch';
  files: Uint8Array[];
}

/** One range of a large file into its (already sized) temporary file. */
export interface ChunkTask extends TaskOptions {
  kind: 'chunk';
  path: Uint8Array;
  offset: number;
  length: number;
  /** The source's stat at scan time: a chunk of a file that changed since is refused. */
  expect: { size: number; mtimeNs: bigint; ctimeNs: bigint };
}

export type CopyTask = BatchTask | ChunkTask;

export interface CopiedFile {
  path: Uint8Array;
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
  failed: { path: Uint8Array; error: ErrorRecord }[];
}

const sameVersion = (a: Pick<NativeStat, 'size' | 'mtimeNs' | 'ctimeNs'>, b: typeof a) =>
  a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs;

function changed(path: Buffer): StripemoverError {
  const shown = displayPath(path);
  return new StripemoverError('SOURCE_CHANGED', `source changed while it was being read: ${shown}`, shown);
}

/** Small files: the whole batch in one native call (see native copyFiles). */
function runBatch(t: BatchTask, result: TaskResult): void {
  const { srcRoot, dstRoot, fsync, hash, verify, checksum, checkExisting, linkDest, cancel, budget } = t;
  const options = { srcRoot, dstRoot, fsync, hash, verify, checksum, checkExisting, linkDest, cancel, budget };
  const outcomes = native.copyFiles(options, t.files);
  outcomes.forEach((r, i) => {
    const path = t.files[i]!;
    if (r.status === 'failed') result.failed.push({ path, error: r.error! });
    else
      result.copied.push({
        path,
        bytes: r.bytes,
        dataBytes: r.dataBytes,
        digest: r.digest,
        skipped: r.status === 'skipped',
        linked: r.status === 'linked',
        verified: r.verified,
      });
  });
}

function copyChunk(t: ChunkTask): CopiedFile {
  const rel = Buffer.from(t.path);
  const src = joinPath(t.srcRoot, rel);
  const s = new native.File(src, C.O_RDONLY, 0, { direct: true });
  const d = new native.File(tempPath(t.dstRoot, rel), C.O_RDWR, 0, { direct: true });
  try {
    if (!sameVersion(s.stat(), t.expect)) throw changed(src);
    const hash = t.hash ? new native.Xxh64() : undefined;
    const r = native.copyRange(s, d, {
      srcOffset: t.offset,
      length: t.length,
      sparse: true,
      hash,
      cancel: t.cancel,
      budget: t.budget,
    });
    if (!sameVersion(s.stat(), t.expect) || r.bytes !== t.length) throw changed(src);
    if (t.fsync !== 'none') d.fdatasync();
    const digest = hash?.digest();
    if (t.verify) {
      const again = new native.Xxh64();
      native.copyRange(d, null, { srcOffset: t.offset, length: t.length, sparse: true, hash: again });
      if (again.digest() !== digest) {
        const shown = displayPath(joinPath(t.dstRoot, rel));
        throw new StripemoverError(
          'VERIFY_MISMATCH',
          `destination differs from source at offset ${t.offset}: ${shown}`,
          shown,
        );
      }
    }
    return { path: rel, bytes: r.bytes, dataBytes: r.dataBytes, digest, verified: t.verify };
  } finally {
    s.close();
    d.close();
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
      result.failed.push({
        path: task.path,
        error: toErrorRecord(err, displayPath(joinPath(task.srcRoot, task.path))),
      });
    }
  }
  return result;
}

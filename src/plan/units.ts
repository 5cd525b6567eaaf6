// The planning stage: scanned entries in, work units for the worker pool out. Pure: no I/O, no addon.
//
// Regular files up to `largeFileThreshold` bytes are packed into batches, one open batch per
// stream; larger files are cut into units of at most `chunkSize` bytes. A file whose Lustre
// layout is known is cut along its stripes: each unit holds bytes of one stripe only (so of one
// OST) and is tagged with that OST's stream; a small file goes with the OST of its first byte. Every unit has an id that
// depends only on the input, so a resumed run plans the same ids and the journal can skip the
// units it has already finished.
import type { Entry } from '../model/entry.js';
import { stripeRuns, targetAt, targetStream } from '../layout/model.js';

const KiB = 1024;
const MiB = 1024 * KiB;
/** Chunk boundaries stay aligned for O_DIRECT on any device we expect (4 KiB sectors). */
export const CHUNK_ALIGNMENT = 4096;

export interface PlanOptions {
  /** Large files are cut into chunks of this many bytes (default 64 MiB); a positive multiple of 4096. */
  chunkSize: number;
  /** Files with size > this are 'chunk' units, the others are batched (default: chunkSize). */
  largeFileThreshold: number;
  /** At most this many files per batch (default 256). */
  batchMaxFiles: number;
  /** At most this many bytes per batch (default 64 MiB); a batch holding one file may exceed it. */
  batchMaxBytes: number;
  /** The stream (queue) a unit belongs to when no layout says better; default `dev:${e.dev}`. */
  streamOf: (e: Entry) => string;
  /** Cut files with a known layout along their stripes, one OST per unit (default true). */
  stripeAware: boolean;
}

/** Regular files of size <= largeFileThreshold (empty files included), copied whole. */
export interface BatchUnit {
  kind: 'batch';
  id: string;
  stream: string;
  /** Sum of the files' sizes. */
  bytes: number;
  files: Entry[];
}

/**
 * Byte ranges of one large file (one contiguous range, or the stripes of one OST): unit `index`
 * of the file's units, `last` on the final one the planner makes for it.
 */
export interface ChunkUnit {
  kind: 'chunk';
  id: string;
  stream: string;
  /** The sum of the ranges' lengths. */
  bytes: number;
  entry: Entry;
  /** In file order, disjoint. */
  ranges: ChunkRange[];
  /** ranges[0].offset: distinct for distinct units of a file (the resume journal's key). */
  offset: number;
  index: number;
  last: boolean;
}

export type WorkUnit = BatchUnit | ChunkUnit;

export interface ChunkRange {
  offset: number;
  length: number;
}

const defaultStreamOf = (e: Entry): string => `dev:${e.dev}`;

function isPositiveInteger(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n > 0;
}

/** Fills in the defaults and checks every option; throws a TypeError naming the bad one. */
export function resolvePlanOptions(options: Partial<PlanOptions> = {}): PlanOptions {
  if (typeof options !== 'object' || options === null) throw new TypeError('plan options must be an object');
  const chunkSize = options.chunkSize ?? 64 * MiB;
  if (!isPositiveInteger(chunkSize) || chunkSize % CHUNK_ALIGNMENT !== 0) {
    throw new TypeError(`chunkSize must be a positive multiple of ${CHUNK_ALIGNMENT} bytes, got ${String(chunkSize)}`);
  }
  const largeFileThreshold = options.largeFileThreshold ?? chunkSize;
  if (typeof largeFileThreshold !== 'number' || !Number.isSafeInteger(largeFileThreshold) || largeFileThreshold < 0) {
    throw new TypeError(`largeFileThreshold must be a non-negative integer, got ${String(largeFileThreshold)}`);
  }
  const batchMaxFiles = options.batchMaxFiles ?? 256;
  if (!isPositiveInteger(batchMaxFiles)) {
    throw new TypeError(`batchMaxFiles must be a positive integer, got ${String(batchMaxFiles)}`);
  }
  const batchMaxBytes = options.batchMaxBytes ?? 64 * MiB;
  if (!isPositiveInteger(batchMaxBytes)) {
    throw new TypeError(`batchMaxBytes must be a positive integer, got ${String(batchMaxBytes)}`);
  }
  const streamOf = options.streamOf ?? defaultStreamOf;
  if (typeof streamOf !== 'function') throw new TypeError('streamOf must be a function (entry) => string');
  const stripeAware = options.stripeAware ?? true;
  return { chunkSize, largeFileThreshold, batchMaxFiles, batchMaxBytes, streamOf, stripeAware };
}

function* ranges(size: number, chunkSize: number): Generator<ChunkRange> {
  for (let offset = 0; offset < size; offset += chunkSize) {
    yield { offset, length: Math.min(chunkSize, size - offset) };
  }
}

function checkSize(size: unknown, what: string): asserts size is number {
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
    throw new RangeError(`${what} must be a non-negative safe integer, got ${String(size)}`);
  }
}

/**
 * The exact cover of [0, size) by consecutive ranges of chunkSize bytes, the last one shorter
 * if chunkSize does not divide size; empty for size 0. Any positive chunkSize is accepted here
 * (the planner's own option must also be a multiple of 4096).
 */
export function chunkRanges(size: number, chunkSize: number): ChunkRange[] {
  checkSize(size, 'size');
  if (!isPositiveInteger(chunkSize))
    throw new TypeError(`chunkSize must be a positive integer, got ${String(chunkSize)}`);
  return Array.from(ranges(size, chunkSize));
}

// ---- ids ----

/** The path bytes as base64url: exact (so distinct paths never collide), shorter than hex. */
function pathText(path: Uint8Array): string {
  // Entries cross worker boundaries, where structuredClone turns a Buffer into a plain Uint8Array.
  return Buffer.from(path.buffer, path.byteOffset, path.byteLength).toString('base64url');
}

/**
 * A 64-bit fingerprint (two 32-bit multiplicative lanes, cyrb53's mixing) of a batch's member
 * paths and sizes. It is not what makes ids unique (the exact first path is); it makes the id of
 * a batch change when its members do, so a resumed run over a changed tree does not take a
 * different batch with the same first file and count for one already done.
 */
class Fingerprint {
  #h1 = 0xdeadbeef;
  #h2 = 0x41c6ce57;

  #word(w: number): void {
    this.#h1 = Math.imul(this.#h1 ^ w, 2654435761);
    this.#h2 = Math.imul(this.#h2 ^ w, 1597334677);
  }

  bytes(data: Uint8Array): void {
    this.number(data.length);
    for (let i = 0; i < data.length; i++) this.#word(data[i]!);
  }

  number(n: number): void {
    this.#word(n >>> 0);
    this.#word(Math.floor(n / 0x1_0000_0000) >>> 0);
  }

  digest(): string {
    let h1 = this.#h1;
    let h2 = this.#h2;
    h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
    h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
    return (h2 >>> 0).toString(16).padStart(8, '0') + (h1 >>> 0).toString(16).padStart(8, '0');
  }
}

/**
 * The stable id of a unit, recomputed from its content (a unit's `id` is always unitKey(unit), so
 * the journal can check a unit it reads back). Formats, the path always last so each is parseable:
 *
 *   batch  `b:<count>:<fingerprint of member paths and sizes>:<base64url of the first path>`
 *   chunk  `c:<first offset>+<bytes>[*<ranges>]/<file size>:<base64url of the path>`
 *
 * Within one plan the paths are distinct, and so are the first files of distinct batches, and
 * the offsets of distinct chunks of a file: distinct units never share an id.
 */
export function unitKey(u: WorkUnit): string {
  if (u.kind === 'chunk') {
    const n = u.ranges.length > 1 ? `*${u.ranges.length}` : '';
    return `c:${u.offset}+${u.bytes}${n}/${u.entry.size}:${pathText(u.entry.path)}`;
  }
  const first = u.files[0];
  if (first === undefined) throw new RangeError('a batch unit holds at least one file');
  const fp = new Fingerprint();
  for (const f of u.files) {
    fp.bytes(f.path);
    fp.number(f.size);
  }
  return `b:${u.files.length}:${fp.digest()}:${pathText(first.path)}`;
}

// ---- the planner ----

interface OpenBatch {
  stream: string;
  bytes: number;
  files: Entry[];
}

const NONE: readonly WorkUnit[] = Object.freeze([]);

/**
 * The state machine both generators drive: push every entry, then flush once at the end. Holds
 * at most one open batch per stream; a stream with nothing pending holds nothing.
 */
export class Planner {
  readonly options: Readonly<PlanOptions>;
  readonly #open = new Map<string, OpenBatch>();

  constructor(options?: Partial<PlanOptions>) {
    this.options = Object.freeze(resolvePlanOptions(options));
  }

  /** How many batches are open (at most one per stream). */
  get openBatches(): number {
    return this.#open.size;
  }

  /**
   * Takes one entry and returns the units it completes: nothing for non-files; the full batch(es)
   * for a small file; all chunks of a large file. The planner's state is updated before push
   * returns, but a large file's chunks are produced lazily as the result is iterated (a 10 TiB
   * file is 163840 chunks of 64 MiB), so iterate it before or after the next push, as you like.
   */
  push(entry: Entry): Iterable<WorkUnit> {
    if (entry.type !== 'file') return NONE;
    checkSize(entry.size, 'entry size');
    const stream = this.options.streamOf(entry);
    if (typeof stream !== 'string') throw new TypeError(`streamOf must return a string, got ${typeof stream}`);
    const layout = this.options.stripeAware ? entry.layout : undefined;
    if (entry.size > this.options.largeFileThreshold) return this.#chunks(entry, stream);
    const first = layout && entry.size > 0 ? targetStream(targetAt(layout, 0)) : undefined;
    return this.#batch(entry, first ?? stream);
  }

  /** Closes every open batch, oldest first (the order they were opened in), and returns them. */
  flush(): WorkUnit[] {
    const out = Array.from(this.#open.values(), (b) => toUnit(b));
    this.#open.clear();
    return out;
  }

  *#chunks(entry: Entry, stream: string): Generator<ChunkUnit> {
    const { chunkSize, stripeAware } = this.options;
    const runs =
      stripeAware && entry.layout
        ? stripeRuns(entry.layout, entry.size, chunkSize)
        : (function* () {
            for (const r of ranges(entry.size, chunkSize)) yield { stream: undefined, ranges: [r], bytes: r.length };
          })();
    let index = 0;
    // One unit behind, so the last one can be marked as such.
    let held: ChunkUnit | undefined;
    for (const run of runs) {
      if (held) yield held;
      held = {
        kind: 'chunk',
        id: '',
        stream: run.stream ?? stream,
        bytes: run.bytes,
        entry,
        ranges: run.ranges,
        offset: run.ranges[0]!.offset,
        index: index++,
        last: false,
      };
      held.id = unitKey(held);
    }
    if (held) {
      held.last = true;
      yield held;
    }
  }

  #batch(entry: Entry, stream: string): WorkUnit[] {
    const { batchMaxFiles, batchMaxBytes } = this.options;
    const out: WorkUnit[] = [];
    let open = this.#open.get(stream);
    if (open !== undefined && open.bytes + entry.size > batchMaxBytes) {
      out.push(this.#close(open));
      open = undefined;
    }
    if (open === undefined) {
      open = { stream, bytes: 0, files: [] };
      this.#open.set(stream, open);
    }
    open.files.push(entry);
    open.bytes += entry.size;
    if (open.files.length >= batchMaxFiles || open.bytes >= batchMaxBytes) out.push(this.#close(open));
    return out;
  }

  #close(open: OpenBatch): BatchUnit {
    this.#open.delete(open.stream);
    return toUnit(open);
  }
}

function toUnit(open: OpenBatch): BatchUnit {
  const unit: BatchUnit = { kind: 'batch', id: '', stream: open.stream, bytes: open.bytes, files: open.files };
  unit.id = unitKey(unit);
  return unit;
}

/** Plans work units from scanned entries; options are checked at once, before the first next(). */
export function planUnits(entries: Iterable<Entry>, options?: Partial<PlanOptions>): Generator<WorkUnit> {
  const planner = new Planner(options);
  return (function* () {
    for (const entry of entries) yield* planner.push(entry);
    yield* planner.flush();
  })();
}

/** planUnits over an async source (the scan's stream), with the same units in the same order. */
export function planUnitsAsync(
  entries: AsyncIterable<Entry>,
  options?: Partial<PlanOptions>,
): AsyncGenerator<WorkUnit> {
  const planner = new Planner(options);
  return (async function* () {
    for await (const entry of entries) yield* planner.push(entry);
    yield* planner.flush();
  })();
}

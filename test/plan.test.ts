// The planning stage: chunk covers, batching limits, streams, ids, and a seeded property test
// checking every byte of every file is planned exactly once against a per-byte count.
import t from 'tap';
import type { Entry, EntryType } from '../src/model/entry.js';
import { prng } from './helpers/fixtures.js';
import { pieces, targetStream, type Layout } from '../src/layout/model.js';
import {
  Planner,
  chunkRanges,
  planUnits,
  planUnitsAsync,
  resolvePlanOptions,
  unitKey,
  type BatchUnit,
  type ChunkUnit,
  type PlanOptions,
  type WorkUnit,
} from '../src/plan/index.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
const TiB = 1024 * 1024 * MiB;
const CHUNK = 64 * MiB;

let nextIno = 1n;
/** A scanned entry; everything but path, size and what `over` sets is plausible filler. */
function entry(path: string | Buffer, size = 0, over: Partial<Entry> = {}): Entry {
  const type = over.type ?? 'file';
  return {
    path: typeof path === 'string' ? Buffer.from(path) : path,
    type,
    mode: (type === 'file' ? 0o100000 : type === 'dir' ? 0o040000 : 0o120000) | 0o644,
    uid: 1000,
    gid: 1000,
    size,
    blocks: Math.ceil(size / 512),
    dev: 1,
    ino: nextIno++,
    nlink: 1,
    rdev: 0,
    atimeNs: 0n,
    mtimeNs: 0n,
    ctimeNs: 0n,
    ...over,
  };
}

async function* slowly<T>(items: Iterable<T>): AsyncGenerator<T> {
  let i = 0;
  for (const item of items) {
    if (i++ % 3 === 0) await new Promise((resolve) => setImmediate(resolve));
    yield item;
  }
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

const batches = (units: WorkUnit[]): BatchUnit[] => units.filter((u): u is BatchUnit => u.kind === 'batch');
const chunks = (units: WorkUnit[]): ChunkUnit[] => units.filter((u): u is ChunkUnit => u.kind === 'chunk');
const names = (b: BatchUnit): string[] => b.files.map((f) => f.path.toString());

/** Why `ranges` is not the ordered exact cover of [0, size) by chunkSize pieces, or null if it is. */
function coverProblem(ranges: Array<{ offset: number; length: number }>, size: number, chunkSize: number) {
  if (ranges.length !== Math.ceil(size / chunkSize)) return `${ranges.length} ranges`;
  let end = 0;
  for (const [i, r] of ranges.entries()) {
    if (r.offset !== end) return `range ${i} starts at ${r.offset}, not ${end}`;
    if (!(r.length > 0 && r.length <= chunkSize)) return `range ${i} has length ${r.length}`;
    if (i < ranges.length - 1 && r.length !== chunkSize) return `range ${i} is short but not last`;
    end = r.offset + r.length;
  }
  return end === size ? null : `cover ends at ${end}`;
}

t.test('chunkRanges is an ordered exact cover of [0, size)', async (t) => {
  for (const chunkSize of [1, 3, 4096, CHUNK]) {
    const sizes = [0, 1, chunkSize - 1, chunkSize, chunkSize + 1, 2 * chunkSize - 1, 2 * chunkSize, 10 * chunkSize + 7];
    for (const size of sizes.filter((s) => s >= 0)) {
      t.equal(coverProblem(chunkRanges(size, chunkSize), size, chunkSize), null, `size ${size}, chunk ${chunkSize}`);
    }
  }
  for (const size of [10 * TiB, 10 * TiB + 1, 10 * TiB - 1, 10 * TiB + CHUNK - 1]) {
    t.equal(coverProblem(chunkRanges(size, CHUNK), size, CHUNK), null, `size ${size}, chunk 64 MiB`);
  }
  t.same(chunkRanges(0, CHUNK), [], 'nothing to cover in an empty file');
  t.same(chunkRanges(10 * 4096 + 7, 4096).at(-1), { offset: 10 * 4096, length: 7 }, 'the last range is the tail');
  const big = chunkRanges(10 * TiB + 7, CHUNK);
  t.equal(big.length, 163841);
  t.same(big.at(-1), { offset: 10 * TiB, length: 7 });
  // Near 2^53 the arithmetic must still be exact.
  const huge = Number.MAX_SAFE_INTEGER - 5;
  const hugeChunk = 2 ** 48;
  t.equal(coverProblem(chunkRanges(huge, hugeChunk), huge, hugeChunk), null, 'a size near 2^53');

  // Against a per-byte count for every small size.
  for (const chunkSize of [1, 2, 5, 8]) {
    for (let size = 0; size <= 41; size++) {
      const seen = new Uint8Array(size);
      let outside = 0;
      for (const { offset, length } of chunkRanges(size, chunkSize)) {
        for (let i = offset; i < offset + length; i++) {
          if (i < size) seen[i]!++;
          else outside++;
        }
      }
      t.ok(outside === 0 && seen.every((n) => n === 1), `bytes covered once: size ${size}, chunk ${chunkSize}`);
    }
  }

  for (const [size, chunkSize] of [
    [-1, 4096],
    [1.5, 4096],
    [NaN, 4096],
    [2 ** 53, 4096],
  ] as const) {
    t.throws(() => chunkRanges(size, chunkSize), RangeError, `size ${size} is refused`);
  }
  for (const chunkSize of [0, -4096, 0.5, NaN, Infinity]) {
    t.throws(() => chunkRanges(100, chunkSize), TypeError, `chunk size ${chunkSize} is refused`);
  }
});

t.test('a file one byte either side of the threshold', async (t) => {
  const units = [...planUnits([entry('below', CHUNK - 1), entry('at', CHUNK), entry('above', CHUNK + 1)])];
  const [below, at, above0, above1, ...rest] = units;
  t.equal(rest.length, 0);
  // 'below' fills no batch (64 MiB - 1 B < 64 MiB); 'at' would overflow it, so 'below' goes first.
  t.match(below, { kind: 'batch', bytes: CHUNK - 1, files: [{ size: CHUNK - 1 }] });
  t.match(at, { kind: 'batch', bytes: CHUNK, files: [{ size: CHUNK }] }, 'size == threshold is batched');
  t.match(above0, {
    kind: 'chunk',
    offset: 0,
    ranges: [{ offset: 0, length: CHUNK }],
    bytes: CHUNK,
    index: 0,
    last: false,
  });
  t.match(above1, {
    kind: 'chunk',
    offset: CHUNK,
    ranges: [{ offset: CHUNK, length: 1 }],
    bytes: 1,
    index: 1,
    last: true,
  });
  t.equal((above0 as ChunkUnit).entry.path.toString(), 'above');

  const threshold0 = [...planUnits([entry('empty', 0), entry('one', 1)], { largeFileThreshold: 0 })];
  t.match(threshold0, [
    { kind: 'chunk', offset: 0, bytes: 1, last: true, entry: { size: 1 } },
    { kind: 'batch', bytes: 0, files: [{ size: 0 }] },
  ]);
  t.same(
    threshold0.map((u) => u.kind),
    ['chunk', 'batch'],
    'threshold 0 chunks every non-empty file; empty files are still batched',
  );

  // A threshold above the chunk size: the file is batched whole, alone, although it exceeds batchMaxBytes.
  const wide = [
    ...planUnits([entry('a', 1), entry('big', 3 * CHUNK), entry('c', 1)], { largeFileThreshold: 4 * CHUNK }),
  ];
  t.same(
    wide.map((u) => (u.kind === 'batch' ? names(u) : u.kind)),
    [['a'], ['big'], ['c']],
  );
  t.equal(wide[1]!.bytes, 3 * CHUNK);
});

t.test('batches respect both limits, greedily', async (t) => {
  const sizes: Array<[string, number]> = [
    ['a', 40],
    ['b', 40],
    ['c', 30], // 110 > 100: [a b] closes first
    ['d', 0],
    ['e', 0], // third file: [c d e] is full
    ['f', 100], // exactly batchMaxBytes: closes at once
    ['g', 150], // more than batchMaxBytes (under the threshold): a batch of its own
    ['h', 99],
    ['i', 1], // reaches 100: closes
    ['j', 5], // left open until the end
  ];
  const options = { chunkSize: 4096, batchMaxFiles: 3, batchMaxBytes: 100 };
  const units = [
    ...planUnits(
      sizes.map(([p, s]) => entry(p, s)),
      options,
    ),
  ];
  t.same(
    units.map((u) => (u.kind === 'batch' ? names(u) : 'chunk')),
    [['a', 'b'], ['c', 'd', 'e'], ['f'], ['g'], ['h', 'i'], ['j']],
  );
  t.same(
    units.map((u) => u.bytes),
    [80, 30, 100, 150, 100, 5],
  );

  const empties = [...planUnits(Array.from({ length: 1000 }, (_, i) => entry(`e${i}`, 0)))];
  t.same(
    empties.map((u) => (u as BatchUnit).files.length),
    [256, 256, 256, 232],
    'empty files batch by count (default 256)',
  );
  const mib = [...planUnits(Array.from({ length: 200 }, (_, i) => entry(`m${i}`, MiB)))];
  t.same(
    mib.map((u) => (u as BatchUnit).files.length),
    [64, 64, 64, 8],
    '1 MiB files batch by bytes (default 64 MiB)',
  );
  const one = [...planUnits([entry('x', 1), entry('y', 2)], { batchMaxFiles: 1 })];
  t.same(
    one.map((u) => names(u as BatchUnit)),
    [['x'], ['y']],
  );
});

t.test('streams: one open batch each, separate, flushed oldest first', async (t) => {
  const top = (e: Entry) => e.path.toString().split('/')[0]!;
  const list = [
    entry('s1/a', 1),
    entry('s2/b', 1),
    entry('s1/c', 1), // s1 full: [a c]
    entry('s2/d', 1), // s2 full: [b d]
    entry('s2/e', 1), // s2 opens again, before s1 does
    entry('s1/f', 1),
    entry('s3/big', 4096 + 1), // chunks carry their stream too
  ];
  const units = [...planUnits(list, { chunkSize: 4096, batchMaxFiles: 2, streamOf: top })];
  t.same(
    units.map((u) => [u.stream, u.kind === 'batch' ? names(u) : `${u.entry.path}@${u.offset}`]),
    [
      ['s1', ['s1/a', 's1/c']],
      ['s2', ['s2/b', 's2/d']],
      ['s3', 's3/big@0'],
      ['s3', 's3/big@4096'],
      ['s2', ['s2/e']],
      ['s1', ['s1/f']],
    ],
  );

  // The default stream is the device.
  const byDev = [...planUnits([entry('a', 1, { dev: 7 }), entry('b', 1, { dev: 9 }), entry('c', 1, { dev: 7 })])];
  t.same(
    byDev.map((u) => [u.stream, names(u as BatchUnit)]),
    [
      ['dev:7', ['a', 'c']],
      ['dev:9', ['b']],
    ],
  );

  // Never more than one open batch per stream, however long the input.
  const planner = new Planner({ batchMaxFiles: 5, streamOf: (e) => `s${e.dev}` });
  let most = 0;
  let files = 0;
  for (let i = 0; i < 10_000; i++) {
    for (const u of planner.push(entry(`f${i}`, i % 7, { dev: i % 3 }))) files += (u as BatchUnit).files.length;
    most = Math.max(most, planner.openBatches);
  }
  t.equal(most, 3);
  for (const u of planner.flush()) files += (u as BatchUnit).files.length;
  t.equal(files, 10_000);
  t.equal(planner.openBatches, 0, 'flush empties the planner');
  t.same(planner.flush(), [], 'a second flush has nothing');

  t.throws(
    () => [...planUnits([entry('a', 1)], { streamOf: () => 3 as unknown as string })],
    new TypeError('streamOf must return a string, got number'),
  );
});

t.test('only regular files make units', async (t) => {
  const types: EntryType[] = ['dir', 'symlink', 'fifo', 'char', 'block', 'socket'];
  const others = types.flatMap((type, i) => [
    entry(`${type}-small`, 4096, { type }),
    entry(`${type}-huge`, 10 * TiB, { type }),
    entry(`${type}-odd`, i === 0 ? NaN : -1, { type }), // never even looked at
  ]);
  t.same([...planUnits(others)], []);
  const files = [entry('f1', 10), entry('f2', CHUNK + 5), entry('f3', 0)];
  const mixed = [
    ...planUnits([others[0]!, files[0]!, ...others.slice(1, 9), files[1]!, ...others.slice(9), files[2]!]),
  ];
  t.strictSame(mixed, [...planUnits(files)], 'interleaved non-files change nothing');
  t.throws(
    () => [...planUnits([entry('bad', -1)])],
    new RangeError('entry size must be a non-negative safe integer, got -1'),
  );
  t.throws(() => [...planUnits([entry('bad', 1.5)])], RangeError);
});

t.test('ids are deterministic, unique, and unitKey recomputes them', async (t) => {
  const paths: Buffer[] = [
    Buffer.alloc(0), // the root, when the root is itself a file
    Buffer.from('a'),
    Buffer.from('a/b'),
    Buffer.from('a/b:c'),
    Buffer.from('a1'),
    Buffer.from('b:3:deadbeef'),
    Buffer.from([0x66, 0xff, 0xfe, 0x2f, 0x80]), // not UTF-8
    Buffer.from([0x66, 0xff, 0xfe, 0x2f, 0x81]),
    Buffer.from('x'.repeat(300)),
    Buffer.from('x'.repeat(301)),
  ];
  const build = () =>
    paths.flatMap((p, i) => [
      entry(Buffer.from(p), i * 3),
      entry(Buffer.concat([p, Buffer.from('/big')]), 3 * 4096 + i),
      entry(Buffer.concat([p, Buffer.from('/tail')]), 1),
    ]);
  const optionSets: Array<Partial<PlanOptions>> = [
    { chunkSize: 4096 },
    { chunkSize: 4096, batchMaxFiles: 1 },
    { chunkSize: 4096, batchMaxFiles: 2, batchMaxBytes: 5 },
    { chunkSize: 8192, largeFileThreshold: 0 },
    { chunkSize: 4096, streamOf: (e) => String(e.path.length % 2) },
  ];
  for (const options of optionSets) {
    const first = [...planUnits(build(), options)];
    const second = [...planUnits(build(), options)]; // new Buffers, new inode numbers
    t.same(
      first.map((u) => u.id),
      second.map((u) => u.id),
      'same input, same ids',
    );
    t.equal(new Set(first.map((u) => u.id)).size, first.length, `${first.length} units, as many ids`);
    t.ok(
      first.every((u) => unitKey(u) === u.id),
      'unitKey(u) is u.id',
    );
    // Entries cloned across a worker boundary have Uint8Array paths; a cloned unit keeps its key.
    const cloned = [...planUnits(structuredClone(build()), options)];
    t.same(
      cloned.map((u) => u.id),
      first.map((u) => u.id),
      'same ids from structured clones',
    );
    t.ok(
      first.every((u) => unitKey(structuredClone(u)) === u.id),
      'unitKey of a cloned unit',
    );
  }

  // A batch's id follows its members, not only its first file and count.
  const batchId = (list: Entry[]) => [...planUnits(list)][0]!.id;
  const base = batchId([entry('a', 1), entry('b', 2)]);
  t.equal(batchId([entry('a', 1), entry('b', 2)]), base);
  t.not(batchId([entry('a', 1), entry('c', 2)]), base, 'another second file');
  t.not(batchId([entry('a', 1), entry('b', 3)]), base, 'another size');
  t.not(batchId([entry('a', 1)]), base, 'another count');
  t.match(base, /^b:2:[0-9a-f]{16}:YQ$/);
  // A chunk's id names its range and the file's size.
  const [c0, c1] = [...planUnits([entry('z', 4097)], { chunkSize: 4096 })];
  t.equal(c0!.id, 'c:0+4096/4097:eg');
  t.equal(c1!.id, 'c:4096+1/4097:eg');
  t.throws(() => unitKey({ kind: 'batch', id: '', stream: 's', bytes: 0, files: [] }), RangeError);
});

t.test('options are checked at once, with clear errors', async (t) => {
  const bad: Array<[Partial<PlanOptions>, RegExp]> = [
    [{ chunkSize: 0 }, /^chunkSize must be a positive multiple of 4096 bytes, got 0$/],
    [{ chunkSize: -4096 }, /^chunkSize .* got -4096$/],
    [{ chunkSize: 4095 }, /^chunkSize .* got 4095$/],
    [{ chunkSize: 4097 }, /^chunkSize/],
    [{ chunkSize: 6144 }, /^chunkSize/],
    [{ chunkSize: 4096.5 }, /^chunkSize/],
    [{ chunkSize: NaN }, /^chunkSize .* got NaN$/],
    [{ chunkSize: Infinity }, /^chunkSize/],
    [{ chunkSize: 2 ** 60 }, /^chunkSize/],
    [{ chunkSize: '4096' as unknown as number }, /^chunkSize/],
    [{ largeFileThreshold: -1 }, /^largeFileThreshold must be a non-negative integer, got -1$/],
    [{ largeFileThreshold: 1.5 }, /^largeFileThreshold/],
    [{ largeFileThreshold: NaN }, /^largeFileThreshold/],
    [{ batchMaxFiles: 0 }, /^batchMaxFiles must be a positive integer, got 0$/],
    [{ batchMaxFiles: 2.5 }, /^batchMaxFiles/],
    [{ batchMaxBytes: 0 }, /^batchMaxBytes must be a positive integer, got 0$/],
    [{ batchMaxBytes: -5 }, /^batchMaxBytes/],
    [{ streamOf: 'dev' as unknown as PlanOptions['streamOf'] }, /^streamOf must be a function/],
  ];
  for (const [options, message] of bad) {
    t.throws(() => new Planner(options), { name: 'TypeError', message }, JSON.stringify(options));
    t.throws(() => planUnits([], options), TypeError, 'planUnits throws before the first next()');
    t.throws(() => planUnitsAsync(slowly([]), options), TypeError, 'so does planUnitsAsync');
  }
  t.throws(() => resolvePlanOptions(null as unknown as Partial<PlanOptions>), TypeError);

  const defaults = resolvePlanOptions();
  t.match(defaults, { chunkSize: CHUNK, largeFileThreshold: CHUNK, batchMaxFiles: 256, batchMaxBytes: CHUNK });
  t.equal(defaults.streamOf(entry('a', 0, { dev: 42 })), 'dev:42');
  t.equal(resolvePlanOptions({ chunkSize: 8192 }).largeFileThreshold, 8192, 'the threshold follows chunkSize');
  t.equal(resolvePlanOptions({ chunkSize: 4096, largeFileThreshold: 0 }).largeFileThreshold, 0);
  t.equal(resolvePlanOptions({ chunkSize: undefined }).chunkSize, CHUNK, 'undefined means the default');
  t.ok(Object.isFrozen(new Planner().options));
});

t.test('planning streams: bounded reads, lazy chunks', async (t) => {
  let pulled = 0;
  function* endless(): Generator<Entry> {
    for (let i = 0; ; i++) {
      pulled++;
      yield entry(`f${i}`, 10);
    }
  }
  const it = planUnits(endless(), { batchMaxFiles: 4 });
  t.match(it.next().value, { kind: 'batch', files: { length: 4 } });
  t.equal(pulled, 4, 'the first batch comes out as soon as it is full');
  it.next();
  t.equal(pulled, 8);
  it.return(undefined);

  // 1 PiB in 4 KiB chunks is 2^38 units: they must be produced as they are asked for.
  const start = Date.now();
  const first: ChunkUnit[] = [];
  for (const u of planUnits([entry('huge', 2 ** 50)], { chunkSize: 4096 })) {
    first.push(u as ChunkUnit);
    if (first.length === 3) break;
  }
  t.same(
    first.map((u) => [u.offset, u.bytes, u.index, u.last]),
    [
      [0, 4096, 0, false],
      [4096, 4096, 1, false],
      [8192, 4096, 2, false],
    ],
  );
  t.ok(Date.now() - start < 1000, 'without making the rest');

  const asyncIt = planUnitsAsync(slowly(endless()), { batchMaxFiles: 3 });
  pulled = 0;
  t.match((await asyncIt.next()).value, { kind: 'batch', files: { length: 3 } });
  t.equal(pulled, 3, 'the async form reads no further ahead');
  await asyncIt.return(undefined);
});

/** A random plan input: unique paths, a mix of types, sizes clustered around chunk boundaries. */
function randomCase(seed: number) {
  const rand = prng(seed);
  const int = (n: number) => Math.floor(rand() * n);
  const chunkSize = 4096 * (1 + int(3));
  const thresholds = [0, 1, chunkSize - 1, chunkSize, chunkSize + 1, 2 * chunkSize, int(4 * chunkSize)];
  const options: Partial<PlanOptions> = {
    chunkSize,
    largeFileThreshold: rand() < 0.3 ? undefined : thresholds[int(thresholds.length)],
    batchMaxFiles: 1 + int(rand() < 0.5 ? 4 : 40),
    batchMaxBytes: 1 + int(rand() < 0.5 ? 3 * chunkSize : 100),
    streamOf: rand() < 0.5 ? undefined : (e: Entry) => `top:${e.path[0]! % 3}`,
  };
  const types: EntryType[] = ['dir', 'symlink', 'fifo', 'char', 'block', 'socket'];
  const entries: Entry[] = [];
  const count = int(80);
  for (let i = 0; i < count; i++) {
    const pick = rand();
    const size =
      pick < 0.15
        ? 0
        : pick < 0.5
          ? int(200)
          : pick < 0.75
            ? Math.max(0, (1 + int(4)) * chunkSize + int(3) - 1)
            : int(6 * chunkSize + 1);
    const type = rand() < 0.15 ? types[int(types.length)]! : 'file';
    const path = Buffer.concat([Buffer.from([0x61 + int(5), 0x2f]), Buffer.from(`${i}`), Buffer.from([int(256)])]);
    entries.push(entry(path, size, { type, dev: int(3) }));
  }
  return { options, entries };
}

t.test('property: every byte of every file is planned exactly once', async (t) => {
  const cases = 250;
  let units = 0;
  for (let seed = 1; seed <= cases; seed++) {
    const { options, entries } = randomCase(seed);
    const o = resolvePlanOptions(options);
    const plan = [...planUnits(entries, options)];
    units += plan.length;
    const problems: string[] = [];
    const fail = (m: string) => problems.length < 5 && problems.push(m);

    // Brute force: one counter per byte of every file, bumped by whatever unit covers it.
    const counts = new Map<Entry, Uint8Array>();
    for (const e of entries) if (e.type === 'file') counts.set(e, new Uint8Array(e.size));
    const bump = (e: Entry, from: number, to: number) => {
      const c = counts.get(e);
      if (c === undefined) return fail(`unit for a non-file or foreign entry ${e.path.toString('hex')}`);
      if (from < 0 || to > e.size || from > to) return fail(`range [${from},${to}) outside a ${e.size} B file`);
      for (let i = from; i < to; i++) c[i]!++;
    };
    const asBatch = new Set<Entry>();
    const asChunk = new Set<Entry>();
    for (const u of plan) {
      if (u.kind === 'batch') {
        for (const f of u.files) {
          bump(f, 0, f.size);
          asBatch.add(f);
          if (f.size > o.largeFileThreshold) fail(`a ${f.size} B file batched over threshold ${o.largeFileThreshold}`);
          if (o.streamOf(f) !== u.stream) fail('a file in a batch of another stream');
        }
        if (u.files.length === 0 || u.files.length > o.batchMaxFiles) fail(`a batch of ${u.files.length} files`);
        if (u.bytes > o.batchMaxBytes && u.files.length > 1)
          fail(`a batch of ${u.bytes} B and ${u.files.length} files`);
        if (u.bytes !== u.files.reduce((s, f) => s + f.size, 0)) fail('batch bytes is not the sum of sizes');
      } else {
        const [range, ...more] = u.ranges;
        if (!range || more.length > 0) fail(`a chunk of ${u.ranges.length} ranges without a layout`);
        bump(u.entry, u.offset, u.offset + u.bytes);
        asChunk.add(u.entry);
        if (u.entry.size <= o.largeFileThreshold) fail(`a ${u.entry.size} B file chunked under the threshold`);
        if (u.bytes > o.chunkSize || u.bytes <= 0 || range?.length !== u.bytes) fail(`a chunk of ${u.bytes} B`);
        if (u.offset % o.chunkSize !== 0) fail(`a chunk at unaligned offset ${u.offset}`);
        if (u.index !== u.offset / o.chunkSize || u.last !== (u.offset + u.bytes === u.entry.size)) {
          fail(`chunk ${u.index} (last: ${u.last}) at ${u.offset} of ${u.entry.size} B`);
        }
        if (o.streamOf(u.entry) !== u.stream) fail('a chunk in another stream');
      }
      if (unitKey(u) !== u.id) fail('unitKey(u) !== u.id');
    }
    for (const [e, c] of counts) {
      if (!c.every((n) => n === 1)) fail(`${e.path.toString('hex')} (${e.size} B) not covered exactly once`);
      if (e.size > 0 && !asBatch.has(e) && !asChunk.has(e)) fail('a file with no unit');
      if (e.size === 0 && !asBatch.has(e)) fail('an empty file not batched');
      if (asBatch.has(e) && asChunk.has(e)) fail('a file both batched and chunked');
    }
    if (new Set(plan.map((u) => u.id)).size !== plan.length) fail('duplicate ids');

    // Batching is greedy and in order: per stream, the batches concatenate to the stream's small
    // files in input order, and no batch could have taken the next batch's first file.
    const small = new Map<string, Entry[]>();
    for (const e of entries) {
      if (e.type !== 'file' || e.size > o.largeFileThreshold) continue;
      const s = o.streamOf(e);
      small.set(s, [...(small.get(s) ?? []), e]);
    }
    const perStream = new Map<string, BatchUnit[]>();
    for (const b of batches(plan)) perStream.set(b.stream, [...(perStream.get(b.stream) ?? []), b]);
    for (const [s, files] of small) {
      const bs = perStream.get(s) ?? [];
      const joined = bs.flatMap((b) => b.files);
      if (joined.length !== files.length || joined.some((f, i) => f !== files[i])) fail(`stream ${s} out of order`);
      for (let i = 0; i + 1 < bs.length; i++) {
        const [a, next] = [bs[i]!, bs[i + 1]!.files[0]!];
        const full = a.files.length >= o.batchMaxFiles || a.bytes >= o.batchMaxBytes;
        if (!full && a.bytes + next.size <= o.batchMaxBytes) fail(`stream ${s}: batch ${i} closed early`);
      }
    }
    if (perStream.size > small.size) fail('batches in a stream with no small files');
    // Chunks of a file are consecutive and in order.
    const cs = chunks(plan);
    for (let i = 0; i < cs.length; i++) {
      const c = cs[i]!;
      if (c.index > 0 && (cs[i - 1]!.entry !== c.entry || cs[i - 1]!.index !== c.index - 1)) fail('chunks interleaved');
    }

    if (problems.length > 0) t.fail(`seed ${seed}: ${problems.join('; ')}`);
  }
  t.pass(`${cases} random plans, ${units} units, all checks held`);
});

t.test('the async form gives the same units as the sync form', async (t) => {
  for (let seed = 1000; seed < 1040; seed++) {
    const { options, entries } = randomCase(seed);
    const sync = [...planUnits(entries, options)];
    const fromAsync = await collect(planUnitsAsync(slowly(entries), options));
    t.strictSame(fromAsync, sync, `seed ${seed}: ${sync.length} units`);
  }
  // And a planner driven by hand gives the same again.
  const { options, entries } = randomCase(7);
  const planner = new Planner(options);
  const byHand = [...entries.flatMap((e) => [...planner.push(e)]), ...planner.flush()];
  t.strictSame(byHand, [...planUnits(entries, options)]);
});

t.test('files with Lustre layouts: per-OST units whose union is exactly the file', async (t) => {
  const striped = (osts: number[], stripeSize = MiB): Layout => ({
    composite: false,
    components: [{ start: 0, end: null, pattern: 0, stripeSize, stripeCount: osts.length, flags: 0, pool: '', osts }],
  });
  const pfl: Layout = {
    composite: true,
    components: [
      { start: 0, end: MiB, pattern: 2, stripeSize: MiB, stripeCount: 0, flags: 0x10, pool: '', osts: [] },
      { start: MiB, end: 256 * MiB, pattern: 0, stripeSize: MiB, stripeCount: 1, flags: 0x10, pool: '', osts: [6] },
      {
        start: 256 * MiB,
        end: null,
        pattern: 0,
        stripeSize: 4 * MiB,
        stripeCount: 4,
        flags: 0x10,
        pool: '',
        osts: [0, 1, 2, 3],
      },
    ],
  };
  const cases: [string, Layout, number][] = [
    ['one stripe', striped([5]), 300 * MiB + 7],
    ['four stripes', striped([1, 3, 5, 7]), 512 * MiB + 4096],
    [
      'sixteen stripes',
      striped(
        Array.from({ length: 16 }, (_, i) => i),
        4 * MiB,
      ),
      GiB + 1,
    ],
    ['PFL: DoM, 1 stripe, 4 stripes', pfl, GiB],
  ];
  for (const [name, layout, size] of cases) {
    const e = entry(name, size, { layout });
    const units = [...planUnits([e])] as ChunkUnit[];
    const covered = new Map<number, number>();
    let problems = 0;
    for (const u of units) {
      let sum = 0;
      for (const r of u.ranges) {
        sum += r.length;
        covered.set(r.offset, (covered.get(r.offset) ?? 0) + r.length);
        // Every stripe piece of the range is on the unit's stream.
        for (const p of pieces(layout, r.offset, r.offset + r.length))
          if (targetStream(p.target) !== u.stream) problems++;
      }
      if (sum !== u.bytes || u.bytes > CHUNK) problems++;
    }
    // Union: sorted ranges tile [0, size) without gap or overlap.
    let at = 0;
    for (const [offset, length] of [...covered].sort((a, b) => a[0] - b[0])) {
      if (offset !== at) problems++;
      at = offset + length;
    }
    t.equal(at, size, `${name}: the units end at the file's end`);
    t.equal(problems, 0, `${name}: ${units.length} units, each on one OST, tiling the file`);
    t.equal(units.filter((u) => u.last).length, 1, `${name}: one unit is marked last`);
    t.ok(units[units.length - 1]!.last, `${name}: and it is the last one made`);
    const streams = new Set(units.map((u) => u.stream));
    const osts = new Set(
      layout.components
        .flatMap((c) => c.osts.map((o) => `ost:${o}`))
        .concat(layout.components.some((c) => c.pattern === 2) ? ['mdt'] : []),
    );
    t.same([...streams].sort(), [...osts].sort(), `${name}: a stream per OST of the layout`);
  }
  // The first units go round-robin over the OSTs, so no OST waits for another's queue to drain.
  const four = [...planUnits([entry('rr', GiB, { layout: striped([1, 3, 5, 7]) })])] as ChunkUnit[];
  t.same(
    four.slice(0, 4).map((u) => u.stream),
    ['ost:1', 'ost:3', 'ost:5', 'ost:7'],
  );
  // A small file goes with the OST of its first byte; stripeAware: false ignores layouts.
  const small = [...planUnits([entry('s', 10, { layout: striped([4]), dev: 9 })])];
  t.equal(small[0]!.stream, 'ost:4');
  const naive = [...planUnits([entry('n', GiB, { layout: striped([1, 3]), dev: 9 })], { stripeAware: false })];
  t.ok(
    naive.every((u) => u.stream === 'dev:9' && (u as ChunkUnit).ranges.length === 1),
    'naive: contiguous, per device',
  );
});

// The native I/O primitives on real files: O_DIRECT, its fallbacks, unaligned tails, sparse
// extents, copy-and-hash, and the async forms.
import t, { type Test } from 'tap';
import { readFileSync, statSync, openSync, writeSync, closeSync, ftruncateSync } from 'node:fs';
import path from 'node:path';
import { native, fsConstants as C } from '../src/native.js';
import { diskDir, shmDir, ramfsDir, isRoot, pseudoRandom, writeRandom, xxhsum } from './helpers/fixtures.js';

const MiB = 1 << 20;
const WRITE = C.O_WRONLY | C.O_CREAT | C.O_TRUNC;

function writeWith(file: string, data: Buffer, direct: boolean) {
  const f = new native.File(file, WRITE, 0o644, { direct });
  const buf = native.alignedBuffer(Math.max(data.length, 1));
  data.copy(buf);
  f.write(buf, 0, data.length, 0);
  const counts = f.ioCounts;
  const wasDirect = f.direct;
  f.close();
  return { counts, wasDirect };
}

function readWith(t: Test, file: string, size: number, direct: boolean, bufSize = 4 * MiB) {
  const f = new native.File(file, C.O_RDONLY, 0, { direct });
  const buf = native.alignedBuffer(bufSize);
  const parts: Buffer[] = [];
  for (let pos = 0; ;) {
    const n = f.read(buf, 0, bufSize, pos);
    if (n === 0) break;
    parts.push(Buffer.from(buf.subarray(0, n)));
    pos += n;
  }
  const out = { data: Buffer.concat(parts), counts: f.ioCounts, direct: f.direct };
  f.close();
  t.equal(out.data.length, size);
  return out;
}

t.test('aligned buffers are real Buffers of the size asked for', async (t) => {
  for (const [size, align] of [
    [4096, 4096],
    [MiB, 65536],
    [4 * MiB, 4096],
    [1, 512],
  ] as const) {
    const b = native.alignedBuffer(size, align);
    t.ok(Buffer.isBuffer(b));
    t.equal(b.length, size);
    b.fill(7);
    t.equal(b[size - 1], 7);
  }
  t.throws(() => native.alignedBuffer(4096, 3000), { code: 'EINVAL' }, 'alignment must be a power of two');
});

t.test('O_DIRECT on the disk: aligned head direct, unaligned tail buffered, bytes exact', async (t) => {
  const dir = diskDir(t);
  const file = path.join(dir, 'tail.bin');
  const data = pseudoRandom(3 * MiB + 123);
  const w = writeWith(file, data, true);
  t.equal(w.wasDirect, true, 'the disk accepts O_DIRECT');
  t.same(w.counts, { directBytes: 3 * MiB, bufferedBytes: 123 });
  t.ok(readFileSync(file).equals(data), 'written bytes are exact');

  const r = readWith(t, file, data.length, true);
  t.ok(r.data.equals(data), 'read bytes are exact');
  // An aligned request over the tail is legal with O_DIRECT: the kernel stops at end of file.
  t.same(r.counts, { directBytes: data.length, bufferedBytes: 0 }, 'everything, tail included, read directly');
});

t.test('an unaligned buffer, offset or alignment falls back to buffered I/O and stays correct', async (t) => {
  const file = path.join(diskDir(t), 'f.bin');
  const data = writeRandom(file, 2 * MiB);
  const f = new native.File(file, C.O_RDONLY, 0, { direct: true, alignment: 65536 });
  const base = native.alignedBuffer(MiB + 65536, 65536);
  const misaligned = base.subarray(4096, 4096 + MiB); // 4 KiB- but not 64 KiB-aligned
  t.equal(f.read(misaligned, 0, MiB, 65536), MiB);
  t.ok(misaligned.equals(data.subarray(65536, 65536 + MiB)));
  t.same(f.ioCounts, { directBytes: 0, bufferedBytes: MiB });
  const aligned = base.subarray(0, MiB);
  t.equal(f.read(aligned, 0, MiB, MiB), MiB);
  t.ok(aligned.equals(data.subarray(MiB, 2 * MiB)));
  t.same(f.ioCounts, { directBytes: MiB, bufferedBytes: MiB });
  t.equal(f.read(aligned, 0, 100, 7), 100, 'unaligned offset');
  t.ok(aligned.subarray(0, 100).equals(data.subarray(7, 107)));
  f.close();
  t.throws(() => new native.File(file, C.O_RDONLY, 0, { alignment: 1000 }), { code: 'EINVAL' });
});

t.test('tmpfs (/dev/shm): round trip with O_DIRECT asked for, whatever the kernel grants', async (t) => {
  const file = path.join(shmDir(t), 'shm.bin');
  const data = pseudoRandom(MiB + 4097);
  writeWith(file, data, true);
  t.ok(readFileSync(file).equals(data));
  const r = readWith(t, file, data.length, true, MiB);
  t.ok(r.data.equals(data));
  t.equal(r.counts.directBytes + r.counts.bufferedBytes, data.length);
});

t.test(
  'a file system that refuses O_DIRECT (EINVAL) gets buffered I/O',
  { skip: !isRoot && 'needs root to mount ramfs' },
  async (t) => {
    const file = path.join(ramfsDir(t), 'r.bin');
    const data = pseudoRandom(2 * MiB + 1);
    const w = writeWith(file, data, true);
    t.equal(w.wasDirect, false, 'ramfs refused O_DIRECT and the open still succeeded');
    t.same(w.counts, { directBytes: 0, bufferedBytes: data.length });
    const r = readWith(t, file, data.length, true);
    t.equal(r.direct, false);
    t.ok(r.data.equals(data));
  },
);

t.test('reads stop at end of file; writes past it extend the file', async (t) => {
  const file = path.join(diskDir(t), 'eof.bin');
  const data = writeRandom(file, 10000);
  const f = new native.File(file, C.O_RDWR, 0, { direct: true });
  const buf = native.alignedBuffer(MiB);
  t.equal(f.read(buf, 0, MiB, 8192), 10000 - 8192, 'short only at EOF');
  t.ok(buf.subarray(0, 10000 - 8192).equals(data.subarray(8192)));
  t.equal(f.read(buf, 0, MiB, 20000), 0, 'nothing past EOF');
  buf.fill(0xab, 0, 4096);
  f.write(buf, 0, 4096, MiB);
  t.equal(f.stat().size, MiB + 4096);
  t.throws(() => f.read(buf, 10, MiB, 0), /outside the buffer/);
  f.close();
});

t.test('sparse: extents are found and holes are recreated without allocating them', async (t) => {
  const dir = diskDir(t);
  const src = path.join(dir, 'sparse.bin');
  const size = 64 * MiB;
  const data = pseudoRandom(MiB, 3);
  const fd = openSync(src, 'w');
  ftruncateSync(fd, size);
  writeSync(fd, data, 0, data.length, 32 * MiB);
  writeSync(fd, data, 0, 100, size - 100); // data right at the end too, unaligned
  closeSync(fd);

  const s = new native.File(src, C.O_RDONLY, 0, { direct: true });
  const extents = s.dataExtents();
  t.ok(extents.length >= 2, 'two data regions');
  t.equal(extents[0]!.offset, 32 * MiB);
  t.ok(extents.every((e) => e.offset % 4096 === 0));
  t.equal(extents.at(-1)!.offset + extents.at(-1)!.length, size);
  t.same(s.dataExtents(0, MiB), [], 'no data in a hole');

  const dst = path.join(dir, 'copy.bin');
  const d = new native.File(dst, WRITE, 0o644, { direct: true });
  d.truncate(size);
  const hash = new native.Xxh64();
  const r = native.copyRange(s, d, { sparse: true, hash });
  d.fsync();
  s.close();
  d.close();
  t.equal(r.bytes, size);
  t.ok(r.dataBytes <= MiB + 2 * 4096, `only data was moved (${r.dataBytes} bytes)`);
  t.equal(hash.digest(), xxhsum(src), 'holes hashed as the zeros they read as');
  t.ok(readFileSync(dst).equals(readFileSync(src)), 'bytes identical');
  const allocated = statSync(dst).blocks * 512;
  t.ok(allocated <= MiB + 64 * 1024, `destination allocates ${allocated} bytes, not ${size}`);
  t.ok(statSync(src).blocks * 512 <= MiB + 64 * 1024);
});

t.test('copyRange: sub-ranges, offsets, hash continuation, dst null, async and cancel', async (t) => {
  const dir = diskDir(t);
  const src = path.join(dir, 'src.bin');
  const data = writeRandom(src, 5 * MiB + 333, 9);
  const dst = path.join(dir, 'dst.bin');
  const s = new native.File(src, C.O_RDONLY, 0, { direct: true });
  const d = new native.File(dst, WRITE, 0o644, { direct: true });
  // Three ranges, last one to EOF, with one hash carried through: the whole-file digest.
  const hash = new native.Xxh64();
  const a = native.copyRange(s, d, { srcOffset: 0, length: 2 * MiB, hash, bufferSize: MiB });
  const b = await native.copyRangeAsync(s, d, { srcOffset: 2 * MiB, length: 2 * MiB, hash });
  const c = native.copyRange(s, d, { srcOffset: 4 * MiB, hash });
  t.same([a.bytes, b.bytes, c.bytes], [2 * MiB, 2 * MiB, MiB + 333]);
  t.equal(hash.digest(), xxhsum(src));
  d.close();
  t.ok(readFileSync(dst).equals(data));

  const shifted = path.join(dir, 'shifted.bin');
  const e = new native.File(shifted, WRITE, 0o644, { direct: true });
  native.copyRange(s, e, { srcOffset: MiB, dstOffset: 3 * MiB, length: MiB });
  e.close();
  t.ok(
    readFileSync(shifted)
      .subarray(3 * MiB)
      .equals(data.subarray(MiB, 2 * MiB)),
  );

  const only = new native.Xxh64();
  t.same(native.copyRange(s, null, { hash: only }), { bytes: data.length, dataBytes: data.length });
  t.equal(only.digest(), xxhsum(src), 'dst null reads and hashes only');
  t.same(native.copyRange(s, null, { srcOffset: data.length + 5 }), { bytes: 0, dataBytes: 0 });

  const cancel = new Int32Array(new SharedArrayBuffer(4));
  Atomics.store(cancel, 0, 1);
  t.throws(() => native.copyRange(s, null, { cancel }), { code: 'ECANCELED', syscall: 'copy_range', path: src });
  await t.rejects(native.copyRangeAsync(s, null, { cancel }), { code: 'ECANCELED' });
  t.throws(() => native.copyRange(s, null, { cancel: new Int32Array(1).buffer as never }), TypeError);
  t.throws(() => native.copyRange({} as never, null), /src must be a File/);
  s.close();
});

t.test('async read and write run off the JS thread and give the same bytes', async (t) => {
  const file = path.join(diskDir(t), 'async.bin');
  const data = pseudoRandom(2 * MiB + 5);
  const f = new native.File(file, C.O_RDWR | C.O_CREAT, 0o600, { direct: true });
  const buf = native.alignedBuffer(4 * MiB);
  data.copy(buf);
  t.equal(await f.writeAsync(buf, 0, data.length, 0), data.length);
  buf.fill(0);
  t.equal(await f.readAsync(buf, 0, 4 * MiB, 0), data.length);
  t.ok(buf.subarray(0, data.length).equals(data));
  f.close();
  await t.rejects(f.readAsync(buf, 0, 4096, 0), { code: 'EBADF', syscall: 'read' }, 'closed file');
});

t.test('fsync, fdatasync, truncate, allocate and punchHole act on the file', async (t) => {
  const file = path.join(diskDir(t), 'alloc.bin');
  const f = new native.File(file, C.O_RDWR | C.O_CREAT, 0o600);
  t.equal(f.direct, false);
  f.allocate(0, 8 * MiB);
  t.ok(f.stat().blocks * 512 >= 8 * MiB, 'fallocate reserved the blocks');
  f.punchHole(0, 4 * MiB);
  t.ok(f.stat().blocks * 512 <= 4 * MiB + 65536, 'punched blocks are freed');
  t.equal(f.stat().size, 8 * MiB, 'punching keeps the size');
  f.truncate(100);
  t.equal(f.stat().size, 100);
  f.fsync();
  f.fdatasync();
  t.type(f.fd, 'number');
  f.close();
  t.throws(() => f.fsync(), { code: 'EBADF', syscall: 'fsync' });
});

t.test('a shared byte budget throttles copies and a cancel still stops a waiting copy', async (t) => {
  const dir = diskDir(t);
  const src = path.join(dir, 's');
  const data = writeRandom(src, 4 * MiB, 11);
  const s = new native.File(src, C.O_RDONLY);
  const d = new native.File(path.join(dir, 'd'), WRITE, 0o644);
  const budget = new BigInt64Array(new SharedArrayBuffer(8));
  budget[0] = BigInt(MiB);
  const refill = setInterval(() => Atomics.add(budget, 0, BigInt(MiB)), 100);
  const start = Date.now();
  const r = await native.copyRangeAsync(s, d, { bufferSize: MiB, budget });
  const elapsed = Date.now() - start;
  clearInterval(refill);
  t.equal(r.bytes, 4 * MiB);
  t.ok(elapsed >= 250, `4 MiB at 1 MiB per 100 ms took ${elapsed} ms`);
  t.ok(readFileSync(path.join(dir, 'd')).equals(data));

  budget[0] = 0n; // nothing left, no refill: the copy waits ...
  const cancel = new Int32Array(new SharedArrayBuffer(4));
  const waiting = native.copyRangeAsync(s, null, { bufferSize: MiB, budget, cancel });
  setTimeout(() => Atomics.store(cancel, 0, 1), 50); // ... until cancelled
  await t.rejects(waiting, { code: 'ECANCELED' });
  t.throws(() => native.copyRange(s, null, { budget: new Int32Array(2) as never }), TypeError);
  d.syncfs();
  s.close();
  d.close();
});

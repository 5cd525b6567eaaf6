// XXH64 three ways (native, WebAssembly, Node streams + wasm) against `xxhsum -H1` on the same files.
import t from 'tap';
import { truncateSync } from 'node:fs';
import path from 'node:path';
import { native } from '../src/native.js';
import { createXxh64, hashFileJs } from '../src/hash.js';
import { diskDir, writeRandom, xxhsum } from './helpers/fixtures.js';

const MiB = 1 << 20;
// Around XXH64's 32-byte stripes, the 8 MiB copy buffer and its 4 KiB alignment.
const sizes = [0, 1, 31, 32, 33, 4095, 4097, 8 * MiB - 1, 8 * MiB, 8 * MiB + 1, 9 * MiB + 7];

t.test('every implementation matches xxhsum -H1', async (t) => {
  const dir = diskDir(t);
  for (const [i, size] of sizes.entries()) {
    const file = path.join(dir, `f${size}`);
    const data = writeRandom(file, size, i + 1);
    const expected = xxhsum(file);
    t.equal(native.hashFile(file).digest, expected, `native buffered, ${size} B`);
    t.same(
      await native.hashFileAsync(file, { direct: true }),
      { digest: expected, bytes: size },
      `native O_DIRECT async, ${size} B`,
    );
    t.equal(await hashFileJs(file), expected, `xxhash-wasm over a stream, ${size} B`);
    // Incremental updates in uneven pieces must not change the digest.
    const n = new native.Xxh64();
    const w = createXxh64();
    for (let pos = 0, step = 1; pos < size; pos += step, step = step * 3 + 1) {
      const piece = data.subarray(pos, pos + step);
      n.update(piece);
      w.update(piece);
    }
    t.equal(n.digest(), expected, `native incremental, ${size} B`);
    t.equal(w.digest(), expected, `wasm incremental, ${size} B`);
  }
});

t.test('a sparse file hashes as the zeros its holes read as', async (t) => {
  const file = path.join(diskDir(t), 'sparse');
  writeRandom(file, 3 * MiB + 17, 5);
  truncateSync(file, 40 * MiB + 3);
  const expected = xxhsum(file);
  t.equal(native.hashFile(file, { sparse: true }).digest, expected);
  t.equal(native.hashFile(file, { sparse: false, bufferSize: MiB }).digest, expected);
});

t.test('seeded hashes differ from the default seed and are stable', async (t) => {
  const data = Buffer.from('stripemover');
  const a = new native.Xxh64(1).update(data).digest();
  t.not(a, new native.Xxh64().update(data).digest());
  t.equal(a, createXxh64(1n).update(data).digest());
  t.throws(() => new native.Xxh64().update('text' as never), TypeError);
});

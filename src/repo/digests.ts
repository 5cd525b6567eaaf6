// Checking a file's bytes against what its manifest entry recorded: one XXH64 of the whole file,
// or one per unit for files stored in units (cut the same way again: the cut is pure, see plan/
// and layout/). Used by restore (every restored byte) and verify --read-data.
import { native, fsConstants as C } from '../native.js';
import { chunkRanges } from '../plan/index.js';
import { stripeRuns } from '../layout/model.js';
import type { ManifestEntry } from './manifest.js';

const ZEROS = Buffer.alloc(1 << 20);

/** The byte ranges of each unit of a file, keyed by the unit's first offset. */
function unitsOf(entry: ManifestEntry, cut: string): Map<number, { offset: number; length: number }[]> {
  const [how, size] = cut.split('/');
  const chunk = Number(size);
  const out = new Map<number, { offset: number; length: number }[]>();
  const layout = entry.units?.layout ?? entry.layout;
  if (how === 'stripes' && layout) {
    for (const run of stripeRuns(layout, entry.size, chunk)) out.set(run.ranges[0]!.offset, run.ranges);
  } else {
    for (const r of chunkRanges(entry.size, chunk)) out.set(r.offset, [r]);
  }
  return out;
}

/** Why the file at `file` does not hold the bytes `entry` records; undefined when it does. */
export async function mismatch(file: Buffer | string, entry: ManifestEntry): Promise<string | undefined> {
  if (entry.hash !== undefined) {
    const { digest, bytes } = await native.hashFileAsync(file, { sparse: true });
    if (bytes !== entry.size) return `size ${bytes}, recorded ${entry.size}`;
    return digest === entry.hash ? undefined : `XXH64 ${digest}, recorded ${entry.hash}`;
  }
  if (entry.units === undefined) return 'no digest recorded';
  const f = new native.File(file, C.O_RDONLY, 0, { direct: true });
  try {
    if (f.stat().size !== entry.size) return `size ${f.stat().size}, recorded ${entry.size}`;
    for (const [offset, ranges] of unitsOf(entry, entry.units.cut)) {
      const want = entry.units.digests[offset];
      if (want === undefined) return `unit at ${offset} has no recorded digest`;
      const got = new native.Xxh64();
      for (const r of ranges)
        await native.copyRangeAsync(f, null, { srcOffset: r.offset, length: r.length, hash: got, sparse: true });
      // A unit recorded as '' was all holes in the source: it must read as zeros.
      let expected = want;
      if (want === '') {
        const zero = new native.Xxh64();
        for (const r of ranges)
          for (let left = r.length; left > 0; left -= ZEROS.length)
            zero.update(ZEROS.subarray(0, Math.min(left, ZEROS.length)));
        expected = zero.digest();
      }
      if (got.digest() !== expected)
        return `unit at offset ${offset} differs (XXH64 ${got.digest()}, recorded ${expected})`;
    }
    return undefined;
  } finally {
    f.close();
  }
}

#!/usr/bin/env node
// npm run bench:io -- [--size-gib 4] [--trials 3] [--dir bench/.data]
// In one run, on the same file: the native O_DIRECT and buffered reads against dd, and the
// native XXH64 against `xxhsum -H1`. Prints medians and ratios as a Markdown table.
import { existsSync, mkdirSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { native, fsConstants as C, hashFileJs } from '../dist/index.js';
import { GiB, MiB, dropCaches, time, run, median, table, gbps } from './lib.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const { values: opt } = parseArgs({
  options: {
    'size-gib': { type: 'string', default: '4' },
    trials: { type: 'string', default: '3' },
    dir: { type: 'string', default: path.join(here, '.data') },
  },
});
const size = Number(opt['size-gib']) * GiB;
const trials = Number(opt.trials);
mkdirSync(opt.dir, { recursive: true });
const file = path.join(opt.dir, `io-${opt['size-gib']}g.bin`);
const bs = 4 * MiB; // dd's bs and the native buffer size: same request size for both

if (!existsSync(file) || statSync(file).size !== size) {
  console.error(`creating ${file} (${size / GiB} GiB, random, written once and reused)`);
  const f = new native.File(file, C.O_WRONLY | C.O_CREAT | C.O_TRUNC, 0o644, { direct: true });
  const block = native.alignedBuffer(64 * MiB);
  for (let i = 0; i < block.length; i += 4) block.writeUInt32LE((Math.random() * 2 ** 32) >>> 0, i);
  for (let pos = 0; pos < size; pos += block.length) f.write(block, 0, Math.min(block.length, size - pos), pos);
  f.fsync();
  f.close();
}

function nativeRead(direct) {
  const f = new native.File(file, C.O_RDONLY, 0, { direct });
  const r = native.copyRange(f, null, { bufferSize: bs });
  const counts = f.ioCounts;
  f.close();
  if (r.bytes !== size) throw new Error(`read ${r.bytes} of ${size} bytes`);
  if (direct && counts.directBytes !== size) throw new Error(`O_DIRECT not used: ${JSON.stringify(counts)}`);
}
const dd = (direct) => run('dd', [`if=${file}`, 'of=/dev/null', `bs=${bs}`, ...(direct ? ['iflag=direct'] : [])]);

const cold = dropCaches();
const results = {
  ddDirect: [],
  nativeDirect: [],
  ddCold: [],
  nativeCold: [],
  xxhsum: [],
  nativeHash: [],
  wasmHash: [],
};
let digest;
for (let i = 0; i < trials; i++) {
  // Alternate which side goes first, so neither always gets the warmer disk.
  if (i % 2) {
    results.nativeDirect.push(await time(() => nativeRead(true)));
    results.ddDirect.push(await time(() => dd(true)));
  } else {
    results.ddDirect.push(await time(() => dd(true)));
    results.nativeDirect.push(await time(() => nativeRead(true)));
  }
  if (cold) {
    dropCaches();
    results.ddCold.push(await time(() => dd(false)));
    dropCaches();
    results.nativeCold.push(await time(() => nativeRead(false)));
  }
  // Hashes on a cached file: both read it from the page cache, so this measures the hash.
  dd(false);
  let xs;
  results.xxhsum.push(await time(() => (xs = run('xxhsum', ['-H1', file]).split(/\s+/)[0])));
  results.nativeHash.push(await time(() => (digest = native.hashFile(file).digest)));
  if (i === 0)
    results.wasmHash.push(
      await time(async () => {
        if ((await hashFileJs(file)) !== xs) throw new Error('xxhash-wasm digest differs from xxhsum');
      }),
    );
  if (digest !== xs) throw new Error(`native digest ${digest} differs from xxhsum ${xs}`);
}

const rate = (k) => Number(gbps(size, median(results[k])));
const row = (what, ours, peer, ok) => [
  what,
  `${rate(ours)} GB/s`,
  `${rate(peer)} GB/s`,
  `**${(rate(ours) / rate(peer)).toFixed(2)}×**`,
  ok,
];
const rows = [
  row(
    `read, O_DIRECT, ${bs / MiB} MiB requests: native vs \`dd iflag=direct\``,
    'nativeDirect',
    'ddDirect',
    'target ≥ 0.95×',
  ),
  ...(cold ? [row('read, buffered, cold cache: native (fadvise DONTNEED) vs `dd`', 'nativeCold', 'ddCold', '')] : []),
  row('XXH64 of the cached file: native `hashFile` vs `xxhsum -H1`', 'nativeHash', 'xxhsum', 'target ≥ 0.9×'),
  row('XXH64: xxhash-wasm over a Node stream vs `xxhsum -H1`', 'wasmHash', 'xxhsum', 'for reference'),
];
console.log(
  `\n### bench:io — ${new Date().toISOString().slice(0, 10)}, ${os.cpus().length} cores, ${(size / GiB).toFixed(0)} GiB file on ${run('df', ['--output=source', opt.dir]).split('\n')[1]}, median of ${trials}${cold ? '' : ', page cache NOT dropped (not root)'}\n`,
);
console.log(table(['what', 'stripemover', 'peer', 'ratio', ''], rows));
console.log(`\nDigest checked equal to xxhsum's in every trial: ${digest}`);

// The embeddable API: `import { copy, sync } from 'stripemover'`, progress events, AbortSignal.
import t from 'tap';
import { mkdirSync, writeFileSync } from 'node:fs';
import { copy, sync, Filter } from '../src/index.js';
import type { Progress } from '../src/index.js';
import { diskDir, pseudoRandom } from './helpers/fixtures.js';
import { describeTree } from './helpers/tree.js';

function tree(root: string, files: number) {
  for (let d = 0; d < 4; d++) {
    mkdirSync(`${root}/d${d}`, { recursive: true });
    for (let f = 0; f < files / 4; f++) writeFileSync(`${root}/d${d}/f${f}`, pseudoRandom(4096 + f, f + 1));
  }
}

t.test('progress events report files, bytes and per-stream bytes; the summary adds up', async (t) => {
  const dir = diskDir(t);
  tree(`${dir}/src`, 400);
  const run = copy(`${dir}/src`, `${dir}/dst`, { bwlimit: 2 << 20 });
  const seen: Progress[] = [];
  run.on('progress', (p: Progress) => seen.push(p));
  const summary = await run.done;
  t.equal(summary.files, 400);
  t.ok(seen.length >= 2, `${seen.length} progress events`);
  const last = seen.at(-1)!;
  t.equal(last.files, 400);
  t.equal(last.fraction, 1, 'all settled');
  t.equal(
    Object.values(last.streams).reduce((a, b) => a + b, 0),
    summary.bytes,
    'per-stream bytes add up',
  );
  t.ok(
    seen.every((p, i) => i === 0 || p.bytes >= seen[i - 1]!.bytes),
    'monotonic',
  );
  t.equal(summary.scannedFiles, 400);
  t.ok(summary.scanDone);
});

t.test('an AbortSignal stops a run, which reports interrupted; a rerun completes it', async (t) => {
  const dir = diskDir(t);
  tree(`${dir}/src`, 800);
  const ac = new AbortController();
  const run = sync(`${dir}/src`, `${dir}/dst`, { signal: ac.signal, bwlimit: 1 << 20 });
  run.on('progress', (p: Progress) => {
    if (p.files > 0) ac.abort();
  });
  const first = await run.done;
  t.equal(first.interrupted, true);
  t.ok(first.files < 800, `${first.files} files before the stop`);
  const second = await sync(`${dir}/src`, `${dir}/dst`, { filter: new Filter({}) }).done;
  t.equal(second.interrupted, false);
  t.equal(second.files + second.skipped, 800);
  t.same(describeTree(`${dir}/dst`, { dirTimes: true }), describeTree(`${dir}/src`, { dirTimes: true }));
});

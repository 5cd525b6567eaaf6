// The embeddable API, from the package's entry: `import { copy, sync, backup, ... } from
// 'stripemover'`; progress events, AbortSignal; the repository calls end to end.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdirSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import {
  copy,
  sync,
  Filter,
  backup,
  listSnapshots,
  snapshotEntries,
  diffSnapshots,
  restore,
  verify,
  prune,
} from '../src/index.js';
import type { Progress, Difference } from '../src/index.js';
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

t.test('the repository calls: backup twice, list, ls, diff, restore, verify, prune', async (t) => {
  const dir = diskDir(t);
  const src = `${dir}/src`;
  const repo = `${dir}/repo`;
  tree(src, 40);
  const first = await backup(repo, src, { tags: ['lib'] });
  t.ok(first.snapshot, 'a snapshot');
  t.same(first.failures, []);
  execFileSync('cp', ['-a', src, `${dir}/as-first`]); // the tree as the first snapshot saw it
  appendFileSync(`${src}/d0/f0`, 'grown');
  rmSync(`${src}/d1/f1`);
  writeFileSync(`${src}/d2/new`, 'new file');
  const second = await backup(repo, src);
  t.equal(second.snapshot?.parent, first.snapshot!.id, 'incremental: its parent is the first');
  t.equal(second.snapshot?.stats.unchangedFiles, 38, 'the other 38 files are unchanged');

  const listed = listSnapshots(repo);
  t.same(
    listed.map((s) => s.id),
    [first.snapshot!.id, second.snapshot!.id],
  );
  t.same(listed[0]!.tags, ['lib']);
  const latest = [...snapshotEntries(repo, 'latest')];
  t.equal(latest.length, 1 + 4 + 40, 'root, 4 directories, 40 files');
  t.ok(
    latest.some((e) => Buffer.from(e.path, 'base64').toString() === 'd2/new' && e.hash),
    'ls has the new file, hashed',
  );

  const changes: Difference[] = [];
  for await (const d of diffSnapshots(repo, first.snapshot!.id, second.snapshot!.id)) changes.push(d);
  const named = (c: string) =>
    changes
      .filter((d) => d.change === c)
      .map((d) => d.path.toString())
      .sort();
  t.same(named('added'), ['d2/new']);
  t.same(named('removed'), ['d1/f1']);
  t.ok(named('changed').includes('d0/f0'), `changed: ${named('changed').join(', ')}`);

  const restored = await restore(repo, first.snapshot!.id, `${dir}/restored`);
  t.same(restored.failures, []);
  t.same(describeTree(`${dir}/restored`), describeTree(`${dir}/as-first`), 'the first snapshot, exactly');

  const checked = await verify(repo, { readData: true });
  t.same(checked.problems, []);
  t.equal(checked.snapshots, 2);
  t.equal(checked.filesRead, 42, 'each distinct file read once: the first 40, the grown one and the new one');

  const pruned = prune(repo, { last: 1 });
  t.same(
    pruned.remove.map((s) => s.id),
    [first.snapshot!.id],
  );
  t.same(
    listSnapshots(repo).map((s) => s.id),
    [second.snapshot!.id],
  );
  t.same((await verify(repo, { readData: true })).problems, [], 'still intact after the prune');
});

t.test('an abort while copy batches run ends the run cleanly (workers are not killed mid-call)', async (t) => {
  const dir = diskDir(t);
  for (let i = 0; i < 600; i++) {
    mkdirSync(`${dir}/src/d${i}/e`, { recursive: true });
    for (let j = 0; j < 4; j++) writeFileSync(`${dir}/src/d${i}/f${j}`, 'x'.repeat(100 + j));
    symlinkSync('../f0', `${dir}/src/d${i}/e/s`);
  }
  // Aborted early, while the scan still runs: the scan ends with an AbortError while units are
  // in the workers. The pool used to be destroyed under them, and the process died.
  const ac = new AbortController();
  const run = copy(`${dir}/src`, `${dir}/dst`, { signal: ac.signal, threads: 4 });
  let files = 0;
  run.on('file', () => {
    if (++files === 20) ac.abort();
  });
  const first = await run.done;
  t.equal(first.interrupted, true);
  t.same(first.failures, [], 'an interruption is not a failure');
  const second = await copy(`${dir}/src`, `${dir}/dst`).done;
  t.same(second.failures, []);
  t.same(describeTree(`${dir}/dst`), describeTree(`${dir}/src`));
});

t.test('a run refused before it starts leaves no worker threads behind', async (t) => {
  const dir = diskDir(t);
  mkdirSync(`${dir}/src`);
  mkdirSync(`${dir}/prev`);
  const threads = () => readdirSync('/proc/self/task').length;
  const before = threads();
  // A chunk size below the minimum is refused after the engine has started its workers.
  for (let i = 0; i < 3; i++) {
    await t.rejects(sync(`${dir}/src`, `${dir}/dst`, { linkDest: `${dir}/prev`, chunkSize: 3, threads: 4 }).done);
  }
  await new Promise((r) => setTimeout(r, 200));
  t.ok(threads() - before < 4, `threads: ${before} before, ${threads()} after`);
});

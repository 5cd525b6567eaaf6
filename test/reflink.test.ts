// Block sharing on a file system with reflinks (XFS on a loop device). A copy on the same file
// system as its source is a clone of it; from another file system, with --link-dest and in
// backups, a changed file's copy starts as a clone of its previous copy and only the blocks
// that differ are written. Checked by the file system's own account (FIEMAP's shared flag,
// read by filefrag) and by describeTree, never by the tool's digests; what a copy shares blocks
// with must come out unchanged.
import t, { type Test } from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import {
  appendFileSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  statSync,
  truncateSync,
  writeSync,
} from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { diskDir, pseudoRandom, reflinkDir, sharedBytesOf, writeRandom } from './helpers/fixtures.js';
import { describeContents } from './helpers/tree.js';
import { backup } from '../src/repo/backup.js';
import { restore } from '../src/repo/restore.js';
import { sync as syncTree } from '../src/engine/copy.js';
import type { Progress } from '../src/engine/copy.js';
import { verify } from '../src/repo/verify.js';

const bin = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'stripemover.js');
const KiB = 1024;

/** A tree as describeTree sees it, but for hard links, which snapshots share with each other. */
const contents = (root: string) => describeContents(root, { dirTimes: true });

function sync(...args: string[]) {
  const r = spawnSync(process.execPath, [bin, 'sync', ...args, '--json'], { encoding: 'utf8' });
  const summary = r.stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l))
    .find((l) => l.type === 'summary');
  return { status: r.status, stderr: r.stderr, summary };
}

/** Overwrites bytes of a file in place. */
function poke(file: string, at: number, bytes: Buffer) {
  const fd = openSync(file, 'r+');
  writeSync(fd, bytes, 0, bytes.length, at);
  closeSync(fd);
}

/**
 * A tree, then its changes: a log that grows, a file with one block rewritten, one that shrinks,
 * a sparse one (copied afresh: its holes must read as zeros, not as the old data), one unchanged.
 */
function makeTree(src: string) {
  mkdirSync(path.join(src, 'sub'), { recursive: true });
  writeRandom(path.join(src, 'grow.log'), 200 * KiB, 1);
  writeRandom(path.join(src, 'sub', 'rewrite.bin'), 100 * KiB, 2);
  writeRandom(path.join(src, 'shrink.bin'), 100 * KiB, 3);
  writeRandom(path.join(src, 'sparse.bin'), 64 * KiB, 4);
  writeRandom(path.join(src, 'same.bin'), 40 * KiB, 5);
  writeRandom(path.join(src, 'big.dat'), 3 * 1024 * KiB + 1234, 8); // in chunks with --chunk-size 1M; a partial last block
}
function change(src: string) {
  appendFileSync(path.join(src, 'grow.log'), pseudoRandom(5000, 6));
  poke(path.join(src, 'sub', 'rewrite.bin'), 50 * KiB + 7, Buffer.from('changed'));
  truncateSync(path.join(src, 'shrink.bin'), 30000);
  poke(path.join(src, 'shrink.bin'), 10, Buffer.from('x'));
  truncateSync(path.join(src, 'sparse.bin'), 1024 * KiB);
  poke(path.join(src, 'sparse.bin'), 900 * KiB, pseudoRandom(4096, 7));
  poke(path.join(src, 'big.dat'), 1536 * KiB + 3, Buffer.from('one block'));
}

function onXfs(t: Test): string | undefined {
  const { dir, why } = reflinkDir(t);
  if (!dir) t.plan(0, why); // a skip, with the reason
  return dir;
}

t.test('sync --link-dest: changed files share their unchanged blocks with the previous copy', (t) => {
  const dir = onXfs(t);
  if (!dir) return;
  const src = path.join(diskDir(t), 'src'); // another file system: no clones of the source
  makeTree(src);
  t.equal(sync(src, path.join(dir, 'snap1')).status, 0);
  const snap1 = contents(path.join(dir, 'snap1'));
  change(src);
  const r = sync('--link-dest', path.join(dir, 'snap1'), '--chunk-size', '1M', src, path.join(dir, 'snap2'));
  t.equal(r.status, 0, r.stderr);
  t.same(contents(path.join(dir, 'snap2')), contents(src), 'the new copy is the source');
  t.same(contents(path.join(dir, 'snap1')), snap1, 'the previous copy is as it was');

  // What the file system says is shared: all the old blocks of the log (its 5000 new bytes are
  // new blocks), all but the rewritten block of rewrite.bin; nothing of the sparse file.
  t.equal(sharedBytesOf(path.join(dir, 'snap2', 'grow.log')), 200 * KiB);
  t.equal(sharedBytesOf(path.join(dir, 'snap2', 'sub', 'rewrite.bin')), 96 * KiB);
  t.equal(sharedBytesOf(path.join(dir, 'snap2', 'sparse.bin')), 0);
  // 769 blocks, the last one partial, all shared but the changed one.
  t.equal(sharedBytesOf(path.join(dir, 'snap2', 'big.dat')), 768 * 4 * KiB, 'a file copied in chunks too');
  t.ok(sharedBytesOf(path.join(dir, 'snap2', 'shrink.bin')) >= 24 * KiB, 'the shrunk file keeps its middle blocks');
  t.ok(r.summary.sharedBytes >= 320 * KiB + 3 * 1024 * KiB - 4 * KiB, `summary: ${r.summary.sharedBytes} bytes shared`);
  t.equal(r.summary.linked, 1, 'the unchanged file is a hard link, as before');
  t.equal(statSync(path.join(dir, 'snap2', 'same.bin')).ino, statSync(path.join(dir, 'snap1', 'same.bin')).ino);

  const plain = sync(
    '--link-dest',
    path.join(dir, 'snap1'),
    '--no-reflink',
    '--chunk-size',
    '1M',
    src,
    path.join(dir, 'snap3'),
  );
  t.equal(plain.status, 0, plain.stderr);
  t.equal(plain.summary.sharedBytes, 0, '--no-reflink writes every byte');
  t.equal(sharedBytesOf(path.join(dir, 'snap3', 'grow.log')), 0);
  t.equal(sharedBytesOf(path.join(dir, 'snap3', 'big.dat')), 0);
  t.same(contents(path.join(dir, 'snap3')), contents(src));
  t.end();
});

t.test('backup: an incremental shares blocks with its parent, and both restore exactly', async (t) => {
  const dir = onXfs(t);
  if (!dir) return;
  const src = path.join(diskDir(t), 'src');
  const repo = path.join(dir, 'repo');
  makeTree(src);
  const first = await backup(repo, src);
  const before = contents(src);
  change(src);
  const second = await backup(repo, src);
  const stats = second.snapshot!.stats;
  t.equal(stats.copiedFiles, 5);
  t.ok(stats.sharedBytes! >= 320 * KiB, `${stats.sharedBytes} of ${stats.copiedBytes} copied bytes shared`);
  const tree = path.join(repo, 'trees', second.snapshot!.id);
  t.equal(sharedBytesOf(path.join(tree, 'grow.log')), 200 * KiB);

  const report = await verify(repo, { readData: true });
  t.same(report.problems, [], 'verify --read-data finds every byte as the manifests say');
  for (const [snap, want] of [
    [first.snapshot!.id, before],
    [second.snapshot!.id, contents(src)],
  ] as const) {
    const to = path.join(dir, `restore-${snap}`);
    const r = await restore(repo, snap, to);
    t.same(r.failures, []);
    t.same(contents(to), want, `snapshot ${snap} restores as the tree was`);
  }
});

t.test('a large file whose clone is resumed half done comes out as its source, holes and all', async (t) => {
  const dir = onXfs(t);
  if (!dir) return;
  const src = path.join(diskDir(t), 'src');
  mkdirSync(src);
  const big = path.join(src, 'big.dat');
  writeRandom(big, 4 * 1024 * KiB, 9);
  const MiB = 1024 * KiB;
  t.equal((await syncTree(src, path.join(dir, 'snap1'), { chunkSize: MiB }).done).failed, 0);
  // A hole where the previous copy has data, and blocks preallocated past the end, so that by
  // its block count the file does not look sparse: it is cloned, and the hole must come out
  // as zeros, not as the previous copy's bytes.
  execFileSync('fallocate', ['-p', '-o', String(2 * MiB), '-l', String(MiB), big]);
  execFileSync('fallocate', ['-n', '-o', String(4 * MiB), '-l', String(8 * MiB), big]);
  t.ok(statSync(big).blocks * 512 >= statSync(big).size, 'holes, and as many blocks as a full file');

  // Interrupted once its first chunk is durable (1 MiB/s: the next takes a second).
  const ac = new AbortController();
  const options = { linkDest: path.join(dir, 'snap1'), chunkSize: MiB, threads: 1 };
  const first = syncTree(src, path.join(dir, 'snap2'), { ...options, bwlimit: MiB, signal: ac.signal });
  first.on('progress', (p: Progress) => {
    if (p.bytes >= MiB) ac.abort();
  });
  t.ok((await first.done).interrupted, 'the first run was interrupted');
  const journal = readdirSync(path.join(dir, 'snap2')).find((n) => n.endsWith('.journal'));
  t.ok(journal, 'a journal is left for the rerun');
  t.match(readFileSync(path.join(dir, 'snap2', journal!), 'utf8'), /"cloned":true/);

  const rerun = await syncTree(src, path.join(dir, 'snap2'), { ...options, verify: true }).done;
  t.equal(rerun.failed, 0);
  t.equal(rerun.files, 1);
  t.ok(readFileSync(path.join(dir, 'snap2', 'big.dat')).equals(readFileSync(big)), 'the copy is the source');
  t.notOk(existsSync(path.join(dir, 'snap2', journal!)), 'the journal is gone once the file is done');
  t.ok(sharedBytesOf(path.join(dir, 'snap2', 'big.dat')) >= 2 * MiB, 'and it still shares what did not change');
});

t.test('on one file system, a copy is a clone of its source, and a restore of its snapshot', async (t) => {
  const dir = onXfs(t);
  if (!dir) return;
  const src = path.join(dir, 'src');
  makeTree(src);
  change(src); // sparse.bin now has holes
  const r = sync('--chunk-size', '1M', src, path.join(dir, 'copy'));
  t.equal(r.status, 0, r.stderr);
  t.same(contents(path.join(dir, 'copy')), contents(src));
  for (const name of ['grow.log', 'sub/rewrite.bin', 'shrink.bin', 'same.bin']) {
    const size = statSync(path.join(src, name)).size;
    t.equal(sharedBytesOf(path.join(dir, 'copy', name)), Math.ceil(size / 4096) * 4096, `${name}: all of it shared`);
  }
  t.equal(
    sharedBytesOf(path.join(dir, 'copy', 'big.dat')),
    769 * 4 * KiB,
    'a file copied in chunks too, its partial last block too',
  );
  t.ok(statSync(path.join(dir, 'copy', 'sparse.bin')).blocks * 512 < 128 * KiB, 'the sparse file keeps its holes');
  t.ok(r.summary.sharedBytes >= 3 * 1024 * KiB + 300 * KiB, `summary: ${r.summary.sharedBytes} bytes shared`);

  // The source changes afterwards: the copy, which shared its blocks, must not.
  const copied = contents(path.join(dir, 'copy'));
  poke(path.join(src, 'grow.log'), 0, Buffer.from('rewritten'));
  t.same(contents(path.join(dir, 'copy')), copied, 'a later write to the source does not reach the copy');

  // With --verify the digest is the source's, and the clone re-read from the device must match it.
  const checked = sync('--verify', src, path.join(dir, 'checked'));
  t.equal(checked.status, 0, checked.stderr);
  t.equal(checked.summary.verified, checked.summary.files, 'every clone verified against its source');
  t.ok(checked.summary.sharedBytes > 0);
  t.same(contents(path.join(dir, 'checked')), contents(src));

  const full = sync('--no-reflink', src, path.join(dir, 'plain'));
  t.equal(full.summary.sharedBytes, 0, '--no-reflink writes every byte');
  t.equal(sharedBytesOf(path.join(dir, 'plain', 'same.bin')), 0);

  // A snapshot restored onto the repository's file system: clones, each checked against the manifest.
  const repo = path.join(dir, 'repo');
  const snap = (await backup(repo, src)).snapshot!;
  const tree = path.join(repo, 'trees', snap.id);
  t.equal(sharedBytesOf(path.join(tree, 'same.bin')), 0, "a backup does not share its source's blocks (or media)");
  const restored = await restore(repo, snap.id, path.join(dir, 'restored'));
  t.same(restored.failures, []);
  t.same(contents(path.join(dir, 'restored')), contents(src));
  t.ok(sharedBytesOf(path.join(dir, 'restored', 'same.bin')) > 0, 'restored as a clone');
});

// Backups: a full backup and three incrementals with adds, changes, deletes and renames, each
// snapshot restored and compared with a copy of the tree kept as it was at that time (by the
// independent describeTree, never by the tool's digests); interruption of backup and prune by
// kill -9; a corrupted data file; a hostile manifest; a symlink planted in the destination;
// the lock; verify subsets; diff; retention; the configuration's precedence.
import t, { type Test } from 'tap';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import {
  appendFileSync,
  closeSync,
  existsSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync, gzipSync } from 'node:zlib';
import { shmDir, isRoot, pseudoRandom } from './helpers/fixtures.js';
import { describeTree } from './helpers/tree.js';
import { native } from '../src/native.js';
import { backup } from '../src/repo/backup.js';
import { restore } from '../src/repo/restore.js';
import { verify, subsetOf } from '../src/repo/verify.js';
import { prune } from '../src/repo/prune.js';
import { diffLive, diffSnapshots } from '../src/repo/diff.js';
import { applyRetention } from '../src/repo/retention.js';
import { loadConfig } from '../src/repo/config.js';
import { Repository } from '../src/repo/repository.js';
import {
  MAX_DEPTH,
  readIndex,
  readManifest,
  statPrefix,
  toManifestEntry,
  type ManifestEntry,
} from '../src/repo/manifest.js';
import { scan } from '../src/scan/index.js';

const MiB = 1 << 20;
const bin = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'stripemover.js');
const odd = Buffer.from([0x6e, 0xe9, 0x0a, 0x66]); // 'n', invalid UTF-8, newline, 'f'

/** The first state of the tree: every kind of entry the format must carry. */
function makeTree(root: string): void {
  mkdirSync(`${root}/docs/deep/er`, { recursive: true });
  mkdirSync(`${root}/empty`);
  for (let i = 0; i < 40; i++) writeFileSync(`${root}/docs/f${i}.txt`, pseudoRandom(1 + i * 997, i));
  writeFileSync(`${root}/docs/deep/er/leaf`, 'leaf');
  writeFileSync(Buffer.concat([Buffer.from(`${root}/`), odd]), 'bytes, not a string');
  linkSync(`${root}/docs/f1.txt`, `${root}/hardlink`);
  symlinkSync('docs/f2.txt', `${root}/symlink`);
  symlinkSync('/nonexistent/target', `${root}/dangling`);
  execFileSync('mkfifo', [`${root}/fifo`]);
  native.setXattr(`${root}/docs/f3.txt`, 'user.project', 'p42');
  if (isRoot) execFileSync('setfacl', ['-m', 'u:1234:r', `${root}/docs/f4.txt`]);
  writeFileSync(`${root}/big`, pseudoRandom(70 * MiB + 3, 99)); // more than one 64 MiB unit
  execFileSync('truncate', ['-s', '1G', `${root}/sparse`]);
  execFileSync('dd', ['if=/dev/urandom', `of=${root}/sparse`, 'bs=64K', 'count=2', 'seek=100', 'conv=notrunc'], {
    stdio: 'ignore',
  });
}

const keep = (src: string, dst: string) => execFileSync('cp', ['-a', src, dst]);
/** Replaces a manifest's entries by hand, well-formed and with valid digests (as an attacker could). */
function rewriteManifest(mdir: string, entries: object[]): void {
  const data = gzipSync(entries.map((e) => JSON.stringify(e)).join('\n') + '\n');
  writeFileSync(`${mdir}/000000.jsonl.gz`, data);
  const index = readIndex(mdir);
  index.chunks = [
    { file: '000000.jsonl.gz', entries: entries.length, xxh64: new native.Xxh64().update(data).digest() },
  ];
  writeFileSync(`${mdir}/index.json`, JSON.stringify(index));
}

const same = (t: Test, a: string, b: string, what: string) =>
  t.same(describeTree(a, { xattrs: true }), describeTree(b, { xattrs: true }), what);

t.test('a full backup and 3 incrementals; every snapshot restores exactly', async (t) => {
  const dir = shmDir(t);
  const [src, repo] = [`${dir}/src`, `${dir}/repo`];
  makeTree(src);
  const states: string[] = [];
  const ids: string[] = [];
  const snap = async (tags: string[]) => {
    const r = await backup(repo, src, { tags });
    t.equal(r.failures.length, 0, JSON.stringify(r.failures));
    ids.push(r.snapshot!.id);
    states.push(`${dir}/state${states.length}`);
    keep(src, states.at(-1)!);
    return r.snapshot!;
  };
  const full = await snap(['full']);
  t.equal(full.parent, undefined, 'the first is full');
  t.equal(full.stats.unchangedFiles, 0);

  // 1: adds and changes.
  writeFileSync(`${src}/docs/new.txt`, 'new');
  appendFileSync(`${src}/docs/f5.txt`, 'changed');
  const i1 = await snap(['i1']);
  t.equal(i1.parent, full.id);
  t.equal(i1.stats.copiedFiles, 2, 'only the new and the changed file are copied');
  t.equal(
    statSync(`${repo}/trees/${i1.id}/big`).ino,
    statSync(`${repo}/trees/${full.id}/big`).ino,
    'an unchanged file is a hard link into the parent snapshot: no data written',
  );
  // 2: deletes and renames (a rename is a new path: the inode is the same, so is its data).
  rmSync(`${src}/docs/f6.txt`);
  rmSync(`${src}/docs/deep`, { recursive: true });
  renameSync(`${src}/docs/f7.txt`, `${src}/docs/f7-renamed.txt`);
  await snap(['i2']);
  // 3: a change that keeps size and mtime (only ctime tells) and a metadata-only change.
  const f8 = `${src}/docs/f8.txt`;
  const before = statSync(f8, { bigint: true });
  const data = readFileSync(f8);
  data[0] = data[0]! ^ 0xff;
  writeFileSync(f8, data);
  native.setTimes(f8, before.atimeNs, before.mtimeNs);
  execFileSync('chmod', ['600', `${src}/docs/f9.txt`]);
  const i3 = await snap(['i3']);
  t.equal(i3.stats.copiedFiles, 2, 'same size and mtime but a new ctime: copied');

  for (const [k, id] of ids.entries()) {
    const out = `${dir}/restore${k}`;
    const r = await restore(repo, id, out);
    t.equal(r.failures.length, 0, JSON.stringify(r.failures));
    same(t, out, states[k]!, `snapshot ${k} restores to the tree as it was then`);
  }
  t.equal(statSync(`${dir}/restore0/sparse`).blocks * 512 < 1 << 20, true, 'holes stay holes');
  const v = await verify(repo, { readData: true });
  t.same(v.problems, []);
  t.equal(v.snapshots, 4);

  // Partial restore of paths and globs.
  const part = `${dir}/part`;
  await restore(repo, ids[3]!, part, { paths: ['docs/f1*.txt', 'symlink'] });
  const names = describeTree(part).map((d) => d.path);
  t.ok(names.includes('docs/f10.txt') && names.includes('symlink') && !names.includes('big'), 'only what was chosen');

  // diff between the first and the last snapshot.
  const changes: string[] = [];
  for await (const c of diffSnapshots(repo, ids[0]!, ids[3]!)) changes.push(`${c.change} ${c.path.toString('latin1')}`);
  for (const want of [
    'added docs/new.txt',
    'removed docs/f6.txt',
    'changed docs/f5.txt',
    'changed docs/f8.txt',
    'changed docs/f9.txt',
    'removed docs/deep/er/leaf',
    'added docs/f7-renamed.txt',
  ]) {
    t.ok(changes.includes(want), want);
  }
  t.notOk(
    changes.some((c) => c.endsWith(' big')),
    'unchanged: not listed',
  );

  // Against the live tree: nothing, then what changed since.
  const live = async () => {
    const out: string[] = [];
    for await (const c of diffLive(repo, 'latest', src)) out.push(`${c.change} ${c.path.toString('latin1')}`);
    return out;
  };
  t.same(await live(), [], 'the latest snapshot is the live tree');
  appendFileSync(`${src}/docs/f10.txt`, 'later');
  writeFileSync(`${src}/later`, 'x');
  rmSync(`${src}/docs/f11.txt`);
  t.same((await live()).sort(), ['added later', 'changed docs/f10.txt', 'removed docs/f11.txt']);
});

t.test('incremental manifests are deltas; prune keeps the bases they need; long chains become full', async (t) => {
  const dir = shmDir(t);
  const [src, repo] = [`${dir}/src`, `${dir}/repo`];
  for (const d of ['a', 'b']) {
    mkdirSync(`${src}/${d}`, { recursive: true });
    for (let i = 0; i < 30; i++) writeFileSync(`${src}/${d}/f${i}`, pseudoRandom(100 + i * 31, i));
  }
  const linesOf = (id: string) => readIndex(`${repo}/manifests/${id}`).chunks.reduce((n, c) => n + c.entries, 0);
  const paths = (id: string) => [...readManifest(`${repo}/manifests/${id}`)].map((e) => Buffer.from(e.path, 'base64'));
  const check = async (id: string, what: string) => {
    const out = `${dir}/out-${id}`;
    t.equal((await restore(repo, id, out)).failures.length, 0);
    same(t, out, src, `${what}: restores to the tree as it is`);
  };
  const full = (await backup(repo, src)).snapshot!;
  t.equal(readIndex(`${repo}/manifests/${full.id}`).base, undefined, 'the first manifest is full');
  t.equal(linesOf(full.id), 63);

  // One change, one addition, one removal: the delta holds those and the two directories they touched.
  appendFileSync(`${src}/a/f3`, 'changed');
  writeFileSync(`${src}/b/new`, 'new');
  rmSync(`${src}/b/f7`);
  const i1 = (await backup(repo, src)).snapshot!;
  const idx = readIndex(`${repo}/manifests/${i1.id}`);
  t.match(idx, { base: full.id, depth: 1, entries: 63 });
  t.equal(linesOf(i1.id), 4, 'a/f3, b, b/f7 (removed), b/new: nothing else is written');
  t.same(
    paths(i1.id).map((p) => p.toString()),
    describeTree(src).map((d) => d.path), // scan order, the same as the tree's
    'the delta applied to its base lists the tree',
  );
  await check(i1.id, 'a delta');

  // The parent's copy of an unchanged file is gone (damage): the file is copied afresh, and its
  // entry (left out of a delta otherwise) is recorded with the digest of the new copy.
  rmSync(`${repo}/trees/${i1.id}/a/f9`);
  const i2 = (await backup(repo, src)).snapshot!;
  t.equal(i2.stats.copiedFiles, 1, 'a/f9 copied');
  t.equal(i2.stats.unchangedFiles, 59);
  t.equal(linesOf(i2.id), 1);
  await check(i2.id, 'a delta with a recopied file');
  t.same(
    (await verify(repo, { readData: true })).problems,
    [{ snapshot: i1.id, path: 'a/f9', problem: "missing from the snapshot's tree" }],
    'the damage is named where it is, and only there',
  );

  // prune: the kept snapshot's deltas still apply to the removed ones' manifests, which stay.
  const pr = prune(repo, { last: 1 });
  t.same(pr.remove.map((s) => s.id).sort(), [full.id, i1.id]);
  t.same(pr.orphansRemoved, [], 'no orphans: the removed manifests are not reported as such');
  t.ok(existsSync(`${repo}/manifests/${full.id}`) && existsSync(`${repo}/manifests/${i1.id}`), 'bases kept');
  t.notOk(existsSync(`${repo}/trees/${full.id}`), 'their trees are gone');
  t.same((await verify(repo, { readData: true })).problems, [], 'and the repository verifies clean');
  await check(i2.id, 'after prune');

  // A chain longer than MAX_DEPTH deltas is cut: that backup writes a full manifest.
  let last = i2;
  const depths: (number | undefined)[] = [];
  for (let k = 3; k <= MAX_DEPTH + 1; k++) {
    writeFileSync(`${src}/a/f0`, `round ${k}`);
    last = (await backup(repo, src, { threads: 1 })).snapshot!;
    depths.push(readIndex(`${repo}/manifests/${last.id}`).depth);
  }
  const grown = Array.from({ length: MAX_DEPTH - 2 }, (_, k) => k + 3);
  t.same(depths, [...grown, undefined], 'depths grow to the limit, then a full one');
  t.equal(linesOf(last.id), 63);
  await check(last.id, 'a consolidated manifest');
  prune(repo, { last: 1 });
  t.same(readdirSync(`${repo}/manifests`), [last.id], 'once nothing needs them, the bases go');
  t.same((await verify(repo)).problems, []);

  // A base that is not a snapshot id is refused (a manifest cannot point outside manifests/).
  writeFileSync(`${src}/a/f0`, 'one more');
  const mdir = `${repo}/manifests/${(await backup(repo, src)).snapshot!.id}`;
  writeFileSync(`${mdir}/index.json`, JSON.stringify({ ...readIndex(mdir), base: '../../etc' }));
  t.throws(() => [...readManifest(mdir)], { code: 'MANIFEST_INVALID', message: /refused base/ });
});

t.test('20 generations of random changes: each manifest, its deltas applied, lists the tree as it was', async (t) => {
  const dir = shmDir(t);
  const [src, repo] = [`${dir}/src`, `${dir}/repo`];
  let seed = 1;
  const rnd = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  for (let d = 0; d < 5; d++) {
    mkdirSync(`${src}/d${d}/sub`, { recursive: true });
    for (let i = 0; i < 30; i++) writeFileSync(`${src}/d${d}/f${i}`, 'x'.repeat(rnd(500)));
    writeFileSync(`${src}/d${d}/sub/s`, 'sub');
  }
  mkdirSync(`${src}/d0!`); // after d0's contents in scan order, before d0 bytewise
  writeFileSync(`${src}/d0!/z`, 'z');
  symlinkSync('d0/f1', `${src}/ln`);
  linkSync(`${src}/d1/f1`, `${src}/hl`);
  /** What describeTree says of an entry, from its manifest record. */
  const described = (e: ManifestEntry) => {
    const p = Buffer.from(e.path, 'base64').toString('latin1');
    return {
      path: p,
      type: e.type,
      mode: e.mode & 0o7777,
      uid: e.uid,
      gid: e.gid,
      ...(e.type === 'file' ? { size: BigInt(e.size), mtimeNs: BigInt(e.mtimeNs) } : {}),
      ...(e.type === 'file' && e.nlink > 1
        ? { linkGroup: e.link ? Buffer.from(e.link, 'base64').toString('latin1') : p }
        : {}),
      ...(e.type === 'symlink' ? { target: Buffer.from(e.target!, 'base64').toString('latin1') } : {}),
      ...(e.type !== 'symlink' && e.type !== 'dir' && e.type !== 'file' && p !== ''
        ? { mtimeNs: BigInt(e.mtimeNs) }
        : {}),
    };
  };
  const text = (x: unknown) => JSON.stringify(x, (_, v) => (typeof v === 'bigint' ? String(v) : v));
  const live = () => describeTree(src).map(({ digest: _d, sparse: _s, xattrs: _x, ...rest }) => rest);
  const depths: (number | undefined)[] = [];
  for (let g = 0; g <= 20; g++) {
    for (let k = 0; g > 0 && k < 5; k++) {
      const f = `${src}/d${rnd(5)}/f${rnd(30)}`;
      const op = rnd(6);
      if (!existsSync(f) && op !== 5) continue;
      if (op === 0) writeFileSync(f, `changed ${g}`);
      else if (op === 1) rmSync(f, { recursive: true });
      else if (op === 2) execFileSync('chmod', ['600', f]);
      else if (op === 3) {
        rmSync(f, { recursive: true });
        mkdirSync(f);
        writeFileSync(`${f}/in`, 'in');
      } else {
        const to = `${src}/d${rnd(5)}`; // d2 goes at generation 5
        if (!existsSync(to)) continue;
        if (op === 4) renameSync(f, `${to}/r${g}_${k}`);
        else writeFileSync(`${to}/n${g}_${k}`, 'new');
      }
    }
    if (g === 5) rmSync(`${src}/d2`, { recursive: true });
    if (g === 7) rmSync(`${src}/hl`);
    if (g === 9) linkSync(`${src}/d3/sub/s`, `${src}/hl2`);
    if (g === 11) {
      rmSync(`${src}/d0!`, { recursive: true });
      writeFileSync(`${src}/d0!`, 'now a file');
    }
    const want = live();
    const snap = (await backup(repo, src, { threads: 1 })).snapshot!;
    depths.push(snap.manifest.depth);
    const got = [...readManifest(`${repo}/manifests/${snap.id}`)].map(described);
    if (text(got) !== text(want)) {
      t.same(JSON.parse(text(got)), JSON.parse(text(want)), `generation ${g}`);
      break;
    }
  }
  t.same(
    depths,
    [undefined, ...Array.from({ length: 16 }, (_, k) => k + 1), undefined, 1, 2, 3],
    'deltas, then a full one',
  );
  t.same((await verify(repo, { readData: true })).problems, []);
});

t.test(
  'a damaged manifest chain: backups go on as full ones; prune removes no manifest it cannot rule out',
  async (t) => {
    const dir = shmDir(t);
    const [src, repo] = [`${dir}/src`, `${dir}/repo`];
    mkdirSync(src);
    for (let i = 0; i < 10; i++) writeFileSync(`${src}/f${i}`, pseudoRandom(500 + i, i));
    const full = (await backup(repo, src)).snapshot!;
    writeFileSync(`${src}/f0`, 'changed');
    const i1 = (await backup(repo, src)).snapshot!;
    writeFileSync(`${src}/f2`, 'changed');
    const i2 = (await backup(repo, src)).snapshot!;
    t.equal(readIndex(`${repo}/manifests/${i2.id}`).base, i1.id);

    // The full manifest at the bottom of i2's chain is damaged: i2 cannot be read, nor compared with.
    const chunk = `${repo}/manifests/${full.id}/000000.jsonl.gz`;
    const data = readFileSync(chunk);
    const k = data.length >> 1;
    data[k] = data[k]! ^ 0xff;
    writeFileSync(chunk, data);
    const warnings: string[] = [];
    writeFileSync(`${src}/f1`, 'changed too');
    const i3 = (await backup(repo, src, { onWarning: (m) => warnings.push(m) })).snapshot!;
    t.match(warnings, [/000000\.jsonl\.gz is damaged.*copies everything/]);
    t.equal(i3.parent, undefined, 'a full backup');
    t.equal(readIndex(`${repo}/manifests/${i3.id}`).base, undefined);
    const out = `${dir}/out`;
    t.same((await restore(repo, i3.id, out)).failures, []);
    same(t, out, src, 'it restores');
    const problems = (await verify(repo)).problems;
    t.ok(
      problems.some((p) => p.snapshot === full.id && /damaged/.test(p.problem)),
      'verify names the damage',
    );

    // An index that cannot be read hides where i2's chain goes: no manifest is removed as an orphan.
    const index = `${repo}/manifests/${i1.id}/index.json`;
    const saved = readFileSync(index);
    writeFileSync(index, '{not json');
    t.same(
      prune(repo, { last: 2 })
        .remove.map((s) => s.id)
        .sort(),
      [full.id, i1.id].sort(),
    );
    t.ok(existsSync(`${repo}/manifests/${full.id}`) && existsSync(`${repo}/manifests/${i1.id}`), 'kept');
    writeFileSync(index, saved);
    prune(repo, { last: 1 });
    t.same(readdirSync(`${repo}/manifests`), [i3.id], 'and removed once the chains can be read');

    // A line naming two paths is refused, whichever a reader would have taken.
    const m3 = `${repo}/manifests/${i3.id}`;
    const lines = gunzipSync(readFileSync(`${m3}/000000.jsonl.gz`))
      .toString()
      .split('\n');
    lines[1] = lines[1]!.replace(/}$/, `,"path":"${Buffer.from('elsewhere').toString('base64')}"}`);
    const gz = gzipSync(lines.join('\n'));
    writeFileSync(`${m3}/000000.jsonl.gz`, gz);
    const idx = readIndex(m3);
    idx.chunks[0]!.xxh64 = new native.Xxh64().update(gz).digest();
    writeFileSync(`${m3}/index.json`, JSON.stringify(idx));
    t.throws(() => [...readManifest(m3)], { code: 'MANIFEST_INVALID', message: /ambiguous path/ });
  },
);

t.test('statPrefix is how the writer begins the line of an entry, for every kind of entry', async (t) => {
  const dir = shmDir(t);
  makeTree(dir);
  if (isRoot) execFileSync('mknod', [`${dir}/chardev`, 'c', '1', '3']);
  const kinds = new Set<string>();
  for await (const e of scan(dir)) {
    kinds.add(e.type);
    const line = JSON.stringify({ ...toManifestEntry(e), hash: '0123456789abcdef' });
    t.ok(line.startsWith(statPrefix(e)!), `${e.type} ${e.path.toString('latin1')}`);
    // Any change of the stat identity breaks the prefix.
    for (const change of [
      { size: e.size + 1 },
      { mtimeNs: e.mtimeNs + 1n },
      { ino: e.ino + 1n },
      { mode: e.mode ^ 1 },
    ]) {
      if (line.startsWith(statPrefix({ ...e, ...change })!))
        t.fail(`${JSON.stringify(change, (_, v) => String(v))} unseen`);
    }
  }
  t.ok(kinds.has('file') && kinds.has('dir') && kinds.has('symlink') && kinds.has('fifo'), [...kinds].join(' '));
});

t.test('a repository of format 1 becomes 2 at its next backup; a newer one is refused', async (t) => {
  const dir = shmDir(t);
  const [src, repo] = [`${dir}/src`, `${dir}/repo`];
  mkdirSync(src);
  writeFileSync(`${src}/f`, 'x');
  await backup(repo, src);
  const config = JSON.parse(readFileSync(`${repo}/config.json`, 'utf8'));
  writeFileSync(`${repo}/config.json`, JSON.stringify({ ...config, version: 1 }));
  t.equal(Repository.open(repo).config.version, 1, 'read as it is');
  await backup(repo, src);
  t.equal(
    JSON.parse(readFileSync(`${repo}/config.json`, 'utf8')).version,
    2,
    'a backup marks it 2 before writing a delta',
  );
  writeFileSync(`${repo}/config.json`, JSON.stringify({ ...config, version: 3 }));
  t.throws(() => Repository.open(repo), { code: 'REPO_VERSION' });
});

t.test('kill -9 during backup and during prune; rerun; verify comes out clean', async (t) => {
  const dir = shmDir(t);
  const [src, repo] = [`${dir}/src`, `${dir}/repo`];
  makeTree(src);
  for (let i = 0; i < 600; i++) writeFileSync(`${src}/docs/many${i}`, pseudoRandom(3000, i));
  let killed = 0;
  let sawStale = false;
  for (const delay of [300, 700, 1200, 1800]) {
    // Each run takes over the lock the previous killed one left, and resumes its backup.
    const child = spawn(process.execPath, [bin, 'backup', '--break-lock', '-r', repo, src], { stdio: 'ignore' });
    const code = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => child.kill('SIGKILL'), delay);
      child.on('exit', (c) => (clearTimeout(timer), resolve(c)));
    });
    if (code === null) killed++;
    if (!sawStale && existsSync(`${repo}/lock`)) {
      sawStale = true;
      const r = spawnSync(process.execPath, [bin, 'backup', '-r', repo, src], { encoding: 'utf8' });
      t.equal(r.status, 1, 'a killed run leaves its lock: the next run without --break-lock stops');
      t.match(r.stderr, /stale lock .*--break-lock/);
    }
  }
  t.ok(killed >= 1, `${killed} backups killed`);
  const done = spawnSync(process.execPath, [bin, 'backup', '--break-lock', '-r', repo, src], { encoding: 'utf8' });
  t.equal(done.status, 0, done.stderr);
  const snaps = Repository.open(repo).snapshots();
  t.ok(snaps.length >= 1);
  t.same((await verify(repo, { readData: true })).problems, [], 'no snapshot references missing data');
  const out = `${dir}/out`;
  await restore(repo, 'latest', out);
  same(t, out, src, 'the resumed snapshot restores the tree');

  // Three more snapshots, then a prune killed midway; rerun.
  for (let i = 0; i < 3; i++) {
    appendFileSync(`${src}/docs/f${i}.txt`, `v${i}`);
    spawnSync(process.execPath, [bin, 'backup', '-r', repo, src]);
  }
  const child = spawn(process.execPath, [bin, 'prune', '-r', repo, '--keep-last', '1'], { stdio: 'ignore' });
  setTimeout(() => child.kill('SIGKILL'), 150);
  await new Promise((r) => child.on('exit', r));
  const again = spawnSync(process.execPath, [bin, 'prune', '--break-lock', '-r', repo, '--keep-last', '1'], {
    encoding: 'utf8',
  });
  t.equal(again.status, 0, again.stderr);
  t.equal(Repository.open(repo).snapshots().length, 1, 'one snapshot left');
  t.same(Repository.open(repo).orphans(), [], 'nothing left behind');
  t.same((await verify(repo, { readData: true })).problems, []);
  await restore(repo, 'latest', `${dir}/out2`);
  same(t, `${dir}/out2`, src, 'the kept snapshot still restores');

  // A restore killed at several moments, then run to the end: the tree as it was, nothing left over.
  const out3 = `${dir}/out3`;
  let restoresKilled = 0;
  for (const delay of [250, 500, 800]) {
    const child = spawn(process.execPath, [bin, 'restore', '-r', repo, 'latest', out3], { stdio: 'ignore' });
    const code = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => child.kill('SIGKILL'), delay);
      child.on('exit', (c) => (clearTimeout(timer), resolve(c)));
    });
    if (code === null) restoresKilled++;
  }
  t.ok(restoresKilled >= 1, `${restoresKilled} restores killed`);
  const finished = await restore(repo, 'latest', out3);
  t.same(finished.failures, []);
  t.equal(
    finished.restoredFiles,
    finished.summary.files + finished.summary.skipped,
    'each file copied or found in place',
  );
  same(t, out3, src, 'the resumed restore gives the tree');
});

t.test('a corrupted data file: verify names it; restore refuses it and restores the rest', async (t) => {
  const dir = shmDir(t);
  const [src, repo] = [`${dir}/src`, `${dir}/repo`];
  makeTree(src);
  const { snapshot } = await backup(repo, src);
  const victim = `${repo}/trees/${snapshot!.id}/docs/f11.txt`;
  const bytes = readFileSync(victim);
  bytes[5] = bytes[5]! ^ 1;
  writeFileSync(victim, bytes); // same size: only reading the data finds it
  t.same((await verify(repo)).problems, [], 'structure alone cannot see it');
  // A file slipped into a snapshot's tree is not part of the snapshot: verify says so.
  writeFileSync(`${repo}/trees/${snapshot!.id}/docs/intruder`, 'x');
  t.match((await verify(repo)).problems, [{ path: 'docs/intruder', problem: /not in its manifest/ }]);
  rmSync(`${repo}/trees/${snapshot!.id}/docs/intruder`);
  const v = await verify(repo, { readData: true });
  t.equal(v.problems.length, 1);
  t.match(v.problems[0], { path: 'docs/f11.txt', problem: /data damaged: XXH64/ });
  const cli = spawnSync(process.execPath, [bin, 'verify', '--read-data', '-r', repo], { encoding: 'utf8' });
  t.equal(cli.status, 1);
  t.match(cli.stderr, /docs\/f11\.txt: data damaged/);
  const out = `${dir}/out`;
  const r = await restore(repo, 'latest', out);
  t.equal(r.failures.length, 1);
  t.match(r.failures[0], { error: { code: 'DIGEST_MISMATCH' } });
  t.notOk(existsSync(`${out}/docs/f11.txt`), 'the damaged file is not left in place');
  t.equal(
    readFileSync(`${out}/docs/f12.txt`).equals(readFileSync(`${src}/docs/f12.txt`)),
    true,
    'the rest is restored',
  );
});

t.test('a hostile manifest is refused; a symlink planted in the destination is not followed', async (t) => {
  const dir = shmDir(t);
  const [src, repo] = [`${dir}/src`, `${dir}/repo`];
  mkdirSync(`${src}/d`, { recursive: true });
  writeFileSync(`${src}/d/x`, 'x');
  const { snapshot } = await backup(repo, src);
  const id = snapshot!.id;
  // Rewrite the manifest so that it is well-formed, with valid digests, but names ../../escape.
  const mdir = `${repo}/manifests/${id}`;
  const entries = [...readManifest(mdir)];
  entries.push({ ...entries.at(-1)!, path: Buffer.from('../../escape').toString('base64') });
  rewriteManifest(mdir, entries);
  await t.rejects(restore(repo, id, `${dir}/out`), { code: 'MANIFEST_INVALID', message: /'\.\.' component/ });
  t.notOk(existsSync(`${dir}/out`), 'nothing written');
  t.match((await verify(repo)).problems[0], { problem: /refused entry path/ });

  // A clean repository, and a destination where d is a symlink planted to lead elsewhere.
  const repo2 = `${dir}/repo2`;
  await backup(repo2, src);
  mkdirSync(`${dir}/elsewhere`);
  mkdirSync(`${dir}/out2`);
  symlinkSync(`${dir}/elsewhere`, `${dir}/out2/d`);
  const r = await restore(repo2, 'latest', `${dir}/out2`);
  t.equal(r.failures.length, 0);
  t.ok(
    statSync(`${dir}/out2/d`).isDirectory() && !native.stat(`${dir}/out2/d`).mode.toString(8).startsWith('12'),
    'd is a directory now',
  );
  t.notOk(existsSync(`${dir}/elsewhere/x`), 'nothing was written through the symlink');
});

t.test('one writer at a time; a stale lock is named and broken on request', async (t) => {
  const dir = shmDir(t);
  const repo = Repository.open(`${dir}/repo`, true);
  const unlock = repo.lock('test');
  t.throws(() => repo.lock('backup'), { code: 'REPO_LOCKED', message: /locked \(test by PID \d+/ });
  unlock();
  writeFileSync(
    `${dir}/repo/lock`,
    JSON.stringify({ pid: 999999999, host: (await import('node:os')).hostname(), operation: 'backup', time: 'then' }),
  );
  t.throws(() => repo.lock('backup'), { code: 'REPO_LOCKED', message: /stale lock/ });
  const u = repo.lock('backup', true);
  u();
});

t.test('verify subsets cover every file exactly once over n/m', async (t) => {
  const paths = Array.from({ length: 2000 }, (_, i) => Buffer.from(`dir/file${i}`));
  const parts = [1, 2, 3, 4, 5, 6, 7].map((n) => subsetOf(`${n}/7`));
  t.ok(
    paths.every((p) => parts.filter((f) => f(p)).length === 1),
    'each path in exactly one of 1/7 .. 7/7',
  );
  const five = paths.filter(subsetOf('5%')).length;
  t.ok(five > 60 && five < 140, `5% of 2000 is about 100 (${five})`);
  for (const bad of ['0/7', '8/7', '7', '0%', '101%', 'x']) t.throws(() => subsetOf(bad), RangeError, bad);
});

t.test('retention: keep-last/daily/weekly/monthly/yearly as restic keeps them', async (t) => {
  // One snapshot a day at 02:00 for 400 days, and an extra one on the last day.
  const snaps = Array.from({ length: 400 }, (_, i) => ({
    id: `s${i}`,
    time: new Date(Date.UTC(2025, 0, 1 + i, 2)).toISOString(),
  }));
  snaps.push({ id: 'extra', time: new Date(Date.UTC(2025, 0, 400, 14)).toISOString() });
  const { keep, remove } = applyRetention(snaps, { daily: 7, weekly: 4, monthly: 12 });
  t.equal(keep.length + remove.length, snaps.length);
  t.same(
    keep.slice(0, 7).map((s) => s.time.slice(0, 10)),
    Array.from({ length: 7 }, (_, i) => new Date(Date.UTC(2025, 0, 400 - i)).toISOString().slice(0, 10)),
  );
  t.equal(keep[0]!.id, 'extra', 'the newest of a day is the one kept');
  t.notOk(
    keep.some((s) => s.id === 's399'),
    'an older one of the same day goes',
  );
  const months = new Set(keep.map((s) => s.time.slice(0, 7)));
  t.equal(months.size, 12, 'twelve months represented');
  t.equal(applyRetention(snaps, { last: 3 }).keep.length, 3);
  t.equal(applyRetention(snaps, { yearly: 5 }).keep.length, 2, 'two years have snapshots');
  t.equal(applyRetention(snaps, {}).remove.length, 0, 'an empty policy removes nothing');
  t.throws(() => applyRetention(snaps, { daily: -1 }), RangeError);
  // ISO weeks: 2024-12-30 (Monday) is in 2025-W01; 2021-01-03 (Sunday) in 2020-W53.
  const w = applyRetention(
    [
      { id: 'a', time: '2024-12-30T01:00:00Z' },
      { id: 'b', time: '2025-01-05T01:00:00Z' },
      { id: 'c', time: '2021-01-03T01:00:00Z' },
      { id: 'd', time: '2020-12-28T01:00:00Z' },
    ],
    { weekly: 10 },
  );
  t.same(
    w.keep.map((s) => s.id),
    ['b', 'c'],
  );
  t.throws(() => prune(`${shmDir(t)}/none`, {}), { message: /at least one --keep/ });
});

t.test('configuration: tiers, and flags over environment over file', async (t) => {
  const dir = shmDir(t);
  const file = `${dir}/conf.json`;
  writeFileSync(
    file,
    JSON.stringify({
      repository: 'repo-from-file',
      tiers: {
        scratch: { sources: [`${dir}/scratch`], backup: false },
        home: { sources: [`${dir}/home`], exclude: ['*.tmp'], retention: { daily: 7 } },
      },
    }),
  );
  const c = loadConfig(file);
  t.equal(c.repository, `${dir}/repo-from-file`, 'relative to the config file');
  t.same(
    c.jobs(undefined, undefined).map((j) => [j.source, j.tags]),
    [[`${dir}/home`, ['tier:home']]],
    'scratch is never backed up',
  );
  t.throws(() => c.jobs(`${dir}/scratch`, undefined), /never backed up/);
  t.same(c.retention('home'), { daily: 7 });
  t.ok(c.jobs(`${dir}/home`, undefined)[0]!.filter!.excludes({ path: Buffer.from('a.tmp'), type: 'file', size: 1 }));

  mkdirSync(`${dir}/home`);
  writeFileSync(`${dir}/home/keep.txt`, 'k');
  writeFileSync(`${dir}/home/drop.tmp`, 'd');
  const env = { ...process.env, STRIPEMOVER_CONFIG: file, STRIPEMOVER_REPO: `${dir}/repo-from-env` };
  const r = spawnSync(process.execPath, [bin, 'backup'], { env, encoding: 'utf8' });
  t.equal(r.status, 0, r.stderr);
  t.ok(existsSync(`${dir}/repo-from-env/config.json`), 'the environment overrides the file');
  const s = Repository.open(`${dir}/repo-from-env`).snapshots()[0]!;
  t.same(s.tags, ['tier:home']);
  t.notOk(existsSync(`${dir}/repo-from-env/trees/${s.id}/drop.tmp`), "the tier's excludes apply");
  const f = spawnSync(process.execPath, [bin, 'snapshots', '-r', `${dir}/repo-from-flag`], { env, encoding: 'utf8' });
  t.match(f.stderr, /no stripemover repository at .*repo-from-flag/, 'the flag overrides the environment');
  t.equal(f.status, 1);
});

t.test('review fixes: committed leftovers, hard links of a refused file, symlink targets, --checksum', async (t) => {
  const dir = shmDir(t);
  const [src, repo] = [`${dir}/src`, `${dir}/répo`]; // a repository path that is not ASCII
  mkdirSync(src);
  writeFileSync(`${src}/a`, 'one');
  writeFileSync(`${src}/keep`, 'k');
  linkSync(`${src}/a`, `${src}/a2`);
  symlinkSync('a', `${src}/l`);
  const first = (await backup(repo, src)).snapshot!;
  // A pending record left beside its committed snapshot (killed between the last two steps)
  // must never reopen that snapshot.
  writeFileSync(
    `${repo}/pending/${first.id}.json`,
    JSON.stringify({ id: first.id, source: first.source, host: first.host, started: first.time }),
  );
  rmSync(`${src}/keep`);
  const second = await backup(repo, src);
  t.not(second.snapshot!.id, first.id, 'a new snapshot, not the committed one resumed');
  t.equal(second.resumed, false);
  t.ok(existsSync(`${repo}/trees/${first.id}/keep`), 'the first snapshot is untouched');

  // --checksum: contents compared with the parent's digests, from the source's real paths.
  const sums = await backup(repo, src, { checksum: true });
  t.same(sums.failures, []);
  t.equal(sums.snapshot!.stats.unchangedFiles, sums.snapshot!.stats.files, 'all unchanged by content');

  // The tree of the latest snapshot damaged: a's bytes (shared by a2) and l's target.
  const tree = `${repo}/trees/${sums.snapshot!.id}`;
  rmSync(`${tree}/l`);
  symlinkSync('/etc/shadow', `${tree}/l`);
  writeFileSync(`${dir}/other`, 'two'); // same size, other bytes, in place of a (a2 keeps the old inode)
  renameSync(`${dir}/other`, `${tree}/a`);
  const problems = (await verify(repo, { readData: true })).problems.map((p) => `${p.path}: ${p.problem}`);
  t.ok(
    problems.some((p) => p.startsWith('l: symlink target differs')),
    problems.join('\n'),
  );
  t.ok(
    problems.some((p) => p.startsWith('a2: not the same file')),
    'a broken hard link is seen',
  );
  t.ok(problems.some((p) => p.startsWith('a: data damaged')));
  const out = `${dir}/out`;
  const r = await restore(repo, 'latest', out);
  t.notOk(existsSync(`${out}/a`) || existsSync(`${out}/a2`), 'no name of the refused inode is left');
  let link: Buffer | undefined;
  try {
    link = native.readlink(`${out}/l`);
  } catch {
    link = undefined;
  }
  t.equal(link, undefined, 'a symlink whose target differs from the manifest is not left in place');
  t.ok(r.failures.length >= 3);
});

t.test(
  'a file an interrupted backup copied, then rewritten keeping its size and mtime, is backed up again',
  async (t) => {
    const dir = shmDir(t);
    const [src, repo] = [`${dir}/src`, `${dir}/repo`];
    mkdirSync(`${src}/a`, { recursive: true });
    writeFileSync(`${src}/a/file`, 'version one');
    // Large, last in scan order: the run is still copying it when killed.
    writeFileSync(`${src}/zz-big`, pseudoRandom(192 << 20, 9));
    const child = spawn(process.execPath, [bin, 'backup', '--verify', '--threads', '1', '-r', repo, src], {
      stdio: 'ignore',
    });
    const exited = new Promise((resolve) => child.on('exit', resolve));
    const copied = () => {
      try {
        return readdirSync(`${repo}/trees`).some((id) => existsSync(`${repo}/trees/${id}/a/file`));
      } catch {
        return false;
      }
    };
    while (!copied() && child.exitCode === null) await new Promise((r) => setTimeout(r, 2));
    child.kill('SIGKILL');
    await exited;
    t.same(readdirSync(`${repo}/snapshots`), [], 'killed before its snapshot was committed');
    // Rewritten as a job may do: same length, mtime put back (ctime still moves).
    const { mtime } = statSync(`${src}/a/file`);
    writeFileSync(`${src}/a/file`, 'version two');
    utimesSync(`${src}/a/file`, mtime, mtime);
    const resumed = await backup(repo, src, { breakLock: true });
    t.ok(resumed.resumed, 'the next backup resumes the interrupted one');
    const next = await backup(repo, src);
    t.equal(next.snapshot?.stats.copiedFiles, 1, 'the next backup copies it again');
    const out = `${dir}/out`;
    await restore(repo, 'latest', out);
    t.equal(readFileSync(`${out}/a/file`, 'utf8'), 'version two', 'the latest snapshot holds what the source holds');
  },
);

t.test(
  'a large file that fails leaves nothing of itself in the committed snapshot',
  { skip: !isRoot && 'runs the backup as nobody via setpriv' },
  async (t) => {
    const dir = shmDir(t);
    const [src, repo] = [`${dir}/src`, `${dir}/repo`];
    mkdirSync(src);
    writeFileSync(`${src}/small`, 'fine');
    writeFileSync(`${src}/big`, Buffer.alloc(70 << 20, 1)); // more than one 64 MiB chunk
    execFileSync('chown', ['-R', 'nobody', dir]);
    execFileSync('chmod', ['000', `${src}/big`]);
    const r = spawnSync(
      'setpriv',
      ['--reuid=nobody', '--regid=nogroup', '--clear-groups', process.execPath, bin, 'backup', '-r', repo, src],
      { encoding: 'utf8' },
    );
    t.equal(r.status, 1, 'exit 1: a file failed');
    t.match(r.stderr, /EACCES.*big/);
    const [id] = readdirSync(`${repo}/trees`);
    t.same(readdirSync(`${repo}/trees/${id}`).sort(), ['small'], 'no temporary file or chunk journal in the tree');
    t.same((await verify(repo)).problems, []);
  },
);

t.test('restore --path: names are bytes (UTF-8 or not); a path that matches nothing is an error', async (t) => {
  const dir = shmDir(t);
  const [src, repo] = [`${dir}/src`, `${dir}/repo`];
  mkdirSync(src);
  writeFileSync(`${src}/café`, 'accent');
  const raw = Buffer.concat([Buffer.from(`${src}/bad`), Buffer.from([0xff]), Buffer.from('name')]);
  writeFileSync(raw, 'not utf-8');
  writeFileSync(`${src}/other`, 'other');
  const { snapshot } = await backup(repo, src);
  const id = snapshot!.id;
  const r1 = spawnSync(process.execPath, [bin, 'restore', '-r', repo, id, `${dir}/out1`, '--path', 'café'], {
    encoding: 'utf8',
  });
  t.equal(r1.status, 0, r1.stderr);
  t.same(readdirSync(`${dir}/out1`), ['café']);
  // A target given as a symlink to a directory whose name is not UTF-8: written there, through it.
  const odd = Buffer.concat([Buffer.from(`${dir}/t`), Buffer.from([0xff])]);
  mkdirSync(odd);
  symlinkSync(odd, `${dir}/link`);
  t.same((await restore(repo, id, `${dir}/link`, { paths: ['other'] })).failures, []);
  t.same(readdirSync(odd), ['other'], 'restored into the directory the symlink names');
  t.same(readdirSync(dir).sort(), ['link', 'out1', 'repo', 'src', 't\ufffd'], 'and nowhere else');
  // A non-UTF-8 name, given as the bytes on the command line (execve passes them through).
  const r2 = spawnSync(
    'sh',
    [
      '-c',
      `"$0" "$1" restore -r "$2" "$3" "$4" --path "$(printf 'bad\\377name')"`,
      process.execPath,
      bin,
      repo,
      id,
      `${dir}/out2`,
    ],
    { encoding: 'utf8' },
  );
  t.equal(r2.status, 0, r2.stderr);
  t.same(readdirSync(`${dir}/out2`, { encoding: 'buffer' }), [
    Buffer.concat([Buffer.from('bad'), Buffer.from([0xff]), Buffer.from('name')]),
  ]);
  const r3 = spawnSync(process.execPath, [bin, 'restore', '-r', repo, id, `${dir}/out3`, '--path', 'missing*'], {
    encoding: 'utf8',
  });
  t.equal(r3.status, 1, 'exit 1');
  t.match(r3.stderr, /--path 'missing\*': nothing in snapshot .* matches/);
});

t.test(
  'restore follows the manifest, not the tree: what the tree lacks is named, what it adds is left out',
  async (t) => {
    const dir = shmDir(t);
    const [src, repo] = [`${dir}/src`, `${dir}/repo`];
    mkdirSync(`${src}/d`, { recursive: true });
    for (const name of ['a', 'b', 'c', 'z']) writeFileSync(`${src}/d/${name}`, name);
    linkSync(`${src}/d/c`, `${src}/d/c2`);
    symlinkSync('a', `${src}/d/s`);
    symlinkSync('b', `${src}/d/s2`);
    const { snapshot } = await backup(repo, src);
    const tree = `${repo}/trees/${snapshot!.id}`;
    // The tree changed by hand since: a file gone, a symlink out and a FIFO added, a file
    // replaced by a directory, a symlink retargeted.
    rmSync(`${tree}/d/b`);
    symlinkSync('/etc', `${tree}/d/evil`);
    execFileSync('mkfifo', [`${tree}/d/pipe`]);
    rmSync(`${tree}/d/s`);
    symlinkSync('c', `${tree}/d/s`);
    rmSync(`${tree}/d/z`);
    mkdirSync(`${tree}/d/z`);
    writeFileSync(`${tree}/d/z/inside`, 'planted');
    const r = await restore(repo, 'latest', `${dir}/out`);
    const said = r.failures.map((f) => `${f.error.code} ${f.path.slice(dir.length)}`).sort();
    t.same(said, [
      'MISSING_FROM_SNAPSHOT /out/d/b',
      'MISSING_FROM_SNAPSHOT /out/d/z',
      'NOT_IN_MANIFEST /out/d/evil',
      'NOT_IN_MANIFEST /out/d/pipe',
      'NOT_IN_MANIFEST /out/d/z',
      'SYMLINK_MISMATCH /out/d/s',
    ]);
    t.same(readdirSync(`${dir}/out/d`).sort(), ['a', 'c', 'c2', 's2'], 'the rest, hard link included');
    t.equal(r.restoredFiles, 2, 'a and c (c2 is a name of c)');
    t.equal(statSync(`${dir}/out/d/c`).ino, statSync(`${dir}/out/d/c2`).ino);
    // The CLI says it too, with exit 1.
    const cli = spawnSync(process.execPath, [bin, 'restore', '-r', repo, 'latest', `${dir}/out2`], {
      encoding: 'utf8',
    });
    t.equal(cli.status, 1);
    t.match(cli.stderr, /d\/b: a file in the manifest but not in the snapshot tree/);
  },
);

t.test('a backup of a source that cannot be read says so and leaves no pending record', async (t) => {
  const dir = shmDir(t);
  const repo = `${dir}/repo`;
  await t.rejects(backup(repo, `${dir}/missing`), { code: 'SOURCE_UNREADABLE', message: /ENOENT.*missing/ });
  t.same(readdirSync(`${repo}/pending`), [], 'nothing left to resume');
  t.notOk(existsSync(`${repo}/lock`), 'the lock is released');
});

t.test('a damaged snapshot record is named; the others still list, back up, restore, verify and prune', async (t) => {
  const dir = shmDir(t);
  const [src, repo] = [`${dir}/src`, `${dir}/repo`];
  mkdirSync(src);
  writeFileSync(`${src}/a`, 'a');
  const ids: string[] = [];
  for (let i = 0; i < 3; i++) {
    writeFileSync(`${src}/f${i}`, `file ${i}`);
    ids.push((await backup(repo, src)).snapshot!.id);
  }
  writeFileSync(`${repo}/snapshots/${ids[1]}.json`, '{"id": "trunc'); // the middle one, truncated
  const listed = spawnSync(process.execPath, [bin, 'snapshots', '-r', repo], { encoding: 'utf8' });
  t.equal(listed.status, 1, 'exit 1');
  t.match(listed.stderr, new RegExp(`SNAPSHOT_INVALID: snapshot record .*${ids[1]}\\.json is unreadable`));
  t.equal(listed.stdout.trim().split('\n').length, 2, 'the other two listed');
  const warnings: string[] = [];
  const next = await backup(repo, src, { onWarning: (w) => warnings.push(w) });
  t.equal(next.snapshot?.parent, ids[2], 'the next backup still finds its parent');
  t.match(warnings.join('\n'), /is unreadable: .*: not considered as a parent/, 'and says what it passed over');
  await t.rejects(restore(repo, ids[1]!, `${dir}/out1`), { code: 'SNAPSHOT_INVALID' });
  const r = await restore(repo, ids[0]!, `${dir}/out0`);
  t.same(r.failures, []);
  const v = await verify(repo, { readData: true });
  t.equal(v.snapshots, 3, 'the three readable snapshots verified');
  t.same(
    v.problems.map((p) => p.problem.replace(/ .*/, '')),
    ['snapshot'],
    'one problem: the damaged record',
  );
  prune(repo, { last: 1 });
  t.ok(existsSync(`${repo}/trees/${ids[1]}`), "prune leaves the damaged snapshot's data: it is not an orphan");
});

t.test(
  'review fixes: restore --path of hard links whose first name is outside; latest when the newest record is damaged',
  async (t) => {
    const dir = shmDir(t);
    const [src, repo] = [`${dir}/src`, `${dir}/repo`];
    mkdirSync(`${src}/a_out`, { recursive: true });
    mkdirSync(`${src}/b_in`);
    writeFileSync(`${src}/a_out/first`, 'linked');
    linkSync(`${src}/a_out/first`, `${src}/b_in/second`);
    linkSync(`${src}/a_out/first`, `${src}/b_in/third`);
    const older = (await backup(repo, src)).snapshot!.id;
    const r = await restore(repo, 'latest', `${dir}/out`, { paths: ['b_in'] });
    t.same(r.failures, [], 'both names restored, nothing called missing');
    t.equal(statSync(`${dir}/out/b_in/second`).ino, statSync(`${dir}/out/b_in/third`).ino, 'still one inode');

    writeFileSync(`${src}/new`, 'new');
    const newest = (await backup(repo, src)).snapshot!.id;
    writeFileSync(`${repo}/snapshots/${newest}.json`, '{"id":');
    await t.rejects(restore(repo, 'latest', `${dir}/out2`), {
      code: 'SNAPSHOT_INVALID',
      message: new RegExp(`'latest' may be ${newest}`),
    });
    t.notOk(existsSync(`${dir}/out2`), 'no older snapshot restored in its place');
    const byId = await restore(repo, older, `${dir}/out3`);
    t.same(byId.failures, [], 'the older one by its id still restores');
  },
);

t.test(
  'backup --checksum compares a file stored in units unit by unit: unchanged, it is not copied again',
  async (t) => {
    const dir = shmDir(t);
    const [src, repo] = [`${dir}/src`, `${dir}/repo`];
    mkdirSync(src);
    writeFileSync(`${src}/big`, pseudoRandom((64 << 20) + 4097, 5)); // two units of the default 64 MiB cut
    writeFileSync(`${src}/small`, 'small');
    await backup(repo, src);
    const second = await backup(repo, src, { checksum: true });
    t.equal(second.snapshot?.stats.copiedFiles, 0, 'nothing copied again');
    t.equal(second.snapshot?.stats.unchangedFiles, 2);
    // One byte changed in the second unit, size and mtime kept: found by its digest.
    const { mtime } = statSync(`${src}/big`);
    const fd = openSync(`${src}/big`, 'r+');
    writeSync(fd, Buffer.from([0x42]), 0, 1, (64 << 20) + 100);
    closeSync(fd);
    utimesSync(`${src}/big`, mtime, mtime);
    const third = await backup(repo, src, { checksum: true });
    t.equal(third.snapshot?.stats.copiedFiles, 1, 'the changed one is copied');
    t.same((await verify(repo, { readData: true })).problems, []);
  },
);

t.test('a repository inside its source is left out of its snapshots and of diff --live', async (t) => {
  const dir = shmDir(t);
  const src = `${dir}/src`;
  const repo = `${src}/backups/repo`;
  mkdirSync(`${src}/d`, { recursive: true });
  writeFileSync(`${src}/d/a`, 'a');
  const warnings: string[] = [];
  const onWarning = (m: string) => warnings.push(m);
  const first = (await backup(repo, src, { onWarning })).snapshot!;
  writeFileSync(`${src}/d/b`, 'b');
  const second = (await backup(repo, src, { onWarning })).snapshot!;
  t.match(warnings, [/backups\/repo: the repository itself, left out/, /the repository itself/]);
  const paths = (id: string) =>
    [...readManifest(`${repo}/manifests/${id}`)].map((e) => Buffer.from(e.path, 'base64').toString()).sort();
  t.same(paths(first.id), ['', 'backups', 'd', 'd/a']);
  t.same(paths(second.id), ['', 'backups', 'd', 'd/a', 'd/b'], 'no earlier snapshot inside the next');
  t.same(readdirSync(`${repo}/trees/${second.id}/backups`), [], 'nor in its tree');
  const changes: string[] = [];
  for await (const c of diffLive(repo, 'latest', src)) changes.push(c.change);
  t.same(changes, [], 'the live tree equals the snapshot');
});

t.test("restore over files already there keeps those whose bytes are the manifest's, restores the rest", async (t) => {
  const dir = shmDir(t);
  const [src, repo, out] = [`${dir}/src`, `${dir}/repo`, `${dir}/out`];
  makeTree(src);
  const { snapshot } = await backup(repo, src);
  const first = await restore(repo, snapshot!.id, out);
  t.same(first.failures, []);
  // Damage one restored file without changing its size or mtime (bit rot, or an in-place write).
  const victim = `${out}/docs/f11.txt`;
  const { atime, mtime } = statSync(victim);
  const bytes = readFileSync(victim);
  bytes[3] = bytes[3]! ^ 0xff;
  writeFileSync(victim, bytes);
  utimesSync(victim, atime, mtime);
  const again = await restore(repo, snapshot!.id, out);
  t.same(again.failures, [], 'nothing refused');
  t.equal(again.summary.files, 1, 'the damaged file alone is copied again');
  t.equal(again.restoredFiles, first.restoredFiles, 'every file counted: copied, or in place and checked');
  t.equal(again.summary.skipped, first.restoredFiles - 1);
  same(t, out, src, 'the tree is whole again');
});

t.test('review fixes: no restore into the repository, no backup of it; prune counts are whole numbers', async (t) => {
  const dir = shmDir(t);
  const [src, repo] = [`${dir}/src`, `${dir}/repo`];
  mkdirSync(src);
  writeFileSync(`${src}/f`, 'v1');
  const s1 = (await backup(repo, src)).snapshot!.id;
  writeFileSync(`${src}/f`, 'v2, longer');
  const s2 = (await backup(repo, src)).snapshot!.id;
  for (const target of [`${repo}/trees/${s2}`, repo, `${repo}/new/dir`]) {
    await t.rejects(restore(repo, s1, target), { code: 'TARGET_IN_REPOSITORY' }, target);
  }
  symlinkSync(`${repo}/trees`, `${dir}/into-repo`);
  await t.rejects(restore(repo, s1, `${dir}/into-repo/${s2}`), { code: 'TARGET_IN_REPOSITORY' }, 'through a symlink');
  mkdirSync(`${repo}/trees/${s2}/sub`);
  symlinkSync(`${repo}/trees/${s2}/sub`, `${dir}/sub-link`);
  await t.rejects(restore(repo, s1, `${dir}/sub-link/..`), { code: 'TARGET_IN_REPOSITORY' }, "a symlink, then '..'");
  rmSync(`${repo}/trees/${s2}/sub`, { recursive: true });
  t.equal(readFileSync(`${repo}/trees/${s2}/f`, 'utf8'), 'v2, longer', 'the later snapshot is intact');
  t.same((await verify(repo, { readData: true })).problems, []);
  await t.rejects(backup(repo, repo), { code: 'SOURCE_IN_REPOSITORY' });
  await t.rejects(backup(repo, `${repo}/trees`), { code: 'SOURCE_IN_REPOSITORY' });
  for (const bad of ['0', '', '0x2', ' 2', '1e1', '-1', '1.5']) {
    const r = spawnSync(process.execPath, [bin, 'prune', '-r', repo, '--keep-last', bad], { encoding: 'utf8' });
    t.equal(r.status, 2, `--keep-last '${bad}': a usage error`);
  }
  t.equal(Repository.open(repo).snapshots().length, 2, 'nothing pruned');
});

t.test(
  'verify --read-data reads a file shared by snapshots once, and names each snapshot holding a damaged one',
  async (t) => {
    const dir = shmDir(t);
    const [src, repo] = [`${dir}/src`, `${dir}/repo`];
    mkdirSync(`${src}/d`, { recursive: true });
    for (let i = 0; i < 20; i++) writeFileSync(`${src}/d/f${i}`, pseudoRandom(5000 + i, i));
    const ids = [(await backup(repo, src)).snapshot!.id];
    writeFileSync(`${src}/d/f0`, 'changed');
    ids.push((await backup(repo, src)).snapshot!.id);
    ids.push((await backup(repo, src)).snapshot!.id);
    const clean = await verify(repo, { readData: true });
    t.same(clean.problems, []);
    t.equal(clean.filesRead, 21, 'the 20 files, and f0 once more for its new version');
    // f5 is one inode in all three trees: damaged once, it is damaged in each.
    const victim = `${repo}/trees/${ids[0]}/d/f5`;
    const bytes = readFileSync(victim);
    bytes[9] = bytes[9]! ^ 1;
    writeFileSync(victim, bytes);
    const r = await verify(repo, { readData: true });
    t.same(
      r.problems.map((p) => `${p.snapshot} ${p.path}`),
      ids.map((id) => `${id} d/f5`),
      'every snapshot that holds it',
    );
    t.equal(r.filesRead, 21);
  },
);

t.test(
  'review fixes: a refused hard-linked file and its names, each named once; a manifest link to nothing',
  async (t) => {
    const dir = shmDir(t);
    const [src, repo] = [`${dir}/src`, `${dir}/repo`];
    mkdirSync(`${src}/a`, { recursive: true });
    mkdirSync(`${src}/b`);
    writeFileSync(`${src}/a/f`, pseudoRandom(5000, 3));
    writeFileSync(`${src}/a/other`, 'fine');
    linkSync(`${src}/a/f`, `${src}/b/f`);
    linkSync(`${src}/a/f`, `${src}/b/g`);
    const id = (await backup(repo, src)).snapshot!.id;
    const victim = `${repo}/trees/${id}/a/f`;
    const bytes = readFileSync(victim);
    bytes[7] = bytes[7]! ^ 1;
    writeFileSync(victim, bytes);
    const r = await restore(repo, id, `${dir}/out`);
    t.same(r.failures.map((f) => `${f.error.code} ${f.path.slice(dir.length)}`).sort(), [
      'DIGEST_MISMATCH /out/a/f',
      'DIGEST_MISMATCH /out/b/f',
      'DIGEST_MISMATCH /out/b/g',
    ]);
    t.equal(r.restoredFiles, 1, 'a/other');
    t.same(readdirSync(`${dir}/out/b`), [], 'no name of the refused file left');
    // A later name whose first name the manifest lacks: refused before anything is written.
    const mdir = `${repo}/manifests/${id}`;
    const entries = [...readManifest(mdir)].map((e) =>
      e.link !== undefined ? { ...e, link: Buffer.from('nowhere').toString('base64') } : e,
    );
    rewriteManifest(mdir, entries);
    await t.rejects(restore(repo, id, `${dir}/out2`), { code: 'MANIFEST_INVALID', message: /not the first name/ });
    t.notOk(existsSync(`${dir}/out2`), 'nothing written');
  },
);

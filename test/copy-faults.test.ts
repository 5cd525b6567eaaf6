// Interruptions and faults: kill -9 at random moments then resume, a source that keeps
// changing, a full target. After each, what is at the destination is either complete and
// right, or absent; a rerun finishes the job.
import t from 'tap';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import {
  appendFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { copy } from '../src/engine/copy.js';
import { diskDir, isRoot, makeDeepDirs, prng, pseudoRandom } from './helpers/fixtures.js';
import { describeContents, describeTree } from './helpers/tree.js';

const MiB = 1 << 20;
const bin = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'stripemover.js');

/** A seeded tree: many small files in a few directories, and some multi-chunk files. */
function makeTree(root: string, seed: number): void {
  const rand = prng(seed);
  for (let d = 0; d < 10; d++) {
    mkdirSync(`${root}/d${d}`, { recursive: true });
    for (let f = 0; f < 150; f++)
      writeFileSync(`${root}/d${d}/f${f}`, pseudoRandom(1 + Math.floor(rand() * 20000), d * 1000 + f));
  }
  for (let i = 0; i < 4; i++) writeFileSync(`${root}/big${i}`, pseudoRandom(6 * MiB + i * 4097, 77 + i));
}

/** Files a run leaves only while it is unfinished. */
function leftovers(root: string): string[] {
  const found: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.name.startsWith('.sm-')) found.push(`${dir}/${e.name}`);
      if (e.isDirectory()) walk(`${dir}/${e.name}`);
    }
  };
  walk(root);
  return found;
}

t.test('kill -9 at random moments, then a rerun: the copy is complete and exact', async (t) => {
  const dir = diskDir(t);
  makeTree(`${dir}/src`, 5);
  const args = [bin, 'copy', '--chunk-size', String(MiB), '--threads', '4', `${dir}/src`, `${dir}/dst`];
  const delays = [150, 400, 700, 1000];
  let killed = 0;
  for (const delay of delays) {
    const child = spawn(process.execPath, args, { stdio: 'ignore' });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const timer = setTimeout(() => child.kill('SIGKILL'), delay + Math.floor(Math.random() * 200));
    const code = await exited;
    clearTimeout(timer);
    if (code === null) killed++;
  }
  t.ok(killed >= 1, `${killed} of ${delays.length} runs were killed mid-copy`);
  const final = spawnSync(process.execPath, args, { encoding: 'utf8' });
  t.equal(final.status, 0, final.stderr);
  t.same(leftovers(`${dir}/dst`), [], 'no temporary files or journals remain');
  t.same(describeTree(`${dir}/dst`, { dirTimes: true }), describeTree(`${dir}/src`, { dirTimes: true }));
});

t.test('SIGINT stops cleanly with exit 130, and a rerun resumes', async (t) => {
  const dir = diskDir(t);
  makeTree(`${dir}/src`, 9);
  const args = [bin, 'copy', '--json', '--bwlimit', String(8 * MiB), `${dir}/src`, `${dir}/dst`];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  // Interrupt once some files are in place (start-up time varies with the machine's load).
  let interrupted = false;
  child.stdout.on('data', (d: Buffer) => {
    for (const line of d.toString().split('\n').filter(Boolean)) {
      const status = JSON.parse(line);
      if (!interrupted && status.type === 'status' && status.files > 0) {
        interrupted = true;
        child.kill('SIGINT');
      }
    }
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  t.equal(await exited, 130, stderr);
  t.match(stderr, /stopping/);
  const final = spawnSync(process.execPath, [bin, 'copy', `${dir}/src`, `${dir}/dst`], { encoding: 'utf8' });
  t.equal(final.status, 0, final.stderr);
  t.match(final.stderr, /[1-9]\d* skipped/, 'the rerun skipped what the first run finished');
  t.same(describeTree(`${dir}/dst`, { dirTimes: true }), describeTree(`${dir}/src`, { dirTimes: true }));
});

t.test('a file that keeps changing while it is read is reported, never accepted', async (t) => {
  const dir = diskDir(t);
  mkdirSync(`${dir}/src`);
  writeFileSync(`${dir}/src/steady`, pseudoRandom(MiB));
  writeFileSync(`${dir}/src/growing`, pseudoRandom(4 * MiB));
  // An appender that changes the file every 20 ms while a throttled copy reads it.
  const writer = setInterval(() => appendFileSync(`${dir}/src/growing`, 'x'), 20);
  const summary = await copy(`${dir}/src`, `${dir}/dst`, { bwlimit: 8 * MiB, threads: 2 }).done;
  clearInterval(writer);
  t.equal(summary.failed, 1);
  t.equal(summary.failures[0]?.error.code, 'SOURCE_CHANGED');
  t.match(summary.failures[0]?.path, /\/src\/growing$/);
  t.notOk(existsSync(`${dir}/dst/growing`), 'no file under the final name');
  t.ok(readFileSync(`${dir}/dst/steady`).equals(readFileSync(`${dir}/src/steady`)));
});

t.test(
  'a full target: clean errors, no partial file under a final name, resume once space is freed',
  { skip: !isRoot && 'needs root to mount a small tmpfs' },
  async (t) => {
    const dir = diskDir(t);
    mkdirSync(`${dir}/src`);
    for (let i = 0; i < 8; i++) writeFileSync(`${dir}/src/f${i}`, pseudoRandom(MiB, i + 1));
    mkdirSync(`${dir}/dst`);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=3m', 'tmpfs', `${dir}/dst`]);
    t.teardown(() => execFileSync('umount', [`${dir}/dst`]));
    const r = spawnSync(process.execPath, [bin, 'copy', `${dir}/src`, `${dir}/dst`], { encoding: 'utf8' });
    t.equal(r.status, 1, 'exit 1: some files failed');
    t.match(r.stderr, /ENOSPC: No space left on device, write '.*\/dst\/f\d'/, 'names the file that did not fit');
    for (const name of readdirSync(`${dir}/dst`).filter((n) => !n.startsWith('.sm-'))) {
      t.ok(readFileSync(`${dir}/dst/${name}`).equals(readFileSync(`${dir}/src/${name}`)), `${name} is complete`);
    }
    execFileSync('mount', ['-o', 'remount,size=64m', `${dir}/dst`]);
    const again = spawnSync(process.execPath, [bin, 'copy', `${dir}/src`, `${dir}/dst`], { encoding: 'utf8' });
    t.equal(again.status, 0, again.stderr);
    t.same(describeTree(`${dir}/dst`), describeTree(`${dir}/src`));
  },
);

t.test(
  'out of inodes: each directory not made is named once, the rest is copied, a rerun finishes',
  { skip: !isRoot && 'needs root to mount a small tmpfs' },
  async (t) => {
    const dir = diskDir(t);
    for (let d = 0; d < 8; d++) {
      mkdirSync(`${dir}/src/d${d}/sub`, { recursive: true });
      writeFileSync(`${dir}/src/d${d}/f`, `file ${d}`);
      symlinkSync(`../f`, `${dir}/src/d${d}/sub/link`);
    }
    mkdirSync(`${dir}/dst`);
    // Room for the root and a few entries: later directories fail with ENOSPC.
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'nr_inodes=8', 'tmpfs', `${dir}/dst`]);
    t.teardown(() => execFileSync('umount', [`${dir}/dst`]));
    const r = spawnSync(process.execPath, [bin, 'copy', `${dir}/src`, `${dir}/dst`], { encoding: 'utf8' });
    t.equal(r.status, 1, 'exit 1: some entries failed');
    const failedDirs = [...r.stderr.matchAll(/ENOSPC: No space left on device, mkdir '.*\/dst\/(d\d(?:\/sub)?)'/g)].map(
      (m) => m[1],
    );
    t.ok(failedDirs.length > 0, `names the directories not made: ${failedDirs.join(', ')}`);
    t.equal(new Set(failedDirs).size, failedDirs.length, 'each once');
    for (const d of failedDirs) t.notOk(existsSync(`${dir}/dst/${d}`), `${d} is not there`);
    // What was made is right.
    for (let d = 0; d < 8; d++) {
      if (existsSync(`${dir}/dst/d${d}/f`)) t.equal(readFileSync(`${dir}/dst/d${d}/f`, 'utf8'), `file ${d}`);
    }
    execFileSync('mount', ['-o', 'remount,nr_inodes=1000', `${dir}/dst`]);
    const again = spawnSync(process.execPath, [bin, 'copy', `${dir}/src`, `${dir}/dst`], { encoding: 'utf8' });
    t.equal(again.status, 0, again.stderr);
    t.same(describeTree(`${dir}/dst`), describeTree(`${dir}/src`));
  },
);

t.test(
  'a listener that throws on a directory not made ends the run with its error, charged to no file',
  { skip: !isRoot && 'needs root to mount a small tmpfs' },
  async (t) => {
    const dir = diskDir(t);
    for (let d = 0; d < 8; d++) {
      mkdirSync(`${dir}/src/d${d}`, { recursive: true });
      writeFileSync(`${dir}/src/d${d}/f`, `file ${d}`);
    }
    mkdirSync(`${dir}/dst`);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'nr_inodes=4', 'tmpfs', `${dir}/dst`]);
    t.teardown(() => execFileSync('umount', [`${dir}/dst`]));
    const run = copy(`${dir}/src`, `${dir}/dst`);
    const heard: string[] = [];
    run.on('error-record', (r: { path: string; error: { message: string } }) => {
      heard.push(r.error.message);
      if (heard.length === 1) throw new Error('listener boom');
    });
    await t.rejects(run.done, { message: 'listener boom' });
    t.match(heard[0], /ENOSPC.*mkdir/, 'the first record is a directory not made');
    t.notOk(
      heard.some((m) => m.includes('listener boom')),
      `no entry charged with the listener's error: ${heard.join('; ')}`,
    );
  },
);

t.test(
  'a destination without O_TMPFILE (ramfs) gets named temporary files, renamed into place',
  { skip: !isRoot && 'needs root to mount ramfs' },
  async (t) => {
    const dir = diskDir(t);
    mkdirSync(`${dir}/src/sub`, { recursive: true });
    for (let i = 0; i < 20; i++) writeFileSync(`${dir}/src/sub/f${i}`, pseudoRandom(5000 + i, i + 1));
    mkdirSync(`${dir}/dst`);
    execFileSync('mount', ['-t', 'ramfs', 'ramfs', `${dir}/dst`]);
    t.teardown(() => execFileSync('umount', [`${dir}/dst`]));
    const r = spawnSync(process.execPath, [bin, 'copy', '--verify', `${dir}/src`, `${dir}/dst`], { encoding: 'utf8' });
    t.equal(r.status, 0, r.stderr);
    t.same(leftovers(`${dir}/dst`), []);
    t.same(describeTree(`${dir}/dst`), describeTree(`${dir}/src`));
  },
);

t.test('a copy worker that fails stops the run with WORKER_FAILED, charges no file, and a rerun resumes', async (t) => {
  const dir = diskDir(t);
  // An install of the CLI whose worker module throws as it loads (as a broken or half-updated
  // install would), beside the real one: the same dist, addon and packages.
  const top = path.resolve(path.dirname(bin), '..');
  const broken = `${dir}/install`;
  mkdirSync(`${broken}/bin`, { recursive: true });
  cpSync(`${top}/dist`, `${broken}/dist`, { recursive: true });
  cpSync(bin, `${broken}/bin/stripemover.js`);
  cpSync(`${top}/package.json`, `${broken}/package.json`);
  for (const d of ['node_modules', 'build']) symlinkSync(`${top}/${d}`, `${broken}/${d}`);
  writeFileSync(`${broken}/bin/copy-worker.cjs`, "throw new Error('worker boom');\n");
  mkdirSync(`${dir}/src/sub`, { recursive: true });
  for (let i = 0; i < 40; i++) writeFileSync(`${dir}/src/sub/f${i}`, pseudoRandom(3000 + i, i + 5));
  // Enough files for several batches under way when the worker fails: none may be left waiting
  // on a pool that starts new workers for them, which fail as they start (the run hung).
  for (let d = 0; d < 12; d++) {
    mkdirSync(`${dir}/src/many/d${d}`, { recursive: true });
    for (let i = 0; i < 250; i++) writeFileSync(`${dir}/src/many/d${d}/f${i}`, `${d}/${i}`);
  }
  const run = (install: string, ...args: string[]) =>
    spawnSync(process.execPath, [`${install}/bin/stripemover.js`, ...args], { encoding: 'utf8', timeout: 60_000 });

  const c = run(broken, 'copy', '--threads', '8', `${dir}/src`, `${dir}/dst`);
  t.equal(c.status, 1, c.stderr);
  t.match(c.stderr, /a copy worker failed: worker boom/);
  t.notMatch(c.stderr, /f\d+/, 'no file is charged with it');

  // A backup: nothing committed, the lock released, and the real install resumes it.
  const b = run(broken, 'backup', '-r', `${dir}/repo`, `${dir}/src`);
  t.equal(b.status, 1, b.stderr);
  t.match(b.stderr, /WORKER_FAILED/);
  t.same(readdirSync(`${dir}/repo/snapshots`), [], 'no snapshot');
  t.notOk(existsSync(`${dir}/repo/lock`), 'the lock is released');
  const again = run(top, 'backup', '-r', `${dir}/repo`, `${dir}/src`);
  t.equal(again.status, 0, again.stderr);
  const v = run(top, 'verify', '--read-data', '-r', `${dir}/repo`);
  t.equal(v.status, 0, v.stdout + v.stderr);
  const id = readdirSync(`${dir}/repo/snapshots`)[0]!.replace(/\.json$/, '');
  t.same(describeTree(`${dir}/repo/trees/${id}`), describeTree(`${dir}/src`), 'the resumed snapshot is the tree');

  // An incremental, where unchanged files go to link batches as the scan reaches them.
  writeFileSync(`${dir}/src/sub/f7`, 'changed');
  const inc = run(broken, 'backup', '-r', `${dir}/repo`, `${dir}/src`);
  t.equal(inc.status, 1, inc.stderr);
  t.match(inc.stderr, /WORKER_FAILED: a copy worker failed: worker boom/);
  t.equal(readdirSync(`${dir}/repo/snapshots`).length, 1, 'no second snapshot');
  t.equal(run(top, 'backup', '-r', `${dir}/repo`, `${dir}/src`).status, 0);
  const after = run(top, 'verify', '--read-data', '-r', `${dir}/repo`);
  t.equal(after.status, 0, after.stdout + after.stderr);
  const latest = readdirSync(`${dir}/repo/snapshots`)
    .sort()
    .at(-1)!
    .replace(/\.json$/, '');
  t.same(
    describeContents(`${dir}/repo/trees/${latest}`),
    describeContents(`${dir}/src`),
    'the incremental, resumed, is the tree',
  );
});

t.test(
  "an error building a task in the engine (a deep directory's descriptor) is that task's files' failure, not the run's",
  { skip: !isRoot && 'needs root for chattr +i' },
  async (t) => {
    const dir = diskDir(t);
    // Past PATH_MAX, files are reached through descriptors on their directories: the engine
    // opens them as it builds the task. An immutable directory at the destination keeps the
    // deep ones from being made there, so that open fails.
    mkdirSync(`${dir}/src/top`, { recursive: true });
    makeDeepDirs(`${dir}/src/top`, 22, (level) => {
      if (level === 21) writeFileSync('deep', 'deep');
    });
    for (const d of ['aaa', 'zzz']) {
      mkdirSync(`${dir}/src/${d}`);
      for (let i = 0; i < 300; i++) writeFileSync(`${dir}/src/${d}/f${i}`, `${d} ${i}`);
    }
    mkdirSync(`${dir}/dst/top`, { recursive: true });
    execFileSync('chattr', ['+i', `${dir}/dst/top`]);
    t.teardown(() => execFileSync('chattr', ['-i', `${dir}/dst/top`]));
    const r = spawnSync(process.execPath, [bin, 'copy', `${dir}/src`, `${dir}/dst`], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    t.equal(r.status, 1, 'some files failed');
    t.notMatch(r.stderr, /WORKER_FAILED|copy worker failed/, 'not a worker failure');
    t.match(
      r.stderr,
      /ENOENT: No such file or directory, open '[^']*\/18d+'/,
      'the directory it could not reach is named',
    );
    for (const d of ['aaa', 'zzz']) t.equal(readdirSync(`${dir}/dst/${d}`).length, 300, `${d}: all copied`);
  },
);

t.test('a source that is one file, with --link-dest and as a backup, is linked when unchanged', async (t) => {
  const dir = diskDir(t);
  writeFileSync(`${dir}/one`, 'hello');
  const sm = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8' });
  t.equal(sm('sync', `${dir}/one`, `${dir}/one.1`).status, 0);
  const r = sm('sync', '--link-dest', `${dir}/one.1`, `${dir}/one`, `${dir}/one.2`);
  t.equal(r.status, 0, r.stderr);
  t.equal(statSync(`${dir}/one.2`).ino, statSync(`${dir}/one.1`).ino, 'linked');
  for (let i = 0; i < 2; i++) {
    const b = sm('backup', '-r', `${dir}/repo`, `${dir}/one`);
    t.equal(b.status, 0, b.stderr);
  }
  writeFileSync(`${dir}/one`, 'changed');
  t.equal(sm('backup', '-r', `${dir}/repo`, `${dir}/one`).status, 0);
  const v = sm('verify', '--read-data', '-r', `${dir}/repo`);
  t.equal(v.status, 0, v.stdout + v.stderr);
  t.match(v.stdout + v.stderr, /3 snapshots/);
});

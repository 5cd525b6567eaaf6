// `sync`: only what changed moves; --delete, --link-dest snapshots, --checksum, --dry-run, filters.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  linkSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { native } from '../src/native.js';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { diskDir, makeDeepDirs, pseudoRandom } from './helpers/fixtures.js';
import { describeContents, describeTree } from './helpers/tree.js';

const bin = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'stripemover.js');

function sm(...args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args, '--json'], { encoding: 'utf8' });
  const lines = r.stdout.trim()
    ? r.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l))
    : [];
  return {
    status: r.status,
    stderr: r.stderr,
    summary: lines.find((l) => l.type === 'summary'),
    changes: lines.filter((l) => l.type === 'change').map((l) => `${l.action} ${l.path}`),
    errors: lines.filter((l) => l.type === 'error').map((l) => `${l.error.code}: ${l.error.message}`),
  };
}

function tree(root: string) {
  mkdirSync(`${root}/keep/deep`, { recursive: true });
  mkdirSync(`${root}/cache`);
  writeFileSync(`${root}/keep/a`, pseudoRandom(10000, 1));
  writeFileSync(`${root}/keep/deep/b`, pseudoRandom(20000, 2));
  writeFileSync(`${root}/keep/gone`, 'to be deleted');
  writeFileSync(`${root}/scratch.tmp`, 'excluded');
  writeFileSync(`${root}/cache/c`, 'excluded dir');
}

t.test('sync moves only what changed and --delete removes the rest', async (t) => {
  const dir = diskDir(t);
  tree(`${dir}/src`);
  t.equal(sm('sync', `${dir}/src`, `${dir}/dst`).status, 0);
  writeFileSync(`${dir}/src/keep/new`, 'new file');
  writeFileSync(`${dir}/src/keep/a`, pseudoRandom(10000, 99)); // same size, new mtime
  rmSync(`${dir}/src/keep/gone`);
  rmSync(`${dir}/src/cache`, { recursive: true });
  const r = sm('sync', '--delete', `${dir}/src`, `${dir}/dst`);
  t.equal(r.status, 0, r.stderr);
  t.equal(r.summary.files, 2, 'the new and the changed file');
  t.equal(r.summary.skipped, 2, 'the unchanged ones');
  t.equal(r.summary.deleted, 3, 'keep/gone, and cache/ with what it held (cache/c)');
  t.same(describeTree(`${dir}/dst`, { dirTimes: true }), describeTree(`${dir}/src`, { dirTimes: true }));
});

t.test('--dry-run lists the changes and writes nothing', async (t) => {
  const dir = diskDir(t);
  tree(`${dir}/src`);
  sm('sync', `${dir}/src`, `${dir}/dst`);
  writeFileSync(`${dir}/src/keep/new`, 'x');
  mkdirSync(`${dir}/src/newdir`);
  rmSync(`${dir}/src/keep/gone`);
  const before = describeTree(`${dir}/dst`, { dirTimes: true });
  const r = sm('sync', '--dry-run', '--delete', `${dir}/src`, `${dir}/dst`);
  t.equal(r.status, 0, r.stderr);
  t.same(r.changes.sort(), [`copy ${dir}/dst/keep/new`, `delete ${dir}/dst/keep/gone`, `mkdir ${dir}/dst/newdir`]);
  t.same(describeTree(`${dir}/dst`, { dirTimes: true }), before, 'nothing written');
});

t.test('--checksum finds a change that size and mtime hide', async (t) => {
  const dir = diskDir(t);
  mkdirSync(`${dir}/src`);
  writeFileSync(`${dir}/src/f`, 'aaaa');
  sm('copy', `${dir}/src`, `${dir}/dst`);
  const { atimeNs, mtimeNs } = native.stat(`${dir}/src/f`);
  writeFileSync(`${dir}/src/f`, 'bbbb');
  native.setTimes(`${dir}/src/f`, atimeNs, mtimeNs); // same size, same mtime to the ns, other bytes
  t.equal(sm('sync', `${dir}/src`, `${dir}/dst`).summary.files, 0, 'size + mtime say unchanged');
  t.equal(readFileSync(`${dir}/dst/f`, 'utf8'), 'aaaa');
  const r = sm('sync', '--checksum', `${dir}/src`, `${dir}/dst`);
  t.equal(r.summary.files, 1);
  t.equal(readFileSync(`${dir}/dst/f`, 'utf8'), 'bbbb');
});

t.test('--link-dest makes a snapshot that hard-links what did not change', async (t) => {
  const dir = diskDir(t);
  tree(`${dir}/src`);
  writeFileSync(`${dir}/src/big`, pseudoRandom(3 << 20, 5));
  t.equal(sm('sync', '--chunk-size', '1M', `${dir}/src`, `${dir}/snap1`).status, 0);
  writeFileSync(`${dir}/src/keep/a`, pseudoRandom(10000, 50));
  const r = sm('sync', '--chunk-size', '1M', '--link-dest', `${dir}/snap1`, `${dir}/src`, `${dir}/snap2`);
  t.equal(r.status, 0, r.stderr);
  t.equal(r.summary.files, 1, 'only the changed file is copied');
  t.equal(r.summary.linked, 5, 'the others, the large one included, are linked');
  const ino = (p: string) => statSync(p).ino;
  t.equal(ino(`${dir}/snap2/keep/deep/b`), ino(`${dir}/snap1/keep/deep/b`));
  t.equal(ino(`${dir}/snap2/big`), ino(`${dir}/snap1/big`));
  t.not(ino(`${dir}/snap2/keep/a`), ino(`${dir}/snap1/keep/a`));
  // Link groups differ by design (snap2 shares inodes with snap1); everything else is the source's.
  const unlinked = (root: string) => describeContents(root, { dirTimes: true });
  t.same(unlinked(`${dir}/snap2`), unlinked(`${dir}/src`));

  // A large file that changed is left by its link batch and copied in chunks.
  writeFileSync(`${dir}/src/big`, pseudoRandom((3 << 20) + 7, 6));
  const r3 = sm('sync', '--chunk-size', '1M', '--link-dest', `${dir}/snap2`, `${dir}/src`, `${dir}/snap3`);
  t.equal(r3.status, 0, r3.stderr);
  t.equal(r3.summary.files, 1);
  t.equal(r3.summary.linked, 5);
  t.not(ino(`${dir}/snap3/big`), ino(`${dir}/snap2/big`));
  t.same(unlinked(`${dir}/snap3`), unlinked(`${dir}/src`));
});

t.test('--link-dest: files of a deep directory the previous copy lacks are copied, the rest linked', async (t) => {
  const dir = diskDir(t);
  tree(`${dir}/src`);
  t.equal(sm('sync', `${dir}/src`, `${dir}/snap1`).status, 0);
  // Deeper than PATH_MAX, only in the source: the previous copy's paths there cannot even be made.
  makeDeepDirs(`${dir}/src`, 21, (level) => {
    if (level === 20) for (let i = 0; i < 3; i++) writeFileSync(`leaf${i}`, pseudoRandom(1000 + i, i));
  });
  const r = sm('sync', '--link-dest', `${dir}/snap1`, `${dir}/src`, `${dir}/snap2`);
  t.equal(r.status, 0, r.stderr);
  t.equal(r.summary.failed, 0);
  t.equal(r.summary.files, 3, 'the deep files are copied');
  t.equal(r.summary.linked, 5, 'every other file is linked');
});

t.test('filters: excluded entries are neither copied nor deleted', async (t) => {
  const dir = diskDir(t);
  tree(`${dir}/src`);
  mkdirSync(`${dir}/dst/cache`, { recursive: true });
  writeFileSync(`${dir}/dst/cache/mine`, 'kept: excluded dirs are protected');
  writeFileSync(`${dir}/dst/other.tmp`, 'kept too');
  writeFileSync(`${dir}/dst/stray`, 'deleted');
  const r = sm('sync', '--delete', '--exclude', '*.tmp', '--exclude', 'cache/', `${dir}/src`, `${dir}/dst`);
  t.equal(r.status, 0, r.stderr);
  t.notOk(existsSync(`${dir}/dst/scratch.tmp`));
  t.notOk(existsSync(`${dir}/dst/cache/c`));
  t.ok(existsSync(`${dir}/dst/cache/mine`));
  t.ok(existsSync(`${dir}/dst/other.tmp`));
  t.notOk(existsSync(`${dir}/dst/stray`));
  t.ok(existsSync(`${dir}/dst/keep/deep/b`));
  const bad = spawnSync(process.execPath, [bin, 'sync', '--max-size', 'lots', `${dir}/src`, `${dir}/dst`], {
    encoding: 'utf8',
  });
  t.equal(bad.status, 2, 'a bad size is a usage error');
  t.match(bad.stderr, /--max-size/);
  const badFsync = spawnSync(process.execPath, [bin, 'copy', '--fsync', 'sometimes', `${dir}/src`, `${dir}/dst`], {
    encoding: 'utf8',
  });
  t.equal(badFsync.status, 2, 'an unknown --fsync policy is a usage error');
  t.match(badFsync.stderr, /Allowed choices are batch, file, none/);
});

t.test('--delete refuses a source that is not a directory: a symlink to one, or a file', async (t) => {
  const dir = diskDir(t);
  mkdirSync(`${dir}/real/d`, { recursive: true });
  writeFileSync(`${dir}/real/a`, 'a');
  symlinkSync(`${dir}/real`, `${dir}/link`);
  writeFileSync(`${dir}/report.txt`, 'r');
  spawnSync('cp', ['-a', `${dir}/real`, `${dir}/bak`]);
  const before = describeTree(`${dir}/bak`);
  for (const src of [`${dir}/link`, `${dir}/report.txt`]) {
    const r = sm('sync', '--delete', src, `${dir}/bak`);
    t.equal(r.status, 1, `${src}: exit 1`);
    t.match(r.errors.join('\n'), /DELETE_REFUSED: --delete: nothing deleted: '.*' is not a directory/, 'says why');
    t.same(describeTree(`${dir}/bak`), before, 'the destination keeps everything');
  }
  // Through the symlink, with '/.', it is a directory: a sync like any other.
  const r = sm('sync', '--delete', `${dir}/link/.`, `${dir}/bak`);
  t.equal(r.status, 0, r.stderr);
  t.same(describeTree(`${dir}/bak`), describeTree(`${dir}/real`));
});

t.test(
  '--delete keeps what the filter protects, inside an extraneous directory too, and ignores size limits',
  async (t) => {
    const dir = diskDir(t);
    mkdirSync(`${dir}/src/keep`, { recursive: true });
    writeFileSync(`${dir}/src/keep/a`, 'a');
    writeFileSync(`${dir}/src/big`, pseudoRandom(10_000, 1)); // over --max-size: not copied
    mkdirSync(`${dir}/dst/old/sub`, { recursive: true });
    writeFileSync(`${dir}/dst/old/important.keep`, 'p');
    writeFileSync(`${dir}/dst/old/junk`, 'j');
    writeFileSync(`${dir}/dst/old/sub/junk`, 'j');
    mkdirSync(`${dir}/dst/gone/deeper`, { recursive: true });
    writeFileSync(`${dir}/dst/gone/deeper/x`, 'x');
    writeFileSync(`${dir}/dst/big`, 'stale'); // the source has it: not extraneous, whatever its size
    const r = sm('sync', '--delete', '--exclude', '*.keep', '--max-size', '1K', `${dir}/src`, `${dir}/dst`);
    t.equal(r.status, 0, r.stderr);
    t.equal(readFileSync(`${dir}/dst/old/important.keep`, 'utf8'), 'p', 'the protected file stays');
    t.notOk(existsSync(`${dir}/dst/old/junk`), 'the rest of the extraneous directory goes');
    t.notOk(existsSync(`${dir}/dst/old/sub`), 'its emptied subdirectory too');
    t.notOk(existsSync(`${dir}/dst/gone`), 'an extraneous tree with nothing protected goes whole');
    t.equal(readFileSync(`${dir}/dst/big`, 'utf8'), 'stale', 'a file the source has, over the size limit, stays');
    t.equal(readFileSync(`${dir}/dst/keep/a`, 'utf8'), 'a');
  },
);

t.test('--dry-run --delete into a destination that does not exist yet lists what it would do', async (t) => {
  const dir = diskDir(t);
  tree(`${dir}/src`);
  const r = sm('sync', '--dry-run', '--delete', `${dir}/src`, `${dir}/new`);
  t.equal(r.status, 0, r.stderr);
  t.ok(r.changes.length > 0, `${r.changes.length} changes listed`);
  t.notOk(existsSync(`${dir}/new`), 'nothing written');
});

t.test("a file left as it is still takes the source's mode, times and owner (rsync -a)", async (t) => {
  const dir = diskDir(t);
  tree(`${dir}/src`);
  t.equal(sm('sync', `${dir}/src`, `${dir}/dst`).status, 0);
  // Changed at the destination, contents left alone.
  chmodSync(`${dir}/dst/keep/a`, 0o600);
  utimesSync(`${dir}/dst/keep/deep/b`, new Date('2001-01-01'), new Date('2001-01-01'));
  if (process.geteuid?.() === 0) chownSync(`${dir}/dst/keep/gone`, 65534, 65534);
  // Changed at the source, contents left alone.
  chmodSync(`${dir}/src/scratch.tmp`, 0o640);
  const r = sm('sync', '--checksum', `${dir}/src`, `${dir}/dst`);
  t.equal(r.status, 0, r.stderr);
  t.equal(r.summary.files, 0, 'no file copied');
  t.same(describeTree(`${dir}/dst`), describeTree(`${dir}/src`), 'modes, times and owners as the source has them');
});

t.test('a file left as it is takes the xattrs and ACLs the source has since (rsync -aX)', async (t) => {
  const dir = diskDir(t);
  tree(`${dir}/src`);
  native.setXattr(`${dir}/src/keep/gone`, 'user.old', 'x');
  t.equal(sm('sync', `${dir}/src`, `${dir}/dst`).status, 0);
  const ctimeOf = (f: string) => statSync(`${dir}/dst/${f}`, { bigint: true }).ctimeNs;
  const before = ctimeOf('keep/gone');
  t.equal(sm('sync', `${dir}/src`, `${dir}/dst`).status, 0);
  t.equal(ctimeOf('keep/gone'), before, 'a second run leaves the copy alone: nothing changed at the source');
  // Attributes only: size, mtime and mode stay.
  native.setXattr(`${dir}/src/keep/a`, 'user.tag', 'new');
  t.equal(spawnSync('setfacl', ['-m', 'u:nobody:r', `${dir}/src/keep/deep/b`]).status, 0);
  native.removeXattr(`${dir}/src/keep/gone`, 'user.old');
  const r = sm('sync', `${dir}/src`, `${dir}/dst`);
  t.equal(r.status, 0, r.stderr);
  t.equal(r.summary.files, 0, 'no data copied');
  for (const f of ['keep/a', 'keep/deep/b', 'keep/gone']) {
    const names = native.listXattrs(`${dir}/src/${f}`);
    t.same(native.listXattrs(`${dir}/dst/${f}`), names, `${f}: the source's xattrs (${names.join(', ') || 'none'})`);
    for (const n of names) t.same(native.getXattr(`${dir}/dst/${f}`, n), native.getXattr(`${dir}/src/${f}`, n));
  }
  t.same(describeTree(`${dir}/dst`), describeTree(`${dir}/src`), 'modes and times as well');
  // A change the ctime rule cannot see: the copy's attributes touched after the source's
  // (a chmod to the same mode). --checksum, which reads every byte anyway, compares them.
  native.setXattr(`${dir}/src/keep/a`, 'user.tag', 'newer');
  chmodSync(`${dir}/dst/keep/a`, statSync(`${dir}/dst/keep/a`).mode & 0o7777);
  t.equal(sm('sync', `${dir}/src`, `${dir}/dst`).status, 0);
  t.equal(native.getXattr(`${dir}/dst/keep/a`, 'user.tag').toString(), 'new', 'missed without --checksum');
  t.equal(sm('sync', '--checksum', `${dir}/src`, `${dir}/dst`).status, 0);
  t.equal(native.getXattr(`${dir}/dst/keep/a`, 'user.tag').toString(), 'newer', 'brought over with --checksum');
  // A source whose ctime moved with nothing else changed: the first run compares the xattrs and
  // moves the copy's ctime past it, so later runs do not read them again.
  chmodSync(`${dir}/src/keep/deep/b`, statSync(`${dir}/src/keep/deep/b`).mode & 0o7777);
  t.equal(sm('sync', `${dir}/src`, `${dir}/dst`).status, 0);
  const after = ctimeOf('keep/deep/b');
  t.ok(after > statSync(`${dir}/src/keep/deep/b`, { bigint: true }).ctimeNs, "the copy's ctime passed the source's");
  t.equal(sm('sync', `${dir}/src`, `${dir}/dst`).status, 0);
  t.equal(ctimeOf('keep/deep/b'), after, 'then left alone');
});

t.test('--delete never deletes its own source when SRC is inside DST', async (t) => {
  const dir = diskDir(t);
  const top = `${dir}/top`;
  tree(`${top}/a/src`);
  writeFileSync(`${top}/a/extra`, 'extraneous, beside the source');
  mkdirSync(`${top}/other`);
  writeFileSync(`${top}/other/o`, 'extraneous');
  const before = describeTree(`${top}/a/src`);
  const r = sm('sync', '--delete', `${top}/a/src`, top);
  t.equal(r.status, 0, r.stderr);
  t.same(describeTree(`${top}/a/src`), before, 'the source is whole');
  t.same(readdirSync(top).sort(), ['a', 'cache', 'keep', 'scratch.tmp'], 'its copy is at the top, the rest gone');
  t.same(readdirSync(`${top}/a`), ['src'], 'what stood beside the source went');
  t.same(
    r.changes.filter((c) => c.startsWith('delete')).sort(),
    [`delete ${top}/a/extra`, `delete ${top}/other`, `delete ${top}/other/o`],
    'a directory that stays is not listed as deleted',
  );
});

t.test('review fixes: SRC inside DST holding its own name; hard-linked copies kept; dry-run deletes', async (t) => {
  const dir = diskDir(t);
  // 1. The source's file 's' has to go where the source itself stands: it fails, the source stays.
  mkdirSync(`${dir}/top/s`, { recursive: true });
  writeFileSync(`${dir}/top/s/s`, '1');
  writeFileSync(`${dir}/top/s/keep`, '2');
  const r1 = sm('sync', '--delete', `${dir}/top/s`, `${dir}/top`);
  t.equal(r1.status, 1, 'the file that cannot take its place fails');
  t.same(readdirSync(`${dir}/top/s`).sort(), ['keep', 's'], 'the source is whole');
  t.same(
    r1.changes.filter((c) => c.startsWith('delete')),
    [],
    'nothing deleted',
  );
  // 2. A copy with other names (a conda env linking its package cache) is kept when only the
  //    source's link count (so its ctime) moved.
  mkdirSync(`${dir}/hl/pkgs`, { recursive: true });
  mkdirSync(`${dir}/hl/env1`);
  writeFileSync(`${dir}/hl/pkgs/lib.so`, pseudoRandom(300000, 5));
  linkSync(`${dir}/hl/pkgs/lib.so`, `${dir}/hl/env1/lib.so`);
  t.equal(sm('sync', `${dir}/hl`, `${dir}/hld`).status, 0);
  mkdirSync(`${dir}/hl/env2`);
  linkSync(`${dir}/hl/pkgs/lib.so`, `${dir}/hl/env2/lib.so`);
  const r2 = sm('sync', `${dir}/hl`, `${dir}/hld`);
  t.equal(r2.status, 0, r2.stderr);
  t.equal(r2.summary.files, 0, 'no data copied again');
  t.equal(statSync(`${dir}/hld/env2/lib.so`).ino, statSync(`${dir}/hld/pkgs/lib.so`).ino, 'the new name linked');
  // 3. A dry run lists only the directories a real run removes.
  mkdirSync(`${dir}/ds`);
  mkdirSync(`${dir}/dd/x`, { recursive: true });
  mkdirSync(`${dir}/dd/y`);
  writeFileSync(`${dir}/ds/a`, 'a');
  writeFileSync(`${dir}/dd/x/keep.log`, 'protected');
  writeFileSync(`${dir}/dd/x/z`, 'z');
  writeFileSync(`${dir}/dd/y/w`, 'w');
  const deletes = (r: ReturnType<typeof sm>) => r.changes.filter((c) => c.startsWith('delete')).sort();
  const dry = sm('sync', '--delete', '--exclude', '*.log', '--dry-run', `${dir}/ds`, `${dir}/dd`);
  const real = sm('sync', '--delete', '--exclude', '*.log', `${dir}/ds`, `${dir}/dd`);
  t.same(deletes(dry), deletes(real), 'the dry run says what the run does');
  t.same(deletes(real), [`delete ${dir}/dd/x/z`, `delete ${dir}/dd/y`, `delete ${dir}/dd/y/w`]);
  t.equal(dry.summary.deleted, real.summary.deleted);
});

t.test('a destination inside its source is not copied into itself', async (t) => {
  const dir = diskDir(t);
  tree(`${dir}/src`);
  const before = describeTree(`${dir}/src`);
  for (const args of [['copy'], ['sync', '--delete']]) {
    const r = sm(...args, `${dir}/src`, `${dir}/src/keep/backup`);
    t.equal(r.status, 0, r.stderr);
    t.same(
      describeTree(`${dir}/src/keep/backup`),
      before,
      `${args[0]}: the source as it was, once, without the destination in it`,
    );
  }
});

t.test('--dry-run of paths deeper than PATH_MAX into a destination not made yet', async (t) => {
  const dir = diskDir(t);
  mkdirSync(`${dir}/src`);
  makeDeepDirs(`${dir}/src`, 22, (level) => {
    if (level === 21) symlinkSync('target', 'deep-link');
  });
  const r = sm('sync', '--dry-run', `${dir}/src`, `${dir}/new`);
  t.equal(r.status, 0, r.stderr);
  t.equal(r.summary.failed, 0);
  t.equal(r.changes.filter((c) => c.startsWith('mkdir ')).length, 23, 'the root and 22 directories');
  t.equal(r.changes.filter((c) => c.startsWith('create ')).length, 1, 'the symlink');
  t.notOk(existsSync(`${dir}/new`), 'nothing written');
});

t.test(
  'a file that cannot take its place (a directory stands there) fails alone, leaving no temporary file',
  async (t) => {
    const dir = diskDir(t);
    mkdirSync(`${dir}/src`);
    writeFileSync(`${dir}/src/x`, 'a file now');
    writeFileSync(`${dir}/src/y`, 'fine');
    mkdirSync(`${dir}/dst/x/inner`, { recursive: true });
    const r = sm('sync', `${dir}/src`, `${dir}/dst`);
    t.equal(r.status, 1, 'exit 1');
    t.match(r.errors.join('\n'), /EISDIR.*\/dst\/x/);
    t.same(readdirSync(`${dir}/dst`).sort(), ['x', 'y'], 'no .sm-*.tmp left beside it');
    t.equal(readFileSync(`${dir}/dst/y`, 'utf8'), 'fine');
  },
);

t.test(
  'with --delete, a directory where the source now has a file or a symlink makes way (what the filter protects stays)',
  async (t) => {
    const dir = diskDir(t);
    mkdirSync(`${dir}/src`);
    writeFileSync(`${dir}/src/x`, 'a file now');
    symlinkSync('x', `${dir}/src/s`);
    writeFileSync(`${dir}/src/kept`, 'a file now');
    mkdirSync(`${dir}/dst/x/inner`, { recursive: true });
    writeFileSync(`${dir}/dst/x/inner/old`, 'old');
    mkdirSync(`${dir}/dst/s`);
    mkdirSync(`${dir}/dst/kept`);
    writeFileSync(`${dir}/dst/kept/note.keep`, 'protected');
    const r = sm('sync', '--delete', '--exclude', '*.keep', `${dir}/src`, `${dir}/dst`);
    t.equal(r.status, 1, 'exit 1: kept/ could not make way');
    t.match(r.errors.join('\n'), /kept/);
    t.equal(readFileSync(`${dir}/dst/x`, 'utf8'), 'a file now', 'the directory made way for the file');
    t.equal(native.readlink(`${dir}/dst/s`).toString(), 'x', 'and for the symlink');
    t.equal(readFileSync(`${dir}/dst/kept/note.keep`, 'utf8'), 'protected', 'the protected entry stays');
    t.ok(r.changes.includes(`delete ${dir}/dst/x/inner/old`), 'the deletions are listed');
  },
);

t.test(
  'review fixes: a protected directory stays under --delete; a shared inode is never changed in place; DST as a symlink inside SRC',
  async (t) => {
    const dir = diskDir(t);
    // A directory rule protects the destination's directory even where the source has a symlink.
    mkdirSync(`${dir}/src`);
    mkdirSync(`${dir}/dst/cache`, { recursive: true });
    writeFileSync(`${dir}/dst/cache/data`, 'precious');
    symlinkSync('/nowhere', `${dir}/src/cache`);
    sm('sync', '--delete', '--exclude', 'cache/', `${dir}/src`, `${dir}/dst`);
    t.equal(readFileSync(`${dir}/dst/cache/data`, 'utf8'), 'precious', 'the protected directory keeps its data');

    // A file left as it is but with another mode, whose inode has another name (another snapshot's).
    mkdirSync(`${dir}/s2`);
    writeFileSync(`${dir}/s2/f`, 'same bytes');
    t.equal(sm('sync', `${dir}/s2`, `${dir}/d2`).status, 0);
    linkSync(`${dir}/d2/f`, `${dir}/elsewhere`);
    chmodSync(`${dir}/s2/f`, 0o600);
    t.equal(sm('sync', `${dir}/s2`, `${dir}/d2`).status, 0);
    t.equal(statSync(`${dir}/d2/f`).mode & 0o777, 0o600, 'the copy has the new mode');
    t.equal(
      statSync(`${dir}/elsewhere`).mode & 0o777,
      0o644,
      'the other name keeps its own: copied afresh, not chmod-ed',
    );

    // DST given as a symlink to a directory inside SRC.
    mkdirSync(`${dir}/s3/b`, { recursive: true });
    for (const d of ['a', 'c']) {
      mkdirSync(`${dir}/s3/${d}`);
      writeFileSync(`${dir}/s3/${d}/f`, d);
    }
    symlinkSync(`${dir}/s3/b`, `${dir}/dlink`);
    t.equal(sm('sync', `${dir}/s3`, `${dir}/dlink`).status, 0);
    t.same(readdirSync(`${dir}/s3/b`).sort(), ['a', 'c'], 'the destination was not copied into itself');
  },
);

t.test("--link-dest links a file only if its xattrs and ACLs are the previous copy's too", async (t) => {
  const dir = diskDir(t);
  tree(`${dir}/src`);
  t.equal(sm('sync', `${dir}/src`, `${dir}/snap1`).status, 0);
  // Only an xattr and an ACL change: size, mtime and mode stay.
  native.setXattr(`${dir}/src/keep/a`, 'user.tag', 'new');
  spawnSync('setfacl', ['-m', 'u:nobody:r', `${dir}/src/keep/deep/b`]);
  const r = sm('sync', '--link-dest', `${dir}/snap1`, `${dir}/src`, `${dir}/snap2`);
  t.equal(r.status, 0, r.stderr);
  t.equal(r.summary.files, 2, 'the two files copied');
  for (const f of ['keep/a', 'keep/deep/b']) {
    const names = native.listXattrs(`${dir}/src/${f}`);
    t.ok(names.length > 0, `${f} has ${names.join(', ')}`);
    t.same(native.listXattrs(`${dir}/snap2/${f}`), names, `${f}: the new snapshot has the source's`);
    for (const n of names) t.same(native.getXattr(`${dir}/snap2/${f}`, n), native.getXattr(`${dir}/src/${f}`, n));
  }
  t.not(statSync(`${dir}/snap2/keep/a`).ino, statSync(`${dir}/snap1/keep/a`).ino, 'not linked to the old copy');
  t.equal(
    statSync(`${dir}/snap2/keep/gone`).ino,
    statSync(`${dir}/snap1/keep/gone`).ino,
    'the unchanged one is linked',
  );
  t.same(native.listXattrs(`${dir}/snap1/keep/a`), [], 'the previous snapshot is untouched');
});

// `copy` of real trees with every awkward kind of entry, compared by an independent helper.
import t from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import {
  closeSync,
  ftruncateSync,
  linkSync,
  mkdirSync,
  openSync,
  readdirSync,
  symlinkSync,
  writeFileSync,
  writeSync,
  chmodSync,
} from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { copy } from '../src/engine/copy.js';
import { native, fsConstants as C } from '../src/native.js';
import { diskDir, isRoot, makeDeepDirs, pseudoRandom } from './helpers/fixtures.js';
import { describeTree } from './helpers/tree.js';

const MiB = 1 << 20;
const CHUNK = MiB;
const bin = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'stripemover.js');
const b = (dir: string, ...names: (string | Buffer)[]) =>
  Buffer.concat([Buffer.from(dir), ...names.flatMap((n) => [Buffer.from('/'), Buffer.from(n)])]);

/** A tree holding every case the issue lists. */
function makeTree(root: string, sparseGiB = 10): void {
  mkdirSync(root);
  mkdirSync(`${root}/empty-dir`);
  mkdirSync(`${root}/a/b/c`, { recursive: true });
  writeFileSync(`${root}/empty-file`, '');
  writeFileSync(b(root, Buffer.from([0x6e, 0xff, 0xfe])), 'not utf-8 name');
  writeFileSync(`${root}/new\nline`, 'newline in name');
  writeFileSync(`${root}/${'x'.repeat(255)}`, 'long name');
  for (const [name, size] of [
    ['one-chunk-minus-1', CHUNK - 1],
    ['one-chunk', CHUNK],
    ['one-chunk-plus-1', CHUNK + 1],
    ['big', 5 * CHUNK + 17],
  ] as const) {
    writeFileSync(`${root}/a/${name}`, pseudoRandom(size, size));
  }
  writeFileSync(`${root}/a/b/linked`, 'hard linked');
  linkSync(`${root}/a/b/linked`, `${root}/a/link2`);
  linkSync(`${root}/a/b/linked`, `${root}/link3`);
  symlinkSync('does-not-exist', `${root}/dangling`);
  symlinkSync('loop', `${root}/loop`);
  symlinkSync(b('', Buffer.from([0xff])).subarray(1), b(root, 'bytes-link'));
  native.mkfifo(`${root}/fifo`, 0o640);
  writeFileSync(`${root}/a/b/c/xattrs`, 'with xattrs');
  native.setXattr(`${root}/a/b/c/xattrs`, 'user.k', Buffer.from([0, 1, 2, 255]));
  execFileSync('setfacl', ['-m', 'u:1234:r', `${root}/a/b/c/xattrs`]);
  execFileSync('setfacl', ['-d', '-m', 'g:55:rx', `${root}/a`]);
  // A sparse file (10 GiB by default) holding 1 MiB of data.
  const fd = openSync(`${root}/sparse`, 'w');
  ftruncateSync(fd, sparseGiB * 1024 * MiB);
  writeSync(fd, pseudoRandom(MiB, 7), 0, MiB, (sparseGiB * 1024 * MiB) / 2);
  closeSync(fd);
  chmodSync(`${root}/a/b`, 0o750);
  native.setTimes(`${root}/a/b/c/xattrs`, 1_000_000_001n, 2_000_000_003n);
  if (isRoot) {
    native.mknod(`${root}/null`, C.S_IFCHR | 0o600, native.makedev(1, 3));
    native.lchown(`${root}/a/one-chunk`, 4321, 8765);
    native.lchown(`${root}/dangling`, 11, 12);
  }
}

t.test('copy keeps every byte, name, link, hole, xattr, ACL and time', async (t) => {
  const dir = diskDir(t);
  makeTree(`${dir}/src`);
  const summary = await copy(`${dir}/src`, `${dir}/dst`, { chunkSize: CHUNK, verify: true }).done;
  t.same(summary.failures, [], 'no failures');
  t.equal(summary.interrupted, false);
  t.ok(summary.verified >= 10, `files verified: ${summary.verified}`);
  t.equal(summary.links, 2, 'two extra names linked, not copied');
  t.same(
    describeTree(`${dir}/dst`, { xattrs: true, dirTimes: true }),
    describeTree(`${dir}/src`, { xattrs: true, dirTimes: true }),
  );
  const d = native.stat(`${dir}/dst/sparse`);
  t.ok(d.blocks * 512 <= 2 * MiB, `the 10 GiB sparse file allocates ${d.blocks * 512} bytes`);
});

t.test('a rerun over a finished copy copies nothing again', async (t) => {
  const dir = diskDir(t);
  makeTree(`${dir}/src`, 1);
  await copy(`${dir}/src`, `${dir}/dst`, { chunkSize: CHUNK }).done;
  const again = await copy(`${dir}/src`, `${dir}/dst`, { chunkSize: CHUNK }).done;
  t.same(again.failures, []);
  t.ok(again.skipped >= 8, `skipped ${again.skipped}`);
  t.equal(again.links, 0, 'hard links made by the first run are left as they are');
  t.same(describeTree(`${dir}/dst`, { dirTimes: true }), describeTree(`${dir}/src`, { dirTimes: true }));
});

t.test('what stands where a directory goes (a file, a planted symlink) is replaced, never followed', async (t) => {
  const dir = diskDir(t);
  for (const d of ['a', 'b', 'b/c']) {
    mkdirSync(`${dir}/src/${d}`, { recursive: true });
    writeFileSync(`${dir}/src/${d}/f`, `in ${d}`);
  }
  mkdirSync(`${dir}/dst`);
  mkdirSync(`${dir}/elsewhere`);
  writeFileSync(`${dir}/dst/a`, 'a file in the way');
  symlinkSync(`${dir}/elsewhere`, `${dir}/dst/b`);
  const r = await copy(`${dir}/src`, `${dir}/dst`).done;
  t.same(r.failures, []);
  t.same(describeTree(`${dir}/dst`), describeTree(`${dir}/src`));
  t.same(readdirSync(`${dir}/elsewhere`), [], 'nothing written through the symlink');
});

t.test(
  "copies carry the source's extended attributes and ACLs only, not the destination's inherited ones",
  async (t) => {
    const dir = diskDir(t);
    mkdirSync(`${dir}/src/d/sub`, { recursive: true });
    writeFileSync(`${dir}/src/d/small`, 'small');
    writeFileSync(`${dir}/src/d/big`, pseudoRandom(3 * CHUNK + 5, 3)); // copied in chunks
    execFileSync('mkfifo', [`${dir}/src/d/pipe`]);
    writeFileSync(`${dir}/src/d/had-xattr`, 'x');
    await copy(`${dir}/src`, `${dir}/dst`, { chunkSize: CHUNK }).done;
    // The destination directory gains a default ACL; the copy there gains an xattr the source lacks.
    execFileSync('setfacl', ['-d', '-m', 'u:nobody:rwx', `${dir}/dst/d`]);
    native.setXattr(`${dir}/dst/d/had-xattr`, 'user.stale', 'old');
    for (const f of ['small', 'big', 'pipe']) execFileSync('rm', [`${dir}/dst/d/${f}`]);
    execFileSync('rmdir', [`${dir}/dst/d/sub`]);
    writeFileSync(`${dir}/src/d/had-xattr`, 'y'); // changed: copied again
    const r = await copy(`${dir}/src`, `${dir}/dst`, { chunkSize: CHUNK }).done;
    t.same(r.failures, []);
    t.same(describeTree(`${dir}/dst`, { xattrs: true }), describeTree(`${dir}/src`, { xattrs: true }));
    for (const p of ['d', 'd/sub', 'd/small', 'd/big', 'd/had-xattr']) {
      t.same(native.listXattrs(`${dir}/dst/${p}`), [], `${p}: no ACL or xattr the source does not have`);
    }
  },
);

t.test(
  'an unreadable file is reported, the rest is copied, exit code 1',
  { skip: isRoot ? false : 'permission test runs as root via setpriv' },
  async (t) => {
    const dir = diskDir(t);
    mkdirSync(`${dir}/src/sub`, { recursive: true });
    writeFileSync(`${dir}/src/ok`, 'fine');
    writeFileSync(`${dir}/src/sub/secret`, 'no');
    chmodSync(`${dir}/src/sub/secret`, 0o000);
    mkdirSync(`${dir}/dst`);
    execFileSync('chown', ['-R', 'nobody', dir]);
    execFileSync('chmod', ['755', dir]);
    // Run as nobody, so that the permission bits are enforced.
    const r = spawnSync(
      'setpriv',
      [
        '--reuid=nobody',
        '--regid=nogroup',
        '--clear-groups',
        process.execPath,
        bin,
        'copy',
        `${dir}/src`,
        `${dir}/dst`,
      ],
      { encoding: 'utf8' },
    );
    t.equal(r.status, 1, r.stderr);
    t.match(r.stderr, /EACCES: Permission denied, open '.*\/src\/sub\/secret'/);
    t.match(r.stderr, /1 failed/);
    t.equal(execFileSync('cat', [`${dir}/dst/ok`], { encoding: 'utf8' }), 'fine');
  },
);

t.test('a source file named as the temporary file of a large one is copied, and the large file too', async (t) => {
  const dir = diskDir(t);
  mkdirSync(`${dir}/src`);
  writeFileSync(`${dir}/src/big`, pseudoRandom(5 * CHUNK + 7, 31));
  // The names a copy of big would be written under before its rename, and their journals.
  const taken = native.tempPath(`${dir}/dst/big`).subarray(`${dir}/dst/`.length).toString();
  writeFileSync(`${dir}/src/${taken}`, 'a user file that has that name');
  const second = native.tempPath(`${dir}/dst/big`, `${dir}/src/big`).subarray(`${dir}/dst/`.length).toString();
  t.not(second, taken, 'another name is taken');
  writeFileSync(`${dir}/src/${second}.journal`, 'and one named as its journal');
  for (let run = 1; run <= 2; run++) {
    const summary = await copy(`${dir}/src`, `${dir}/dst`, { chunkSize: CHUNK, verify: true }).done;
    t.same(summary.failures, [], `run ${run}`);
    t.same(describeTree(`${dir}/dst`), describeTree(`${dir}/src`), `run ${run}: every file as the source has it`);
  }
});

t.test('the CLI prints JSON lines and exits 0', async (t) => {
  const dir = diskDir(t);
  mkdirSync(`${dir}/src`);
  writeFileSync(`${dir}/src/f`, pseudoRandom(3 * MiB));
  const r = spawnSync(process.execPath, [bin, 'copy', '--json', '--verify', `${dir}/src`, `${dir}/dst`], {
    encoding: 'utf8',
  });
  t.equal(r.status, 0, r.stderr);
  const lines = r.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  const summary = lines.at(-1);
  t.equal(summary.type, 'summary');
  t.equal(summary.files, 1);
  t.equal(summary.verified, 1);
  t.equal(summary.bytes, 3 * MiB);
});

t.test('paths deeper than PATH_MAX (4096 bytes) are copied, large files and links included', async (t) => {
  const dir = diskDir(t);
  mkdirSync(`${dir}/src`);
  makeDeepDirs(`${dir}/src`, 24, (level) => {
    if (level % 6 === 5) writeFileSync(`small${level}`, pseudoRandom(3000 + level, level));
    if (level < 23) return;
    writeFileSync('large', pseudoRandom(3 * CHUNK + 5, 42)); // chunked: a temporary file and journal down here
    symlinkSync('large', 'link');
    writeFileSync(Buffer.from([0x62, 0xff]), 'non-UTF-8 name at the bottom');
  });
  const summary = await copy(`${dir}/src`, `${dir}/dst`, { chunkSize: CHUNK, verify: true }).done;
  t.same(summary.failures, []);
  t.equal(summary.files, 6);
  // GNU tar walks deep trees relative to directory descriptors: an independent, byte-exact comparison.
  const archive = (root: string) =>
    execFileSync(
      'tar',
      [
        '-C',
        root,
        '--sort=name',
        '--numeric-owner',
        '--format=posix',
        '--pax-option=exthdr.name=x,atime:=0,ctime:=0',
        '-cf',
        '-',
        '.',
      ],
      {
        maxBuffer: 1 << 30,
      },
    );
  const a = archive(`${dir}/src`);
  const b = archive(`${dir}/dst`);
  t.ok(a.length > (20 * CHUNK) / 8, 'the archive holds the data');
  t.ok(a.equals(b), 'names, contents, modes, owners and mtimes identical');
});

// The scan stage on real trees: exact byte names, order, errors, abort, mounts, paths past PATH_MAX.
// The oracle is find(1): what it lists, sorted component by component, is the order expected.
import t from 'tap';
import type { Test } from 'tap';
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  closeSync,
  constants as C,
  linkSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { native } from '../src/native.js';
import { scan, type ScanError, type ScanOptions } from '../src/scan/index.js';
import type { Entry } from '../src/model/entry.js';
import { diskDir, isRoot, shmDir } from './helpers/fixtures.js';
import { Filter } from '../src/filter/index.js';

const b = (s: string) => Buffer.from(s, 'utf8');
/** dir + '/' + names, as bytes. */
const at = (dir: string | Buffer, ...names: (string | Buffer)[]) =>
  Buffer.concat([
    typeof dir === 'string' ? b(dir) : dir,
    ...names.flatMap((n) => [b('/'), typeof n === 'string' ? b(n) : n]),
  ]);
/** One char per byte: any name compares and prints exactly. */
const key = (p: Buffer) => p.toString('latin1');

async function collect(root: string | Buffer, options: ScanOptions = {}) {
  const entries: Entry[] = [];
  const it = scan(root, options);
  for (;;) {
    const r = await it.next();
    if (r.done) return { entries, errors: r.value, keys: entries.map((e) => key(e.path)) };
    entries.push(r.value);
  }
}

/** The first n entries, then a break (the generator's return() runs). */
async function take(root: string | Buffer, n: number, options: ScanOptions = {}) {
  const got: Entry[] = [];
  for await (const e of scan(root, options)) if (got.push(e) === n) break;
  return got;
}

/** What find(1) lists under root (a UTF-8 path: argv strings are UTF-8), as latin1 keys of the exact bytes. */
function findKeys(root: string): string[] {
  const out = execFileSync('find', [root, '-mindepth', '1', '-printf', '%P\\0'], {
    maxBuffer: 1 << 30,
    encoding: 'latin1',
  });
  return out.split('\0').slice(0, -1);
}

/** Pre-order with siblings sorted by bytes is the order of paths compared component by component. */
function walkOrder(keys: string[]): string[] {
  const cmp = (x: string, y: string) => {
    const a = x.split('/');
    const c = y.split('/');
    for (let i = 0; i < Math.min(a.length, c.length); i++) {
      if (a[i] !== c[i]) return a[i]! < c[i]! ? -1 : 1; // latin1 chars compare as bytes
    }
    return a.length - c.length;
  };
  return ['', ...[...keys].sort(cmp)];
}

/** Every entry's parent directory came before it. */
function parentsFirst(keys: string[]): boolean {
  const seen = new Set<string>();
  for (const k of keys) {
    if (k !== '' && !seen.has(k.includes('/') ? k.slice(0, k.lastIndexOf('/')) : '')) return false;
    seen.add(k);
  }
  return true;
}

const openFds = () => readdirSync('/proc/self/fd').length;

const nonUtf8 = Buffer.from([0x66, 0xff, 0xfe, 0x0a, 0x6e, 0xc3, 0xa9]); // "f" FF FE "\n" "n" "é"
const long = Buffer.alloc(255, 0xe9); // 255 bytes, not UTF-8

/** A tree with every kind of object and awkward name the scan must carry as it is. */
function odd(t: Test): string {
  const dir = diskDir(t);
  for (const n of ['B', 'a', 'a-b', 'a.b', 'a0', 'Z', 'é']) writeFileSync(path.join(dir, n), n);
  mkdirSync(path.join(dir, 'sub'));
  writeFileSync(path.join(dir, 'sub', 'hard1'), 'hard');
  linkSync(path.join(dir, 'sub', 'hard1'), path.join(dir, 'hard2'));
  mkdirSync(path.join(dir, 'sub', 'deeper', 'empty'), { recursive: true });
  mkdirSync(path.join(dir, 'empty'));
  writeFileSync(at(dir, nonUtf8), 'bytes');
  writeFileSync(path.join(dir, 'new\nline'), '');
  mkdirSync(at(dir, long));
  writeFileSync(at(dir, long, long), 'long');
  writeFileSync(at(dir, Buffer.from([0xff])), '');
  symlinkSync('no/such/target', path.join(dir, 'dangling'));
  symlinkSync('loop', path.join(dir, 'loop'));
  symlinkSync('l2', path.join(dir, 'l1'));
  symlinkSync('l1', path.join(dir, 'l2'));
  symlinkSync('sub', path.join(dir, 'todir'));
  symlinkSync('.', path.join(dir, 'sub', 'dot'));
  native.mkfifo(path.join(dir, 'fifo'), 0o644);
  return dir;
}

t.test('root first, parents before children, siblings by bytes, exact names, nothing followed', async (t) => {
  const dir = odd(t);
  const { entries, errors, keys } = await collect(dir);
  t.same(errors, [], 'no errors');
  t.equal(keys[0], '', 'the root comes first, as an empty path');
  t.equal(entries[0]!.type, 'dir');
  t.ok(entries[0]!.path.equals(Buffer.alloc(0)));
  t.same(keys, walkOrder(findKeys(dir)), 'exactly what find lists, once each, in pre-order by bytes');
  t.ok(parentsFirst(keys));
  t.same(
    keys.filter((k) => !k.includes('/')).slice(0, 8),
    ['', 'B', 'Z', 'a', 'a-b', 'a.b', 'a0', 'dangling'],
    'byte order, not locale order',
  );
  t.equal(keys.at(-1), '\xff', 'a 0xFF name sorts last');

  const byKey = new Map(entries.map((e) => [key(e.path), e]));
  const get = (p: Buffer | string) => byKey.get(key(Buffer.from(p)))!;
  t.ok(get(nonUtf8), 'a non-UTF-8 name with a newline, as its bytes');
  t.equal(get(nonUtf8).size, 5);
  t.equal(get('new\nline').type, 'file');
  t.equal(get(long).type, 'dir', '255-byte name');
  t.equal(get(at(long, long)).size, 4, '255-byte name inside a 255-byte name');
  t.equal(get('empty').type, 'dir');
  t.equal(get('sub/deeper/empty').type, 'dir', 'empty directories are entries');
  for (const l of ['dangling', 'loop', 'l1', 'l2', 'todir', 'sub/dot'])
    t.equal(get(l).type, 'symlink', `${l} is a symlink`);
  t.notOk(
    keys.some((k) => k.startsWith('todir/') || k.startsWith('sub/dot/') || k.startsWith('loop/')),
    'symlinks are never followed',
  );
  t.equal(get('fifo').type, 'fifo');
  t.equal(get('hard2').ino, get('sub/hard1').ino, 'both names of a hard link, same inode');
  t.equal(get('hard2').nlink, 2);

  const st = native.stat(at(dir, nonUtf8));
  const e = get(nonUtf8);
  t.same(
    [e.ino, e.mtimeNs, e.ctimeNs, e.atimeNs, e.mode, e.uid, e.gid, e.dev, e.blocks, e.rdev],
    [st.ino, st.mtimeNs, st.ctimeNs, st.atimeNs, st.mode, st.uid, st.gid, st.dev, st.blocks, st.rdev],
    'the entry is the lstat of the object',
  );
  t.equal(typeof e.ino, 'bigint');
  t.equal(get('sub').dev, entries[0]!.dev);
  t.same(structuredClone(e), e, 'entries are plain data');
});

t.test('the same order for every concurrency, a Buffer root and a trailing slash', async (t) => {
  const dir = odd(t);
  for (let i = 0; i < 30; i++) mkdirSync(path.join(dir, 'sub', `d${i % 7}${i}`, 'x'), { recursive: true });
  const reference = (await collect(dir, { concurrency: 1 })).keys;
  t.same(reference, walkOrder(findKeys(dir)));
  for (const concurrency of [2, 3, 8, 64]) {
    t.same((await collect(dir, { concurrency })).keys, reference, `concurrency ${concurrency}`);
  }
  t.same((await collect(Buffer.from(dir + '//'))).keys, reference, 'Buffer root with trailing slashes');
  await t.rejects(collect(dir, { concurrency: 0 }), RangeError);
  await t.rejects(collect(dir, { concurrency: 1.5 }), RangeError);
});

t.test('20,000 files: every one yielded exactly once, as find lists them', async (t) => {
  const dir = diskDir(t);
  for (let d = 0; d < 40; d++) {
    for (let s = 0; s < 5; s++) {
      const sub = path.join(dir, `d${d}`, `s${s}`);
      mkdirSync(sub, { recursive: true });
      for (let f = 0; f < 100; f++) closeSync(openSync(path.join(sub, `f${f}`), 'w'));
    }
  }
  const { entries, errors, keys } = await collect(dir);
  t.same(errors, []);
  const files = entries.filter((e) => e.type === 'file').length;
  t.equal(files, 20_000);
  t.equal(new Set(keys).size, keys.length, 'no path twice');
  const found = findKeys(dir);
  t.equal(keys.length, found.length + 1);
  t.same(keys, walkOrder(found), 'the same paths as find, in walk order');
  t.ok(parentsFirst(keys));
});

t.test("entries are lstat'ed when their directory is read: the listing is a snapshot", async (t) => {
  const dir = diskDir(t);
  const names = Array.from({ length: 300 }, (_, i) => `f${String(i).padStart(4, '0')}`);
  for (const n of names) writeFileSync(path.join(dir, n), '');
  mkdirSync(path.join(dir, 'sub'));
  for (const n of ['x', 'y']) writeFileSync(path.join(dir, 'sub', n), n);

  const reported: ScanError[] = [];
  const keys: string[] = [];
  // concurrency 1: 'sub' is read only when the walk gets to it.
  for await (const e of scan(dir, { concurrency: 1, onError: (err) => reported.push(err) })) {
    if (key(e.path) === 'f0000') {
      unlinkSync(path.join(dir, 'f0299')); // its directory was read: still yielded, as it was
      unlinkSync(path.join(dir, 'sub', 'x')); // not read yet: gone without a trace
    }
    keys.push(key(e.path));
  }
  t.same(keys, ['', ...names, 'sub', 'sub/y']);
  t.same(reported, []);
});

t.test("an entry that cannot be lstat'ed is reported and skipped; the walk goes on", async (t) => {
  // A directory that may be read but not searched (r without x): readdir lists its names, every
  // statx in it fails with EACCES, as one that vanished between the two would with ENOENT.
  const dir = diskDir(t);
  chmodSync(dir, 0o755);
  mkdirSync(path.join(dir, 'noexec'));
  for (const n of ['b', 'a', 'c']) writeFileSync(path.join(dir, 'noexec', n), '');
  writeFileSync(path.join(dir, 'z'), '');
  chmodSync(path.join(dir, 'noexec'), 0o644);
  t.teardown(() => chmodSync(path.join(dir, 'noexec'), 0o755));

  const reported: ScanError[] = [];
  const { keys } = await asNobody(() => collect(dir, { onError: (e) => reported.push(e) }));
  t.same(keys, ['', 'noexec', 'z'], 'the directory and its sibling; nothing from inside');
  t.same(
    reported.map((e) => [e.code, e.errno, e.syscall, key(e.path)]),
    [
      ['EACCES', -13, 'statx', 'noexec/a'],
      ['EACCES', -13, 'statx', 'noexec/b'],
      ['EACCES', -13, 'statx', 'noexec/c'],
    ],
    'one error per entry, in walk order, paths relative to the root',
  );
  t.equal(reported[0]!.message, `EACCES: permission denied, statx '${dir}/noexec/a'`);
  t.same(structuredClone(reported[0]), reported[0], 'plain data');

  // Without onError the errors are collected and returned when the walk is done.
  const collected = await asNobody(() => collect(dir));
  t.same(collected.keys, keys);
  t.same(
    collected.errors.map((e) => [e.code, e.syscall, key(e.path)]),
    reported.map((e) => [e.code, e.syscall, key(e.path)]),
  );
});

t.test('a directory that vanishes before it is read is reported; its siblings are still walked', async (t) => {
  const dir = diskDir(t);
  mkdirSync(path.join(dir, 'a', 'inner'), { recursive: true });
  writeFileSync(path.join(dir, 'a', 'f'), '');
  writeFileSync(path.join(dir, 'b'), '');
  const reported: ScanError[] = [];
  const keys: string[] = [];
  // concurrency 1: no directory is read ahead, so 'a' is opened only after it is yielded.
  for await (const e of scan(dir, { concurrency: 1, onError: (err) => reported.push(err) })) {
    if (key(e.path) === 'a') rmSync(path.join(dir, 'a'), { recursive: true });
    keys.push(key(e.path));
  }
  t.same(keys, ['', 'a', 'b']);
  t.same(
    reported.map((e) => [e.code, e.syscall, key(e.path)]),
    [['ENOENT', 'opendir', 'a']],
  );
});

/** Runs fn with the effective uid of nobody when root (root reads everything), as itself otherwise. */
async function asNobody<T>(fn: () => Promise<T>): Promise<T> {
  if (!isRoot) return fn();
  process.seteuid!(65534); // glibc applies it to every thread, the libuv pool included
  try {
    return await fn();
  } finally {
    process.seteuid!(0);
  }
}

t.test('a directory that cannot be opened (EACCES) is yielded, reported, not entered', async (t) => {
  const dir = diskDir(t);
  chmodSync(dir, 0o755);
  mkdirSync(path.join(dir, 'locked'));
  writeFileSync(path.join(dir, 'locked', 'secret'), '');
  mkdirSync(path.join(dir, 'open'));
  writeFileSync(path.join(dir, 'open', 'f'), '');
  chmodSync(path.join(dir, 'locked'), 0o700);
  if (!isRoot) chmodSync(path.join(dir, 'locked'), 0);
  t.teardown(() => chmodSync(path.join(dir, 'locked'), 0o700));

  const reported: ScanError[] = [];
  const { keys } = await asNobody(() => collect(dir, { onError: (e) => reported.push(e) }));
  t.same(keys, ['', 'locked', 'open', 'open/f']);
  t.same(
    reported.map((e) => ({ ...e, path: key(e.path) })),
    [
      {
        code: 'EACCES',
        errno: -13,
        syscall: 'opendir',
        path: 'locked',
        message: `EACCES: permission denied, opendir '${dir}/locked'`,
      },
    ],
  );
  await t.rejects(
    asNobody(() => collect(path.join(dir, 'locked'))),
    { code: 'EACCES', errno: -13, syscall: 'opendir', path: path.join(dir, 'locked') },
    'an unreadable root throws',
  );
});

t.test('roots that are missing, files or symlinks', async (t) => {
  const dir = diskDir(t);
  const missing = path.join(dir, 'missing');
  await t.rejects(collect(missing), { code: 'ENOENT', errno: -2, syscall: 'statx', path: missing });
  const odd = at(dir, Buffer.from([0x7a, 0xc3, 0xa9, 0xff, 0xe0, 0x41]));
  await t.rejects(collect(odd), { code: 'ENOENT', path: `${dir}/zé\\xFF\\xE0A` }, 'bytes not UTF-8 shown as \\xNN');
  writeFileSync(path.join(dir, 'file'), 'abc');
  const file = await collect(path.join(dir, 'file'));
  t.same(
    file.entries.map((e) => [key(e.path), e.type, e.size]),
    [['', 'file', 3]],
  );
  symlinkSync('.', path.join(dir, 'link'));
  const link = await collect(path.join(dir, 'link'));
  t.same(
    link.entries.map((e) => [key(e.path), e.type]),
    [['', 'symlink']],
    'a symlink root is not followed',
  );
});

t.test('abort through a signal; an early break releases everything', async (t) => {
  const dir = diskDir(t);
  for (let i = 0; i < 20; i++) {
    mkdirSync(path.join(dir, `d${i}`));
    for (let j = 0; j < 20; j++) writeFileSync(path.join(dir, `d${i}`, `f${j}`), '');
  }
  const ac = new AbortController();
  const seen: Entry[] = [];
  await t.rejects(
    (async () => {
      for await (const e of scan(dir, { signal: ac.signal })) {
        if (seen.push(e) === 50) ac.abort(new Error('enough'));
      }
    })(),
    { name: 'AbortError', code: 'ABORT_ERR', cause: { message: 'enough' } },
  );
  t.equal(seen.length, 50, 'nothing more after the abort');
  await t.rejects(collect(dir, { signal: AbortSignal.abort() }), { code: 'ABORT_ERR' }, 'aborted before it starts');

  const timed = new AbortController();
  setTimeout(() => timed.abort(), 5);
  await t.rejects(
    (async () => {
      for await (const e of scan(dir, { signal: timed.signal })) {
        seen.push(e);
        await sleep(1); // a slow consumer: the abort lands while the walk is suspended
      }
    })(),
    { code: 'ABORT_ERR' },
    'aborted while the walk waits',
  );

  const before = openFds();
  t.equal((await take(dir, 30, { concurrency: 16 })).length, 30);
  t.equal(openFds(), before, 'no directory left open after a break');
});

t.test(
  'oneFileSystem: a mount point is yielded, not entered',
  { skip: !isRoot && 'mounting a tmpfs needs root' },
  async (t) => {
    const dir = diskDir(t);
    mkdirSync(path.join(dir, 'mnt'));
    writeFileSync(path.join(dir, 'before'), '');
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1M', 'tmpfs', path.join(dir, 'mnt')]);
    try {
      mkdirSync(path.join(dir, 'mnt', 'inner'));
      writeFileSync(path.join(dir, 'mnt', 'inner', 'f'), '');
      const all = await collect(dir);
      t.same(all.keys, ['', 'before', 'mnt', 'mnt/inner', 'mnt/inner/f'], 'crosses the mount by default');
      const one = await collect(dir, { oneFileSystem: true });
      t.same(one.keys, ['', 'before', 'mnt'], 'stays on the root file system');
      t.not(one.entries[2]!.dev, one.entries[0]!.dev, 'the mount point has the other device');
    } finally {
      execFileSync('umount', [path.join(dir, 'mnt')]);
    }
  },
);

t.test('paths longer than PATH_MAX (4096 bytes) are walked', async (t) => {
  const base = mkdtempSync(path.join(process.env.STRIPEMOVER_TEST_DISK ?? '/var/tmp', 'stripemover-test-'));
  t.teardown(() => execFileSync('rm', ['-rf', base])); // rm(1) walks with openat; Node's rmSync cannot
  // 40 levels of 200-byte names (every fifth not UTF-8), a file at each level, odd leaves at the
  // bottom. Built the way the scan reads: through /proc/self/fd/N of an open ancestor.
  const level = (i: number) => (i % 5 === 4 ? Buffer.alloc(200, 0xe0 + (i % 16)) : b(`L${i}`.padEnd(200, 'x')));
  let fd = openSync(base, C.O_RDONLY | C.O_DIRECTORY);
  let rel = Buffer.alloc(0);
  let depth = base.length;
  const via = () => at(`/proc/self/fd/${fd}`, ...(rel.length ? [rel] : []));
  for (let i = 0; i < 40; i++) {
    rel = rel.length ? at(rel, level(i)) : level(i);
    mkdirSync(via());
    writeFileSync(at(via(), 'file'), String(i));
    depth += 201;
    if (rel.length > 3000) {
      const next = openSync(via(), C.O_RDONLY | C.O_DIRECTORY);
      closeSync(fd);
      fd = next;
      rel = Buffer.alloc(0);
    }
  }
  writeFileSync(at(via(), nonUtf8), 'leaf');
  native.symlink(long, at(via(), 'link'));
  native.mkfifo(at(via(), long), 0o600);
  const bottom = native.stat(at(via(), nonUtf8));
  closeSync(fd);
  t.ok(depth > 8000, `the tree is ${depth} bytes deep`);

  const before = openFds();
  const { entries, errors, keys } = await collect(base);
  t.same(errors, []);
  t.same(keys, walkOrder(findKeys(base)), 'every entry, in walk order');
  t.equal(entries.length, 1 + 40 * 2 + 3);
  const leaf = entries.find((e) => e.path.subarray(-nonUtf8.length).equals(nonUtf8))!;
  t.ok(leaf.path.length > 8000, `a ${leaf.path.length}-byte relative path`);
  t.same([leaf.ino, leaf.size, leaf.mtimeNs], [bottom.ino, 4, bottom.mtimeNs], 'the right object');
  t.equal(openFds(), before, 'every directory fd closed');

  // A root itself longer than what the walk reaches in one string (3,900 bytes < PATH_MAX).
  const deepRel = at(level(0), ...Array.from({ length: 18 }, (_, i) => level(i + 1)));
  const deepRoot = at(base, deepRel);
  t.ok(deepRoot.length > 3800 && deepRoot.length < 4096, `root of ${deepRoot.length} bytes`);
  const sub = await collect(deepRoot, { concurrency: 3 });
  const prefix = key(deepRel) + '/';
  const under = findKeys(base).filter((k) => k.startsWith(prefix));
  t.same(sub.keys, walkOrder(under.map((k) => k.slice(prefix.length))));
  t.equal(sub.keys.length, 1 + 1 + 21 * 2 + 3, 'the root, its file, 21 levels below, the leaves');

  t.equal((await take(base, 60, { concurrency: 4 })).length, 60);
  t.equal(openFds(), before, 'a break deep in the tree closes them too');
});

t.test('prune: an entry it rejects is not yielded, nor anything under a directory it rejects', async (t) => {
  const dir = odd(t);
  for (let i = 0; i < 12; i++) {
    mkdirSync(path.join(dir, 'sub', `d${i}`, 'inner'), { recursive: true });
    writeFileSync(path.join(dir, 'sub', `d${i}`, 'inner', 'f'), '');
  }
  const all = (await collect(dir)).keys;
  const dropped = (k: string) => k === 'sub' || k.startsWith('sub/') || k.endsWith('.b') || k === 'fifo';
  for (const concurrency of [1, 8]) {
    const seen: string[] = [];
    const before = openFds();
    const { keys, errors } = await collect(dir, {
      concurrency,
      prune: (e) => {
        seen.push(key(e.path));
        return key(e.path) === 'sub' || key(e.path).endsWith('.b') || e.type === 'fifo';
      },
    });
    t.same(errors, []);
    t.same(
      keys,
      all.filter((k) => !dropped(k)),
      `concurrency ${concurrency}: the walk without what was pruned`,
    );
    t.same(
      seen,
      all.filter((k) => k !== '' && (!dropped(k) || k === 'sub' || k.endsWith('.b') || k === 'fifo')),
      'called once per entry below the root, in walk order, never inside a pruned directory',
    );
    t.equal(openFds(), before, 'nothing left open');
  }
});

t.test('claim: what it takes is not yielded; a promise holds the walk until it settles', async (t) => {
  const dir = odd(t);
  const walked = await collect(dir);
  const all = walked.keys;
  const typeOf = new Map(walked.entries.map((e) => [key(e.path), e.type]));
  for (const concurrency of [1, 8]) {
    const offered: string[] = [];
    let held = 0;
    let waited = 0;
    const { keys, errors } = await collect(dir, {
      concurrency,
      prune: (e) => key(e.path).endsWith('.b'),
      claim: (e) => {
        t.equal(held, 0, 'nothing is offered while a promise it returned is pending');
        offered.push(key(e.path));
        if (e.type !== 'file') return false;
        // Every other file taken with a promise: the walk must wait for it.
        if (offered.length % 2 === 0) return true;
        held++;
        return sleep(2).then(() => {
          held--;
          waited++;
        });
      },
    });
    t.same(errors, []);
    const kept = all.filter((k) => !k.endsWith('.b'));
    const files = new Set(offered.filter((k) => typeOf.get(k) === 'file'));
    t.same(
      offered,
      kept.filter((k) => k !== '' && typeOf.get(k) !== 'dir'),
      `concurrency ${concurrency}: offered every entry but directories, in walk order, after prune`,
    );
    t.same(
      keys,
      kept.filter((k) => !files.has(k)),
      'yielded all but the files it took',
    );
    t.ok(waited > 0, 'promises were waited for');
  }
});

t.test('prune: nothing inside a pruned directory is read or reported, even when read ahead', async (t) => {
  const dir = diskDir(t);
  chmodSync(dir, 0o755);
  // Many directories to read ahead, each pruned; inside them, one that cannot be opened.
  for (let i = 0; i < 20; i++) {
    mkdirSync(path.join(dir, `skip${String(i).padStart(2, '0')}`, 'locked'), { recursive: true });
    writeFileSync(path.join(dir, `skip${String(i).padStart(2, '0')}`, 'f'), '');
    chmodSync(path.join(dir, `skip${String(i).padStart(2, '0')}`, 'locked'), isRoot ? 0o700 : 0);
  }
  mkdirSync(path.join(dir, 'keep'));
  writeFileSync(path.join(dir, 'keep', 'f'), '');
  t.teardown(() => {
    for (let i = 0; i < 20; i++) chmodSync(path.join(dir, `skip${String(i).padStart(2, '0')}`, 'locked'), 0o700);
  });
  const before = openFds();
  for (const concurrency of [1, 4, 16]) {
    const reported: ScanError[] = [];
    const { keys } = await asNobody(() =>
      collect(dir, { concurrency, onError: (e) => reported.push(e), prune: (e) => key(e.path).startsWith('skip') }),
    );
    t.same(keys, ['', 'keep', 'keep/f'], `concurrency ${concurrency}`);
    t.same(reported, [], 'no error from inside what was pruned');
  }
  t.equal(openFds(), before);
});

t.test('prune: a throw ends the walk with that error, and releases everything', async (t) => {
  const dir = odd(t);
  const before = openFds();
  const boom = new Error('boom');
  await t.rejects(
    collect(dir, {
      concurrency: 8,
      prune: (e) => {
        if (key(e.path) === 'sub/deeper') throw boom;
        return false;
      },
    }),
    boom,
  );
  t.equal(openFds(), before, 'no directory left open');
});

t.test('prune with a Filter: rsync exclusion semantics, directories not descended', async (t) => {
  const dir = diskDir(t);
  for (const p of ['src/a.c', 'src/a.o', 'build/x.o', 'build/deep/y', 'docs/build/z', 'top.o', 'keep.txt']) {
    mkdirSync(path.dirname(path.join(dir, p)), { recursive: true });
    writeFileSync(path.join(dir, p), '');
  }
  const filter = new Filter({
    rules: [
      { action: 'exclude', pattern: '*.o' },
      { action: 'exclude', pattern: '/build/' },
    ],
  });
  const { keys } = await collect(dir, { prune: (e) => filter.excludes(e) });
  t.same(keys, ['', 'docs', 'docs/build', 'docs/build/z', 'keep.txt', 'src', 'src/a.c']);
});

t.test('times beyond int64 nanoseconds (before 1677, after 2262) are exact', async (t) => {
  const dir = shmDir(t); // tmpfs keeps 64-bit seconds
  const far = 10_413_792_000_000_000_123n; // 2300-01-01 plus 123 ns
  const old = -16_725_225_600_000_000_007n; // 1440-01-01 less 7 ns
  writeFileSync(path.join(dir, 'future'), '');
  writeFileSync(path.join(dir, 'past'), '');
  writeFileSync(path.join(dir, 'now'), '');
  native.setTimes(path.join(dir, 'future'), far, far);
  native.setTimes(path.join(dir, 'past'), old, far);
  const { entries } = await collect(dir);
  const get = (n: string) => entries.find((e) => key(e.path) === n)!;
  for (const n of ['future', 'past', 'now']) {
    const st = native.stat(path.join(dir, n));
    t.same([get(n).atimeNs, get(n).mtimeNs, get(n).ctimeNs], [st.atimeNs, st.mtimeNs, st.ctimeNs], n);
  }
  t.equal(get('future').mtimeNs, far);
  t.equal(get('past').atimeNs, old);
});

t.test('native.readDir / readDirAsync: the listing, targets, keepOpen, errors', async (t) => {
  const dir = odd(t);
  const l = await native.readDirAsync(dir);
  const n = l.offsets.length - 1;
  const names = Array.from({ length: n }, (_, i) => key(l.names.subarray(l.offsets[i], l.offsets[i + 1])));
  t.same(names, [...readdirSync(dir, { encoding: 'latin1' })].sort(), 'every name, sorted by bytes');
  t.equal(l.offsets[n], l.names.length);
  t.same([l.nums.length, l.ino.length, l.times.length], [8 * n, n, 4 * n], 'the column sizes');
  const i = names.indexOf(key(nonUtf8));
  const st = native.stat(at(dir, nonUtf8));
  t.same(
    [...l.nums.subarray(8 * i, 8 * i + 8)],
    [st.mode, st.nlink, st.uid, st.gid, st.size, st.blocks, st.dev, st.rdev],
    'nums: mode, nlink, uid, gid, size, blocks, dev, rdev',
  );
  t.same(
    [l.ino[i], ...l.times.subarray(4 * i, 4 * i + 4)],
    [st.ino, st.atimeNs, st.mtimeNs, st.ctimeNs, st.birthtimeNs],
  );
  t.same([l.errors, l.wideTimes, l.fd], [[], [], undefined]);
  t.same(native.readDir(Buffer.from(dir)).names, l.names, 'the blocking twin, a Buffer path');

  const before = openFds();
  const kept = await native.readDirAsync(dir, { keepOpen: true });
  t.type(kept.fd, 'number');
  t.equal(openFds(), before + 1, 'keepOpen hands the fd over');
  const sub = native.readDir({ fd: kept.fd!, name: 'sub/deeper' });
  t.same(
    Array.from({ length: sub.offsets.length - 1 }, (_, k) =>
      key(sub.names.subarray(sub.offsets[k], sub.offsets[k + 1])),
    ),
    ['empty'],
    '{ fd, name }: a relative path under an open directory',
  );
  const viaFd = await native.readDirAsync({ fd: kept.fd!, name: long });
  t.equal(viaFd.offsets.length - 1, 1);
  closeSync(kept.fd!);
  t.equal(openFds(), before);

  const empty = native.readDir(path.join(dir, 'empty'));
  t.same([empty.names.length, [...empty.offsets], empty.nums.length], [0, [0], 0], 'an empty directory');

  await t.rejects(native.readDirAsync(path.join(dir, 'missing')), { code: 'ENOENT', errno: -2, syscall: 'opendir' });
  await t.rejects(native.readDirAsync(path.join(dir, 'B')), { code: 'ENOTDIR', syscall: 'opendir' });
  await t.rejects(native.readDirAsync(path.join(dir, 'todir')), { code: 'ENOTDIR' }, 'a final symlink is not followed');
  t.throws(() => native.readDir(at(dir, nonUtf8, 'x')), {
    code: 'ENOTDIR',
    rawPath: at(dir, nonUtf8, 'x'),
  });
  t.throws(() => native.readDir('a\0b'), TypeError);
  t.throws(() => native.readDir({ fd: -1, name: 'x' }), TypeError);
  t.throws(() => native.readDir(42 as unknown as string), TypeError);
  t.throws(() => native.readDir(''), { code: 'ENOENT' });
  t.equal(openFds(), before, 'nothing left open by the failures');
});

t.test('native.readDirs / readDirsAsync: several directories in one call', async (t) => {
  const dir = odd(t);
  const before = openFds();
  const b = await native.readDirsAsync([
    path.join(dir, 'sub'),
    { name: path.join(dir, 'missing') },
    { name: dir, keepOpen: true },
    Buffer.from(path.join(dir, 'empty')),
    { name: path.join(dir, 'sub', 'deeper') },
  ]);
  const names = (d: number) =>
    Array.from({ length: b.first[d + 1]! - b.first[d]! }, (_, k) => {
      const g = b.first[d]! + k;
      return key(b.names.subarray(b.offsets[g], b.offsets[g + 1]));
    });
  t.equal(b.first.length, 6);
  t.same(names(0), ['deeper', 'dot', 'hard1']);
  t.same(names(1), [], 'a directory that could not be read has no entries');
  t.same(names(2), [...readdirSync(dir, { encoding: 'latin1' })].sort());
  t.same(names(3), []);
  t.same(names(4), ['empty']);
  t.match(b.failures, [null, { code: 'ENOENT', errno: -2, syscall: 'opendir' }, null, null, null]);
  t.equal(b.fds[2]! >= 0, true, 'keepOpen per target');
  t.same([b.fds[0], b.fds[1], b.fds[3], b.fds[4]], [-1, -1, -1, -1]);
  t.equal(openFds(), before + 1);
  const g = b.first[0]! + 2; // sub/hard1, by its global index
  const st = native.stat(path.join(dir, 'sub', 'hard1'));
  t.same([b.nums[8 * g], b.ino[g], b.times[4 * g + 1]], [st.mode, st.ino, st.mtimeNs], 'columns by global index');
  const rel = native.readDirs([{ fd: b.fds[2]!, name: 'sub' }]);
  t.same([...rel.first], [0, 3], '{ fd, name } in a batch');
  closeSync(b.fds[2]!);
  t.equal(openFds(), before);
  t.same(native.readDirs([]).first, new Uint32Array([0]), 'an empty batch');
  t.throws(() => native.readDirs('x' as unknown as string[]), TypeError);
});

t.test('a native call that fails as a whole reports each directory it was reading', async (t) => {
  const dir = diskDir(t);
  for (const d of ['a', 'b']) {
    mkdirSync(path.join(dir, d));
    writeFileSync(path.join(dir, d, 'f'), '');
  }
  const real = native.readDirsAsync;
  let calls = 0;
  native.readDirsAsync = (targets) =>
    calls++ === 0
      ? real(targets)
      : Promise.reject(Object.assign(new Error('out of memory'), { code: 'ENOMEM', errno: -12, syscall: 'readdir' }));
  t.teardown(() => {
    native.readDirsAsync = real;
  });
  const before = openFds();
  const reported: ScanError[] = [];
  const { keys } = await collect(dir, { onError: (e) => reported.push(e) });
  t.same(keys, ['', 'a', 'b']);
  t.same(
    reported.map((e) => [e.code, e.errno, e.syscall, key(e.path)]),
    [
      ['ENOMEM', -12, 'readdir', 'a'],
      ['ENOMEM', -12, 'readdir', 'b'],
    ],
  );
  t.equal(openFds(), before);
});

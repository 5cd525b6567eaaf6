// Metadata calls, errors and byte-string names, on real files.
import t from 'tap';
import { readdirSync, writeFileSync, lstatSync, statSync } from 'node:fs';
import path from 'node:path';
import { constants as osConstants } from 'node:os';
import { native, fsConstants as C } from '../src/native.js';
import { diskDir, isRoot } from './helpers/fixtures.js';

const join = (dir: string, name: Buffer) => Buffer.concat([Buffer.from(dir + '/'), name]);

t.test('a missing file raises ENOENT with errno, syscall and path', async (t) => {
  const missing = path.join(diskDir(t), 'no', 'such', 'file');
  t.throws(() => new native.File(missing, C.O_RDONLY), {
    code: 'ENOENT',
    errno: -osConstants.errno.ENOENT,
    syscall: 'open',
    path: missing,
    message: `ENOENT: No such file or directory, open '${missing}'`,
  });
  t.throws(() => native.stat(missing), { code: 'ENOENT', syscall: 'statx', path: missing });
  await t.rejects(native.statAsync(missing), { code: 'ENOENT', syscall: 'statx', path: missing });
  await t.rejects(native.hashFileAsync(missing), { code: 'ENOENT', syscall: 'open', path: missing });
  t.throws(() => native.readlink(missing), { code: 'ENOENT', syscall: 'readlink' });
  t.throws(() => native.hashFile(Buffer.from('a\0b')), TypeError, 'NUL in a path is refused');
  t.throws(() => native.stat(42 as never), /path must be a Buffer or a string/);
});

t.test('errors are plain data that survive structuredClone (worker boundaries)', async (t) => {
  try {
    native.stat('/definitely/missing');
    t.fail('should throw');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const plain = structuredClone({
      code: e.code,
      errno: e.errno,
      syscall: e.syscall,
      path: e.path,
      message: e.message,
    });
    t.same(plain, { code: 'ENOENT', errno: -2, syscall: 'statx', path: '/definitely/missing', message: e.message });
  }
});

t.test('non-UTF-8 names, newlines in names: created, found and reported as exact bytes', async (t) => {
  const dir = diskDir(t);
  const name = Buffer.from([0x66, 0xff, 0xfe, 0x0a, 0x6e, 0xc3, 0xa9]); // "f" FF FE "\n" "n" "é"
  const file = join(dir, name);
  const f = new native.File(file, C.O_WRONLY | C.O_CREAT, 0o640);
  f.write(Buffer.from('x'), 0, 1, 0);
  f.close();
  const listed = readdirSync(dir, { encoding: 'buffer' });
  t.same(listed, [name], 'the kernel holds exactly these bytes');
  t.equal(native.stat(file).size, 1);

  const linkName = join(dir, Buffer.from([0x6c, 0x80]));
  native.symlink(name, linkName);
  t.ok(native.readlink(linkName).equals(name), 'symlink target bytes round-trip');
  t.equal(native.stat(linkName, { follow: true }).size, 1);

  const missing = join(dir, Buffer.from([0x7a, 0xff]));
  const err = (() => {
    try {
      native.stat(missing);
    } catch (e) {
      return e as NodeJS.ErrnoException & { rawPath?: Buffer };
    }
  })();
  t.equal(err?.code, 'ENOENT');
  t.equal(err?.path, `${dir}/z\\xFF`, 'path shows \\xNN for a byte that is not UTF-8');
  t.ok(err?.rawPath?.equals(missing), 'rawPath keeps the exact bytes');
  const longName = join(dir, Buffer.alloc(255, 0xe9));
  native.mkfifo(longName, 0o600);
  t.ok(lstatSync(longName).isFIFO(), '255-byte non-UTF-8 name');
});

t.test('statx gives nanosecond times; setTimes sets them exactly, on links too', async (t) => {
  const dir = diskDir(t);
  const file = path.join(dir, 'times');
  writeFileSync(file, 'abc');
  const atime = 1_234_567_890_123_456_789n;
  const mtime = -1_000_000_001n; // before 1970, odd nanoseconds
  native.setTimes(file, atime, mtime);
  const s = native.stat(file);
  t.equal(s.atimeNs, atime);
  t.equal(s.mtimeNs, mtime);
  t.equal(s.size, 3);
  t.equal(s.nlink, 1);
  t.equal(s.ino, statSync(file, { bigint: true }).ino);
  t.equal(s.mode & 0o170000, C.S_IFREG);

  native.setTimes(file, null, 5n); // atime left alone
  t.equal(native.stat(file).atimeNs, atime);
  t.equal(native.stat(file).mtimeNs, 5n);

  const far = 10_413_792_000_000_000_123n; // the year 2300: more nanoseconds than an int64 holds
  native.setTimes(file, far, far);
  t.equal(native.stat(file).mtimeNs, far, 'times past 2262 survive (no 64-bit ns overflow)');

  const link = path.join(dir, 'link');
  native.symlink('times', link);
  native.setTimes(link, 7n, 9n);
  t.equal(native.stat(link).mtimeNs, 9n, 'the link itself');
  t.equal(native.stat(file).mtimeNs, far, 'not its target');
  t.equal(native.stat(link).mode & 0o170000, C.S_IFLNK);
});

t.test('xattrs: list, get, set (create/replace), remove, binary values', async (t) => {
  const file = path.join(diskDir(t), 'x');
  writeFileSync(file, '');
  t.same(native.listXattrs(file), []);
  const value = Buffer.from([0, 1, 2, 255, 0]);
  native.setXattr(file, 'user.bin', value);
  native.setXattr(file, 'user.empty', Buffer.alloc(0));
  native.setXattr(file, 'user.big', Buffer.alloc(3000, 1)); // larger than the first guess
  t.same(native.listXattrs(file).sort(), ['user.big', 'user.bin', 'user.empty']);
  t.ok(native.getXattr(file, 'user.bin').equals(value));
  t.equal(native.getXattr(file, 'user.empty').length, 0);
  t.equal(native.getXattr(file, 'user.big').length, 3000);
  t.throws(() => native.setXattr(file, 'user.bin', 'x', 1 /* XATTR_CREATE */), {
    code: 'EEXIST',
    syscall: 'lsetxattr',
  });
  t.throws(() => native.setXattr(file, 'user.none', 'x', 2 /* XATTR_REPLACE */), { code: 'ENODATA' });
  native.removeXattr(file, 'user.bin');
  t.throws(() => native.getXattr(file, 'user.bin'), { code: 'ENODATA', syscall: 'lgetxattr', path: file });
});

t.test('links, chmod, fifos, device nodes and ownership', async (t) => {
  const dir = diskDir(t);
  const file = path.join(dir, 'a');
  writeFileSync(file, 'hello');
  native.link(file, path.join(dir, 'b'));
  t.equal(native.stat(file).nlink, 2);
  t.equal(native.stat(path.join(dir, 'b')).ino, native.stat(file).ino);
  t.throws(() => native.link(file, path.join(dir, 'b')), { code: 'EEXIST', syscall: 'link' });
  native.chmod(file, 0o4751);
  t.equal(native.stat(file).mode & 0o7777, 0o4751);
  native.mkfifo(path.join(dir, 'fifo'), 0o640); // no bit the usual umask removes
  t.equal(native.stat(path.join(dir, 'fifo')).mode & 0o170777, C.S_IFIFO | 0o640);
});

t.test('device nodes and ownership', { skip: !isRoot && 'mknod of a device and lchown need root' }, async (t) => {
  const dir = diskDir(t);
  const file = path.join(dir, 'a');
  writeFileSync(file, 'hello');
  const dev = native.makedev(1, 3);
  native.mknod(path.join(dir, 'null'), C.S_IFCHR | 0o666, dev);
  const st = native.stat(path.join(dir, 'null'));
  t.equal(st.rdev, dev);
  t.equal(st.mode & 0o170000, C.S_IFCHR);
  native.symlink('a', path.join(dir, 'l'));
  native.lchown(path.join(dir, 'l'), 1234, 5678);
  t.same([native.stat(path.join(dir, 'l')).uid, native.stat(path.join(dir, 'l')).gid], [1234, 5678]);
  t.equal(native.stat(file).uid, 0, 'the target keeps its owner');
});

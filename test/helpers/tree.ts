// An independent description of a tree, for comparing a copy with its source without trusting
// the engine: Node's own fs (bigint lstat), sha256 of contents, link targets, xattrs, link groups.
import { createHash } from 'node:crypto';
import { closeSync, lstatSync, openSync, readdirSync, readlinkSync, readSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

export interface Described {
  path: string; // latin1 of the bytes: one char per byte, so any name compares exactly
  type: string;
  mode: number;
  uid: number;
  gid: number;
  size?: bigint;
  mtimeNs?: bigint;
  digest?: string;
  target?: string;
  rdev?: bigint;
  xattrs: string;
  linkGroup?: string;
  sparse?: boolean;
}

function typeOf(st: ReturnType<typeof lstatSync> & object): string {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isFIFO()) return 'fifo';
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  return 'other';
}

/**
 * Content digest, by other code than stripemover's: XXH3 from xxhsum for large files with
 * printable names (fast over 10 GiB of holes), sha1 through Node's fs otherwise.
 */
function contentDigest(p: Buffer, size: bigint): string {
  const name = p.toString('utf8');
  if (size > 64n << 20n && Buffer.from(name).equals(p)) {
    return execFileSync('xxhsum', ['-H3', name], { encoding: 'latin1' }).split(/\s+/)[0]!;
  }
  return sha1(p);
}

function sha1(p: Buffer): string {
  const h = createHash('sha1');
  const buf = Buffer.allocUnsafe(8 << 20);
  const fd = openSync(p, 'r');
  try {
    for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0;) h.update(buf.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return h.digest('hex');
}

/** xattrs through getfattr(1): another implementation than the addon's. */
function xattrsOf(p: Buffer): string {
  try {
    return execFileSync('getfattr', ['-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', p.toString('latin1')], {
      encoding: 'latin1',
      stdio: ['ignore', 'pipe', 'ignore'],
    })
      .split('\n')
      .filter((l) => l && !l.startsWith('#') && !l.startsWith('security.'))
      .sort()
      .join(';');
  } catch {
    return '';
  }
}

/** Every entry under root (root included, as ''), sorted by path bytes. Times of the root are left out. */
export function describeTree(root: string, opts: { xattrs?: boolean; dirTimes?: boolean } = {}): Described[] {
  const out: Described[] = [];
  const groups = new Map<bigint, string>();
  const walk = (rel: Buffer) => {
    const abs = rel.length ? Buffer.concat([Buffer.from(root + '/'), rel]) : Buffer.from(root);
    const st = lstatSync(abs, { bigint: true });
    const type = typeOf(st as never);
    const d: Described = {
      path: rel.toString('latin1'),
      type,
      mode: Number(st.mode & 0o7777n),
      uid: Number(st.uid),
      gid: Number(st.gid),
      xattrs: opts.xattrs ? xattrsOf(abs) : '',
    };
    if (type === 'file') {
      d.size = st.size;
      d.mtimeNs = st.mtimeNs;
      d.digest = contentDigest(abs, st.size);
      d.sparse = st.blocks * 512n < st.size;
      if (st.nlink > 1n) {
        const first = groups.get(st.ino) ?? d.path;
        groups.set(st.ino, first);
        d.linkGroup = first;
      }
    }
    if (type === 'symlink') d.target = readlinkSync(abs, { encoding: 'buffer' }).toString('latin1');
    if (type === 'char' || type === 'block') d.rdev = st.rdev;
    if (type !== 'symlink' && (type !== 'dir' || opts.dirTimes) && rel.length) d.mtimeNs = st.mtimeNs;
    out.push(d);
    if (type === 'dir') {
      const names = readdirSync(abs, { encoding: 'buffer' }).sort(Buffer.compare);
      for (const n of names) walk(rel.length ? Buffer.concat([rel, Buffer.from('/'), n]) : n);
    }
  };
  walk(Buffer.alloc(0));
  return out;
}

/** describeTree without the link groups: a snapshot's tree, whose files have names in other snapshots too, against its source. */
export function describeContents(root: string, opts: { xattrs?: boolean; dirTimes?: boolean } = {}): Described[] {
  return describeTree(root, opts).map(({ linkGroup: _, ...rest }) => rest);
}

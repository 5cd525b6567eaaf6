// Byte paths of the POSIX target, of any length. Linux refuses paths of PATH_MAX (4096) bytes
// and more; a deeper one is reached through a descriptor held on one of its directories,
// as /proc/self/fd/N/rest. Descriptors are process-wide, so worker threads can use such paths.
import { realpathSync } from 'node:fs';
import path from 'node:path';
import { native } from '../../native.js';
import type { NativeFile } from '../../native.js';
import type { Entry } from '../../model/entry.js';

const SLASH = Buffer.from('/');
const O_PATH = 0o10000000; // Linux; not among node:fs constants
const O_DIRECTORY = 0o200000;
/** Below PATH_MAX with room for the /proc/self/fd/N/ prefix. */
const LIMIT = 3900;

/**
 * The absolute path the kernel reaches for `p`, as bytes (a symlink may lead to a name that is
 * not UTF-8), its symlinks and '..' taken in the kernel's order (path.resolve, and so
 * fs.realpathSync, would apply a '..' before the symlink it follows: realpath(3) it is); a tail
 * not made yet is appended as given, as a recursive mkdir would make it.
 */
export function reachedPath(p: string): Buffer {
  // Bytes as latin1 text (one character a byte) for the path module, which only looks at '/' and '.'.
  const reach = (full: string): string => {
    try {
      return realpathSync.native(Buffer.from(full, 'latin1'), { encoding: 'buffer' }).toString('latin1');
    } catch {
      const [up, last] = [path.dirname(full), path.basename(full)];
      if (up === full) return full;
      const base = reach(up);
      return last === '..' ? path.dirname(base) : last === '.' ? base : path.join(base, last);
    }
  };
  const bytes = Buffer.from(p).toString('latin1');
  return Buffer.from(
    reach(bytes.startsWith('/') ? bytes : `${Buffer.from(process.cwd()).toString('latin1')}/${bytes}`),
    'latin1',
  );
}

/** Whether two paths name the same inode (false when either cannot be stat'ed). */
export function sameInode(a: string | Buffer, b: string | Buffer): boolean {
  try {
    const [x, y] = [native.stat(a), native.stat(b)];
    return x.ino === y.ino && x.dev === y.dev;
  } catch {
    return false;
  }
}

/**
 * A test for whether a scanned entry is the directory `root` names (given maybe as a symlink to
 * it): by its inode, taken once it exists.
 */
export function isDirectoryOf(root: string | Buffer): (e: Pick<Entry, 'type' | 'dev' | 'ino'>) => boolean {
  let id: { dev: number; ino: bigint } | undefined;
  return (e) => {
    if (e.type !== 'dir') return false;
    try {
      id ??= native.stat(root, { follow: true });
    } catch {
      return false; // not there (yet)
    }
    return e.ino === id.ino && e.dev === id.dev;
  };
}

/** root + '/' + rel, as bytes; rel empty means root itself. */
export function joinPath(root: Uint8Array, rel: Uint8Array): Buffer {
  const r = Buffer.from(root.buffer, root.byteOffset, root.byteLength);
  if (rel.byteLength === 0) return r;
  return Buffer.concat([r, SLASH, Buffer.from(rel.buffer, rel.byteOffset, rel.byteLength)]);
}

/**
 * Paths packed into one Uint8Array, each ended by a NUL (an empty one means "none"): a batch of
 * files crosses a worker boundary as one copy of one buffer, not one per path (native
 * pathListArg reads it).
 */
export class PathList {
  private buf = Buffer.allocUnsafe(1 << 14);
  private len = 0;

  /** Appends one path, the concatenation of parts. */
  add(...parts: Uint8Array[]): void {
    let n = 0;
    for (const p of parts) n += p.byteLength;
    this.room(n);
    for (const p of parts) {
      this.buf.set(p, this.len);
      this.len += p.byteLength;
    }
    this.buf[this.len++] = 0;
  }

  /** Appends bytes [start, end) of buf as one path: for a name within a path, no view of it made apart. */
  addRange(buf: Uint8Array, start: number, end = buf.byteLength): void {
    this.room(end - start);
    for (let i = start; i < end; i++) this.buf[this.len++] = buf[i]!; // names are short: cheaper than a view
    this.buf[this.len++] = 0;
  }

  /** Grows the buffer for a path of n bytes and its NUL. */
  private room(n: number): void {
    if (this.len + n + 1 <= this.buf.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.len + n + 1));
    this.buf.copy(bigger, 0, 0, this.len);
    this.buf = bigger;
  }

  /** The list, in a buffer of its own (a view into a larger one would be copied whole). */
  take(): Uint8Array {
    const out = new Uint8Array(this.len);
    out.set(this.buf.subarray(0, this.len));
    return out;
  }
}

/** A tree's root, giving usable paths to what is below it however deep. */
export class TreeRoot {
  /** Directory (absolute path, latin1) -> an O_PATH descriptor on it, held until close(). */
  private readonly anchors = new Map<string, NativeFile>();

  constructor(readonly root: Buffer) {}

  /** A path the kernel accepts for rel. */
  path(rel: Uint8Array): Buffer {
    return this.usable(joinPath(this.root, rel));
  }

  /** Whether path(rel) is root/rel itself: short enough for the kernel, no anchor needed. */
  isShort(rel: Uint8Array): boolean {
    return rel.byteLength > 0 && this.root.length + 1 + rel.byteLength < LIMIT;
  }

  /** Appends path(rel) to a list without building it apart when it is short (most are). */
  appendTo(list: PathList, rel: Uint8Array): void {
    if (this.isShort(rel)) list.add(this.root, SLASH, rel);
    else list.add(this.path(rel));
  }

  close(): void {
    for (const f of this.anchors.values()) f.close();
    this.anchors.clear();
  }

  private usable(abs: Buffer): Buffer {
    if (abs.length < LIMIT) return abs;
    // Anchor at the last directory that still fits, then continue from there.
    const cut = abs.lastIndexOf(0x2f, LIMIT - 1);
    const dir = abs.subarray(0, cut);
    const key = dir.toString('latin1');
    let anchor = this.anchors.get(key);
    if (!anchor) {
      anchor = new native.File(this.usable(Buffer.from(dir)), O_PATH | O_DIRECTORY);
      this.anchors.set(key, anchor);
    }
    return this.usable(Buffer.concat([Buffer.from(`/proc/self/fd/${anchor.fd}`), abs.subarray(cut)]));
  }
}

// The scan stage: a parallel walk of a tree that streams one Entry per object, paths as bytes.
//
// Order. Pre-order depth-first, siblings sorted by name bytes (Buffer.compare): the root first,
// every directory before its children, the same sequence on every run and for every
// `concurrency`. A copier can create each directory before anything goes into it.
//
// Memory. Depth-first keeps, per directory on the current path from the root, its sorted name
// list plus a small window of stats: memory grows with depth x fan-out, never with the size of
// the tree (a breadth-first queue would hold a whole level, i.e. most of a wide tree). Name lists
// are packed (the bytes plus ~12 bytes a name), so a 1,000,000-entry directory costs some 30 MB
// while it is walked and nothing after.
//
// Parallelism without giving up the order. Each directory's entries are lstat'ed through a
// sliding window (`statWindow` requests ahead of what is yielded), and directories are read ahead
// of the walk: the next directories in walk order that the windows have already found (nearest
// first, from the top of the stack down) are opened while the current one is being yielded, up to
// `concurrency - 1` reads at once plus the one the walk waits for, and only while the
// read-ahead listings not yet reached hold fewer than PREFETCH_NAMES names / PREFETCH_DIRS
// directories. Results are consumed strictly in order, so parallelism never shows in the output.
//
// Paths longer than PATH_MAX. Linux refuses a path string of 4096 bytes or more
// (ENAMETOOLONG), and Node has no openat(). A directory whose path would pass MAX_ACCESS bytes is
// therefore opened (O_DIRECTORY | O_NOFOLLOW) through its parent's shorter path, and its
// children are then reached as /proc/self/fd/<fd>/<name>: the kernel resolves the magic link to
// the open directory, so only the string passed has to fit. Such an "anchor" fd is counted by the
// directories that reach through it and closed when the last of them is done.
import { closeSync, open, constants as fsc } from 'node:fs';
import { opendir } from 'node:fs/promises';
import { getSystemErrorMap, promisify } from 'node:util';
import { native, type NativeStat } from '../native.js';
import { entryType, type Entry } from '../model/entry.js';

export interface ScanOptions {
  /** Directories read at once (default 8; 1 reads one directory at a time). */
  concurrency?: number;
  /** Do not descend into directories on another device than the root (they are still yielded, as `find -xdev`). */
  oneFileSystem?: boolean;
  /** Stops the walk: the generator throws an Error with name 'AbortError' and code 'ABORT_ERR'. */
  signal?: AbortSignal;
  /**
   * Per-path errors (a directory that cannot be opened, an entry that vanished before its lstat):
   * reported here and the walk goes on. Without it they are collected and become the generator's
   * return value (the `value` of the final `{ done: true }` result).
   */
  onError?: (err: ScanError) => void;
}

/** A per-path error, as plain data (it survives structuredClone). */
export interface ScanError {
  /** An errno name (ENOENT, EACCES, ...). */
  code: string;
  /** Negative, as Node's fs errors. */
  errno?: number;
  syscall?: string;
  /** Relative to the scanned root, like Entry.path. */
  path: Buffer;
  /** For people: the full path, non-UTF-8 bytes shown as \xNN. */
  message: string;
}

const PATH_MAX = 4096; // including the terminating NUL
const NAME_MAX = 255;
/** Longest path string used to reach a directory: its path plus '/' plus any name still fits in PATH_MAX. */
const MAX_ACCESS = PATH_MAX - 1 - 1 - NAME_MAX - 39;
/** Read-ahead limits: names held by read-ahead listings not yet reached, and such directories. */
const PREFETCH_NAMES = 65_536;
const PREFETCH_DIRS = 256;
/** Window slots the read-ahead looks at, from the top of the stack down, each time it runs. */
const PREFETCH_SCAN = 256;
/** Names fetched from the kernel per opendir read. */
const DIR_BUFFER = 1024;

const EMPTY = Buffer.alloc(0);
const SEP = Buffer.from('/');
const openAsync = promisify(open);

/**
 * Walks `root` and yields it (path = empty Buffer), then everything under it. Symlinks are yielded
 * as themselves, never followed (nor is the root, if it is one). Throws if the root itself cannot
 * be lstat'ed or read; errors below it go to `options.onError`.
 */
export async function* scan(
  root: Buffer | string,
  options: ScanOptions = {},
): AsyncGenerator<Entry, ScanError[], undefined> {
  const concurrency = options.concurrency ?? 8;
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new RangeError(`scan: concurrency must be an integer >= 1, got ${concurrency}`);
  }
  const walker = new Walker(normalizeRoot(root), concurrency, options);
  try {
    return yield* walker.walk();
  } finally {
    await walker.close();
  }
}

/** Counts the directories that reach through an open directory fd. */
interface Anchor {
  fd: number;
  refs: number;
}

interface Slot {
  rel: Buffer;
  done: boolean;
  entry: Entry | null;
  error: ScanError | null;
  /** Set when the entry is a directory to descend into. */
  child: DirState | null;
  promise: Promise<void>;
}

interface DirState {
  rel: Buffer;
  /** Path string that reaches the directory (≤ MAX_ACCESS bytes); null until its anchor is open. */
  access: Buffer | null;
  /** Path to open as a new anchor when the directory's own path would be too long. */
  openPath: Buffer | null;
  /** The anchor `access` (or `openPath`) goes through, counted; null for plain paths. */
  anchor: Anchor | null;
  listing: Promise<void> | null;
  prefetched: boolean;
  entered: boolean;
  names: Names;
  /** Names read ahead and not yet reached (for the read-ahead budget). */
  held: number;
  next: number;
  window: Slot[];
  error: ScanError | null;
}

class Walker {
  private readonly stack: DirState[] = [];
  private readonly anchors = new Set<Anchor>();
  private readonly pending = new Set<Promise<unknown>>();
  private readonly errors: ScanError[] = [];
  private readonly statWindow: number;
  private readonly signal: AbortSignal | undefined;
  private rootDev = 0;
  private prefetching = 0;
  private heldNames = 0;
  private heldDirs = 0;
  private closed = false;

  constructor(
    private readonly root: Buffer,
    private readonly concurrency: number,
    private readonly options: ScanOptions,
  ) {
    this.statWindow = Math.max(8, 4 * concurrency);
    this.signal = options.signal;
  }

  async *walk(): AsyncGenerator<Entry, ScanError[], undefined> {
    this.checkAbort();
    let st: NativeStat;
    try {
      st = await native.statAsync(this.root);
    } catch (err) {
      throw this.rootError(this.scanError(err, EMPTY, 'statx'));
    }
    this.checkAbort();
    const rootEntry = toEntry(EMPTY, st);
    if (rootEntry.type !== 'dir') {
      yield rootEntry;
      return this.errors;
    }
    this.rootDev = st.dev;
    const rootDir = this.makeDir(EMPTY, this.root, null);
    await (rootDir.listing = this.list(rootDir));
    this.checkAbort();
    if (rootDir.error) throw this.rootError(rootDir.error);
    yield rootEntry;
    this.checkAbort();
    this.stack.push(rootDir);

    while (this.stack.length > 0) {
      const dir = this.stack[this.stack.length - 1]!;
      if (!dir.entered) {
        dir.entered = true;
        await (dir.listing ??= this.list(dir));
        this.checkAbort();
        if (dir.prefetched) {
          this.heldNames -= dir.held;
          this.heldDirs--;
        }
        if (dir.error) this.report(dir.error);
        this.pump();
      }
      this.fill(dir);
      const slot = dir.window.shift();
      if (!slot) {
        this.stack.pop();
        this.release(dir.anchor);
        continue;
      }
      if (!slot.done) await slot.promise;
      this.checkAbort();
      if (slot.error) {
        this.report(slot.error);
        continue;
      }
      yield slot.entry!;
      this.checkAbort();
      if (slot.child) this.stack.push(slot.child);
    }
    return this.errors;
  }

  /** Waits for what is still running (so no fd is closed under it), then closes the anchors. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled([...this.pending]);
    for (const a of this.anchors) closeSync(a.fd);
    this.anchors.clear();
  }

  private makeDir(rel: Buffer, path: Buffer, parentAnchor: Anchor | null): DirState {
    if (parentAnchor) parentAnchor.refs++;
    const short = path.length <= MAX_ACCESS;
    return {
      rel,
      access: short ? path : null,
      openPath: short ? null : path,
      anchor: parentAnchor,
      listing: null,
      prefetched: false,
      entered: false,
      names: new Names(),
      held: 0,
      next: 0,
      window: [],
      error: null,
    };
  }

  private release(anchor: Anchor | null): void {
    if (anchor && --anchor.refs === 0) {
      this.anchors.delete(anchor);
      closeSync(anchor.fd); // a directory fd: nothing to flush, so this does not block
    }
  }

  /** Reads and sorts a directory's names, then starts the first stats. Never rejects. */
  private list(dir: DirState): Promise<void> {
    return this.track(this.read(dir));
  }

  private async read(dir: DirState): Promise<void> {
    let syscall = 'opendir';
    try {
      if (dir.access === null) {
        syscall = 'open';
        const fd = await openAsync(dir.openPath!, fsc.O_RDONLY | fsc.O_DIRECTORY | fsc.O_NOFOLLOW);
        const anchor = { fd, refs: 1 };
        this.anchors.add(anchor);
        this.release(dir.anchor);
        dir.anchor = anchor;
        dir.access = Buffer.from(`/proc/self/fd/${fd}`);
        dir.openPath = null;
        syscall = 'opendir';
      }
      // Node returns Dirent names as Buffers with encoding 'buffer'; @types/node only knows string encodings.
      const handle = await opendir(dir.access, { encoding: 'buffer' as BufferEncoding, bufferSize: DIR_BUFFER });
      try {
        for (;;) {
          if (this.closed || this.signal?.aborted) break;
          const d = await handle.read();
          if (d === null) break;
          dir.names.add(d.name as unknown as Buffer);
        }
      } finally {
        await handle.close().catch(() => {});
      }
    } catch (err) {
      dir.error = this.scanError(err, dir.rel, syscall);
    }
    dir.names.sort();
    if (dir.prefetched) {
      this.prefetching--;
      dir.held = dir.names.length;
      this.heldNames += dir.held;
    }
    if (!this.closed) {
      this.fill(dir);
      this.pump();
    }
  }

  /** Starts lstat's for the directory's next names, up to the window. */
  private fill(dir: DirState): void {
    while (dir.window.length < this.statWindow && dir.next < dir.names.length) {
      dir.window.push(this.stat(dir, dir.names.at(dir.next++)));
    }
    if (dir.next === dir.names.length && dir.names.length > 0) dir.names = new Names(); // done with the list
  }

  private stat(dir: DirState, name: Buffer): Slot {
    const rel = dir.rel.length === 0 ? Buffer.from(name) : Buffer.concat([dir.rel, SEP, name]); // copies: `name` is a view
    const path = join(dir.access!, name);
    const slot: Slot = { rel, done: false, entry: null, error: null, child: null, promise: Promise.resolve() };
    slot.promise = this.track(
      native.statAsync(path).then(
        (st) => {
          slot.entry = toEntry(rel, st);
          if (slot.entry.type === 'dir' && (!this.options.oneFileSystem || st.dev === this.rootDev)) {
            slot.child = this.makeDir(rel, path, dir.anchor);
            this.pump();
          }
          slot.done = true;
        },
        (err: unknown) => {
          slot.error = this.scanError(err, rel, 'statx');
          slot.done = true;
        },
      ),
    );
    return slot;
  }

  /** Read-ahead: starts reading the nearest directories the windows have found, within the limits. */
  private pump(): void {
    if (this.closed) return;
    let budget = PREFETCH_SCAN;
    for (let f = this.stack.length - 1; f >= 0; f--) {
      for (const slot of this.stack[f]!.window) {
        if (
          this.prefetching >= this.concurrency - 1 ||
          this.heldNames >= PREFETCH_NAMES ||
          this.heldDirs >= PREFETCH_DIRS ||
          --budget < 0
        ) {
          return;
        }
        const child = slot.child;
        if (child && !child.listing) {
          child.prefetched = true;
          this.prefetching++;
          this.heldDirs++;
          child.listing = this.list(child);
        }
      }
    }
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p)).catch(() => {});
    return p;
  }

  private report(err: ScanError): void {
    if (this.options.onError) this.options.onError(err);
    else this.errors.push(err);
  }

  private checkAbort(): void {
    const signal = this.signal;
    if (signal?.aborted) {
      const err = new Error('The scan was aborted', { cause: signal.reason });
      err.name = 'AbortError';
      throw Object.assign(err, { code: 'ABORT_ERR' });
    }
  }

  private scanError(err: unknown, rel: Buffer, fallbackSyscall: string): ScanError {
    const e = (err ?? {}) as Partial<NodeJS.ErrnoException>;
    const code = typeof e.code === 'string' ? e.code : 'EUNKNOWN';
    const errno = typeof e.errno === 'number' ? e.errno : undefined;
    const syscall = typeof e.syscall === 'string' ? e.syscall : fallbackSyscall;
    const full = rel.length === 0 ? this.root : join(this.root, rel);
    const what = (errno !== undefined && getSystemErrorMap().get(errno)?.[1]) || String(e.message ?? err);
    return {
      code,
      ...(errno !== undefined ? { errno } : {}),
      syscall,
      path: rel,
      message: `${code}: ${what}, ${syscall} '${displayPath(full)}'`,
    };
  }

  /** What is thrown when the root cannot be read: an Error with code, errno, syscall and path. */
  private rootError(e: ScanError): Error {
    return Object.assign(new Error(e.message), {
      code: e.code,
      ...(e.errno !== undefined ? { errno: e.errno } : {}),
      syscall: e.syscall,
      path: displayPath(this.root),
    });
  }
}

/**
 * A directory's names, packed into one buffer and sorted by bytes through an index: a Buffer per
 * name would cost some 300 bytes of heap each (300 MB for a 1,000,000-entry directory).
 */
class Names {
  private bytes = Buffer.allocUnsafe(0);
  private used = 0;
  /** Where each name starts in `bytes`, plus the end of the last one. */
  private readonly starts: number[] = [0];
  private order: Uint32Array | null = null;

  get length(): number {
    return this.starts.length - 1;
  }

  add(name: Buffer): void {
    if (this.used + name.length > this.bytes.length) {
      const bigger = Buffer.allocUnsafe(Math.max(4096, 2 * this.bytes.length, this.used + name.length));
      this.bytes.copy(bigger, 0, 0, this.used);
      this.bytes = bigger;
    }
    this.used += name.copy(this.bytes, this.used);
    this.starts.push(this.used);
  }

  sort(): void {
    const { bytes, starts } = this;
    const order = new Uint32Array(this.length);
    for (let i = 0; i < order.length; i++) order[i] = i;
    order.sort((a, b) => bytes.compare(bytes, starts[b]!, starts[b + 1]!, starts[a]!, starts[a + 1]!));
    this.order = order;
  }

  /** The i-th name in sorted order: a view into the packed buffer (copy it to keep it). */
  at(i: number): Buffer {
    const k = this.order![i]!;
    return this.bytes.subarray(this.starts[k]!, this.starts[k + 1]!);
  }
}

function toEntry(path: Buffer, st: NativeStat): Entry {
  return {
    path,
    type: entryType(st.mode),
    mode: st.mode,
    uid: st.uid,
    gid: st.gid,
    size: st.size,
    blocks: st.blocks,
    dev: st.dev,
    ino: st.ino,
    nlink: st.nlink,
    rdev: st.rdev,
    atimeNs: st.atimeNs,
    mtimeNs: st.mtimeNs,
    ctimeNs: st.ctimeNs,
  };
}

/** The root as bytes, without trailing slashes ('/' stays '/'). */
function normalizeRoot(root: Buffer | string): Buffer {
  const b = typeof root === 'string' ? Buffer.from(root, 'utf8') : root;
  let end = b.length;
  while (end > 1 && b[end - 1] === 0x2f) end--;
  return Buffer.from(b.subarray(0, end));
}

function join(dir: Buffer, name: Buffer): Buffer {
  return dir[dir.length - 1] === 0x2f ? Buffer.concat([dir, name]) : Buffer.concat([dir, SEP, name]);
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Path bytes for people: valid UTF-8 as is, other bytes as \xNN (as the addon's errors show them). */
function displayPath(p: Buffer): string {
  try {
    return utf8.decode(p);
  } catch {
    // fall through: byte by byte
  }
  let out = '';
  for (let i = 0; i < p.length;) {
    const c = p[i]!;
    const n = c < 0x80 ? 1 : c >= 0xc2 && c < 0xe0 ? 2 : c >= 0xe0 && c < 0xf0 ? 3 : c >= 0xf0 && c < 0xf5 ? 4 : 0;
    if (n === 1) {
      out += String.fromCharCode(c);
      i++;
      continue;
    }
    if (n > 1 && i + n <= p.length) {
      try {
        out += utf8.decode(p.subarray(i, i + n));
        i += n;
        continue;
      } catch {
        // not a valid sequence: show the lead byte
      }
    }
    out += `\\x${c.toString(16).toUpperCase().padStart(2, '0')}`;
    i++;
  }
  return out;
}

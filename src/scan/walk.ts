// The scan stage: a parallel walk of a tree that streams one Entry per object, paths as bytes.
//
// Directories are read in C++, several per native call. native.readDirsAsync opens each
// directory, reads every name, lstat's every entry relative to the directory's fd (statx on the
// libuv pool, no path built) and sorts the names by bytes; JS gets the names packed in one
// Buffer and the stats as typed-array columns, and builds each Entry only when it is yielded.
// Batching matters as much as the C++: handing a job to the pool and back costs more than
// reading a small directory.
//
// Order. Pre-order depth-first, siblings sorted by name bytes (memcmp): the root first, every
// directory before its children, the same sequence on every run and for every `concurrency`.
// A copier can create each directory before anything goes into it.
//
// Memory. Depth-first keeps the listings of the directories on the current path from the root,
// plus the read-ahead ones: it grows with depth x fan-out, never with the size of the tree (a
// breadth-first queue would hold a whole level, i.e. most of a wide tree). A listing is packed:
// the name bytes plus about 110 bytes an entry (offsets and stat columns, no object per entry),
// so a 1,000,000-entry directory costs some 130 MB while it is walked and nothing after. The
// directories read in one call share their arrays, which live until the last of them is done.
//
// Snapshot. A directory's entries are stat'ed when it is read, not when they are yielded: an
// entry removed after its directory was read is still yielded, as it was. One that vanished
// between the kernel listing it and its statx is reported (ENOENT, syscall 'statx').
//
// Parallelism without giving up the order. Directories are read ahead of the walk: the next
// directories in walk order that the listings already read show (depth-first through what was
// read ahead, from the top of the stack down) are read while the current one is being yielded,
// in batches of up to BATCH_DIRS, `concurrency - 1` batches at once plus the directory the walk
// waits for, and only while the read-ahead listings not yet reached hold fewer than
// PREFETCH_NAMES names / PREFETCH_DIRS directories. Results are consumed strictly in order, so
// parallelism never shows in the output.
//
// Paths longer than PATH_MAX. Linux refuses a path string of 4096 bytes or more
// (ENAMETOOLONG). The root is opened once and every directory is read as a path relative to an
// open directory fd (openat): the root's, or, for a directory whose path would pass MAX_ACCESS
// bytes, an "anchor" fd of its own, kept open by the read (keepOpen) so that its children are
// reached relative to it. An anchor is counted by the directories that read through it and
// closed when the last of them is done.
import { closeSync } from 'node:fs';
import { getSystemErrorMap } from 'node:util';
import { native, type NativeDirBatch, type NativeDirEntries, type NativeStat } from '../native.js';
import { entryType, type Entry } from '../model/entry.js';
import { displayPath } from '../errors.js';

export interface ScanOptions {
  /**
   * Native reads at once, each of up to 8 directories (default 4, the size of libuv's pool; raise
   * UV_THREADPOOL_SIZE with it). 1 reads one directory at a time, and none ahead of the walk.
   */
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
  /**
   * Leaves entries out: called once for every entry below the root (never the root), in walk
   * order, just before it would be yielded. When it returns true the entry is not yielded and,
   * for a directory, nothing under it is: the walk does not descend, and no error from inside it
   * is reported (what read-ahead may already have listed in it is dropped unused). A throw ends
   * the walk with that error.
   */
  prune?: (entry: Entry) => boolean;
  /**
   * Takes entries that are not directories out of the walk as they are reached (after prune),
   * for a consumer that deals with most of them on the spot: true, or a promise, means taken, and
   * the entry is not yielded; the walk waits for a promise before it goes on (back-pressure).
   * Skips the hand-over through the generator, which costs more than the work for most entries.
   */
  claim?: (entry: Entry) => boolean | Promise<void>;
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
/** Longest path, relative to an anchor, through which a directory is read: its children's paths then still fit in PATH_MAX. */
const MAX_ACCESS = PATH_MAX - 1 - 1 - NAME_MAX - 39;
/** Read-ahead limits: names held by read-ahead listings not yet reached, and such directories. */
const PREFETCH_NAMES = 65_536;
const PREFETCH_DIRS = 256;
/** Directories read in one native call (one hand-off to the libuv pool costs more than reading a small one). */
const BATCH_DIRS = 8;
/** Columns of NativeDirEntries. */
const NUMS = 8;
const TIMES = 4;
const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;

const EMPTY = Buffer.alloc(0);
const SEP = Buffer.from('/');

/**
 * Walks `root` and yields it (path = empty Buffer), then everything under it. Symlinks are yielded
 * as themselves, never followed (nor is the root, if it is one). Throws if the root itself cannot
 * be lstat'ed or read; errors below it go to `options.onError`.
 */
export async function* scan(
  root: Buffer | string,
  options: ScanOptions = {},
): AsyncGenerator<Entry, ScanError[], undefined> {
  const concurrency = options.concurrency ?? 4;
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

/** An open directory fd, counted by the directories that are read through it. */
interface Anchor {
  fd: number;
  refs: number;
}

interface DirState {
  rel: Buffer;
  /** The open directory `access` is relative to; null for the root, read through its own path. */
  anchor: Anchor | null;
  /** Path relative to anchor.fd that reaches the directory; empty once it is an anchor itself. */
  access: Buffer;
  /** Read with keepOpen: the directory becomes the anchor of its children (its access is too long for them). */
  keepOpen: boolean;
  /** Settles when the batch the directory is read in is done. Never rejects. */
  listing: Promise<void> | null;
  /** The batch holding the entries; theirs are [base, base + count). */
  data: NativeDirEntries | null;
  base: number;
  /** Entries in the listing (0 until it is read, or when it could not be). */
  count: number;
  /** The next entry to yield (0-based within the directory). */
  next: number;
  /** Read-ahead has looked at every entry before this one. */
  scanFrom: number;
  /** The read is over (listed or failed). */
  done: boolean;
  /** Read-ahead has started every directory below this one that it will ever need to. */
  settled: boolean;
  /** Next data.errors / data.wideTimes element at or past the next entry. */
  errPos: number;
  widePos: number;
  /** Read-ahead children, by entry index. */
  children: Map<number, DirState>;
  prefetched: boolean;
  entered: boolean;
  /** Names read ahead and not yet reached (for the read-ahead budget). */
  held: number;
  error: ScanError | null;
}

class Walker {
  private readonly stack: DirState[] = [];
  private readonly anchors = new Set<Anchor>();
  private readonly pending = new Set<Promise<unknown>>();
  private readonly errors: ScanError[] = [];
  private readonly signal: AbortSignal | undefined;
  private readonly prune: ((entry: Entry) => boolean) | undefined;
  private readonly claim: ((entry: Entry) => boolean | Promise<void>) | undefined;
  private rootDev = 0;
  /** Read-ahead batches running. */
  private prefetching = 0;
  private heldNames = 0;
  private heldDirs = 0;
  private closed = false;

  constructor(
    private readonly root: Buffer,
    private readonly concurrency: number,
    private readonly options: ScanOptions,
  ) {
    this.signal = options.signal;
    this.prune = options.prune;
    this.claim = options.claim;
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
    const rootDir = this.makeDir(EMPTY, null, EMPTY);
    rootDir.keepOpen = true; // every directory below is read relative to it
    this.read([rootDir]);
    await rootDir.listing;
    this.checkAbort();
    if (rootDir.error) throw this.rootError(rootDir.error);
    yield rootEntry;
    this.checkAbort();
    rootDir.entered = true;
    this.stack.push(rootDir);
    this.pump();

    while (this.stack.length > 0) {
      const dir = this.stack[this.stack.length - 1]!;
      if (!dir.entered) {
        dir.entered = true;
        if (!dir.listing) this.read([dir]);
        await dir.listing;
        this.checkAbort();
        if (dir.prefetched) {
          this.heldNames -= dir.held;
          this.heldDirs--;
        }
        if (dir.error) this.report(dir.error);
        this.pump();
      }
      if (dir.next >= dir.count) {
        this.stack.pop();
        this.release(dir.anchor);
        dir.data = null;
        continue;
      }
      const i = dir.next++;
      const data = dir.data!;
      const g = dir.base + i;
      const failed = data.errors[dir.errPos];
      if (failed?.index === g) {
        dir.errPos++;
        this.report(this.scanError(failed, childPath(dir.rel, failed.name), 'statx'));
        continue;
      }
      const entry = this.entry(dir, data, g);
      if (this.prune?.(entry)) {
        const child = dir.children.get(i);
        if (child) {
          dir.children.delete(i);
          this.discard(child);
        }
        continue;
      }
      if (this.claim && entry.type !== 'dir') {
        const taken = this.claim(entry);
        if (taken !== false) {
          if (taken !== true) await taken;
          this.checkAbort();
          continue;
        }
      }
      yield entry;
      this.checkAbort();
      if (this.descends(data, g)) {
        let child = dir.children.get(i);
        if (child) dir.children.delete(i);
        else child = this.makeChild(dir, data, g);
        this.stack.push(child);
      }
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

  private makeDir(rel: Buffer, anchor: Anchor | null, access: Buffer): DirState {
    if (anchor) anchor.refs++;
    return {
      rel,
      anchor,
      access,
      keepOpen: access.length > MAX_ACCESS,
      listing: null,
      data: null,
      base: 0,
      count: 0,
      next: 0,
      scanFrom: 0,
      done: false,
      settled: false,
      errPos: 0,
      widePos: 0,
      children: new Map(),
      prefetched: false,
      entered: false,
      held: 0,
      error: null,
    };
  }

  /** The directory of entry g (a global index in the batch) of dir. */
  private makeChild(dir: DirState, data: NativeDirEntries, g: number): DirState {
    const start = data.offsets[g]!;
    const end = data.offsets[g + 1]!;
    return this.makeDir(
      childPath(dir.rel, data.names, start, end),
      dir.anchor,
      childPath(dir.access, data.names, start, end),
    );
  }

  /** Entry g is a directory to descend into. */
  private descends(data: NativeDirEntries, g: number): boolean {
    return (
      (data.nums[g * NUMS]! & S_IFMT) === S_IFDIR &&
      (!this.options.oneFileSystem || data.nums[g * NUMS + 6] === this.rootDev)
    );
  }

  private release(anchor: Anchor | null): void {
    if (anchor && --anchor.refs === 0) {
      this.anchors.delete(anchor);
      closeSync(anchor.fd); // a directory fd: nothing to flush, so this does not block
    }
  }

  /** A read-ahead directory the walk will not enter (pruned), and what was read ahead below it: dropped once read. */
  private discard(dir: DirState): void {
    void dir.listing!.then(() => {
      for (const child of dir.children.values()) this.discard(child);
      dir.children.clear();
      if (dir.prefetched) {
        this.heldNames -= dir.held;
        this.heldDirs--;
      }
      dir.data = null;
      this.release(dir.anchor);
      this.pump();
    });
  }

  /** Reads directories in one native call; sets their `listing`. */
  private read(dirs: DirState[]): void {
    const listing = this.track(this.readBatch(dirs));
    for (const dir of dirs) dir.listing = listing;
  }

  private async readBatch(dirs: DirState[]): Promise<void> {
    const targets = dirs.map((dir) => ({
      ...(dir.anchor ? { fd: dir.anchor.fd, name: dir.access } : { name: this.root }),
      keepOpen: dir.keepOpen,
    }));
    let batch: NativeDirBatch | null = null;
    let failure: unknown = null;
    try {
      batch = await native.readDirsAsync(targets);
    } catch (err) {
      failure = err; // not a directory's own failure (those are in batch.failures): e.g. out of memory
    }
    let e = 0;
    let w = 0;
    for (let d = 0; d < dirs.length; d++) {
      const dir = dirs[d]!;
      if (batch) {
        const fd = batch.fds[d]!;
        if (fd >= 0) {
          const anchor = { fd, refs: 1 };
          this.anchors.add(anchor);
          this.release(dir.anchor);
          dir.anchor = anchor;
          dir.access = EMPTY;
        }
        const err = batch.failures[d];
        if (err) {
          dir.error = this.scanError(err, dir.rel, 'opendir');
        } else {
          dir.data = batch;
          dir.base = batch.first[d]!;
          dir.count = batch.first[d + 1]! - dir.base;
          while (e < batch.errors.length && batch.errors[e]!.index < dir.base) e++;
          while (w < batch.wideTimes.length && batch.wideTimes[w]!.index < dir.base) w++;
          dir.errPos = e;
          dir.widePos = w;
        }
      } else {
        dir.error = this.scanError(failure, dir.rel, 'opendir');
      }
      dir.done = true;
      if (dir.prefetched) {
        dir.held = dir.count;
        this.heldNames += dir.held;
      }
    }
    if (dirs[0]!.prefetched) this.prefetching--;
    if (!this.closed) this.pump();
  }

  /** Read-ahead: reads the next directories in walk order that the listings show, in batches, within the limits. */
  private pump(): void {
    while (!this.closed && this.prefetching < this.concurrency - 1) {
      const batch: DirState[] = [];
      for (let f = this.stack.length - 1; f >= 0; f--) if (!this.ahead(this.stack[f]!, batch)) break;
      if (batch.length === 0) return;
      this.prefetching++;
      this.read(batch);
      if (batch.length < BATCH_DIRS) return; // stopped by a limit, or nothing more to read
    }
  }

  /**
   * Read-ahead in one directory's part of the walk, in walk order: the subtrees of the children
   * already read ahead, then the directories after them, into `batch`. False when the batch is
   * full or a limit stops it.
   */
  private ahead(dir: DirState, batch: DirState[]): boolean {
    if (dir.settled || !dir.done) return true; // nothing to start there: done before, or not listed yet
    let settled = true;
    for (const child of dir.children.values()) {
      if (!this.ahead(child, batch)) return false;
      settled &&= child.settled;
    }
    const data = dir.data;
    let i = Math.max(dir.next, dir.scanFrom);
    for (; i < dir.count; i++) {
      const g = dir.base + i;
      if (!this.descends(data!, g)) continue;
      if (batch.length >= BATCH_DIRS || this.heldNames >= PREFETCH_NAMES || this.heldDirs >= PREFETCH_DIRS) {
        dir.scanFrom = i;
        return false;
      }
      const child = this.makeChild(dir, data!, g);
      child.prefetched = true;
      this.heldDirs++;
      dir.children.set(i, child);
      batch.push(child);
      settled = false;
    }
    dir.scanFrom = i;
    dir.settled = settled;
    return true;
  }

  /** Entry g (a global index in the batch) of a directory's listing. */
  private entry(dir: DirState, data: NativeDirEntries, g: number): Entry {
    const { nums, times } = data;
    const k = g * NUMS;
    const t = g * TIMES;
    const mode = nums[k]!;
    let atimeNs = times[t]!;
    let mtimeNs = times[t + 1]!;
    let ctimeNs = times[t + 2]!;
    const wide = data.wideTimes[dir.widePos];
    if (wide?.index === g) {
      dir.widePos++;
      ({ atimeNs, mtimeNs, ctimeNs } = wide);
    }
    return {
      path: childPath(dir.rel, data.names, data.offsets[g]!, data.offsets[g + 1]!),
      type: entryType(mode),
      mode,
      uid: nums[k + 2]!,
      gid: nums[k + 3]!,
      size: nums[k + 4]!,
      blocks: nums[k + 5]!,
      dev: nums[k + 6]!,
      ino: data.ino[g]!,
      nlink: nums[k + 1]!,
      rdev: nums[k + 7]!,
      atimeNs,
      mtimeNs,
      ctimeNs,
    };
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

/** dir + '/' + bytes[start, end) as a new Buffer (just the name when dir is empty). */
function childPath(dir: Buffer, bytes: Buffer, start = 0, end = bytes.length): Buffer {
  if (dir.length === 0) return copyInto(Buffer.allocUnsafe(end - start), 0, bytes, start, end);
  const out = Buffer.allocUnsafe(dir.length + 1 + end - start);
  copyInto(out, 0, dir, 0, dir.length);
  out[dir.length] = 0x2f;
  return copyInto(out, dir.length + 1, bytes, start, end);
}

/**
 * Copies from[start, end) into `to` at `at`. Most names and paths are short: a loop over their
 * bytes costs a third of Buffer.copy's argument checks (this runs for every entry scanned).
 */
function copyInto(to: Buffer, at: number, from: Buffer, start: number, end: number): Buffer {
  if (end - start > 64) to.set(from.subarray(start, end), at);
  else for (let i = start; i < end; i++) to[at++] = from[i]!;
  return to;
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

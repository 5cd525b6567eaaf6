// The one module that loads the C++ addon and gives it types. Everything else imports from here.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Layout } from './layout/model.js';

/** A path as the kernel sees it: bytes (a Buffer, or a Uint8Array after crossing a worker boundary). Strings are taken as UTF-8. */
export type PathLike = Uint8Array | string;

export interface NativeStat {
  dev: number;
  ino: bigint;
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  rdev: number;
  size: number;
  /** 512-byte blocks allocated: what tells a sparse file from a dense one. */
  blocks: number;
  blksize: number;
  atimeNs: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
  /** 0n where the file system does not report a birth time. */
  birthtimeNs: bigint;
}

export interface Extent {
  offset: number;
  length: number;
}

export interface OpenOptions {
  /** Try O_DIRECT. Where the file system refuses it, I/O is buffered and the pages are dropped after use. */
  direct?: boolean;
  /** Alignment O_DIRECT needs for offsets, lengths and buffers (default 4096; 64 KiB on some arm64 Lustre clients). */
  alignment?: number;
}

/** An open file. read/write block the calling thread (use them in workers); the *Async forms run on the libuv pool. */
export interface NativeFile {
  readonly fd: number;
  /** Whether O_DIRECT is in effect (false when not asked for or refused by the file system). */
  readonly direct: boolean;
  /** Bytes moved through O_DIRECT and through buffered I/O so far: shows which path a transfer took. */
  readonly ioCounts: { directBytes: number; bufferedBytes: number };
  read(buffer: Uint8Array, offset: number, length: number, position: number): number;
  write(buffer: Uint8Array, offset: number, length: number, position: number): number;
  readAsync(buffer: Uint8Array, offset: number, length: number, position: number): Promise<number>;
  writeAsync(buffer: Uint8Array, offset: number, length: number, position: number): Promise<number>;
  /** Data extents in [start, end) (default: the whole file); the gaps are holes. */
  dataExtents(start?: number, end?: number): Extent[];
  fsync(): void;
  fdatasync(): void;
  /** syncfs(2): flushes the whole file system the file is on (one call for a batch of files). */
  syncfs(): void;
  truncate(size: number): void;
  /**
   * Makes this file (open for writing) a reflink clone of the regular file at base, its blocks
   * shared until written (FICLONE): true if done; false where the file system cannot, or there
   * is no regular file at base.
   */
  cloneFrom(base: PathLike): boolean;
  allocate(offset: number, length: number): void;
  punchHole(offset: number, length: number): void;
  stat(): NativeStat;
  close(): void;
}

export interface Xxh64 {
  update(data: Uint8Array): this;
  /** 16 lowercase hex digits, as `xxhsum -H1` prints. */
  digest(): string;
}

export interface CopyRangeOptions {
  srcOffset?: number;
  /** Defaults to srcOffset. */
  dstOffset?: number;
  /** Bytes to copy; default: to end of file. */
  length?: number;
  bufferSize?: number;
  /** Keep the source's holes as holes (the caller sizes the destination first). */
  sparse?: boolean;
  /**
   * dst holds an earlier version sharing its blocks with it (see NativeFile.cloneFrom): only the
   * blocks that differ are written, the others stay shared. sparse is then ignored.
   */
  writeChanges?: boolean;
  /** Updated with every byte of the range, holes hashed as zeros. */
  hash?: Xxh64;
  /** Set element 0 to nonzero (Atomics.store) to stop with ECANCELED; over a SharedArrayBuffer it works across threads. */
  cancel?: Int32Array;
  /** Token bucket shared by all copies (bandwidth limit): element 0 holds the bytes that may still be read; each buffer takes from it and waits while it is negative. Refill it from JS. */
  budget?: BigInt64Array;
}

export interface CopyRangeResult {
  /** Bytes of the range up to end of file. */
  bytes: number;
  /** Bytes actually read; the rest were holes. */
  dataBytes: number;
  /** With writeChanges: bytes dst already held, left unwritten (shared). */
  sharedBytes?: number;
}

export interface HashFileOptions {
  direct?: boolean;
  bufferSize?: number;
  sparse?: boolean;
}

export interface HashFileResult {
  digest: string;
  bytes: number;
}

export type FsyncPolicy = 'batch' | 'file' | 'none';

export interface CopyFilesOptions {
  /**
   * When data is made durable, always before the file gets its final name (so a crash never
   * leaves a complete-looking file whose data was lost, which a rerun would skip): 'batch' one
   * syncfs per call (default), 'file' fdatasync per file, 'none' never.
   */
  fsync?: FsyncPolicy;
  hash?: boolean;
  /** Re-read each file after its rename with O_DIRECT (from the device) and compare digests. */
  verify?: boolean;
  /** Same-size files are compared by content (XXH64 of both), not size + mtime (rsync --checksum). */
  checksum?: boolean;
  /** Skip files the destination already holds (default true; false when the caller has checked). */
  checkExisting?: boolean;
  /** Give files the source's owner (default: when running as root). */
  owner?: boolean;
  /** Copies are reflink clones where the file system can: of the source, else of bases[i] (default true). */
  reflink?: boolean;
  /** With reflink, whether the source itself may be cloned (default true). */
  cloneSource?: boolean;
  /** A previous copy stands for a file (is linked) only if their xattrs and ACLs match too (default false). */
  compareXattrs?: boolean;
  cancel?: Int32Array;
  budget?: BigInt64Array;
  /** With layouts: keep their OST indices (default: Lustre places stripes afresh). */
  keepOsts?: boolean;
}

/** Plain data, as every error that crosses a worker boundary. */
export interface FileError {
  code: string;
  errno?: number;
  syscall?: string;
  path: string;
  message: string;
}

export interface FileOutcome {
  /** 'skipped': the destination already held this version; 'linked': hard-linked from linkDest. */
  status: 'copied' | 'skipped' | 'linked' | 'failed';
  bytes: number;
  dataBytes: number;
  /** Of a copy made as a clone (of its source or of its base): bytes left shared, not written. */
  sharedBytes?: number;
  digest?: string;
  verified: boolean;
  error?: FileError;
}

/**
 * A directory for readDir: a path, or `name` (one or more components) relative to the open
 * directory `fd` (the working directory without one). keepOpen: hand the directory's fd over.
 */
export type NativeDirTarget = PathLike | { fd?: number; name: PathLike; keepOpen?: boolean };

/** A per-entry failure of readDir: the entry was listed but its statx failed (ENOENT: it vanished). */
export interface NativeDirEntryError {
  /** The entry's index in the listing. */
  index: number;
  code: string;
  /** Negative, as Node's fs errors. */
  errno: number;
  syscall: 'statx';
  name: Buffer;
  message: string;
}

/**
 * Directory entries, with names sorted by bytes, packed, and every entry's lstat as columns.
 * Entry i is names.subarray(offsets[i], offsets[i + 1]); its numbers are nums[8i .. 8i + 7] (mode,
 * nlink, uid, gid, size, blocks, dev, rdev), its inode ino[i], its times times[4i .. 4i + 3] (atimeNs,
 * mtimeNs, ctimeNs, birthtimeNs; birthtime 0n where the file system has none). An entry in `errors`
 * has mode 0 and no other data; an entry in `wideTimes` (a time before 1677 or after 2262, beyond
 * int64 nanoseconds) has 0n in `times` and its exact times there.
 */
export interface NativeDirEntries {
  names: Buffer;
  /** One more than there are entries. */
  offsets: Uint32Array;
  nums: Float64Array;
  ino: BigUint64Array;
  times: BigInt64Array;
  /** By ascending index. */
  errors: NativeDirEntryError[];
  /** By ascending index. */
  wideTimes: { index: number; atimeNs: bigint; mtimeNs: bigint; ctimeNs: bigint; birthtimeNs: bigint }[];
}

/** One directory's entries. */
export interface NativeDirListing extends NativeDirEntries {
  /** With keepOpen: the directory, still open (O_RDONLY | O_DIRECTORY | O_CLOEXEC); the caller closes it. */
  fd?: number;
}

/** Several directories' entries, one directory after the other (entry indexes run across them all). */
export interface NativeDirBatch extends NativeDirEntries {
  /** Directory d's entries are [first[d], first[d + 1]). */
  first: Uint32Array;
  /** Per directory: its fd with keepOpen (the caller closes it), else -1. */
  fds: Int32Array;
  /** Per directory: null, or the error (code, errno, syscall, path) that kept it from being read. */
  failures: (NodeJS.ErrnoException | null)[];
}

/** How loading liblustreapi went (STRIPEMOVER_LIBLUSTREAPI overrides its path). */
export interface LustreStatus {
  loaded: boolean;
  library: string;
  /** dlerror() when it could not be loaded. */
  error?: string;
  /** Symbols the loaded library lacks (an older Lustre): what needs them fails with ENOSYS. */
  missing: string[];
}

/** Lustre through liblustreapi, loaded with dlopen on first use. */
export interface LustreApi {
  status(): LustreStatus;
  /** The file system's magic is Lustre's, or liblustreapi resolves a FID there. */
  isLustre(path: PathLike): boolean;
  /** The layout of a path or an open fd; throws ENOTTY off Lustre, ENOSYS without liblustreapi. */
  layout(pathOrFd: PathLike | number): Layout;
  /** The layout of each path, or the error reading it, read on the libuv pool. */
  layoutsAsync(paths: PathLike[]): Promise<(Layout | NativeError)[]>;
  /** Creates (O_EXCL unless exclusive is false) a file with this layout, sized sparse to size, and closes it. */
  createFile(
    path: PathLike,
    layout: Layout,
    options?: { keepOsts?: boolean; mode?: number; size?: number; exclusive?: boolean },
  ): void;
  /** "[0x200000400:0x1:0x0]" */
  pathToFid(pathOrFd: PathLike | number): string;
  /** The path bytes of a FID, relative to the mount point; linkno picks one of several hard links. */
  fidToPath(mountPoint: PathLike, fid: string, linkno?: number): Buffer;
}

/** An error thrown by the addon: Node's fs error shape. */
export interface NativeError extends Error {
  code: string;
  errno: number;
  syscall: string;
  path?: string;
}

export interface Addon {
  lustre: LustreApi;
  File: new (path: PathLike, flags: number, mode?: number, options?: OpenOptions) => NativeFile;
  Xxh64: new (seed?: number | bigint) => Xxh64;
  /** A Buffer over memory aligned for O_DIRECT; 2 MiB-aligned huge pages from 2 MiB up. No copy. */
  alignedBuffer(size: number, alignment?: number): Buffer;
  copyRange(src: NativeFile, dst: NativeFile | null, options?: CopyRangeOptions): CopyRangeResult;
  copyRangeAsync(src: NativeFile, dst: NativeFile | null, options?: CopyRangeOptions): Promise<CopyRangeResult>;
  /**
   * Copies whole files, sources[i] to destinations[i] (path lists: see PathList): each written
   * nameless (O_TMPFILE) or under a temporary name, checked against changes of its source while
   * read, made durable, given its metadata, and named. previous[i], when not empty (rsync
   * --link-dest), is hard-linked instead if unchanged. One call per batch; blocks (for workers).
   */
  copyFiles(
    options: CopyFilesOptions,
    sources: Uint8Array,
    destinations: Uint8Array,
    previous?: Uint8Array,
    /** On a Lustre destination: the layout each new file is created with (null: the directory's default). */
    layouts?: (Layout | null)[],
    /** Off Lustre: the source's layout as JSON, stored in the copy's LAYOUT_RECORD_XATTR. */
    layoutRecords?: (string | null)[],
    /** An earlier version of each file ('' none): the copy starts as its reflink clone where the file system can. */
    bases?: Uint8Array,
  ): FileOutcome[];
  /**
   * The --link-dest part of copyFiles alone, for files grouped by directory: each file whose
   * previous copy can stand for it as it was scanned (same size, mtime, mode, owner) is
   * hard-linked; the others are left for a copy. `directories` holds three paths per group
   * (where its files are read, where they go, the previous copy's directory), `names` the files'
   * names, an empty one starting the next group. Per file, as scanned: `sizes`, `mtimesNs`, and
   * in `owners` its mode, uid and gid. statuses[i], in the order of the names: 0 linked,
   * 1 skipped (already there), 2 left, 3 failed (see failures). Compact, for the 10^5 unchanged
   * files of a snapshot.
   */
  linkFiles(
    options: CopyFilesOptions,
    directories: Uint8Array,
    names: Uint8Array,
    sizes: Float64Array,
    mtimesNs: BigInt64Array,
    owners: Uint32Array,
  ): { statuses: Uint8Array; failures: { index: number; error: FileError }[] };
  /**
   * Where a file is written before its rename when it cannot be nameless: `.sm-<hash>.tmp` beside
   * it, never a name the source's directory holds (it would be copied over it).
   */
  tempPath(path: PathLike, source?: PathLike): Buffer;
  /** Owner (as root), mode, xattrs and ACLs, then times, from src onto dst; symlinks not followed. */
  copyMetadata(src: PathLike, dst: PathLike, options?: { owner?: boolean }): void;
  /** Whether two paths carry the same xattrs and ACLs, as copyMetadata copies them. */
  sameXattrs(a: PathLike, b: PathLike): boolean;
  hashFile(path: PathLike, options?: HashFileOptions): HashFileResult;
  hashFileAsync(path: PathLike, options?: HashFileOptions): Promise<HashFileResult>;
  /** statx; does not follow a final symlink unless follow is set. */
  stat(path: PathLike, options?: { follow?: boolean }): NativeStat;
  statAsync(path: PathLike, options?: { follow?: boolean }): Promise<NativeStat>;
  listXattrs(path: PathLike): string[];
  getXattr(path: PathLike, name: string | Buffer): Buffer;
  /** flags: 0, XATTR_CREATE (1) or XATTR_REPLACE (2). */
  setXattr(path: PathLike, name: string | Buffer, value: Buffer | string, flags?: number): void;
  removeXattr(path: PathLike, name: string | Buffer): void;
  /** Nanosecond times; null leaves that time as it is. Acts on a symlink itself unless follow is set. */
  setTimes(path: PathLike, atimeNs: bigint | null, mtimeNs: bigint | null, options?: { follow?: boolean }): void;
  lchown(path: PathLike, uid: number, gid: number): void;
  chmod(path: PathLike, mode: number): void;
  mknod(path: PathLike, mode: number, dev?: number | bigint): void;
  mkfifo(path: PathLike, mode?: number): void;
  readlink(path: PathLike): Buffer;
  symlink(target: PathLike, path: PathLike): void;
  link(existingPath: PathLike, newPath: PathLike): void;
  /**
   * mkdir of each path in order (parents before children) on libuv's pool. A directory already
   * there is kept; anything else in its place (a file, a planted symlink) is replaced, never
   * followed. The failed ones, by index; the others are made.
   */
  makeDirsAsync(paths: Uint8Array, mode: number): Promise<{ index: number; error: NativeError }[]>;
  makedev(major: number, minor: number): number;
  /**
   * Lists a directory and lstat's every entry (statx relative to the directory's fd, so at any
   * depth). Never follows a final symlink (ENOTDIR). Throws (syscall 'opendir' or 'readdir') only when
   * the directory itself cannot be read; a failed entry goes to `errors`.
   */
  readDir(target: NativeDirTarget, options?: { keepOpen?: boolean }): NativeDirListing;
  readDirAsync(target: NativeDirTarget, options?: { keepOpen?: boolean }): Promise<NativeDirListing>;
  /** readDir for several directories in one call (one job on the libuv pool); never throws for one directory. */
  readDirs(targets: NativeDirTarget[]): NativeDirBatch;
  readDirsAsync(targets: NativeDirTarget[]): Promise<NativeDirBatch>;
}

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');

/** Where the addon is looked for: $STRIPEMOVER_ADDON (e.g. a sanitizer build), then the node-gyp output. */
export function addonPath(): string {
  return process.env.STRIPEMOVER_ADDON ?? path.join(root, 'build', 'Release', 'stripemover.node');
}

function load(): Addon {
  const file = addonPath();
  const rebuild = `cd ${root} && npm run build:native   (needs g++, make, python3 and libxxhash-dev)`;
  if (!existsSync(file)) {
    throw new Error(`stripemover: the native addon is not built: ${file} is missing. Run:\n  ${rebuild}`);
  }
  try {
    return createRequire(import.meta.url)(file) as Addon;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const abi = /NODE_MODULE_VERSION|different Node\.js version|undefined symbol: napi_/.test(e.message);
    const why = abi
      ? `was built for another Node.js (this is ${process.version}, ABI ${process.versions.modules})`
      : 'cannot be loaded';
    throw new Error(
      `stripemover: the native addon ${file} ${why}: ${e.message}\nRebuild it for this Node:\n  ${rebuild}`,
      {
        cause: err,
      },
    );
  }
}

export const native: Addon = load();

/** open(2) flags the addon takes (Linux values, from node:fs constants). */
export { constants as fsConstants } from 'node:fs';

// What the scan produces and every later stage consumes: one file-system object, plain data
// (it crosses worker boundaries), its path as bytes.

import type { Layout } from '../layout/model.js';

export type EntryType = 'file' | 'dir' | 'symlink' | 'fifo' | 'char' | 'block' | 'socket';

export interface Entry {
  /** Path relative to the scanned root, as bytes, '/'-separated; the root itself is an empty Buffer. */
  path: Buffer;
  type: EntryType;
  /** Full st_mode (type and permission bits). */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** 512-byte blocks allocated: blocks * 512 < size means the file has holes. */
  blocks: number;
  dev: number;
  ino: bigint;
  nlink: number;
  rdev: number;
  atimeNs: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
  /** The Lustre layout of a regular file on Lustre, when read (see src/layout). */
  layout?: Layout;
}

/** The type of an entry from its st_mode. */
export function entryType(mode: number): EntryType {
  switch (mode & 0o170000) {
    case 0o100000:
      return 'file';
    case 0o040000:
      return 'dir';
    case 0o120000:
      return 'symlink';
    case 0o010000:
      return 'fifo';
    case 0o020000:
      return 'char';
    case 0o060000:
      return 'block';
    default:
      return 'socket';
  }
}

/** Fewer blocks allocated than the size needs: the file has holes (one with preallocated blocks may too). */
export const isSparse = (e: Pick<Entry, 'blocks' | 'size'>): boolean => e.blocks * 512 < e.size;

type Version = Pick<Entry, 'size' | 'mtimeNs' | 'ctimeNs'>;

/** The same version of a file: size, mtime and ctime all equal (any write changes one of them). */
export const sameVersion = (a: Version, b: Version): boolean =>
  a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs;

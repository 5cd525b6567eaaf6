// Manifests: every entry of a snapshot, in scan order (the order the scan yields and the engine's
// merge-walks use), streamed to and from gzip-compressed JSON-lines chunks. Each chunk's XXH64 is
// kept in the manifest's index, so a damaged chunk is named, and no entry is ever read from one.
// Memory stays bounded: one chunk is held at a time, whatever the number of entries.
import { mkdirSync, readFileSync } from 'node:fs';
import { syncDir, writeDurably } from './durable.js';
import path from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { native } from '../native.js';
import { StripemoverError } from '../errors.js';
import type { Entry, EntryType } from '../model/entry.js';
import type { Layout } from '../layout/model.js';
import { compareScanOrder } from '../engine/delete.js';

/** One entry as stored: plain JSON; path and other byte strings in base64. */
export interface ManifestEntry {
  /** The path below the snapshot's root, base64 of its bytes ('' for the root). */
  path: string;
  type: EntryType;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** ns since the epoch, as decimal strings (they exceed 2^53). */
  atimeNs: string;
  mtimeNs: string;
  ctimeNs: string;
  /** The source's inode and device at backup time: with ctime, what says a file is unchanged. */
  ino: string;
  dev: number;
  nlink: number;
  rdev?: number;
  /** Extended attributes (POSIX ACLs included): name → base64 value. */
  xattrs?: Record<string, string>;
  /** A symlink's target, base64. */
  target?: string;
  /** A later name of a hard-linked inode: the path (base64) of its first name in this snapshot. */
  link?: string;
  layout?: Layout;
  /** XXH64 of the file's bytes (files stored whole). */
  hash?: string;
  /**
   * Files stored in units: how they were cut, each unit's XXH64 by its first offset ('' =
   * holes), and for a cut along stripes, the layout it followed.
   */
  units?: { cut: string; digests: Record<number, string>; layout?: Layout };
  /**
   * Where the bytes are. Absent: in the snapshot's own tree, at `path` (the POSIX target).
   * Targets that aggregate small files or store objects say where instead.
   */
  data?: { pack: string; offset: number; length: number } | { object: string };
}

/** A chunk of a manifest as its index records it. */
export interface ManifestChunk {
  file: string;
  entries: number;
  xxh64: string;
}

export interface ManifestIndex {
  entries: number;
  chunks: ManifestChunk[];
}

const CHUNK_ENTRIES = 8192;

const b64 = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64');

/** An entry's path as bytes. */
export const manifestPath = (e: ManifestEntry): Buffer => Buffer.from(e.path, 'base64');

/** The manifest entry of a scanned entry (no xattrs, hash or link: the caller adds them). */
export function toManifestEntry(e: Entry): ManifestEntry {
  return {
    path: b64(e.path),
    type: e.type,
    mode: e.mode,
    uid: e.uid,
    gid: e.gid,
    size: e.size,
    atimeNs: String(e.atimeNs),
    mtimeNs: String(e.mtimeNs),
    ctimeNs: String(e.ctimeNs),
    ino: String(e.ino),
    dev: e.dev,
    nlink: e.nlink,
    ...(e.rdev ? { rdev: e.rdev } : {}),
    ...(e.layout ? { layout: e.layout } : {}),
  };
}

const xxh64 = (data: Buffer) => new native.Xxh64().update(data).digest();

/** Writes a manifest into `dir`: chunks as entries come, the index (and only then) at close. */
export class ManifestWriter {
  private lines: string[] = [];
  private readonly chunks: ManifestChunk[] = [];
  private count = 0;

  constructor(private readonly dir: string) {
    mkdirSync(dir, { recursive: true });
  }

  add(entry: ManifestEntry): void {
    this.lines.push(JSON.stringify(entry));
    this.count++;
    if (this.lines.length >= CHUNK_ENTRIES) this.flush();
  }

  private flush(): void {
    if (this.lines.length === 0) return;
    const file = `${String(this.chunks.length).padStart(6, '0')}.jsonl.gz`;
    const data = gzipSync(this.lines.join('\n') + '\n');
    writeDurably(path.join(this.dir, file), data);
    this.chunks.push({ file, entries: this.lines.length, xxh64: xxh64(data) });
    this.lines = [];
  }

  /** Makes every chunk and the index durable; returns the index. */
  close(): ManifestIndex {
    this.flush();
    const index: ManifestIndex = { entries: this.count, chunks: this.chunks };
    writeDurably(path.join(this.dir, 'index.json'), Buffer.from(JSON.stringify(index, null, 1)));
    syncDir(path.dirname(this.dir));
    return index;
  }
}

export function manifestError(dir: string, message: string): StripemoverError {
  return new StripemoverError('MANIFEST_INVALID', `manifest ${dir}: ${message}`, dir);
}

/** The checks every path read from a manifest passes: relative, no '.', '..' or empty component. */
export function checkEntryPath(p: Buffer, dir: string): void {
  if (p.length === 0) return; // the root
  if (p[0] === 0x2f || p[p.length - 1] === 0x2f || p.includes(0)) {
    throw manifestError(dir, `refused entry path '${p.toString('latin1')}': absolute, trailing '/' or NUL`);
  }
  for (const part of p.toString('latin1').split('/')) {
    if (part === '' || part === '.' || part === '..') {
      throw manifestError(dir, `refused entry path '${p.toString('latin1')}': '${part}' component`);
    }
  }
}

export function readIndex(dir: string): ManifestIndex {
  let index: ManifestIndex;
  try {
    index = JSON.parse(readFileSync(path.join(dir, 'index.json'), 'utf8')) as ManifestIndex;
  } catch (err) {
    throw manifestError(dir, `index unreadable: ${(err as Error).message}`);
  }
  if (!Array.isArray(index.chunks)) throw manifestError(dir, 'index has no chunk list');
  return index;
}

/** Reads the chunk, checking its XXH64; the entries parsed and their paths checked. */
export function readChunk(dir: string, chunk: ManifestChunk): ManifestEntry[] {
  if (!/^\d{6}\.jsonl\.gz$/.test(chunk.file)) throw manifestError(dir, `bad chunk name '${chunk.file}'`);
  let data: Buffer;
  try {
    data = readFileSync(path.join(dir, chunk.file));
  } catch (err) {
    throw manifestError(dir, `chunk ${chunk.file} unreadable: ${(err as Error).message}`);
  }
  if (xxh64(data) !== chunk.xxh64) throw manifestError(dir, `chunk ${chunk.file} is damaged (XXH64 differs)`);
  const lines = gunzipSync(data).toString('utf8').split('\n').slice(0, -1);
  if (lines.length !== chunk.entries) throw manifestError(dir, `chunk ${chunk.file} holds ${lines.length} entries`);
  return lines.map((line) => {
    const e = JSON.parse(line) as ManifestEntry;
    checkEntryPath(manifestPath(e), dir);
    if (e.link !== undefined) checkEntryPath(Buffer.from(e.link, 'base64'), dir);
    return e;
  });
}

/** Every entry of the manifest in `dir`, in scan order, one chunk in memory at a time. */
export function* readManifest(dir: string): Generator<ManifestEntry> {
  const index = readIndex(dir);
  for (const chunk of index.chunks) yield* readChunk(dir, chunk);
}

/**
 * Looks entries up by path in a manifest, for callers that ask in scan order (as the scan yields
 * entries): one pass, one chunk in memory. A path asked out of order is not found.
 */
export class ManifestCursor {
  private readonly it: Iterator<ManifestEntry> | undefined;
  private current: { entry: ManifestEntry; path: Buffer } | undefined;

  constructor(dir: string | undefined) {
    this.it = dir === undefined ? undefined : readManifest(dir);
    this.next();
  }

  private next(): void {
    const r = this.it?.next();
    this.current = r && !r.done ? { entry: r.value, path: manifestPath(r.value) } : undefined;
  }

  lookup(p: Buffer): ManifestEntry | undefined {
    while (this.current && compareScanOrder(this.current.path, p) < 0) this.next();
    return this.current && this.current.path.equals(p) ? this.current.entry : undefined;
  }
}

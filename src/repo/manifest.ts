// Manifests: every entry of a snapshot, in scan order (the order the scan yields and the engine's
// merge-walks use), streamed to and from gzip-compressed JSON-lines chunks. Each chunk's XXH64 is
// kept in the manifest's index, so a damaged chunk is named, and no entry is ever read from one.
// Memory stays bounded: one chunk per manifest read is held at a time, whatever the number of
// entries.
//
// A manifest is full, or a delta: the lines that change its base (the parent snapshot's
// manifest, itself full or a delta): entries that replace or add, and removals. An incremental
// backup of a tree where 1% changed writes 1% of a manifest; reading one applies its deltas to
// the full manifest below them, in one merge pass. Chains are at most MAX_DEPTH deltas long.
import { mkdirSync, readFileSync } from 'node:fs';
import { syncDir, writeDurably } from './durable.js';
import { isAscii } from 'node:buffer';
import path from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { native } from '../native.js';
import { StripemoverError } from '../errors.js';
import type { Entry, EntryType } from '../model/entry.js';
import type { Layout } from '../layout/model.js';
import { compareScanOrder } from '../engine/delete.js';
import { isSnapshotId } from './snapshot-id.js';

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

/** In a delta: the base's entry at this path is not in this snapshot. */
export interface ManifestRemoval {
  path: string;
  removed: true;
}

/** A line of a manifest's chunks: an entry, or (in a delta only) a removal. */
export type ManifestLine = ManifestEntry | ManifestRemoval;

export const isRemoval = (l: ManifestLine): l is ManifestRemoval => (l as ManifestRemoval).removed === true;

/** A chunk of a manifest as its index records it. */
export interface ManifestChunk {
  file: string;
  entries: number;
  xxh64: string;
}

export interface ManifestIndex {
  /** Entries of the snapshot (for a delta: once applied to its base). */
  entries: number;
  /** Each chunk's `entries` counts its lines. */
  chunks: ManifestChunk[];
  /** A delta: the id of the snapshot whose manifest it changes. */
  base?: string;
  /** How many deltas lead down to a full manifest (0 or absent: this one is full). */
  depth?: number;
}

const CHUNK_ENTRIES = 8192;
/** The longest chain of deltas: a backup whose parent is this deep writes a full manifest. */
export const MAX_DEPTH = 16;

/** A path as manifests store it (base64 of its bytes); manifestPath() reads it back. */
export const encodePath = (b: Uint8Array): string =>
  (Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength)).toString('base64');

/** An entry's path as bytes. */
export const manifestPath = (e: ManifestLine): Buffer => Buffer.from(e.path, 'base64');

/**
 * The manifest entry of a scanned entry (no xattrs, hash or link: the caller adds them). The
 * order of the fields is part of the format's contract with statPrefix: the stat identity
 * first, then atime and the rest.
 */
export function toManifestEntry(e: Entry): ManifestEntry {
  return {
    path: encodePath(e.path),
    type: e.type,
    mode: e.mode,
    uid: e.uid,
    gid: e.gid,
    size: e.size,
    mtimeNs: String(e.mtimeNs),
    ctimeNs: String(e.ctimeNs),
    ino: String(e.ino),
    dev: e.dev,
    nlink: e.nlink,
    ...(e.rdev ? { rdev: e.rdev } : {}),
    atimeNs: String(e.atimeNs),
    ...(e.layout ? { layout: e.layout } : {}),
  };
}

/**
 * How the line of an entry with the same stat identity (path, type, mode, owner, size, mtime,
 * ctime, inode, device, links, rdev) as `e` begins, as the writer writes it: a parent's record
 * is compared with a scanned entry without being parsed. Undefined for an entry with a Lustre
 * layout (compared parsed).
 */
export function statPrefix(e: Entry, path64 = encodePath(e.path)): string | undefined {
  if (e.layout) return undefined;
  const rdev = e.rdev ? `"rdev":${e.rdev},` : '';
  return (
    `{"path":"${path64}","type":"${e.type}","mode":${e.mode},"uid":${e.uid},"gid":${e.gid},` +
    `"size":${e.size},"mtimeNs":"${e.mtimeNs}","ctimeNs":"${e.ctimeNs}","ino":"${e.ino}","dev":${e.dev},` +
    `"nlink":${e.nlink},${rdev}"atimeNs":`
  );
}

const xxh64 = (data: Buffer) => new native.Xxh64().update(data).digest();

/**
 * Writes a manifest into `dir`: chunks as lines come, the index (and only then) at close. A
 * delta's writer is given its base, and counts the entries its lines add and remove.
 */
export class ManifestWriter {
  private lines: string[] = [];
  private readonly chunks: ManifestChunk[] = [];
  private count: number;

  constructor(
    private readonly dir: string,
    private readonly delta?: { base: string; depth: number; baseEntries: number },
  ) {
    mkdirSync(dir, { recursive: true });
    this.count = delta?.baseEntries ?? 0;
  }

  /** An entry of the snapshot; in a delta, `inBase` says whether it replaces one of the base. */
  add(entry: ManifestEntry, inBase = false): void {
    this.push(entry, inBase ? 0 : 1);
  }

  /** In a delta: the base's entry at `path` (base64) is not in this snapshot. */
  remove(path: string): void {
    if (!this.delta) throw new Error('a full manifest has no removals');
    this.push({ path, removed: true } satisfies ManifestRemoval, -1);
  }

  private push(line: ManifestLine, change: number): void {
    this.lines.push(JSON.stringify(line));
    this.count += change;
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
    const index: ManifestIndex = {
      entries: this.count,
      chunks: this.chunks,
      ...(this.delta ? { base: this.delta.base, depth: this.delta.depth } : {}),
    };
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
  // One pass over the bytes (this runs for every entry read): a component starts at 0 or after '/'.
  let start = 0;
  for (let i = 0; i <= p.length; i++) {
    const c = i < p.length ? p[i] : 0x2f;
    if (c === 0) throw manifestError(dir, `refused entry path '${p.toString('latin1')}': NUL byte`);
    if (c !== 0x2f) continue;
    const len = i - start;
    if (len === 0 || (p[start] === 0x2e && (len === 1 || (len === 2 && p[start + 1] === 0x2e)))) {
      const part = p.toString('latin1', start, i);
      throw manifestError(
        dir,
        `refused entry path '${p.toString('latin1')}': ${len === 0 ? 'absolute, empty component or trailing /' : `'${part}' component`}`,
      );
    }
    start = i + 1;
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

/** The chunk's bytes, its XXH64 checked. */
function chunkData(dir: string, chunk: ManifestChunk): Buffer {
  if (!/^\d{6}\.jsonl\.gz$/.test(chunk.file)) throw manifestError(dir, `bad chunk name '${chunk.file}'`);
  let data: Buffer;
  try {
    data = readFileSync(path.join(dir, chunk.file));
  } catch (err) {
    throw manifestError(dir, `chunk ${chunk.file} unreadable: ${(err as Error).message}`);
  }
  if (xxh64(data) !== chunk.xxh64) throw manifestError(dir, `chunk ${chunk.file} is damaged (XXH64 differs)`);
  return data;
}

/**
 * The manifest in `dir` and the bases below it, down to the full one (newest first), their
 * indexes read and their base ids checked.
 */
function manifestChain(dir: string, depthLeft = MAX_DEPTH): { dir: string; index: ManifestIndex }[] {
  const chain: { dir: string; index: ManifestIndex }[] = [];
  for (let d = dir; ; d = path.join(path.dirname(d), chain.at(-1)!.index.base!)) {
    const index = readIndex(d);
    chain.push({ dir: d, index });
    if (index.base === undefined) return chain;
    if (!isSnapshotId(index.base)) throw manifestError(d, `refused base '${index.base}': not a snapshot id`);
    if (chain.length > depthLeft) throw manifestError(dir, `more than ${MAX_DEPTH} deltas down to a full manifest`);
  }
}

/**
 * The index of the manifest in `dir`; throws MANIFEST_INVALID unless every index and chunk down
 * its chain of deltas is there and intact (digests only: cheap, the compressed bytes are hashed,
 * not parsed).
 */
export function checkManifestChain(dir: string): ManifestIndex {
  const chain = manifestChain(dir);
  for (const { dir: d, index } of chain) for (const chunk of index.chunks) chunkData(d, chunk);
  return chain[0]!.index;
}

/**
 * The chunk's lines, its XXH64 and line count checked before any is given. Each line is cut
 * from the chunk's text when it is reached, not all at once: a line then lives only as long as
 * its reader needs it, and 8,192 of them are not kept alive long enough to weigh on the GC.
 */
function* chunkLines(dir: string, chunk: ManifestChunk): Generator<string> {
  const data = gunzipSync(chunkData(dir, chunk));
  // JSON.stringify writes non-ASCII text (a pool or tag name) as UTF-8; the rest, nearly always
  // all of it, is ASCII, which decodes as latin1 into the same string for a fraction of the cost.
  const text = data.toString(isAscii(data) ? 'latin1' : 'utf8');
  let lines = 0;
  for (let at = text.indexOf('\n'); at >= 0; at = text.indexOf('\n', at + 1)) lines++;
  if (lines !== chunk.entries || (text.length > 0 && !text.endsWith('\n')))
    throw manifestError(dir, `chunk ${chunk.file} holds ${lines} entries`);
  for (let start = 0; start < text.length;) {
    const end = text.indexOf('\n', start);
    yield text.slice(start, end);
    start = end + 1;
  }
}

const PATH_START = '{"path":"';

/**
 * A line of a manifest, parsed only when its fields are asked for: most of a parent's entries,
 * unchanged, are compared by statPrefix and never are. Its path is read off the line (base64
 * never needs escaping in JSON).
 */
export class ManifestRecord {
  #value: ManifestLine | undefined;
  #pathBytes: Buffer | undefined;
  /** The path, base64. */
  readonly path: string;

  constructor(
    readonly line: string,
    private readonly dir: string,
  ) {
    const end = line.startsWith(PATH_START) ? line.indexOf('"', PATH_START.length) : -1;
    this.path = end > 0 ? line.slice(PATH_START.length, end) : pathOfLine(line);
  }

  get pathBytes(): Buffer {
    return (this.#pathBytes ??= Buffer.from(this.path, 'base64'));
  }

  /** The line parsed, its paths checked. */
  get value(): ManifestLine {
    if (this.#value) return this.#value;
    let v: ManifestLine;
    try {
      v = JSON.parse(this.line) as ManifestLine;
    } catch (err) {
      throw manifestError(this.dir, `unreadable line: ${(err as Error).message}`);
    }
    // The path read off the line is the one parsed (a line with two "path" keys is refused).
    if (v.path !== this.path) throw manifestError(this.dir, `line with an ambiguous path: ${this.line.slice(0, 80)}`);
    checkEntryPath(manifestPath(v), this.dir);
    if (!isRemoval(v) && v.link !== undefined) checkEntryPath(Buffer.from(v.link, 'base64'), this.dir);
    return (this.#value = v);
  }

  /** The entry (a removal is refused: only deltas hold them, and they are applied by the reader). */
  get entry(): ManifestEntry {
    const v = this.value;
    if (isRemoval(v)) throw manifestError(this.dir, `unexpected removal of '${manifestPath(v).toString('latin1')}'`);
    return v;
  }
}

/** The path of a line written in another order (unparseable: '', and `value` says why). */
function pathOfLine(line: string): string {
  try {
    const path = (JSON.parse(line) as { path?: unknown }).path;
    return typeof path === 'string' ? path : '';
  } catch {
    return '';
  }
}

/** A manifest's own lines, in order, one chunk in memory at a time. */
function* linesOf(dir: string, index: ManifestIndex): Generator<ManifestRecord> {
  for (const chunk of index.chunks) for (const line of chunkLines(dir, chunk)) yield new ManifestRecord(line, dir);
}

/**
 * Every entry of the manifest in `dir`, in scan order, its chain of deltas applied: one merge
 * pass, one chunk per manifest in memory. Entries are counted against each index.
 */
export function* readManifest(dir: string, depthLeft = MAX_DEPTH): Generator<ManifestEntry> {
  for (const r of readManifestRecords(dir, depthLeft)) yield r.entry;
}

/** One manifest of a chain being merged: its index, its lines, the line at hand. */
interface Level {
  dir: string;
  index: ManifestIndex;
  lines: Iterator<ManifestRecord>;
  head: ManifestRecord | undefined;
  /** Entries its lines add (+1) or remove (-1), for the count check. */
  change: number;
}

const advance = (l: Level) => {
  const r = l.lines.next();
  l.head = r.done ? undefined : r.value;
};

/** Whether a's path comes before b's in scan order. */
const before = (a: ManifestRecord, b: ManifestRecord) =>
  a.path !== b.path && compareScanOrder(a.pathBytes, b.pathBytes) < 0;

/**
 * readManifest's entries as records, parsed when asked. The full manifest at the bottom of the
 * chain and every delta above it are merged at once (not one merge per delta), so a chain's
 * depth costs little: a base entry that no delta touches is passed on after one comparison with
 * the smallest path the deltas have next.
 */
export function* readManifestRecords(dir: string, depthLeft = MAX_DEPTH): Generator<ManifestRecord> {
  // The full manifest first, then the deltas from the oldest.
  const chain: Level[] = manifestChain(dir, depthLeft)
    .reverse()
    .map(({ dir: d, index }) => ({ dir: d, index, lines: linesOf(d, index), head: undefined, change: 0 }));
  const [full, ...deltas] = chain as [Level, ...Level[]];
  for (const l of chain) advance(l);
  /** The delta whose next line has the smallest path (the oldest of equals), if any. */
  const first = () => {
    let m: Level | undefined;
    for (const l of deltas) if (l.head && (!m || before(l.head, m.head!))) m = l;
    return m;
  };
  let next = first();
  let fullCount = 0;
  /** The full manifest's line at hand, taken (a full manifest holds no removals). */
  const takeFull = () => {
    const r = full.head!;
    if (r.line.endsWith(REMOVAL_END) && isRemoval(r.value)) {
      throw manifestError(full.dir, `a full manifest removes '${r.pathBytes.toString('latin1')}'`);
    }
    fullCount++;
    advance(full);
    return r;
  };
  while (full.head || next) {
    if (full.head && (!next || before(full.head, next.head!))) {
      yield takeFull();
      continue;
    }
    // The path at hand, through the chain from the bottom: each delta that has it replaces,
    // adds or removes what the levels below make of it.
    const at = next!.head!;
    let present = full.head && full.head.path === at.path ? takeFull() : undefined;
    for (const l of deltas) {
      if (!l.head || l.head.path !== at.path) continue;
      const line = l.head;
      advance(l);
      if (isRemoval(line.value)) {
        if (!present)
          throw manifestError(l.dir, `removes '${at.pathBytes.toString('latin1')}', which its base does not hold`);
        l.change--;
        present = undefined;
      } else {
        if (!present) l.change++;
        present = line;
      }
    }
    next = first();
    if (present) yield present;
  }
  // Each level's count: the full manifest's lines, plus what each delta up to it added.
  let entries = fullCount;
  for (const l of chain) {
    entries += l.change;
    if (entries !== l.index.entries)
      throw manifestError(l.dir, `holds ${entries} entries; its index says ${l.index.entries}`);
  }
}

const REMOVAL_END = ',"removed":true}';

/** Writes `entries` as a full manifest into `dir`. */
export function writeManifest(dir: string, entries: Iterable<ManifestEntry>): ManifestIndex {
  const writer = new ManifestWriter(dir);
  for (const e of entries) writer.add(e);
  return writer.close();
}

/**
 * Looks entries up by path in a manifest, for callers that ask in scan order (as the scan yields
 * entries): one pass, one chunk in memory. A path asked out of order is not found. The entries
 * passed over without being asked for (not in the scan: removed since) go to `onPassed`.
 */
export class ManifestCursor {
  private readonly it: Iterator<ManifestRecord> | undefined;
  private current: ManifestRecord | undefined;

  constructor(
    dir: string | undefined,
    private readonly onPassed: (r: ManifestRecord) => void = () => {},
  ) {
    this.it = dir === undefined ? undefined : readManifestRecords(dir);
    this.next();
  }

  private next(): void {
    const r = this.it?.next();
    this.current = r && !r.done ? r.value : undefined;
  }

  /** `key`: the path in base64, if the caller has it. */
  lookup(p: Buffer, key = encodePath(p)): ManifestRecord | undefined {
    while (this.current && this.current.path !== key && compareScanOrder(this.current.pathBytes, p) < 0) {
      this.onPassed(this.current);
      this.next();
    }
    if (!this.current || this.current.path !== key) return undefined;
    const found = this.current;
    this.next();
    return found;
  }

  /** Passes over every entry left. */
  finish(): void {
    while (this.current) {
      this.onPassed(this.current);
      this.next();
    }
  }
}

// `backup`: a point-in-time snapshot of a tree into a repository on a POSIX/NAS target.
//
// The data goes into the snapshot's own browsable tree, unchanged files hard-linked from the
// parent snapshot's tree (the rsync --link-dest scheme of the seed, run by the copy engine), then
// the manifest, then the snapshot record, each durable before the next. A backup under way is
// recorded in pending/: an interrupted one is resumed by the next backup of the same source,
// which skips what is already in its tree. Change detection is pluggable (ChangeDetector); the
// default compares size, mtime, ctime and inode with the parent's manifest.
import { closeSync, openSync, readSync, renameSync, rmSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { native, fsConstants as C } from '../native.js';
import { sync, type CopySummary, type FileResult, type CopyFailure } from '../engine/copy.js';
import type { Entry, EntryType } from '../model/entry.js';
import {
  MAX_DEPTH,
  ManifestCursor,
  checkManifestChain,
  encodePath,
  ManifestWriter,
  isRemoval,
  manifestPath,
  readManifest,
  statPrefix,
  toManifestEntry,
  writeManifest,
  type ManifestRecord,
  type ManifestEntry,
  type ManifestIndex,
  type ManifestLine,
} from './manifest.js';
import { compareScanOrder } from '../engine/delete.js';
import { chunkFiles } from '../engine/chunk-journal.js';
import { syncDir } from './durable.js';
import { mismatch } from './digests.js';
import {
  Repository,
  newSnapshotId,
  removeTree,
  repoError,
  type SnapshotRecord,
  type SnapshotStats,
} from './repository.js';
import { JsonLinesWriter, readJsonLines } from './jsonl.js';
import { TreeRoot, joinPath, sameInode } from '../targets/posix/paths.js';
import { displayPath } from '../errors.js';

/** Decides whether a file is unchanged since the parent snapshot (then no data is read). */
export interface ChangeDetector {
  /** Stat data alone decides: a file whose stat data equals its record's is unchanged. */
  readonly byStat?: boolean;
  /** `file()` gives the entry's full path in the source. */
  unchanged(e: Entry, previous: ManifestEntry | undefined, file: () => Buffer): boolean | Promise<boolean>;
}

/** Size, mtime (ns), ctime (ns) and inode all equal the parent's record: the stat comparison. */
export const statDetector: ChangeDetector = {
  byStat: true,
  unchanged: (e, p) =>
    p !== undefined &&
    p.type === 'file' &&
    p.size === e.size &&
    p.mtimeNs === String(e.mtimeNs) &&
    p.ctimeNs === String(e.ctimeNs) &&
    p.ino === String(e.ino),
};

/**
 * --checksum: same size and the same XXH64 as recorded, of the whole file or of each unit of a
 * file stored in units, cut as it was (reads every file with a parent record).
 */
export const checksumDetector: ChangeDetector = {
  async unchanged(e, p, file) {
    if (p === undefined || p.type !== 'file' || p.size !== e.size) return false;
    if (p.hash === undefined && p.units === undefined) return false;
    return (await mismatch(file(), p)) === undefined;
  },
};

export interface BackupOptions {
  tags?: string[];
  filter?: { excludes(e: Entry, bySize?: boolean): boolean };
  oneFileSystem?: boolean;
  /** Compare contents with the parent's digests instead of stat data. */
  checksum?: boolean;
  detector?: ChangeDetector;
  threads?: number;
  /** Re-read what was written from the device and compare. */
  verify?: boolean;
  /** Changed files start as reflink clones of the parent's copy where the target can (see CopyOptions.reflink). */
  reflink?: boolean;
  breakLock?: boolean;
  signal?: AbortSignal;
  onProgress?: (summary: CopySummary) => void;
  onError?: (failure: CopyFailure) => void;
  /** Something the user should know that does not stop the backup. */
  onWarning?: (message: string) => void;
}

export interface BackupResult {
  /** Absent when interrupted: rerun to resume. */
  snapshot?: SnapshotRecord;
  failures: CopyFailure[];
  interrupted: boolean;
  resumed: boolean;
}

const RECORD = 20; // per scanned entry: outcome (1 byte), XXH64 hex (16), padding
const OUTCOME = { none: 0, copied: 1, linked: 2, skipped: 3 } as const;

export async function backup(repoPath: string, sourcePath: string, o: BackupOptions = {}): Promise<BackupResult> {
  const repo = Repository.open(repoPath, true);
  const unlock = repo.lock('backup', o.breakLock);
  try {
    return await run(repo, path.resolve(sourcePath), o);
  } finally {
    unlock();
  }
}

async function run(repo: Repository, source: string, o: BackupOptions): Promise<BackupResult> {
  const host = os.hostname();
  // A pending record whose snapshot record exists is the leftover of a backup that committed
  // (killed between the two steps): it is finished, never reopened.
  for (const p of repo.pending()) if (repo.hasSnapshot(p.id)) repo.removePending(p.id);
  const resumed = repo.pending().find((p) => p.source === source && p.host === host);
  let parent = resumed
    ? resumed.parent
      ? repo.snapshot(resumed.parent)
      : undefined
    : repo
        .snapshots((err) => o.onWarning?.(`${err.message}: not considered as a parent`))
        .filter((s) => s.source === source && s.host === host)
        .at(-1);
  let parentIndex: ManifestIndex | undefined;
  if (parent) {
    // A parent whose manifest (or a base below it) is damaged cannot say what changed: rather
    // than no backup at all until someone repairs it, a full one (verify names the damage).
    try {
      parentIndex = checkManifestChain(repo.manifestDir(parent.id));
    } catch (err) {
      o.onWarning?.(`${(err as Error).message}; so this backup compares with no parent and copies everything`);
      parent = undefined;
    }
  }
  const now = new Date();
  const id = resumed?.id ?? newSnapshotId(now);
  // The snapshot's time is when its first run started: the point in time it stands for.
  const started = resumed?.started ?? now.toISOString();
  // A source that cannot be read at all is an error now, before a pending record says a backup
  // of it is under way (it would be left behind, to be resumed by nothing).
  try {
    native.stat(source, { follow: true });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw repoError('SOURCE_UNREADABLE', `backup source: ${e.message}`, source);
  }
  if (repo.holds(source)) {
    throw repoError('SOURCE_IN_REPOSITORY', `backup source ${source}: inside the repository ${repo.root}`, source);
  }
  if (!resumed) repo.writePending({ id, source, host, parent: parent?.id, started });
  const tree = repo.tree(id);
  const detector = o.detector ?? (o.checksum ? checksumDetector : statDetector);
  const srcTree = new TreeRoot(Buffer.from(source));
  const parentManifest = parent ? repo.manifestDir(parent.id) : undefined;
  const stats: SnapshotStats = {
    files: 0,
    dirs: 0,
    others: 0,
    bytes: 0,
    copiedFiles: 0,
    copiedBytes: 0,
    sharedBytes: 0,
    unchangedFiles: 0,
    failed: 0,
  };
  /** Counts an entry the manifest keeps (sign 1), or takes one back (-1). */
  const count = (type: EntryType, size: number, outcome: 'copied' | 'linked' | undefined, sign: 1 | -1) => {
    if (type === 'dir') stats.dirs += sign;
    else if (type !== 'file') stats.others += sign;
    else {
      stats.files += sign;
      stats.bytes += sign * size;
      if (outcome === 'linked') stats.unchangedFiles += sign;
      else {
        stats.copiedFiles += sign;
        stats.copiedBytes += sign * size;
      }
    }
  };

  // The manifest is a delta against the parent's: an entry whose stat data equals the parent's
  // record is left out (the omitted), unless what the engine did with it says otherwise. Every
  // other entry goes to a spool in scan order (bounded memory), with the base's entries that the
  // scan no longer has as removals; each spooled file's outcome goes to a fixed-size record at its
  // position in a results file, so the manifest pass reads both in scan order.
  const work = path.join(repo.root, 'pending', id);
  const spool = new JsonLinesWriter(`${work}.entries`);
  const results = openSync(`${work}.results`, 'w+');
  const units = new Map<number, FileResult['units']>();
  // Spooled entries by their place in the spool; an entry that onEntry saw and is not here was
  // left out (omitted): most of them, so nothing is kept per omitted entry.
  const seqOf = new WeakMap<Entry, number>();
  const failedSeq = new Set<number>();
  let seq = 0;
  // One pass over the parent's manifest, in step with the scan.
  const parentCursor = new ManifestCursor(parentManifest, (gone) => spool.write({ path: gone.path, removed: true }));
  /** Omitted entries that the manifest must record after all: failed, or not a link to the parent's. */
  const exceptions: Exception[] = [];
  const isFile = (e: Entry) => e.type === 'file';

  // A repository inside its source is left out of its snapshots: each would hold all before it.
  let repoMet = false;
  const handle = sync(source, tree, {
    linkDest: parent ? repo.tree(parent.id) : undefined,
    // A fresh tree holds nothing to delete; a resumed one may hold what has gone since.
    delete: !!resumed,
    filter: {
      excludes: (e, bySize) => {
        if (!repo.isItself(e)) return o.filter?.excludes(e, bySize) ?? false;
        if (!repoMet) o.onWarning?.(`${displayPath(srcTree.path(e.path))}: the repository itself, left out`);
        return (repoMet = true);
      },
    },
    oneFileSystem: o.oneFileSystem,
    threads: o.threads,
    verify: o.verify,
    reflink: o.reflink,
    // A snapshot sharing its source's blocks would share its media too: not a backup.
    cloneSource: false,
    // The detector compares ctime, which any xattr or ACL change moves: no need to read them.
    linkXattrs: false,
    signal: o.signal,
    // Returns, for a file, the detector's verdict: unchanged since the parent (then linked).
    onEntry: (e) => {
      const path64 = encodePath(e.path);
      const record = parentCursor.lookup(e.path, path64);
      if (record && omittable(e) && sameAsRecorded(e, record, path64)) {
        count(e.type, e.size, 'linked', 1);
        // The same stat data: the stat detector need not parse the record.
        if (isFile(e)) return detector.byStat || detector.unchanged(e, record.entry, () => srcTree.path(e.path));
        return;
      }
      const prev = record?.entry;
      seqOf.set(e, seq++);
      spool.write(entryRecord(e, srcTree.path(e.path), prev));
      if (!isFile(e)) return;
      return prev !== undefined && detector.unchanged(e, prev, () => srcTree.path(e.path));
    },
    onFailed: (e) => {
      const n = seqOf.get(e);
      if (n === undefined) exceptions.push({ entry: e, failed: true });
      else failedSeq.add(n);
    },
  });
  /** In a resumed run: whether the tree's file is already the parent's inode. */
  const linkedByEarlierRun = (e: Entry) =>
    sameInode(joinPath(Buffer.from(tree), e.path), joinPath(Buffer.from(repo.tree(parent!.id)), e.path));
  handle.on('file', (r: FileResult) => {
    const n = seqOf.get(r.entry);
    if (n === undefined) {
      // Omitted: a link to the parent's bytes keeps the parent's record; anything else is recorded.
      if (r.outcome === 'linked' || (r.outcome === 'skipped' && linkedByEarlierRun(r.entry))) return;
      exceptions.push({ entry: r.entry, result: r });
      return;
    }
    const rec = Buffer.alloc(RECORD, 0x20);
    rec[0] = OUTCOME[r.outcome];
    if (r.digest) rec.write(r.digest, 1, 'latin1');
    writeSync(results, rec, 0, RECORD, n * RECORD);
    if (r.units) units.set(n, r.units);
  });
  if (o.onError) handle.on('error-record', o.onError);
  if (o.onProgress) handle.on('progress', o.onProgress);
  const copied = await handle.done;
  stats.failed = copied.failures.length;
  stats.sharedBytes = copied.sharedBytes;
  if (copied.interrupted) {
    spool.close();
    closeSync(results);
    srcTree.close();
    return { failures: copied.failures, interrupted: true, resumed: !!resumed };
  }
  parentCursor.finish();
  spool.close();

  // The manifest pass: the spool in scan order, the exceptions (few) merged in at their places.
  const manifestDir = repo.manifestDir(id);
  if (resumed) removeTree(manifestDir); // a manifest half-written by an interrupted run
  const depth = (parentIndex?.depth ?? 0) + 1;
  const writer = new ManifestWriter(
    manifestDir,
    parent && parentIndex ? { base: parent.id, depth, baseEntries: parentIndex.entries } : undefined,
  );
  const firstName = new Map<string, string>(); // dev:ino -> base64 path of the first name
  const dstTree = new TreeRoot(Buffer.from(tree)); // paths of any depth, as the engine wrote them
  /** The manifest entry of a spooled entry, given the outcome of its copy; undefined when not in the tree. */
  const finish = async (
    spooled: Spooled,
    got: number,
    digest: string | undefined,
    cut: FileResult['units'] | undefined,
  ): Promise<ManifestEntry | undefined> => {
    const { prev, ...me } = spooled;
    const treePath = dstTree.path(manifestPath(me));
    if (me.type !== 'file') {
      count(me.type, 0, undefined, 1);
      return me;
    }
    const inode = `${me.dev}:${me.ino}`;
    const first = me.nlink > 1 ? firstName.get(inode) : undefined;
    if (first !== undefined) {
      if (!presentInTree(treePath)) return undefined; // its link failed: reported by the engine
      return { ...me, link: first };
    }
    if (got === OUTCOME.none) {
      removeFailed(treePath, srcTree.path(manifestPath(me))); // never in the snapshot, nor left from an earlier attempt
      return undefined;
    }
    if (got === OUTCOME.linked) {
      // Linked: the parent's bytes, so the parent's digests.
      if (prev?.hash) me.hash = prev.hash;
      else if (prev?.units) me.units = prev.units;
      else me.hash = (await native.hashFileAsync(treePath, { sparse: true })).digest;
    } else if (got === OUTCOME.skipped) {
      // Completed by an interrupted run: its bytes are the ones hashed now, from the repository.
      // They are of the version that run read, with this size and mtime but a ctime unknown (a
      // rewrite that kept both must not pass for unchanged): the next backup compares it afresh.
      me.hash = (await native.hashFileAsync(treePath, { sparse: true })).digest;
      me.ctimeNs = '0';
    } else {
      // A cut along stripes is recomputed from the layout it followed: it goes with the digests.
      if (cut) me.units = cut.cut.startsWith('stripes') && me.layout ? { ...cut, layout: me.layout } : cut;
      else me.hash = digest;
      // A file rewritten between the scan and its copy was copied as it then was (whole and
      // consistent): the tree's copy has that version's size and mtime; its ctime is unknown,
      // so the next backup compares it afresh.
      const t = native.stat(treePath);
      if (t.size !== me.size || String(t.mtimeNs) !== me.mtimeNs) {
        Object.assign(me, { size: t.size, mtimeNs: String(t.mtimeNs), ctimeNs: '0' });
      }
    }
    if (me.nlink > 1) firstName.set(inode, me.path);
    count('file', me.size, got === OUTCOME.linked ? 'linked' : 'copied', 1);
    return me;
  };
  exceptions.sort((a, b) => compareScanOrder(a.entry.path, b.entry.path));
  let next = 0;
  const exceptionsBefore = async (p: Buffer | undefined) => {
    for (; next < exceptions.length; next++) {
      const x = exceptions[next]!;
      if (p !== undefined && compareScanOrder(x.entry.path, p) >= 0) return;
      count(x.entry.type, x.entry.size, 'linked', -1);
      if (x.failed) {
        if (x.entry.type === 'file') removeFailed(dstTree.path(x.entry.path), srcTree.path(x.entry.path)); // left by an earlier attempt
        writer.remove(encodePath(x.entry.path));
        continue;
      }
      const r = x.result!;
      // Its record is read afresh (xattrs, target): exceptions are few.
      const me = entryRecord(x.entry, srcTree.path(x.entry.path), undefined);
      me.prev = {}; // it is in the base
      const done = await finish(me, OUTCOME[r.outcome], r.digest, r.units);
      if (done) writer.add(done, true);
      else writer.remove(me.path);
    }
  };
  const rec = Buffer.alloc(RECORD);
  let n = 0;
  for (const line of readJsonLines<ManifestLine & Spooled>(spool.file)) {
    await exceptionsBefore(manifestPath(line));
    if (isRemoval(line)) {
      writer.remove(line.path);
      continue;
    }
    const at = n++;
    let done: ManifestEntry | undefined;
    if (line.type === 'file') {
      // A file's outcome says whether it failed (none), and a failed one's leftovers are removed.
      const got = readSync(results, rec, 0, RECORD, at * RECORD) === RECORD ? rec[0]! : OUTCOME.none;
      done = await finish(line, got, rec.toString('latin1', 1, 17), units.get(at));
    } else if (!failedSeq.has(at)) done = await finish(line, OUTCOME.none, undefined, undefined);
    if (done) writer.add(done, line.prev !== undefined);
    else if (line.prev !== undefined) writer.remove(line.path);
  }
  await exceptionsBefore(undefined);
  dstTree.close();
  srcTree.close();
  closeSync(results);
  // The data before the manifest: one flush of the target's file system covers every file,
  // link and directory of the tree (whatever the engine's fsync policy left to the kernel).
  const root = new native.File(tree, C.O_RDONLY);
  try {
    root.syncfs();
  } finally {
    root.close();
  }
  let index = writer.close();
  if (depth > MAX_DEPTH) {
    // The chain is long enough: this snapshot's manifest becomes a full one.
    const full = `${work}.manifest`;
    removeTree(full);
    index = writeManifest(full, readManifest(manifestDir, MAX_DEPTH + 1));
    removeTree(manifestDir);
    renameSync(full, manifestDir);
    syncDir(path.dirname(manifestDir));
  }
  const snapshot: SnapshotRecord = {
    id,
    time: started,
    host,
    source,
    tags: o.tags ?? [],
    ...(parent ? { parent: parent.id } : {}),
    stats,
    manifest: { dir: `manifests/${id}`, ...index },
  };
  repo.writeSnapshot(snapshot);
  repo.removePending(id);
  return { snapshot, failures: copied.failures, interrupted: false, resumed: !!resumed };
}

/**
 * A file that failed goes from the committed snapshot's tree, with what the engine keeps of a
 * large one for a rerun (its temporary file and chunk journal): the snapshot is final.
 */
function removeFailed(treePath: Buffer, sourcePath: Buffer): void {
  const { tmp, journal } = chunkFiles(treePath, sourcePath);
  for (const p of [treePath, tmp, journal]) rmSync(p, { force: true });
}

/** Whether the tree holds this name (a dangling symlink counts: lstat, not stat). */
function presentInTree(p: Buffer): boolean {
  try {
    native.stat(p);
    return true;
  } catch {
    return false;
  }
}

/** An omitted entry the manifest records after all. */
interface Exception {
  entry: Entry;
  failed?: boolean;
  result?: FileResult;
}

/** A scanned entry as spooled: its manifest entry, and whether (with what digests) the base had its path. */
type Spooled = ManifestEntry & { prev?: Pick<ManifestEntry, 'hash' | 'units'> };

/**
 * Entries that may be left out of a delta: not hard links, whose record names a first name
 * that may have changed without touching them.
 */
const omittable = (e: Entry) => e.type !== 'file' || e.nlink === 1;

/**
 * Whether the parent's record stands for this entry as it is: the same stat data (a change of
 * contents, xattrs, mode or links changes ctime). Compared on the record's line where it can be
 * (see statPrefix), parsed where it must.
 */
function sameAsRecorded(e: Entry, r: ManifestRecord, path64: string): boolean {
  const prefix = statPrefix(e, path64);
  // Compared as a slice: startsWith walks a prefix built by concatenation (a rope) one character
  // at a time, several times slower than flattening it once for ===, at 10^5 entries a snapshot.
  if (prefix !== undefined && r.line.slice(0, prefix.length) === prefix) return true;
  const p = r.entry; // an entry that changed, or a line not in the writer's field order
  return (
    p.type === e.type &&
    p.link === undefined &&
    p.size === e.size &&
    p.mtimeNs === String(e.mtimeNs) &&
    p.ctimeNs === String(e.ctimeNs) &&
    p.ino === String(e.ino) &&
    p.dev === e.dev &&
    p.mode === e.mode &&
    p.uid === e.uid &&
    p.gid === e.gid &&
    p.nlink === e.nlink &&
    (p.rdev ?? 0) === (e.rdev ?? 0) &&
    JSON.stringify(p.layout) === JSON.stringify(e.layout)
  );
}

/**
 * What the manifest keeps of a scanned entry: its stat data, xattrs, symlink target. Where the
 * parent recorded the same inode with the same ctime, xattrs and target cannot have changed
 * (setting either changes ctime): they are taken from there, not read again.
 */
function entryRecord(e: Entry, full: Buffer, prev: ManifestEntry | undefined): Spooled {
  const me: Spooled = toManifestEntry(e);
  if (prev) me.prev = prev.type === 'file' && e.type === 'file' ? { hash: prev.hash, units: prev.units } : {};
  if (prev && prev.type === e.type && prev.ino === me.ino && prev.dev === me.dev && prev.ctimeNs === me.ctimeNs) {
    if (prev.xattrs) me.xattrs = prev.xattrs;
    if (prev.target !== undefined) me.target = prev.target;
    return me;
  }
  try {
    const names = native.listXattrs(full);
    if (names.length > 0) {
      me.xattrs = {};
      for (const name of names) me.xattrs[name] = native.getXattr(full, name).toString('base64');
    }
    if (e.type === 'symlink') me.target = native.readlink(full).toString('base64');
  } catch {
    // gone or unreadable since the scan: the engine reports it
  }
  return me;
}

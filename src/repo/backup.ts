// `backup`: a point-in-time snapshot of a tree into a repository on a POSIX/NAS target.
//
// The data goes into the snapshot's own browsable tree, unchanged files hard-linked from the
// parent snapshot's tree (the rsync --link-dest scheme of the seed, run by the copy engine), then
// the manifest, then the snapshot record, each durable before the next. A backup under way is
// recorded in pending/: an interrupted one is resumed by the next backup of the same source,
// which skips what is already in its tree. Change detection is pluggable (ChangeDetector); the
// default compares size, mtime, ctime and inode with the parent's manifest.
import { closeSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { native, fsConstants as C } from '../native.js';
import { sync, type CopySummary, type FileResult, type CopyFailure } from '../engine/copy.js';
import type { Entry } from '../model/entry.js';
import { ManifestCursor, ManifestWriter, manifestPath, toManifestEntry, type ManifestEntry } from './manifest.js';
import { Repository, newSnapshotId, type SnapshotRecord, type SnapshotStats } from './repository.js';
import { JsonLinesWriter, readJsonLines } from './jsonl.js';
import { TreeRoot } from '../targets/posix/paths.js';

/** Decides whether a file is unchanged since the parent snapshot (then no data is read). */
export interface ChangeDetector {
  /** `file` is the entry's full path in the source. */
  unchanged(e: Entry, previous: ManifestEntry | undefined, file: Buffer): boolean | Promise<boolean>;
}

/** Size, mtime (ns), ctime (ns) and inode all equal the parent's record: the stat comparison. */
export const statDetector: ChangeDetector = {
  unchanged: (e, p) =>
    p !== undefined &&
    p.type === 'file' &&
    p.size === e.size &&
    p.mtimeNs === String(e.mtimeNs) &&
    p.ctimeNs === String(e.ctimeNs) &&
    p.ino === String(e.ino),
};

/** --checksum: same size and the same XXH64 as recorded (reads every file with a parent record). */
export const checksumDetector: ChangeDetector = {
  async unchanged(e, p, file) {
    if (p === undefined || p.type !== 'file' || p.size !== e.size || p.hash === undefined) return false;
    return (await native.hashFileAsync(file, { sparse: true })).digest === p.hash;
  },
};

export interface BackupOptions {
  tags?: string[];
  filter?: { excludes(e: Entry): boolean };
  oneFileSystem?: boolean;
  /** Compare contents with the parent's digests instead of stat data. */
  checksum?: boolean;
  detector?: ChangeDetector;
  threads?: number;
  /** Re-read what was written from the device and compare. */
  verify?: boolean;
  breakLock?: boolean;
  signal?: AbortSignal;
  onProgress?: (summary: CopySummary) => void;
  onError?: (failure: CopyFailure) => void;
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
  const parent = resumed
    ? resumed.parent
      ? repo.snapshot(resumed.parent)
      : undefined
    : repo
        .snapshots()
        .filter((s) => s.source === source && s.host === host)
        .at(-1);
  const now = new Date();
  const id = resumed?.id ?? newSnapshotId(now);
  // The snapshot's time is when its first run started: the point in time it stands for.
  const started = resumed?.started ?? now.toISOString();
  if (!resumed) repo.writePending({ id, source, host, parent: parent?.id, started });
  const tree = repo.tree(id);
  const detector = o.detector ?? (o.checksum ? checksumDetector : statDetector);
  const srcTree = new TreeRoot(Buffer.from(source));
  const parentManifest = parent ? repo.manifestDir(parent.id) : undefined;

  // Every entry in scan order goes to a spool (bounded memory); each file's outcome to a record
  // at its position in a results file, so the manifest pass reads both in scan order.
  const work = path.join(repo.root, 'pending', id);
  const entries = new JsonLinesWriter(`${work}.entries`);
  const results = openSync(`${work}.results`, 'w+');
  const units = new Map<number, FileResult['units']>();
  const seqOf = new WeakMap<Entry, number>();
  let seq = 0;
  // One pass over the parent's manifest, in step with the scan: what changed, and what an
  // unchanged entry's record can be taken from.
  const parentCursor = new ManifestCursor(parentManifest);
  const previous = new WeakMap<Entry, ManifestEntry>();

  const handle = sync(source, tree, {
    linkDest: parent ? repo.tree(parent.id) : undefined,
    delete: true,
    filter: o.filter,
    oneFileSystem: o.oneFileSystem,
    threads: o.threads,
    verify: o.verify,
    signal: o.signal,
    onEntry: (e) => {
      seqOf.set(e, seq++);
      const prev = parentCursor.lookup(e.path);
      if (prev) previous.set(e, prev);
      entries.write(entryRecord(e, srcTree.path(e.path), prev));
    },
    unchanged: (e) => detector.unchanged(e, previous.get(e), srcTree.path(e.path)),
  });
  handle.on('file', (r: FileResult) => {
    const n = seqOf.get(r.entry)!;
    const rec = Buffer.alloc(RECORD, 0x20);
    rec[0] = OUTCOME[r.outcome];
    if (r.digest) rec.write(r.digest, 1, 'latin1');
    writeSync(results, rec, 0, RECORD, n * RECORD);
    if (r.units) units.set(n, r.units);
  });
  if (o.onError) handle.on('error-record', o.onError);
  if (o.onProgress) handle.on('progress', o.onProgress);
  const copied = await handle.done.finally(() => srcTree.close());
  entries.close();
  if (copied.interrupted) {
    closeSync(results);
    return { failures: copied.failures, interrupted: true, resumed: !!resumed };
  }

  // The manifest, in scan order: what each entry is, and for files, the digest of their bytes.
  const writer = new ManifestWriter(repo.manifestDir(id));
  const firstName = new Map<string, string>(); // dev:ino -> base64 path of the first name
  const stats: SnapshotStats = {
    files: 0,
    dirs: 0,
    others: 0,
    bytes: 0,
    copiedFiles: 0,
    copiedBytes: 0,
    unchangedFiles: 0,
    failed: copied.failures.length,
  };
  const rec = Buffer.alloc(RECORD);
  let n = 0;
  const dstTree = new TreeRoot(Buffer.from(tree)); // paths of any depth, as the engine wrote them
  for (const { prev, ...me } of readJsonLines<Spooled>(entries.file)) {
    const at = n++;
    const treePath = dstTree.path(manifestPath(me));
    if (me.type === 'file') {
      const inode = `${me.dev}:${me.ino}`;
      const first = me.nlink > 1 ? firstName.get(inode) : undefined;
      if (first !== undefined) {
        if (!presentInTree(treePath)) continue; // its link failed: reported by the engine
        writer.add({ ...me, link: first });
        continue;
      }
      const got = readSync(results, rec, 0, RECORD, at * RECORD) === RECORD ? rec[0] : OUTCOME.none;
      if (got === OUTCOME.none) {
        rmSync(treePath, { force: true }); // failed: never in the snapshot, nor left from an earlier attempt
        continue;
      }
      if (got === OUTCOME.linked) {
        // Linked: the parent's bytes, so the parent's digests.
        if (prev?.hash) me.hash = prev.hash;
        else if (prev?.units) me.units = prev.units;
        else me.hash = (await native.hashFileAsync(treePath, { sparse: true })).digest;
        stats.unchangedFiles++;
      } else if (got === OUTCOME.skipped) {
        // Completed by an interrupted run: its bytes are the ones hashed now, from the repository.
        me.hash = (await native.hashFileAsync(treePath, { sparse: true })).digest;
        stats.copiedFiles++;
        stats.copiedBytes += me.size;
      } else {
        const u = units.get(at);
        // A cut along stripes is recomputed from the layout it followed: it goes with the digests.
        if (u) me.units = u.cut.startsWith('stripes') && me.layout ? { ...u, layout: me.layout } : u;
        else me.hash = rec.toString('latin1', 1, 17);
        // A file rewritten between the scan and its copy was copied as it then was (whole and
        // consistent): the tree's copy has that version's size and mtime; its ctime is unknown,
        // so the next backup compares it afresh.
        const t = native.stat(treePath);
        if (t.size !== me.size || String(t.mtimeNs) !== me.mtimeNs) {
          Object.assign(me, { size: t.size, mtimeNs: String(t.mtimeNs), ctimeNs: '0' });
        }
        stats.copiedFiles++;
        stats.copiedBytes += me.size;
      }
      if (me.nlink > 1) firstName.set(inode, me.path);
      stats.files++;
      stats.bytes += me.size;
    } else {
      if (me.path !== '' && !presentInTree(treePath) && me.type !== 'socket') continue; // failed, reported
      if (me.type === 'dir') stats.dirs++;
      else stats.others++;
    }
    writer.add(me);
  }
  dstTree.close();
  closeSync(results);
  // The data before the manifest: one flush of the target's file system covers every file,
  // link and directory of the tree (whatever the engine's fsync policy left to the kernel).
  const root = new native.File(tree, C.O_RDONLY);
  try {
    root.syncfs();
  } finally {
    root.close();
  }
  const index = writer.close();
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

/** Whether the tree holds this name (a dangling symlink counts: lstat, not stat). */
function presentInTree(p: Buffer): boolean {
  try {
    native.stat(p);
    return true;
  } catch {
    return false;
  }
}

/** A scanned entry as spooled: its manifest entry, and the parent's digests of the same path. */
type Spooled = ManifestEntry & { prev?: Pick<ManifestEntry, 'hash' | 'units'> };

/**
 * What the manifest keeps of a scanned entry: its stat data, xattrs, symlink target. Where the
 * parent recorded the same inode with the same ctime, xattrs and target cannot have changed
 * (setting either changes ctime): they are taken from there, not read again.
 */
function entryRecord(e: Entry, full: Buffer, prev: ManifestEntry | undefined): Spooled {
  const me: Spooled = toManifestEntry(e);
  if (prev && prev.type === 'file' && e.type === 'file') me.prev = { hash: prev.hash, units: prev.units };
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

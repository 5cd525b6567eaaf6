// A repository on a POSIX/NAS target (format in docs/REPOSITORY.md): its config, the writer's
// lock, snapshot records, and where each snapshot's manifest and tree live. Everything needed to
// restore is inside the repository; nothing here is a cache of something else.
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { StripemoverError } from '../errors.js';
import { isDirectoryOf, reachedPath } from '../targets/posix/paths.js';
import type { Entry } from '../model/entry.js';
import { readIndex, type ManifestIndex } from './manifest.js';
import { syncDir, writeDurably } from './durable.js';
import { checkId, isSnapshotId } from './snapshot-id.js';

export { newSnapshotId } from './snapshot-id.js';

export const FORMAT = 'stripemover-repository';
/** 2: manifests may be deltas (1 had full manifests only; 2 reads both). */
export const VERSION = 2;

export interface RepoConfig {
  format: typeof FORMAT;
  version: number;
  id: string;
  created: string;
}

export interface SnapshotStats {
  files: number;
  dirs: number;
  others: number;
  bytes: number;
  /** Files whose data was written in this snapshot (new or changed). */
  copiedFiles: number;
  copiedBytes: number;
  /** Of copiedBytes: bytes left shared with the parent's copy (reflink clones), not written. */
  sharedBytes?: number;
  /** Files hard-linked from the parent snapshot: no data I/O. */
  unchangedFiles: number;
  /** Files that could not be read: not in the snapshot. */
  failed: number;
}

export interface SnapshotRecord {
  id: string;
  /** ISO 8601, UTC. */
  time: string;
  host: string;
  /** The source's absolute path (as given, resolved). */
  source: string;
  tags: string[];
  parent?: string;
  stats: SnapshotStats;
  manifest: ManifestIndex & { dir: string };
}

/** A backup under way: written before any data, removed once its snapshot record is durable. */
export interface PendingRecord {
  id: string;
  source: string;
  host: string;
  parent?: string;
  started: string;
}

export function repoError(code: string, message: string, p?: string): StripemoverError {
  return new StripemoverError(code, message, p);
}

/** Removes a directory tree of any depth (rm(1) walks by descriptor; Node's rm stops at PATH_MAX). */
export function removeTree(dir: string): void {
  const r = spawnSync('rm', ['-rf', '--', dir], { encoding: 'utf8' });
  if (r.status !== 0)
    throw repoError('REMOVE_FAILED', `could not remove ${dir}: ${r.stderr.trim() || r.error?.message}`, dir);
}

export class Repository {
  /** Whether a scanned entry is this repository's own directory (a repository inside the tree it backs up is left out of that tree). */
  readonly isItself: (e: Pick<Entry, 'type' | 'dev' | 'ino'>) => boolean;

  private constructor(
    readonly root: string,
    readonly config: RepoConfig,
  ) {
    this.isItself = isDirectoryOf(root);
  }

  /**
   * Whether a path (there or not yet) is the repository or inside it, symlinks resolved: a
   * restore must not write there (into a snapshot's tree, it would change that snapshot), nor
   * a backup read its own repository as its source.
   */
  holds(p: string): boolean {
    const [root, it] = [reachedPath(this.root), reachedPath(p)];
    return it.subarray(0, root.length).equals(root) && (it.length === root.length || it[root.length] === 0x2f);
  }

  /** Opens the repository at root, creating it when `create` is set and nothing is there. */
  static open(root: string, create = false): Repository {
    root = path.resolve(root);
    const file = path.join(root, 'config.json');
    if (!existsSync(file)) {
      if (!create) throw repoError('REPO_NOT_FOUND', `no stripemover repository at ${root}`, root);
      for (const d of ['snapshots', 'manifests', 'trees', 'pending'])
        mkdirSync(path.join(root, d), { recursive: true });
      const config: RepoConfig = {
        format: FORMAT,
        version: VERSION,
        id: randomBytes(16).toString('hex'),
        created: new Date().toISOString(),
      };
      writeDurably(file, JSON.stringify(config, null, 1) + '\n');
      return new Repository(root, config);
    }
    let config = JSON.parse(readFileSync(file, 'utf8')) as RepoConfig;
    if (config.format !== FORMAT) throw repoError('REPO_INVALID', `${root} is not a stripemover repository`, root);
    if (config.version > VERSION) {
      throw repoError(
        'REPO_VERSION',
        `${root} has format version ${config.version}; this stripemover reads ${VERSION}`,
        root,
      );
    }
    if (create && config.version < VERSION) {
      // A backup may write what older readers would misread (a delta read as a whole manifest):
      // the version goes up first, so that they refuse the repository instead.
      config = { ...config, version: VERSION };
      writeDurably(file, JSON.stringify(config, null, 1) + '\n');
    }
    return new Repository(root, config);
  }

  tree(id: string): string {
    return path.join(this.root, 'trees', checkId(id));
  }

  manifestDir(id: string): string {
    return path.join(this.root, 'manifests', checkId(id));
  }

  // ---- the lock: one writer (backup, prune) at a time ----

  private get lockFile(): string {
    return path.join(this.root, 'lock');
  }

  /**
   * Takes the writer's lock, or throws REPO_LOCKED naming its holder. A lock whose holder is a
   * process of this host that no longer runs is stale: taken over when breakStale is set, and
   * otherwise reported as such.
   */
  lock(operation: string, breakStale = false): () => void {
    const me = { pid: process.pid, host: os.hostname(), operation, time: new Date().toISOString() };
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fd = openSync(this.lockFile, 'wx', 0o600);
        writeSync(fd, JSON.stringify(me) + '\n');
        fsyncSync(fd);
        closeSync(fd);
        // Only our own lock is removed (a lock broken and taken over by another is theirs).
        return () => {
          const holder = this.lockHolder();
          if (holder?.pid === me.pid && holder.time === me.time) rmSync(this.lockFile, { force: true });
        };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const holder = this.lockHolder();
      const stale = holder !== undefined && holder.host === os.hostname() && !alive(holder.pid);
      const who = holder
        ? `${holder.operation} by PID ${holder.pid} on ${holder.host} since ${holder.time}`
        : 'unknown';
      if (!stale || !breakStale) {
        throw repoError(
          'REPO_LOCKED',
          stale
            ? `repository ${this.root} has a stale lock (${who}, no longer running): rerun with --break-lock`
            : `repository ${this.root} is locked (${who})`,
          this.lockFile,
        );
      }
      rmSync(this.lockFile, { force: true });
    }
    throw repoError('REPO_LOCKED', `repository ${this.root}: could not take the lock`, this.lockFile);
  }

  lockHolder(): { pid: number; host: string; operation: string; time: string } | undefined {
    try {
      return JSON.parse(readFileSync(this.lockFile, 'utf8'));
    } catch {
      return undefined;
    }
  }

  // ---- snapshots ----

  /** Every snapshot record, oldest first (by time, then id). A damaged record is reported, never skipped. */
  /** The ids of every snapshot record, readable or not. */
  snapshotIds(): string[] {
    return readdirSync(path.join(this.root, 'snapshots'))
      .filter((f) => f.endsWith('.json') && isSnapshotId(f.slice(0, -5)))
      .map((f) => f.slice(0, -5));
  }

  /**
   * The snapshot records, oldest first. One that cannot be read (a disk error, a hand edit) goes
   * to `onDamaged` and is left out, so that it does not stop the others from being listed,
   * backed up against, restored or verified; its tree and manifest are not orphans for that.
   */
  snapshots(onDamaged: (err: StripemoverError, id: string) => void = () => {}): SnapshotRecord[] {
    const records: SnapshotRecord[] = [];
    for (const id of this.snapshotIds()) {
      try {
        records.push(this.snapshot(id));
      } catch (err) {
        if (!(err instanceof StripemoverError)) throw err;
        onDamaged(err, id);
      }
    }
    return records.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : a.id < b.id ? -1 : 1));
  }

  snapshot(id: string): SnapshotRecord {
    const file = path.join(this.root, 'snapshots', `${checkId(id)}.json`);
    try {
      const record = JSON.parse(readFileSync(file, 'utf8')) as SnapshotRecord;
      if (record?.id !== id || typeof record.time !== 'string' || !record.manifest)
        throw new Error('not a snapshot record');
      return record;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT')
        throw repoError('SNAPSHOT_NOT_FOUND', `no snapshot ${id} in ${this.root}`, file);
      throw repoError('SNAPSHOT_INVALID', `snapshot record ${file} is unreadable: ${(err as Error).message}`, file);
    }
  }

  /** A snapshot by id, unique id prefix, or 'latest' (of a source, if given). */
  resolve(ref: string, source?: string): SnapshotRecord {
    if (isSnapshotId(ref) && this.hasSnapshot(ref)) return this.snapshot(ref); // says why, if damaged
    const damaged: { id: string; err: StripemoverError }[] = [];
    const all = this.snapshots((err, id) => damaged.push({ id, err })).filter(
      (s) => source === undefined || s.source === source,
    );
    const matches = (id: string) => id.startsWith(ref) || id.endsWith(ref);
    // A damaged record might be the one meant (ids sort by time; its source is unknown): that
    // is said, not passed over for an older one.
    const newest = all.at(-1)?.id ?? '';
    const suspect = damaged.find(({ id }) => (ref === 'latest' ? id > newest : matches(id)));
    if (suspect) {
      throw repoError(
        'SNAPSHOT_INVALID',
        `'${ref}' may be ${suspect.id}, whose record is unreadable: ${suspect.err.message}`,
      );
    }
    if (ref === 'latest') {
      const last = all.at(-1);
      if (!last) throw repoError('SNAPSHOT_NOT_FOUND', `no snapshot in ${this.root}${source ? ` of ${source}` : ''}`);
      return last;
    }
    const found = all.filter((s) => matches(s.id));
    if (found.length !== 1) {
      throw repoError('SNAPSHOT_NOT_FOUND', `${found.length === 0 ? 'no' : 'more than one'} snapshot matches '${ref}'`);
    }
    return found[0]!;
  }

  /** The last step of a backup: once this is durable, the snapshot exists. */
  writeSnapshot(record: SnapshotRecord): void {
    writeDurably(
      path.join(this.root, 'snapshots', `${checkId(record.id)}.json`),
      JSON.stringify(record, null, 1) + '\n',
    );
  }

  /** The first step of removing a snapshot: once this is durable, it is gone. */
  removeSnapshotRecord(id: string): void {
    rmSync(path.join(this.root, 'snapshots', `${checkId(id)}.json`), { force: true });
    syncDir(path.join(this.root, 'snapshots'));
  }

  // ---- backups under way ----

  pending(): PendingRecord[] {
    const dir = path.join(this.root, 'pending');
    return readdirSync(dir)
      .filter((f) => f.endsWith('.json'))
      .map((f) => JSON.parse(readFileSync(path.join(dir, f), 'utf8')) as PendingRecord);
  }

  writePending(p: PendingRecord): void {
    writeDurably(path.join(this.root, 'pending', `${checkId(p.id)}.json`), JSON.stringify(p) + '\n');
  }

  removePending(id: string): void {
    const dir = path.join(this.root, 'pending');
    for (const f of [`${checkId(id)}.json`, `${id}.entries`, `${id}.results`])
      rmSync(path.join(dir, f), { force: true });
    rmSync(path.join(dir, `${id}.manifest`), { recursive: true, force: true }); // a full manifest being made
    syncDir(dir);
  }

  hasSnapshot(id: string): boolean {
    return existsSync(path.join(this.root, 'snapshots', `${checkId(id)}.json`));
  }

  /**
   * Trees and manifests that no snapshot record or backup under way accounts for. A manifest is
   * accounted for while a snapshot's chain of deltas goes through it, even once its own snapshot
   * is gone (prune keeps it for them).
   */
  orphans(): string[] {
    const snapshots = this.snapshotIds(); // a damaged record still accounts for its data
    const pending = this.pending();
    const trees = new Set([...snapshots, ...pending.map((p) => p.id)]);
    const manifests = new Set(trees);
    // A chain that cannot be followed (an index unreadable, even for a moment) could lead to any
    // manifest: then none is called an orphan, so none is removed. verify names the unreadable one.
    let chainsKnown = true;
    // A pending backup's manifest may not be written yet: the base it will name is its parent's.
    const parents = pending.flatMap((p) => (p.parent !== undefined && !manifests.has(p.parent) ? [p.parent] : []));
    for (const id of parents) manifests.add(id);
    for (const id of [...snapshots, ...parents]) {
      let base = this.manifestBase(id);
      for (; typeof base === 'string' && !manifests.has(base); base = this.manifestBase(base)) manifests.add(base);
      if (base === null) chainsKnown = false;
    }
    const unknown = (d: string, known: Set<string>) =>
      readdirSync(path.join(this.root, d))
        .filter((id) => isSnapshotId(id) && !known.has(id))
        .map((id) => path.join(this.root, d, id));
    return [...unknown('trees', trees), ...(chainsKnown ? unknown('manifests', manifests) : [])];
  }

  /** The base of a snapshot's manifest: its id, undefined for a full manifest, null when unreadable. */
  private manifestBase(id: string): string | undefined | null {
    try {
      const base = readIndex(this.manifestDir(id)).base;
      if (base === undefined) return undefined;
      return isSnapshotId(base) ? base : null;
    } catch {
      return null;
    }
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

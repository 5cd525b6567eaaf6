// `diff`: what was added, removed or changed between two snapshots, or between a snapshot and a
// live tree (as mpifileutils' dcmp reports). Both sides are walked in scan order and merged, so
// memory stays bounded whatever their size.
import path from 'node:path';
import { compareScanOrder } from '../engine/delete.js';
import { scan } from '../scan/index.js';
import { readManifest, toManifestEntry, type ManifestEntry } from './manifest.js';
import { Repository } from './repository.js';

export interface Difference {
  change: 'added' | 'removed' | 'changed';
  path: Buffer;
}

/** Whether two records of one path differ in what a user would call a change. */
function differs(a: ManifestEntry, b: ManifestEntry, compareContent: boolean): boolean {
  if (a.type !== b.type || a.mode !== b.mode || a.uid !== b.uid || a.gid !== b.gid) return true;
  if (a.type === 'symlink') return compareContent && a.target !== b.target;
  if (a.type !== 'file') return false;
  if (a.size !== b.size || a.mtimeNs !== b.mtimeNs) return true;
  if (!compareContent) return false;
  const ha = a.hash ?? JSON.stringify(a.units);
  const hb = b.hash ?? JSON.stringify(b.units);
  return a.link === undefined && b.link === undefined && ha !== hb;
}

async function* merge(
  left: AsyncIterable<ManifestEntry> | Iterable<ManifestEntry>,
  right: AsyncIterable<ManifestEntry> | Iterable<ManifestEntry>,
  compareContent: boolean,
): AsyncGenerator<Difference> {
  const l = (Symbol.asyncIterator in left ? left[Symbol.asyncIterator]() : left[Symbol.iterator]()) as
    AsyncIterator<ManifestEntry> | Iterator<ManifestEntry>;
  const r = (Symbol.asyncIterator in right ? right[Symbol.asyncIterator]() : right[Symbol.iterator]()) as
    AsyncIterator<ManifestEntry> | Iterator<ManifestEntry>;
  let a = await l.next();
  let b = await r.next();
  while (!a.done || !b.done) {
    const pa = a.done ? undefined : Buffer.from(a.value.path, 'base64');
    const pb = b.done ? undefined : Buffer.from(b.value.path, 'base64');
    const order = pa === undefined ? 1 : pb === undefined ? -1 : compareScanOrder(pa, pb);
    if (order < 0) {
      yield { change: 'removed', path: pa! };
      a = await l.next();
    } else if (order > 0) {
      yield { change: 'added', path: pb! };
      b = await r.next();
    } else {
      if (differs(a.value as ManifestEntry, b.value as ManifestEntry, compareContent))
        yield { change: 'changed', path: pa! };
      a = await l.next();
      b = await r.next();
    }
  }
}

export function diffSnapshots(repoPath: string, a: string, b: string): AsyncGenerator<Difference> {
  const repo = Repository.open(repoPath);
  const [sa, sb] = [repo.resolve(a), repo.resolve(b)];
  return merge(readManifest(repo.manifestDir(sa.id)), readManifest(repo.manifestDir(sb.id)), true);
}

/** The snapshot against the tree as it is now: by type, mode, owner, size and mtime (no reads). */
export function diffLive(repoPath: string, a: string, dir: string): AsyncGenerator<Difference> {
  const repo = Repository.open(repoPath);
  const snap = repo.resolve(a);
  const live = (async function* () {
    for await (const e of scan(Buffer.from(path.resolve(dir)), {})) yield toManifestEntry(e);
  })();
  return merge(readManifest(repo.manifestDir(snap.id)), live, false);
}

// `diff`: what was added, removed or changed between two snapshots, or between a snapshot and a
// live tree (as mpifileutils' dcmp reports). Both sides are walked in scan order and merged, so
// memory stays bounded whatever their size.
import path from 'node:path';
import { compareScanOrder } from '../engine/delete.js';
import { scan } from '../scan/index.js';
import { manifestPath, readManifest, toManifestEntry, type ManifestEntry } from './manifest.js';
import { Repository } from './repository.js';
import type { Entry } from '../model/entry.js';

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

type Source<T> = AsyncIterable<T> | Iterable<T>;

function iterate<T>(s: Source<T>): AsyncIterator<T> | Iterator<T> {
  return Symbol.asyncIterator in s ? s[Symbol.asyncIterator]() : s[Symbol.iterator]();
}

/**
 * Two sequences in scan order walked together: each path once, with what each side holds
 * there (a missing side is undefined). Verify and diff are both built on it.
 */
export async function* pairs<A, B>(
  left: Source<A>,
  right: Source<B>,
  pathOfA: (a: A) => Buffer,
  pathOfB: (b: B) => Buffer,
): AsyncGenerator<{ path: Buffer; a?: A; b?: B }> {
  const [l, r] = [iterate(left), iterate(right)];
  let a = await l.next();
  let b = await r.next();
  while (!a.done || !b.done) {
    const pa = a.done ? undefined : pathOfA(a.value);
    const pb = b.done ? undefined : pathOfB(b.value);
    const order = pa === undefined ? 1 : pb === undefined ? -1 : compareScanOrder(pa, pb);
    if (order < 0) {
      yield { path: pa!, a: a.value as A };
      a = await l.next();
    } else if (order > 0) {
      yield { path: pb!, b: b.value as B };
      b = await r.next();
    } else {
      yield { path: pa!, a: a.value as A, b: b.value as B };
      a = await l.next();
      b = await r.next();
    }
  }
}

async function* merge(
  left: Source<ManifestEntry>,
  right: Source<ManifestEntry>,
  compareContent: boolean,
): AsyncGenerator<Difference> {
  for await (const { path: p, a, b } of pairs(left, right, manifestPath, manifestPath)) {
    if (!b) yield { change: 'removed', path: p };
    else if (!a) yield { change: 'added', path: p };
    else if (differs(a, b, compareContent)) yield { change: 'changed', path: p };
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
    // As backup does, a repository inside the tree is not part of it.
    const prune = (e: Entry) => repo.isItself(e);
    for await (const e of scan(Buffer.from(path.resolve(dir)), { prune })) yield toManifestEntry(e);
  })();
  return merge(readManifest(repo.manifestDir(snap.id)), live, false);
}

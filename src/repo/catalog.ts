// What a repository holds, read-only: its snapshots, and what one of them holds. The library's
// `snapshots` and `ls`; nothing here takes the lock (a backup may run meanwhile: it adds a
// snapshot only by writing its record last).
import { readManifest, type ManifestEntry } from './manifest.js';
import { Repository, type SnapshotRecord } from './repository.js';

/**
 * The snapshot records of the repository at repoPath, oldest first; one that cannot be read is
 * left out and goes to `onDamaged` (an Error with code SNAPSHOT_INVALID and its path).
 */
export function listSnapshots(repoPath: string, onDamaged?: (err: Error & { code: string }) => void): SnapshotRecord[] {
  return Repository.open(repoPath).snapshots(onDamaged);
}

/**
 * Every entry a snapshot holds (`ref`: its id, a unique part of it, or 'latest'), in scan order
 * (paths as base64 of their bytes), read from its manifest in bounded memory.
 */
export function* snapshotEntries(repoPath: string, ref: string): Generator<ManifestEntry> {
  const repo = Repository.open(repoPath);
  yield* readManifest(repo.manifestDir(repo.resolve(ref).id));
}

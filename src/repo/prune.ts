// `prune`: removes the snapshots a retention policy does not keep, per (host, source). Safe when
// interrupted at any point: a snapshot's record goes first (durably), and only then its manifest
// and tree. Trees are hard-link snapshots, so removing one never takes data that a kept snapshot
// references. A removed snapshot's manifest stays while a kept snapshot's manifest is a delta
// against it. What an interrupted prune (or an abandoned backup) left behind is an orphan:
// removed by the next prune.
import path from 'node:path';
import { applyRetention, isEmptyPolicy, type RetentionPolicy } from './retention.js';
import { Repository, removeTree, repoError, type SnapshotRecord } from './repository.js';

export interface PruneOptions {
  dryRun?: boolean;
  /** Only snapshots of these sources (absolute paths). */
  sources?: string[];
  breakLock?: boolean;
  onRemove?: (s: SnapshotRecord) => void;
}

export interface PruneResult {
  keep: SnapshotRecord[];
  remove: SnapshotRecord[];
  orphansRemoved: string[];
}

export function prune(repoPath: string, policy: RetentionPolicy, o: PruneOptions = {}): PruneResult {
  if (isEmptyPolicy(policy)) {
    throw repoError('USAGE', 'prune needs at least one --keep-* rule (it would otherwise remove every snapshot)');
  }
  const repo = Repository.open(repoPath);
  const unlock = o.dryRun ? () => {} : repo.lock('prune', o.breakLock);
  try {
    const groups = new Map<string, SnapshotRecord[]>();
    for (const s of repo.snapshots()) {
      if (o.sources !== undefined && !o.sources.includes(s.source)) continue;
      const k = `${s.host}\0${s.source}`;
      groups.set(k, [...(groups.get(k) ?? []), s]);
    }
    const result: PruneResult = { keep: [], remove: [], orphansRemoved: [] };
    for (const group of groups.values()) {
      const { keep, remove } = applyRetention(group, policy);
      result.keep.push(...keep);
      result.remove.push(...remove);
    }
    if (o.dryRun) return result;
    for (const s of result.remove) {
      repo.removeSnapshotRecord(s.id);
      removeTree(repo.tree(s.id));
      o.onRemove?.(s);
    }
    // Manifests go with the orphans: those a kept snapshot's deltas still apply to stay.
    const removed = new Set(result.remove.map((s) => s.id));
    for (const orphan of repo.orphans()) {
      removeTree(orphan);
      if (!removed.has(path.basename(orphan))) result.orphansRemoved.push(orphan);
    }
    return result;
  } finally {
    unlock();
  }
}

// sync --delete: removes what the destination holds and the source does not, by walking both
// trees at once. Both scans yield parents first and siblings in byte order, so one merge pass
// in bounded memory finds every extraneous entry. Entries the filter excludes are never
// visited on either side, so they are protected from deletion (as rsync does by default).
import { rmSync } from 'node:fs';
import type { Entry } from '../model/entry.js';
import { scan } from '../scan/index.js';
import type { ScanError } from '../scan/index.js';
import type { TreeRoot } from '../targets/posix/paths.js';

/** Order of the scan: component by component, bytewise, an ancestor before its descendants. */
export function compareScanOrder(a: Buffer, b: Buffer): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    if (a[i] !== b[i]) {
      // A '/' ends a component: the shorter component sorts first.
      if (a[i] === 0x2f) return -1;
      if (b[i] === 0x2f) return 1;
      return a[i]! - b[i]!;
    }
  }
  return a.length - b.length;
}

const isUnder = (p: Buffer, dir: Buffer) =>
  p.length > dir.length && p[dir.length] === 0x2f && p.subarray(0, dir.length).equals(dir);

export interface DeleteOptions {
  prune?: (e: Entry) => boolean;
  dryRun?: boolean;
  signal?: AbortSignal;
  /** Called for each extraneous entry, before it is removed (or instead, in a dry run). */
  onDelete?: (path: Buffer, type: Entry['type']) => void;
  onError?: (path: Buffer, err: unknown) => void;
}

export async function deleteExtraneous(srcRoot: Buffer, dstRoot: TreeRoot, o: DeleteOptions = {}): Promise<number> {
  let removed: Buffer | undefined; // the last directory removed: its subtree is skipped
  const quiet = (e: ScanError) => {
    if (!(removed && (e.path.equals(removed) || isUnder(e.path, removed)))) o.onError?.(e.path, e);
  };
  // A source directory that could not be read hides its children: nothing under it is deleted.
  const unreadable: Buffer[] = [];
  const src = scan(srcRoot, { prune: o.prune, signal: o.signal, onError: (e) => unreadable.push(e.path) });
  const dst = scan(dstRoot.root, { prune: o.prune, signal: o.signal, onError: quiet });
  let a = await src.next();
  let count = 0;
  for await (const d of dst) {
    if (removed && isUnder(d.path, removed)) continue;
    while (!a.done && compareScanOrder(a.value.path, d.path) < 0) a = await src.next();
    if (!a.done && a.value.path.equals(d.path)) continue;
    if (unreadable.some((u) => d.path.equals(u) || isUnder(d.path, u))) continue;
    o.onDelete?.(d.path, d.type);
    count++;
    if (d.type === 'dir') removed = d.path;
    if (o.dryRun) continue;
    try {
      rmSync(dstRoot.path(d.path), { recursive: true, force: true });
    } catch (err) {
      o.onError?.(d.path, err);
    }
  }
  await src.return(undefined as never);
  return count;
}

// sync --delete: removes what the destination holds and the source does not, by walking both
// trees at once. Both scans yield parents first and siblings in byte order, so one merge pass
// in bounded memory finds every extraneous entry. Entries the filter excludes are never
// visited on either side, so they are protected from deletion (as rsync does by default), in
// an extraneous directory too: its other entries go, and it stays while it holds them.
import { rmSync, rmdirSync } from 'node:fs';
import { entryType, type Entry } from '../model/entry.js';
import { native } from '../native.js';
import { displayPath, StripemoverError } from '../errors.js';
import { scan } from '../scan/index.js';
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

const EMPTY = Buffer.alloc(0);
const SLASH = Buffer.from('/');

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
  // Only a directory can have extraneous entries: a source that is a file, or a symlink (never
  // followed), would make everything in the destination extraneous.
  const typeOf = (root: Buffer) => {
    try {
      return entryType(native.stat(root).mode);
    } catch {
      return undefined; // missing (a dry run's destination): nothing there to delete
    }
  };
  const [srcType, dstType] = [typeOf(srcRoot), typeOf(dstRoot.root)];
  if (dstType === undefined) return 0;
  for (const [root, type] of [
    [srcRoot, srcType],
    [dstRoot.root, dstType],
  ] as const) {
    if (type === 'dir') continue;
    const shown = displayPath(root);
    const why = `--delete: nothing deleted: '${shown}' is not a directory (a symlink to one is not followed: give '${shown}/.')`;
    o.onError?.(EMPTY, new StripemoverError('DELETE_REFUSED', why, shown));
    return 0;
  }
  const remover = new Remover(dstRoot, o);
  // A source directory that could not be read hides its children: nothing under it is deleted.
  const unreadable: Buffer[] = [];
  const src = scan(srcRoot, { prune: o.prune, signal: o.signal, onError: (e) => unreadable.push(e.path) });
  const dst = scan(dstRoot.root, {
    prune: remover.watching((e) => e.path),
    signal: o.signal,
    onError: (e) => o.onError?.(e.path, e),
  });
  let a = await src.next();
  for await (const d of dst) {
    remover.reach(d.path);
    while (!a.done && compareScanOrder(a.value.path, d.path) < 0) a = await src.next();
    if (!a.done && a.value.path.equals(d.path)) continue;
    if (unreadable.some((u) => d.path.equals(u) || isUnder(d.path, u))) continue;
    remover.remove(d);
  }
  remover.reach(undefined);
  await src.return(undefined as never);
  return remover.removed;
}

/**
 * Makes room at `rel` in the destination for an entry of another type (a file where it holds a
 * directory), as --delete would: the directory and its entries go, except what the filter
 * protects (and the directories holding that). Returns how many entries went.
 */
export async function removeExtraneous(dstRoot: TreeRoot, rel: Buffer, o: DeleteOptions = {}): Promise<number> {
  const remover = new Remover(dstRoot, o);
  // Paths from the root of the transfer, where the filter's rules are anchored.
  const fromRoot = (p: Buffer) => (p.length === 0 ? rel : Buffer.concat([rel, SLASH, p]));
  const below = scan(dstRoot.path(rel), {
    prune: remover.watching((e) => fromRoot(e.path)),
    signal: o.signal,
    onError: (err) => o.onError?.(fromRoot(err.path), err),
  });
  for await (const e of below) {
    const path = fromRoot(e.path);
    remover.reach(path);
    remover.remove({ path, type: e.type });
  }
  remover.reach(undefined);
  return remover.removed;
}

/**
 * Removes extraneous entries met in walk order: a file at once, a directory once the walk has
 * left it, when its entries are gone (it stays when it holds entries the filter protects, as
 * rsync leaves it).
 */
class Remover {
  /** Extraneous directories on the walk's current path; kept: one holds a protected entry. */
  private readonly open: { path: Buffer; kept: boolean }[] = [];
  removed = 0;

  constructor(
    private readonly dstRoot: TreeRoot,
    private readonly o: DeleteOptions,
  ) {}

  /**
   * The walk's prune: the filter's, noting each protected entry (at the path `at` gives, from
   * the root of the transfer), so that the directories holding it are known to stay, in a dry
   * run too.
   */
  watching(at: (e: Entry) => Buffer): ((e: Entry) => boolean) | undefined {
    const prune = this.o.prune;
    if (!prune) return undefined;
    return (e) => {
      const path = at(e);
      if (!prune(path === e.path ? e : { ...e, path })) return false;
      this.reach(path);
      for (const d of this.open) d.kept = true; // all hold it, once the walk is there
      return true;
    };
  }

  /** The walk is at `next` (undefined: it is over): the directories it has left are removed. */
  reach(next: Buffer | undefined): void {
    while (this.open.length > 0 && !(next && isUnder(next, this.open.at(-1)!.path))) {
      const { path: dir, kept } = this.open.pop()!;
      if (kept) continue;
      try {
        if (!this.o.dryRun) rmdirSync(this.dstRoot.path(dir));
        this.removed++;
        this.o.onDelete?.(dir, 'dir'); // after its entries, and only if it went
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'ENOTEMPTY' && code !== 'EEXIST') this.o.onError?.(dir, err); // else: holds protected entries
      }
    }
  }

  remove(e: Pick<Entry, 'path' | 'type'>): void {
    if (e.type === 'dir') {
      this.open.push({ path: e.path, kept: false }); // its entries come next in the walk
      return;
    }
    this.o.onDelete?.(e.path, e.type);
    this.removed++;
    if (this.o.dryRun) return;
    try {
      rmSync(this.dstRoot.path(e.path), { force: true });
    } catch (err) {
      this.o.onError?.(e.path, err);
    }
  }
}

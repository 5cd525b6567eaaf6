// `restore`: a snapshot, or the paths and globs chosen in it, back to any directory. The copy
// engine moves the bytes from the snapshot's tree (metadata, hard links, holes, xattrs, and on a
// Lustre destination the recorded layouts come with them); every restored file is then checked
// against the manifest's digests, and one that does not match is removed and reported. The
// manifest is read first and refused whole if any path in it could lead outside the destination.
import { rmSync } from 'node:fs';
import { copy, type CopyFailure, type CopySummary, type FileResult } from '../engine/copy.js';
import { wildmatch } from '../filter/rules.js';
import type { Entry } from '../model/entry.js';
import { displayPath } from '../errors.js';
import { mismatch } from './digests.js';
import { ManifestCursor, manifestError, manifestPath, readManifest, type ManifestEntry } from './manifest.js';
import { joinPath, reachedPath, TreeRoot } from '../targets/posix/paths.js';
import { native } from '../native.js';
import { Repository, repoError, type SnapshotRecord } from './repository.js';

export interface RestoreOptions {
  /**
   * Paths or globs (rsync wildmatch, `**` crosses '/') inside the snapshot; default everything.
   * A string stands for its UTF-8 bytes; a Buffer for any bytes (a non-UTF-8 name).
   */
  paths?: (string | Buffer)[];
  dryRun?: boolean;
  threads?: number;
  /** On the repository's own file system, restored files are reflink clones of the snapshot's (default true). */
  reflink?: boolean;
  signal?: AbortSignal;
  onProgress?: (p: CopySummary) => void;
  onError?: (f: CopyFailure) => void;
  onChange?: (c: { action: string; path: string }) => void;
}

export interface RestoreResult {
  snapshot: SnapshotRecord;
  summary: CopySummary;
  /** Files restored and checked (copied, or already there and matching). */
  restoredFiles: number;
  /** Files refused because their bytes do not match the manifest (removed from the destination). */
  failures: CopyFailure[];
}

/**
 * Whether a path is chosen: it matches, is below a match, or is a directory above one. Paths
 * and patterns are compared as bytes (each as a latin1 string). `matched` says which patterns
 * chose something other than a directory above what they match.
 */
export function selection(
  patterns: (string | Buffer)[] | undefined,
): { chosen: (p: Buffer, isDir: boolean) => boolean; unmatched: () => string[] } | undefined {
  if (!patterns || patterns.length === 0) return undefined;
  const bytes = patterns.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : p));
  const globs = bytes.map((b) => b.toString('latin1').replace(/^\/+|\/+$/g, ''));
  const hit = new Set<number>();
  const chosen = (p: Buffer, isDir: boolean) => {
    const text = p.toString('latin1');
    if (text === '') return true;
    return globs.some((g, k) => {
      if (wildmatch(g, text)) return (hit.add(k), true);
      // Below a chosen path: every prefix of the path that ends a component.
      for (let i = text.indexOf('/'); i >= 0; i = text.indexOf('/', i + 1))
        if (wildmatch(g, text.slice(0, i))) return (hit.add(k), true);
      // A directory above what may match: its components match the pattern's first ones.
      if (!isDir) return false;
      const gp = g.split('/');
      const tp = text.split('/');
      if (gp.some((c) => c.includes('**'))) return true;
      return tp.length < gp.length && tp.every((c, i) => wildmatch(gp[i]!, c));
    });
  };
  return { chosen, unmatched: () => bytes.filter((_, k) => !hit.has(k)).map((b) => displayPath(b)) };
}

export async function restore(
  repoPath: string,
  ref: string,
  target: string,
  o: RestoreOptions = {},
): Promise<RestoreResult> {
  const repo = Repository.open(repoPath);
  const snapshot = repo.resolve(ref);
  // Where the target leads, resolved as the check resolves it: what is checked is what is written.
  const targetRoot = reachedPath(target);
  if (repo.holds(target)) {
    const shown = displayPath(targetRoot);
    throw repoError('TARGET_IN_REPOSITORY', `restore into ${shown}: inside the repository ${repo.root}`, shown);
  }
  const picked = selection(o.paths);
  const chosen = (e: ManifestEntry) => !picked || picked.chosen(manifestPath(e), e.type === 'dir');
  const manifestDir = repo.manifestDir(snapshot.id);
  // A first pass over the manifest, streamed: a damaged or hostile one is refused whole before
  // anything is written. It keeps the hard-linked inodes only (as the engine does): the rest of
  // the manifest is read again in step with the copy, so memory does not grow with the snapshot.
  const links = hardLinks(manifestDir, chosen);
  const dst = new TreeRoot(targetRoot); // paths of any depth, as the engine writes them
  const tree = new TreeRoot(Buffer.from(repo.tree(snapshot.id)));
  const failures: CopyFailure[] = [];
  const record = (failure: CopyFailure) => {
    failures.push(failure);
    o.onError?.(failure);
  };
  const report = (p: Buffer, code: string, message: string) => {
    const shown = displayPath(joinPath(targetRoot, p));
    record({ path: shown, error: { code, message: `${shown}: ${message}` } });
  };
  // A file whose bytes are refused is removed at once; a hard-linked one once the engine is done
  // (it links the later names to it meanwhile, and those go with it, each named once). A second
  // Ctrl-C can leave that one: a rerun checks it again.
  let refusedFiles = 0;
  const refusedLinked: Buffer[] = [];
  const refusedKeys = new Set<string>(); // base64 paths of refusedLinked
  const refuse = (e: Entry, code: string, message: string) => {
    refusedFiles++;
    if (wanted.get(e)!.nlink > 1) {
      refusedLinked.push(e.path);
      refusedKeys.add(e.path.toString('base64'));
    } else rmSync(dst.path(e.path), { force: true });
    report(e.path, code, message);
  };
  // A --path that chose nothing is a mistake to say, not an empty success.
  for (const pattern of picked?.unmatched() ?? []) {
    const message = `--path '${pattern}': nothing in snapshot ${snapshot.id} matches`;
    record({ path: pattern, error: { code: 'PATH_NOT_IN_SNAPSHOT', message } });
  }
  const missing = (e: ManifestEntry) =>
    report(
      manifestPath(e),
      'MISSING_FROM_SNAPSHOT',
      `a ${e.type} in the manifest but not in the snapshot tree: not restored`,
    );
  // The manifest, not the tree, says what is restored: the tree's entries meet its records in
  // scan order. One the manifest lacks (put in the tree since, by hand or by an attacker: a
  // device node, a symlink out) is left out and named; a record the tree lacks is named.
  const cursor = new ManifestCursor(manifestDir, (r) => {
    const e = r.entry;
    if (e.path !== '' && chosen(e)) missing(e);
  });
  const wanted = new WeakMap<Entry, ManifestEntry>(); // files in flight, with the digests to match
  const admit = (e: Entry) => {
    const m = cursor.lookup(e.path)?.entry;
    if (m?.type !== e.type) {
      if (m) missing(m);
      report(e.path, 'NOT_IN_MANIFEST', `a ${e.type} in the snapshot tree but not in its manifest: not restored`);
      return false;
    }
    if (m.type === 'symlink' && native.readlink(tree.path(e.path)).toString('base64') !== m.target) {
      report(e.path, 'SYMLINK_MISMATCH', 'its target in the snapshot tree differs from the manifest: not restored');
      return false;
    }
    if (m.type === 'file') {
      // A later name restored without its first name carries the first name's digests.
      const leader = m.link === undefined ? m : links.leaders.get(m.link)!; // checked by hardLinks()
      wanted.set(e, { ...m, hash: leader.hash, units: leader.units, layout: leader.layout });
    }
    return true;
  };
  const checks: Promise<void>[] = [];
  const handle = copy(tree.root, targetRoot, {
    filter: picked && { excludes: (e: Entry) => !picked.chosen(e.path, e.type === 'dir') },
    admit,
    hardLinked: (e) => wanted.get(e)!.nlink > 1,
    // A file already there (restored by an interrupted run, or over the original) is kept only
    // if its bytes are the manifest's; else it is restored again.
    checksum: true,
    matches: async (e, there) => (await mismatch(there, wanted.get(e)!)) === undefined,
    dryRun: o.dryRun,
    threads: o.threads,
    reflink: o.reflink,
    signal: o.signal,
  });
  handle.on('file', (r: FileResult) => {
    if (r.outcome === 'skipped') return; // already there, and checked by matches()
    const want = wanted.get(r.entry)!;
    const restored = dst.path(r.entry.path);
    // The engine's digest is of the bytes it copied: compare when it hashed the file the same way.
    if (r.digest !== undefined && want.hash !== undefined) {
      if (r.digest !== want.hash) refuse(r.entry, 'DIGEST_MISMATCH', `XXH64 ${r.digest}, manifest ${want.hash}`);
      return;
    }
    checks.push(
      mismatch(restored, want).then((why) => {
        if (why) refuse(r.entry, 'DIGEST_MISMATCH', why);
      }),
    );
  });
  if (o.onError) handle.on('error-record', o.onError);
  if (o.onProgress) handle.on('progress', o.onProgress);
  if (o.onChange) handle.on('change', o.onChange);
  let summary: CopySummary;
  try {
    summary = await handle.done;
    await Promise.all(checks);
    if (!summary.interrupted) cursor.finish(); // the records after the tree's last entry
    // Every name of a refused inode goes.
    if (!o.dryRun && !summary.interrupted) {
      for (const all of links.names.values()) {
        if (!all.some((n) => refusedKeys.has(n))) continue;
        for (const n of all.filter((n) => !refusedKeys.has(n))) {
          const later = Buffer.from(n, 'base64');
          rmSync(dst.path(later), { force: true });
          report(later, 'DIGEST_MISMATCH', 'a hard link to a refused file');
        }
      }
    }
  } finally {
    for (const p of refusedLinked) rmSync(dst.path(p), { force: true });
    dst.close();
    tree.close();
  }
  return {
    snapshot,
    summary,
    restoredFiles: summary.files + summary.skipped - refusedFiles,
    failures: [...summary.failures, ...failures],
  };
}

type Digests = Pick<ManifestEntry, 'hash' | 'units' | 'layout'>;

/**
 * Hard-linked files of the manifest: each inode's first name's digests (a later name restored
 * alone carries them), and the chosen names of each (all go if its bytes are refused). Reading
 * it checks every entry's path and digest chain.
 */
function hardLinks(
  dir: string,
  chosen: (e: ManifestEntry) => boolean,
): { leaders: Map<string, Digests>; names: Map<string, string[]> } {
  const leaders = new Map<string, Digests>();
  const names = new Map<string, string[]>();
  for (const e of readManifest(dir)) {
    const here = chosen(e); // also marks the patterns that chose something
    if (e.type !== 'file' || (e.nlink <= 1 && e.link === undefined)) continue;
    const first = e.link ?? e.path;
    if (e.link === undefined) leaders.set(e.path, { hash: e.hash, units: e.units, layout: e.layout });
    else if (!leaders.has(e.link)) throw manifestError(dir, `'${e.link}' is not the first name of a hard-linked file`);
    if (here) names.set(first, [...(names.get(first) ?? []), e.path]);
  }
  return { leaders, names };
}

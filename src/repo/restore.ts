// `restore`: a snapshot, or the paths and globs chosen in it, back to any directory. The copy
// engine moves the bytes from the snapshot's tree (metadata, hard links, holes, xattrs, and on a
// Lustre destination the recorded layouts come with them); every restored file is then checked
// against the manifest's digests, and one that does not match is removed and reported. The
// manifest is read first and refused whole if any path in it could lead outside the destination.
import { rmSync } from 'node:fs';
import path from 'node:path';
import { copy, type CopyFailure, type CopySummary, type FileResult } from '../engine/copy.js';
import { wildmatch } from '../filter/rules.js';
import { entryType, type Entry } from '../model/entry.js';
import { displayPath } from '../errors.js';
import { mismatch } from './digests.js';
import { manifestPath, readManifest, type ManifestEntry } from './manifest.js';
import { joinPath, TreeRoot } from '../targets/posix/paths.js';
import { native } from '../native.js';
import { Repository, type SnapshotRecord } from './repository.js';

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
  const picked = selection(o.paths);
  const chosen = picked?.chosen;
  // The files of the selection, by path. Reading the whole manifest first also refuses a
  // damaged or hostile one before anything is written.
  const files = new Map<string, ManifestEntry>();
  // Hard links: a later name restored without its first name carries the first name's digest;
  // the names of each inode, to remove them all if its bytes are refused.
  const leaders = new Map<string, ManifestEntry>();
  const names = new Map<string, string[]>();
  const symlinks = new Map<string, string>(); // path -> target, both base64
  // What the selection restores, by path: whatever is still here once the engine is done was not.
  const expected = new Map<string, ManifestEntry['type']>();
  for (const e of readManifest(repo.manifestDir(snapshot.id))) {
    const chosenHere = !chosen || chosen(manifestPath(e), e.type === 'dir');
    if (chosenHere && e.path !== '') expected.set(e.path, e.type);
    if (e.type === 'symlink' && chosenHere && e.target !== undefined) symlinks.set(e.path, e.target);
    if (e.type !== 'file') continue;
    if (e.link === undefined && e.nlink > 1) leaders.set(e.path, e);
    if (!chosenHere) continue;
    const leader = e.link === undefined ? e : leaders.get(e.link);
    if (!leader) continue;
    files.set(e.path, { ...e, hash: leader.hash, units: leader.units, layout: leader.layout });
    if (leader.nlink > 1) names.set(leader.path, [...(names.get(leader.path) ?? []), e.path]);
  }
  const targetRoot = Buffer.from(path.resolve(target));
  const dst = new TreeRoot(targetRoot); // paths of any depth, as the engine writes them
  const failures: CopyFailure[] = [];
  const refused = new Set<string>(); // base64 paths
  const record = (failure: CopyFailure) => {
    failures.push(failure);
    o.onError?.(failure);
  };
  const report = (p: Buffer, code: string, message: string) => {
    const shown = displayPath(joinPath(targetRoot, p));
    record({ path: shown, error: { code, message: `${shown}: ${message}` } });
  };
  const refuse = (p: Buffer, code: string, message: string) => {
    rmSync(dst.path(p), { force: true });
    refused.add(p.toString('base64'));
    report(p, code, message);
  };
  // A --path that chose nothing is a mistake to say, not an empty success.
  for (const pattern of picked?.unmatched() ?? []) {
    const message = `--path '${pattern}': nothing in snapshot ${snapshot.id} matches`;
    record({ path: pattern, error: { code: 'PATH_NOT_IN_SNAPSHOT', message } });
  }
  const checks: Promise<void>[] = [];
  // The manifest, not the tree, says what is restored: anything else in the tree (put there
  // since, by hand or by an attacker: a device node, a symlink out) is left out and named.
  const tree = new TreeRoot(Buffer.from(repo.tree(snapshot.id)));
  const strangers = new Set<string>(); // base64 paths
  const ofTree = (e: Entry) => {
    try {
      const st = native.stat(tree.path(e.path));
      return st.ino === e.ino && st.dev === e.dev; // the filter sees the destination's entries too
    } catch {
      return false;
    }
  };
  const excludes = (e: Entry) => {
    if (chosen && !chosen(e.path, e.type === 'dir')) return true;
    if (e.path.length === 0) return false;
    const key = e.path.toString('base64');
    if (expected.get(key) === e.type) return false;
    if (!strangers.has(key) && ofTree(e)) {
      strangers.add(key);
      report(e.path, 'NOT_IN_MANIFEST', `a ${e.type} in the snapshot tree but not in its manifest: not restored`);
    }
    return true;
  };
  const handle = copy(tree.root, target, {
    filter: { excludes },
    // A file already there is trusted only if its contents match (then checked below anyway).
    checksum: true,
    dryRun: o.dryRun,
    threads: o.threads,
    reflink: o.reflink,
    signal: o.signal,
  });
  handle.on('file', (r: FileResult) => {
    expected.delete(r.entry.path.toString('base64'));
    const want = files.get(r.entry.path.toString('base64'));
    if (!want)
      return refuse(r.entry.path, 'NOT_IN_MANIFEST', 'in the snapshot tree but not in its manifest: not restored');
    const restored = dst.path(r.entry.path);
    // The engine's digest is of the bytes it copied: compare when it hashed the file the same way.
    if (r.digest !== undefined && want.hash !== undefined) {
      if (r.digest !== want.hash) refuse(r.entry.path, 'DIGEST_MISMATCH', `XXH64 ${r.digest}, manifest ${want.hash}`);
      return;
    }
    checks.push(
      mismatch(restored, want).then((why) => {
        if (why) refuse(r.entry.path, 'DIGEST_MISMATCH', why);
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
    if (!o.dryRun && !summary.interrupted) {
      // Every name of a refused inode goes: the engine linked the later names to it meanwhile.
      for (const all of names.values()) {
        if (!all.some((n) => refused.has(n))) continue;
        for (const n of all) {
          if (!refused.has(n)) refuse(Buffer.from(n, 'base64'), 'DIGEST_MISMATCH', 'a hard link to a refused file');
        }
      }
      // Symlinks: the tree's target must be the one recorded.
      for (const [p, want] of symlinks) {
        let got: string | undefined;
        try {
          got = native.readlink(dst.path(Buffer.from(p, 'base64'))).toString('base64');
        } catch {
          continue; // not restored (an error the engine reported), or outside the selection
        }
        if (got !== want) refuse(Buffer.from(p, 'base64'), 'SYMLINK_MISMATCH', 'its target differs from the manifest');
      }
      // What the manifest has and the destination did not get, that no error above explains: it
      // is missing from the snapshot's tree (verify says so too). Later names of a hard link
      // are made without a 'file' event (see below).
      const explained = new Set(summary.failures.map((f) => f.path));
      const inode = (p: Buffer) => {
        try {
          const st = native.stat(dst.path(p));
          return { type: entryType(st.mode), ino: st.ino };
        } catch {
          return undefined;
        }
      };
      for (const [key, type] of expected) {
        const rel = Buffer.from(key, 'base64');
        if (refused.has(key) || strangers.has(key) || explained.has(displayPath(joinPath(tree.root, rel)))) continue;
        const got = inode(rel);
        // A later name is there if it is the inode of another name of its group that was
        // restored (its first name may be outside the selection).
        const first = files.get(key)?.link;
        const linked = () =>
          (names.get(first!) ?? []).some((n) => n !== key && inode(Buffer.from(n, 'base64'))?.ino === got!.ino);
        if (got?.type === type && (type !== 'file' || (first !== undefined && linked()))) continue;
        report(rel, 'MISSING_FROM_SNAPSHOT', `a ${type} in the manifest but not in the snapshot tree: not restored`);
      }
    }
  } finally {
    dst.close();
    tree.close();
  }
  const restoredFiles = summary.files - [...refused].filter((p) => files.has(p)).length;
  return { snapshot, summary, restoredFiles, failures: [...summary.failures, ...failures] };
}

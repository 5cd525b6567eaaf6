// `verify`: proves a repository restorable. Structure: every snapshot record reads, every
// manifest chunk matches its XXH64 and holds only safe paths, every entry's data is in the
// snapshot's tree (type and size as recorded), and the tree holds nothing the manifest lacks. --read-data also hashes the data and compares
// with the manifest; --read-data-subset=n/m or =p% reads a deterministic share of the files, so
// a large repository is covered over several days (1/7 .. 7/7).
import { native } from '../native.js';
import type { Entry } from '../model/entry.js';
import { scan } from '../scan/index.js';
import { TreeRoot } from '../targets/posix/paths.js';
import { mismatch } from './digests.js';
import { manifestPath, readManifest } from './manifest.js';
import { Repository } from './repository.js';
import { pairs } from './diff.js';
import { DestinationIndex } from '../engine/destination.js';

export interface VerifyOptions {
  readData?: boolean;
  /** 'n/m' (the n-th of m parts) or 'p%' (a share); implies readData. */
  subset?: string;
  onProblem?: (p: Problem) => void;
}

export interface Problem {
  snapshot?: string;
  path?: string;
  problem: string;
}

export interface VerifyResult {
  snapshots: number;
  entries: number;
  filesRead: number;
  bytesRead: number;
  problems: Problem[];
}

/** The predicate choosing which paths a subset reads; throws a RangeError on a bad spec. */
export function subsetOf(spec: string | undefined): (p: Buffer) => boolean {
  if (spec === undefined) return () => true;
  const part = /^(\d+)\/(\d+)$/.exec(spec);
  const share = /^(\d+(?:\.\d+)?)%$/.exec(spec);
  // The low 32 bits of the path's XXH64: stable across runs and machines.
  const bucket = (p: Buffer) => parseInt(new native.Xxh64().update(p).digest().slice(8), 16);
  if (part) {
    const [n, m] = [Number(part[1]), Number(part[2])];
    if (m < 1 || n < 1 || n > m) throw new RangeError(`--read-data-subset ${spec}: want n/m with 1 <= n <= m`);
    return (p) => bucket(p) % m === n - 1;
  }
  if (share) {
    const pct = Number(share[1]);
    if (pct <= 0 || pct > 100) throw new RangeError(`--read-data-subset ${spec}: want a share in (0, 100]%`);
    return (p) => bucket(p) % 10000 < pct * 100;
  }
  throw new RangeError(`--read-data-subset ${spec}: want n/m (e.g. 1/7) or p% (e.g. 5%)`);
}

export async function verify(repoPath: string, o: VerifyOptions = {}): Promise<VerifyResult> {
  const repo = Repository.open(repoPath);
  const readData = o.readData || o.subset !== undefined;
  const chosen = subsetOf(o.subset);
  const r: VerifyResult = { snapshots: 0, entries: 0, filesRead: 0, bytesRead: 0, problems: [] };
  // Snapshots share unchanged files as hard links, always at the same path as in their parent
  // (the backup links from the parent's tree): a file whose inode is the parent's at that path
  // was read with the parent, when the parent came first in this run. The parent's tree is walked
  // in step with the snapshot's, so memory does not grow with the files read. Inodes found
  // damaged (few) are kept, to name every snapshot that holds one.
  const verified = new Set<string>(); // snapshot ids whose data was read in this run
  const damaged = new Set<string>(); // dev:ino
  const report = (p: Problem) => {
    r.problems.push(p);
    o.onProblem?.(p);
  };
  const records = repo.snapshots((err) => report({ path: err.path, problem: err.message }));
  for (const snap of records) {
    r.snapshots++;
    const tree = Buffer.from(repo.tree(snap.id));
    const root = new TreeRoot(tree);
    const problem = (rel: Buffer, problem: string) =>
      report({ snapshot: snap.id, path: rel.toString('utf8') || '.', problem });
    const parentTree =
      readData && snap.parent !== undefined && verified.has(snap.parent)
        ? DestinationIndex.open(Buffer.from(repo.tree(snap.parent)))
        : undefined;
    try {
      let entries = 0;
      const firstNames = new Map<string, bigint>(); // first names of hard-linked inodes -> inode
      // One walk of the manifest and the tree together: what each holds at each path.
      const scanned = scan(tree, { onError: (err) => problem(err.path, err.message) });
      for await (const { path: rel, a: e, b: st } of pairs(
        readManifest(repo.manifestDir(snap.id)),
        scanned,
        manifestPath,
        (x: Entry) => x.path,
      )) {
        if (!e) {
          problem(rel, "in the snapshot's tree but not in its manifest"); // restore would refuse it
          continue;
        }
        entries++;
        if (!st) {
          problem(rel, "missing from the snapshot's tree");
          continue;
        }
        if (st.type !== e.type) {
          problem(rel, `is a ${st.type}, recorded a ${e.type}`);
          continue;
        }
        if (e.type === 'symlink') {
          if (e.target !== undefined && native.readlink(root.path(rel)).toString('base64') !== e.target) {
            problem(rel, 'symlink target differs from the manifest');
          }
          continue;
        }
        if (e.type !== 'file') continue;
        if (e.link !== undefined) {
          if (firstNames.get(e.link) !== st.ino)
            problem(rel, 'not the same file as the name it is recorded as a hard link to');
          continue;
        }
        if (e.nlink > 1) firstNames.set(e.path, st.ino);
        if (st.size !== e.size) {
          problem(rel, `size ${st.size}, recorded ${e.size}`);
          continue;
        }
        if (!readData || !chosen(rel)) continue;
        const inode = `${st.dev}:${st.ino}`;
        const before = await parentTree?.lookup(rel);
        if (before?.ino === st.ino && before.dev === st.dev) {
          if (damaged.has(inode)) problem(rel, `data damaged: the same file as in snapshot ${snap.parent}`);
          continue;
        }
        const why = await mismatch(root.path(rel), e);
        r.filesRead++;
        r.bytesRead += e.size;
        if (why) {
          damaged.add(inode);
          problem(rel, `data damaged: ${why}`);
        }
      }
      if (readData) verified.add(snap.id);
      if (entries !== snap.manifest.entries) {
        report({
          snapshot: snap.id,
          problem: `manifest holds ${entries} entries, the record says ${snap.manifest.entries}`,
        });
      }
      r.entries += entries;
    } catch (err) {
      report({ snapshot: snap.id, problem: (err as Error).message });
    } finally {
      root.close();
      await parentTree?.close();
    }
  }
  for (const orphan of repo.orphans()) {
    report({ path: orphan, problem: 'belongs to no snapshot (an interrupted prune or backup): prune removes it' });
  }
  return r;
}

// `verify`: proves a repository restorable. Structure: every snapshot record reads, every
// manifest chunk matches its XXH64 and holds only safe paths, every entry's data is in the
// snapshot's tree (type and size as recorded), and the tree holds nothing the manifest lacks. --read-data also hashes the data and compares
// with the manifest; --read-data-subset=n/m or =p% reads a deterministic share of the files, so
// a large repository is covered over several days (1/7 .. 7/7).
import { native } from '../native.js';
import { entryType } from '../model/entry.js';
import { mismatch } from './digests.js';
import { readManifest } from './manifest.js';
import { Repository } from './repository.js';
import { diffLive } from './diff.js';

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
  // Snapshots share unchanged files as hard links: each inode's bytes are read once per run.
  // (One string per inode read: memory grows with the files read, not with snapshots.)
  const read = new Set<string>();
  const report = (p: Problem) => {
    r.problems.push(p);
    o.onProblem?.(p);
  };
  let records;
  try {
    records = repo.snapshots();
  } catch (err) {
    report({ problem: (err as Error).message });
    return r;
  }
  for (const snap of records) {
    r.snapshots++;
    const tree = repo.tree(snap.id);
    try {
      let entries = 0;
      const firstNames = new Map<string, bigint>(); // first names of hard-linked inodes -> inode
      for (const e of readManifest(repo.manifestDir(snap.id))) {
        entries++;
        const rel = Buffer.from(e.path, 'base64');
        const where = Buffer.concat([Buffer.from(tree), rel.length ? Buffer.from('/') : Buffer.alloc(0), rel]);
        const shown = rel.toString('utf8') || '.';
        let st;
        try {
          st = native.stat(where);
        } catch (err) {
          report({
            snapshot: snap.id,
            path: shown,
            problem: `missing from the snapshot's tree (${(err as { code?: string }).code})`,
          });
          continue;
        }
        if (entryType(st.mode) !== e.type) {
          report({ snapshot: snap.id, path: shown, problem: `is a ${entryType(st.mode)}, recorded a ${e.type}` });
          continue;
        }
        if (e.type === 'symlink') {
          if (e.target !== undefined && native.readlink(where).toString('base64') !== e.target) {
            report({ snapshot: snap.id, path: shown, problem: 'symlink target differs from the manifest' });
          }
          continue;
        }
        if (e.type !== 'file') continue;
        if (e.link !== undefined) {
          if (firstNames.get(e.link) !== st.ino) {
            report({
              snapshot: snap.id,
              path: shown,
              problem: 'not the same file as the name it is recorded as a hard link to',
            });
          }
          continue;
        }
        if (e.nlink > 1) firstNames.set(e.path, st.ino);
        if (st.size !== e.size) {
          report({ snapshot: snap.id, path: shown, problem: `size ${st.size}, recorded ${e.size}` });
          continue;
        }
        if (!readData || !chosen(rel)) continue;
        const inode = `${st.dev}:${st.ino}`;
        if (read.has(inode)) continue;
        read.add(inode);
        const why = await mismatch(where, e);
        r.filesRead++;
        r.bytesRead += e.size;
        if (why) report({ snapshot: snap.id, path: shown, problem: `data damaged: ${why}` });
      }
      // What the tree holds beyond its manifest: restore would refuse it, so say so now.
      for await (const d of diffLive(repoPath, snap.id, tree)) {
        if (d.change === 'added') {
          report({
            snapshot: snap.id,
            path: d.path.toString('utf8'),
            problem: "in the snapshot's tree but not in its manifest",
          });
        }
      }
      if (entries !== snap.manifest.entries) {
        report({
          snapshot: snap.id,
          problem: `manifest holds ${entries} entries, the record says ${snap.manifest.entries}`,
        });
      }
      r.entries += entries;
    } catch (err) {
      report({ snapshot: snap.id, problem: (err as Error).message });
    }
  }
  for (const orphan of repo.orphans()) {
    report({ path: orphan, problem: 'belongs to no snapshot (an interrupted prune or backup): prune removes it' });
  }
  return r;
}

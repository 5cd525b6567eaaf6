// Resume state of one large file copied in units: beside its temporary file, a journal whose
// first line names the source version, how the file was cut and whether the temporary file
// began as a clone of an earlier version, then one line per unit made durable (its first
// offset and digest).
// A rerun that finds both, for the same source version, copies only the missing chunks.
import { closeSync, existsSync, fdatasyncSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import type { Entry } from '../model/entry.js';
import { native } from '../native.js';

/** Where a large file copied to `path` from `source` is written before its rename, and the journal beside it. */
export function chunkFiles(path: Buffer, source: Buffer): { tmp: Buffer; journal: Buffer } {
  const tmp = native.tempPath(path, source);
  return { tmp, journal: Buffer.concat([tmp, Buffer.from('.journal')]) };
}

interface Header {
  /** 2: written after the temporary file was made, and says whether it is a clone. Any other journal starts afresh. */
  v: 2;
  size: number;
  mtimeNs: string;
  ctimeNs: string;
  /** How the file is cut into units (e.g. 'stripes/67108864'): a rerun cut otherwise starts afresh. */
  cut: string;
  /** The temporary file began as a clone: what is not yet copied holds the earlier version's bytes, not zeros. */
  cloned: boolean;
}

export class ChunkJournal {
  private constructor(
    private readonly file: Buffer,
    private readonly fd: number,
    /** Offsets of chunks already durable in the temporary file, with their digests. */
    readonly done: Map<number, string>,
    private readonly durable: boolean,
    /** The temporary file began as a clone (see Header.cloned): its chunks must write every byte that differs. */
    readonly cloned: boolean,
  ) {}

  /**
   * Opens the journal of a large file: resumes it when it matches this source version and the
   * temporary file still exists; otherwise calls `create` to make the temporary file afresh
   * (it says whether it made a clone) and only then starts the journal, so a journal always
   * describes a temporary file that exists. A clone's journal is resumed only if `clones`
   * allows it.
   */
  static open(
    file: Buffer,
    tmpExists: boolean,
    e: Entry,
    cut: string,
    durable: boolean,
    create: () => boolean,
    clones = true,
  ): ChunkJournal {
    const header = (cloned: boolean): string =>
      JSON.stringify({
        v: 2,
        size: e.size,
        mtimeNs: String(e.mtimeNs),
        ctimeNs: String(e.ctimeNs),
        cut,
        cloned,
      } satisfies Header);
    const done = new Map<number, string>();
    if (tmpExists && existsSync(file)) {
      const [first, ...rest] = readFileSync(file, 'utf8').split('\n');
      const cloned = clones && first === header(true);
      if (cloned || first === header(false)) {
        // Only whole lines count: a line cut by a crash is ignored, and its chunk copied again.
        for (const line of rest.slice(0, -1)) {
          const [offset, digest] = line.split(' ');
          if (offset !== undefined) done.set(Number(offset), digest ?? '');
        }
        return new ChunkJournal(file, openSync(file, 'a'), done, durable, cloned);
      }
    }
    // No journal while the file is made: one left from before must not outlive it.
    rmSync(file, { force: true });
    const cloned = create();
    const fd = openSync(file, 'w');
    writeSync(fd, header(cloned) + '\n');
    if (durable) fdatasyncSync(fd);
    return new ChunkJournal(file, fd, done, durable, cloned);
  }

  /** Records a chunk whose data is already durable. */
  record(offset: number, digest = ''): void {
    writeSync(this.fd, `${offset} ${digest}\n`);
    if (this.durable) fdatasyncSync(this.fd);
    this.done.set(offset, digest);
  }

  close(remove: boolean): void {
    closeSync(this.fd);
    if (remove) rmSync(this.file, { force: true });
  }
}

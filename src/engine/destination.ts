// What the destination already holds, read the way the source is: a scan of the destination
// walked in step with the source's (both yield parents first and siblings in byte order), so
// "is this file already there?" costs no syscall of its own and memory stays bounded. (verify
// walks a parent snapshot's tree with it the same way.)
import { existsSync } from 'node:fs';
import type { Entry } from '../model/entry.js';
import { scan } from '../scan/index.js';
import { compareScanOrder } from './delete.js';

export class DestinationIndex {
  private readonly entries: AsyncGenerator<Entry, unknown>;
  private current: IteratorResult<Entry, unknown> | undefined;

  private constructor(root: Buffer, prune?: (e: Entry) => boolean) {
    // Errors are expected and harmless here: directories this run is creating meanwhile.
    this.entries = scan(root, { prune, onError: () => {} });
  }

  /** An index of dstRoot, or undefined when there is nothing there yet (a first copy). */
  static open(dstRoot: Buffer, prune?: (e: Entry) => boolean): DestinationIndex | undefined {
    return existsSync(dstRoot) ? new DestinationIndex(dstRoot, prune) : undefined;
  }

  /** The destination's entry at path; paths must be asked for in scan order. */
  async lookup(path: Buffer): Promise<Entry | undefined> {
    this.current ??= await this.entries.next();
    while (!this.current.done && compareScanOrder(this.current.value.path, path) < 0) {
      this.current = await this.entries.next();
    }
    return !this.current.done && this.current.value.path.equals(path) ? this.current.value : undefined;
  }

  async close(): Promise<void> {
    await this.entries.return(undefined);
  }
}

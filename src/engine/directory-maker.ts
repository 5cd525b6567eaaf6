// Directories of a copy, made off the main thread. A mkdir costs 0.1–0.2 ms of kernel time
// (a new inode, a directory block, a journal entry): 10^3 of them were a sixth of a snapshot's
// main thread. They go to libuv's pool in batches, one batch at a time and in scan order, so a
// parent is always made before its children; what queues while a batch runs forms the next.
// Whatever puts something into a directory waits for ready() first.
import { native } from '../native.js';
import { PathList } from '../targets/posix/paths.js';

export class DirectoryMaker<T> {
  private queued: T[] = [];
  private paths = new PathList();
  /** Batches started and not finished. */
  private inFlight = 0;
  /** Settles once every batch started so far is done; never rejects. */
  private tail: Promise<void> = Promise.resolve();
  private thrown: { error: unknown } | undefined;

  /** `onFailed` hears of each directory that could not be made (called before ready() settles). */
  constructor(
    private readonly mode: number,
    private readonly onFailed: (item: T, error: unknown) => void,
  ) {}

  /** The first error onFailed threw (the others were still heard): for the caller to end its run with. */
  get failure(): { error: unknown } | undefined {
    return this.thrown;
  }

  /** Queues `path` to be made (a usable path: its parents are made or queued before it). */
  add(item: T, path: Uint8Array): void {
    this.queued.push(item);
    this.paths.add(path);
    if (this.inFlight === 0) this.start();
  }

  /** Settles when every directory added so far is made, or has failed. Never rejects. */
  ready(): Promise<void> {
    if (this.queued.length > 0) this.start();
    return this.tail;
  }

  private start(): void {
    const items = this.queued;
    const paths = this.paths.take();
    this.queued = [];
    this.paths = new PathList();
    this.inFlight++;
    const failed = (item: T, error: unknown) => {
      try {
        this.onFailed(item, error);
      } catch (err) {
        this.thrown ??= { error: err };
      }
    };
    this.tail = this.tail
      .then(() => native.makeDirsAsync(paths, this.mode))
      .then(
        (failures) => failures.forEach((f) => failed(items[f.index]!, f.error)),
        (err: unknown) => items.forEach((item) => failed(item, err)),
      )
      .finally(() => {
        // What queued while this ran forms the next batch (unless ready() already started it).
        if (--this.inFlight === 0 && this.queued.length > 0) this.start();
      });
  }
}

// --bwlimit: a token bucket in shared memory. Every copy in every worker takes the bytes it is
// about to read from it (in C++, see CopyOptions.budget); this side refills it on a timer.
export class Throttle {
  /** Element 0: bytes that may still be read; negative means readers wait. */
  readonly budget = new BigInt64Array(new SharedArrayBuffer(8));
  private readonly timer: NodeJS.Timeout;

  constructor(bytesPerSecond: number, tickMs = 50) {
    if (!(bytesPerSecond > 0))
      throw new TypeError(`bwlimit must be a positive number of bytes per second, not ${bytesPerSecond}`);
    const perTick = BigInt(Math.max(1, Math.round((bytesPerSecond * tickMs) / 1000)));
    // At most two ticks' worth may accumulate: an idle pause (workers starting, a slow scan)
    // must not buy a burst later. A read larger than that simply runs the bucket into debt.
    const cap = perTick * 2n;
    Atomics.store(this.budget, 0, perTick);
    // Only ever added to, never overwritten: readers subtract concurrently.
    this.timer = setInterval(() => {
      if (Atomics.load(this.budget, 0) < cap) Atomics.add(this.budget, 0, perTick);
    }, tickMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

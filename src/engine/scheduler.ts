// One queue per stream (a device today, an OST with Lustre), a cap of running units per stream
// and a global cap, and rotation across streams so that none idles while another is swamped.
// submit() waits while too much is queued: the scan can never run ahead of the copy unboundedly.

export interface SchedulerOptions {
  /** Units running at once, over all streams. */
  maxRunning: number;
  /** Units running at once on one stream. */
  maxPerStream: number;
  /** Units waiting in all queues before submit() blocks. */
  maxQueued: number;
}

export class StreamScheduler<U extends { stream: string }, R> {
  private readonly queues = new Map<string, U[]>();
  private readonly running = new Map<string, number>();
  private runningTotal = 0;
  private queued = 0;
  /** The stream a unit was last started on: the next search starts after it. */
  private last: string | undefined;
  private readonly waiters: (() => void)[] = [];
  private readonly pending = new Set<Promise<void>>();
  private failure: { error: unknown } | undefined;
  private stopped = false;

  constructor(
    private readonly options: SchedulerOptions,
    private readonly execute: (unit: U) => Promise<R>,
    private readonly onDone: (unit: U, result: R | undefined, error: unknown) => void,
  ) {}

  async submit(unit: U): Promise<void> {
    while (this.queued >= this.options.maxQueued) await new Promise<void>((r) => this.waiters.push(r));
    const q = this.queues.get(unit.stream) ?? [];
    if (!this.queues.has(unit.stream)) this.queues.set(unit.stream, q);
    q.push(unit);
    this.queued++;
    this.pump();
  }

  /** Starts nothing more and waits for what runs to end, whatever it ends with (for an error path). */
  async settle(): Promise<void> {
    this.stopped = true;
    await Promise.allSettled([...this.pending]);
  }

  /** Resolves once every submitted unit has finished; rejects with onDone's first error, if any. */
  async drain(): Promise<void> {
    while (this.pending.size > 0 || (this.queued > 0 && !this.stopped)) await Promise.race(this.pending);
    if (this.failure) throw this.failure.error;
  }

  /**
   * Starts queued units while there is room: each time on the stream with work that has the
   * fewest units running (an idle OST before a busy one), ties broken round-robin from where the
   * last start was, so equal streams take turns.
   */
  private pump(): void {
    const streams = [...this.queues.keys()];
    while (!this.stopped && this.runningTotal < this.options.maxRunning) {
      let best: string | undefined;
      let bestRunning = Infinity;
      const from = this.last === undefined ? 0 : streams.indexOf(this.last) + 1;
      for (let i = 0; i < streams.length; i++) {
        const stream = streams[(from + i) % streams.length]!;
        const running = this.running.get(stream) ?? 0;
        if (this.queues.get(stream)!.length === 0 || running >= this.options.maxPerStream) continue;
        if (running < bestRunning) [best, bestRunning] = [stream, running];
      }
      if (best === undefined) return;
      this.last = best;
      this.start(this.queues.get(best)!.shift()!);
    }
  }

  private start(unit: U): void {
    this.queued--;
    this.waiters.shift()?.();
    this.runningTotal++;
    this.running.set(unit.stream, (this.running.get(unit.stream) ?? 0) + 1);
    // onDone may throw (e.g. a journal it writes fails): kept for drain(), never left to
    // become an unhandled rejection while the run goes on.
    const done = (r: R | undefined, e: unknown) => {
      try {
        this.onDone(unit, r, e);
      } catch (error) {
        this.failure ??= { error };
      }
    };
    let running: Promise<R>;
    try {
      running = this.execute(unit);
    } catch (error) {
      running = Promise.reject(error); // e.g. a path that cannot be made: the unit fails, not the run
    }
    const p: Promise<void> = running
      .then(
        (r) => done(r, undefined),
        (e) => done(undefined, e ?? new Error('unit failed')),
      )
      .finally(() => {
        this.pending.delete(p);
        this.runningTotal--;
        this.running.set(unit.stream, this.running.get(unit.stream)! - 1);
        this.pump();
      });
    this.pending.add(p);
  }
}

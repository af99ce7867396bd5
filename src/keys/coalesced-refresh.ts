/** Time as the refresh sees it; tests drive it by hand instead of waiting on the wall clock. */
export interface RefreshClock {
  /** Milliseconds, monotonic enough for spacing runs. */
  now(): number;
  sleep(ms: number): Promise<void>;
}

export const WALL_CLOCK: RefreshClock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

/**
 * One refresh shared by every caller that asks for fresh data, started at most once per
 * `minIntervalMs`. Each run starts after every caller waiting on it has asked, so what it reads
 * includes whatever was written before they asked (a key created by the CLI a moment ago). A caller
 * that arrives while a run is already under way waits for the next one, which starts once the
 * interval since the previous start has passed: however many callers there are, the source is read
 * at most once per interval.
 */
export class CoalescedRefresh {
  private lastStartedAt = Number.NEGATIVE_INFINITY;
  /** The run callers join now: scheduled, not started yet. */
  private next: Promise<void> | undefined;

  constructor(
    private readonly run: () => Promise<void>,
    private readonly minIntervalMs: number,
    private readonly clock: RefreshClock = WALL_CLOCK,
  ) {}

  /** Resolves when a run that started after this call has finished; rejects with that run's error. */
  request(): Promise<void> {
    if (this.next) return this.next;
    const delay = Math.max(0, this.lastStartedAt + this.minIntervalMs - this.clock.now());
    const next = (delay > 0 ? this.clock.sleep(delay) : Promise.resolve()).then(() => {
      // From here on, a caller needs a later run: this one may already have read past its write.
      this.next = undefined;
      this.lastStartedAt = this.clock.now();
      return this.run();
    });
    this.next = next;
    return next;
  }
}

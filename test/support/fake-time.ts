/**
 * A hand-driven clock with timers, for code that takes `{ now, sleep }`: nothing waits on the wall
 * clock. `sleep` resolves when `advance` or `run` moves the clock to its due time; concurrent sleepers
 * wake in due order (then in the order they slept), each followed by the work it lets run.
 */
export interface FakeTime {
  now(): number;
  sleep(ms: number): Promise<void>;
  /** Moves the clock forward by `ms`, waking every sleeper due by then. */
  advance(ms: number): Promise<void>;
  /** Wakes every sleeper, moving the clock as far as the last one is due. */
  run(): Promise<void>;
  /** Lets every callback already queued (promises, I/O, immediates) run. */
  settle(): Promise<void>;
}

export function fakeTime(start = 0): FakeTime {
  let now = start;
  let seq = 0;
  const timers: { at: number; seq: number; wake: () => void }[] = [];
  const settle = () => new Promise<void>((resolve) => setImmediate(resolve));
  const wakeFirstDueBy = async (limit: number): Promise<boolean> => {
    let first = -1;
    timers.forEach((t, i) => {
      const f = timers[first];
      if (t.at <= limit && (f === undefined || t.at < f.at || (t.at === f.at && t.seq < f.seq))) first = i;
    });
    if (first < 0) return false;
    const [timer] = timers.splice(first, 1) as [(typeof timers)[number]];
    now = Math.max(now, timer.at);
    timer.wake();
    await settle();
    return true;
  };
  return {
    now: () => now,
    sleep: (ms) =>
      new Promise<void>((resolve) => {
        timers.push({ at: now + Math.max(0, ms), seq: seq++, wake: resolve });
      }),
    async advance(ms) {
      const target = now + ms;
      await settle();
      while (await wakeFirstDueBy(target));
      now = target;
      await settle();
    },
    async run() {
      await settle();
      while (await wakeFirstDueBy(Number.POSITIVE_INFINITY));
    },
    settle,
  };
}

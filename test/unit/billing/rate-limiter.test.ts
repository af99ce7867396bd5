import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createRateLimiter } from '../../../src/billing/stripe/rate-limiter.ts';

/**
 * A fake clock with timers: `sleep` resolves when `run` moves the clock to its due time. Concurrent
 * sleepers wake in due order (then in the order they slept).
 */
function fakeTime() {
  let now = 0;
  let seq = 0;
  const timers: { at: number; seq: number; wake: () => void }[] = [];
  const settle = () => new Promise<void>((resolve) => setImmediate(resolve));
  return {
    now: () => now,
    sleep: (ms: number) =>
      new Promise<void>((resolve) => {
        timers.push({ at: now + Math.max(0, ms), seq: seq++, wake: resolve });
      }),
    async run(): Promise<void> {
      await settle();
      while (timers.length > 0) {
        let first = 0;
        timers.forEach((t, i) => {
          const f = timers[first]!;
          if (t.at < f.at || (t.at === f.at && t.seq < f.seq)) first = i;
        });
        const [timer] = timers.splice(first, 1) as [(typeof timers)[number]];
        now = Math.max(now, timer.at);
        timer.wake();
        await settle();
      }
    },
  };
}

/** The most acquisitions inside any half-open window [t, t + 1000). */
function maxInAnyWindow(times: readonly number[]): number {
  const sorted = [...times].sort((a, b) => a - b);
  let best = 0;
  let start = 0;
  for (let end = 0; end < sorted.length; end++) {
    while (sorted[end]! - sorted[start]! >= 1000) start++;
    best = Math.max(best, end - start + 1);
  }
  return best;
}

async function acquireAt(
  arrivals: readonly number[],
  perSecond: number,
  options: { guardMs?: number; oversleep?: () => number } = {},
): Promise<number[]> {
  const time = fakeTime();
  // `oversleep`: a busy event loop wakes a sleeper late.
  const sleep = (ms: number) => time.sleep(ms + (options.oversleep?.() ?? 0));
  const limiter = createRateLimiter(perSecond, { now: time.now, sleep, guardMs: options.guardMs ?? 0 });
  const acquired: number[] = [];
  const done = arrivals.map(async (at) => {
    await time.sleep(at);
    await limiter.acquire();
    acquired.push(time.now());
  });
  await time.run();
  await Promise.all(done);
  return acquired;
}

describe('createRateLimiter', () => {
  it('spaces a burst evenly: 1000 / N ms apart', async () => {
    const acquired = await acquireAt([0, 0, 0, 0, 0], 4);
    expect(acquired).toEqual([0, 250, 500, 750, 1000]);
  });

  it('counts actual starts in a window widened by the guard', async () => {
    const acquired = await acquireAt([0, 0, 0, 0, 0], 4, { guardMs: 20 });
    expect(acquired).toEqual([0, 250, 500, 750, 1020]);
  });

  it('never lets N + 1 calls start in 1000 ms when sleepers wake late and together', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 0, max: 3000 }), { minLength: 1, maxLength: 80 }),
        fc.integer({ min: 1, max: 20 }),
        fc.array(fc.integer({ min: 0, max: 60 }), { minLength: 1, maxLength: 10 }),
        async (arrivals, perSecond, lateness) => {
          let i = 0;
          const acquired = await acquireAt(arrivals, perSecond, {
            oversleep: () => lateness[i++ % lateness.length]!,
          });
          expect(maxInAnyWindow(acquired)).toBeLessThanOrEqual(perSecond);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('lets a call through at once when the last slot is long past', async () => {
    const acquired = await acquireAt([0, 5000, 5001], 2);
    expect(acquired).toEqual([0, 5000, 5500]);
  });

  it('never lets more than N calls start in any 1000 ms window, whatever the arrivals', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 40 }),
        fc.array(fc.integer({ min: 0, max: 5000 }), { minLength: 1, maxLength: 150 }),
        async (perSecond, arrivals) => {
          const acquired = await acquireAt(arrivals, perSecond);
          expect(acquired).toHaveLength(arrivals.length);
          expect(maxInAnyWindow(acquired)).toBeLessThanOrEqual(perSecond);
        },
      ),
      { numRuns: 120 },
    );
  });

  it('holds the bound for rates that do not divide 1000 (float spacing) and for fractional rates', async () => {
    for (const perSecond of [3, 7, 9, 11, 13, 30, 2.5, 0.5]) {
      const acquired = await acquireAt(
        Array.from({ length: 200 }, () => 0),
        perSecond,
      );
      expect(maxInAnyWindow(acquired)).toBeLessThanOrEqual(Math.max(1, Math.floor(perSecond)));
    }
  });

  it('reaches at least 0.95 N calls per second when saturated', async () => {
    for (const perSecond of [1, 7, 25, 100, 1000]) {
      const calls = perSecond * (perSecond >= 1000 ? 3 : 10);
      const acquired = await acquireAt(
        Array.from({ length: calls }, () => 0),
        perSecond,
      );
      const spanSeconds = (Math.max(...acquired) - Math.min(...acquired)) / 1000;
      const rate = (calls - 1) / spanSeconds;
      expect(rate).toBeGreaterThanOrEqual(0.95 * perSecond);
      expect(maxInAnyWindow(acquired)).toBeLessThanOrEqual(perSecond);
    }
  });

  it('refuses a rate that is not a positive number', () => {
    expect(() => createRateLimiter(0)).toThrow(RangeError);
    expect(() => createRateLimiter(Number.NaN)).toThrow(RangeError);
  });
});

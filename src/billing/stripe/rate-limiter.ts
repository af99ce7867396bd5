import { sleepMs } from './retry.ts';

/**
 * A client-side rate limit on calls to Stripe: never more than `perSecond` calls start in any window
 * of 1000 ms, and a caller that keeps asking gets that rate.
 *
 * Each `acquire` reserves the next free slot, `max(now, previous slot + 1000 / perSecond)`, and waits
 * for it: calls leave evenly spaced instead of in bursts (Stripe counts per second, and a burst at the
 * end of one second plus one at the start of the next would break a per-window limit). Slots are
 * rounded up to whole milliseconds, and a guard on the slot `floor(perSecond)` reservations back
 * (`≥ it + 1000 ms`) makes the bound hold exactly, whatever floating point does to the spacing. A
 * fractional rate therefore gives `floor(perSecond)` calls per window (at least 1).
 *
 * Slots are handed out in call order (first come, first served). The limiter is per process: several
 * replicas share Stripe's limit, so give each a share of it.
 */
export interface RateLimiter {
  /** Resolves when the caller may start one call. */
  acquire(): Promise<void>;
}

interface RateLimiterDeps {
  /** Milliseconds; Date.now by default. */
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  /**
   * Extra width of the window the actual starts are counted in (default 60 ms). Calls leave evenly
   * spaced, but a busy event loop can wake several late and send them together, and the network can
   * bunch them further (bench:sync saw up to 50 ms): Stripe counts at its edge. 60 ms keeps a 1000/s limit at most 943/s at ours.
   */
  guardMs?: number;
}

export function createRateLimiter(perSecond: number, deps: RateLimiterDeps = {}): RateLimiter {
  if (!(perSecond > 0) || !Number.isFinite(perSecond)) {
    throw new RangeError(`perSecond must be a positive number, got ${perSecond}`);
  }
  const now = deps.now ?? Date.now;
  const sleep = deps.sleep ?? sleepMs;
  const spacingMs = 1000 / perSecond;
  const windowMs = 1000 + (deps.guardMs ?? 60);
  const perWindow = Math.max(1, Math.floor(perSecond));
  /** The last `perWindow` reserved slots, as a ring. */
  const recent: number[] = [];
  let next = 0;
  let last = Number.NEGATIVE_INFINITY;
  /** The last `perWindow` actual starts, as a ring: the bound is checked on these, not on the plan. */
  const started: number[] = [];
  let nextStart = 0;

  return {
    async acquire() {
      const oldest = recent.length === perWindow ? recent[next]! : Number.NEGATIVE_INFINITY;
      const slot = Math.max(now(), last + spacingMs, oldest + 1000);
      last = slot;
      recent[next] = slot;
      next = (next + 1) % perWindow;
      const wait = Math.ceil(slot - now());
      if (wait > 0) await sleep(wait);
      // A caller woken late must not start inside a window that already holds perWindow starts.
      for (;;) {
        const t = now();
        const oldestStart = started.length === perWindow ? started[nextStart]! : Number.NEGATIVE_INFINITY;
        if (t >= oldestStart + windowMs) {
          started[nextStart] = t;
          nextStart = (nextStart + 1) % perWindow;
          return;
        }
        await sleep(Math.ceil(oldestStart + windowMs - t));
      }
    },
  };
}

import { sleepMs } from './retry.ts';

/**
 * A client-side rate limit on calls to Stripe: never more than `perSecond` calls reach Stripe in any
 * window of 1000 ms, as Stripe counts them (when a request reaches it), and a caller that keeps asking
 * gets close to that rate.
 *
 * What the limiter cannot see is when a request reaches Stripe: after it is sent, and before its
 * response is back, but anywhere in between (a busy event loop, the network and the receiver's own
 * loop can delay one request more than the next, and requests sent apart then arrive together). So a
 * call holds its place in the window from the moment it is admitted until 1000 ms after it finished
 * (`acquire` resolves with the `done` to call when the response arrived or the call failed): a new call
 * starts only while fewer than `floor(perSecond)` calls are in flight or finished less than 1000 ms ago.
 * Whatever each request's delay, two calls `perSecond` apart then arrive at least 1000 ms apart: the
 * later one was sent (so arrived) no earlier than 1000 ms after the earlier one's response (so after
 * its arrival). The price is the round trip: a saturated limiter runs at `perSecond × 1000 ÷ (1000 +
 * round trip ms)`, e.g. 0.97 of the limit at a 30 ms round trip.
 *
 * Admitted calls are also spaced `1000 / perSecond` ms apart (up to 100 ms' worth may start together,
 * to catch up after a late wake-up), so they leave evenly instead of in a burst at the start of every
 * window. A fractional rate gives `floor(perSecond)` calls per window (at
 * least 1). Callers are admitted in call order (first come, first served). The limiter is per process:
 * several replicas share Stripe's limit, so give each a share of it.
 */
export interface RateLimiter {
  /** Resolves when the caller may start one call, with `done`: call it once the call has finished. */
  acquire(): Promise<CallDone>;
}

/** Marks an admitted call finished (response received, or failed). Calling it again does nothing. */
export type CallDone = () => void;

interface RateLimiterDeps {
  /** Milliseconds; Date.now by default. */
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

const WINDOW_MS = 1000;
/** How far ahead of the even spacing a call may start (the window still bounds every second). */
const BURST_MS = 100;

export function createRateLimiter(perSecond: number, deps: RateLimiterDeps = {}): RateLimiter {
  if (!(perSecond > 0) || !Number.isFinite(perSecond)) {
    throw new RangeError(`perSecond must be a positive number, got ${perSecond}`);
  }
  const now = deps.now ?? Date.now;
  const sleep = deps.sleep ?? sleepMs;
  const spacingMs = 1000 / perSecond;
  const perWindow = Math.max(1, Math.floor(perSecond));
  /** BURST_MS in whole calls: a slow rate stays evenly spaced. */
  const burstMs = Math.floor(BURST_MS / spacingMs) * spacingMs;
  /** Where the next call is due in the even spacing. */
  let due = Number.NEGATIVE_INFINITY;
  let inFlight = 0;
  /** When calls finished, ascending, from `head` on: the ones that may still share a window. */
  let finished: number[] = [];
  let head = 0;
  /** The admission waiting for a call to finish, if any. */
  let onFinish: (() => void) | undefined;
  /** Admissions run one after another, in call order. */
  let queue: Promise<unknown> = Promise.resolve();

  async function admit(): Promise<CallDone> {
    // Spacing as a virtual schedule (GCRA): a call may start up to BURST_MS ahead of its place in it,
    // so an event loop that wakes late starts the calls it owes together instead of one per wake-up
    // (one timer per call, on a loop busy for more than the spacing, was 0.6 of the limit in bench:sync).
    const early = Math.ceil(due - burstMs - now());
    if (early > 0) await sleep(early);
    due = Math.max(due, now()) + spacingMs;
    for (;;) {
      const t = now();
      while (head < finished.length && finished[head]! + WINDOW_MS <= t) head++;
      if (head > 1024 && head * 2 > finished.length) {
        finished = finished.slice(head);
        head = 0;
      }
      const recent = finished.length - head;
      /** How many of the calls that hold a place must leave the window before this one may start. */
      const excess = inFlight + recent - perWindow + 1;
      if (excess <= 0) break;
      if (recent >= excess) await sleep(Math.ceil(finished[head + excess - 1]! + WINDOW_MS - t));
      else await new Promise<void>((resolve) => (onFinish = resolve));
    }
    inFlight += 1;
    let over = false;
    return () => {
      if (over) return;
      over = true;
      inFlight -= 1;
      // Kept ascending even if the clock steps back: a later time only holds the place longer.
      finished.push(Math.max(now(), finished.at(-1) ?? Number.NEGATIVE_INFINITY));
      const wake = onFinish;
      onFinish = undefined;
      wake?.();
    };
  }

  return {
    acquire() {
      const turn = queue.then(admit);
      queue = turn.catch(() => undefined);
      return turn;
    },
  };
}

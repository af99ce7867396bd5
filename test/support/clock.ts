// Clocks for tests and benches. A test or bench pins the clock of the code it drives (the `now` options)
// and builds its data from that instant, so it gives the same answer on any date: the first hour of a
// month, 29 February and a year's end included (.ci/pinned-clocks runs them on those dates).

/**
 * Real milliseconds since the epoch, from the monotonic clock: the same in every thread, and not moved
 * by a pinned `Date` (test/support/pinned-date.mjs).
 */
export const realNowMs = (): number => performance.timeOrigin + performance.now();

/**
 * A clock that read `start` at the real time `since` (default: now) and moves on with real time: for
 * code whose revisions or sequences must keep increasing from one call to the next, as on a wall clock.
 * Two threads given the same `start` and `since` agree.
 */
export function runningClock(start: Date, since: number = realNowMs()): () => Date {
  return () => new Date(start.getTime() + Math.round(realNowMs() - since));
}

/** The instant in the environment variable `name` (ISO 8601), else `fallback`. */
export function instantFromEnv(name: string, fallback: string): Date {
  const text = process.env[name] ?? fallback;
  const instant = new Date(text);
  if (Number.isNaN(instant.getTime())) throw new Error(`${name} must be an ISO 8601 instant, got ${text}`);
  return instant;
}

/** 00:00 UTC of the `YYYY-MM-DD` day in the environment variable `name`, else of `fallback`. */
export function dayFromEnv(name: string, fallback: string): Date {
  const text = process.env[name] ?? fallback;
  const day = new Date(`${text}T00:00:00Z`);
  if (!/^\d{4}-\d{2}-\d{2}$/.test(text) || Number.isNaN(day.getTime()))
    throw new Error(`${name} must be a day YYYY-MM-DD, got ${text}`);
  return day;
}

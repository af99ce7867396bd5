import { UpstreamError } from '../../errors.ts';

/**
 * Retries of calls to an upstream (Stripe): exponential backoff with full jitter (AWS's "Exponential
 * Backoff And Jitter": delay = random × min(max, base × 2^(attempt − 1))), so callers that failed
 * together do not retry together.
 *
 * Only an UpstreamError (StripeCallError included) whose `retryable` is true is retried. The adapter
 * decides `retryable` once, at its edge: 429, 5xx, 409 and network errors, overridden by Stripe's
 * `Stripe-Should-Retry` header. Anything else (a plain Error, a bug, a 400) is rethrown at once.
 * Retrying is only safe because every call that changes something carries an idempotency key or a
 * meter event identifier: that is the caller's contract, not this file's.
 */

export interface RetryInfo {
  /** The attempt that just failed, 1-based. */
  attempt: number;
  /** How long we wait before the next attempt. */
  delayMs: number;
  error: UpstreamError;
}

export interface RetryOptions {
  /** Attempts in all, the first included (1 = no retry). */
  maxAttempts: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** A number in [0, 1); Math.random by default. */
  random?: () => number;
  sleep?: (ms: number) => Promise<void>;
  /** Called before each wait, for logs and metrics. */
  onRetry?: (info: RetryInfo) => void;
}

export const DEFAULT_BASE_DELAY_MS = 200;
export const DEFAULT_MAX_DELAY_MS = 10_000;

export const sleepMs = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Whether trying again may help: only upstream failures the adapter marked retryable. */
export function isRetryable(error: unknown): error is UpstreamError {
  return error instanceof UpstreamError && error.retryable;
}

/** The wait after failed attempt `attempt` (1-based): a whole number of ms in [0, min(max, base × 2^(attempt−1))]. */
export function backoffDelayMs(
  attempt: number,
  options: { baseDelayMs?: number; maxDelayMs?: number; random?: () => number } = {},
): number {
  const base = options.baseDelayMs ?? DEFAULT_BASE_DELAY_MS;
  const max = options.maxDelayMs ?? DEFAULT_MAX_DELAY_MS;
  const random = options.random ?? Math.random;
  const ceiling = Math.min(max, base * 2 ** (attempt - 1));
  return Math.floor(random() * (ceiling + 1));
}

/**
 * Runs `fn` until it succeeds, throws something not retryable, or `maxAttempts` attempts have failed;
 * then the last error is rethrown as it was (never wrapped, never turned into a default value).
 */
export async function withRetries<T>(fn: (attempt: number) => Promise<T>, options: RetryOptions): Promise<T> {
  if (!Number.isInteger(options.maxAttempts) || options.maxAttempts < 1) {
    throw new RangeError(`maxAttempts must be a positive integer, got ${options.maxAttempts}`);
  }
  const sleep = options.sleep ?? sleepMs;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (error) {
      if (!isRetryable(error) || attempt >= options.maxAttempts) throw error;
      const delayMs = backoffDelayMs(attempt, options);
      options.onRetry?.({ attempt, delayMs, error });
      await sleep(delayMs);
    }
  }
}

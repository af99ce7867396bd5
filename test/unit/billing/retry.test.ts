import { describe, expect, it } from 'vitest';
import { UpstreamError } from '../../../src/errors.ts';
import { StripeCallError } from '../../../src/billing/stripe/ports.ts';
import { backoffDelayMs, withRetries, type RetryInfo } from '../../../src/billing/stripe/retry.ts';

const retryable = (n = 0) =>
  new StripeCallError(`rate limited ${n}`, true, { status: 429, kind: 'rate_limited', shouldRetry: true });
const notRetryable = () =>
  new StripeCallError('bad request', false, { status: 400, kind: 'invalid_request' });

/** A sleep that records what it was asked and returns at once. */
function recordingSleep() {
  const delays: number[] = [];
  return { delays, sleep: async (ms: number) => void delays.push(ms) };
}

/** fn failing with the given errors in turn, then answering 'ok'. */
function failing(errors: Error[]) {
  let calls = 0;
  const fn = async (attempt: number) => {
    calls += 1;
    expect(attempt).toBe(calls);
    const error = errors[calls - 1];
    if (error) throw error;
    return 'ok';
  };
  return { fn, calls: () => calls };
}

describe('withRetries', () => {
  it('waits full-jitter exponential delays (random × min(max, base × 2^(n−1))) and returns the answer', async () => {
    const { delays, sleep } = recordingSleep();
    const { fn, calls } = failing([retryable(1), retryable(2), retryable(3)]);
    const seen: RetryInfo[] = [];
    const result = await withRetries(fn, {
      maxAttempts: 6,
      baseDelayMs: 200,
      random: () => 0.5,
      sleep,
      onRetry: (info) => seen.push(info),
    });
    expect(result).toBe('ok');
    expect(calls()).toBe(4);
    // floor(0.5 × (200+1)), floor(0.5 × (400+1)), floor(0.5 × (800+1))
    expect(delays).toEqual([100, 200, 400]);
    expect(seen.map((s) => [s.attempt, s.delayMs, s.error.message])).toEqual([
      [1, 100, 'stripe: rate limited 1'],
      [2, 200, 'stripe: rate limited 2'],
      [3, 400, 'stripe: rate limited 3'],
    ]);
  });

  it('caps the delay at maxDelayMs and spans [0, cap] with the random draw', async () => {
    expect(backoffDelayMs(10, { baseDelayMs: 200, maxDelayMs: 1000, random: () => 0.999999 })).toBe(1000);
    expect(backoffDelayMs(10, { baseDelayMs: 200, maxDelayMs: 1000, random: () => 0 })).toBe(0);
    expect(backoffDelayMs(1, { random: () => 0.999999 })).toBe(200);
    expect(backoffDelayMs(7, { random: () => 0.999999 })).toBe(10_000);
    const { delays, sleep } = recordingSleep();
    const { fn } = failing([retryable(), retryable(), retryable(), retryable()]);
    await withRetries(fn, {
      maxAttempts: 5,
      baseDelayMs: 300,
      maxDelayMs: 1000,
      random: () => 0.999999,
      sleep,
    });
    expect(delays).toEqual([300, 600, 1000, 1000]);
  });

  it('gives up after maxAttempts and rethrows the last error itself', async () => {
    const { delays, sleep } = recordingSleep();
    const errors = [retryable(1), retryable(2), retryable(3)];
    const { fn, calls } = failing([...errors, retryable(4)]);
    const thrown = await withRetries(fn, { maxAttempts: 3, random: () => 0, sleep }).catch((e: unknown) => e);
    expect(thrown).toBe(errors[2]);
    expect(calls()).toBe(3);
    expect(delays).toEqual([0, 0]);
  });

  it('never retries a non-retryable StripeCallError', async () => {
    const { delays, sleep } = recordingSleep();
    const error = notRetryable();
    const { fn, calls } = failing([error]);
    await expect(withRetries(fn, { maxAttempts: 5, sleep })).rejects.toBe(error);
    expect(calls()).toBe(1);
    expect(delays).toEqual([]);
  });

  it('never retries a plain Error, even one that looks transient', async () => {
    const { sleep, delays } = recordingSleep();
    const error = Object.assign(new Error('socket hang up'), { code: 'ECONNRESET', retryable: true });
    const { fn, calls } = failing([error]);
    await expect(withRetries(fn, { maxAttempts: 5, sleep })).rejects.toBe(error);
    expect(calls()).toBe(1);
    expect(delays).toEqual([]);
  });

  it('retries any retryable UpstreamError, not only Stripe ones', async () => {
    const { sleep } = recordingSleep();
    const { fn, calls } = failing([new UpstreamError('clickhouse', 'down', true)]);
    await expect(withRetries(fn, { maxAttempts: 2, sleep })).resolves.toBe('ok');
    expect(calls()).toBe(2);
  });

  it('honours Stripe-Should-Retry through retryable: a 500 marked should-retry false is not retried', async () => {
    const { sleep } = recordingSleep();
    const error = new StripeCallError('no', false, { status: 500, kind: 'server', shouldRetry: false });
    const { fn, calls } = failing([error]);
    await expect(withRetries(fn, { maxAttempts: 4, sleep })).rejects.toBe(error);
    expect(calls()).toBe(1);
  });

  it('with maxAttempts 1 makes one attempt; refuses nonsense', async () => {
    const { fn, calls } = failing([retryable()]);
    await expect(withRetries(fn, { maxAttempts: 1 })).rejects.toBeInstanceOf(StripeCallError);
    expect(calls()).toBe(1);
    await expect(withRetries(fn, { maxAttempts: 0 })).rejects.toBeInstanceOf(RangeError);
  });
});

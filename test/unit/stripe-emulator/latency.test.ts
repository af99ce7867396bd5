import { afterEach, describe, expect, it } from 'vitest';
import Stripe from 'stripe';
import { startStripeEmulator, type StripeEmulator } from '../../support/stripe-emulator/index.ts';

describe('stripe emulator: injected latency and real arrival times', () => {
  let emulator: StripeEmulator;
  afterEach(async () => emulator.stop());

  it('delays every response by latencyMs, adjustable with setLatency, and stamps real arrival times', async () => {
    emulator = await startStripeEmulator({ latencyMs: 60 });
    const stripe = new Stripe('sk_test_123', { ...emulator.stripeOptions(), maxNetworkRetries: 0 });
    const started = performance.now();
    await stripe.customers.create({ name: 'Slow' });
    expect(performance.now() - started).toBeGreaterThanOrEqual(55);
    // Concurrent calls wait side by side, not in a queue.
    const parallel = performance.now();
    await Promise.all(Array.from({ length: 5 }, () => stripe.customers.list()));
    expect(performance.now() - parallel).toBeLessThan(5 * 60);
    emulator.setLatency(0);
    const fast = performance.now();
    await stripe.customers.list();
    expect(performance.now() - fast).toBeLessThan(55);
    const times = emulator.requests.map((r) => r.receivedAtRealMs);
    expect(times).toHaveLength(7);
    expect(times.every((t, i) => i === 0 || t >= (times[i - 1] ?? 0))).toBe(true);
    expect(Math.abs((times[0] ?? 0) - Date.now())).toBeLessThan(10_000);
    expect(() => emulator.setLatency(-1)).toThrow(RangeError);
  });

  it('applies latency to faults too: a 429 arrives after the delay', async () => {
    emulator = await startStripeEmulator({ latencyMs: 40 });
    const stripe = new Stripe('sk_test_123', { ...emulator.stripeOptions(), maxNetworkRetries: 0 });
    emulator.faults.next('/v1/customers', 'rate_limit');
    const started = performance.now();
    await expect(stripe.customers.list()).rejects.toMatchObject({ statusCode: 429 });
    expect(performance.now() - started).toBeGreaterThanOrEqual(35);
  });
});

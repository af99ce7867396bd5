import { describe, expect, it } from 'vitest';
import { InMemoryStripe, stripeErrors } from '../../../src/billing/stripe/in-memory-stripe.ts';
import type { MeterEventCall } from '../../../src/billing/stripe/ports.ts';

const HOUR = 3_600_000;
const T0 = Date.UTC(2026, 10, 2, 12);

function fake() {
  let now = T0;
  const stripe = new InMemoryStripe(() => now);
  return { stripe, advance: (ms: number) => (now += ms) };
}

async function withMeter(stripe: InMemoryStripe, formula: 'sum' | 'last' = 'sum') {
  return stripe.createMeter({
    displayName: 'm',
    eventName: 'api_calls',
    formula,
    customerPayloadKey: 'stripe_customer_id',
    valuePayloadKey: 'value',
  });
}

const event = (identifier: string, value: bigint, at = T0 - HOUR): MeterEventCall => ({
  eventName: 'api_calls',
  identifier,
  timestamp: new Date(at),
  stripeCustomerId: 'cus_1',
  value,
});

describe('InMemoryStripe', () => {
  it('dedupes identifiers for 24 h, cancels within 24 h, and sums what is left', async () => {
    const { stripe, advance } = fake();
    const meter = await withMeter(stripe);
    expect(await stripe.send(event('a', 5n))).toBe('applied');
    expect(await stripe.send(event('a', 5n))).toBe('duplicate');
    expect(await stripe.send(event('b', 7n))).toBe('applied');
    expect(await stripe.summary(meter.id, 'cus_1', new Date(T0 - 2 * HOUR), new Date(T0))).toBe(12n);
    expect(await stripe.cancel('api_calls', 'a')).toBe('cancelled');
    expect(await stripe.cancel('api_calls', 'a')).toBe('already_cancelled');
    expect(await stripe.cancel('api_calls', 'zzz')).toBe('not_found');
    expect(await stripe.summary(meter.id, 'cus_1', new Date(T0 - 2 * HOUR), new Date(T0))).toBe(7n);
    advance(25 * HOUR);
    expect(await stripe.cancel('api_calls', 'b')).toBe('window_passed');
    expect(await stripe.send(event('a', 1n, T0))).toBe('applied');
  });

  it('takes stream batches, dropping repeated identifiers as Stripe does asynchronously', async () => {
    const { stripe } = fake();
    const meter = await withMeter(stripe, 'last');
    await stripe.sendBatch([event('x', 3n, T0 - 2 * HOUR), event('y', 9n, T0 - HOUR), event('x', 100n)]);
    expect(stripe.events.map((e) => [e.identifier, e.via])).toEqual([
      ['x', 'v2'],
      ['y', 'v2'],
    ]);
    expect(await stripe.summary(meter.id, 'cus_1', new Date(T0 - 3 * HOUR), new Date(T0))).toBe(9n);
  });

  it('refuses an event without an active meter as a non-retryable error', async () => {
    const { stripe } = fake();
    await expect(stripe.send(event('a', 1n))).rejects.toMatchObject({
      retryable: false,
      details: { code: 'meter_event_no_active_meter' },
    });
  });

  it('fails the next calls on demand, by operation, and optionally after applying', async () => {
    const { stripe } = fake();
    await withMeter(stripe);
    stripe.failNext(2, stripeErrors.rateLimited(), { operation: 'send' });
    await expect(stripe.listMeters()).resolves.toHaveLength(1);
    await expect(stripe.send(event('a', 1n))).rejects.toMatchObject({
      retryable: true,
      details: { status: 429 },
    });
    await expect(stripe.send(event('a', 1n))).rejects.toMatchObject({ retryable: true });
    expect(stripe.pendingFailures()).toBe(0);
    expect(await stripe.send(event('a', 1n))).toBe('applied');

    stripe.failNext(1, stripeErrors.network(), { afterApply: true });
    await expect(stripe.send(event('b', 1n))).rejects.toMatchObject({ details: { kind: 'network' } });
    expect(await stripe.send(event('b', 1n))).toBe('duplicate');
    expect(stripe.calls.filter((c) => c === 'send')).toHaveLength(5);
  });

  it('moves a lookup key to the new price (transfer_lookup_key) and finds prices by it', async () => {
    const { stripe } = fake();
    const meter = await withMeter(stripe);
    await stripe.createProduct({ id: 'bm_x', name: 'x' });
    const spec = {
      lookupKey: 'k',
      product: 'bm_x',
      currency: 'usd',
      meterId: meter.id,
      interval: 'month',
      usageType: 'metered',
      tiersMode: 'graduated' as const,
      tiers: [{ upTo: 'inf' as const, unitAmountDecimal: '1' }],
    };
    const first = await stripe.createPrice(spec);
    const second = await stripe.createPrice(spec);
    expect(await stripe.pricesByLookupKey(['k'])).toEqual([second]);
    expect(stripe.prices.get(first.id)?.lookupKey).toBeNull();
    await expect(stripe.createPrice({ ...spec, product: 'nope' })).rejects.toMatchObject({
      details: { status: 404, code: 'resource_missing' },
    });
    expect(await stripe.retrieveProduct('nope')).toBeUndefined();
  });
});

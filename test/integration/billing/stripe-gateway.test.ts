import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import Stripe from 'stripe';
import { startStripeEmulator, type StripeEmulator } from '../../support/stripe-emulator/index.ts';
import { StripeCallError, type MeterEventCall, type StripeMeter } from '../../../src/billing/stripe/ports.ts';
import {
  createStripeGateway,
  type StripeGatewayConfig,
  type StripeGatewayDeps,
} from '../../../src/adapters/stripe/stripe-gateway.ts';
import type { RetryInfo } from '../../../src/billing/stripe/retry.ts';

// The real gateway (stripe-node underneath) against the Stripe emulator: wire format, idempotency,
// error translation and the v2 session life cycle.

const HOUR = 3_600_000;
const MINUTE = 60_000;
const EVENT_NAME = 'api_calls';

let emulator: StripeEmulator;
let admin: Stripe;
let customerId: string;
let meter: StripeMeter;

function gateway(config: Partial<StripeGatewayConfig> = {}, deps: StripeGatewayDeps = {}) {
  return createStripeGateway(
    {
      secretKey: 'sk_test_gateway',
      api: { protocol: 'http', host: emulator.host, port: emulator.port },
      rateLimitPerSecond: 1000,
      maxAttempts: 1,
      timeoutMs: 5000,
      ...config,
    },
    deps,
  );
}

/** An hour that is closed and well inside Stripe's 35-day window. */
const hourStart = () => Math.floor(emulator.clock.now() / HOUR) * HOUR - 2 * HOUR;

const event = (identifier: string, value: bigint, atMs = hourStart()): MeterEventCall => ({
  eventName: EVENT_NAME,
  identifier,
  timestamp: new Date(atMs),
  stripeCustomerId: customerId,
  value,
});

const requestsTo = (path: string) => emulator.requests.filter((r) => r.path === path);

beforeEach(async () => {
  emulator = await startStripeEmulator();
  admin = new Stripe('sk_test_admin', { ...emulator.stripeOptions(), maxNetworkRetries: 0 });
  customerId = (await admin.customers.create({ email: 'acme@example.com' })).id;
  meter = await gateway().createMeter({
    displayName: 'API calls',
    eventName: EVENT_NAME,
    formula: 'sum',
    customerPayloadKey: 'stripe_customer_id',
    valuePayloadKey: 'value',
  });
});

afterEach(async () => emulator.stop());

describe('stripe gateway: v1 meter events', () => {
  it('sends identifier, whole-second timestamp and a decimal-string value, keyed by the identifier', async () => {
    const at = hourStart() + 1234;
    expect(await gateway().send(event('evt-1', 9_007_199_254_740_991n, at))).toBe('applied');
    const [request] = requestsTo('/v1/billing/meter_events');
    expect(request?.headers['idempotency-key']).toBe('evt-1');
    expect(request?.headers['stripe-version']).toBe('2026-10-28.endive');
    expect(request?.body).toEqual({
      event_name: EVENT_NAME,
      identifier: 'evt-1',
      timestamp: String(Math.floor(at / 1000)),
      payload: { stripe_customer_id: customerId, value: '9007199254740991' },
    });
  });

  it("answers 'duplicate' for an identifier Stripe already has, replayed or refused", async () => {
    const g = gateway();
    expect(await g.send(event('evt-1', 5n))).toBe('applied');
    // Same request again: Stripe replays the first answer (Idempotent-Replayed).
    expect(await g.send(event('evt-1', 5n))).toBe('duplicate');
    // Sent before under another idempotency key: Stripe refuses the identifier.
    await admin.billing.meterEvents.create({
      event_name: EVENT_NAME,
      identifier: 'evt-2',
      payload: { stripe_customer_id: customerId, value: '1' },
    });
    expect(await g.send(event('evt-2', 1n))).toBe('duplicate');
    expect(emulator.state.eventsFor(meter.id)).toHaveLength(2);
  });

  it('maps cancel outcomes: cancelled, already_cancelled, not_found, window_passed', async () => {
    const g = gateway();
    await g.send(event('evt-1', 5n));
    await g.send(event('evt-2', 5n));
    expect(await g.cancel(EVENT_NAME, 'evt-1')).toBe('cancelled');
    const [request] = requestsTo('/v1/billing/meter_event_adjustments');
    expect(request?.headers['idempotency-key']).toBe('cancel-evt-1');
    expect(request?.body).toEqual({
      event_name: EVENT_NAME,
      type: 'cancel',
      cancel: { identifier: 'evt-1' },
    });
    // The same cancel again replays its answer.
    expect(await g.cancel(EVENT_NAME, 'evt-1')).toBe('cancelled');
    expect(emulator.state.eventsFor(meter.id).map((e) => e.identifier)).toEqual(['evt-2']);

    await g.send(event('evt-3', 5n));
    await admin.billing.meterEventAdjustments.create({
      event_name: EVENT_NAME,
      type: 'cancel',
      cancel: { identifier: 'evt-3' },
    });
    expect(await g.cancel(EVENT_NAME, 'evt-3')).toBe('already_cancelled');
    expect(await g.cancel(EVENT_NAME, 'never-sent')).toBe('not_found');

    emulator.advanceClock(25 * HOUR);
    expect(await g.cancel(EVENT_NAME, 'evt-2')).toBe('window_passed');
  });

  it('surfaces a rate_limit fault as a retryable StripeCallError with shouldRetry true', async () => {
    emulator.faults.next('/v1/billing/meter_events', 'rate_limit');
    const error = await gateway()
      .send(event('evt-1', 1n))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StripeCallError);
    expect(error).toMatchObject({
      retryable: true,
      details: { status: 429, code: 'rate_limit', shouldRetry: true, kind: 'rate_limited' },
    });
    expect((error as Error).message).toMatch(/^stripe: send meter event: Too many requests/);
  });

  it('retries 429 and 5xx with backoff up to maxAttempts, then applies once', async () => {
    emulator.faults.next('/v1/billing/meter_events', 'rate_limit');
    emulator.faults.next('/v1/billing/meter_events', 'server_error');
    const retries: RetryInfo[] = [];
    const slept: number[] = [];
    const g = gateway(
      { maxAttempts: 3 },
      {
        retry: {
          random: () => 0.5,
          sleep: async (ms) => void slept.push(ms),
          onRetry: (info) => retries.push(info),
        },
      },
    );
    expect(await g.send(event('evt-1', 1n))).toBe('applied');
    expect(retries.map((r) => [r.attempt, (r.error as StripeCallError).details.kind])).toEqual([
      [1, 'rate_limited'],
      [2, 'server'],
    ]);
    expect(slept).toEqual([100, 200]);
    expect(requestsTo('/v1/billing/meter_events')).toHaveLength(3);
    expect(emulator.state.eventsFor(meter.id)).toHaveLength(1);
  });

  it('surfaces a server error as retryable, and gives up after maxAttempts with the last error', async () => {
    emulator.faults.next('/v1/billing/meter_events', 'server_error', 3);
    const g = gateway({ maxAttempts: 2 }, { retry: { sleep: async () => {} } });
    await expect(g.send(event('evt-1', 1n))).rejects.toMatchObject({
      retryable: true,
      details: { status: 500, kind: 'server' },
    });
    expect(requestsTo('/v1/billing/meter_events')).toHaveLength(2);
  });

  it("surfaces a drop after apply as a retryable network error (no hidden SDK retry); the resend is 'duplicate'", async () => {
    emulator.faults.next('/v1/billing/meter_events', 'drop_after_apply');
    const g = gateway();
    const error = await g.send(event('evt-1', 7n)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StripeCallError);
    expect(error).toMatchObject({ retryable: true, details: { kind: 'network' } });
    expect(requestsTo('/v1/billing/meter_events')).toHaveLength(1);
    expect(emulator.state.eventsFor(meter.id)).toHaveLength(1);

    expect(await g.send(event('evt-1', 7n))).toBe('duplicate');
    expect(emulator.state.eventsFor(meter.id)).toHaveLength(1);

    // With retries on, the same story ends in one call's answer.
    emulator.faults.next('/v1/billing/meter_events', 'drop_after_apply');
    const retrying = gateway({ maxAttempts: 3 }, { retry: { sleep: async () => {} } });
    expect(await retrying.send(event('evt-2', 7n))).toBe('duplicate');
    expect(emulator.state.eventsFor(meter.id)).toHaveLength(2);
  });

  it('surfaces a timeout as a retryable network error', async () => {
    emulator.faults.next('/v1/billing/meter_events', 'timeout', 1, { ms: 2000 });
    const error = await gateway({ timeoutMs: 200 })
      .send(event('evt-1', 1n))
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ retryable: true, details: { kind: 'network' } });
    expect((error as Error).message).toMatch(/timeout/i);
  });

  it('does not retry invalid requests or authentication failures', async () => {
    const g = gateway({ maxAttempts: 5 }, { retry: { sleep: async () => {} } });
    await expect(g.send({ ...event('evt-1', 1n), eventName: 'no_such_meter' })).rejects.toMatchObject({
      retryable: false,
      details: {
        status: 400,
        code: 'meter_event_no_active_meter',
        kind: 'invalid_request',
        param: 'event_name',
      },
    });
    const wrongKey = gateway(
      { secretKey: 'sk_live_nope', maxAttempts: 5 },
      { retry: { sleep: async () => {} } },
    );
    const error = await wrongKey.send(event('evt-2', 1n)).catch((e: unknown) => e);
    expect(error).toMatchObject({ retryable: false, details: { status: 401, kind: 'authentication' } });
    expect((error as Error).message).not.toContain('sk_live_nope');
    expect((error as Error).message).toContain('sk_live_[redacted]');
    expect(requestsTo('/v1/billing/meter_events')).toHaveLength(2);
  });

  it('waits for the rate limiter before every call', async () => {
    let acquired = 0;
    let done = 0;
    const limiter = {
      acquire: async () => {
        acquired += 1;
        return () => void (done += 1);
      },
    };
    const g = gateway({}, { limiter });
    await g.send(event('evt-1', 1n));
    await g.cancel(EVENT_NAME, 'evt-1');
    await g.listMeters();
    expect(acquired).toBe(3);
    // Each call also says when it is over, so its place in the window can run out.
    expect(done).toBe(3);
  });
});

describe('stripe gateway: v2 meter event stream', () => {
  const batch = (prefix: string, n: number) =>
    Array.from({ length: n }, (_, i) => event(`${prefix}-${i}`, 2n, hourStart() + i * 1000));

  it('sends 100 events in one call on a session token, and more in calls of 100', async () => {
    const g = gateway();
    expect(g.maxBatch).toBe(100);
    await g.sendBatch(batch('a', 100));
    const [call] = requestsTo('/v2/billing/meter_event_stream');
    const [session] = [...emulator.state.sessions.values()];
    expect(call?.headers.authorization).toBe(`Bearer ${session?.token}`);
    expect((call?.body as { events: unknown[] }).events[0]).toEqual({
      event_name: EVENT_NAME,
      identifier: 'a-0',
      timestamp: new Date(hourStart()).toISOString(),
      payload: { stripe_customer_id: customerId, value: '2' },
    });
    expect(emulator.state.eventsFor(meter.id)).toHaveLength(100);

    await g.sendBatch(batch('b', 250));
    expect(
      requestsTo('/v2/billing/meter_event_stream').map(
        (r) => (r.body as { events: unknown[] }).events.length,
      ),
    ).toEqual([100, 100, 100, 50]);
    expect(requestsTo('/v2/billing/meter_event_session')).toHaveLength(1);
    expect(emulator.state.eventsFor(meter.id)).toHaveLength(350);
    expect(emulator.state.streamErrors).toEqual([]);
    const total = await g.summary(meter.id, customerId, new Date(hourStart()), new Date(hourStart() + HOUR));
    expect(total).toBe(700n);
  });

  it('renews the session once on a 401 when Stripe says it expired (emulator clock moved 15 minutes)', async () => {
    const g = gateway();
    await g.sendBatch(batch('a', 10));
    emulator.advanceClock(15 * MINUTE);
    await g.sendBatch(batch('b', 10).map((e) => ({ ...e, timestamp: new Date(hourStart()) })));
    expect(requestsTo('/v2/billing/meter_event_session')).toHaveLength(2);
    expect(requestsTo('/v2/billing/meter_event_stream')).toHaveLength(3);
    expect(emulator.state.eventsFor(meter.id)).toHaveLength(20);
  });

  it('renews the session before it expires on its own clock (less than 60 s left)', async () => {
    let now = Date.now();
    const g = gateway({}, { now: () => now });
    await g.sendBatch(batch('a', 1));
    now += 13 * MINUTE;
    await g.sendBatch(batch('b', 1));
    expect(requestsTo('/v2/billing/meter_event_session')).toHaveLength(1);
    now += 60 * 1000 + 1;
    await g.sendBatch(batch('c', 1));
    expect(requestsTo('/v2/billing/meter_event_session')).toHaveLength(2);
    // no call was refused on the way
    expect(requestsTo('/v2/billing/meter_event_stream')).toHaveLength(3);
  });

  it('retries a dropped stream call under the same idempotency key: applied once', async () => {
    emulator.faults.next('/v2/billing/meter_event_stream', 'drop_after_apply');
    const g = gateway({ maxAttempts: 3 }, { retry: { sleep: async () => {} } });
    await g.sendBatch(batch('a', 5));
    const calls = requestsTo('/v2/billing/meter_event_stream');
    expect(calls).toHaveLength(2);
    expect(calls[0]?.headers['idempotency-key']).toBe(calls[1]?.headers['idempotency-key']);
    expect(emulator.state.eventsFor(meter.id)).toHaveLength(5);
    expect(emulator.state.streamErrors).toEqual([]);
  });
});

describe('stripe gateway: catalog and summaries', () => {
  it('lists every meter across pages and finds the active one by event name', async () => {
    const g = gateway();
    for (let i = 0; i < 104; i++) {
      await g.createMeter({
        displayName: `m${i}`,
        eventName: `event_${i}`,
        formula: i % 2 === 0 ? 'sum' : 'last',
        customerPayloadKey: 'stripe_customer_id',
        valuePayloadKey: 'value',
      });
    }
    const meters = await g.listMeters();
    expect(meters).toHaveLength(105);
    expect(new Set(meters.map((m) => m.id)).size).toBe(105);
    expect(meters.find((m) => m.eventName === 'event_1')).toMatchObject({
      formula: 'last',
      status: 'active',
    });
    expect(await g.meterByEventName(EVENT_NAME)).toEqual(meter);
    expect(await g.meterByEventName('nope')).toBeUndefined();
    expect(await g.updateMeterDisplayName(meter.id, 'Renamed')).toMatchObject({
      id: meter.id,
      displayName: 'Renamed',
    });
  });

  it('sums event summaries over [start, end) for one customer', async () => {
    const g = gateway();
    const start = hourStart();
    await g.send(event('a', 3n, start));
    await g.send(event('b', 4n, start + HOUR - 1000));
    await g.send(event('c', 100n, start + HOUR));
    expect(await g.summary(meter.id, customerId, new Date(start), new Date(start + HOUR))).toBe(7n);
    expect(await g.summary(meter.id, customerId, new Date(start), new Date(start + 2 * HOUR))).toBe(107n);
  });

  it('retrieves a missing product as undefined, creates with a chosen id, updates', async () => {
    const g = gateway();
    expect(await g.retrieveProduct('bm_nothing')).toBeUndefined();
    expect(await g.createProduct({ id: 'bm_x', name: 'x', description: 'X things' })).toMatchObject({
      id: 'bm_x',
      name: 'x',
      active: true,
      description: 'X things',
    });
    expect(await g.updateProduct('bm_x', { name: 'y', active: false })).toMatchObject({
      name: 'y',
      active: false,
    });
    expect(await g.retrieveProduct('bm_x')).toMatchObject({ id: 'bm_x', name: 'y', active: false });
  });

  it('creates tiered metered prices with transfer_lookup_key and lists them by lookup key with tiers', async () => {
    const g = gateway();
    await g.createProduct({ id: 'bm_x', name: 'x' });
    const spec = {
      lookupKey: 'billing-meter:x',
      nickname: 'billing-meter x',
      product: 'bm_x',
      currency: 'usd',
      meterId: meter.id,
      interval: 'month',
      usageType: 'metered',
      tiersMode: 'graduated' as const,
      tiers: [
        { upTo: 100, unitAmountDecimal: '500' },
        { upTo: 1000, unitAmountDecimal: '0.35', flatAmountDecimal: '1000' },
        { upTo: 'inf' as const, unitAmountDecimal: '200' },
      ],
    };
    const first = await g.createPrice(spec);
    const { nickname: _nickname, ...shape } = spec;
    expect(first).toMatchObject({ ...shape, active: true });
    const second = await g.createPrice({ ...spec, tiersMode: 'volume' });
    const found = await g.pricesByLookupKey(['billing-meter:x', 'billing-meter:other']);
    expect(found.map((p) => p.id)).toEqual([second.id]);
    expect(found[0]).toMatchObject({ tiersMode: 'volume', meterId: meter.id, tiers: first.tiers });
  });
});

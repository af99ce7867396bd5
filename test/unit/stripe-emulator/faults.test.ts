import { afterEach, describe, expect, it } from 'vitest';
import Stripe from 'stripe';
import type { StripeEmulator } from '../../support/stripe-emulator/index.ts';
import { customerAndMeter, emulatorWithClient, seconds, T0 } from './support.ts';

const EVENTS = '/v1/billing/meter_events';

describe('stripe emulator: idempotency and injected faults, seen through stripe-node', () => {
  let emulator: StripeEmulator;
  let stripe: Stripe;
  afterEach(async () => emulator.stop());

  const event = (
    customer: string,
    identifier: string,
    value = '5',
  ): Stripe.Billing.MeterEventCreateParams => ({
    event_name: 'api_requests',
    payload: { stripe_customer_id: customer, value },
    identifier,
    timestamp: seconds(T0) - 60,
  });

  it('replays the stored response for a repeated Idempotency-Key and applies the event once', async () => {
    ({ emulator, stripe } = await emulatorWithClient());
    const { customer } = await customerAndMeter(stripe);
    const first = await stripe.billing.meterEvents.create(event(customer.id, 'idem-1'), {
      idempotencyKey: 'key-1',
    });
    const second = await stripe.billing.meterEvents.create(event(customer.id, 'idem-1'), {
      idempotencyKey: 'key-1',
    });
    expect(second).toEqual(first);
    expect(first.lastResponse.headers['idempotent-replayed']).toBeUndefined();
    expect(second.lastResponse.headers['idempotent-replayed']).toBe('true');
    expect(second.lastResponse.statusCode).toBe(200);
    expect(emulator.state.meterEvents).toHaveLength(1);
  });

  it('refuses the same Idempotency-Key with a different body as an idempotency_error', async () => {
    ({ emulator, stripe } = await emulatorWithClient());
    const { customer } = await customerAndMeter(stripe);
    await stripe.billing.meterEvents.create(event(customer.id, 'idem-2'), { idempotencyKey: 'key-2' });
    await expect(
      stripe.billing.meterEvents.create(event(customer.id, 'idem-2', '6'), { idempotencyKey: 'key-2' }),
    ).rejects.toMatchObject({ type: 'StripeIdempotencyError', statusCode: 400 });
    expect(emulator.state.meterEvents).toHaveLength(1);
  });

  it('answers 429 with Stripe-Should-Retry, which stripe-node retries until it succeeds', async () => {
    ({ emulator, stripe } = await emulatorWithClient(2));
    const { customer } = await customerAndMeter(stripe);
    emulator.faults.next(EVENTS, 'rate_limit', 2);
    const sent = await stripe.billing.meterEvents.create(event(customer.id, 'rl-1'));
    expect(sent.identifier).toBe('rl-1');
    const attempts = emulator.requests.filter((r) => r.path === EVENTS);
    expect(attempts).toHaveLength(3);
    // Every retry carries the same Idempotency-Key the SDK generated for the first attempt.
    expect(new Set(attempts.map((r) => r.headers['idempotency-key'])).size).toBe(1);
    expect(emulator.state.meterEvents).toHaveLength(1);
  });

  it('surfaces a 429 as a rate limit error when retries run out', async () => {
    ({ emulator, stripe } = await emulatorWithClient(0));
    const { customer } = await customerAndMeter(stripe);
    emulator.faults.next(EVENTS, 'rate_limit');
    const error = await stripe.billing.meterEvents
      .create(event(customer.id, 'rl-2'))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Stripe.errors.StripeRateLimitError);
    expect(error).toMatchObject({
      statusCode: 429,
      code: 'rate_limit',
      headers: { 'stripe-should-retry': 'true' },
    });
    expect(emulator.state.meterEvents).toHaveLength(0);
  });

  it('answers 500 without applying, and stripe-node retries it', async () => {
    ({ emulator, stripe } = await emulatorWithClient(1));
    const { customer } = await customerAndMeter(stripe);
    emulator.faults.next('/v1/billing/meter_events', 'server_error');
    await stripe.billing.meterEvents.create(event(customer.id, 'err-1'));
    expect(emulator.requests.filter((r) => r.path === EVENTS)).toHaveLength(2);
    expect(emulator.state.meterEvents).toHaveLength(1);
  });

  it('holds a timed-out request without applying it', async () => {
    ({ emulator, stripe } = await emulatorWithClient(0));
    const { customer } = await customerAndMeter(stripe);
    emulator.faults.next(EVENTS, 'timeout', 1, { ms: 2000 });
    const impatient = new Stripe('sk_test_123', {
      ...emulator.stripeOptions(),
      maxNetworkRetries: 0,
      timeout: 200,
    });
    await expect(impatient.billing.meterEvents.create(event(customer.id, 'slow-1'))).rejects.toMatchObject({
      type: 'StripeConnectionError',
    });
    expect(emulator.state.meterEvents).toHaveLength(0);
  });

  it('drop_after_apply + the SDK retry under the same Idempotency-Key bills exactly once', async () => {
    ({ emulator, stripe } = await emulatorWithClient(2));
    const { customer } = await customerAndMeter(stripe);
    emulator.faults.next(EVENTS, 'drop_after_apply');
    const sent = await stripe.billing.meterEvents.create(event(customer.id, 'trap-1', '9'));
    expect(sent).toMatchObject({ identifier: 'trap-1' });
    expect(sent.lastResponse.headers['idempotent-replayed']).toBe('true');
    const attempts = emulator.requests.filter((r) => r.path === EVENTS);
    expect(attempts).toHaveLength(2);
    expect(attempts[0]?.headers['idempotency-key']).toBe(attempts[1]?.headers['idempotency-key']);
    expect(
      emulator.state.eventsFor(emulator.state.activeMeterForEvent('api_requests')?.id ?? ''),
    ).toHaveLength(1);
  });

  it('drop_after_apply without an idempotent retry is the trap: a fresh key double-bills, the identifier refuses it', async () => {
    ({ emulator, stripe } = await emulatorWithClient(0));
    const { customer } = await customerAndMeter(stripe);
    // stripe-node retries a closed connection once even with maxNetworkRetries: 0; drop both attempts.
    emulator.faults.next(EVENTS, 'drop_after_apply', 2);
    await expect(stripe.billing.meterEvents.create(event(customer.id, 'trap-2'))).rejects.toMatchObject({
      type: 'StripeConnectionError',
    });
    expect(emulator.state.meterEvents).toHaveLength(1);
    // A caller that resends with a NEW key is saved only by the deterministic identifier.
    await expect(stripe.billing.meterEvents.create(event(customer.id, 'trap-2'))).rejects.toMatchObject({
      statusCode: 400,
      code: 'resource_already_exists',
    });
    expect(emulator.state.meterEvents).toHaveLength(1);
  });

  it('matches fault patterns with :param segments and leaves other paths alone', async () => {
    ({ emulator, stripe } = await emulatorWithClient(0));
    const { customer } = await customerAndMeter(stripe);
    emulator.faults.next('/v1/customers/:id', 'server_error');
    await expect(stripe.customers.list()).resolves.toMatchObject({ data: [{ id: customer.id }] });
    await expect(stripe.customers.retrieve(customer.id)).rejects.toMatchObject({
      statusCode: 500,
      type: 'StripeAPIError',
    });
    expect(emulator.faults.pending()).toBe(0);
  });
});

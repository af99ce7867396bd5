import { afterEach, describe, expect, it } from 'vitest';
import Stripe from 'stripe';
import type { StripeEmulator } from '../../support/stripe-emulator/index.ts';
import { customerAndMeter, emulatorWithClient, seconds, T0 } from './support.ts';

describe('stripe emulator: the v2 meter event stream through stripe-node', () => {
  let emulator: StripeEmulator;
  let stripe: Stripe;
  afterEach(async () => emulator.stop());

  const streamClient = (token: string) =>
    new Stripe(token, { ...emulator.stripeOptions(), maxNetworkRetries: 0 });
  const iso = (s: number) => new Date(s * 1000).toISOString();

  it('creates a 15-minute session and accepts a JSON batch authenticated by its token', async () => {
    ({ emulator, stripe } = await emulatorWithClient());
    const { customer, meter } = await customerAndMeter(stripe);
    const session = await stripe.v2.billing.meterEventSession.create();
    expect(session).toMatchObject({ object: 'v2.billing.meter_event_session', livemode: false });
    expect(Date.parse(session.expires_at) - T0).toBe(15 * 60 * 1000);
    const start = seconds(T0) - 3600;
    const events = Array.from({ length: 100 }, (_, i) => ({
      event_name: 'api_requests',
      payload: { stripe_customer_id: customer.id, value: '2' },
      identifier: `v2-${i}`,
      timestamp: iso(start + i),
    }));
    await streamClient(session.authentication_token).v2.billing.meterEventStream.create({ events });
    const recorded = emulator.requests.at(-1);
    expect(recorded?.headers['content-type']).toBe('application/json');
    expect(recorded?.headers.authorization).toBe(`Bearer ${session.authentication_token}`);
    const summary = await stripe.billing.meters.listEventSummaries(meter.id, {
      customer: customer.id,
      start_time: start,
      end_time: start + 3600,
    });
    expect(summary.data[0]?.aggregated_value).toBe(200);
  });

  it('refuses an expired session token with 401 temporary_session_expired', async () => {
    ({ emulator, stripe } = await emulatorWithClient());
    const { customer } = await customerAndMeter(stripe);
    const session = await stripe.v2.billing.meterEventSession.create();
    emulator.advanceClock(15 * 60 * 1000);
    const error = await streamClient(session.authentication_token)
      .v2.billing.meterEventStream.create({
        events: [{ event_name: 'api_requests', payload: { stripe_customer_id: customer.id, value: '1' } }],
      })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Stripe.errors.TemporarySessionExpiredError);
    expect(error).toMatchObject({ statusCode: 401 });
    expect(emulator.state.meterEvents).toHaveLength(0);
  });

  it('refuses a secret key on the stream, more than 100 events, and a batch with one bad event (nothing applied)', async () => {
    ({ emulator, stripe } = await emulatorWithClient());
    const { customer } = await customerAndMeter(stripe);
    const ok = { event_name: 'api_requests', payload: { stripe_customer_id: customer.id, value: '1' } };
    await expect(stripe.v2.billing.meterEventStream.create({ events: [ok] })).rejects.toMatchObject({
      statusCode: 401,
    });
    const session = await stripe.v2.billing.meterEventSession.create();
    const client = streamClient(session.authentication_token);
    await expect(
      client.v2.billing.meterEventStream.create({ events: Array.from({ length: 101 }, () => ok) }),
    ).rejects.toMatchObject({
      statusCode: 400,
    });
    await expect(
      client.v2.billing.meterEventStream.create({
        events: [ok, { ...ok, payload: { stripe_customer_id: customer.id, value: '0.5' } }],
      }),
    ).rejects.toMatchObject({ statusCode: 400 });
    await expect(
      client.v2.billing.meterEventStream.create({
        events: [{ ...ok, timestamp: iso(seconds(T0) - 36 * 86400) }],
      }),
    ).rejects.toMatchObject({ statusCode: 400 });
    expect(emulator.state.meterEvents).toHaveLength(0);
  });

  it('shares identifier dedupe with v1 and reports a duplicate as duplicate_meter_event', async () => {
    ({ emulator, stripe } = await emulatorWithClient());
    const { customer } = await customerAndMeter(stripe);
    await stripe.billing.meterEvents.create({
      event_name: 'api_requests',
      payload: { stripe_customer_id: customer.id, value: '1' },
      identifier: 'shared-1',
    });
    const session = await stripe.v2.billing.meterEventSession.create();
    const error = await streamClient(session.authentication_token)
      .v2.billing.meterEventStream.create({
        events: [
          {
            event_name: 'api_requests',
            identifier: 'shared-1',
            payload: { stripe_customer_id: customer.id, value: '1' },
          },
        ],
      })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ statusCode: 400, code: 'duplicate_meter_event' });
    expect(emulator.state.meterEvents).toHaveLength(1);
  });
});

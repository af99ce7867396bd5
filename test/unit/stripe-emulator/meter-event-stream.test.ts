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

  it('refuses a secret key on the stream and structurally bad batches with 400, applying nothing', async () => {
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
    ).rejects.toMatchObject({ statusCode: 400, param: 'events' });
    await expect(
      client.v2.billing.meterEventStream.create({
        events: [ok, { event_name: 'api_requests' } as unknown as typeof ok],
      }),
    ).rejects.toMatchObject({ statusCode: 400, param: 'events[1][payload]' });
    await expect(
      client.v2.billing.meterEventStream.create({
        events: [ok, { payload: ok.payload } as unknown as typeof ok],
      }),
    ).rejects.toMatchObject({ statusCode: 400, param: 'events[1][event_name]' });
    const notJson = await fetch(`${emulator.url}/v2/billing/meter_event_stream`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${session.authentication_token}`,
        'content-type': 'application/json',
      },
      body: '{"events": [',
    });
    expect(notJson.status).toBe(400);
    const noEvents = await fetch(`${emulator.url}/v2/billing/meter_event_stream`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${session.authentication_token}`,
        'content-type': 'application/json',
      },
      body: '{}',
    });
    expect(noEvents.status).toBe(400);
    expect(emulator.state.meterEvents).toHaveLength(0);
    expect(emulator.state.streamErrors).toHaveLength(0);
  });

  it('answers 200 to semantically bad events, drops each one alone and records why in streamErrors', async () => {
    ({ emulator, stripe } = await emulatorWithClient());
    const { customer } = await customerAndMeter(stripe);
    const session = await stripe.v2.billing.meterEventSession.create();
    const client = streamClient(session.authentication_token);
    const event = (identifier: string, extra: Record<string, unknown> = {}, value = '1') => ({
      event_name: 'api_requests',
      identifier,
      payload: { stripe_customer_id: customer.id, value },
      ...extra,
    });
    // stripe-node resolves (the stream answered 2xx) although most of the batch is dropped.
    await client.v2.billing.meterEventStream.create({
      events: [
        event('good-1'),
        event('half', {}, '0.5'),
        event('old', { timestamp: iso(seconds(T0) - 36 * 86400) }),
        event('ahead', { timestamp: iso(seconds(T0) + 301) }),
        {
          event_name: 'no_such_meter',
          identifier: 'orphan',
          payload: { stripe_customer_id: customer.id, value: '1' },
        },
        {
          event_name: 'api_requests',
          identifier: 'ghost',
          payload: { stripe_customer_id: 'cus_ghost', value: '1' },
        },
        event('good-1'),
        event('good-2', {}, '4'),
      ],
    });
    expect(emulator.state.meterEvents.map((e) => [e.identifier, e.value])).toEqual([
      ['good-1', 1],
      ['good-2', 4],
    ]);
    expect(emulator.state.streamErrors.map((e) => [e.index, e.identifier, e.code])).toEqual([
      [1, 'half', 'meter_event_invalid_value'],
      [2, 'old', 'timestamp_too_far_in_past'],
      [3, 'ahead', 'timestamp_in_future'],
      [4, 'orphan', 'meter_event_no_active_meter'],
      [5, 'ghost', 'meter_event_customer_not_found'],
      [6, 'good-1', 'duplicate_meter_event'],
    ]);
    expect(emulator.state.streamErrors[0]?.message).toMatch(/whole number/);
  });

  it('shares identifier dedupe with v1: a duplicate is dropped after a 200, as duplicate_meter_event', async () => {
    ({ emulator, stripe } = await emulatorWithClient());
    const { customer } = await customerAndMeter(stripe);
    await stripe.billing.meterEvents.create({
      event_name: 'api_requests',
      payload: { stripe_customer_id: customer.id, value: '1' },
      identifier: 'shared-1',
    });
    const session = await stripe.v2.billing.meterEventSession.create();
    const res = await fetch(`${emulator.url}/v2/billing/meter_event_stream`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${session.authentication_token}`,
        'content-type': 'application/json',
      },
      body: JSON.stringify({
        events: [
          {
            event_name: 'api_requests',
            identifier: 'shared-1',
            payload: { stripe_customer_id: customer.id, value: '1' },
          },
        ],
      }),
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({});
    expect(emulator.state.streamErrors).toMatchObject([
      { code: 'duplicate_meter_event', identifier: 'shared-1' },
    ]);
    expect(emulator.state.meterEvents).toHaveLength(1);
    // After 24 h of emulated time the identifier is free again (with a fresh session: tokens last 15 min).
    emulator.advanceClock(24 * 3600 * 1000 + 1000);
    const later = await stripe.v2.billing.meterEventSession.create();
    await streamClient(later.authentication_token).v2.billing.meterEventStream.create({
      events: [
        {
          event_name: 'api_requests',
          identifier: 'shared-1',
          payload: { stripe_customer_id: customer.id, value: '1' },
        },
      ],
    });
    expect(emulator.state.meterEvents).toHaveLength(2);
    expect(emulator.state.streamErrors).toHaveLength(1);
  });
});

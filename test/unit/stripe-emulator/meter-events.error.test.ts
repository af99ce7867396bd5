import { afterEach, describe, expect, it } from 'vitest';
import Stripe from 'stripe';
import type { StripeEmulator } from '../../support/stripe-emulator/index.ts';
import { customerAndMeter, emulatorWithClient, seconds, T0 } from './support.ts';

const HOUR_MS = 3600_000;
const DAY_MS = 24 * HOUR_MS;

describe('stripe emulator, driven by stripe-node: refusals', () => {
  let emulator: StripeEmulator;
  let stripe: Stripe;
  afterEach(async () => emulator.stop());

  const send = (customer: string, extra: Partial<Stripe.Billing.MeterEventCreateParams> = {}, value = '1') =>
    stripe.billing.meterEvents.create({
      event_name: 'api_requests',
      payload: { stripe_customer_id: customer, value },
      ...extra,
    });

  it('refuses a missing or non-test secret key with a 401 in the error envelope', async () => {
    ({ emulator, stripe } = await emulatorWithClient());
    const live = new Stripe('sk_live_abcdefghijkl', { ...emulator.stripeOptions(), maxNetworkRetries: 0 });
    await expect(live.customers.list()).rejects.toMatchObject({
      type: 'StripeAuthenticationError',
      statusCode: 401,
      raw: { type: 'invalid_request_error' },
    });
    const res = await fetch(`${emulator.url}/v1/customers`);
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({
      error: { type: 'invalid_request_error', message: expect.stringContaining('API key') },
    });
  });

  it('answers 404 resource_missing for an unknown customer and meter', async () => {
    ({ emulator, stripe } = await emulatorWithClient());
    await expect(stripe.customers.retrieve('cus_nope')).rejects.toMatchObject({
      statusCode: 404,
      code: 'resource_missing',
      param: 'id',
      type: 'StripeInvalidRequestError',
    });
    await expect(stripe.billing.meters.retrieve('mtr_nope')).rejects.toMatchObject({
      statusCode: 404,
      code: 'resource_missing',
    });
  });

  it('refuses a duplicate identifier for 24 h of emulated time, then accepts it again', async () => {
    ({ emulator, stripe } = await emulatorWithClient());
    const { customer } = await customerAndMeter(stripe);
    await send(customer.id, { identifier: 'dup-1' });
    await expect(send(customer.id, { identifier: 'dup-1' })).rejects.toMatchObject({
      statusCode: 400,
      code: 'resource_already_exists',
      param: 'identifier',
      message: expect.stringMatching(/already exists with identifier dup-1/),
    });
    emulator.advanceClock(DAY_MS - 1000);
    await expect(send(customer.id, { identifier: 'dup-1' })).rejects.toMatchObject({ statusCode: 400 });
    emulator.advanceClock(2000);
    await expect(send(customer.id, { identifier: 'dup-1' })).resolves.toMatchObject({ identifier: 'dup-1' });
    expect(emulator.state.meterEvents.filter((e) => e.identifier === 'dup-1')).toHaveLength(2);
  });

  it('keeps timestamps within the past 35 days and at most 5 minutes ahead of the emulated clock', async () => {
    ({ emulator, stripe } = await emulatorWithClient());
    const { customer } = await customerAndMeter(stripe);
    const now = seconds(T0);
    await expect(send(customer.id, { timestamp: now - 35 * 86400 })).resolves.toMatchObject({
      timestamp: now - 35 * 86400,
    });
    await expect(send(customer.id, { timestamp: now - 35 * 86400 - 1 })).rejects.toMatchObject({
      statusCode: 400,
      code: 'timestamp_too_far_in_past',
      param: 'timestamp',
    });
    await expect(send(customer.id, { timestamp: now + 300 })).resolves.toMatchObject({
      timestamp: now + 300,
    });
    await expect(send(customer.id, { timestamp: now + 301 })).rejects.toMatchObject({
      statusCode: 400,
      code: 'timestamp_in_future',
    });
    // The same event is fine once the clock catches up.
    emulator.advanceClock(HOUR_MS);
    await expect(send(customer.id, { timestamp: now + 301 })).resolves.toMatchObject({
      timestamp: now + 301,
    });
  });

  it('takes whole numbers only', async () => {
    ({ emulator, stripe } = await emulatorWithClient());
    const { customer } = await customerAndMeter(stripe);
    for (const bad of ['1.5', 'abc', '', '1e3']) {
      await expect(send(customer.id, {}, bad)).rejects.toMatchObject({
        statusCode: 400,
        code: 'meter_event_invalid_value',
        param: 'payload[value]',
      });
    }
    await expect(send(customer.id, {}, '42')).resolves.toMatchObject({ payload: { value: '42' } });
    expect(emulator.state.meterEvents.map((e) => e.value)).toEqual([42]);
  });

  it('needs an existing customer and an active meter for the event name', async () => {
    ({ emulator, stripe } = await emulatorWithClient());
    const { customer, meter } = await customerAndMeter(stripe);
    await expect(send('cus_ghost')).rejects.toMatchObject({
      statusCode: 400,
      code: 'meter_event_customer_not_found',
    });
    await expect(
      stripe.billing.meterEvents.create({
        event_name: 'other',
        payload: { stripe_customer_id: customer.id, value: '1' },
      }),
    ).rejects.toMatchObject({ statusCode: 400, param: 'event_name' });
    await stripe.billing.meters.deactivate(meter.id);
    await expect(send(customer.id)).rejects.toMatchObject({
      statusCode: 400,
      code: 'meter_event_no_active_meter',
    });
    expect(emulator.state.meterEvents).toHaveLength(0);
  });

  it('refuses unknown parameters, missing ones and a cancel after 24 h', async () => {
    ({ emulator, stripe } = await emulatorWithClient());
    const { customer } = await customerAndMeter(stripe);
    await expect(
      stripe.billing.meters.create({
        display_name: 'x',
        event_name: 'y',
        default_aggregation: { formula: 'max' as 'sum' },
      }),
    ).rejects.toMatchObject({ statusCode: 400, param: 'default_aggregation[formula]' });
    await expect(
      stripe.billing.meterEvents.create({
        event_name: 'api_requests',
        payload: { stripe_customer_id: customer.id, value: '1' },
        bogus: 1,
      } as never),
    ).rejects.toMatchObject({ statusCode: 400, code: 'parameter_unknown', param: 'bogus' });
    await send(customer.id, { identifier: 'old' });
    emulator.advanceClock(DAY_MS + 1000);
    await expect(
      stripe.billing.meterEventAdjustments.create({
        event_name: 'api_requests',
        type: 'cancel',
        cancel: { identifier: 'old' },
      }),
    ).rejects.toMatchObject({ statusCode: 400, param: 'cancel[identifier]' });
    await expect(
      stripe.billing.meterEventAdjustments.create({
        event_name: 'api_requests',
        type: 'cancel',
        cancel: { identifier: 'never' },
      }),
    ).rejects.toMatchObject({ statusCode: 400, code: 'resource_missing' });
  });

  it('refuses event summary windows that are not aligned to the minute or the grouping window', async () => {
    ({ emulator, stripe } = await emulatorWithClient());
    const { customer, meter } = await customerAndMeter(stripe);
    const start = seconds(T0) - 3600;
    await expect(
      stripe.billing.meters.listEventSummaries(meter.id, {
        customer: customer.id,
        start_time: start + 1,
        end_time: start + 60,
      }),
    ).rejects.toMatchObject({ statusCode: 400, param: 'start_time' });
    await expect(
      stripe.billing.meters.listEventSummaries(meter.id, {
        customer: customer.id,
        start_time: start + 60,
        end_time: start + 3600,
        value_grouping_window: 'hour',
      }),
    ).rejects.toMatchObject({ statusCode: 400, param: 'start_time' });
  });
});

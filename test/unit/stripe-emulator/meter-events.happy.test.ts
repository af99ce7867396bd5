import { afterEach, describe, expect, it } from 'vitest';
import Stripe from 'stripe';
import type { StripeEmulator } from '../../support/stripe-emulator/index.ts';
import { customerAndMeter, emulatorWithClient, seconds, T0 } from './support.ts';

describe('stripe emulator, driven by stripe-node: the happy path', () => {
  let emulator: StripeEmulator;
  let stripe: Stripe;
  afterEach(async () => emulator.stop());

  it('creates, retrieves, updates and lists customers', async () => {
    ({ emulator, stripe } = await emulatorWithClient());
    const created = await stripe.customers.create({
      name: 'Acme',
      metadata: { billing_meter_customer: 'acme' },
    });
    expect(created).toMatchObject({
      object: 'customer',
      livemode: false,
      name: 'Acme',
      created: seconds(T0),
    });
    expect(created.id).toMatch(/^cus_/);
    const updated = await stripe.customers.update(created.id, {
      metadata: { plan: 'pro', billing_meter_customer: '' },
    });
    expect(updated.metadata).toEqual({ plan: 'pro' });
    expect((await stripe.customers.retrieve(created.id)).id).toBe(created.id);
    const listed = await stripe.customers.list();
    expect(listed).toMatchObject({ object: 'list', has_more: false, url: '/v1/customers' });
    expect(listed.data.map((c) => c.id)).toEqual([created.id]);
  });

  it('creates, updates, lists and deactivates meters', async () => {
    ({ emulator, stripe } = await emulatorWithClient());
    const { meter } = await customerAndMeter(stripe, 'last');
    expect(meter).toMatchObject({
      object: 'billing.meter',
      status: 'active',
      event_name: 'api_requests',
      default_aggregation: { formula: 'last' },
      customer_mapping: { event_payload_key: 'stripe_customer_id', type: 'by_id' },
      value_settings: { event_payload_key: 'value' },
    });
    expect(meter.id).toMatch(/^mtr_/);
    expect((await stripe.billing.meters.update(meter.id, { display_name: 'Renamed' })).display_name).toBe(
      'Renamed',
    );
    expect((await stripe.billing.meters.list()).data).toHaveLength(1);
    expect((await stripe.billing.meters.deactivate(meter.id)).status).toBe('inactive');
    expect((await stripe.billing.meters.retrieve(meter.id)).status).toBe('inactive');
  });

  it('accepts meter events and sums them back in event summaries, per hour and in total', async () => {
    ({ emulator, stripe } = await emulatorWithClient());
    const { customer, meter } = await customerAndMeter(stripe);
    const hour = seconds(T0) - 3 * 3600;
    const sent = await stripe.billing.meterEvents.create({
      event_name: 'api_requests',
      payload: { stripe_customer_id: customer.id, value: '5' },
      identifier: 'acme-h1',
      timestamp: hour + 10,
    });
    expect(sent).toMatchObject({
      object: 'billing.meter_event',
      identifier: 'acme-h1',
      timestamp: hour + 10,
      livemode: false,
    });
    await stripe.billing.meterEvents.create({
      event_name: 'api_requests',
      payload: { stripe_customer_id: customer.id, value: '7' },
      identifier: 'acme-h2',
      timestamp: hour + 3600 + 5,
    });
    const total = await stripe.billing.meters.listEventSummaries(meter.id, {
      customer: customer.id,
      start_time: hour,
      end_time: hour + 2 * 3600,
    });
    expect(total.data).toHaveLength(1);
    expect(total.data[0]).toMatchObject({
      object: 'billing.meter_event_summary',
      aggregated_value: 12,
      meter: meter.id,
      start_time: hour,
      end_time: hour + 7200,
    });
    const hourly = await stripe.billing.meters.listEventSummaries(meter.id, {
      customer: customer.id,
      start_time: hour,
      end_time: hour + 2 * 3600,
      value_grouping_window: 'hour',
    });
    expect(hourly.data.map((s) => [s.start_time, s.aggregated_value])).toEqual([
      [hour + 3600, 7],
      [hour, 5],
    ]);
    const firstHourOnly = await stripe.billing.meters.listEventSummaries(meter.id, {
      customer: customer.id,
      start_time: hour,
      end_time: hour + 3600,
    });
    expect(firstHourOnly.data[0]?.aggregated_value).toBe(5);
  });

  it('aggregates a last meter as the value of the latest event by timestamp', async () => {
    ({ emulator, stripe } = await emulatorWithClient());
    const { customer, meter } = await customerAndMeter(stripe, 'last', 'seats');
    const start = seconds(T0) - 3600;
    for (const [value, at] of [
      ['9', 30],
      ['4', 50],
      ['6', 40],
    ] as const) {
      await stripe.billing.meterEvents.create({
        event_name: 'seats',
        payload: { stripe_customer_id: customer.id, value },
        timestamp: start + at,
      });
    }
    const summary = await stripe.billing.meters.listEventSummaries(meter.id, {
      customer: customer.id,
      start_time: start,
      end_time: start + 3600,
    });
    expect(summary.data[0]?.aggregated_value).toBe(4);
  });

  it('cancels an event with an adjustment, which drops it from the summaries', async () => {
    ({ emulator, stripe } = await emulatorWithClient());
    const { customer, meter } = await customerAndMeter(stripe);
    const start = seconds(T0) - 3600;
    for (const [identifier, value] of [
      ['keep', '3'],
      ['drop', '100'],
    ] as const) {
      await stripe.billing.meterEvents.create({
        event_name: 'api_requests',
        payload: { stripe_customer_id: customer.id, value },
        identifier,
        timestamp: start + 1,
      });
    }
    const adjustment = await stripe.billing.meterEventAdjustments.create({
      event_name: 'api_requests',
      type: 'cancel',
      cancel: { identifier: 'drop' },
    });
    expect(adjustment).toMatchObject({
      object: 'billing.meter_event_adjustment',
      type: 'cancel',
      cancel: { identifier: 'drop' },
    });
    const summary = await stripe.billing.meters.listEventSummaries(meter.id, {
      customer: customer.id,
      start_time: start,
      end_time: start + 3600,
    });
    expect(summary.data[0]?.aggregated_value).toBe(3);
    await expect(
      stripe.billing.meterEventAdjustments.create({
        event_name: 'api_requests',
        type: 'cancel',
        cancel: { identifier: 'drop' },
      }),
    ).rejects.toMatchObject({ statusCode: 400, code: 'meter_event_already_cancelled' });
  });

  it('records every request with its method, path, headers and parsed form body', async () => {
    ({ emulator, stripe } = await emulatorWithClient());
    const { customer } = await customerAndMeter(stripe);
    await stripe.billing.meterEvents.create({
      event_name: 'api_requests',
      payload: { stripe_customer_id: customer.id, value: '2' },
      identifier: 'rec-1',
    });
    const last = emulator.requests.at(-1);
    expect(last).toMatchObject({
      method: 'POST',
      path: '/v1/billing/meter_events',
      body: {
        event_name: 'api_requests',
        payload: { stripe_customer_id: customer.id, value: '2' },
        identifier: 'rec-1',
      },
    });
    expect(last?.headers['content-type']).toBe('application/x-www-form-urlencoded');
    expect(last?.headers['idempotency-key']).toMatch(/^stripe-node-retry-/);
    expect(last?.headers['stripe-version']).toBe(Stripe.API_VERSION);
  });
});

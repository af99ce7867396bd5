import { afterEach, describe, expect, it } from 'vitest';
import Stripe from 'stripe';
import type { StripeEmulator } from '../../support/stripe-emulator/index.ts';
import { customerAndMeter, emulatorWithClient, meteredPlan, seconds, T0 } from './support.ts';

// T0 is 2026-11-02T12:00Z: without an anchor the current period is November 2026 (UTC).
const NOV_1 = Date.UTC(2026, 10, 1) / 1000;
const DEC_1 = Date.UTC(2026, 11, 1) / 1000;
const JAN_1 = Date.UTC(2027, 0, 1) / 1000;

describe('stripe emulator, driven by stripe-node: subscriptions and invoice previews', () => {
  let emulator: StripeEmulator;
  let stripe: Stripe;
  afterEach(async () => emulator.stop());

  const usage = (customer: string, value: number, timestamp: number, identifier?: string) =>
    stripe.billing.meterEvents.create({
      event_name: 'api_requests',
      payload: { stripe_customer_id: customer, value: String(value) },
      timestamp,
      ...(identifier === undefined ? {} : { identifier }),
    });

  const preview = (customer: string, subscription: string) =>
    stripe.invoices.createPreview({ customer, subscription });

  const lines = (invoice: Stripe.Invoice) =>
    invoice.lines.data.map((l) => [l.quantity, l.amount, l.description]);

  it('bills the worked example: 1,500 calls on 1–100 at $5, 101–1000 at $3, 1001+ at $2 is $4,200.00', async () => {
    ({ emulator, stripe } = await emulatorWithClient());
    const { customer, meter } = await customerAndMeter(stripe);
    const other = await stripe.customers.create({ name: 'Other' });
    const { price, subscription } = await meteredPlan(stripe, customer.id, meter.id);
    await usage(customer.id, 600, NOV_1);
    await usage(customer.id, 900, seconds(T0) - 3600);
    await usage(customer.id, 7, NOV_1 - 1); // October: another period
    await usage(other.id, 1000, NOV_1 + 10); // another customer
    await usage(customer.id, 50, NOV_1 + 20, 'mistake');
    await stripe.billing.meterEventAdjustments.create({
      event_name: 'api_requests',
      type: 'cancel',
      cancel: { identifier: 'mistake' },
    });

    const invoice = await preview(customer.id, subscription.id);
    expect(invoice).toMatchObject({
      object: 'invoice',
      customer: customer.id,
      currency: 'usd',
      subtotal: 420_000,
      total: 420_000,
      amount_due: 420_000,
      period_start: NOV_1,
      period_end: DEC_1,
      parent: { type: 'subscription_details', subscription_details: { subscription: subscription.id } },
    });
    expect((invoice as unknown as { subscription: string }).subscription).toBe(subscription.id);
    expect(lines(invoice)).toEqual([
      [100, 50_000, 'Credit score API (Tier 1 at $5.00 / month)'],
      [900, 270_000, 'Credit score API (Tier 2 at $3.00 / month)'],
      [500, 100_000, 'Credit score API (Tier 3 at $2.00 / month)'],
    ]);
    const line = invoice.lines.data[0];
    expect(line?.period).toEqual({ start: NOV_1, end: DEC_1 });
    expect(line?.pricing).toMatchObject({ type: 'price_details', price_details: { price: price.id } });
    expect(line?.pricing?.unit_amount_decimal?.toString()).toBe('500');
    expect(line?.parent?.subscription_item_details?.subscription_item).toBe(subscription.items.data[0]?.id);
    // The same total from the customer alone (the upcoming invoice of their subscription).
    expect((await stripe.invoices.createPreview({ customer: customer.id })).total).toBe(420_000);
  });

  it('bills volume tiers: every unit at the tier the total falls in', async () => {
    ({ emulator, stripe } = await emulatorWithClient());
    const { customer, meter } = await customerAndMeter(stripe);
    const { subscription } = await meteredPlan(stripe, customer.id, meter.id, undefined, 'volume');
    await usage(customer.id, 1000, NOV_1);
    expect((await preview(customer.id, subscription.id)).total).toBe(300_000);
    await usage(customer.id, 500, NOV_1 + 1);
    const invoice = await preview(customer.id, subscription.id);
    expect(lines(invoice)).toEqual([[1500, 300_000, 'Credit score API (Tier 3 at $2.00 / month)']]);
  });

  it('bills a flat fee tier: the first tier’s flat amount even at zero usage, a later one once reached', async () => {
    ({ emulator, stripe } = await emulatorWithClient());
    const { customer, meter } = await customerAndMeter(stripe);
    const { subscription } = await meteredPlan(stripe, customer.id, meter.id, [
      { up_to: 100, flat_amount: 1000, unit_amount: 0 },
      { up_to: 1000, unit_amount: 10, flat_amount: 500 },
      { up_to: 'inf', unit_amount: 5 },
    ]);
    const zero = await preview(customer.id, subscription.id);
    expect(lines(zero)).toEqual([[0, 1000, 'Credit score API (Tier 1 at $0.00 / month + $10.00 flat fee)']]);
    await usage(customer.id, 100, NOV_1);
    expect((await preview(customer.id, subscription.id)).total).toBe(1000);
    await usage(customer.id, 1, NOV_1);
    const invoice = await preview(customer.id, subscription.id);
    expect(invoice.lines.data.map((l) => [l.quantity, l.amount])).toEqual([
      [100, 1000],
      [1, 10 + 500],
    ]);
    expect(invoice.total).toBe(1510);
  });

  it('rounds each tier line to a whole cent after quantity × unit_amount_decimal, halves away from zero', async () => {
    ({ emulator, stripe } = await emulatorWithClient());
    const { customer, meter } = await customerAndMeter(stripe);
    const { subscription } = await meteredPlan(stripe, customer.id, meter.id, [
      { up_to: 3, unit_amount_decimal: Stripe.Decimal.from('0.5') },
      { up_to: 'inf', unit_amount_decimal: Stripe.Decimal.from('0.25') },
    ]);
    await usage(customer.id, 5, NOV_1);
    const invoice = await preview(customer.id, subscription.id);
    // 3 × 0.5 = 1.5 → 2 and 2 × 0.25 = 0.5 → 1: the total is 3, where rounding the exact 2.0 would give 2.
    expect(invoice.lines.data.map((l) => [l.quantity, l.amount, l.description])).toEqual([
      [3, 2, 'Credit score API (Tier 1 at $0.005 / month)'],
      [2, 1, 'Credit score API (Tier 2 at $0.0025 / month)'],
    ]);
    expect(invoice.total).toBe(3);
    expect(invoice.lines.data[1]?.pricing?.unit_amount_decimal?.toString()).toBe('0.25');
  });

  it('previews a count meter and a per-unit decimal price (0.05 × 30 = 1.5 → 2 cents)', async () => {
    ({ emulator, stripe } = await emulatorWithClient());
    const { customer, meter } = await customerAndMeter(stripe, 'count');
    const product = await stripe.products.create({ name: 'Calls' });
    const price = await stripe.prices.create({
      currency: 'usd',
      product: product.id,
      unit_amount_decimal: Stripe.Decimal.from('0.05'),
      recurring: { interval: 'month', usage_type: 'metered', meter: meter.id },
    });
    const subscription = await stripe.subscriptions.create({
      customer: customer.id,
      items: [{ price: price.id }],
    });
    for (let i = 0; i < 30; i++) await usage(customer.id, 999, NOV_1 + i);
    const invoice = await preview(customer.id, subscription.id);
    expect(lines(invoice)).toEqual([[30, 2, '30 × Calls (at $0.0005 / month)']]);
  });

  it('creates, retrieves, lists, rolls and cancels a subscription; periods live on the items', async () => {
    ({ emulator, stripe } = await emulatorWithClient());
    const { customer, meter } = await customerAndMeter(stripe);
    const { subscription, price } = await meteredPlan(stripe, customer.id, meter.id);
    expect(subscription).toMatchObject({
      object: 'subscription',
      status: 'active',
      customer: customer.id,
      currency: 'usd',
      start_date: seconds(T0),
      billing_cycle_anchor: NOV_1,
      items: { object: 'list', total_count: 1 },
    });
    const item = subscription.items.data[0];
    expect(item).toMatchObject({
      object: 'subscription_item',
      current_period_start: NOV_1,
      current_period_end: DEC_1,
      subscription: subscription.id,
      price: { id: price.id, recurring: { usage_type: 'metered', meter: meter.id } },
    });
    expect(item?.quantity).toBeUndefined();
    expect(subscription as unknown).toMatchObject({ current_period_start: NOV_1, current_period_end: DEC_1 });
    expect((await stripe.subscriptions.retrieve(subscription.id)).id).toBe(subscription.id);
    expect((await stripe.subscriptions.list({ customer: customer.id })).data.map((s) => s.id)).toEqual([
      subscription.id,
    ]);
    const updated = await stripe.subscriptions.update(subscription.id, { metadata: { tenant: 'acme' } });
    expect(updated.metadata).toEqual({ tenant: 'acme' });

    const rolled = emulator.rollSubscription(subscription.id);
    expect(rolled).toMatchObject({ current_period_start: DEC_1, current_period_end: JAN_1 });
    const after = await stripe.subscriptions.retrieve(subscription.id);
    expect(after.items.data[0]).toMatchObject({ current_period_start: DEC_1, current_period_end: JAN_1 });

    const canceled = await stripe.subscriptions.cancel(subscription.id);
    expect(canceled).toMatchObject({ status: 'canceled', canceled_at: seconds(T0), ended_at: seconds(T0) });
    expect((await stripe.subscriptions.list({ customer: customer.id })).data).toHaveLength(0);
    expect((await stripe.subscriptions.list({ customer: customer.id, status: 'all' })).data).toHaveLength(1);
  });

  it('steps periods from a billing_cycle_anchor, clamping month ends, and bills a licensed item in advance', async () => {
    ({ emulator, stripe } = await emulatorWithClient());
    const customer = await stripe.customers.create({ name: 'Seats' });
    const product = await stripe.products.create({ name: 'Seats' });
    const price = await stripe.prices.create({
      currency: 'usd',
      product: product.id,
      unit_amount: 1500,
      recurring: { interval: 'month' },
    });
    const anchor = Date.UTC(2026, 10, 30, 0, 0, 0) / 1000;
    const subscription = await stripe.subscriptions.create({
      customer: customer.id,
      items: [{ price: price.id, quantity: 3 }],
      billing_cycle_anchor: anchor,
    });
    expect(subscription.items.data[0]).toMatchObject({
      quantity: 3,
      current_period_start: seconds(T0),
      current_period_end: anchor,
    });
    const rolled = emulator.rollSubscription(subscription.id);
    expect(rolled).toMatchObject({
      current_period_start: anchor,
      current_period_end: Date.UTC(2026, 11, 30) / 1000,
    });
    const invoice = await preview(customer.id, subscription.id);
    expect(invoice.lines.data.map((l) => [l.quantity, l.amount, l.period])).toEqual([
      [3, 4500, { start: Date.UTC(2026, 11, 30) / 1000, end: Date.UTC(2027, 0, 30) / 1000 }],
    ]);
  });

  it('pays an invoice through the test helper and stores it', async () => {
    ({ emulator, stripe } = await emulatorWithClient());
    const { customer, meter } = await customerAndMeter(stripe);
    const { subscription } = await meteredPlan(stripe, customer.id, meter.id);
    await usage(customer.id, 150, NOV_1);
    const paid = emulator.payInvoice(customer.id);
    expect(paid).toMatchObject({ status: 'paid', total: 65_000, amount_paid: 65_000, amount_remaining: 0 });
    const failed = emulator.payInvoice(customer.id, { succeed: false });
    expect(failed).toMatchObject({
      status: 'open',
      amount_paid: 0,
      amount_remaining: 65_000,
      attempted: true,
    });
    const fetched = await stripe.invoices.retrieve(paid.id as string);
    expect(fetched).toMatchObject({ id: paid.id, status: 'paid', total: 65_000 });
    expect((await stripe.invoices.list({ customer: customer.id })).data.map((i) => i.id)).toEqual([
      failed.id,
      paid.id,
    ]);
    expect((await stripe.subscriptions.retrieve(subscription.id)).latest_invoice).toBe(failed.id);
  });
});

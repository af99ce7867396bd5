import { afterEach, describe, expect, it } from 'vitest';
import type Stripe from 'stripe';
import type { StripeEmulator } from '../../support/stripe-emulator/index.ts';
import { customerAndMeter, emulatorWithClient, meteredPlan, seconds, T0 } from './support.ts';

describe('stripe emulator, driven by stripe-node: subscription and invoice refusals', () => {
  let emulator: StripeEmulator;
  let stripe: Stripe;
  afterEach(async () => emulator.stop());

  it('refuses an unknown customer or price, a quantity on a metered item, and a one-time price', async () => {
    ({ emulator, stripe } = await emulatorWithClient());
    const { customer, meter } = await customerAndMeter(stripe);
    const { price } = await meteredPlan(stripe, customer.id, meter.id);
    await expect(
      stripe.subscriptions.create({ customer: 'cus_nope', items: [{ price: price.id }] }),
    ).rejects.toMatchObject({ statusCode: 400, code: 'resource_missing', param: 'customer' });
    await expect(
      stripe.subscriptions.create({ customer: customer.id, items: [{ price: 'price_nope' }] }),
    ).rejects.toMatchObject({ statusCode: 400, code: 'resource_missing', param: 'items[0][price]' });
    await expect(
      stripe.subscriptions.create({ customer: customer.id, items: [{ price: price.id, quantity: 2 }] }),
    ).rejects.toMatchObject({ statusCode: 400, param: 'items[0][quantity]' });
    const oneTime = await stripe.prices.create({
      currency: 'usd',
      product: price.product as string,
      unit_amount: 5,
    });
    await expect(
      stripe.subscriptions.create({ customer: customer.id, items: [{ price: oneTime.id }] }),
    ).rejects.toMatchObject({ statusCode: 400, param: 'items[0][price]' });
    await expect(
      stripe.subscriptions.create({
        customer: customer.id,
        items: [{ price: price.id }],
        billing_cycle_anchor: seconds(T0) - 60,
      }),
    ).rejects.toMatchObject({ statusCode: 400, param: 'billing_cycle_anchor' });
    await expect(stripe.subscriptions.retrieve('sub_nope')).rejects.toMatchObject({ statusCode: 404 });
    expect(emulator.state.subscriptions.size).toBe(1);
  });

  it('refuses a preview for an unknown or canceled subscription, or one of another customer', async () => {
    ({ emulator, stripe } = await emulatorWithClient());
    const { customer, meter } = await customerAndMeter(stripe);
    const other = await stripe.customers.create({ name: 'Other' });
    const { subscription } = await meteredPlan(stripe, customer.id, meter.id);
    await expect(
      stripe.invoices.createPreview({ customer: customer.id, subscription: 'sub_nope' }),
    ).rejects.toMatchObject({ statusCode: 400, code: 'resource_missing', param: 'subscription' });
    await expect(
      stripe.invoices.createPreview({ customer: other.id, subscription: subscription.id }),
    ).rejects.toMatchObject({ statusCode: 400, param: 'subscription' });
    await expect(stripe.invoices.createPreview({ customer: other.id })).rejects.toMatchObject({
      statusCode: 400,
      code: 'invoice_upcoming_none',
    });
    await stripe.subscriptions.cancel(subscription.id);
    await expect(
      stripe.invoices.createPreview({ customer: customer.id, subscription: subscription.id }),
    ).rejects.toMatchObject({ statusCode: 400, code: 'invoice_upcoming_none' });
    await expect(stripe.subscriptions.cancel(subscription.id)).rejects.toMatchObject({ statusCode: 400 });
    expect(() => emulator.payInvoice(customer.id)).toThrow(/no active subscription/);
  });

  it('serves new routes through faults: a 500 on create_preview is retried by stripe-node', async () => {
    ({ emulator, stripe } = await emulatorWithClient(1));
    const { customer, meter } = await customerAndMeter(stripe);
    const { price, subscription } = await meteredPlan(stripe, customer.id, meter.id);
    emulator.faults.next('/v1/invoices/create_preview', 'server_error');
    const invoice = await stripe.invoices.createPreview({
      customer: customer.id,
      subscription: subscription.id,
    });
    expect(invoice.total).toBe(0);
    expect(emulator.requests.filter((r) => r.path === '/v1/invoices/create_preview')).toHaveLength(2);
    emulator.faults.next('/v1/prices', 'rate_limit');
    await expect(stripe.prices.list()).resolves.toMatchObject({ object: 'list', data: [{ id: price.id }] });
    expect(emulator.requests.filter((r) => r.path === '/v1/prices' && r.method === 'GET')).toHaveLength(2);
  });
});

import { afterEach, describe, expect, it } from 'vitest';
import Stripe from 'stripe';
import type { StripeEmulator } from '../../support/stripe-emulator/index.ts';
import {
  customerAndMeter,
  emulatorWithClient,
  meteredPlan,
  seconds,
  T0,
  webhookReceiver,
} from './support.ts';

describe('stripe emulator, driven by stripe-node: webhook endpoints and signed deliveries', () => {
  let emulator: StripeEmulator;
  let stripe: Stripe;
  let receiver: Awaited<ReturnType<typeof webhookReceiver>> | undefined;
  afterEach(async () => {
    await emulator.stop();
    await receiver?.close();
    receiver = undefined;
  });

  /** Verifies a delivery with the real SDK; the emulated clock is fixed at T0, so age is measured from T0. */
  const verify = (body: string, header: unknown, secret: string) =>
    stripe.webhooks.constructEvent(body, String(header), secret, 300, undefined, T0);

  it('delivers customer.created and customer.updated, signed so stripe.webhooks.constructEvent accepts them', async () => {
    ({ emulator, stripe } = await emulatorWithClient());
    receiver = await webhookReceiver();
    const endpoint = await stripe.webhookEndpoints.create({
      url: receiver.url,
      enabled_events: ['customer.created', 'customer.updated'],
    });
    expect(endpoint).toMatchObject({ object: 'webhook_endpoint', status: 'enabled', url: receiver.url });
    expect(endpoint.secret).toMatch(/^whsec_/);
    expect((await stripe.webhookEndpoints.retrieve(endpoint.id)).secret).toBeUndefined();

    const customer = await stripe.customers.create({ name: 'Acme', metadata: { tenant: 'acme' } });
    const updated = await stripe.customers.update(customer.id, {
      metadata: { billing_meter_customer: 'acme-1' },
    });
    await emulator.webhooksSettled();

    expect(receiver.received).toHaveLength(2);
    const [created, changed] = receiver.received.map((r) => {
      expect(r.headers['content-type']).toMatch(/^application\/json/);
      expect(r.headers['stripe-signature']).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
      return verify(r.body, r.headers['stripe-signature'], endpoint.secret ?? '');
    });
    expect(created).toMatchObject({
      object: 'event',
      type: 'customer.created',
      api_version: '2026-10-28.endive',
      created: seconds(T0),
      livemode: false,
      pending_webhooks: 1,
      data: { object: { id: customer.id, object: 'customer', metadata: { tenant: 'acme' } } },
      request: { id: customer.lastResponse.requestId },
    });
    expect(created?.id).toMatch(/^evt_/);
    expect(changed).toMatchObject({
      type: 'customer.updated',
      data: {
        object: { id: customer.id, metadata: { tenant: 'acme', billing_meter_customer: 'acme-1' } },
        previous_attributes: { metadata: { billing_meter_customer: null } },
      },
      request: {
        id: updated.lastResponse.requestId,
        idempotency_key: expect.stringMatching(/^stripe-node-retry-/),
      },
    });
    expect(emulator.webhookDeliveries.map((d) => [d.event.type, d.state, d.attempts[0]?.status])).toEqual([
      ['customer.created', 'succeeded', 200],
      ['customer.updated', 'succeeded', 200],
    ]);
  });

  it('sends subscription and invoice events only to endpoints that enabled them', async () => {
    ({ emulator, stripe } = await emulatorWithClient());
    receiver = await webhookReceiver();
    const all = await stripe.webhookEndpoints.create({ url: receiver.url, enabled_events: ['*'] });
    const invoices = await stripe.webhookEndpoints.create({
      url: `${receiver.url}?only=invoices`,
      enabled_events: ['invoice.paid', 'invoice.payment_failed'],
    });
    const { customer, meter } = await customerAndMeter(stripe);
    const { subscription } = await meteredPlan(stripe, customer.id, meter.id);
    await stripe.subscriptions.update(subscription.id, { metadata: { plan: 'graduated' } });
    emulator.payInvoice(customer.id);
    emulator.payInvoice(customer.id, { succeed: false });
    await stripe.subscriptions.cancel(subscription.id);
    await emulator.webhooksSettled();

    const types = (endpointId: string) =>
      emulator.webhookDeliveries.filter((d) => d.endpointId === endpointId).map((d) => d.event.type);
    expect(types(invoices.id)).toEqual(['invoice.paid', 'invoice.payment_failed']);
    expect(types(all.id)).toEqual([
      'customer.created',
      'product.created',
      'price.created',
      'customer.subscription.created',
      'customer.subscription.updated',
      'invoice.created',
      'invoice.finalized',
      'invoice.paid',
      'invoice.payment_succeeded',
      'invoice.created',
      'invoice.finalized',
      'invoice.payment_failed',
      'customer.subscription.deleted',
    ]);
    const paid = emulator.webhookDeliveries.find((d) => d.endpointId === invoices.id)?.event;
    expect(paid).toMatchObject({
      pending_webhooks: 2,
      data: {
        object: { object: 'invoice', status: 'paid', customer: customer.id, subscription: subscription.id },
      },
    });
    // Deliveries run concurrently (Stripe does not promise order either): find it by content.
    const deleted = receiver.received.find((r) => r.body.includes('"customer.subscription.deleted"'));
    const event = verify(deleted?.body ?? '', deleted?.headers['stripe-signature'], all.secret ?? '');
    expect(event).toMatchObject({
      type: 'customer.subscription.deleted',
      data: { object: { id: subscription.id, status: 'canceled' } },
    });
    expect(receiver.received).toHaveLength(15);
  });

  it('retries a failed delivery, signing each attempt afresh, until the endpoint answers 2xx', async () => {
    ({ emulator, stripe } = await emulatorWithClient());
    receiver = await webhookReceiver([500, 503]);
    const endpoint = await stripe.webhookEndpoints.create({
      url: receiver.url,
      enabled_events: ['customer.created'],
    });
    await stripe.customers.create({ name: 'Retry' });
    await emulator.webhooksSettled();
    const [delivery] = emulator.webhookDeliveries;
    expect(delivery?.state).toBe('succeeded');
    expect(delivery?.attempts.map((a) => a.status)).toEqual([500, 503, 200]);
    expect(new Set(receiver.received.map((r) => r.body)).size).toBe(1);
    for (const r of receiver.received) verify(r.body, r.headers['stripe-signature'], endpoint.secret ?? '');
  });

  it('gives up after the retries on an endpoint that never answers, and records the errors', async () => {
    ({ emulator, stripe } = await emulatorWithClient());
    await stripe.webhookEndpoints.create({ url: 'http://127.0.0.1:1/unreachable', enabled_events: ['*'] });
    await stripe.customers.create({ name: 'Lost' });
    await emulator.webhooksSettled();
    const [delivery] = emulator.webhookDeliveries;
    expect(delivery?.state).toBe('failed');
    expect(delivery?.attempts).toHaveLength(4);
    expect(delivery?.attempts.every((a) => a.status === undefined && typeof a.error === 'string')).toBe(true);
  });

  it('lists, updates and deletes endpoints; a disabled endpoint receives nothing', async () => {
    ({ emulator, stripe } = await emulatorWithClient());
    receiver = await webhookReceiver();
    const endpoint = await stripe.webhookEndpoints.create({ url: receiver.url, enabled_events: ['*'] });
    expect((await stripe.webhookEndpoints.list()).data.map((e) => e.id)).toEqual([endpoint.id]);
    expect((await stripe.webhookEndpoints.update(endpoint.id, { disabled: true })).status).toBe('disabled');
    await stripe.customers.create({ name: 'Quiet' });
    await emulator.webhooksSettled();
    expect(receiver.received).toHaveLength(0);
    expect(await stripe.webhookEndpoints.del(endpoint.id)).toMatchObject({ id: endpoint.id, deleted: true });
    await expect(stripe.webhookEndpoints.retrieve(endpoint.id)).rejects.toMatchObject({ statusCode: 404 });
    await expect(
      stripe.webhookEndpoints.create({ url: 'not a url', enabled_events: ['*'] }),
    ).rejects.toMatchObject({ statusCode: 400, param: 'url' });
    expect((await stripe.events.list({ type: 'customer.created' })).data).toHaveLength(1);
  });
});

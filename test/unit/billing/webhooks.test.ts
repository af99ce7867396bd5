import { describe, expect, it } from 'vitest';
import { CustomerMappingService } from '../../../src/billing/stripe/customer-directory.ts';
import {
  InMemoryBillingStateStore,
  InMemoryCustomerMappingStore,
  InMemoryWebhookEventStore,
} from '../../../src/billing/stripe/in-memory-billing-stores.ts';
import { applyBillingChange, StripeWebhookService } from '../../../src/billing/stripe/webhooks.ts';
import { UpstreamError } from '../../../src/errors.ts';
import {
  customerObject,
  invoiceObject,
  sdkSignature,
  stripeEvent,
  subscriptionObject,
  WEBHOOK_SECRET,
} from '../../support/webhook-fixtures.ts';

const NOW = 1_793_000_000;

function setup() {
  const mappingStore = new InMemoryCustomerMappingStore();
  const events = new InMemoryWebhookEventStore();
  const states = new InMemoryBillingStateStore();
  const logs: { level: string; obj: object; msg: string }[] = [];
  const logger = {
    info: (obj: object, msg: string) => logs.push({ level: 'info', obj, msg }),
    warn: (obj: object, msg: string) => logs.push({ level: 'warn', obj, msg }),
  };
  let now = NOW;
  const clock = () => new Date(now * 1000);
  const mappings = new CustomerMappingService(mappingStore, clock);
  const webhooks = new StripeWebhookService({
    events,
    states,
    mappings,
    secret: WEBHOOK_SECRET,
    toleranceSeconds: 300,
    logger,
    now: clock,
  });
  /** Delivers an event as Stripe would: signed now. */
  const send = (event: Record<string, unknown>) => {
    const body = JSON.stringify(event);
    return webhooks.receive(Buffer.from(body), sdkSignature(body, now));
  };
  return { mappingStore, events, states, mappings, webhooks, logs, send, advance: (s: number) => (now += s) };
}

describe('webhook: customer events map customer keys', () => {
  it('maps metadata.billing_meter_customer on customer.created and .updated', async () => {
    const t = setup();
    await t.send(
      stripeEvent('customer.created', customerObject('cus_A1', { billing_meter_customer: 'acme' }), {
        created: NOW - 100,
      }),
    );
    expect(await t.mappings.get('acme')).toEqual({ stripeCustomerId: 'cus_A1', source: 'webhook' });
    await t.send(
      stripeEvent('customer.updated', customerObject('cus_B2', { billing_meter_customer: 'acme' }), {
        created: NOW - 50,
      }),
    );
    expect(await t.mappings.get('acme')).toEqual({ stripeCustomerId: 'cus_B2', source: 'webhook' });
  });

  it('ignores a customer without the metadata key', async () => {
    const t = setup();
    const r = await t.send(
      stripeEvent('customer.created', customerObject('cus_A1', { plan: 'gold' }), { created: NOW }),
    );
    expect(r.outcome).toBe('ignored');
    expect(t.mappingStore.explicit.size).toBe(0);
    expect(t.events.events.has(r.id)).toBe(true);
  });

  it('leaves the mapping, and logs, when the metadata key was removed', async () => {
    const t = setup();
    await t.send(
      stripeEvent('customer.created', customerObject('cus_A1', { billing_meter_customer: 'acme' }), {
        created: NOW - 100,
      }),
    );
    const r = await t.send(
      stripeEvent('customer.updated', customerObject('cus_A1', {}), {
        created: NOW - 10,
        previousAttributes: { metadata: { billing_meter_customer: 'acme' } },
      }),
    );
    expect(r.outcome).toBe('ignored');
    expect(await t.mappings.get('acme')).toEqual({ stripeCustomerId: 'cus_A1', source: 'webhook' });
    expect(t.logs.find((l) => l.level === 'warn')?.msg).toContain('was removed');
  });

  it('does not let an older customer event overwrite a newer mapping, admin or webhook', async () => {
    const t = setup();
    await t.mappings.map('acme', 'cus_Admin', 'admin'); // made at NOW
    const older = await t.send(
      stripeEvent('customer.updated', customerObject('cus_Old', { billing_meter_customer: 'acme' }), {
        created: NOW - 3600,
      }),
    );
    expect(older.outcome).toBe('stale');
    expect(await t.mappings.get('acme')).toEqual({ stripeCustomerId: 'cus_Admin', source: 'admin' });
    t.advance(60);
    const newer = await t.send(
      stripeEvent('customer.updated', customerObject('cus_New', { billing_meter_customer: 'acme' }), {
        created: NOW + 30,
      }),
    );
    expect(newer.outcome).toBe('handled');
    expect(await t.mappings.get('acme')).toEqual({ stripeCustomerId: 'cus_New', source: 'webhook' });
  });
});

describe('webhook: subscriptions and invoices', () => {
  it('stores a subscription with its period from the items (API 2026)', async () => {
    const t = setup();
    const sub = subscriptionObject({
      id: 'sub_1',
      customer: 'cus_A1',
      status: 'active',
      itemPeriods: [
        [1_790_000_000, 1_792_592_000],
        [1_790_000_100, 1_792_592_100],
      ],
    });
    await t.send(stripeEvent('customer.subscription.created', sub, { created: NOW - 10 }));
    expect(t.states.states.get('cus_A1')).toMatchObject({
      subscriptionId: 'sub_1',
      subscriptionStatus: 'active',
      currentPeriodStart: new Date(1_790_000_000_000),
      currentPeriodEnd: new Date(1_792_592_100_000),
      paymentStatus: '',
    });
  });

  it('falls back to the subscription fields on older API versions, and reads an expanded customer', async () => {
    const t = setup();
    const sub = subscriptionObject({
      id: 'sub_1',
      customer: { id: 'cus_A1', object: 'customer' },
      status: 'past_due',
      ownPeriod: [1_790_000_000, 1_792_592_000],
    });
    await t.send(stripeEvent('customer.subscription.updated', sub, { created: NOW - 10 }));
    expect(t.states.states.get('cus_A1')).toMatchObject({
      subscriptionStatus: 'past_due',
      currentPeriodStart: new Date(1_790_000_000_000),
      currentPeriodEnd: new Date(1_792_592_000_000),
    });
    await t.send(
      stripeEvent('customer.subscription.deleted', { ...sub, status: 'canceled' }, { created: NOW - 5 }),
    );
    expect(t.states.states.get('cus_A1')?.subscriptionStatus).toBe('canceled');
  });

  it('records payment failed, then paid, per invoice', async () => {
    const t = setup();
    await t.send(
      stripeEvent('invoice.payment_failed', invoiceObject('in_1', 'cus_A1'), { created: NOW - 100 }),
    );
    expect(t.states.states.get('cus_A1')).toMatchObject({ paymentStatus: 'failed', lastInvoiceId: 'in_1' });
    await t.send(stripeEvent('invoice.paid', invoiceObject('in_1', 'cus_A1', 'paid'), { created: NOW - 50 }));
    expect(t.states.states.get('cus_A1')).toMatchObject({ paymentStatus: 'paid', lastInvoiceId: 'in_1' });
  });

  it('never lets an older event overwrite newer state', async () => {
    const t = setup();
    await t.send(stripeEvent('invoice.paid', invoiceObject('in_2', 'cus_A1', 'paid'), { created: NOW - 50 }));
    const late = await t.send(
      stripeEvent('invoice.payment_failed', invoiceObject('in_1', 'cus_A1'), { created: NOW - 100 }),
    );
    expect(late.outcome).toBe('stale');
    expect(t.states.states.get('cus_A1')).toMatchObject({ paymentStatus: 'paid', lastInvoiceId: 'in_2' });
    await t.send(
      stripeEvent(
        'customer.subscription.updated',
        subscriptionObject({ id: 'sub_1', customer: 'cus_A1', status: 'active' }),
        { created: NOW - 40 },
      ),
    );
    const oldSub = await t.send(
      stripeEvent(
        'customer.subscription.updated',
        subscriptionObject({ id: 'sub_1', customer: 'cus_A1', status: 'incomplete' }),
        { created: NOW - 45 },
      ),
    );
    expect(oldSub.outcome).toBe('stale');
    expect(t.states.states.get('cus_A1')?.subscriptionStatus).toBe('active');
  });

  it('orders events of the same second by arrival', async () => {
    const t = setup();
    await t.send(
      stripeEvent('invoice.payment_failed', invoiceObject('in_1', 'cus_A1'), { created: NOW - 10 }),
    );
    await t.send(stripeEvent('invoice.paid', invoiceObject('in_2', 'cus_A1', 'paid'), { created: NOW - 10 }));
    expect(t.states.states.get('cus_A1')).toMatchObject({
      paymentStatus: 'paid',
      lastInvoiceId: 'in_2',
      version: BigInt((NOW - 10) * 1000 + 1),
    });
  });

  it('lets an older event of the other kind fill what no event has set, and paid settle a failed invoice', async () => {
    const t = setup();
    // Sign-up: the subscription and its first invoice, delivered out of order.
    await t.send(
      stripeEvent('invoice.payment_failed', invoiceObject('in_1', 'cus_A1'), { created: NOW - 10 }),
    );
    const sub = await t.send(
      stripeEvent(
        'customer.subscription.created',
        subscriptionObject({ id: 'sub_1', customer: 'cus_A1', status: 'incomplete' }),
        { created: NOW - 20 },
      ),
    );
    expect(sub.outcome).toBe('handled');
    await t.send(
      stripeEvent(
        'customer.subscription.updated',
        subscriptionObject({ id: 'sub_1', customer: 'cus_A1', status: 'active' }),
        { created: NOW - 1 },
      ),
    );
    // The paid event of the failed invoice, retried late, after a newer subscription event.
    const paid = await t.send(
      stripeEvent('invoice.paid', invoiceObject('in_1', 'cus_A1', 'paid'), { created: NOW - 5 }),
    );
    expect(paid.outcome).toBe('handled');
    expect(t.states.states.get('cus_A1')).toMatchObject({
      subscriptionId: 'sub_1',
      subscriptionStatus: 'active',
      paymentStatus: 'paid',
    });
  });

  it('ignores (200) an event whose object it cannot read, and a customer that is not cus_', async () => {
    const t = setup();
    expect(
      (await t.send(stripeEvent('invoice.paid', { id: 'in_1', object: 'invoice' }, { created: NOW })))
        .outcome,
    ).toBe('ignored');
    expect(
      (await t.send(stripeEvent('invoice.paid', invoiceObject('in_1', 'acct_1'), { created: NOW }))).outcome,
    ).toBe('ignored');
    expect(t.states.states.size).toBe(0);
  });
});

describe('webhook idempotency', () => {
  it('handles an event id once', async () => {
    const t = setup();
    const event = stripeEvent('invoice.payment_failed', invoiceObject('in_1', 'cus_A1'), {
      created: NOW - 10,
    });
    expect((await t.send(event)).outcome).toBe('handled');
    const before = { ...t.states.states.get('cus_A1')! };
    t.advance(5);
    expect((await t.send(event)).outcome).toBe('duplicate');
    expect(t.states.states.get('cus_A1')).toEqual(before);
  });

  it('records the id only after the effects are stored, so a retry after a failure redoes them', async () => {
    const t = setup();
    const event = stripeEvent('invoice.payment_failed', invoiceObject('in_1', 'cus_A1'), {
      created: NOW - 10,
    });
    t.states.failNextPut = new UpstreamError('clickhouse', 'insert failed', true);
    await expect(t.send(event)).rejects.toBeInstanceOf(UpstreamError);
    expect(t.events.events.size).toBe(0);
    expect((await t.send(event)).outcome).toBe('handled');
    expect(t.states.states.get('cus_A1')?.paymentStatus).toBe('failed');
    expect(t.events.events.has(event.id as string)).toBe(true);
  });

  it('redoes an event whose effects were stored but whose id was not, without changing anything', async () => {
    const t = setup();
    const event = stripeEvent('invoice.payment_failed', invoiceObject('in_1', 'cus_A1'), {
      created: NOW - 10,
    });
    await t.send(event);
    t.events.events.clear(); // as if the process died before recording the id
    const before = { ...t.states.states.get('cus_A1')! };
    expect((await t.send(event)).outcome).toBe('unchanged');
    expect(t.states.states.get('cus_A1')).toEqual(before);
  });
});

describe('applyBillingChange', () => {
  const now = new Date(NOW * 1000);
  const pay = (invoiceId: string, paymentStatus: 'paid' | 'failed') => ({
    kind: 'payment' as const,
    stripeCustomerId: 'cus_A',
    invoiceId,
    paymentStatus,
  });

  it('starts a row at the event time in ms', () => {
    expect(applyBillingChange(undefined, pay('in_1', 'failed'), 100, now)).toMatchObject({
      version: 100_000n,
      paymentStatus: 'failed',
      subscriptionId: '',
    });
  });

  it('orders subscription and payment events each by their own kind', () => {
    const sub = {
      kind: 'subscription' as const,
      stripeCustomerId: 'cus_A',
      subscriptionId: 'sub_1',
      status: 'active',
    };
    const paid = applyBillingChange(undefined, pay('in_1', 'failed'), 100, now)!;
    const subscribed = applyBillingChange(paid, sub, 300, now)!;
    // A payment event older than the subscription event but newer than the last payment event applies.
    const later = applyBillingChange(subscribed, pay('in_2', 'paid'), 200, now)!;
    expect(later).toMatchObject({
      paymentStatus: 'paid',
      lastInvoiceId: 'in_2',
      subscriptionStatus: 'active',
      paymentVersion: 200_000n,
      subscriptionVersion: 300_000n,
    });
    // The row's version still only goes up, so the latest write is the row kept.
    expect(later.version).toBeGreaterThan(subscribed.version);
    // An older payment event than the last payment event does not.
    expect(applyBillingChange(later, pay('in_0', 'failed'), 150, now)).toBeUndefined();
  });

  it('refuses a failure of a different, older invoice over a newer state', () => {
    const s = applyBillingChange(undefined, pay('in_2', 'failed'), 200, now)!;
    expect(applyBillingChange(s, pay('in_1', 'paid'), 100, now)).toBeUndefined();
    expect(applyBillingChange(s, pay('in_2', 'paid'), 100, now)).toMatchObject({
      paymentStatus: 'paid',
      version: 200_001n,
    });
  });
});

import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { ClickHouse } from '../../../src/storage/clickhouse/clickhouse.ts';
import { createStripeBilling, type StripeBilling } from '../../../src/services.ts';
import { ENGINES, openMigratedDatabase } from '../../support/clickhouse.ts';
import {
  ADMIN_KEY,
  customerObject,
  deliver,
  invoiceObject,
  sdkSignature,
  startStripeApp,
  stripeEvent,
  subscriptionObject,
  WEBHOOK_SECRET,
} from '../../support/webhook-fixtures.ts';

const now = () => Math.floor(Date.now() / 1000);

describe.each(ENGINES)('Stripe webhooks on %s ClickHouse', (engine) => {
  let ch: ClickHouse;
  let billing: StripeBilling;
  let app: Awaited<ReturnType<typeof startStripeApp>>;
  const send = async (event: Record<string, unknown>) => {
    const body = JSON.stringify(event);
    const res = await deliver(app.url, body, sdkSignature(body, now()));
    expect(res.status).toBe(200);
    return (await res.json()) as { outcome: string };
  };
  const admin = (path: string) =>
    fetch(`${app.url}${path}`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });

  beforeAll(async () => {
    ch = await openMigratedDatabase(engine, 'webhooks');
    billing = createStripeBilling({
      ch,
      meters: [],
      // No meters here: no usage to read.
      usage: {
        customersPeriod: async (customers) =>
          customers.map((customer) => ({ customer, period: { id: '', start: '', end: '' }, meters: [] })),
      },
      webhookSecret: WEBHOOK_SECRET,
      toleranceSeconds: 300,
      logger: pino({ level: 'silent' }),
    });
    app = await startStripeApp(billing);
  });
  afterAll(async () => {
    await app?.close();
    await ch?.command(`DROP DATABASE IF EXISTS ${ch.database}`);
    await ch?.close();
  });

  it('maps a customer from its metadata, once per event id', async () => {
    const event = stripeEvent(
      'customer.created',
      customerObject('cus_Hook1', { billing_meter_customer: "o'hara & co" }),
      { created: now() - 60 },
    );
    expect(await send(event)).toMatchObject({ outcome: 'handled' });
    expect(await send(event)).toMatchObject({ outcome: 'duplicate' });
    expect(await billing.mappings.get("o'hara & co")).toEqual({
      stripeCustomerId: 'cus_Hook1',
      source: 'webhook',
    });
    const rows = await ch.query(
      `SELECT event_id, type FROM ${ch.table('stripe_webhook_events')}`,
      z.object({ event_id: z.string(), type: z.string() }),
    );
    expect(rows).toEqual([{ event_id: event.id, type: 'customer.created' }]);
    const status = (await (
      await admin(`/v1/customers/${encodeURIComponent("o'hara & co")}/status`)
    ).json()) as Record<string, unknown>;
    expect(status).toMatchObject({
      status: 'ok',
      stripe_customer_id: 'cus_Hook1',
      mapping_source: 'webhook',
    });
  });

  it('keeps subscription and payment state, newest first, and answers unpaid', async () => {
    const t = now() - 600;
    await send(
      stripeEvent('customer.created', customerObject('cus_Pay1', { billing_meter_customer: 'payer' }), {
        created: t,
      }),
    );
    const sub = subscriptionObject({
      id: 'sub_P1',
      customer: 'cus_Pay1',
      status: 'active',
      itemPeriods: [[1_793_000_000, 1_795_592_000]],
    });
    await send(stripeEvent('customer.subscription.created', sub, { created: t + 1 }));
    expect(
      await send(
        stripeEvent('invoice.payment_failed', invoiceObject('in_P1', 'cus_Pay1'), { created: t + 10 }),
      ),
    ).toMatchObject({ outcome: 'handled' });
    // An older paid event of another invoice arrives late: it must not clear the failure.
    expect(
      await send(stripeEvent('invoice.paid', invoiceObject('in_P0', 'cus_Pay1', 'paid'), { created: t + 5 })),
    ).toMatchObject({ outcome: 'stale' });

    const unpaid = (await (await admin('/v1/customers/payer/status')).json()) as Record<string, unknown>;
    expect(unpaid).toMatchObject({
      customer: 'payer',
      status: 'unpaid',
      stripe_customer_id: 'cus_Pay1',
      reasons: [{ code: 'unpaid', invoice: 'in_P1' }],
      subscription: {
        id: 'sub_P1',
        status: 'active',
        current_period_start: new Date(1_793_000_000_000).toISOString(),
        current_period_end: new Date(1_795_592_000_000).toISOString(),
      },
    });

    await send(
      stripeEvent('customer.subscription.updated', { ...sub, status: 'past_due' }, { created: t + 20 }),
    );
    // The retry succeeds later; its event is delivered after the newer subscription change.
    expect(
      await send(
        stripeEvent('invoice.paid', invoiceObject('in_P1', 'cus_Pay1', 'paid'), { created: t + 15 }),
      ),
    ).toMatchObject({ outcome: 'handled' });
    const paid = (await (await admin('/v1/customers/payer/status')).json()) as Record<string, unknown>;
    expect(paid).toMatchObject({ status: 'ok', reasons: [], subscription: { status: 'past_due' } });

    const state = await billing.status.status('payer');
    expect(state.subscription?.id).toBe('sub_P1');
  });

  it('serves the admin mapping API with problem+json for bad input', async () => {
    const put = (key: string, body: string) =>
      fetch(`${app.url}/v1/admin/customers/${encodeURIComponent(key)}/stripe-customer`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
        body,
      });
    expect((await put('tenant/42', JSON.stringify({ stripe_customer_id: 'cus_T42' }))).status).toBe(200);
    expect(
      await (await admin(`/v1/admin/customers/${encodeURIComponent('tenant/42')}/stripe-customer`)).json(),
    ).toEqual({
      customer_key: 'tenant/42',
      stripe_customer_id: 'cus_T42',
      source: 'admin',
    });
    const bad = await put('tenant/42', JSON.stringify({ stripe_customer_id: 'sub_1' }));
    expect(bad.status).toBe(400);
    expect(bad.headers.get('content-type')).toContain('application/problem+json');
    expect((await put('tenant/42', '{')).status).toBe(400);
    expect((await put('tenant/42', JSON.stringify({ stripe_customer_id: 'cus_1', extra: 1 }))).status).toBe(
      400,
    );
    expect((await put('x'.repeat(1025), JSON.stringify({ stripe_customer_id: 'cus_1' }))).status).toBe(400);

    const list = (await (await admin('/v1/admin/customers/mappings?limit=1000')).json()) as {
      mappings: { customer_key: string; source: string }[];
      next_after: string | null;
    };
    expect(list.mappings.find((m) => m.customer_key === 'tenant/42')).toMatchObject({ source: 'admin' });
    expect(list.next_after).toBeNull();
    const page = (await (await admin('/v1/admin/customers/mappings?limit=1')).json()) as {
      mappings: unknown[];
      next_after: string;
    };
    expect(page.mappings).toHaveLength(1);
    const next = (await (
      await admin(`/v1/admin/customers/mappings?limit=1&after=${encodeURIComponent(page.next_after)}`)
    ).json()) as { mappings: { customer_key: string }[] };
    expect(next.mappings[0]!.customer_key > page.next_after).toBe(true);
    expect((await admin('/v1/admin/customers/mappings?limit=0')).status).toBe(400);

    const del = () =>
      fetch(`${app.url}/v1/admin/customers/${encodeURIComponent('tenant/42')}/stripe-customer`, {
        method: 'DELETE',
        headers: { authorization: `Bearer ${ADMIN_KEY}` },
      });
    expect((await del()).status).toBe(204);
    expect((await del()).status).toBe(404);
    expect(
      (await admin(`/v1/admin/customers/${encodeURIComponent('tenant/42')}/stripe-customer`)).status,
    ).toBe(404);

    expect((await fetch(`${app.url}/v1/admin/customers/mappings`)).status).toBe(401);
    expect((await fetch(`${app.url}/v1/customers/payer/status`)).status).toBe(401);
  });
});

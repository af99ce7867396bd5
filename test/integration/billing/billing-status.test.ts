import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { customerPageSchema } from '../../../src/http/openapi/schemas.ts';
import { HOUR_MS } from '../../../src/time/hours.ts';
import { meterSchema, type MeterDefinition } from '../../../src/meters/meter-schema.ts';
import { UsageQueryService } from '../../../src/meters/usage-query.ts';
import type { ClickHouse } from '../../../src/storage/clickhouse/clickhouse.ts';
import { ClickHouseMeterStore } from '../../../src/storage/clickhouse/meter-store.ts';
import { createStripeBilling, type StripeBilling } from '../../../src/services.ts';
import { ENGINES, openMigratedDatabase } from '../../support/clickhouse.ts';
import {
  ADMIN_KEY,
  invoiceObject,
  sdkSignature,
  deliver,
  startStripeApp,
  stripeEvent,
  WEBHOOK_SECRET,
} from '../../support/webhook-fixtures.ts';

// A fixed "now" in the middle of a billing period; usage stored for that period and the one before.
const NOW = new Date('2026-11-15T12:30:00Z');
const PERIOD_START = Date.UTC(2026, 10, 1);

const meter = (name: string, quota?: number): MeterDefinition =>
  meterSchema.parse({
    name,
    description: name,
    aggregation: { type: 'count' },
    unit: 'calls',
    ...(quota === undefined ? {} : { quota }),
  });
const METERS = [meter('credit-score', 1000), meter('credit-report', 50), meter('bytes')];

describe.each(ENGINES)('billing status on %s ClickHouse', (engine) => {
  let ch: ClickHouse;
  let billing: StripeBilling;
  let app: Awaited<ReturnType<typeof startStripeApp>>;
  const status = async (key: string) => {
    const res = await fetch(`${app.url}/v1/customers/${encodeURIComponent(key)}/status`, {
      headers: { authorization: `Bearer ${ADMIN_KEY}` },
    });
    expect(res.status).toBe(200);
    return (await res.json()) as {
      status: string;
      reasons: { code: string; meter?: string }[];
      meters: { meter: string; usage: string; quota?: number }[];
      stripe_customer_id?: string;
    };
  };

  beforeAll(async () => {
    ch = await openMigratedDatabase(engine, 'status');
    const store = new ClickHouseMeterStore(ch);
    const row = (m: string, customer: string, hourMs: number, value: number) => ({
      meter: m,
      version: 'v1',
      customer,
      hour: new Date(hourMs),
      value: BigInt(value),
      periodValue: 0n,
    });
    await store.writeUsage(
      [
        // Last period: does not count.
        row('credit-score', 'co_ok', PERIOD_START - HOUR_MS, 5000),
        row('credit-score', 'co_ok', PERIOD_START, 600),
        row('credit-score', 'co_ok', PERIOD_START + 24 * HOUR_MS, 399),
        row('credit-score', 'co_over', PERIOD_START, 700),
        row('credit-score', 'co_over', PERIOD_START + 5 * HOUR_MS, 300),
        row('credit-report', 'co_over', PERIOD_START + 5 * HOUR_MS, 51),
        row('bytes', 'co_over', PERIOD_START + 5 * HOUR_MS, 10_000_000),
      ],
      NOW,
      1n,
    );
    billing = createStripeBilling({
      ch,
      meters: METERS,
      usage: new UsageQueryService(store, store, () => NOW),
      webhookSecret: WEBHOOK_SECRET,
      toleranceSeconds: 300,
      logger: pino({ level: 'silent' }),
    });
    app = await startStripeApp(billing);
    await billing.mappings.map('co_ok', 'cus_Ok1', 'admin');
    await billing.mappings.map('co_over', 'cus_Over1', 'admin');
    await billing.mappings.map('co_unpaid', 'cus_Unpaid1', 'admin');
    const body = JSON.stringify(
      stripeEvent('invoice.payment_failed', invoiceObject('in_U1', 'cus_Unpaid1'), {
        created: Math.floor(Date.now() / 1000) - 5,
      }),
    );
    expect((await deliver(app.url, body, sdkSignature(body, Math.floor(Date.now() / 1000)))).status).toBe(
      200,
    );
  });
  afterAll(async () => {
    await app?.close();
    await ch?.command(`DROP DATABASE IF EXISTS ${ch.database}`);
    await ch?.close();
  });

  it('ok: under quota this period (last period does not count)', async () => {
    expect(await status('co_ok')).toEqual(
      expect.objectContaining({
        status: 'ok',
        stripe_customer_id: 'cus_Ok1',
        reasons: [],
        meters: [
          { meter: 'credit-score', usage: '999', quota: 1000 },
          { meter: 'credit-report', usage: '0', quota: 50 },
          { meter: 'bytes', usage: '0' },
        ],
      }),
    );
  });

  it('over_quota: every meter at or over its quota', async () => {
    const s = await status('co_over');
    expect(s.status).toBe('over_quota');
    expect(s.reasons.map((r) => [r.code, r.meter])).toEqual([
      ['over_quota', 'credit-score'],
      ['over_quota', 'credit-report'],
    ]);
    expect(s.meters.find((m) => m.meter === 'bytes')).toEqual({ meter: 'bytes', usage: '10000000' });
  });

  it('unpaid: the latest invoice payment failed', async () => {
    expect(await status('co_unpaid')).toMatchObject({ status: 'unpaid', reasons: [{ code: 'unpaid' }] });
  });

  it('unmapped: no Stripe customer; a cus_ key maps itself', async () => {
    expect(await status('co_unknown')).toMatchObject({ status: 'unmapped', reasons: [{ code: 'unmapped' }] });
    expect(await status('cus_Direct9')).toMatchObject({ status: 'ok', stripe_customer_id: 'cus_Direct9' });
  });

  it('says seen: false for a key never heard of, and seen: true for one with usage or a mapping', async () => {
    expect(await status('co_never')).toMatchObject({ seen: false, status: 'unmapped' });
    expect(await status('co_ok')).toMatchObject({ seen: true });
    // Mapped, with no usage at all.
    expect(await status('co_unpaid')).toMatchObject({ seen: true });
  });

  it('lists the known customers a page at a time, by prefix, with mapping, status and usage', async () => {
    // A key that needs escaping, and one whose prefix is a prefix of another's in bytes, not in letters.
    await billing.mappings.map("co_o'hara", 'cus_Ohara1', 'admin');
    const page = async (query: string) => {
      const res = await fetch(`${app.url}/v1/customers?${query}`, {
        headers: { authorization: `Bearer ${ADMIN_KEY}` },
      });
      expect(res.status).toBe(200);
      return (await res.json()) as {
        customers: {
          customer: string;
          status: string;
          stripe_customer_id?: string;
          meters: { usage: string }[];
        }[];
        next_after: string | null;
      };
    };
    const first = await page('limit=2&prefix=co_');
    customerPageSchema.parse(first);
    expect(first.customers.map((c) => [c.customer, c.status, c.stripe_customer_id])).toEqual([
      ["co_o'hara", 'ok', 'cus_Ohara1'],
      ['co_ok', 'ok', 'cus_Ok1'],
    ]);
    expect(first.customers[1]!.meters.map((m) => m.usage)).toEqual(['999', '0', '0']);
    expect(first.next_after).toBe('co_ok');
    const second = await page(`limit=2&prefix=co_&after=${encodeURIComponent(first.next_after!)}`);
    expect(second.customers.map((c) => [c.customer, c.status])).toEqual([
      ['co_over', 'over_quota'],
      ['co_unpaid', 'unpaid'],
    ]);
    const last = await page(`limit=2&prefix=co_&after=co_unpaid`);
    expect(last).toEqual({ customers: [], next_after: null });
    expect((await page("prefix=co_o'")).customers.map((c) => c.customer)).toEqual(["co_o'hara"]);
    expect((await page('prefix=zz')).customers).toEqual([]);
    const bad = await fetch(`${app.url}/v1/customers?limit=0`, {
      headers: { authorization: `Bearer ${ADMIN_KEY}` },
    });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { errors: { field: string }[] }).errors[0]!.field).toBe('limit');
  });
});

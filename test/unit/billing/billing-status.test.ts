import { describe, expect, it } from 'vitest';
import { BillingStatusService, type BillingState } from '../../../src/billing/stripe/billing-status.ts';
import { CustomerMappingService } from '../../../src/billing/stripe/customer-directory.ts';
import {
  InMemoryBillingStateStore,
  InMemoryCustomerIndex,
  InMemoryCustomerMappingStore,
} from '../../../src/billing/stripe/in-memory-billing-stores.ts';
import { UpstreamError } from '../../../src/errors.ts';
import { meterSchema, type MeterDefinition } from '../../../src/meters/meter-schema.ts';

const meter = (name: string, quota?: number): MeterDefinition =>
  meterSchema.parse({
    name,
    description: name,
    aggregation: { type: 'count' },
    unit: 'calls',
    ...(quota === undefined ? {} : { quota }),
  });

const METERS = [meter('calls', 1000), meter('bytes'), meter('reports', 10)];
const PERIOD = { id: '2026-11', start: '2026-11-01T00:00:00.000Z', end: '2026-12-01T00:00:00.000Z' };

/** customersPeriod over fixed quantities; `asked` records every page of customers asked for. */
function fixedUsage(usage: Record<string, Record<string, string>>, asked: string[][] = []) {
  return {
    customersPeriod: async (customers: readonly string[], meters: readonly MeterDefinition[]) => {
      asked.push([...customers]);
      return customers.map((customer) => ({
        customer,
        period: PERIOD,
        meters: meters.map((m) => ({
          meter: m.name,
          unit: m.unit,
          quantity: usage[customer]?.[m.name] ?? '0',
        })),
      }));
    },
  };
}

function state(over: Partial<BillingState>): BillingState {
  return {
    stripeCustomerId: 'cus_A',
    subscriptionId: '',
    subscriptionStatus: '',
    currentPeriodStart: undefined,
    currentPeriodEnd: undefined,
    paymentStatus: '',
    lastInvoiceId: '',
    updatedAt: new Date(0),
    subscriptionVersion: 1n,
    paymentVersion: 1n,
    version: 1n,
    ...over,
  };
}

function setup(usage: Record<string, Record<string, string>> = {}) {
  const mappingStore = new InMemoryCustomerMappingStore();
  const states = new InMemoryBillingStateStore();
  const mappings = new CustomerMappingService(mappingStore);
  const customers = new InMemoryCustomerIndex();
  for (const key of Object.keys(usage)) customers.keys.add(key);
  const asked: string[][] = [];
  const service = new BillingStatusService({
    directory: mappings,
    states,
    usage: fixedUsage(usage, asked),
    meters: METERS,
    customers,
  });
  return { mappingStore, states, mappings, customers, service, asked };
}

describe('billing status', () => {
  it('ok: mapped, paid, under every quota', async () => {
    const t = setup({ acme: { calls: '999', bytes: '123456789012345678', reports: '9' } });
    await t.mappings.map('acme', 'cus_A', 'admin');
    await t.states.put(
      state({
        paymentStatus: 'paid',
        lastInvoiceId: 'in_1',
        subscriptionId: 'sub_1',
        subscriptionStatus: 'active',
        currentPeriodStart: new Date(Date.UTC(2026, 10, 1)),
      }),
    );
    expect(await t.service.status('acme')).toEqual({
      customer: 'acme',
      seen: true,
      status: 'ok',
      stripe_customer_id: 'cus_A',
      mapping_source: 'admin',
      reasons: [],
      meters: [
        { meter: 'calls', usage: '999', quota: 1000 },
        { meter: 'bytes', usage: '123456789012345678' },
        { meter: 'reports', usage: '9', quota: 10 },
      ],
      subscription: { id: 'sub_1', status: 'active', current_period_start: '2026-11-01T00:00:00.000Z' },
      period: PERIOD,
    });
  });

  it('unpaid: the latest invoice event was a failed payment', async () => {
    const t = setup();
    t.mappingStore.moesif.set('acme', 'cus_A');
    await t.states.put(state({ paymentStatus: 'failed', lastInvoiceId: 'in_9' }));
    const s = await t.service.status('acme');
    expect(s).toMatchObject({
      status: 'unpaid',
      stripe_customer_id: 'cus_A',
      mapping_source: 'moesif',
      reasons: [{ code: 'unpaid', invoice: 'in_9' }],
    });
  });

  it('over_quota: usage at or above a meter quota, every such meter listed', async () => {
    const t = setup({ cus_A: { calls: '1000', reports: '11' } });
    const s = await t.service.status('cus_A');
    expect(s.status).toBe('over_quota');
    expect(s.reasons).toEqual([
      expect.objectContaining({ code: 'over_quota', meter: 'calls', usage: '1000', quota: 1000 }),
      expect.objectContaining({ code: 'over_quota', meter: 'reports', usage: '11', quota: 10 }),
    ]);
    expect(s.mapping_source).toBe('customer_id');
  });

  it('unmapped: no Stripe customer, with no billing state to read', async () => {
    const t = setup();
    const s = await t.service.status('acme');
    expect(s).toMatchObject({ customer: 'acme', status: 'unmapped', reasons: [{ code: 'unmapped' }] });
    expect(s.stripe_customer_id).toBeUndefined();
    expect(s.meters).toHaveLength(3);
  });

  it('lists every reason that applies, the status being the first by unpaid > over_quota > unmapped', async () => {
    const over = setup({ acme: { reports: '10' } });
    expect((await over.service.status('acme')).reasons.map((r) => r.code)).toEqual([
      'over_quota',
      'unmapped',
    ]);
    expect((await over.service.status('acme')).status).toBe('over_quota');

    const all = setup({ acme: { calls: '5000' } });
    await all.mappings.map('acme', 'cus_A', 'admin');
    await all.states.put(state({ paymentStatus: 'failed', lastInvoiceId: 'in_1' }));
    const s = await all.service.status('acme');
    expect(s.status).toBe('unpaid');
    expect(s.reasons.map((r) => r.code)).toEqual(['unpaid', 'over_quota']);
  });

  it('a quota of 0 allows nothing', async () => {
    const t = new BillingStatusService({
      directory: {
        getMany: async (keys) =>
          new Map(keys.map((k) => [k, { stripeCustomerId: 'cus_A', source: 'admin' as const }])),
      },
      states: new InMemoryBillingStateStore(),
      usage: fixedUsage({}),
      meters: [meter('blocked', 0)],
      customers: new InMemoryCustomerIndex(),
    });
    expect((await t.status('acme')).status).toBe('over_quota');
  });

  it('fails, never answers ok, when usage cannot be read', async () => {
    const t = new BillingStatusService({
      directory: { getMany: async () => new Map() },
      states: new InMemoryBillingStateStore(),
      usage: { customersPeriod: async () => Promise.reject(new UpstreamError('clickhouse', 'down', true)) },
      meters: METERS,
      customers: new InMemoryCustomerIndex(),
    });
    await expect(t.status('acme')).rejects.toBeInstanceOf(UpstreamError);
  });

  it('says seen: false for a key billing-meter never heard of, and still answers its status', async () => {
    const t = setup({ acme: { calls: '1' } });
    expect(await t.service.status('nobody')).toMatchObject({
      customer: 'nobody',
      seen: false,
      status: 'unmapped',
      meters: [
        { meter: 'calls', usage: '0' },
        { meter: 'bytes', usage: '0' },
        { meter: 'reports', usage: '0' },
      ],
    });
    expect((await t.service.status('acme')).seen).toBe(true);
  });

  it('lists the known customers by key, a page at a time, with one usage read per page', async () => {
    const t = setup({ 'co-a': { calls: '1000' }, 'co-b': {}, 'co-c': { reports: '3' }, 'other-1': {} });
    await t.mappings.map('co-b', 'cus_B', 'admin');
    await t.states.put(state({ stripeCustomerId: 'cus_B', paymentStatus: 'failed', lastInvoiceId: 'in_7' }));
    const first = await t.service.list({ limit: 2, prefix: 'co-' });
    expect(first.customers.map((c) => [c.customer, c.status, c.stripe_customer_id])).toEqual([
      ['co-a', 'over_quota', undefined],
      ['co-b', 'unpaid', 'cus_B'],
    ]);
    expect(first.next_after).toBe('co-b');
    const second = await t.service.list({ limit: 2, prefix: 'co-', after: first.next_after! });
    expect(second.customers.map((c) => c.customer)).toEqual(['co-c']);
    expect(second.customers[0]!.meters.find((m) => m.meter === 'reports')).toEqual({
      meter: 'reports',
      usage: '3',
      quota: 10,
    });
    expect(second.next_after).toBeNull();
    expect(t.asked).toEqual([['co-a', 'co-b'], ['co-c']]);
  });
});

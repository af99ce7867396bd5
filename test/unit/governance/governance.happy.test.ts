import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { CustomerMappingService } from '../../../src/billing/stripe/customer-directory.ts';
import {
  InMemoryBillingStateStore,
  InMemoryCustomerIndex,
  InMemoryCustomerMappingStore,
} from '../../../src/billing/stripe/in-memory-billing-stores.ts';
import { CurrentUsage } from '../../../src/governance/current-usage.ts';
import { Governance, fillMergeTags } from '../../../src/governance/governance.ts';
import { parseRuleText, type LoadedRule } from '../../../src/governance/load-rules.ts';
import { Membership } from '../../../src/governance/membership.ts';
import { compileMeterPeriod } from '../../../src/meters/compile.ts';
import { meterSchema, type MeterDefinition } from '../../../src/meters/meter-schema.ts';

// The SDK's own rule engine, to check that it decides what we decide from the same rules and config.
const require = createRequire(import.meta.url);
const sdkRules = require('moesif-nodejs/lib/governanceRulesManager.js') as {
  _cacheRules(rules: unknown[]): void;
  governRequestNextJs(
    config: unknown,
    userId: string | undefined,
    companyId: string | undefined,
    body: unknown,
    headers: Record<string, string>,
    url: string,
    ip: string,
    method: string,
  ): { status: number | null; headers: Record<string, string>; body: unknown; blocked_by: string | null };
};

const meters = [
  { name: 'credit-score-calls', unit: 'calls', quota: 100 },
  { name: 'response-bytes', unit: 'bytes' },
] as unknown as MeterDefinition[];

const rule = (file: string, text: string): LoadedRule => {
  const r = parseRuleText(text, file, meters);
  if ('errors' in r) throw new Error(r.errors.map((e) => e.message).join('\n'));
  return r.rule;
};

const RULES = [
  rule(
    'governance/10-unpaid.yaml',
    [
      'name: unpaid',
      'applies_to: {status: unpaid}',
      'response:',
      '  headers: {X-Reason: unpaid}',
      "  body: {error: 'invoice unpaid for {{customer}}'}",
    ].join('\n'),
  ),
  rule(
    'governance/20-quota.yaml',
    [
      'name: over-quota',
      'applies_to: {status: over_quota, meter: credit-score-calls}',
      'when:',
      '  routes: [/RetrieveCreditScore, /v1/score/:id]',
      '  methods: [POST]',
      'response:',
      "  headers: {Retry-After: '3600'}",
      "  body: {error: '{{customer}} used {{usage}} of {{quota}} {{meter}}', plan: '{{plan|free}}'}",
    ].join('\n'),
  ),
  rule(
    'governance/30-beta.yaml',
    [
      'name: beta-only',
      'applies_to: {customers: [co_beta]}',
      'when:',
      '  where: [{field: header.X-Beta, op: eq, value: "no"}]',
      'response: {body: {error: beta}}',
    ].join('\n'),
  ),
];

async function setUp() {
  const usage = new Map<string, bigint>([
    ['co_paid', 5n],
    ['co_over', 150n],
    ['co_late', 1n],
    ['co_beta', 1n],
  ]);
  const mappings = new CustomerMappingService(new InMemoryCustomerMappingStore());
  for (const key of ['co_paid', 'co_over', 'co_late', 'co_beta'])
    await mappings.map(key, `cus_${key.replace('_', '')}`, 'admin');
  const states = new InMemoryBillingStateStore();
  const customers = new InMemoryCustomerIndex();
  const current = new CurrentUsage({
    source: { period: async (m) => (m.name === 'credit-score-calls' ? new Map(usage) : new Map()) },
    meters: () => meters,
    now: () => new Date('2026-11-15T12:00:00Z'),
  });
  const membership = new Membership({
    usage: current,
    directory: mappings,
    states,
    customers,
    meters: () => meters,
  });
  const governance = new Governance(membership);
  governance.replaceRules(RULES);
  const failInvoice = async (customer: string, status: 'failed' | 'paid') =>
    states.put({
      stripeCustomerId: `cus_${customer.replace('_', '')}`,
      subscriptionId: '',
      subscriptionStatus: '',
      currentPeriodStart: undefined,
      currentPeriodEnd: undefined,
      paymentStatus: status,
      lastInvoiceId: 'in_1',
      updatedAt: new Date(),
      subscriptionVersion: 0n,
      paymentVersion: BigInt(Date.now()),
      version: BigInt(Date.now()),
    });
  await failInvoice('co_late', 'failed');
  await current.refresh();
  await membership.refresh();
  return { governance, membership, current, usage, failInvoice };
}

describe('governance decisions from memory', () => {
  it('unpaid, over quota (on its routes and methods only), explicit customers, others served', async () => {
    const { governance } = await setUp();
    const post = { route: '/RetrieveCreditScore', method: 'POST' };
    expect(governance.access('co_paid', post)).toMatchObject({ allowed: true, status: 'ok' });
    expect(governance.access('co_late', post)).toMatchObject({
      allowed: false,
      status: 'unpaid',
      rule: {
        name: 'unpaid',
        response: {
          status: 402,
          headers: { 'X-Reason': 'unpaid' },
          body: { error: 'invoice unpaid for co_late' },
        },
      },
    });
    expect(governance.access('co_over', post)).toMatchObject({
      allowed: false,
      rule: {
        name: 'over-quota',
        response: {
          status: 429,
          headers: { 'Retry-After': '3600' },
          body: { error: 'co_over used 150 of 100 credit-score-calls', plan: 'free' },
        },
      },
      quotas: [{ meter: 'credit-score-calls', quota: 100, usage: '150', remaining: '0' }],
    });
    expect(governance.access('co_over', { route: '/RetrieveCreditScore?x=1', method: 'GET' }).allowed).toBe(
      true,
    );
    expect(governance.access('co_over', { route: '/v1/score/42', method: 'POST' }).allowed).toBe(false);
    expect(governance.access('co_over', { route: '/v1/score/42/x', method: 'POST' }).allowed).toBe(true);
    expect(governance.access('co_paid', post).quotas).toEqual([
      { meter: 'credit-score-calls', quota: 100, usage: '5', remaining: '95' },
    ]);
    expect(governance.access('co_beta', { ...post, headers: { 'x-beta': 'no' } })).toMatchObject({
      allowed: false,
      rule: { name: 'beta-only', response: { status: 403, body: { error: 'beta' } } },
    });
    expect(governance.access('co_beta', { ...post, headers: { 'x-beta': 'yes' } }).allowed).toBe(true);
    expect(() => governance.access('co_nobody', post)).toThrow(/no customer 'co_nobody' is known/);
  });

  it('the Moesif SDK decides the same from /v1/rules and /v1/config', async () => {
    const { governance } = await setUp();
    sdkRules._cacheRules(JSON.parse(JSON.stringify(governance.moesifRules())) as unknown[]);
    const config = JSON.parse(JSON.stringify(governance.moesifConfig().body)) as unknown;
    const cases: [string, string, string, Record<string, string>][] = [
      ['co_paid', '/RetrieveCreditScore', 'POST', {}],
      ['co_late', '/RetrieveCreditScore', 'GET', {}],
      ['co_over', '/RetrieveCreditScore?ssn=1', 'POST', {}],
      ['co_over', '/RetrieveCreditScore', 'GET', {}],
      ['co_over', '/v1/score/7', 'POST', {}],
      ['co_beta', '/x', 'GET', { 'x-beta': 'no' }],
      ['co_beta', '/x', 'GET', { 'x-beta': 'yes' }],
    ];
    for (const [customer, route, method, headers] of cases) {
      const ours = governance.access(customer, { route, method, headers });
      const sdk = sdkRules.governRequestNextJs(
        config,
        undefined,
        customer,
        null,
        headers,
        route,
        '127.0.0.1',
        method,
      );
      expect({
        customer,
        route,
        method,
        blocked: sdk.blocked_by,
        status: sdk.status,
        body: sdk.body,
      }).toEqual({
        customer,
        route,
        method,
        blocked: ours.rule?.name ?? null,
        status: ours.rule?.response.status ?? null,
        body: ours.rule?.response.body ?? null,
      });
    }
  });

  it('the config etag changes when membership changes, and only then', async () => {
    const { governance, membership, current, usage, failInvoice } = await setUp();
    const before = governance.etag();
    await membership.refresh();
    expect(governance.etag()).toBe(before);
    await failInvoice('co_late', 'paid');
    await membership.refresh();
    const paid = governance.etag();
    expect(paid).not.toBe(before);
    expect(governance.moesifConfig().body.company_rules['co_late']).toBeUndefined();
    usage.set('co_paid', 100n);
    await current.refresh();
    await membership.refresh();
    expect(governance.etag()).not.toBe(paid);
    expect(governance.moesifConfig().body.company_rules['co_paid']).toEqual([
      {
        rules: 'over-quota',
        values: { customer: 'co_paid', meter: 'credit-score-calls', quota: '100', usage: '100' },
      },
    ]);
  });

  it('a failed usage refresh keeps the last usage (never 0)', async () => {
    const errors: unknown[] = [];
    const current = new CurrentUsage({
      source: {
        period: async () => {
          if (errors.length > 0 || calls++ > 0) throw new Error('clickhouse down');
          return new Map([['co', 7n]]);
        },
      },
      meters: () => meters.slice(0, 1),
      onError: (err) => errors.push(err),
    });
    let calls = 0;
    await current.refresh();
    expect(await current.refresh()).toBeUndefined();
    expect(errors).toHaveLength(1);
    expect(current.quantity('credit-score-calls', 'co')).toBe(7n);
  });

  it('current usage asks the meter queries for whole hours: period start to the end of this hour', async () => {
    const ranges: string[] = [];
    const meter = meterSchema.parse({
      name: 'calls',
      description: 'd',
      aggregation: { type: 'count' },
      unit: 'calls',
    });
    const current = new CurrentUsage({
      source: {
        period: async (m, from, to) => {
          compileMeterPeriod(m, { table: 'request_logs', from, to }); // throws on a range the SQL refuses
          ranges.push(`${from.toISOString()} ${to.toISOString()}`);
          return new Map();
        },
      },
      meters: () => [meter],
      now: () => new Date('2026-11-15T12:34:56Z'),
      onError: (err) => ranges.push(String(err)),
    });
    await current.refresh();
    expect(ranges).toEqual(['2026-11-01T00:00:00.000Z 2026-11-15T13:00:00.000Z']);
  });

  it('merge tags as the SDK fills them: a default after |, UNKNOWN without one', () => {
    expect(fillMergeTags({ a: ['{{customer}}: {{meter|any}} {{usage}}'], n: 3 }, { customer: 'co' })).toEqual(
      {
        a: ['co: any UNKNOWN'],
        n: 3,
      },
    );
  });
});

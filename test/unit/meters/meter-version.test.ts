import { describe, expect, it } from 'vitest';
import { meterSchema } from '../../../src/meters/meter-schema.ts';
import type { MeterInput } from '../../../src/meters/meter-schema.ts';
import { canonicalMeterJson, meterVersion } from '../../../src/meters/meter-version.ts';

const base: MeterInput = {
  name: 'credit-score',
  description: 'Successful lookups',
  filter: { routes: ['/RetrieveCreditScore'], status: 200 },
  aggregation: { type: 'count' },
  unit: 'calls',
};

const version = (meter: MeterInput) => meterVersion(meterSchema.parse(meter));

describe('meterVersion', () => {
  it('is 16 hex digits of the sha256 of the canonical JSON, keys sorted, defaults applied', () => {
    expect(canonicalMeterJson(meterSchema.parse(base))).toBe(
      '{"aggregation":{"type":"count"},"customer":"company_id","filter":{"routes":["/RetrieveCreditScore"],"status":[200]},"name":"credit-score"}',
    );
    // sha256 of the line above, first 16 hex digits (computed independently with `sha256sum`).
    expect(version(base)).toBe('285fabb7bbc8b3d6');
  });

  it.each<[string, MeterInput]>([
    ['the description', { ...base, description: 'reworded' }],
    ['the unit', { ...base, unit: 'lookups' }],
    ['the quota', { ...base, quota: 10_000 }],
    ['the effective time', { ...base, effective_from: '2025-02-01T00:00:00Z' }],
    ['the default customer spelt out', { ...base, customer: 'company_id' }],
    [
      'a single status written as a list',
      { ...base, filter: { routes: ['/RetrieveCreditScore'], status: [200] } },
    ],
    [
      'key order',
      {
        unit: 'calls',
        aggregation: { type: 'count' },
        filter: { status: 200, routes: ['/RetrieveCreditScore'] },
        description: 'x',
        name: 'credit-score',
      },
    ],
  ])('does not change with %s', (_label, meter) => {
    expect(version(meter)).toBe(version(base));
  });

  it('does not change with the case of a method or header name', () => {
    const a = {
      ...base,
      filter: { methods: ['get'], where: [{ field: 'header.X-Plan', op: 'eq' as const, value: 'pro' }] },
    };
    const b = {
      ...base,
      filter: { methods: ['GET'], where: [{ field: 'header.x-plan', op: 'eq' as const, value: 'pro' }] },
    };
    expect(version(a)).toBe(version(b));
  });

  it.each<[string, MeterInput]>([
    ['the name', { ...base, name: 'credit-score-2' }],
    ['the routes', { ...base, filter: { routes: ['/RetrieveCreditScore', '/v2/score'], status: 200 } }],
    ['the status', { ...base, filter: { routes: ['/RetrieveCreditScore'], status: '2xx' } }],
    [
      'a where condition',
      { ...base, filter: { ...base.filter, where: [{ field: 'host', op: 'eq', value: 'api.test' }] } },
    ],
    ['the aggregation', { ...base, aggregation: { type: 'unique_count', value: 'user_id' } }],
    ['the customer', { ...base, customer: 'user_id' }],
    ['the Stripe event name', { ...base, stripe: { event_name: 'credit_score' } }],
    [
      'the pricing',
      {
        ...base,
        pricing: {
          currency: 'usd',
          tiers_mode: 'volume',
          tiers: [{ up_to: 'inf', unit_amount_decimal: '200' }],
        },
      },
    ],
  ])('changes with %s', (_label, meter) => {
    expect(version(meter)).not.toBe(version(base));
  });
});

import { describe, expect, it } from 'vitest';
import { AGGREGATIONS } from '../../../src/meters/aggregations.ts';
import { AGGREGATION_TYPES } from '../../../src/meters/meter-schema.ts';

describe('aggregations', () => {
  it('has one strategy for every aggregation type a meter can declare', () => {
    expect(Object.keys(AGGREGATIONS).sort()).toEqual([...AGGREGATION_TYPES].sort());
    for (const type of AGGREGATION_TYPES) expect(AGGREGATIONS[type].type).toBe(type);
  });

  it.each([
    ['count', true, 'sum', true, 'toString(sum(sample_weight))'],
    ['sum', true, 'sum', true, 'toString(sum(metered * sample_weight))'],
    ['min', false, 'last', false, 'toString(min(metered))'],
    ['max', false, 'last', false, 'toString(max(metered))'],
    ['unique_count', false, 'last', false, 'toString(uniqExact(metered))'],
    ['latest', false, 'last', false, 'toString(argMax(metered, (request_time, request_time_ms, event_id)))'],
  ] as const)(
    '%s: additive %s, a Stripe %s meter, dedupe %s, SQL %s',
    (type, additive, formula, dedupe, sql) => {
      const a = AGGREGATIONS[type];
      expect(a.additive).toBe(additive);
      expect(a.stripeFormula).toBe(formula);
      expect(a.needsDedupe).toBe(dedupe);
      expect(a.sql.text).toBe(sql);
    },
  );

  it('reads the weight exactly where the hours add up, and a value everywhere but count', () => {
    for (const a of Object.values(AGGREGATIONS)) {
      expect(a.reads.weight).toBe(a.additive);
      expect(a.reads.value).toBe(a.type !== 'count');
      expect(a.reads.latestOrder).toBe(a.type === 'latest');
    }
  });
});

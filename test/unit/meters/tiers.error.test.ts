import { describe, expect, it } from 'vitest';
import { priceTiers, pricingSchema } from '../../../src/meters/tiers.ts';
import type { Pricing } from '../../../src/meters/tiers.ts';

const VALID = {
  currency: 'usd',
  tiers_mode: 'graduated',
  tiers: [
    { up_to: 100, unit_amount_decimal: '500' },
    { up_to: 'inf', unit_amount_decimal: '200' },
  ],
};

/** Every issue as "path: message", in the order zod reports them. */
const issuesOf = (input: unknown): string[] => {
  const result = pricingSchema.safeParse(input);
  if (result.success) return [];
  return result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
};

describe('pricingSchema', () => {
  it('accepts the valid block unchanged', () => {
    expect(pricingSchema.parse(VALID)).toEqual(VALID);
  });

  it.each<{ name: string; input: unknown; issues: string[] }>([
    {
      name: 'upper-case or non-ISO currency',
      input: { ...VALID, currency: 'USD' },
      issues: ["currency: currency must be a lower-case ISO 4217 code such as 'usd'"],
    },
    {
      name: 'unknown tiers_mode',
      input: { ...VALID, tiers_mode: 'stairstep' },
      issues: ["tiers_mode: tiers_mode must be 'graduated' or 'volume'"],
    },
    {
      name: 'no tiers',
      input: { ...VALID, tiers: [] },
      issues: ['tiers: a tiered price needs at least one tier'],
    },
    {
      name: 'last tier not open-ended',
      input: { ...VALID, tiers: [{ up_to: 100, unit_amount_decimal: '1' }] },
      issues: ["tiers.0.up_to: the last tier must have up_to: 'inf' (it has 100)"],
    },
    {
      name: "'inf' before the last tier",
      input: {
        ...VALID,
        tiers: [
          { up_to: 'inf', unit_amount_decimal: '1' },
          { up_to: 'inf', unit_amount_decimal: '2' },
        ],
      },
      issues: ["tiers.0.up_to: only the last tier may have up_to: 'inf' (tier 1 of 2)"],
    },
    {
      name: 'tiers not ascending',
      input: {
        ...VALID,
        tiers: [
          { up_to: 100, unit_amount_decimal: '1' },
          { up_to: 100, unit_amount_decimal: '2' },
          { up_to: 50, unit_amount_decimal: '3' },
          { up_to: 'inf', unit_amount_decimal: '4' },
        ],
      },
      issues: [
        'tiers.1.up_to: tiers must ascend by up_to: tier 2 has up_to 100, not above 100',
        'tiers.2.up_to: tiers must ascend by up_to: tier 3 has up_to 50, not above 100',
      ],
    },
    {
      name: 'up_to zero, fractional, a string or missing',
      input: {
        ...VALID,
        tiers: [
          { up_to: 0, unit_amount_decimal: '1' },
          { up_to: 1.5, unit_amount_decimal: '1' },
          { up_to: '10', unit_amount_decimal: '1' },
          { unit_amount_decimal: '1' },
          { up_to: 'inf', unit_amount_decimal: '1' },
        ],
      },
      issues: [
        "tiers.0.up_to: up_to must be a positive integer or 'inf'",
        "tiers.1.up_to: up_to must be a positive integer or 'inf'",
        "tiers.2.up_to: up_to must be a positive integer or 'inf'",
        "tiers.3.up_to: up_to must be a positive integer or 'inf'",
      ],
    },
    {
      name: 'a tier with no amount',
      input: { ...VALID, tiers: [{ up_to: 'inf' }] },
      issues: ['tiers.0: a tier needs unit_amount_decimal, flat_amount_decimal or both'],
    },
    {
      name: 'negative amount',
      input: { ...VALID, tiers: [{ up_to: 'inf', unit_amount_decimal: '-5' }] },
      issues: ["tiers.0.unit_amount_decimal: must not be negative, got '-5'"],
    },
    {
      name: 'more than 12 decimal places',
      input: { ...VALID, tiers: [{ up_to: 'inf', flat_amount_decimal: '0.0000000000001' }] },
      issues: [
        "tiers.0.flat_amount_decimal: must have at most 12 decimal places (Stripe's limit), got '0.0000000000001'",
      ],
    },
    {
      name: 'amounts that are not decimal strings',
      input: {
        ...VALID,
        tiers: [
          { up_to: 1, unit_amount_decimal: '1e3' },
          { up_to: 2, unit_amount_decimal: '5.' },
          { up_to: 'inf', unit_amount_decimal: 500 },
        ],
      },
      issues: [
        "tiers.0.unit_amount_decimal: must be a decimal string of minor units such as '500' or '0.35', got '1e3'",
        "tiers.1.unit_amount_decimal: must be a decimal string of minor units such as '500' or '0.35', got '5.'",
        'tiers.2.unit_amount_decimal: Invalid input: expected string, received number',
      ],
    },
    {
      name: "Stripe's integer unit_amount instead of unit_amount_decimal (refused, not dropped)",
      input: {
        ...VALID,
        tiers: [{ up_to: 'inf', unit_amount_decimal: '1', flat_amount: 1000 }],
      },
      issues: [
        "tiers.0: unknown key(s) 'flat_amount'; allowed: up_to, unit_amount_decimal, flat_amount_decimal",
      ],
    },
    {
      name: 'unknown top-level key such as transform_quantity (would change the price)',
      input: { ...VALID, transform_quantity: { divide_by: 1000, round: 'up' } },
      issues: [": unknown key(s) 'transform_quantity'; allowed: currency, tiers_mode, tiers"],
    },
    {
      name: 'every mistake reported in one pass',
      input: {
        currency: 'dollars',
        tiers_mode: 'graduated',
        tiers: [
          { up_to: 10, unit_amount_decimal: 'ten' },
          { up_to: 5, unit_amount_decimal: '1' },
        ],
      },
      issues: [
        "currency: currency must be a lower-case ISO 4217 code such as 'usd'",
        "tiers.0.unit_amount_decimal: must be a decimal string of minor units such as '500' or '0.35', got 'ten'",
        "tiers.1.up_to: the last tier must have up_to: 'inf' (it has 5)",
        'tiers.1.up_to: tiers must ascend by up_to: tier 2 has up_to 5, not above 10',
      ],
    },
  ])('refuses $name', ({ input, issues }) => {
    expect(issuesOf(input)).toEqual(issues);
  });
});

describe('priceTiers refuses', () => {
  const pricing = pricingSchema.parse(VALID);

  it.each<[string, number | bigint]>([
    ['a negative number', -1],
    ['a negative bigint', -1n],
    ['a fraction', 1.5],
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['a number beyond 2^53 (use a bigint)', 2 ** 53],
  ])('%s as the quantity', (_name, quantity) => {
    expect(() => priceTiers(pricing, quantity)).toThrow(RangeError);
  });

  it('a pricing block that was never validated', () => {
    const unchecked = { ...VALID, tiers: [{ up_to: 100, unit_amount_decimal: '1' }] } as unknown as Pricing;
    expect(() => priceTiers(unchecked, 1)).toThrow(/the last tier must have up_to: 'inf'/);
  });
});

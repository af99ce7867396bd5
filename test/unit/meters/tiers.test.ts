import { describe, expect, it } from 'vitest';
import {
  formatMinorUnits,
  formatScaled,
  minorUnitExponent,
  parseScaled,
  roundScaledToMinor,
} from '../../../src/meters/money.ts';
import {
  FIRST_TIER_FLAT_FEE_AT_ZERO_QUANTITY,
  priceTiers,
  pricingSchema,
} from '../../../src/meters/tiers.ts';
import type { Pricing, TiersMode } from '../../../src/meters/tiers.ts';

type Tiers = Pricing['tiers'];

const pricing = (tiers_mode: TiersMode, tiers: Tiers, currency = 'usd'): Pricing =>
  pricingSchema.parse({ currency, tiers_mode, tiers });

/** The worked example (meters/retrieve-credit-score.yaml): 1–100 at $5.00, 101–1000 at $3.00, 1001+ at $2.00. */
const CREDIT_SCORE_TIERS: Tiers = [
  { up_to: 100, unit_amount_decimal: '500' },
  { up_to: 1000, unit_amount_decimal: '300' },
  { up_to: 'inf', unit_amount_decimal: '200' },
];

/** A $10.00 fee covering the first 10 units, then 25¢ a unit plus $5.00 once past them. */
const FLAT_AND_UNIT_TIERS: Tiers = [
  { up_to: 10, flat_amount_decimal: '1000' },
  { up_to: 'inf', unit_amount_decimal: '25', flat_amount_decimal: '500' },
];

describe('priceTiers: totals', () => {
  // prettier-ignore
  const cases: Array<{
    name: string;
    mode: TiersMode;
    tiers: Tiers;
    currency?: string;
    quantity: number | bigint;
    minor: string;
    rounded: bigint;
    display: string;
  }> = [
    // The worked example, graduated: 100×5 + 900×3 + 500×2.
    { name: 'worked example 1500', mode: 'graduated', tiers: CREDIT_SCORE_TIERS, quantity: 1500, minor: '420000', rounded: 420000n, display: '$4,200.00' },
    { name: 'worked example 100', mode: 'graduated', tiers: CREDIT_SCORE_TIERS, quantity: 100, minor: '50000', rounded: 50000n, display: '$500.00' },
    { name: 'worked example 101', mode: 'graduated', tiers: CREDIT_SCORE_TIERS, quantity: 101, minor: '50300', rounded: 50300n, display: '$503.00' },
    { name: 'worked example 1000', mode: 'graduated', tiers: CREDIT_SCORE_TIERS, quantity: 1000, minor: '320000', rounded: 320000n, display: '$3,200.00' },
    { name: 'worked example 1001', mode: 'graduated', tiers: CREDIT_SCORE_TIERS, quantity: 1001, minor: '320200', rounded: 320200n, display: '$3,202.00' },
    { name: 'worked example 0', mode: 'graduated', tiers: CREDIT_SCORE_TIERS, quantity: 0, minor: '0', rounded: 0n, display: '$0.00' },
    // The same tiers in volume mode: every unit at the tier the total lands in.
    { name: 'volume 1500', mode: 'volume', tiers: CREDIT_SCORE_TIERS, quantity: 1500, minor: '300000', rounded: 300000n, display: '$3,000.00' },
    { name: 'volume 100', mode: 'volume', tiers: CREDIT_SCORE_TIERS, quantity: 100, minor: '50000', rounded: 50000n, display: '$500.00' },
    { name: 'volume 101', mode: 'volume', tiers: CREDIT_SCORE_TIERS, quantity: 101, minor: '30300', rounded: 30300n, display: '$303.00' },
    { name: 'volume 0', mode: 'volume', tiers: CREDIT_SCORE_TIERS, quantity: 0, minor: '0', rounded: 0n, display: '$0.00' },
    // Flat + unit amounts.
    { name: 'graduated flat fee, first tier full', mode: 'graduated', tiers: FLAT_AND_UNIT_TIERS, quantity: 10, minor: '1000', rounded: 1000n, display: '$10.00' },
    { name: 'graduated flat fee, one unit in the open tier', mode: 'graduated', tiers: FLAT_AND_UNIT_TIERS, quantity: 11, minor: '1525', rounded: 1525n, display: '$15.25' },
    { name: 'graduated flat fee, 1000 units', mode: 'graduated', tiers: FLAT_AND_UNIT_TIERS, quantity: 1000, minor: '26250', rounded: 26250n, display: '$262.50' },
    { name: 'volume flat fee only tier', mode: 'volume', tiers: FLAT_AND_UNIT_TIERS, quantity: 7, minor: '1000', rounded: 1000n, display: '$10.00' },
    { name: 'volume flat + unit tier', mode: 'volume', tiers: FLAT_AND_UNIT_TIERS, quantity: 11, minor: '775', rounded: 775n, display: '$7.75' },
    // Decimal unit amounts: rounded once per line, halves away from zero.
    { name: "0.35¢ × 3 = 1.05¢ → 1¢", mode: 'graduated', tiers: [{ up_to: 'inf', unit_amount_decimal: '0.35' }], quantity: 3, minor: '1.05', rounded: 1n, display: '$0.01' },
    { name: "Stripe's example: 0.05¢ × 30 = 1.5¢ → 2¢", mode: 'volume', tiers: [{ up_to: 'inf', unit_amount_decimal: '0.05' }], quantity: 30, minor: '1.5', rounded: 2n, display: '$0.02' },
    { name: '0.05¢ × 29 = 1.45¢ → 1¢', mode: 'volume', tiers: [{ up_to: 'inf', unit_amount_decimal: '0.05' }], quantity: 29, minor: '1.45', rounded: 1n, display: '$0.01' },
    { name: '12 decimal places', mode: 'graduated', tiers: [{ up_to: 'inf', unit_amount_decimal: '0.000000000001' }], quantity: 10_000_000_000_000n, minor: '10', rounded: 10n, display: '$0.10' },
    { name: 'decimal flat amount', mode: 'graduated', tiers: [{ up_to: 'inf', flat_amount_decimal: '99.5' }], quantity: 1, minor: '99.5', rounded: 100n, display: '$1.00' },
    // Each tier line is rounded on its own, then summed: two half cents make 2¢, not 1¢.
    { name: 'lines round before they are summed', mode: 'graduated', tiers: [{ up_to: 1, unit_amount_decimal: '0.5' }, { up_to: 'inf', unit_amount_decimal: '0.5' }], quantity: 2, minor: '1', rounded: 2n, display: '$0.02' },
    // A single open-ended tier.
    { name: 'up_to inf only', mode: 'graduated', tiers: [{ up_to: 'inf', unit_amount_decimal: '7' }], quantity: 1_000_000, minor: '7000000', rounded: 7_000_000n, display: '$70,000.00' },
    // Quantities beyond 2^53, as bigint.
    { name: 'graduated 2^60 + 1', mode: 'graduated', tiers: CREDIT_SCORE_TIERS, quantity: 2n ** 60n + 1n, minor: '230584300921369515400', rounded: 230584300921369515400n, display: '$2,305,843,009,213,695,154.00' },
    { name: 'volume 2^60 + 1', mode: 'volume', tiers: CREDIT_SCORE_TIERS, quantity: 2n ** 60n + 1n, minor: '230584300921369395400', rounded: 230584300921369395400n, display: '$2,305,843,009,213,693,954.00' },
    { name: '0.35¢ × 2^64', mode: 'volume', tiers: [{ up_to: 'inf', unit_amount_decimal: '0.35' }], quantity: 2n ** 64n, minor: '6456360425798343065.6', rounded: 6456360425798343066n, display: '$64,563,604,257,983,430.66' },
    // Currencies whose minor unit is not a cent.
    { name: 'jpy is zero-decimal', mode: 'graduated', tiers: CREDIT_SCORE_TIERS, currency: 'jpy', quantity: 1500, minor: '420000', rounded: 420000n, display: '¥420,000' },
    { name: 'krw is zero-decimal, rounds to whole won', mode: 'volume', tiers: [{ up_to: 1000, unit_amount_decimal: '2' }, { up_to: 'inf', unit_amount_decimal: '1.5' }], currency: 'krw', quantity: 1001, minor: '1501.5', rounded: 1502n, display: '₩1,502' },
    { name: 'kwd has three decimals', mode: 'volume', tiers: [{ up_to: 'inf', unit_amount_decimal: '1250' }], currency: 'kwd', quantity: 3, minor: '3750', rounded: 3750n, display: 'KWD\u00a03.750' },
    { name: 'eur has two decimals', mode: 'graduated', tiers: CREDIT_SCORE_TIERS, currency: 'eur', quantity: 1500, minor: '420000', rounded: 420000n, display: '€4,200.00' },
  ];

  it.each(cases)('$name', ({ mode, tiers, currency, quantity, minor, rounded, display }) => {
    const { total } = priceTiers(pricing(mode, tiers, currency), quantity);
    expect(total).toEqual({ minor, rounded_minor: rounded, display });
  });

  it('takes a number and the same bigint alike', () => {
    const p = pricing('graduated', CREDIT_SCORE_TIERS);
    expect(priceTiers(p, 1500n)).toEqual(priceTiers(p, 1500));
    expect(priceTiers(p, Number.MAX_SAFE_INTEGER).total.minor).toBe(
      (100n * 500n + 900n * 300n + (BigInt(Number.MAX_SAFE_INTEGER) - 1000n) * 200n).toString(),
    );
  });
});

describe('priceTiers: lines', () => {
  it('graduated: one line per tier reached, with bounds, units and amounts', () => {
    const { lines } = priceTiers(pricing('graduated', CREDIT_SCORE_TIERS), 1500);
    // prettier-ignore
    expect(lines).toEqual([
      { tier: 1, from: 1n, up_to: 100n, quantity: 100n, unit_amount_decimal: '500', flat_amount_decimal: '0', amount: { minor: '50000', rounded_minor: 50000n, display: '$500.00' } },
      { tier: 2, from: 101n, up_to: 1000n, quantity: 900n, unit_amount_decimal: '300', flat_amount_decimal: '0', amount: { minor: '270000', rounded_minor: 270000n, display: '$2,700.00' } },
      { tier: 3, from: 1001n, up_to: 'inf', quantity: 500n, unit_amount_decimal: '200', flat_amount_decimal: '0', amount: { minor: '100000', rounded_minor: 100000n, display: '$1,000.00' } },
    ]);
  });

  it('graduated: tiers not reached have no line, a tier reached by one unit has one', () => {
    const tierAndQuantity = (q: number) =>
      priceTiers(pricing('graduated', CREDIT_SCORE_TIERS), q).lines.map((l) => [l.tier, l.quantity]);
    expect(tierAndQuantity(100)).toEqual([[1, 100n]]);
    expect(tierAndQuantity(101)).toEqual([
      [1, 100n],
      [2, 1n],
    ]);
    expect(tierAndQuantity(1001)).toEqual([
      [1, 100n],
      [2, 900n],
      [3, 1n],
    ]);
  });

  it('graduated: a later tier charges its flat amount once a unit falls in it', () => {
    const { lines } = priceTiers(pricing('graduated', FLAT_AND_UNIT_TIERS), 11);
    expect(lines.map((l) => [l.tier, l.quantity, l.flat_amount_decimal, l.amount.minor])).toEqual([
      [1, 10n, '1000', '1000'],
      [2, 1n, '500', '525'],
    ]);
  });

  it('volume: one line, the tier the whole quantity falls in', () => {
    const { lines } = priceTiers(pricing('volume', CREDIT_SCORE_TIERS), 101);
    // prettier-ignore
    expect(lines).toEqual([
      { tier: 2, from: 101n, up_to: 1000n, quantity: 101n, unit_amount_decimal: '300', flat_amount_decimal: '0', amount: { minor: '30300', rounded_minor: 30300n, display: '$303.00' } },
    ]);
    expect(priceTiers(pricing('volume', CREDIT_SCORE_TIERS), 1000).lines.map((l) => l.tier)).toEqual([2]);
    expect(priceTiers(pricing('volume', CREDIT_SCORE_TIERS), 1001).lines.map((l) => l.tier)).toEqual([3]);
  });

  it('the total is the sum of the rounded lines; its exact minor is the sum of the exact lines', () => {
    const tiers: Tiers = [
      { up_to: 3, unit_amount_decimal: '0.35' },
      { up_to: 'inf', unit_amount_decimal: '0.25' },
    ];
    const { total, lines } = priceTiers(pricing('graduated', tiers), 5);
    expect(lines.map((l) => [l.amount.minor, l.amount.rounded_minor])).toEqual([
      ['1.05', 1n],
      ['0.5', 1n],
    ]);
    expect(total).toEqual({ minor: '1.55', rounded_minor: 2n, display: '$0.02' });
  });
});

describe('priceTiers: quantity 0', () => {
  // See FIRST_TIER_FLAT_FEE_AT_ZERO_QUANTITY for why; these pin the current decision.
  it('charges the first tier flat amount in both modes', () => {
    expect(FIRST_TIER_FLAT_FEE_AT_ZERO_QUANTITY).toEqual({ volume: true, graduated: true });
    for (const mode of ['graduated', 'volume'] as const) {
      const { total, lines } = priceTiers(pricing(mode, FLAT_AND_UNIT_TIERS), 0);
      expect(total).toEqual({ minor: '1000', rounded_minor: 1000n, display: '$10.00' });
      expect(lines.map((l) => [l.tier, l.quantity])).toEqual([[1, 0n]]);
    }
  });

  it('charges nothing when the first tier has no flat amount, and never a later tier flat amount', () => {
    const tiers: Tiers = [
      { up_to: 10, unit_amount_decimal: '100' },
      { up_to: 'inf', unit_amount_decimal: '50', flat_amount_decimal: '500' },
    ];
    for (const mode of ['graduated', 'volume'] as const) {
      expect(priceTiers(pricing(mode, tiers), 0).total.minor).toBe('0');
    }
  });
});

describe('money', () => {
  it.each([
    ['0', 0n, '0'],
    ['500', 500_000_000_000_000n, '500'],
    ['0.35', 350_000_000_000n, '0.35'],
    ['105.50', 105_500_000_000_000n, '105.5'],
    ['0.000000000001', 1n, '0.000000000001'],
    ['007', 7_000_000_000_000n, '7'],
    ['-1.5', -1_500_000_000_000n, '-1.5'],
  ])('parses %s exactly and prints it back in shortest form', (text, scaled, shortest) => {
    expect(parseScaled(text)).toBe(scaled);
    expect(formatScaled(scaled)).toBe(shortest);
  });

  it.each(['', '1e3', '1.', '.5', '+1', ' 1', '1.0000000000001', 'NaN'])('refuses %j', (text) => {
    expect(() => parseScaled(text)).toThrow(RangeError);
  });

  it.each([
    ['1.5', 2n],
    ['1.49', 1n],
    ['2.5', 3n],
    ['0.5', 1n],
    ['0.499999999999', 0n],
    ['-1.5', -2n],
    ['-1.4', -1n],
    ['7', 7n],
  ])('rounds %s half away from zero to %s', (text, minor) => {
    expect(roundScaledToMinor(parseScaled(text))).toBe(minor);
  });

  it.each([
    ['usd', 2],
    ['USD', 2],
    ['jpy', 0],
    ['vnd', 0],
    ['xof', 0],
    ['ugx', 0],
    ['bhd', 3],
    ['tnd', 3],
    ['isk', 2],
    ['huf', 2],
  ])('%s has %i minor-unit digits', (currency, exponent) => {
    expect(minorUnitExponent(currency)).toBe(exponent);
  });

  it.each([
    [420000n, 'usd', '$4,200.00'],
    [5n, 'usd', '$0.05'],
    [0n, 'usd', '$0.00'],
    [-5n, 'usd', '-$0.05'],
    [1500n, 'jpy', '¥1,500'],
    [1n, 'omr', 'OMR\u00a00.001'],
    [123456n, 'gbp', '£1,234.56'],
    [2n ** 70n, 'usd', '$11,805,916,207,174,113,034.24'],
  ])('displays %s %s as %s', (minor, currency, display) => {
    expect(formatMinorUnits(minor, currency)).toBe(display);
  });
});

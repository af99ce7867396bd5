import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  FIRST_TIER_FLAT_FEE_AT_ZERO_QUANTITY,
  priceTiers,
  pricingSchema,
} from '../../../src/meters/tiers.ts';
import type { Pricing, TiersMode } from '../../../src/meters/tiers.ts';

/*
 * priceTiers against a brute-force reference written without its code: walk the quantity one unit at a
 * time, find the tier each unit falls in by scanning the table, and add exact amounts held as bigint
 * minor units × 10^12. Decimal parsing, printing and rounding are re-implemented here too, so a shared
 * helper cannot hide a shared bug. Only the zero-quantity flag is read from the module: it is a
 * decision, not arithmetic.
 */

const MAX_QUANTITY = 5000;
const RUNS_PER_MODE = 500;

/** '12.3400' → 12340000000000n (×10^12). */
function refScaled(text: string): bigint {
  const [whole, fraction = ''] = text.split('.');
  return BigInt(`${whole}${fraction.padEnd(12, '0')}`);
}

/** 12340000000000n → '12.34'; non-negative only, as every amount here is. */
function refDecimal(scaled: bigint): string {
  const digits = scaled.toString().padStart(13, '0');
  const whole = digits.slice(0, -12);
  let fraction = digits.slice(-12);
  while (fraction.endsWith('0')) fraction = fraction.slice(0, -1);
  return fraction.length > 0 ? `${whole}.${fraction}` : whole;
}

/** Non-negative, halves up (= away from zero): compare the remainder with half a minor unit. */
function refRound(scaled: bigint): bigint {
  const unit = 1_000_000_000_000n;
  const whole = scaled / unit;
  return scaled % unit >= unit / 2n ? whole + 1n : whole;
}

interface RefLine {
  tier: number;
  from: bigint;
  up_to: bigint | 'inf';
  quantity: bigint;
  minor: string;
  rounded_minor: bigint;
}

function reference(
  pricing: Pricing,
  quantity: number,
): { minor: string; rounded_minor: bigint; lines: RefLine[] } {
  const { tiers } = pricing;
  const tierOfUnit = (unit: number): number => tiers.findIndex((t) => t.up_to === 'inf' || unit <= t.up_to);
  const unitPrice = (i: number) => refScaled(tiers[i]!.unit_amount_decimal ?? '0');
  const flatPrice = (i: number) => refScaled(tiers[i]!.flat_amount_decimal ?? '0');

  // tier index → [units billed, exact amount]
  const billed = new Map<number, [bigint, bigint]>();
  if (pricing.tiers_mode === 'graduated') {
    if (quantity === 0) {
      billed.set(0, [0n, FIRST_TIER_FLAT_FEE_AT_ZERO_QUANTITY.graduated ? flatPrice(0) : 0n]);
    }
    for (let unit = 1; unit <= quantity; unit++) {
      const i = tierOfUnit(unit);
      const [units, amount] = billed.get(i) ?? [0n, flatPrice(i)];
      billed.set(i, [units + 1n, amount + unitPrice(i)]);
    }
  } else {
    const i = quantity === 0 ? 0 : tierOfUnit(quantity);
    let amount = quantity > 0 || FIRST_TIER_FLAT_FEE_AT_ZERO_QUANTITY.volume ? flatPrice(i) : 0n;
    for (let unit = 1; unit <= quantity; unit++) amount += unitPrice(i);
    billed.set(i, [BigInt(quantity), amount]);
  }

  const lines = [...billed.entries()]
    .sort(([a], [b]) => a - b)
    .map(([i, [units, amount]]): RefLine => {
      const previous = i === 0 ? undefined : tiers[i - 1]!.up_to;
      const upTo = tiers[i]!.up_to;
      return {
        tier: i + 1,
        from: previous === undefined ? 1n : BigInt(previous) + 1n,
        up_to: upTo === 'inf' ? 'inf' : BigInt(upTo),
        quantity: units,
        minor: refDecimal(amount),
        rounded_minor: refRound(amount),
      };
    });
  const exact = [...billed.values()].reduce((sum, [, amount]) => sum + amount, 0n);
  return {
    minor: refDecimal(exact),
    rounded_minor: lines.reduce((sum, l) => sum + l.rounded_minor, 0n),
    lines,
  };
}

/** Decimal minor-unit amounts with 0–4 fractional digits, trailing zeros included ('3.50'). */
const amountArb = fc
  .tuple(
    fc.oneof(fc.integer({ min: 0, max: 9 }), fc.integer({ min: 0, max: 100_000 })),
    fc.integer({ min: 0, max: 4 }),
    fc.integer({ min: 0, max: 9999 }),
  )
  .map(([whole, places, fraction]) =>
    places === 0 ? `${whole}` : `${whole}.${String(fraction % 10 ** places).padStart(places, '0')}`,
  );

/** One or two amounts per tier, never none. */
const tierAmountsArb = fc
  .record({ unit: fc.option(amountArb, { nil: undefined }), flat: fc.option(amountArb, { nil: undefined }) })
  .map(({ unit, flat }) => ({ unit: unit ?? (flat === undefined ? '0' : undefined), flat }));

const pricingArb = (mode: TiersMode) =>
  fc
    .tuple(
      fc.constantFrom('usd', 'jpy', 'kwd'),
      fc.array(
        fc.record({
          // Small widths put many boundaries under MAX_QUANTITY; wide ones leave quantities inside a tier.
          width: fc.oneof(fc.integer({ min: 1, max: 20 }), fc.integer({ min: 1, max: 2000 })),
          amounts: tierAmountsArb,
        }),
        { minLength: 1, maxLength: 5 },
      ),
    )
    .map(([currency, rows]): Pricing => {
      let upTo = 0;
      const tiers = rows.map(({ width, amounts }, i) => {
        upTo += width;
        return {
          up_to: i === rows.length - 1 ? ('inf' as const) : upTo,
          ...(amounts.unit === undefined ? {} : { unit_amount_decimal: amounts.unit }),
          ...(amounts.flat === undefined ? {} : { flat_amount_decimal: amounts.flat }),
        };
      });
      return pricingSchema.parse({ currency, tiers_mode: mode, tiers });
    });

/** Any quantity up to MAX_QUANTITY, biased towards 0 and the tier boundaries (and one either side). */
const caseArb = (mode: TiersMode) =>
  pricingArb(mode).chain((pricing) => {
    const edges = pricing.tiers
      .flatMap((t) => (t.up_to === 'inf' ? [] : [t.up_to - 1, t.up_to, t.up_to + 1]))
      .filter((q) => q >= 0 && q <= MAX_QUANTITY);
    const quantity = fc.oneof(fc.integer({ min: 0, max: MAX_QUANTITY }), fc.constantFrom(0, 1, ...edges));
    return fc.record({ pricing: fc.constant(pricing), quantity, asBigint: fc.boolean() });
  });

describe.each(['graduated', 'volume'] as const)(
  'priceTiers agrees with a unit-by-unit reference (%s)',
  (mode) => {
    it(`on every line and on the exact and rounded totals (${RUNS_PER_MODE} tables)`, () => {
      fc.assert(
        fc.property(caseArb(mode), ({ pricing, quantity, asBigint }) => {
          const expected = reference(pricing, quantity);
          const actual = priceTiers(pricing, asBigint ? BigInt(quantity) : quantity);
          expect(
            actual.lines.map((l) => ({
              tier: l.tier,
              from: l.from,
              up_to: l.up_to,
              quantity: l.quantity,
              minor: l.amount.minor,
              rounded_minor: l.amount.rounded_minor,
            })),
          ).toEqual(expected.lines);
          expect(actual.total.minor).toBe(expected.minor);
          expect(actual.total.rounded_minor).toBe(expected.rounded_minor);
        }),
        { numRuns: RUNS_PER_MODE },
      );
    });
  },
);

import { z } from 'zod';
import { decimalAmountSchema, moneyFromScaled, moneyWithRounded, parseScaled } from './money.ts';
import type { Money } from './money.ts';

/**
 * Local tier math of a Stripe tiered price (`billing_scheme: tiered`), exact to the cent, so an invoice
 * can be predicted and reconciled before Stripe draws it. Amounts stay bigint minor units × 10^12
 * (see money.ts) from the price to the total; no float touches them.
 *
 * Rounding, following Stripe's "Decimal amounts" guide: rounding happens per invoice line item, after
 * quantity × decimal unit amount (0.05 × 30 = 1.5 → 2 cents), and the invoice total is the sum of the
 * rounded lines. A tiered price's invoice lists one entry per tier, so each tier line is rounded to a
 * whole minor unit, halves away from zero, and `total.rounded_minor` is the sum of the rounded lines:
 * it can differ from rounding `total.minor`, which stays exact for whoever needs the other rule.
 * Stripe's invoice shows a tier's flat fee beside its units; Stripe documents `flat_amount_decimal` as
 * representing an integer, and for an integral flat amount rounding the two parts together or apart is
 * the same. (A fractional flat amount is accepted, as Stripe's price object allows 12 decimals, and is
 * rounded together with the tier's units.)
 */

export type TiersMode = 'graduated' | 'volume';

/**
 * Whether a quantity of 0 is charged the first tier's flat amount. The first tier covers everything up
 * to its up_to, quantity 0 included, so both modes say yes:
 * - volume: Stripe bills 0 units at the first tier, flat amount included.
 * - graduated: the first tier is always reached, so its flat amount is a fixed fee that is charged
 *   whatever the usage; that is how one graduated price expresses "flat fee + overage". OpenMeter
 *   (openmeter#2119) and Lago (lago-api#5760) changed to the same rule to match. A flat amount on a
 *   later tier is charged only once a unit falls in that tier.
 * Not yet checked against a live Stripe invoice: if Stripe disagrees, flip the flag here, nowhere else.
 */
export const FIRST_TIER_FLAT_FEE_AT_ZERO_QUANTITY: Readonly<Record<TiersMode, boolean>> = {
  volume: true,
  graduated: true,
};

const TIER_KEYS = ['up_to', 'unit_amount_decimal', 'flat_amount_decimal'] as const;
const PRICING_KEYS = ['currency', 'tiers_mode', 'tiers'] as const;

/** Unknown keys are refused, not dropped: a misspelt `flat_amount` silently ignored would under-bill. */
const unknownKeysError =
  (allowed: readonly string[]) =>
  (issue: { code?: string; keys?: readonly string[] }): string | undefined =>
    issue.code === 'unrecognized_keys'
      ? `unknown key(s) ${(issue.keys ?? []).map((k) => `'${k}'`).join(', ')}; allowed: ${allowed.join(', ')}`
      : undefined;

const UP_TO_MESSAGE = "up_to must be a positive integer or 'inf'";

const tierSchema = z
  .strictObject(
    {
      up_to: z.union(
        [
          z.number().int(UP_TO_MESSAGE).positive(UP_TO_MESSAGE).max(Number.MAX_SAFE_INTEGER, UP_TO_MESSAGE),
          z.literal('inf'),
        ],
        { error: UP_TO_MESSAGE },
      ),
      unit_amount_decimal: decimalAmountSchema.optional(),
      flat_amount_decimal: decimalAmountSchema.optional(),
    },
    { error: unknownKeysError(TIER_KEYS) },
  )
  .refine((t) => t.unit_amount_decimal !== undefined || t.flat_amount_decimal !== undefined, {
    message: 'a tier needs unit_amount_decimal, flat_amount_decimal or both',
  });

/**
 * The pricing block of a meter, shaped like the tiered part of a Stripe price: amounts in the currency's
 * minor units as decimal strings ('500' is $5.00, '0.35' is 0.35¢), tiers ascending by `up_to`, the
 * last and only the last one open-ended (`up_to: 'inf'`).
 */
export const pricingSchema = z.strictObject(
  {
    currency: z.string().regex(/^[a-z]{3}$/, "currency must be a lower-case ISO 4217 code such as 'usd'"),
    tiers_mode: z.enum(['graduated', 'volume'], { error: "tiers_mode must be 'graduated' or 'volume'" }),
    tiers: z
      .array(tierSchema)
      .min(1, 'a tiered price needs at least one tier')
      // Runs even when a tier itself is invalid, so one pass reports every mistake in the table.
      .superRefine((tiers, ctx) => checkTierOrder(tiers, ctx), { when: (p) => Array.isArray(p.value) }),
  },
  { error: unknownKeysError(PRICING_KEYS) },
);

/** Ascending `up_to`, ending with the only 'inf'. Sees raw input: tiers already refused are skipped. */
function checkTierOrder(tiers: readonly unknown[], ctx: z.RefinementCtx): void {
  let previous = 0;
  tiers.forEach((raw, i) => {
    const upTo = typeof raw === 'object' && raw !== null ? (raw as { up_to?: unknown }).up_to : undefined;
    const isLast = i === tiers.length - 1;
    if (upTo === 'inf') {
      if (!isLast) {
        ctx.addIssue({
          code: 'custom',
          path: [i, 'up_to'],
          message: `only the last tier may have up_to: 'inf' (tier ${i + 1} of ${tiers.length})`,
        });
      }
      return;
    }
    if (isLast) {
      ctx.addIssue({
        code: 'custom',
        path: [i, 'up_to'],
        message: `the last tier must have up_to: 'inf' (it has ${JSON.stringify(upTo) ?? 'none'})`,
      });
    }
    if (typeof upTo !== 'number' || !Number.isSafeInteger(upTo) || upTo <= 0) return;
    if (upTo <= previous) {
      ctx.addIssue({
        code: 'custom',
        path: [i, 'up_to'],
        message: `tiers must ascend by up_to: tier ${i + 1} has up_to ${upTo}, not above ${previous}`,
      });
    }
    previous = Math.max(previous, upTo);
  });
}

export type Pricing = z.output<typeof pricingSchema>;

/** Billed usage: a whole, non-negative number of units. Stripe meters aggregate to integers for billing. */
export type Quantity = number | bigint;

export interface TierLine {
  /** 1-based position of the tier in `pricing.tiers`. */
  tier: number;
  /** First unit of the tier (1 for the first tier, else the previous tier's up_to + 1). */
  from: bigint;
  up_to: bigint | 'inf';
  /** Units billed at this tier's unit amount (in volume mode: all of them). */
  quantity: bigint;
  /** The tier's amounts as configured, '0' where the tier has none. */
  unit_amount_decimal: string;
  flat_amount_decimal: string;
  /** quantity × unit amount, plus the flat amount where it applies. */
  amount: Money;
}

export interface TierPrice {
  /** `minor`: exact sum of the lines; `rounded_minor`: sum of the rounded lines (see the file comment). */
  total: Money;
  /** Graduated: one line per tier reached (the first tier always is). Volume: the one tier used. */
  lines: TierLine[];
}

interface Tier {
  tier: number;
  from: bigint;
  up_to: bigint | 'inf';
  unitAmountDecimal: string;
  flatAmountDecimal: string;
  unitScaled: bigint;
  flatScaled: bigint;
}

interface TierUse {
  tier: Tier;
  quantity: bigint;
  chargesFlat: boolean;
}

/**
 * What `quantity` units cost under `pricing`. The pricing is validated again here (a ZodError names what
 * is wrong) because a wrong table must never produce a price; a quantity that is not a non-negative
 * integer (a float, a negative, an unsafe number) is a RangeError.
 */
export function priceTiers(pricing: Pricing, quantity: Quantity): TierPrice {
  const { currency, tiers_mode, tiers } = pricingSchema.parse(pricing);
  const units = toUnits(quantity);
  const table = toTiers(tiers);
  const uses = tiers_mode === 'graduated' ? graduatedUses(table, units) : volumeUses(table, units);

  let exactTotal = 0n;
  const lines = uses.map(({ tier, quantity: billed, chargesFlat }): TierLine => {
    const exact = billed * tier.unitScaled + (chargesFlat ? tier.flatScaled : 0n);
    exactTotal += exact;
    return {
      tier: tier.tier,
      from: tier.from,
      up_to: tier.up_to,
      quantity: billed,
      unit_amount_decimal: tier.unitAmountDecimal,
      flat_amount_decimal: tier.flatAmountDecimal,
      amount: moneyFromScaled(exact, currency),
    };
  });
  const roundedTotal = lines.reduce((sum, line) => sum + line.amount.rounded_minor, 0n);
  return { total: moneyWithRounded(exactTotal, roundedTotal, currency), lines };
}

/** Graduated: each tier bills the units that fall inside it, plus its flat amount once it is reached. */
function graduatedUses(table: readonly Tier[], units: bigint): TierUse[] {
  const uses: TierUse[] = [];
  for (const tier of table) {
    const before = tier.from - 1n;
    const isFirst = tier.tier === 1;
    if (!isFirst && units <= before) break;
    const last = tier.up_to === 'inf' || units < tier.up_to ? units : tier.up_to;
    const inTier = last > before ? last - before : 0n;
    const chargesFlat = inTier > 0n || FIRST_TIER_FLAT_FEE_AT_ZERO_QUANTITY.graduated;
    uses.push({ tier, quantity: inTier, chargesFlat });
  }
  return uses;
}

/** Volume: every unit at the unit amount of the tier the whole quantity falls in, plus its flat amount. */
function volumeUses(table: readonly Tier[], units: bigint): TierUse[] {
  // Validation guarantees an 'inf' last tier, so some tier always holds the quantity.
  const tier = table.find((t) => t.up_to === 'inf' || units <= t.up_to)!;
  const chargesFlat = units > 0n || FIRST_TIER_FLAT_FEE_AT_ZERO_QUANTITY.volume;
  return [{ tier, quantity: units, chargesFlat }];
}

function toTiers(tiers: Pricing['tiers']): Tier[] {
  let from = 1n;
  return tiers.map((t, i) => {
    const up_to = t.up_to === 'inf' ? 'inf' : BigInt(t.up_to);
    const unitAmountDecimal = t.unit_amount_decimal ?? '0';
    const flatAmountDecimal = t.flat_amount_decimal ?? '0';
    const tier: Tier = {
      tier: i + 1,
      from,
      up_to,
      unitAmountDecimal,
      flatAmountDecimal,
      unitScaled: parseScaled(unitAmountDecimal),
      flatScaled: parseScaled(flatAmountDecimal),
    };
    if (up_to !== 'inf') from = up_to + 1n;
    return tier;
  });
}

function toUnits(quantity: Quantity): bigint {
  if (typeof quantity === 'bigint') {
    if (quantity < 0n) throw new RangeError(`quantity must not be negative, got ${quantity}`);
    return quantity;
  }
  if (!Number.isSafeInteger(quantity) || quantity < 0) {
    throw new RangeError(
      `quantity must be a non-negative safe integer (use a bigint beyond 2^53), got ${quantity}`,
    );
  }
  return BigInt(quantity);
}

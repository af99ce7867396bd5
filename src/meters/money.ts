import { z } from 'zod';

/**
 * Exact money for the tier math: amounts are decimal strings in a currency's MINOR units, as Stripe's
 * `unit_amount_decimal` / `flat_amount_decimal` are (at most 12 fractional digits), held as a bigint of
 * minor units scaled by 10^12. Nothing here ever goes through a JavaScript number, so no amount is
 * approximated, however large.
 */

/** Stripe's decimal amounts carry at most 12 decimal places; one scaled unit is 10^-12 minor units. */
export const DECIMAL_PLACES = 12;
export const SCALE = 10n ** BigInt(DECIMAL_PLACES);

const DECIMAL_PATTERN = /^(-?)(\d+)(?:\.(\d+))?$/;

/**
 * A non-negative decimal amount in minor units as Stripe writes it ('500', '0.35', '105.5').
 * The messages say what is wrong, because a pricing block is written by hand in a meter's YAML.
 */
export const decimalAmountSchema = z.string().superRefine((value, ctx) => {
  const m = DECIMAL_PATTERN.exec(value);
  if (!m) {
    ctx.addIssue({
      code: 'custom',
      message: `must be a decimal string of minor units such as '500' or '0.35', got '${value}'`,
    });
  } else if (m[1] === '-') {
    ctx.addIssue({ code: 'custom', message: `must not be negative, got '${value}'` });
  } else if ((m[3] ?? '').length > DECIMAL_PLACES) {
    ctx.addIssue({
      code: 'custom',
      message: `must have at most ${DECIMAL_PLACES} decimal places (Stripe's limit), got '${value}'`,
    });
  }
});

/** '0.35' → 350000000000n (0.35 minor units × 10^12). Throws on anything that is not a decimal string. */
export function parseScaled(value: string): bigint {
  const m = DECIMAL_PATTERN.exec(value);
  if (!m || (m[3] ?? '').length > DECIMAL_PLACES) {
    throw new RangeError(`not a decimal amount with at most ${DECIMAL_PLACES} decimal places: '${value}'`);
  }
  const magnitude = BigInt(m[2]!) * SCALE + BigInt((m[3] ?? '').padEnd(DECIMAL_PLACES, '0'));
  return m[1] === '-' ? -magnitude : magnitude;
}

/** 420000000000000000n → '420000'; 3500000000000n → '3.5'. Exact, shortest form, no exponent. */
export function formatScaled(scaled: bigint): string {
  const sign = scaled < 0n ? '-' : '';
  const magnitude = scaled < 0n ? -scaled : scaled;
  const whole = (magnitude / SCALE).toString();
  const fraction = (magnitude % SCALE).toString().padStart(DECIMAL_PLACES, '0').replace(/0+$/, '');
  return `${sign}${whole}${fraction === '' ? '' : `.${fraction}`}`;
}

/** Nearest whole minor unit, halves away from zero (1.5 → 2, -1.5 → -2, 1.05 → 1). */
export function roundScaledToMinor(scaled: bigint): bigint {
  const half = SCALE / 2n;
  return scaled < 0n ? -((-scaled + half) / SCALE) : (scaled + half) / SCALE;
}

/** Stripe's zero-decimal currencies: amounts are whole units (¥500 is `500`). */
const ZERO_DECIMAL_CURRENCIES: ReadonlySet<string> = new Set(
  'bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf'.split(' '),
);
/** Stripe's three-decimal currencies. */
const THREE_DECIMAL_CURRENCIES: ReadonlySet<string> = new Set(['bhd', 'jod', 'kwd', 'omr', 'tnd']);

/**
 * How many decimal places one major unit has in Stripe's amounts: 0, 3, or 2 for every other currency.
 * Stripe's special cases (isk, huf, twd) are still two-decimal in the API, so they take the default.
 */
export function minorUnitExponent(currency: string): 0 | 2 | 3 {
  const code = currency.toLowerCase();
  if (ZERO_DECIMAL_CURRENCIES.has(code)) return 0;
  if (THREE_DECIMAL_CURRENCIES.has(code)) return 3;
  return 2;
}

/**
 * A whole number of minor units as an exact decimal string of major units, with the currency's Stripe
 * exponent: 420000n usd → '4200.00', 1500n jpy → '1500', 1234n kwd → '1.234', -5n usd → '-0.05'.
 */
export function majorUnitDecimal(minor: bigint, currency: string): string {
  const exponent = minorUnitExponent(currency);
  const sign = minor < 0n ? '-' : '';
  const digits = (minor < 0n ? -minor : minor).toString().padStart(exponent + 1, '0');
  return sign + (exponent === 0 ? digits : `${digits.slice(0, -exponent)}.${digits.slice(-exponent)}`);
}

/**
 * A whole number of minor units for people: 420000n usd → '$4,200.00', 1500n jpy → '¥1,500'.
 * The amount reaches Intl as an exact decimal string (never a number), and the fraction digits are
 * pinned to the currency's Stripe exponent rather than to ICU's idea of the currency.
 */
export function formatMinorUnits(minor: bigint, currency: string): string {
  const exponent = minorUnitExponent(currency);
  const format = new Intl.NumberFormat('en-US', {
    style: 'currency',
    currency: currency.toUpperCase(),
    minimumFractionDigits: exponent,
    maximumFractionDigits: exponent,
  });
  // A decimal string is formatted exactly (ECMA-402 "Intl mathematical value"), digit for digit.
  const exact: Intl.StringNumericLiteral = majorUnitDecimal(minor, currency) as Intl.StringNumericLiteral;
  return format.format(exact);
}

/** An exact amount of money in one currency, with the integer amount Stripe would charge for it. */
export interface Money {
  /** Exact decimal string in minor units ('420000', '1.05'). */
  minor: string;
  /** Whole minor units as charged (see the rounding rule where the Money is built). */
  rounded_minor: bigint;
  /** `rounded_minor` for people, in the currency's own format ('$4,200.00'). */
  display: string;
}

/** A Money whose charged amount is `exact` rounded to a whole minor unit. */
export function moneyFromScaled(exact: bigint, currency: string): Money {
  return moneyWithRounded(exact, roundScaledToMinor(exact), currency);
}

/** A Money whose charged amount was decided elsewhere (a total that sums rounded lines). */
export function moneyWithRounded(exact: bigint, roundedMinor: bigint, currency: string): Money {
  return {
    minor: formatScaled(exact),
    rounded_minor: roundedMinor,
    display: formatMinorUnits(roundedMinor, currency),
  };
}

// Exact money for the emulator's invoices: decimal strings in minor units (Stripe's `*_decimal` fields,
// at most 12 decimal places) held as bigint scaled by 10^12. No float touches an amount.

export const SCALE_DIGITS = 12;
const SCALE = 10n ** BigInt(SCALE_DIGITS);

/** A non-negative decimal string with at most 12 decimal places, scaled by 10^12; undefined if malformed. */
export function parseDecimal(text: string): bigint | undefined {
  const match = /^(\d+)(?:\.(\d{1,12}))?$/.exec(text.trim());
  if (match === null) return undefined;
  const whole = BigInt(match[1] ?? '0');
  const fraction = BigInt((match[2] ?? '').padEnd(SCALE_DIGITS, '0'));
  return whole * SCALE + fraction;
}

/** A scaled amount as Stripe prints a decimal: no trailing zeros, no trailing point. */
export function formatDecimal(scaled: bigint, scaleDigits = SCALE_DIGITS): string {
  const negative = scaled < 0n;
  const abs = negative ? -scaled : scaled;
  const scale = 10n ** BigInt(scaleDigits);
  const whole = abs / scale;
  const fraction = (abs % scale).toString().padStart(scaleDigits, '0').replace(/0+$/, '');
  return `${negative ? '-' : ''}${whole}${fraction === '' ? '' : `.${fraction}`}`;
}

export function isWhole(scaled: bigint): boolean {
  return scaled % SCALE === 0n;
}

/** Rounds a scaled amount to whole minor units, halves away from zero (Stripe's per-line rounding). */
export function roundToMinor(scaled: bigint): bigint {
  const negative = scaled < 0n;
  const abs = negative ? -scaled : scaled;
  const rounded = (abs + SCALE / 2n) / SCALE;
  return negative ? -rounded : rounded;
}

const SYMBOLS: Record<string, string> = { usd: '$', eur: '€', gbp: '£', cad: 'CA$', aud: 'A$' };

/** A scaled minor-unit amount as a price label: 500 → "$5.00", 0.5 → "$0.005". Two-decimal currencies only. */
export function formatUnitPrice(scaledMinor: bigint, currency: string): string {
  const text = formatDecimal(scaledMinor, SCALE_DIGITS + 2);
  const [whole, fraction = ''] = text.split('.');
  const symbol = SYMBOLS[currency] ?? `${currency.toUpperCase()} `;
  return `${symbol}${whole}.${fraction.padEnd(2, '0')}`;
}

/**
 * The billing period: the calendar month, UTC. Non-additive meters send their period-to-date value to
 * Stripe, so a subscription should be anchored on the 1st (see the README's Stripe section).
 */

/** The start of the billing period that holds `d`. */
export const periodStart = (d: Date): Date => new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1));

/** The start of the period after the one that holds `d` (the end of `d`'s period, exclusive). */
export const periodEnd = (d: Date): Date => new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1));

/** A period's name as the API writes it: '2026-11'. */
export function periodId(d: Date): string {
  return `${String(d.getUTCFullYear()).padStart(4, '0')}-${String(d.getUTCMonth() + 1).padStart(2, '0')}`;
}

export interface BillingPeriod {
  start: Date;
  end: Date;
}

export interface InvalidPeriod {
  kind: 'invalid_period';
  message: string;
}

export const ACCEPTED_PERIOD_FORM = "a calendar month as YYYY-MM, e.g. '2026-11'";

/**
 * '2026-11' → November 2026 (UTC). Anything else is an InvalidPeriod whose message names the accepted
 * form. Years 1970–2105 only: what ClickHouse's DateTime holds.
 */
export function parsePeriod(text: string): BillingPeriod | InvalidPeriod {
  const m = /^(\d{4})-(\d{2})$/.exec(text);
  const year = m ? Number(m[1]) : NaN;
  const month = m ? Number(m[2]) : NaN;
  if (!m || month < 1 || month > 12 || year < 1970 || year > 2105) {
    return {
      kind: 'invalid_period',
      message: `must be ${ACCEPTED_PERIOD_FORM} (years 1970-2105), got ${JSON.stringify(text)}`,
    };
  }
  const start = new Date(Date.UTC(year, month - 1, 1));
  return { start, end: periodEnd(start) };
}

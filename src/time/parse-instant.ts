/**
 * The one reader of points in time that people type: the HTTP API's query and body fields and the CLI's
 * flags both go through parseInstant, so that they accept the same forms and refuse the rest with the
 * same words.
 *
 * Accepted:
 * - an ISO-8601 / RFC 3339 time with a zone: `2026-12-01T00:00:00Z`, `2026-12-01T00:00:00+01:00`,
 *   `2026-12-01T00:00Z`, `2026-12-01T00:00:00.250-05:00`. Fractions beyond milliseconds are dropped.
 *   A `+` that arrived as a space (`…T00:00:00 01:00`, from a query string that was not URL-encoded,
 *   where `+` means a space) is read as the `+` it was: nothing else can have been meant.
 * - a date alone, `2026-12-01`, meaning 00:00 UTC of that day. Decided so because the billing period is
 *   the calendar month in UTC: `from=2026-11-01&to=2026-12-01` is exactly November's period, whatever
 *   the zone of the person who typed it. A `to` date is exclusive, as every `to` is: it ends before
 *   that day begins.
 *
 * Refused, with a message that names the accepted forms: a time without a zone (it would mean a
 * different instant on every machine), epoch numbers (seconds or milliseconds? the message says which
 * it looks like), impossible dates (2026-02-30), and years outside 1970–2105 (what ClickHouse's DateTime
 * holds).
 */

export interface InvalidInstant {
  kind: 'invalid_instant';
  /** Why, then the accepted forms, then what was sent: "has no time zone; send … ; got '…'". */
  message: string;
}

export const ACCEPTED_INSTANT_FORMS =
  'an ISO-8601 time with a zone (2026-12-01T00:00:00Z or 2026-12-01T00:00:00+01:00) ' +
  'or a date (2026-12-01, read as 00:00 UTC)';

const INSTANT_PATTERN =
  /^(\d{4})-(\d{2})-(\d{2})(?:[Tt](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?([Zz]|[+\- ]\d{2}:\d{2})?)?$/;
const MIN_YEAR = 1970;
const MAX_YEAR = 2105;

function invalid(reason: string, text: string): InvalidInstant {
  const shown = text.length > 64 ? `${text.slice(0, 64)}…` : text;
  return { kind: 'invalid_instant', message: `${reason}; send ${ACCEPTED_INSTANT_FORMS}; got '${shown}'` };
}

/** `text` as an instant, or why not (see the module comment for the forms). */
export function parseInstant(text: string): Date | InvalidInstant {
  const trimmed = text.trim();
  const m = INSTANT_PATTERN.exec(trimmed);
  if (!m) {
    if (/^\d{9,10}$/.test(trimmed)) return invalid('this looks like epoch seconds, not a time', text);
    if (/^\d{12,13}$/.test(trimmed)) return invalid('this looks like epoch milliseconds, not a time', text);
    return invalid('not a time', text);
  }
  const [, y, mo, d, h, mi, s, fraction, zone] = m;
  if (h !== undefined && zone === undefined)
    return invalid('has no time zone (add Z for UTC, or an offset such as +01:00)', text);
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  const hour = Number(h ?? 0);
  const minute = Number(mi ?? 0);
  const second = Number(s ?? 0);
  const ms = Number((fraction ?? '').slice(0, 3).padEnd(3, '0'));
  if (year < MIN_YEAR || year > MAX_YEAR) return invalid(`the year must be ${MIN_YEAR}-${MAX_YEAR}`, text);
  const local = Date.UTC(year, month - 1, day, hour, minute, second, ms);
  const back = new Date(local);
  if (
    month < 1 ||
    month > 12 ||
    back.getUTCDate() !== day ||
    back.getUTCMonth() !== month - 1 ||
    hour > 23 ||
    minute > 59 ||
    second > 59
  )
    return invalid('no such date or time', text);
  let offsetMinutes = 0;
  if (zone !== undefined && zone.toUpperCase() !== 'Z') {
    const offsetHours = Number(zone.slice(1, 3));
    const offsetMins = Number(zone.slice(4, 6));
    if (offsetHours > 23 || offsetMins > 59) return invalid('no such zone offset', text);
    // A space is a `+` that a query string turned into one.
    offsetMinutes = (zone[0] === '-' ? -1 : 1) * (offsetHours * 60 + offsetMins);
  }
  const instant = new Date(local - offsetMinutes * 60_000);
  const instantYear = instant.getUTCFullYear();
  if (instantYear < MIN_YEAR || instantYear > MAX_YEAR)
    return invalid(`the time must fall in the years ${MIN_YEAR}-${MAX_YEAR} (UTC)`, text);
  return instant;
}

export function isInvalidInstant(v: Date | InvalidInstant): v is InvalidInstant {
  return !(v instanceof Date);
}

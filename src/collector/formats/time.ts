// Timestamps: ISO-8601 and epoch numbers to epoch milliseconds, the accepted window, and the time
// columns of a row.
import type { AdaptContext, RequestLogRow } from '../request-log.ts';
import { describeValue, invalid, reject } from './rejection.ts';

export const SECOND = 1000;
export const MINUTE = 60 * SECOND;
export const HOUR = 60 * MINUTE;
export const DAY = 24 * HOUR;

/** ClickHouse DateTime (UInt32 seconds) bounds. */
const MIN_TIME_MS = 0;
const MAX_TIME_MS = 4_294_967_295_999;

const ISO_DATE_TIME =
  /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?(?:([Zz])|([+-])(\d{2})(?::?(\d{2}))?)?$/;

export interface TimestampOptions {
  /** Moesif documents its times as UTC and some of its SDKs send them without a zone. */
  zonelessIsUtc?: boolean;
}

/**
 * Numbers from 0 up to (not including) this are epoch seconds; from it on, epoch milliseconds.
 * 1e11 as milliseconds is 1973-03-03, earlier than any accepted window reaches (INGEST_MAX_PAST_DAYS is
 * at most 3650 days), and as seconds it is the year 5138, later than the 2106 that a ClickHouse DateTime
 * holds. So no number has two readings that could both be accepted: a sender of Unix time (seconds, as
 * Stripe and `date +%s` give it) is understood instead of refused with a date in January 1970.
 */
export const EPOCH_SECONDS_BELOW = 1e11;

/** A number that parseTimestampMs reads as epoch seconds. */
export function isEpochSeconds(value: unknown): value is number {
  return typeof value === 'number' && value >= 0 && value < EPOCH_SECONDS_BELOW;
}

/** Past the last millisecond a DateTime holds: these magnitudes are what other units of now look like. */
function unitHint(value: number): string {
  if (value >= 1e14 && value < 1e17) return ' (this looks like epoch microseconds: send milliseconds)';
  if (value >= 1e17 && value < 1e20) return ' (this looks like epoch nanoseconds: send milliseconds)';
  return '';
}

/**
 * A point in time as epoch milliseconds: an ISO-8601 date-time with a zone (`Z` or `±hh:mm`;
 * fractions beyond milliseconds are truncated), or a number: epoch seconds below EPOCH_SECONDS_BELOW
 * (fractions kept to the millisecond), else epoch milliseconds. Nothing else: no date-only strings, no
 * numeric strings.
 */
export function parseTimestampMs(value: unknown, field: string, options: TimestampOptions = {}): number {
  const zonelessIsUtc = options.zonelessIsUtc === true;
  let ms: number | undefined;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) ms = undefined;
    // Rounded to the microsecond first, so 1795262399.123 s is …123 ms whatever the binary fraction.
    else if (isEpochSeconds(value)) ms = Math.floor(Math.round(value * 1e6) / 1000) + 0;
    else ms = Math.floor(value) + 0;
  } else if (typeof value === 'string') ms = isoToMs(value, zonelessIsUtc);
  if (ms === undefined) {
    invalid(
      field,
      value,
      zonelessIsUtc
        ? 'must be an ISO-8601 date-time (UTC unless it names a zone) or epoch milliseconds or seconds'
        : 'must be an ISO-8601 date-time with a time zone (e.g. 2026-11-21T12:06:20.048Z) or epoch milliseconds or seconds',
    );
  }
  if (ms < MIN_TIME_MS || ms > MAX_TIME_MS) {
    reject(
      field,
      `must be between 1970-01-01T00:00:00.000Z and 2106-02-07T06:28:15.999Z, got ${describeValue(value)}` +
        (typeof value === 'number' ? unitHint(value) : ''),
    );
  }
  return ms;
}

/** parseTimestampMs, then the accepted window [receivedAt - maxPast, receivedAt + maxFuture]. */
export function parseRequestTime(
  value: unknown,
  field: string,
  ctx: AdaptContext,
  options: TimestampOptions = {},
): number {
  const ms = parseTimestampMs(value, field, options);
  const earliest = ctx.receivedAtMs - ctx.maxPastMs;
  const latest = ctx.receivedAtMs + ctx.maxFutureMs;
  if (ms < earliest || ms > latest) {
    reject(
      field,
      `must be from ${formatDuration(ctx.maxPastMs)} before to ${formatDuration(ctx.maxFutureMs)} after the time ` +
        `the event was received (${isoText(earliest)} to ${isoText(latest)}), got ${isoText(ms)}` +
        (isEpochSeconds(value) ? ` (${value} read as epoch seconds)` : ''),
    );
  }
  return ms;
}

export function splitTime(ms: number): Pick<RequestLogRow, 'request_time' | 'request_time_ms'> {
  const seconds = Math.floor(ms / SECOND);
  return { request_time: seconds, request_time_ms: ms - seconds * SECOND };
}

/** received_at, request_time and request_time_ms of a row. */
export function timeColumns(
  ctx: AdaptContext,
  requestTimeMs: number,
): Pick<RequestLogRow, 'received_at' | 'request_time' | 'request_time_ms'> {
  const { request_time, request_time_ms } = splitTime(requestTimeMs);
  return { received_at: receivedAtSeconds(ctx), request_time, request_time_ms };
}

/** received_at of a row: the second the request arrived. */
export function receivedAtSeconds(ctx: AdaptContext): number {
  return Math.floor(ctx.receivedAtMs / SECOND);
}

function isoToMs(text: string, zonelessIsUtc: boolean): number | undefined {
  const ms = isoToMsFast(text, zonelessIsUtc);
  return ms === undefined ? isoToMsByPattern(text, zonelessIsUtc) : ms;
}

const CHAR_T = 0x54;
const CHAR_LOWER_T = 0x74;
const CHAR_SPACE = 0x20;
const CHAR_DASH = 0x2d;
const CHAR_COLON = 0x3a;
const CHAR_DOT = 0x2e;
const CHAR_COMMA = 0x2c;
const CHAR_PLUS = 0x2b;
const CHAR_Z = 0x5a;
const CHAR_LOWER_Z = 0x7a;
const CHAR_0 = 0x30;

/**
 * The same result as isoToMsByPattern, without its regex match, arrays and Date (together about a
 * fifth of the cost of a native record, about 20 times what this takes): reads the fixed positions of `YYYY-MM-DD[Tt ]HH:MM:SS`,
 * an optional `[.,]` fraction of any length, then `Z`, `z`, `±HH`, `±HHMM`, `±HH:MM` or, with
 * zonelessIsUtc, nothing. Returns undefined for anything else (no seconds, a bad field, an impossible
 * date), and the caller then asks isoToMsByPattern: this path only ever answers with a number it is
 * sure the pattern would give, so every rejection still comes from the one definition.
 */
export function isoToMsFast(text: string, zonelessIsUtc: boolean): number | undefined {
  const length = text.length;
  if (
    length < 19 ||
    text.charCodeAt(4) !== CHAR_DASH ||
    text.charCodeAt(7) !== CHAR_DASH ||
    text.charCodeAt(13) !== CHAR_COLON ||
    text.charCodeAt(16) !== CHAR_COLON
  ) {
    return undefined;
  }
  const separator = text.charCodeAt(10);
  if (separator !== CHAR_T && separator !== CHAR_LOWER_T && separator !== CHAR_SPACE) return undefined;
  const century = twoDigits(text, 0);
  const yearOfCentury = twoDigits(text, 2);
  const month = twoDigits(text, 5);
  const day = twoDigits(text, 8);
  const hour = twoDigits(text, 11);
  const minute = twoDigits(text, 14);
  const second = twoDigits(text, 17);
  // twoDigits gives -1 for a non-digit, so `< 0` / `< 1` also refuse those.
  if (century < 0 || yearOfCentury < 0 || month < 1 || month > 12 || day < 1) return undefined;
  if (hour < 0 || hour > 23 || minute < 0 || minute > 59 || second < 0 || second > 59) return undefined;
  const year = century * 100 + yearOfCentury;
  if (day > daysInMonth(year, month)) return undefined;

  let at = 19;
  let millis = 0;
  let code = text.charCodeAt(at);
  if (code === CHAR_DOT || code === CHAR_COMMA) {
    // Milliseconds are the first three digits (missing ones are 0); the rest are truncated, not rounded.
    const first = at + 1;
    let scale = 100;
    for (at = first; at < length; at += 1) {
      const digit = text.charCodeAt(at) - CHAR_0;
      if (digit < 0 || digit > 9) break;
      millis += digit * scale;
      scale = (scale / 10) | 0; // 100, 10, 1, then 0 for every further digit
    }
    if (at === first) return undefined;
    code = text.charCodeAt(at);
  }

  let offsetMinutes = 0;
  if (at === length) {
    if (!zonelessIsUtc) return undefined;
  } else if (code === CHAR_Z || code === CHAR_LOWER_Z) {
    if (at + 1 !== length) return undefined;
  } else if (code === CHAR_PLUS || code === CHAR_DASH) {
    const offsetHours = twoDigits(text, at + 1);
    let offsetMins = 0;
    let end = at + 3;
    if (end < length) {
      if (text.charCodeAt(end) === CHAR_COLON) end += 1;
      offsetMins = twoDigits(text, end);
      end += 2;
    }
    if (end !== length || offsetHours < 0 || offsetHours > 23 || offsetMins < 0 || offsetMins > 59) {
      return undefined;
    }
    offsetMinutes = (code === CHAR_DASH ? -1 : 1) * (offsetHours * 60 + offsetMins);
  } else {
    return undefined;
  }
  return (
    daysFromCivil(year, month, day) * DAY +
    hour * HOUR +
    minute * MINUTE +
    second * SECOND +
    millis -
    offsetMinutes * MINUTE
  );
}

/** The number of the two ASCII digits at `at`, or -1 (also past the end, where charCodeAt is NaN). */
function twoDigits(text: string, at: number): number {
  const tens = text.charCodeAt(at) - CHAR_0;
  const ones = text.charCodeAt(at + 1) - CHAR_0;
  return tens >= 0 && tens <= 9 && ones >= 0 && ones <= 9 ? tens * 10 + ones : -1;
}

/**
 * Days from 1970-01-01 to a valid date of the proleptic Gregorian calendar (Date's calendar, year 0
 * included): Howard Hinnant's days_from_civil, which counts from 0000-03-01 so leap days end a year.
 */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yearOfEra = y - era * 400;
  const dayOfYear = Math.floor((153 * (month > 2 ? month - 3 : month + 9) + 2) / 5) + day - 1;
  const dayOfEra = yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear;
  return era * 146_097 + dayOfEra - 719_468;
}

/**
 * The reference parser: the ISO_DATE_TIME pattern, checked field by field, then Date's own calendar.
 * It is the definition of what is accepted; isoToMsFast must agree with it on every string (exported
 * only for that property test).
 */
export function isoToMsByPattern(text: string, zonelessIsUtc: boolean): number | undefined {
  const m = ISO_DATE_TIME.exec(text);
  if (m === null) return undefined;
  const zoned = m[8] !== undefined || m[9] !== undefined;
  if (!zoned && !zonelessIsUtc) return undefined;
  const [year, month, day, hour, minute] = [m[1], m[2], m[3], m[4], m[5]].map(Number) as [
    number,
    number,
    number,
    number,
    number,
  ];
  const second = Number(m[6] ?? '0');
  const millis = Number(`${m[7] ?? ''}000`.slice(0, 3));
  const offsetHours = Number(m[10] ?? '0');
  const offsetMinutes = Number(m[11] ?? '0');
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return undefined;
  if (hour > 23 || minute > 59 || second > 59 || offsetHours > 23 || offsetMinutes > 59) return undefined;
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  date.setUTCHours(hour, minute, second, millis);
  const offsetMs = (m[9] === '-' ? -1 : 1) * (offsetHours * 60 + offsetMinutes) * MINUTE;
  return date.getTime() - offsetMs;
}

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31] as const;

function daysInMonth(year: number, month: number): number {
  return month === 2 && isLeapYear(year) ? 29 : (DAYS_IN_MONTH[month - 1] ?? 0);
}

function isLeapYear(year: number): boolean {
  return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
}

function isoText(ms: number): string {
  return Number.isFinite(ms) && Math.abs(ms) <= 8.64e15 ? new Date(ms).toISOString() : String(ms);
}

/** 3024000000 → "35 days", 300000 → "5 minutes". */
export function formatDuration(ms: number): string {
  const units: [number, string][] = [
    [DAY, 'day'],
    [HOUR, 'hour'],
    [MINUTE, 'minute'],
    [SECOND, 'second'],
  ];
  for (const [size, name] of units) {
    if (ms >= size && ms % size === 0) {
      const n = ms / size;
      return `${n} ${name}${n === 1 ? '' : 's'}`;
    }
  }
  return `${ms} ms`;
}

/**
 * The rules every wire-format adapter shares, each written once: how a timestamp, a route, a method,
 * a status, a number, an id, metadata and headers become canonical row fields, and what is refused.
 *
 * A rule either returns the normalized value or throws EventRejectedError(field, reason); the batch
 * driver (adaptEach / adaptOne) turns that into an EventRejection for that one event, so one bad event
 * never costs the others. `reason` never repeats the field: show them as `${field}: ${reason}`.
 */
import { Buffer } from 'node:buffer';
import { isSensitiveHeader } from '../../../ingest/header-policy.ts';
import type { ZodType } from 'zod';
import type { AdaptContext, AdaptResult, EventRejection, RequestLogRow } from '../request-log.ts';
import { jsonText } from './json-text.ts';

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** Every limit the adapters enforce. Strings are measured in Unicode code points. */
export const LIMITS = {
  /** Event ids, customer, company_id, user_id, api_version, CloudEvents id/source/type/subject. */
  idChars: 256,
  /** Host with port: a DNS name is at most 253 characters. */
  hostChars: 512,
  /** Route (path without query string or fragment). */
  routeChars: 2048,
  latencyMsMax: 4_294_967_295,
  bytesMax: Number.MAX_SAFE_INTEGER,
  sampleWeightMax: 1_000_000,
  /** Flattened metadata keys per event (headers are not counted: the allow list bounds them). */
  metadataKeys: 100,
  /** `metadata.a.b.c.d.e`: an object nested deeper, or any array, is stored as its JSON text. */
  metadataDepth: 5,
  metaKeyChars: 256,
  metaValueChars: 8192,
} as const;

/** Suggested defaults for AdaptContext (the config owns the real values). */
export const DEFAULT_INGEST_LIMITS = {
  /** Stripe accepts meter events up to 35 days old and 5 minutes in the future. */
  maxPastMs: 35 * DAY,
  maxFutureMs: 5 * MINUTE,
  /** Moesif SDKs send bodies up to 100 kB each by default; 1 MiB leaves room for headers and metadata. */
  maxEventBytes: 1_048_576,
} as const;

// ---------------------------------------------------------------------------------------------------
// Rejection

/** Thrown by a rule; caught per event by adaptOne. Never escapes an adapter. */
export class EventRejectedError extends Error {
  readonly field: string;
  readonly reason: string;

  constructor(field: string, reason: string) {
    super(field === '' ? reason : `${field}: ${reason}`);
    this.name = 'EventRejectedError';
    this.field = field;
    this.reason = reason;
  }
}

export function reject(field: string, reason: string): never {
  throw new EventRejectedError(field, reason);
}

/** Rejects `value` for not meeting `expectation` ("must be …"), quoting what was sent. */
export function invalid(field: string, value: unknown, expectation: string): never {
  if (value === undefined || value === null) reject(field, `is required and ${expectation}`);
  reject(field, `${expectation}, got ${describeValue(value)}`);
}

/** A short, human description of a value for an error message. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  switch (typeof value) {
    case 'number':
      return String(value);
    case 'string':
      return value.length > 64
        ? `${JSON.stringify(`${value.slice(0, 64)}…`)} (${value.length} characters)`
        : JSON.stringify(value);
    case 'boolean':
      return String(value);
    case 'bigint':
      return `${value.toString()}n`;
    case 'object':
      return Array.isArray(value) ? 'an array' : 'an object';
    default:
      return `a ${typeof value}`;
  }
}

// ---------------------------------------------------------------------------------------------------
// Batch driver

export type ItemResult<T> = { ok: true; value: T } | { ok: false; rejection: EventRejection };
export interface BatchResult<T> {
  values: T[];
  rejected: EventRejection[];
}
export type EventConverter<T> = (raw: unknown, ctx: AdaptContext) => T;

const EVENT_TOO_LARGE_MARK = '-byte limit (MAX_EVENT_BYTES)';
const UNREADABLE_REASON = 'could not be read: the event has an unexpected shape';

/** Same words as the HTTP layer's own size check, so both read alike. */
export function eventTooLargeReason(maxEventBytes: number): string {
  return `the event is over the ${maxEventBytes}${EVENT_TOO_LARGE_MARK}`;
}

/** True for the rejection an event over ctx.maxEventBytes gets (the HTTP layer answers 413 when all are). */
export function isEventTooLarge(rejection: EventRejection): boolean {
  return rejection.field === '' && rejection.reason.endsWith(EVENT_TOO_LARGE_MARK);
}

/** True for the catch-all rejection: seeing it means an adapter met input it does not handle (a bug). */
export function isUnreadable(rejection: EventRejection): boolean {
  return rejection.reason === UNREADABLE_REASON;
}

/**
 * Converts one event: checks its serialized size, then runs `convert`. Never throws: a rule's
 * rejection becomes {index, field, reason}, anything else the catch-all UNREADABLE_REASON.
 */
export function adaptOne<T>(
  raw: unknown,
  index: number,
  ctx: AdaptContext,
  convert: EventConverter<T>,
): ItemResult<T> {
  try {
    // An infinite limit means the caller knows no event can be over it (its whole body is not): skip the measuring.
    if (Number.isFinite(ctx.maxEventBytes) && jsonByteLength(raw, ctx.maxEventBytes) === undefined) {
      return { ok: false, rejection: { index, field: '', reason: eventTooLargeReason(ctx.maxEventBytes) } };
    }
    return { ok: true, value: convert(raw, ctx) };
  } catch (error) {
    if (error instanceof EventRejectedError) {
      return { ok: false, rejection: { index, field: error.field, reason: error.reason } };
    }
    return { ok: false, rejection: { index, field: '', reason: UNREADABLE_REASON } };
  }
}

/** Runs `convert` on every item independently. A body that is not an array is one rejection at index 0. */
export function adaptItems<T>(items: unknown, ctx: AdaptContext, convert: EventConverter<T>): BatchResult<T> {
  const values: T[] = [];
  const rejected: EventRejection[] = [];
  if (!Array.isArray(items)) {
    rejected.push({ index: 0, field: '', reason: 'the body must be a JSON array of events' });
    return { values, rejected };
  }
  for (let index = 0; index < items.length; index += 1) {
    const outcome = adaptOne(items[index], index, ctx, convert);
    if (outcome.ok) values.push(outcome.value);
    else rejected.push(outcome.rejection);
  }
  return { values, rejected };
}

/** adaptItems for request-log rows, in the AdaptResult shape. */
export function adaptEach(
  events: unknown,
  ctx: AdaptContext,
  toRow: EventConverter<RequestLogRow>,
): AdaptResult {
  const { values, rejected } = adaptItems(events, ctx, toRow);
  return { rows: values, rejected };
}

/**
 * Byte length of the value's JSON text (what JSON.stringify would give, measured as UTF-8), or
 * undefined when it is over `maxBytes`. Safe at any nesting depth. The HTTP layer can use it too:
 * JSON.stringify alone throws RangeError on ~10,000 levels of nesting.
 */
export function jsonByteLength(value: unknown, maxBytes = Number.POSITIVE_INFINITY): number | undefined {
  let text: string;
  try {
    // The native serializer is 2-4 times faster; the body size limit of the HTTP layer bounds its work.
    text = JSON.stringify(value) ?? 'null';
  } catch {
    // Nested too deep for it (RangeError), or not JSON (a bigint, a cycle): walk it without recursion.
    // A UTF-16 code unit is at least one UTF-8 byte, so a text longer than maxBytes units is over too.
    const walked = jsonText(value, { maxLength: maxBytes });
    if (walked === undefined) return undefined;
    text = walked;
  }
  const bytes = Buffer.byteLength(text, 'utf8');
  return bytes > maxBytes ? undefined : bytes;
}

// ---------------------------------------------------------------------------------------------------
// Shapes (zod)

/**
 * Checks the structure of `value` with a zod schema whose messages are expectations ("must be an
 * object"); the first issue becomes the rejection, with the field path and the value quoted.
 * Returns `value` itself (validated, not copied).
 */
export function checkShape<T>(schema: ZodType<T>, value: unknown, fieldPrefix = ''): T {
  const result = schema.safeParse(value);
  if (result.success) return value as T;
  const issue = result.error.issues[0];
  const path = (issue?.path ?? []).map((segment) => String(segment));
  const field = [fieldPrefix, ...path].filter((part) => part !== '').join('.');
  invalid(field, valueAt(value, path), issue?.message ?? 'is invalid');
}

function valueAt(value: unknown, path: readonly string[]): unknown {
  let current = value;
  for (const segment of path) {
    if (!isObject(current)) return undefined;
    current = current[segment];
  }
  return current;
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

// ---------------------------------------------------------------------------------------------------
// Time

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
 * A point in time as epoch milliseconds: an ISO-8601 date-time with a zone (`Z` or `±hh:mm`;
 * fractions beyond milliseconds are truncated), or a number of epoch milliseconds. Nothing else:
 * no date-only strings, no epoch seconds, no numeric strings.
 */
export function parseTimestampMs(value: unknown, field: string, options: TimestampOptions = {}): number {
  const zonelessIsUtc = options.zonelessIsUtc === true;
  let ms: number | undefined;
  if (typeof value === 'number') ms = Number.isFinite(value) ? Math.floor(value) + 0 : undefined;
  else if (typeof value === 'string') ms = isoToMs(value, zonelessIsUtc);
  if (ms === undefined) {
    invalid(
      field,
      value,
      zonelessIsUtc
        ? 'must be an ISO-8601 date-time (UTC unless it names a zone) or epoch milliseconds'
        : 'must be an ISO-8601 date-time with a time zone (e.g. 2026-11-21T12:06:20.048Z) or epoch milliseconds',
    );
  }
  if (ms < MIN_TIME_MS || ms > MAX_TIME_MS) {
    reject(
      field,
      `must be between 1970-01-01T00:00:00.000Z and 2106-02-07T06:28:15.999Z, got ${describeValue(value)}`,
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
        `the event was received (${isoText(earliest)} to ${isoText(latest)}), got ${isoText(ms)}`,
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

// ---------------------------------------------------------------------------------------------------
// Request line

const ABSOLUTE_URL = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/([^/?#]*)(.*)$/s;

export interface RequestTarget {
  /** Path without query string or fragment, starting with '/', not percent-decoded. */
  route: string;
  /** Lower-cased host (with port) when the value was a full URL, else ''. */
  host: string;
}

/**
 * A path (`/v1/widgets?x=1`) or a full URL (`https://api.test:8443/v1/widgets?x=1#top`). The query
 * string and fragment are cut off, nothing is decoded or re-encoded, user info in a URL is dropped,
 * and a relative path gets a leading '/'. `//x` without a scheme is a path, not a URL.
 */
export function parseTarget(value: unknown, field: string): RequestTarget {
  if (typeof value !== 'string' || value === '') {
    invalid(field, value, 'must be a non-empty path such as /v1/widgets or a full URL');
  }
  let host = '';
  let path = value;
  // Only a value starting with a letter can be a URL; most values are paths, which skip the pattern.
  const url = isAsciiLetter(value.charCodeAt(0)) ? ABSOLUTE_URL.exec(value) : null;
  if (url !== null) {
    const authority = url[1] ?? '';
    host = authority.slice(authority.lastIndexOf('@') + 1).toLowerCase();
    path = url[2] ?? '';
  }
  const end = indexOfQueryOrFragment(path);
  if (end >= 0) path = path.slice(0, end);
  if (!path.startsWith('/')) path = `/${path}`;
  return { route: checkText(path, field, LIMITS.routeChars), host: checkText(host, field, LIMITS.hostChars) };
}

function isAsciiLetter(code: number): boolean {
  return (code >= 0x41 && code <= 0x5a) || (code >= 0x61 && code <= 0x7a);
}

/** Where the first '?' or '#' is, or -1: path.search(/[?#]/), in half the time. */
function indexOfQueryOrFragment(path: string): number {
  const query = path.indexOf('?');
  const fragment = path.indexOf('#');
  return query < 0 ? fragment : fragment < 0 ? query : Math.min(query, fragment);
}

export function parseHost(value: unknown, field: string): string {
  return parseText(value, field, LIMITS.hostChars).toLowerCase();
}

export function parseMethod(value: unknown, field: string, options: { optional?: boolean } = {}): string {
  if (options.optional === true && value == null) return '';
  const expectation = 'must be an HTTP method of 1 to 16 letters, such as GET';
  if (typeof value !== 'string' || value.length > 64) invalid(field, value, expectation);
  // Upper-cased first, so non-ASCII letters that upper-case to A-Z (ſ → S) count as they always have.
  const method = value.toUpperCase();
  if (!isMethodName(method)) invalid(field, value, expectation);
  return method;
}

/** /^[A-Z]{1,16}$/ without the regex. */
function isMethodName(text: string): boolean {
  if (text.length < 1 || text.length > 16) return false;
  for (let i = 0; i < text.length; i += 1) {
    const code = text.charCodeAt(i);
    if (code < 0x41 || code > 0x5a) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------------
// Numbers

export interface NumberOptions {
  /** Accept decimal strings such as "200" (for formats that send numbers as strings, like Kong). */
  allowString?: boolean;
}

const DECIMAL = /^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$/;

function numberFrom(value: unknown, allowString: boolean | undefined): number | undefined {
  if (typeof value === 'number') return value;
  if (allowString === true && typeof value === 'string' && DECIMAL.test(value)) return Number(value);
  return undefined;
}

/**
 * HTTP status, an integer from 100 to 599. With `optional` (CloudEvents only, where an event need not
 * be an HTTP call) a missing status and 0 are accepted and stored as 0.
 */
export function parseStatus(
  value: unknown,
  field: string,
  options: NumberOptions & { optional?: boolean } = {},
): number {
  const optional = options.optional === true;
  if (optional && value == null) return 0;
  const expectation = optional
    ? 'must be 0 or an integer from 100 to 599'
    : 'must be an integer from 100 to 599';
  const n = numberFrom(value, options.allowString);
  if (n === undefined || !Number.isInteger(n)) invalid(field, value, expectation);
  if (optional && n === 0) return 0;
  if (n < 100 || n > 599) invalid(field, value, expectation);
  return n;
}

/** Latency in milliseconds: a finite number ≥ 0, rounded, at most 2^32-1 (UInt32). Missing is 0. */
export function parseLatencyMs(value: unknown, field: string, options: NumberOptions = {}): number {
  if (value == null) return 0;
  const expectation = `must be a number of milliseconds from 0 to ${LIMITS.latencyMsMax}`;
  const n = numberFrom(value, options.allowString);
  if (n === undefined || !Number.isFinite(n) || n < 0) invalid(field, value, expectation);
  const rounded = Math.round(n) + 0;
  if (rounded > LIMITS.latencyMsMax) invalid(field, value, expectation);
  return rounded;
}

/** A byte count: an integer from 0 to 2^53-1. Missing is 0. */
export function parseBytes(value: unknown, field: string, options: NumberOptions = {}): number {
  if (value == null) return 0;
  const n = numberFrom(value, options.allowString);
  if (n === undefined || !Number.isInteger(n) || n < 0 || n > LIMITS.bytesMax) {
    invalid(field, value, `must be an integer number of bytes from 0 to ${LIMITS.bytesMax}`);
  }
  return n + 0;
}

/** How many real calls the event stands for (sampling): an integer from 1 to 1,000,000. Missing is 1. */
export function parseSampleWeight(value: unknown, field: string): number {
  if (value == null) return 1;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > LIMITS.sampleWeightMax) {
    invalid(field, value, `must be an integer from 1 to ${LIMITS.sampleWeightMax}`);
  }
  return value;
}

// ---------------------------------------------------------------------------------------------------
// Strings

/**
 * An identifier (event id, customer, company_id, user_id): a string of at most 256 characters
 * without U+0000, or an integer (Moesif users send numeric ids), stored as its decimal text.
 * An integer beyond 2^53-1 has already lost digits in JSON parsing, so it is refused rather than
 * stored wrong. Missing or null is ''.
 */
export function parseId(value: unknown, field: string): string {
  if (value == null) return '';
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) {
      invalid(
        field,
        value,
        `must be a string, or an integer up to ${Number.MAX_SAFE_INTEGER} (send larger ids as strings)`,
      );
    }
    return String(value);
  }
  if (typeof value !== 'string') invalid(field, value, 'must be a string');
  return checkText(value, field, LIMITS.idChars);
}

/** A required, non-empty identifier. */
export function requireId(value: unknown, field: string): string {
  const id = parseId(value, field);
  if (id === '') invalid(field, value === '' ? null : value, 'must be a non-empty string');
  return id;
}

/** A short label (api_version, host, a name): a string, or a finite number as its text. Missing is ''. */
export function parseText(value: unknown, field: string, maxChars: number = LIMITS.idChars): string {
  if (value == null) return '';
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  if (typeof value !== 'string') invalid(field, value, 'must be a string');
  return checkText(value, field, maxChars);
}

function checkText(text: string, field: string, maxChars: number): string {
  if (text.includes('\u0000')) reject(field, 'must not contain the NUL character (U+0000)');
  if (exceedsChars(text, maxChars))
    reject(field, `must be at most ${maxChars} characters, got ${describeLength(text)}`);
  return text;
}

/** More than `maxChars` Unicode code points? Counts no further than needed. */
function exceedsChars(text: string, maxChars: number): boolean {
  // Every code point is one or two UTF-16 units.
  if (text.length <= maxChars) return false;
  if (text.length > 2 * maxChars) return true;
  return countCodePoints(text) > maxChars;
}

function countCodePoints(text: string): number {
  let count = 0;
  for (let i = 0; i < text.length; i += 1) {
    const unit = text.charCodeAt(i);
    if (unit >= 0xd800 && unit <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) i += 1;
    }
    count += 1;
  }
  return count;
}

function describeLength(text: string): string {
  return `${countCodePoints(text)} characters`;
}

// ---------------------------------------------------------------------------------------------------
// Customer

/** The customer a call is billed to: an explicit customer, else company_id, else user_id, else ''. */
export function customerKey(explicit: string, companyId: string, userId: string): string {
  return explicit || companyId || userId;
}

// ---------------------------------------------------------------------------------------------------
// Metadata

export interface FlattenOptions {
  /** Field path of the object, for rejections ('metadata'; CloudEvents: 'data'). */
  field?: string;
  /** Metadata keys the event already has (they count towards LIMITS.metadataKeys). */
  alreadyUsed?: number;
}

/**
 * Flattens an object into `metadata.<path>` keys and text values, depth first in key order:
 * nested objects become `metadata.a.b`; arrays, and objects nested deeper than 5 levels, become their
 * JSON text; numbers and booleans their String(); null (and an empty object) nothing. Refuses the
 * event for more than 100 keys, a key over 256 or a value over 8192 characters. Iterative, so no
 * depth of nesting can overflow the stack.
 */
export function flattenMetadata(value: unknown, options: FlattenOptions = {}): [string[], string[]] {
  const keys: string[] = [];
  const values: string[] = [];
  flattenMetadataInto(keys, values, value, options);
  return [keys, values];
}

/**
 * flattenMetadata, appending to a row's own `keys` and `values` rather than to arrays the caller
 * then has to copy. Keys already in `keys` do not count towards the limit (options.alreadyUsed does).
 */
export function flattenMetadataInto(
  keys: string[],
  values: string[],
  value: unknown,
  options: FlattenOptions = {},
): void {
  const field = options.field ?? 'metadata';
  const budget = LIMITS.metadataKeys - (options.alreadyUsed ?? 0);
  const first = keys.length;
  if (value == null) return;
  if (!isObject(value)) invalid(field, value, 'must be a JSON object');

  interface Frame {
    source: Record<string, unknown>;
    path: string;
    depth: number;
    names: string[];
    next: number;
  }
  const frames: Frame[] = [{ source: value, path: '', depth: 0, names: Object.keys(value), next: 0 }];
  while (frames.length > 0) {
    const frame = frames[frames.length - 1]!;
    if (frame.next >= frame.names.length) {
      frames.pop();
      continue;
    }
    const name = frame.names[frame.next]!;
    frame.next += 1;
    const item = frame.source[name];
    const path = frame.depth === 0 ? name : `${frame.path}.${name}`;
    const depth = frame.depth + 1;
    if (isObject(item) && depth < LIMITS.metadataDepth) {
      frames.push({ source: item, path, depth, names: Object.keys(item), next: 0 });
      continue;
    }
    const text = metadataText(item, field, path);
    if (text === undefined) continue;
    if (keys.length - first >= budget) {
      reject(
        field,
        `has more than ${LIMITS.metadataKeys} keys once nested objects are flattened (at most ${LIMITS.metadataKeys} per event)`,
      );
    }
    const key = `metadata.${path}`;
    if (exceedsChars(key, LIMITS.metaKeyChars)) {
      reject(
        `${field}.${path}`,
        `makes a metadata key longer than ${LIMITS.metaKeyChars} characters (keys are stored as metadata.<path>)`,
      );
    }
    keys.push(key);
    values.push(text);
  }
}

/** `${field}.${path}` is only spelled out for a rejection: building it for every value cost more than the check. */
function metadataText(item: unknown, field: string, path: string): string | undefined {
  let text: string | undefined;
  switch (typeof item) {
    case 'string':
      text = item;
      break;
    case 'number':
    case 'boolean':
    case 'bigint':
      text = String(item);
      break;
    case 'object':
      if (item === null) return undefined;
      // Twice the limit in code units: a code point is at most two units.
      text = jsonText(item, { maxLength: 2 * LIMITS.metaValueChars });
      if (text === undefined) {
        reject(
          `${field}.${path}`,
          `must be at most ${LIMITS.metaValueChars} characters, got more than ${2 * LIMITS.metaValueChars} as JSON text`,
        );
      }
      break;
    default:
      return undefined;
  }
  checkValueLength(text, field, path);
  return text;
}

/** Rejects `${field}.${path}` for a value over LIMITS.metaValueChars. */
function checkValueLength(text: string, field: string, path: string): void {
  if (exceedsChars(text, LIMITS.metaValueChars)) {
    reject(
      `${field}.${path}`,
      `must be at most ${LIMITS.metaValueChars} characters, got ${describeLength(text)}`,
    );
  }
}

// ---------------------------------------------------------------------------------------------------
// Headers

// The header-secrecy policy is the ingest package's, so that what the forwarder refuses to send and what
// the collector refuses to store cannot drift apart.
export {
  NEVER_STORED_HEADERS,
  SENSITIVE_HEADER_PATTERN,
  isSensitiveHeader,
} from '../../../ingest/header-policy.ts';

export type HeaderPrefix = 'header.' | 'response_header.';

/** Allow-listed request headers (`header.*`) then response headers (`response_header.*`) of an exchange. */
export function exchangeHeaders(
  request: Record<string, unknown>,
  response: Record<string, unknown>,
  allowList: ReadonlySet<string>,
): [string[], string[]] {
  const keys: string[] = [];
  const values: string[] = [];
  headersInto(keys, values, request.headers, 'header.', allowList, 'request.headers');
  headersInto(keys, values, response.headers, 'response_header.', allowList, 'response.headers');
  return [keys, values];
}

/**
 * The allow-listed headers of `obj` as `<prefix><lower-case name>` keys and text values (arrays joined
 * with ', '), in the object's order. Sensitive headers are dropped even when allow-listed. Values
 * that are neither text, numbers nor arrays of them are skipped; a value over 8192 characters
 * rejects the event.
 */
export function headers(
  obj: unknown,
  prefix: HeaderPrefix,
  allowList: ReadonlySet<string>,
  field: string = prefix === 'header.' ? 'headers' : 'response_headers',
): [string[], string[]] {
  const keys: string[] = [];
  const values: string[] = [];
  headersInto(keys, values, obj, prefix, allowList, field);
  return [keys, values];
}

/** headers, appending to a row's own `keys` and `values` rather than to arrays the caller then has to copy. */
export function headersInto(
  keys: string[],
  values: string[],
  obj: unknown,
  prefix: HeaderPrefix,
  allowList: ReadonlySet<string>,
  field: string = prefix === 'header.' ? 'headers' : 'response_headers',
): void {
  if (obj == null) return;
  if (!isObject(obj)) invalid(field, obj, 'must be an object of header names to values');
  if (allowList.size === 0) return;
  for (const rawName of Object.keys(obj)) {
    const name = rawName.toLowerCase();
    if (!allowList.has(name)) continue;
    const key = storedHeaderKey(prefix, name);
    if (key === null) continue;
    const text = headerText(obj[rawName]);
    if (text === undefined) continue;
    checkValueLength(text, field, name);
    keys.push(key);
    values.push(text);
  }
}

/**
 * Every event names the same few allow-listed headers, so whether a name is sensitive (a regex) and
 * its row key (a concatenation, a fresh string per event otherwise) are worked out once per name.
 * Only allow-listed names are looked up, so the maps stay as small as the allow list; the bound is
 * for a caller that keeps changing lists.
 */
const HEADER_KEY_CACHE_SIZE = 1024;
const headerKeyCache: Record<HeaderPrefix, Map<string, string | null>> = {
  'header.': new Map(),
  'response_header.': new Map(),
};

/** `<prefix><name>` for a header that may be stored, null for a sensitive one. */
function storedHeaderKey(prefix: HeaderPrefix, name: string): string | null {
  const cache = headerKeyCache[prefix];
  let key = cache.get(name);
  if (key === undefined) {
    if (cache.size >= HEADER_KEY_CACHE_SIZE) cache.clear();
    key = isSensitiveHeader(name) ? null : `${prefix}${name}`;
    cache.set(name, key);
  }
  return key;
}

/** The value of header `name` (any case) in a header object; an array gives its first element. */
export function headerValue(obj: unknown, name: string): unknown {
  if (!isObject(obj)) return undefined;
  const wanted = name.toLowerCase();
  for (const key of Object.keys(obj)) {
    if (key.toLowerCase() === wanted) {
      const value = obj[key];
      return Array.isArray(value) ? (value as unknown[])[0] : value;
    }
  }
  return undefined;
}

/** A header's text; a repeated header (an array) is joined with ', ' like HTTP folds it. */
function headerText(value: unknown): string | undefined {
  if (!Array.isArray(value)) return scalarText(value);
  const parts = (value as unknown[]).map(scalarText).filter((part): part is string => part !== undefined);
  return parts.length > 0 ? parts.join(', ') : undefined;
}

function scalarText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return undefined;
}

// Numbers (status, latency, bytes, sample weight) and strings (ids, labels) of an event.
import { LIMITS } from './limits.ts';
import { invalid, reject } from './rejection.ts';

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

export function checkText(text: string, field: string, maxChars: number): string {
  if (text.includes('\u0000')) reject(field, 'must not contain the NUL character (U+0000)');
  if (exceedsChars(text, maxChars))
    reject(field, `must be at most ${maxChars} characters, got ${describeLength(text)}`);
  return text;
}

/** More than `maxChars` Unicode code points? Counts no further than needed. */
export function exceedsChars(text: string, maxChars: number): boolean {
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

export function describeLength(text: string): string {
  return `${countCodePoints(text)} characters`;
}

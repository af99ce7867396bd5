/**
 * How an event is refused. The rules the wire-format adapters share (time.ts, scalars.ts,
 * request-target.ts, metadata.ts, headers.ts, customer.ts) either return the normalized value or throw
 * EventRejectedError(field, reason); the per-event driver (per-event.ts) turns that into an
 * EventRejection for that one event, so one bad event never costs the others. `reason` never repeats
 * the field: show them as `${field}: ${reason}`.
 */
import type { ZodType } from 'zod';

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

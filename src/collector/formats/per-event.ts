// The batch driver: every event of a body converted on its own, its size checked first, so one bad or
// oversized event becomes one rejection and never costs the others.
import { Buffer } from 'node:buffer';
import type { AdaptContext, AdaptResult, EventRejection, RequestLogRow } from '../request-log.ts';
import { jsonText } from './json-text.ts';
import { EventRejectedError } from './rejection.ts';

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

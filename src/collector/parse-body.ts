// The ingest pipeline's first step: a request body's bytes become its events (one JSON document, or
// NDJSON lines), each with its index. body-to-rows.ts checks and converts them; body-to-rows-threads.ts
// says on which thread that runs.
import { DomainError } from '../errors.ts';
import { eventTooLargeReason } from './formats/per-event.ts';

/** How a body is framed (the HTTP layer maps Content-Type to this). */
export type BodyKind = 'json' | 'ndjson' | 'cloudevent' | 'cloudevents-batch';
/** What an endpoint takes: one event, an array, or either. */
export type BatchShape = 'one' | 'many' | 'either';

/** One event of a parsed batch: its value, or why it could not even be parsed. */
export interface BatchEntry {
  index: number;
  value?: unknown;
  error?: string;
  tooLarge?: boolean;
}

/** Parses a whole JSON document; any syntax error (or absurd nesting) is a 400 for the whole body. */
export function parseJson(body: Uint8Array): unknown {
  try {
    return JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8'));
  } catch (err) {
    const reason =
      err instanceof RangeError ? 'nested too deeply' : err instanceof Error ? err.message : 'invalid';
    throw new DomainError('malformed_body', `the body is not valid JSON: ${reason}`);
  }
}

/**
 * Splits NDJSON; a bad line is that event's rejection, not the batch's. Blank lines are skipped and
 * not counted: an entry's index is its position among the non-blank lines, as a sender numbers its events.
 */
export function parseNdjson(body: Uint8Array, maxEventBytes: number): BatchEntry[] {
  const buf = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  const out: BatchEntry[] = [];
  let start = 0;
  while (start < buf.length) {
    let end = buf.indexOf(0x0a, start);
    if (end === -1) end = buf.length;
    const line = buf.subarray(start, end);
    start = end + 1;
    const text = line.toString('utf8').trim();
    if (text.length === 0) continue;
    // Taken once, before anything can throw: counting inside the push counted a line that is not JSON twice.
    const index = out.length;
    if (line.length > maxEventBytes) {
      out.push({ index, tooLarge: true, error: eventTooLargeReason(maxEventBytes) });
      continue;
    }
    try {
      out.push({ index, value: JSON.parse(text) });
    } catch (err) {
      out.push({ index, error: `invalid JSON: ${err instanceof Error ? err.message : 'syntax error'}` });
    }
  }
  return out;
}

/** A body as a list of events, checked against the shape the endpoint takes. */
export function parseEntries(
  kind: BodyKind,
  shape: BatchShape,
  body: Uint8Array,
  maxEventBytes: number,
): BatchEntry[] {
  if (kind === 'ndjson') return parseNdjson(body, maxEventBytes);
  const doc = parseJson(body);
  const isArray = Array.isArray(doc);
  const expectsArray = shape === 'many' || kind === 'cloudevents-batch';
  const expectsObject = shape === 'one' || kind === 'cloudevent';
  if (
    (expectsArray && !isArray) ||
    (expectsObject && isArray) ||
    (!isArray && (typeof doc !== 'object' || doc === null))
  ) {
    throw new DomainError(
      'malformed_body',
      expectsArray
        ? 'the body must be a JSON array of events'
        : expectsObject
          ? 'the body must be one JSON object'
          : 'the body must be a JSON object or an array of them',
    );
  }
  const values = isArray ? (doc as unknown[]) : [doc];
  return values.map((value, index) => ({ index, value }));
}

import { DomainError, type ErrorCode } from '../errors.ts';
import { adapters } from './formats/index.ts';
import { isEventTooLarge } from './formats/per-event.ts';
import { toTabSeparated } from './tab-separated.ts';
import { parseEntries, type BatchShape, type BodyKind } from './parse-body.ts';
import type { EventRejection, SourceFormat } from './request-log.ts';

/**
 * Everything between the bytes of a request body and the bytes the spool stores: parse (parse-body.ts),
 * check each event, map it to the canonical row, serialise to TabSeparated (the request_logs spool's
 * format). Pure and self-contained (plain data in, plain data out), so it runs the same inline or in a
 * worker thread (body-to-rows-threads.ts).
 */
export interface PrepareInput {
  format: SourceFormat;
  kind: BodyKind;
  shape: BatchShape;
  body: Uint8Array;
  app: string;
  receivedAtMs: number;
  headerAllowList: readonly string[];
  limits: { maxEventBytes: number; maxEventsPerRequest: number; maxPastMs: number; maxFutureMs: number };
  /** REQUIRE_CUSTOMER: an event without a customer is rejected rather than stored unattributed. */
  requireCustomer?: boolean;
}

export type PrepareOutput =
  | {
      ok: true;
      rows: Uint8Array;
      accepted: number;
      /** Of the accepted, how many name no customer (customer_key ''): stored, but no meter bills them. */
      unattributed: number;
      rejected: EventRejection[];
      tooLarge: boolean;
    }
  | { ok: false; code: ErrorCode; message: string };

const allowListCache = new Map<string, ReadonlySet<string>>();

export function prepareBatch(input: PrepareInput): PrepareOutput {
  try {
    const { limits } = input;
    const entries = parseEntries(input.kind, input.shape, input.body, limits.maxEventBytes);
    if (entries.length > limits.maxEventsPerRequest) {
      throw new DomainError(
        'payload_too_large',
        `${entries.length} events in one request; at most ${limits.maxEventsPerRequest} (MAX_EVENTS_PER_REQUEST)`,
      );
    }
    const rejected: EventRejection[] = [];
    let tooLarge = false;
    const events: unknown[] = [];
    const indexes: number[] = [];
    for (const entry of entries) {
      if (entry.error !== undefined) {
        rejected.push({ index: entry.index, field: '', reason: entry.error });
        tooLarge ||= entry.tooLarge === true;
      } else {
        events.push(entry.value);
        indexes.push(entry.index);
      }
    }
    const key = input.headerAllowList.join(',');
    let allowList = allowListCache.get(key);
    if (!allowList) allowListCache.set(key, (allowList = new Set(input.headerAllowList)));
    const adapted = adapters[input.format](events, {
      app: input.app,
      receivedAtMs: input.receivedAtMs,
      headerAllowList: allowList,
      maxPastMs: limits.maxPastMs,
      maxFutureMs: limits.maxFutureMs,
      // No event's text can be over the limit when the whole body's is not: spare the adapters measuring.
      maxEventBytes:
        input.body.byteLength > limits.maxEventBytes ? limits.maxEventBytes : Number.POSITIVE_INFINITY,
      requireCustomer: input.requireCustomer === true,
    });
    for (const r of adapted.rejected) {
      rejected.push({ ...r, index: indexes[r.index] ?? r.index });
      tooLarge ||= isEventTooLarge(r);
    }
    rejected.sort((a, b) => a.index - b.index);
    let unattributed = 0;
    for (const row of adapted.rows) if (row.customer_key === '') unattributed += 1;
    return {
      ok: true,
      rows: toTabSeparated(adapted.rows),
      accepted: adapted.rows.length,
      unattributed,
      rejected,
      tooLarge,
    };
  } catch (err) {
    if (err instanceof DomainError) return { ok: false, code: err.code, message: err.message };
    throw err;
  }
}

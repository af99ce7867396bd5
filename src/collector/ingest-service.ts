import { DomainError, InvalidEventsError } from '../errors.ts';
import type { Adapter } from './formats/index.ts';
import { isEventTooLarge } from './formats/normalize.ts';
import type { EventRejection, SourceFormat } from './request-log.ts';

/** One event of a parsed batch: its value, or why it could not even be parsed. */
export interface BatchEntry {
  index: number;
  value?: unknown;
  error?: string;
  tooLarge?: boolean;
}

/** Port: the durable queue in front of ClickHouse (the spool). Resolves once the bytes are durable. */
export interface DurableQueue {
  append(data: Buffer): Promise<void>;
}

export interface IngestMetrics {
  accepted(format: string, n: number): void;
  rejected(format: string, n: number): void;
}


export interface IngestLimits {
  maxEventBytes: number;
  maxEventsPerRequest: number;
  maxPastMs: number;
  maxFutureMs: number;
}

export interface IngestServiceDeps {
  queues: { request_logs: DurableQueue } & Partial<Record<string, DurableQueue>>;
  adapters: Record<SourceFormat, Adapter>;
  limits: IngestLimits;
  headerAllowList: ReadonlySet<string>;
  metrics?: IngestMetrics;
  now?: () => number;
}

export interface IngestOutcome {
  accepted: number;
}

/**
 * The collector's use case: a parsed batch in one wire format becomes canonical rows, which are made
 * durable in one append. Valid events are stored even when others in the batch are bad; the bad ones
 * come back as an InvalidEventsError naming each (index, field, reason) — thrown only after the good
 * ones are durable.
 */
export class IngestService {
  private readonly now: () => number;

  constructor(private readonly deps: IngestServiceDeps) {
    this.now = deps.now ?? Date.now;
  }

  async ingestLogs(format: SourceFormat, entries: BatchEntry[], app: string, bodyBytes: number): Promise<IngestOutcome> {
    const { limits } = this.deps;
    if (entries.length > limits.maxEventsPerRequest) {
      throw new DomainError(
        'payload_too_large',
        `${entries.length} events in one request; at most ${limits.maxEventsPerRequest} (MAX_EVENTS_PER_REQUEST)`,
      );
    }
    const receivedAtMs = this.now();
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

    const adapted = this.deps.adapters[format](events, {
      app,
      receivedAtMs,
      headerAllowList: this.deps.headerAllowList,
      maxPastMs: limits.maxPastMs,
      maxFutureMs: limits.maxFutureMs,
      // No event's text can be over the limit when the whole body's is not: spare the adapters measuring.
      maxEventBytes: bodyBytes > limits.maxEventBytes ? limits.maxEventBytes : Number.POSITIVE_INFINITY,
    });
    for (const r of adapted.rejected) {
      rejected.push({ ...r, index: indexes[r.index] ?? r.index });
      tooLarge ||= isEventTooLarge(r);
    }

    if (adapted.rows.length > 0) {
      await this.deps.queues.request_logs.append(toJsonEachRow(adapted.rows));
    }
    this.deps.metrics?.accepted(format, adapted.rows.length);
    if (rejected.length > 0) {
      this.deps.metrics?.rejected(format, rejected.length);
      rejected.sort((a, b) => a.index - b.index);
      throw new InvalidEventsError(adapted.rows.length, rejected, tooLarge);
    }
    return { accepted: adapted.rows.length };
  }

  /** Stores side records (Moesif companies, users, actions) in their own table's queue. */
  async ingestRecords(table: 'companies' | 'users' | 'actions', rows: object[]): Promise<void> {
    const queue = this.deps.queues[table];
    if (!queue) throw new Error(`no queue for ${table}`);
    if (rows.length > 0) await queue.append(toJsonEachRow(rows));
  }
}

/**
 * JSONEachRow text for ClickHouse. JSON.stringify writes a lone UTF-16 surrogate as a `\udXXX` escape,
 * which ClickHouse 26 refuses (and which is no character at all): such strings are made well-formed
 * (U+FFFD), as any UTF-8 encoder would. The check is on the output, so the common case costs one regex.
 */
export function toJsonEachRow(rows: readonly object[]): Buffer {
  let text = '';
  for (const row of rows) {
    let line = JSON.stringify(row);
    if (LONE_SURROGATE_ESCAPE.test(line)) line = JSON.stringify(row, wellFormedStrings);
    text += `${line}\n`;
  }
  return Buffer.from(text, 'utf8');
}

const LONE_SURROGATE_ESCAPE = /\\ud[89a-f][0-9a-f]{2}/i;

function wellFormedStrings(_key: string, value: unknown): unknown {
  return typeof value === 'string' ? value.toWellFormed() : value;
}

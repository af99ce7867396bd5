import { DomainError, InvalidEventsError } from '../errors.ts';
import type { BatchPreparer } from './body-to-rows-threads.ts';
import { toJsonEachRow } from './json-each-row.ts';
import type { BatchShape, BodyKind } from './parse-body.ts';
import type { SourceFormat } from './request-log.ts';

/** Port: the durable queue in front of ClickHouse (the spool). Resolves once the bytes are durable. */
export interface DurableQueue {
  append(data: Buffer): Promise<void>;
}

export interface IngestMetrics {
  accepted(format: string, n: number): void;
  rejected(format: string, n: number): void;
  /** Accepted events that name no customer: stored, never billed. */
  unattributed(format: string, n: number): void;
}

export interface IngestLimits {
  maxEventBytes: number;
  maxEventsPerRequest: number;
  maxPastMs: number;
  maxFutureMs: number;
}

export interface IngestServiceDeps {
  queues: { request_logs: DurableQueue } & Partial<Record<string, DurableQueue>>;
  preparer: BatchPreparer;
  limits: IngestLimits;
  headerAllowList: ReadonlySet<string>;
  /** REQUIRE_CUSTOMER: reject an event without a customer (400 for it) instead of storing it unattributed. */
  requireCustomer?: boolean;
  metrics?: IngestMetrics;
  now?: () => number;
}

export interface IngestOutcome {
  accepted: number;
  /** Of the accepted, how many name no customer: stored, but no meter bills them. */
  unattributed: number;
}

/**
 * The collector's use case: a request body in one wire format becomes canonical rows (body-to-rows.ts,
 * possibly on a worker thread), made durable in one append. Valid events are stored even when others in
 * the batch are bad; the bad ones come back as an InvalidEventsError naming each (index, field, reason),
 * thrown only after the good ones are durable.
 */
export class IngestService {
  private readonly now: () => number;
  private readonly headerAllowList: readonly string[];

  constructor(private readonly deps: IngestServiceDeps) {
    this.now = deps.now ?? Date.now;
    this.headerAllowList = [...deps.headerAllowList];
  }

  async ingestBody(
    format: SourceFormat,
    kind: BodyKind,
    shape: BatchShape,
    body: Uint8Array,
    app: string,
  ): Promise<IngestOutcome> {
    const out = await this.deps.preparer.prepare({
      format,
      kind,
      shape,
      body,
      app,
      receivedAtMs: this.now(),
      headerAllowList: this.headerAllowList,
      limits: this.deps.limits,
      requireCustomer: this.deps.requireCustomer === true,
    });
    if (!out.ok) throw new DomainError(out.code, out.message);
    if (out.accepted > 0) {
      await this.deps.queues.request_logs.append(
        Buffer.from(out.rows.buffer, out.rows.byteOffset, out.rows.byteLength),
      );
    }
    this.deps.metrics?.accepted(format, out.accepted);
    if (out.unattributed > 0) this.deps.metrics?.unattributed(format, out.unattributed);
    if (out.rejected.length > 0) {
      this.deps.metrics?.rejected(format, out.rejected.length);
      throw new InvalidEventsError(out.accepted, out.rejected, out.tooLarge, out.unattributed);
    }
    return { accepted: out.accepted, unattributed: out.unattributed };
  }

  /** Stores side records (Moesif companies, users, actions) in their own table's queue. */
  async ingestRecords(table: 'companies' | 'users' | 'actions', rows: object[]): Promise<void> {
    const queue = this.deps.queues[table];
    if (!queue) throw new Error(`no queue for ${table}`);
    if (rows.length > 0) await queue.append(toJsonEachRow(rows));
  }
}

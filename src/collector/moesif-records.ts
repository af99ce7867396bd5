import { InvalidEventsError } from '../errors.ts';
import { adaptMoesifActions, adaptMoesifCompanies, adaptMoesifUsers } from './formats/moesif.ts';
import type { IngestLimits, IngestService } from './ingest-service.ts';
import type { BatchEntry } from './parse-body.ts';
import type { AdaptContext, EventRejection } from './request-log.ts';

export type MoesifRecordKind = 'companies' | 'users' | 'actions';

/**
 * Moesif's side records: company and user profiles (company metadata is where a Stripe customer id
 * may come from) and actions. Same contract as request logs: valid ones are stored durably, bad ones
 * named. Profiles are versioned by arrival so the latest profile wins.
 */
export class MoesifRecordService {
  constructor(
    private readonly ingest: IngestService,
    private readonly limits: IngestLimits,
    private readonly headerAllowList: ReadonlySet<string> = new Set(),
    private readonly now: () => number = Date.now,
  ) {}

  async ingestRecords(kind: MoesifRecordKind, entries: BatchEntry[], app: string): Promise<void> {
    const receivedAtMs = this.now();
    const ctx: AdaptContext = {
      app,
      receivedAtMs,
      headerAllowList: this.headerAllowList,
      maxPastMs: this.limits.maxPastMs,
      maxFutureMs: this.limits.maxFutureMs,
      maxEventBytes: this.limits.maxEventBytes,
    };
    const values = entries.map((e) => e.value);
    const receivedAt = Math.floor(receivedAtMs / 1000);
    // Microseconds, so two updates of one profile within a second still order.
    const version = Math.round((performance.timeOrigin + performance.now()) * 1000);
    let rows: object[];
    let rejected: EventRejection[];
    if (kind === 'companies') {
      const r = adaptMoesifCompanies(values, ctx);
      rows = r.values.map((c) => ({
        app,
        company_id: c.company_id,
        stripe_customer_id: c.stripe_customer_id,
        meta_keys: c.meta_keys,
        meta_values: c.meta_values,
        received_at: receivedAt,
        version,
      }));
      rejected = r.rejected;
    } else if (kind === 'users') {
      const r = adaptMoesifUsers(values, ctx);
      rows = r.values.map((u) => ({ app, ...u, received_at: receivedAt, version }));
      rejected = r.rejected;
    } else {
      const r = adaptMoesifActions(values, ctx);
      rows = r.values.map((a) => ({
        event_id: a.event_id,
        app,
        action_name: a.action_name,
        user_id: a.user_id,
        company_id: a.company_id,
        action_time: Math.floor(a.time / 1000),
        received_at: receivedAt,
        meta_keys: a.meta_keys,
        meta_values: a.meta_values,
      }));
      rejected = r.rejected;
    }
    await this.ingest.ingestRecords(kind, rows);
    if (rejected.length > 0) throw new InvalidEventsError(rows.length, rejected, false);
  }
}

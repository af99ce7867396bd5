import { z } from 'zod';
import type { ClickHouse } from './clickhouse.ts';
import { literal } from '../../sql/escape.ts';

/** A request_logs row as ClickHouse returns it in JSONEachRow (DateTimes as text). */
export const storedRow = z.object({
  event_id: z.string(),
  app: z.string(),
  received_at: z.string(),
  request_time: z.string(),
  request_time_ms: z.coerce.number(),
  customer_key: z.string(),
  company_id: z.string(),
  user_id: z.string(),
  method: z.string(),
  route: z.string(),
  host: z.string(),
  status: z.coerce.number(),
  latency_ms: z.coerce.number(),
  request_bytes: z.coerce.number(),
  response_bytes: z.coerce.number(),
  api_version: z.string(),
  source_format: z.string(),
  sample_weight: z.coerce.number(),
  meta_keys: z.array(z.string()),
  meta_values: z.array(z.string()),
});
export type StoredRequestLog = z.infer<typeof storedRow>;

export interface RecentLogsQuery {
  limit: number;
  app?: string;
  customer?: string;
}

/** Reads request logs back, one row per (app, event_id) even before ReplacingMergeTree has merged. */
export class RequestLogReader {
  constructor(private readonly ch: ClickHouse) {}

  async recent(q: RecentLogsQuery): Promise<StoredRequestLog[]> {
    const where = [
      q.app === undefined ? undefined : `app = ${literal(q.app)}`,
      q.customer === undefined ? undefined : `customer_key = ${literal(q.customer)}`,
    ].filter(Boolean);
    return this.ch.query(
      `SELECT * FROM ${this.ch.table('request_logs')}
       ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
       ORDER BY received_at DESC, request_time DESC
       LIMIT 1 BY app, event_id
       LIMIT ${literal(Math.trunc(q.limit))}`,
      storedRow,
    );
  }
}

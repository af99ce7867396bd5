import { z } from 'zod';
import { REQUEST_LOG_SCHEMA, requestLogRowSchema, type ColumnsOfType } from '../../collector/request-log.ts';
import type { ClickHouse } from './clickhouse.ts';
import { literal } from '../../sql/escape.ts';
import { CopyResolution } from './copy-resolution.ts';

/**
 * A request_logs row as ClickHouse returns it in JSONEachRow, from the schema of record, except that
 * DateTimes stay text ('YYYY-MM-DD hh:mm:ss', UTC), as the admin API shows them.
 */
export const storedRow = requestLogRowSchema.extend(
  Object.fromEntries(
    REQUEST_LOG_SCHEMA.filter((c) => c.type === "DateTime('UTC')").map((c) => [c.name, z.string()]),
  ) as Record<ColumnsOfType<"DateTime('UTC')">, z.ZodString>,
);
export type StoredRequestLog = z.infer<typeof storedRow>;

export interface RecentLogsQuery {
  limit: number;
  app?: string;
  customer?: string;
}

/**
 * Reads request logs back, one row per (app, event_id) even before ReplacingMergeTree has merged, and
 * of an event's copies with different timestamps the one that counts, as decided so far: the admin
 * view answers at once, without the catch-up a meter read runs first (see migration 7).
 */
export class RequestLogReader {
  constructor(
    private readonly ch: ClickHouse,
    private readonly copies: CopyResolution = new CopyResolution(ch),
  ) {}

  async recent(q: RecentLogsQuery): Promise<StoredRequestLog[]> {
    const { table, settings } = await this.copies.decided();
    const where = [
      q.app === undefined ? undefined : `app = ${literal(q.app)}`,
      q.customer === undefined ? undefined : `customer_key = ${literal(q.customer)}`,
    ].filter(Boolean);
    return this.ch.query(
      `SELECT * FROM ${table}
       ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
       ORDER BY received_at DESC, request_time DESC
       LIMIT 1 BY app, event_id
       LIMIT ${literal(Math.trunc(q.limit))}`,
      storedRow,
      settings,
    );
  }
}

import { z } from 'zod';
import { literal } from '../../sql/escape.ts';
import type { ClickHouse } from './clickhouse.ts';
import { CopyResolution } from './copy-resolution.ts';
import { storedRow, type StoredRequestLog } from './request-log-reader.ts';

/**
 * The request log explorer's two reads: a histogram of matching calls over time and a page of the
 * newest ones. Every value reaches SQL through literal(); the time range is always bounded (the caller
 * checks its length) and the page size is capped, so no filter can scan or return without limit.
 */
export interface ExplorerFilter {
  from: Date;
  to: Date;
  customer?: string;
  route?: string;
  method?: string;
  status?: number;
  /** 1..5: 2 is 2xx. */
  statusClass?: number;
  metaKey?: string;
  /** Only with metaKey: that key with this value. */
  metaValue?: string;
}

export interface ExplorerCursor {
  /** 'YYYY-MM-DD hh:mm:ss' UTC, as the rows carry it. */
  requestTime: string;
  eventId: string;
}

export const MAX_PAGE = 200;

export function explorerWhere(f: ExplorerFilter): string {
  const parts = [`request_time >= ${literal(f.from)}`, `request_time < ${literal(f.to)}`];
  if (f.customer !== undefined) parts.push(`customer_key = ${literal(f.customer)}`);
  if (f.route !== undefined) parts.push(`route = ${literal(f.route)}`);
  if (f.method !== undefined) parts.push(`method = ${literal(f.method.toUpperCase())}`);
  if (f.status !== undefined) parts.push(`status = ${literal(f.status)}`);
  if (f.statusClass !== undefined)
    parts.push(
      `status >= ${literal(f.statusClass * 100)} AND status < ${literal(f.statusClass * 100 + 100)}`,
    );
  if (f.metaKey !== undefined)
    parts.push(
      f.metaValue === undefined
        ? `has(meta_keys, ${literal(f.metaKey)})`
        : `arrayExists((k, v) -> k = ${literal(f.metaKey)} AND v = ${literal(f.metaValue)}, meta_keys, meta_values)`,
    );
  return parts.join(' AND ');
}

/** Buckets of `bucketSeconds`, counting each (app, event_id) once. */
export function histogramSql(table: string, f: ExplorerFilter, bucketSeconds: number): string {
  const step = literal(Math.max(1, Math.trunc(bucketSeconds)));
  return `SELECT intDiv(toUInt32(request_time), ${step}) * ${step} AS bucket, uniqExact(app, event_id) AS calls
    FROM ${table} WHERE ${explorerWhere(f)}
    GROUP BY bucket ORDER BY bucket`;
}

export function pageSql(table: string, f: ExplorerFilter, limit: number, before?: ExplorerCursor): string {
  const after = before
    ? ` AND (request_time < toDateTime(${literal(before.requestTime)}, 'UTC') OR (request_time = toDateTime(${literal(before.requestTime)}, 'UTC') AND event_id < ${literal(before.eventId)}))`
    : '';
  return `SELECT * FROM ${table} WHERE ${explorerWhere(f)}${after}
    ORDER BY request_time DESC, event_id DESC
    LIMIT 1 BY app, event_id
    LIMIT ${literal(Math.min(MAX_PAGE, Math.max(1, Math.trunc(limit))) + 1)}`;
}

const bucketRow = z.object({ bucket: z.coerce.number(), calls: z.coerce.number() });

export class RequestLogExplorer {
  constructor(
    private readonly ch: ClickHouse,
    private readonly copies: CopyResolution = new CopyResolution(ch),
  ) {}

  async histogram(f: ExplorerFilter, bucketSeconds: number): Promise<{ start: Date; calls: number }[]> {
    const { table, settings } = await this.copies.decided({ from: f.from, to: f.to });
    const rows = await this.ch.query(histogramSql(table, f, bucketSeconds), bucketRow, settings);
    return rows.map((r) => ({ start: new Date(r.bucket * 1000), calls: r.calls }));
  }

  /** Newest first; `next` continues after the last row, absent on the last page. */
  async page(
    f: ExplorerFilter,
    limit: number,
    before?: ExplorerCursor,
  ): Promise<{ rows: StoredRequestLog[]; next?: ExplorerCursor }> {
    const { table, settings } = await this.copies.decided({ from: f.from, to: f.to });
    const rows = await this.ch.query(pageSql(table, f, limit, before), storedRow, settings);
    const size = Math.min(MAX_PAGE, Math.max(1, Math.trunc(limit)));
    if (rows.length <= size) return { rows };
    const page = rows.slice(0, size);
    const last = page[page.length - 1]!;
    return { rows: page, next: { requestTime: last.request_time, eventId: last.event_id } };
  }
}

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

/**
 * A page, newest first, each (app, event_id) once. With `candidates`, the dedupe runs over only the
 * newest `candidates` matching rows (a partial sort, not a sort of the whole range): copies of an event
 * share its sort key, so they sit together and the newest distinct events are right as long as that many
 * rows hold `limit + 1` of them; page() falls back to the whole range when they do not.
 */
export function pageSql(
  table: string,
  f: ExplorerFilter,
  limit: number,
  before?: ExplorerCursor,
  candidates?: number,
): string {
  const after = before
    ? ` AND (request_time < toDateTime(${literal(before.requestTime)}, 'UTC') OR (request_time = toDateTime(${literal(before.requestTime)}, 'UTC') AND event_id < ${literal(before.eventId)}))`
    : '';
  const order = 'ORDER BY request_time DESC, event_id DESC';
  const matching = `SELECT * FROM ${table} WHERE ${explorerWhere(f)}${after}`;
  const source =
    candidates === undefined
      ? matching
      : `SELECT * FROM (${matching} ${order} LIMIT ${literal(Math.trunc(candidates))})`;
  return `${source}
    ${order}
    LIMIT 1 BY app, event_id
    LIMIT ${literal(pageSize(limit) + 1)}`;
}

const pageSize = (limit: number) => Math.min(MAX_PAGE, Math.max(1, Math.trunc(limit)));
/** How many of the newest rows the first try dedupes: room for three copies of every event. */
const CANDIDATES_PER_ROW = 4;

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
    const size = pageSize(limit);
    let rows = await this.ch.query(
      pageSql(table, f, limit, before, (size + 1) * CANDIDATES_PER_ROW),
      storedRow,
      settings,
    );
    // Fewer than a page and a row: the end of the range, or candidates full of copies; ask the range.
    if (rows.length <= size)
      rows = await this.ch.query(pageSql(table, f, limit, before), storedRow, settings);
    if (rows.length <= size) return { rows };
    const page = rows.slice(0, size);
    const last = page[page.length - 1]!;
    return { rows: page, next: { requestTime: last.request_time, eventId: last.event_id } };
  }
}

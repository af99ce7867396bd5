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

/**
 * The minutes of [from, to) where two rows may be copies with the same sorting key (COPY_KEY): minutes
 * held by more than one part of `partsTable`, or by a part that was inserted and never merged (level
 * 0: 18.16 keeps the copies a single insert holds until a merge). Copies with the same key share their
 * request time, so outside these minutes every row is one event: a merge of a ReplacingMergeTree leaves
 * one row per key in the part it writes. Reads request_time and the `_part` virtual column only.
 */
export function dedupeMinutesSql(partsTable: string, f: Pick<ExplorerFilter, 'from' | 'to'>): string {
  return `SELECT minute FROM (
        SELECT toStartOfMinute(request_time) AS minute, _part AS part FROM ${partsTable}
        WHERE request_time >= ${literal(f.from)} AND request_time < ${literal(f.to)}
        GROUP BY minute, part)
      GROUP BY minute
      HAVING count() > 1 OR min(toUInt32OrZero(splitByChar('_', part)[4])) = 0`;
}

/**
 * Buckets of `bucketSeconds`, counting each (app, event_id) once. With `partsTable` (request_logs
 * itself, where its parts can be read: not through a Distributed table), only the minutes where
 * copies can be (dedupeMinutesSql) pay for the exact dedupe; the others are counted with count().
 */
export function histogramSql(
  table: string,
  f: ExplorerFilter,
  bucketSeconds: number,
  partsTable?: string,
): string {
  const step = literal(Math.max(1, Math.trunc(bucketSeconds)));
  const bucket = `intDiv(toUInt32(request_time), ${step}) * ${step} AS bucket`;
  const where = explorerWhere(f);
  if (partsTable === undefined)
    return `SELECT ${bucket}, uniqExact(app, event_id) AS calls
    FROM ${table} WHERE ${where}
    GROUP BY bucket ORDER BY bucket`;
  const minutes = dedupeMinutesSql(partsTable, f);
  return `SELECT bucket, sum(n) AS calls FROM (
      SELECT ${bucket}, count() AS n
      FROM ${table} WHERE ${where} AND toStartOfMinute(request_time) NOT IN (${minutes})
      GROUP BY bucket
      UNION ALL
      SELECT ${bucket}, uniqExact(app, event_id) AS n
      FROM ${table} WHERE ${where} AND toStartOfMinute(request_time) IN (${minutes})
      GROUP BY bucket)
    GROUP BY bucket ORDER BY bucket`;
}

/** The sorting key of a row (COPY_KEY): what the page's second read looks rows up by. */
export interface PageKey {
  app: string;
  customer_key: string;
  /** 'YYYY-MM-DD hh:mm:ss' UTC */
  request_time: string;
  event_id: string;
}

const ORDER = 'ORDER BY request_time DESC, event_id DESC';

/**
 * The first read of a page: the sorting keys of the newest `candidates` matching rows, newest first
 * (a partial sort over four columns, not `SELECT *`). The scalar subquery finds the request time of
 * the last candidate from request_time alone, so the strings are read only where rows are newer.
 * Without `candidates`, every matching key in the range, for when the candidates were all copies.
 */
export function pageKeysSql(
  table: string,
  f: ExplorerFilter,
  before?: ExplorerCursor,
  candidates?: number,
): string {
  const after = before
    ? ` AND (request_time < toDateTime(${literal(before.requestTime)}, 'UTC') OR (request_time = toDateTime(${literal(before.requestTime)}, 'UTC') AND event_id < ${literal(before.eventId)}))`
    : '';
  const where = `${explorerWhere(f)}${after}`;
  // Not aliased request_time: on 26.x an alias would replace the column in WHERE.
  const keys = `SELECT app, customer_key, toString(request_time) AS time_text, event_id FROM ${table}`;
  if (candidates === undefined) return `${keys} WHERE ${where} ${ORDER} LIMIT 1 BY app, event_id`;
  const n = literal(Math.max(1, Math.trunc(candidates)));
  return `${keys}
    WHERE ${where} AND request_time >= (
      SELECT min(t) FROM (SELECT request_time AS t FROM ${table} WHERE ${where} ORDER BY t DESC LIMIT ${n}))
    ${ORDER} LIMIT ${n}`;
}

/** The second read: the rows of those keys (by the primary key), one per (app, event_id), newest first. */
export function pageRowsSql(table: string, keys: readonly PageKey[]): string {
  const tuples = keys.map(
    (k) =>
      `(${literal(k.app)}, ${literal(k.customer_key)}, toDateTime(${literal(k.request_time)}, 'UTC'), ${literal(k.event_id)})`,
  );
  return `SELECT * FROM ${table}
    WHERE (app, customer_key, request_time, event_id) IN (${tuples.join(', ')})
    ${ORDER}
    LIMIT 1 BY app, event_id`;
}

const pageSize = (limit: number) => Math.min(MAX_PAGE, Math.max(1, Math.trunc(limit)));
/** How many of the newest rows the first try reads keys of: room for three copies of every event. */
const CANDIDATES_PER_ROW = 4;

const bucketRow = z.object({ bucket: z.coerce.number(), calls: z.coerce.number() });
const keyRow = z
  .object({ app: z.string(), customer_key: z.string(), time_text: z.string(), event_id: z.string() })
  .transform(({ time_text, ...k }): PageKey => ({ ...k, request_time: time_text }));

/** The first key of each (app, event_id), in order, at most `n`. */
function firstOfEachEvent(keys: readonly PageKey[], n: number): PageKey[] {
  const seen = new Set<string>();
  const out: PageKey[] = [];
  for (const k of keys) {
    const id = `${k.app}\u0000${k.event_id}`;
    if (seen.has(id)) continue;
    seen.add(id);
    out.push(k);
    if (out.length === n) break;
  }
  return out;
}

export class RequestLogExplorer {
  constructor(
    private readonly ch: ClickHouse,
    private readonly copies: CopyResolution = new CopyResolution(ch),
  ) {}

  async histogram(f: ExplorerFilter, bucketSeconds: number): Promise<{ start: Date; calls: number }[]> {
    const { table, settings } = await this.copies.decided({ from: f.from, to: f.to });
    // On a cluster request_logs is a Distributed table, which has no parts of its own to look at.
    const parts = this.ch.cluster === undefined ? this.ch.table('request_logs') : undefined;
    const rows = await this.ch.query(histogramSql(table, f, bucketSeconds, parts), bucketRow, settings);
    return rows.map((r) => ({ start: new Date(r.bucket * 1000), calls: r.calls }));
  }

  /**
   * Newest first; `next` continues after the last row, absent on the last page. Two reads: the keys
   * of the newest rows (deduped here), then those rows by key. When the newest candidates hold fewer
   * than a page and a row of events but were all used (copies), the keys of the whole range are read.
   */
  async page(
    f: ExplorerFilter,
    limit: number,
    before?: ExplorerCursor,
  ): Promise<{ rows: StoredRequestLog[]; next?: ExplorerCursor }> {
    const { table, settings } = await this.copies.decided({ from: f.from, to: f.to });
    const size = pageSize(limit);
    const candidates = (size + 1) * CANDIDATES_PER_ROW;
    const newest = await this.ch.query(pageKeysSql(table, f, before, candidates), keyRow, settings);
    let keys = firstOfEachEvent(newest, size + 1);
    if (keys.length <= size && newest.length >= candidates)
      keys = firstOfEachEvent(await this.ch.query(pageKeysSql(table, f, before), keyRow, settings), size + 1);
    if (keys.length === 0) return { rows: [] };
    // The keys came from the rows that count, so request_logs itself holds their rows.
    const rows = await this.ch.query(pageRowsSql(this.ch.table('request_logs'), keys), storedRow);
    if (rows.length <= size) return { rows };
    const page = rows.slice(0, size);
    const last = page[page.length - 1]!;
    return { rows: page, next: { requestTime: last.request_time, eventId: last.event_id } };
  }
}

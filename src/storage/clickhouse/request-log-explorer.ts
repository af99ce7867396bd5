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

/** Request times from..to, both included, epoch seconds. */
export type SecondsRange = readonly [number, number];

/** An active part of request_logs: its request times (the partition key's minmax index) and merge level. */
export interface PartSpan {
  min: number;
  max: number;
  level: number;
}

/**
 * Where in [from, to) two rows may be copies with the same sorting key (COPY_KEY): the request times
 * that two parts both span, and those of a part that was inserted and never merged (level 0: 18.16
 * keeps the copies one insert holds until a merge). Copies with the same key share their request time,
 * so elsewhere each row is one event: a merge of a ReplacingMergeTree leaves one row per key in the part
 * it writes. Sorted, merged ranges.
 */
export function dedupeRanges(parts: readonly PartSpan[], from: number, to: number): SecondsRange[] {
  const spans: [number, number][] = [];
  for (const [i, p] of parts.entries()) {
    if (p.level === 0) spans.push([p.min, p.max]);
    for (const q of parts.slice(i + 1)) {
      const lo = Math.max(p.min, q.min);
      const hi = Math.min(p.max, q.max);
      if (lo <= hi) spans.push([lo, hi]);
    }
  }
  const out: [number, number][] = [];
  for (const [lo, hi] of spans
    .map(([lo, hi]): [number, number] => [Math.max(lo, from), Math.min(hi, to - 1)])
    .filter(([lo, hi]) => lo <= hi)
    .sort((x, y) => x[0] - y[0])) {
    const last = out.at(-1);
    if (last && lo <= last[1] + 1) last[1] = Math.max(last[1], hi);
    else out.push([lo, hi]);
  }
  return out;
}

/**
 * The minutes (epoch seconds / 60) that hold the ranges, or undefined past `max` of them: one set
 * lookup per row (an OR of ranges costs two comparisons per range per row; 50 of them took seconds).
 */
export function dedupeMinutes(
  ranges: readonly SecondsRange[],
  max = MAX_DEDUPE_MINUTES,
): number[] | undefined {
  const minutes = new Set<number>();
  for (const [lo, hi] of ranges)
    for (let m = Math.floor(lo / 60); m <= Math.floor(hi / 60); m++) {
      minutes.add(m);
      if (minutes.size > max) return undefined;
    }
  return [...minutes].sort((x, y) => x - y);
}

/** More minutes than this to dedupe (a month is 44,640): dedupe everything rather than send them. */
export const MAX_DEDUPE_MINUTES = 10_000;

/**
 * Buckets of `bucketSeconds`, counting each (app, event_id) once. With `dedupe` (the minutes of
 * dedupeRanges), only the request times where copies can be pay for the exact dedupe; the others are
 * counted with count(). Without it, all of them pay (where the parts cannot be seen: a Distributed
 * table; or too many minutes).
 */
export function histogramSql(
  table: string,
  f: ExplorerFilter,
  bucketSeconds: number,
  dedupe?: readonly number[],
  prewhere = false,
): string {
  const step = literal(Math.max(1, Math.trunc(bucketSeconds)));
  const bucket = `intDiv(toUInt32(request_time), ${step}) * ${step} AS bucket`;
  const where = explorerWhere(f);
  const distinct = (condition: string, prewhere = '') => `SELECT ${bucket}, uniqExact(app, event_id) AS calls
    FROM ${table} ${prewhere}WHERE ${condition}
    GROUP BY bucket`;
  if (dedupe === undefined) return `${distinct(where)} ORDER BY bucket`;
  const counted = (condition: string) => `SELECT ${bucket}, count() AS calls
    FROM ${table} WHERE ${condition}
    GROUP BY bucket`;
  if (dedupe.length === 0) return `${counted(where)} ORDER BY bucket`;
  const minutes = `(${dedupe.map((m) => literal(m)).join(', ')})`;
  const minute = 'intDiv(toUInt32(request_time), 60)';
  // PREWHERE (request_logs itself, not a view): the filter's columns are read only where copies can be.
  const deduped = prewhere
    ? distinct(where, `PREWHERE ${minute} IN ${minutes} `)
    : distinct(`${where} AND ${minute} IN ${minutes}`);
  return `SELECT bucket, sum(calls) AS calls FROM (
      ${counted(`${where} AND ${minute} NOT IN ${minutes}`)}
      UNION ALL
      ${deduped})
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
 * The first read of a page: the sorting keys of the newest matching rows, newest first, read from four
 * columns (not `SELECT *`). `since`: only rows from then on, a condition on request_time alone that
 * `prewhere` (request_logs itself; not a view) applies before any other column is read, so a window
 * at the newest end reads the strings of few granules. `candidates`: at most that many rows (a partial
 * sort); without it, every key of the window once, for when the candidates were all copies.
 */
export function pageKeysSql(
  table: string,
  f: ExplorerFilter,
  options: { before?: ExplorerCursor; since?: Date; candidates?: number; prewhere?: boolean } = {},
): string {
  const { before, since, candidates } = options;
  const after = before
    ? ` AND (request_time < toDateTime(${literal(before.requestTime)}, 'UTC') OR (request_time = toDateTime(${literal(before.requestTime)}, 'UTC') AND event_id < ${literal(before.eventId)}))`
    : '';
  const where = `${explorerWhere(f)}${after}`;
  const window = since === undefined ? '' : `request_time >= ${literal(since)}`;
  const conditions =
    window === ''
      ? `WHERE ${where}`
      : options.prewhere
        ? `PREWHERE ${window} WHERE ${where}`
        : `WHERE ${window} AND ${where}`;
  // Not aliased request_time: on 26.x an alias would replace the column in WHERE.
  const keys = `SELECT app, customer_key, toString(request_time) AS time_text, event_id FROM ${table}`;
  if (candidates === undefined) return `${keys} ${conditions} ${ORDER} LIMIT 1 BY app, event_id`;
  return `${keys} ${conditions} ${ORDER} LIMIT ${literal(Math.max(1, Math.trunc(candidates)))}`;
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
/** The page's windows before the whole range (undefined): a minute, an hour, a day. */
const PAGE_WINDOWS_SECONDS = [60, 3600, 86_400, undefined] as const;

const partRow = z.object({ min: z.coerce.number(), max: z.coerce.number(), level: z.coerce.number() });
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
    const [{ table, settings }, dedupe] = await Promise.all([
      this.copies.decided({ from: f.from, to: f.to }),
      this.dedupeMinutes(f),
    ]);
    const prewhere = table === this.ch.table('request_logs');
    const rows = await this.ch.query(
      histogramSql(table, f, bucketSeconds, dedupe, prewhere),
      bucketRow,
      settings,
    );
    return rows.map((r) => ({ start: new Date(r.bucket * 1000), calls: r.calls }));
  }

  /** The minutes where copies can be in the filter's range (dedupeRanges); undefined on a cluster. */
  private async dedupeMinutes(f: ExplorerFilter): Promise<number[] | undefined> {
    // On a cluster request_logs is a Distributed table, whose parts are on the shards.
    if (this.ch.cluster !== undefined) return undefined;
    const parts = await this.ch.query(
      `SELECT toUInt32(min_time) AS min, toUInt32(max_time) AS max, level FROM system.parts
       WHERE database = ${literal(this.ch.database)} AND table = 'request_logs' AND active
         AND max_time >= ${literal(f.from)} AND min_time < ${literal(f.to)}`,
      partRow,
    );
    // Whole seconds that hold the range: a wider range to dedupe is never wrong.
    return dedupeMinutes(
      dedupeRanges(parts, Math.floor(f.from.getTime() / 1000), Math.ceil(f.to.getTime() / 1000)),
    );
  }

  /**
   * Newest first; `next` continues after the last row, absent on the last page. Two reads: the keys
   * of the newest rows (deduped here), then those rows by key.
   */
  async page(
    f: ExplorerFilter,
    limit: number,
    before?: ExplorerCursor,
  ): Promise<{ rows: StoredRequestLog[]; next?: ExplorerCursor }> {
    const { table, settings } = await this.copies.decided({ from: f.from, to: f.to });
    const size = pageSize(limit);
    const candidates = (size + 1) * CANDIDATES_PER_ROW;
    const prewhere = table === this.ch.table('request_logs');
    const anchor = before ? Date.parse(`${before.requestTime.replace(' ', 'T')}Z`) : f.to.getTime();
    let keys: PageKey[] = [];
    // Windows at the newest end, widened until one holds a page and a row of events: every row inside
    // a window is newer than every row outside it.
    for (const seconds of PAGE_WINDOWS_SECONDS) {
      // A cursor whose time is no date (the route checks its shape only) reads the whole range.
      const since =
        seconds === undefined || !Number.isFinite(anchor) || anchor - seconds * 1000 <= f.from.getTime()
          ? undefined
          : new Date(anchor - seconds * 1000);
      const query = (limit?: number) =>
        this.ch.query(
          pageKeysSql(table, f, { before, since, candidates: limit, prewhere }),
          keyRow,
          settings,
        );
      const newest = await query(candidates);
      keys = firstOfEachEvent(newest, size + 1);
      // Candidates all used, yet fewer events: copies; every key of the window, once.
      if (keys.length <= size && newest.length >= candidates)
        keys = firstOfEachEvent(await query(), size + 1);
      if (keys.length > size || since === undefined) break;
    }
    if (keys.length === 0) return { rows: [] };
    // The keys came from the rows that count, so request_logs itself holds their rows.
    const rows = await this.ch.query(pageRowsSql(this.ch.table('request_logs'), keys), storedRow);
    if (rows.length <= size) return { rows };
    const page = rows.slice(0, size);
    const last = page[page.length - 1]!;
    return { rows: page, next: { requestTime: last.request_time, eventId: last.event_id } };
  }
}

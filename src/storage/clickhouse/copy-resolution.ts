import { z } from 'zod';
import type { ClickHouse, QuerySettings } from './clickhouse.ts';
import { literal } from '../../sql/escape.ts';
import { decisionBasis, supersededCopies, type EventCopy } from './first-received.ts';
import { COUNTED_VIEW, DEDUPE_HORIZON_SECONDS, supersededKeys } from './request-logs-table.ts';

/**
 * Decides which copy of an event counts (first-received.ts) for the events near every hour that got
 * rows, and tells readers which table to read (see migration 7).
 *
 * Work list: request_log_arrivals, filled on every insert by a materialized view. A catch-up takes the
 * hours that got rows since the last one (a margin before it, for inserts that were committing while it
 * ran). A row there can change the decision of a copy of its event within the horizon of it, and that
 * copy's deciders lie within the horizon of the copy. So: one pass over four columns within one horizon
 * of those hours finds the events with a row there and more than one copy (by 64-bit hashes: a
 * collision only costs the second pass a look at an event that turns out to have one copy); only when
 * there are such events, a second pass reads their copies within two horizons. Each decision is
 * written with what it was made from (decisionBasis); the one made from the most holds, whichever
 * process wrote it when.
 *
 * Limits: a copy that arrives after a catch-up is counted as well until the next catch-up (meter reads
 * run one first, at most once per `minIntervalMs`); a catch-up's cost is a pass over four columns of
 * the rows within the horizon of the hours that got rows (for the current hour: the last day's rows;
 * 2.1-2.2 s for 10,000,000 rows on the README's machine), plus the copies of the events found, if any.
 */
export interface CopyResolutionOptions {
  horizonSeconds?: number;
  /** Catch-ups run at most this often (readers ask for one before every read). Default 60 s. */
  minIntervalMs?: number;
  /** Arrivals up to this long before the last catch-up's end are looked at again. Default 300 s. */
  marginSeconds?: number;
  /** Milliseconds, for the interval between catch-ups. */
  now?: () => number;
}

/** What a reader of a range reads: request_logs, or the view without the copies that do not count. */
export interface CountedSource {
  /** `db.table` */
  table: string;
  /** 18.16 pushes a query's conditions into a view only when asked (26.x always does). */
  settings?: QuerySettings;
}

const HOUR = 3600;
/** Events read per query of the second pass. */
const EVENTS_PER_READ = 1000;

const copyRow = z.object({
  app: z.string(),
  event_id: z.string(),
  customer_key: z.string(),
  request_time: z.coerce.number(),
  first_received: z.coerce.number(),
});
type CopyRow = z.infer<typeof copyRow>;
type Copy = CopyRow & EventCopy;

export class CopyResolution {
  private readonly horizon: number;
  private readonly minIntervalMs: number;
  private readonly margin: number;
  private readonly now: () => number;
  private lastStart = Number.NEGATIVE_INFINITY;
  private running: Promise<void> | undefined;

  constructor(
    private readonly ch: ClickHouse,
    options: CopyResolutionOptions = {},
  ) {
    this.horizon = options.horizonSeconds ?? DEDUPE_HORIZON_SECONDS;
    this.minIntervalMs = options.minIntervalMs ?? 60_000;
    this.margin = options.marginSeconds ?? 300;
    this.now = options.now ?? Date.now;
  }

  /** Decides the copies near every hour that got rows since the last catch-up; at most once per interval. */
  catchUp(): Promise<void> {
    if (this.running) return this.running;
    if (this.now() - this.lastStart < this.minIntervalMs) return Promise.resolve();
    this.lastStart = this.now();
    this.running = this.resolveArrivals().finally(() => (this.running = undefined));
    return this.running;
  }

  /** The source for a read of request times in [from, to) (either end open when absent), after a catch-up. */
  async counted(range: { from?: Date; to?: Date } = {}): Promise<CountedSource> {
    await this.catchUp();
    return this.decided(range);
  }

  /** The same from the decisions made so far, without a catch-up (for views that must answer at once). */
  async decided(range: { from?: Date; to?: Date } = {}): Promise<CountedSource> {
    const where = [
      range.from === undefined ? undefined : `request_time >= ${literal(range.from)}`,
      range.to === undefined ? undefined : `request_time < ${literal(range.to)}`,
    ].filter(Boolean);
    const [row] = await this.ch.query(
      `SELECT count() AS n FROM (${supersededKeys(this.ch.database, where.length > 0 ? `WHERE ${where.join(' AND ')}` : '')})`,
      z.object({ n: z.coerce.number() }),
    );
    if (!row?.n) return { table: this.ch.table('request_logs') };
    return { table: this.ch.table(COUNTED_VIEW), settings: { enable_optimize_predicate_expression: 1 } };
  }

  private async resolveArrivals(): Promise<void> {
    const db = this.ch.database;
    const [mark] = await this.ch.query(
      `SELECT toUInt32(max(resolved_through)) AS through FROM ${db}.request_log_resolutions`,
      z.object({ through: z.coerce.number() }),
    );
    const arrivals = await this.ch.query(
      `SELECT toUInt32(hour) AS hour, toUInt32(max(stored_at)) AS last FROM ${db}.request_log_arrivals
       WHERE stored_at >= ${literal(new Date(Math.max(0, (mark?.through ?? 0) - this.margin) * 1000))}
       GROUP BY hour ORDER BY hour`,
      z.object({ hour: z.coerce.number(), last: z.coerce.number() }),
    );
    if (arrivals.length === 0) return;
    // Hours close enough for their passes to overlap are read in one pass.
    for (const [from, to] of mergedRanges(
      arrivals.map((a) => [a.hour, a.hour + HOUR]),
      2 * this.horizon,
    ))
      await this.resolveNear(from, to);
    const through = Math.max(...arrivals.map((a) => a.last));
    await this.ch.insertJsonEachRow(
      'request_log_resolutions',
      `${JSON.stringify({ scope: 'request_logs', resolved_through: through })}\n`,
    );
  }

  /**
   * Decides again every copy a row with a request time in [from, to) (epoch seconds) may have changed:
   * the copies within the horizon of it, of the events with a row there and another copy near it.
   */
  private async resolveNear(from: number, to: number): Promise<void> {
    const table = this.ch.table('request_logs');
    const h = this.horizon;
    const events = await this.ch.query(
      `SELECT toString(k) AS k FROM (
         SELECT cityHash64(app, event_id) AS k, cityHash64(customer_key, request_time) AS copy, request_time
         FROM ${table} WHERE ${timeRange(from - h, to + h)})
       GROUP BY k HAVING min(copy) != max(copy) AND countIf(${timeRange(from, to)}) > 0`,
      z.object({ k: z.string().regex(/^\d+$/) }),
    );
    for (let i = 0; i < events.length; i += EVENTS_PER_READ) {
      const keys = events.slice(i, i + EVENTS_PER_READ).map((e) => literal(BigInt(e.k)));
      // The copies to decide lie within one horizon; the copies that decide them within two.
      const rows = await this.ch.query(
        `SELECT app, event_id, customer_key, toUInt32(request_time) AS request_time,
                toUInt32(min(received_at)) AS first_received
         FROM ${table} WHERE ${timeRange(from - 2 * h, to + 2 * h)} AND cityHash64(app, event_id) IN (${keys.join(', ')})
         GROUP BY app, event_id, customer_key, request_time`,
        copyRow,
      );
      await this.record(decisions(rows, h, from - h, to + h));
    }
  }

  private async record(list: Decision[]): Promise<void> {
    if (list.length === 0) return;
    await this.ch.insertJsonEachRow(
      'request_log_copy_decisions',
      list.map((d) => `${JSON.stringify(d)}\n`).join(''),
    );
  }
}

interface Decision {
  app: string;
  customer_key: string;
  request_time: number;
  event_id: string;
  counted: 0 | 1;
  /** Decimal text: JSONEachRow takes a UInt64 as a string on both engines. */
  basis: string;
}

/** Whether each copy with a request time in [from, to) counts, per event, from the copies read. */
function decisions(rows: readonly CopyRow[], horizon: number, from: number, to: number): Decision[] {
  const byEvent = new Map<string, Copy[]>();
  for (const r of rows) {
    const k = `${r.app}\u0000${r.event_id}`;
    const copy = {
      ...r,
      customerKey: r.customer_key,
      requestTime: r.request_time,
      firstReceived: r.first_received,
    };
    byEvent.set(k, [...(byEvent.get(k) ?? []), copy]);
  }
  const out: Decision[] = [];
  for (const copies of byEvent.values()) {
    if (copies.length < 2) continue;
    const superseded = new Set(supersededCopies(copies, horizon));
    for (const c of copies) {
      if (c.request_time < from || c.request_time >= to) continue;
      out.push({
        app: c.app,
        customer_key: c.customer_key,
        request_time: c.request_time,
        event_id: c.event_id,
        counted: superseded.has(c) ? 0 : 1,
        basis: decisionBasis(c, copies, horizon).toString(),
      });
    }
  }
  return out;
}

/** `request_time` in [from, to), epoch seconds (DateTime starts at 1970). */
function timeRange(from: number, to: number): string {
  const at = (s: number) => literal(new Date(Math.max(0, s) * 1000));
  return `request_time >= ${at(from)} AND request_time < ${at(to)}`;
}

/** [from, to) ranges merged where they overlap or lie at most `slack` apart, in order. */
function mergedRanges(ranges: readonly (readonly [number, number])[], slack: number): [number, number][] {
  const sorted = [...ranges].sort((a, b) => a[0] - b[0]);
  const out: [number, number][] = [];
  for (const [from, to] of sorted) {
    const last = out.at(-1);
    if (last && from <= last[1] + slack) last[1] = Math.max(last[1], to);
    else out.push([from, to]);
  }
  return out;
}

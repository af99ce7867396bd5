import { z } from 'zod';
import type { AlertCrossing, CrossingFilter, CrossingStore } from '../../alerts/alert-engine.ts';
import { crossingKey } from '../../alerts/alert-engine.ts';
import type { ChannelName, DeliveryAttempt, DeliveryStore } from '../../alerts/alert-delivery.ts';
import { literal } from '../../sql/escape.ts';
import type { ClickHouse } from './clickhouse.ts';
import { chunkKeys, inList } from './key-lists.ts';
import { dateTime, int64, seconds } from './row-types.ts';

/**
 * The alerts outbox and delivery log over ClickHouse (migration 9). Both tables may hold a row twice
 * until they merge (a crossing recorded by two passes, a retried insert): every read groups by the key,
 * so a reader never sees a copy.
 */

const crossingRow = z.object({
  crossing_id: z.string(),
  meter: z.string(),
  customer: z.string(),
  threshold: z.string(),
  period_start: dateTime,
  threshold_value: int64,
  label: z.string(),
  quantity: int64,
  observed_at_ms: int64,
  recorded_at_ms: int64,
});

const attemptRow = z.object({
  crossing_id: z.string(),
  channel: z.enum(['webhook', 'email']),
  attempt: z.coerce.number().int(),
  outcome: z.enum(['delivered', 'failed']),
  status_code: z.coerce.number().int(),
  error: z.string(),
  attempted_at_ms: int64,
  next_attempt_at_ms: int64,
});

const toCrossing = (r: z.infer<typeof crossingRow>): AlertCrossing => ({
  id: r.crossing_id,
  meter: r.meter,
  customer: r.customer,
  threshold: r.threshold,
  periodStart: r.period_start,
  thresholdValue: r.threshold_value,
  label: r.label,
  quantity: r.quantity,
  observedAt: new Date(Number(r.observed_at_ms)),
  recordedAt: new Date(Number(r.recorded_at_ms)),
});

const toAttempt = (r: z.infer<typeof attemptRow>): DeliveryAttempt => ({
  crossingId: r.crossing_id,
  channel: r.channel as ChannelName,
  attempt: r.attempt,
  outcome: r.outcome,
  statusCode: r.status_code,
  error: r.error,
  attemptedAt: new Date(Number(r.attempted_at_ms)),
  nextAttemptAt: r.next_attempt_at_ms === 0n ? undefined : new Date(Number(r.next_attempt_at_ms)),
});

/**
 * The first recorded copy of each crossing (copies are equal but for when they were recorded), from
 * `inner`, a subquery of alert_crossings: its columns renamed with an x_ prefix, as a result column named
 * like a source column would be read by the other aggregates (ClickHouse resolves aliases first).
 */
const crossingsOf = (table: string, where: string) => `SELECT x_id AS crossing_id, any(x_meter) AS meter,
  any(x_customer) AS customer, any(x_threshold) AS threshold, any(x_period) AS period_start,
  toString(argMin(x_value, x_at)) AS threshold_value, argMin(x_label, x_at) AS label,
  toString(argMin(x_quantity, x_at)) AS quantity, toString(argMin(x_observed, x_at)) AS observed_at_ms,
  toString(min(x_at)) AS recorded_at_ms
  FROM (SELECT crossing_id AS x_id, meter AS x_meter, customer AS x_customer, threshold AS x_threshold,
    period_start AS x_period, threshold_value AS x_value, label AS x_label, quantity AS x_quantity,
    observed_at_ms AS x_observed, recorded_at_ms AS x_at FROM ${table} WHERE ${where})
  GROUP BY x_id`;

/** One row per attempt; a delivered copy wins over a failed one (they cannot both exist but for a bug). */
const attemptsOf = (table: string, where: string) => `SELECT x_id AS crossing_id, x_channel AS channel,
  x_attempt AS attempt, argMax(x_outcome, x_ok) AS outcome, argMax(x_status, x_ok) AS status_code,
  argMax(x_error, x_ok) AS error, toString(min(x_at)) AS attempted_at_ms,
  toString(max(x_next)) AS next_attempt_at_ms
  FROM (SELECT crossing_id AS x_id, channel AS x_channel, attempt AS x_attempt, outcome AS x_outcome,
    outcome = 'delivered' AS x_ok, status_code AS x_status, error AS x_error, attempted_at_ms AS x_at,
    next_attempt_at_ms AS x_next FROM ${table} WHERE ${where})
  GROUP BY x_id, x_channel, x_attempt`;

type AlertTable = 'alert_crossings' | 'alert_deliveries';

async function insertRows(ch: ClickHouse, table: AlertTable, rows: readonly object[]): Promise<void> {
  if (rows.length === 0) return;
  await ch.insertJsonEachRow(table, Buffer.from(rows.map((r) => JSON.stringify(r)).join('\n') + '\n'));
}

export class ClickHouseCrossingStore implements CrossingStore {
  constructor(private readonly ch: ClickHouse) {}

  private table(name: AlertTable): string {
    return `${this.ch.database}.${name}`;
  }

  async recorded(meter: string, periodStart: Date, customers: readonly string[]): Promise<Set<string>> {
    const out = new Set<string>();
    for (const chunk of chunkKeys(customers)) {
      const rows = await this.ch.query(
        `SELECT customer, threshold FROM ${this.table('alert_crossings')}
         WHERE meter = ${literal(meter)} AND period_start = ${literal(periodStart)} AND customer IN ${inList(chunk)}
         GROUP BY customer, threshold`,
        z.object({ customer: z.string(), threshold: z.string() }),
      );
      for (const r of rows) out.add(crossingKey(r.customer, r.threshold));
    }
    return out;
  }

  async record(crossings: readonly AlertCrossing[]): Promise<void> {
    await insertRows(
      this.ch,
      'alert_crossings',
      crossings.map((c) => ({
        crossing_id: c.id,
        meter: c.meter,
        customer: c.customer,
        threshold: c.threshold,
        period_start: seconds(c.periodStart),
        threshold_value: c.thresholdValue.toString(),
        label: c.label,
        quantity: c.quantity.toString(),
        observed_at_ms: c.observedAt.getTime(),
        recorded_at_ms: c.recordedAt.getTime(),
      })),
    );
  }

  async list(filter: CrossingFilter): Promise<AlertCrossing[]> {
    const where = ['1'];
    if (filter.meter !== undefined) where.push(`meter = ${literal(filter.meter)}`);
    if (filter.customer !== undefined) where.push(`customer = ${literal(filter.customer)}`);
    if (filter.periodStart !== undefined) where.push(`period_start = ${literal(filter.periodStart)}`);
    const rows = await this.ch.query(
      `${crossingsOf(this.table('alert_crossings'), where.join(' AND '))}
       ORDER BY recorded_at_ms DESC, crossing_id LIMIT ${literal(filter.limit)}`,
      crossingRow,
    );
    return rows.map(toCrossing);
  }

  async recordedSince(since: Date): Promise<AlertCrossing[]> {
    const rows = await this.ch.query(
      `${crossingsOf(this.table('alert_crossings'), `recorded_at_ms >= ${literal(since.getTime())}`)}
       ORDER BY recorded_at_ms, crossing_id`,
      crossingRow,
    );
    return rows.map(toCrossing);
  }
}

export class ClickHouseDeliveryStore implements DeliveryStore {
  constructor(private readonly ch: ClickHouse) {}

  async record(a: DeliveryAttempt): Promise<void> {
    await insertRows(this.ch, 'alert_deliveries', [
      {
        crossing_id: a.crossingId,
        channel: a.channel,
        attempt: a.attempt,
        outcome: a.outcome,
        status_code: a.statusCode,
        error: a.error,
        attempted_at_ms: a.attemptedAt.getTime(),
        next_attempt_at_ms: a.nextAttemptAt?.getTime() ?? 0,
      },
    ]);
  }

  async attemptsSince(since: Date): Promise<DeliveryAttempt[]> {
    return this.attempts(`attempted_at_ms >= ${literal(since.getTime())}`);
  }

  async attemptsOf(crossingIds: readonly string[]): Promise<DeliveryAttempt[]> {
    const out: DeliveryAttempt[] = [];
    for (const chunk of chunkKeys(crossingIds))
      out.push(...(await this.attempts(`crossing_id IN ${inList(chunk)}`)));
    return out;
  }

  private async attempts(condition: string): Promise<DeliveryAttempt[]> {
    const rows = await this.ch.query(
      `${attemptsOf(`${this.ch.database}.alert_deliveries`, condition)} ORDER BY crossing_id, channel, attempt`,
      attemptRow,
    );
    return rows.map(toAttempt);
  }
}

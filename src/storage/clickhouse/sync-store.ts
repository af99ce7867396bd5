import { z } from 'zod';
import {
  CANCEL_COUNTED_STATES,
  SEND_COUNTED_STATES,
  type Discrepancy,
  type DiscrepancyFilter,
  type DiscrepancyKind,
  type LedgerOp,
  type OpKind,
  type OpState,
  type SyncCandidate,
  type SyncStore,
  type UsageForSync,
} from '../../billing/stripe/sync-ledger.ts';
import type { ClickHouse } from './clickhouse.ts';
import { literal } from '../../sql/escape.ts';
import { chunkKeys, inList } from './key-lists.ts';
import { dateTime, int64, seconds } from './row-types.ts';

/** Ledger inserts in flight at once (see schedule). */
const MAX_CONCURRENT_INSERTS = 3;

const opRow = z.object({
  op_id: z.string(),
  a_meter: z.string(),
  a_kind: z.enum(['send', 'cancel']),
  a_version: z.string(),
  a_customer_key: z.string(),
  a_stripe_customer_id: z.string(),
  a_event_name: z.string(),
  a_hour: dateTime,
  a_revision: z.coerce.number().int(),
  a_value: int64,
  a_event_time: dateTime,
  a_target_op_id: z.string(),
  cur_state: z.string(),
  cur_detail: z.string(),
  a_intent_at: dateTime,
  cur_recorded_at: dateTime,
  cur_seq: int64,
});

const candidateRow = z.object({
  c_version: z.string(),
  c_customer: z.string(),
  c_latest: z.coerce.number().int(),
  target_text: int64,
});

/** States in which an operation of this kind took effect (tookEffect in sync-ledger.ts, as SQL). */
const counted = (states: readonly string[], dryRun: boolean) =>
  inList(dryRun ? [...states, 'dry_run'] : states);

/**
 * The keys of a meter in [from, to) that need the sync: latest usage (meter_usage), what counts as sent
 * (sync_ledger: live sends summed, or the last live send for non-additive meters), pending intents and
 * open discrepancies, brought together by UNION ALL + GROUP BY (18.16 has no FULL JOIN worth trusting).
 * The key is the hour (additive) or the month (non-additive). Aliases never repeat a column name:
 * 18.16 resolves such an alias inside aggregates. Exported for a table-driven test of the exact SQL.
 */
export function candidatesSql(
  t: { usage: string; ledger: string; discrepancies: string },
  meter: string,
  additive: boolean,
  from: Date,
  to: Date,
  dryRun: boolean,
): string {
  const window = `meter = ${literal(meter)} AND hour >= ${literal(from)} AND hour < ${literal(to)}`;
  const key = (column: string) => (additive ? `toUInt32(${column})` : `toUInt32(toYYYYMM(${column}))`);
  const sends = counted(SEND_COUNTED_STATES, dryRun);
  const cancels = counted(CANCEL_COUNTED_STATES, dryRun);
  const perOp = `SELECT op_id, any(kind) AS o_kind, any(version) AS o_version, any(customer_key) AS o_customer, any(hour) AS o_hour,
           any(value) AS o_value, any(revision) AS o_revision, any(target_op_id) AS o_target, argMax(state, seq) AS o_state
    FROM ${t.ledger} WHERE ${window} GROUP BY op_id`;
  const sent = additive
    ? 'toInt64(sumIf(o_value, o_live))'
    : 'toInt64(argMaxIf(o_value, o_revision, o_live))';
  return `SELECT c_version, c_customer, toUInt32(max(c_hour)) AS c_latest, toString(argMax(c_usage, c_usage_at)) AS target_text
FROM (
  SELECT version AS c_version, customer AS c_customer, ${key('hour')} AS c_key, hour AS c_hour,
         argMax(${additive ? 'value' : 'period_value'}, revision) AS c_usage, toUInt32(hour) AS c_usage_at,
         toInt64(0) AS c_sent, toUInt64(0) AS c_pending, toUInt64(0) AS c_open
  FROM ${t.usage} WHERE ${window} GROUP BY version, customer, hour
  UNION ALL
  SELECT o_version AS c_version, o_customer AS c_customer, ${key('o_hour')} AS c_key, max(o_hour) AS c_hour,
         toInt64(0) AS c_usage, toUInt32(0) AS c_usage_at, ${sent} AS c_sent,
         toUInt64(countIf(o_state = 'intent')) AS c_pending, toUInt64(0) AS c_open
  FROM (
    SELECT *, o_kind = 'send' AND o_state IN ${sends}
              AND op_id NOT IN (SELECT o_target FROM (${perOp}) WHERE o_kind = 'cancel' AND o_state IN ${cancels}) AS o_live
    FROM (${perOp})
  )
  GROUP BY o_version, o_customer, c_key
  UNION ALL
  SELECT version AS c_version, customer_key AS c_customer, ${key('hour')} AS c_key, hour AS c_hour,
         toInt64(0) AS c_usage, toUInt32(0) AS c_usage_at, toInt64(0) AS c_sent, toUInt64(0) AS c_pending, toUInt64(1) AS c_open
  FROM (
    SELECT version, customer_key, hour, kind, argMax(resolved, revision) AS d_resolved
    FROM ${t.discrepancies} WHERE ${window} GROUP BY version, customer_key, hour, kind
  ) WHERE d_resolved = 0
)
GROUP BY c_version, c_customer, c_key
HAVING argMax(c_usage, c_usage_at) != sum(c_sent) OR sum(c_pending) > 0 OR sum(c_open) > 0`;
}

const discrepancyRow = z.object({
  meter: z.string(),
  version: z.string(),
  customer_key: z.string(),
  hour: dateTime,
  kind: z.string(),
  cur_expected: int64,
  cur_sent: int64,
  cur_detail: z.string(),
  cur_resolved: z.coerce.number(),
  cur_recorded_at: dateTime,
});

/**
 * The sync ledger and discrepancies in ClickHouse. `record` is group-committed: the rows of every
 * caller waiting at the same time go in one INSERT (one at a time), and each caller resumes only once
 * ClickHouse acknowledged the insert holding its rows, so an intent is durable before its call while
 * hundreds of concurrent calls cost a handful of inserts.
 */
export class ClickHouseSyncStore implements SyncStore {
  private queued: { rows: object[]; resolve: () => void; reject: (e: unknown) => void }[] = [];
  private inserting = 0;
  private scheduled = false;
  private revision = 0n;

  constructor(private readonly ch: ClickHouse) {}

  async usage(meter: string, from: Date, to: Date): Promise<UsageForSync[]> {
    const rows = await this.ch.query(
      `SELECT version, customer, hour, toString(argMax(value, revision)) AS v, toString(argMax(period_value, revision)) AS pv
       FROM ${this.ch.table('meter_usage')}
       WHERE meter = ${literal(meter)} AND hour >= ${literal(from)} AND hour < ${literal(to)}
       GROUP BY version, customer, hour`,
      z.object({ version: z.string(), customer: z.string(), hour: dateTime, v: int64, pv: int64 }),
    );
    return rows.map((r) => ({
      version: r.version,
      customer: r.customer,
      hour: r.hour,
      value: r.v,
      periodValue: r.pv,
    }));
  }

  async candidates(
    meter: string,
    additive: boolean,
    from: Date,
    to: Date,
    dryRun: boolean,
  ): Promise<SyncCandidate[]> {
    const sql = candidatesSql(
      {
        usage: this.ch.table('meter_usage'),
        ledger: this.ch.table('sync_ledger'),
        discrepancies: this.ch.table('sync_discrepancies'),
      },
      meter,
      additive,
      from,
      to,
      dryRun,
    );
    return (await this.ch.query(sql, candidateRow)).map((r) => {
      const hour = new Date(r.c_latest * 1000);
      const period = new Date(Date.UTC(hour.getUTCFullYear(), hour.getUTCMonth(), 1));
      return {
        version: r.c_version,
        customer: r.c_customer,
        hour,
        ...(additive ? {} : { period }),
        target: r.target_text,
      };
    });
  }

  async ops(meter: string, from: Date, to: Date, customers?: readonly string[]): Promise<LedgerOp[]> {
    const where = `meter = ${literal(meter)} AND hour >= ${literal(from)} AND hour < ${literal(to)}`;
    if (customers === undefined) return this.opsWhere(where, '');
    const out: LedgerOp[] = [];
    for (const chunk of chunkKeys([...new Set(customers)]))
      out.push(...(await this.opsWhere(`${where} AND customer_key IN ${inList(chunk)}`, '')));
    return out;
  }

  /**
   * One customer's operations, newest intent first, at most `limit` (the customer page's sync ledger).
   * The ledger is ordered by (meter, customer_key, …): a meter narrows the read to one range of it.
   */
  async customerOps(customer: string, limit: number, meter?: string): Promise<LedgerOp[]> {
    const where = [
      `customer_key = ${literal(customer)}`,
      ...(meter === undefined ? [] : [`meter = ${literal(meter)}`]),
    ].join(' AND ');
    return this.opsWhere(
      where,
      `ORDER BY a_intent_at DESC, a_hour DESC, op_id DESC LIMIT ${Math.max(1, Math.floor(limit))}`,
    );
  }

  private async opsWhere(where: string, tail: string): Promise<LedgerOp[]> {
    // Every column but the state ones is the same on all rows of an op; any() reads it.
    const rows = await this.ch.query(
      `SELECT op_id, any(meter) AS a_meter, any(kind) AS a_kind, any(version) AS a_version, any(customer_key) AS a_customer_key,
              any(stripe_customer_id) AS a_stripe_customer_id, any(event_name) AS a_event_name, any(hour) AS a_hour,
              any(revision) AS a_revision, toString(any(value)) AS a_value, any(event_time) AS a_event_time,
              any(target_op_id) AS a_target_op_id, argMax(state, seq) AS cur_state, argMax(detail, seq) AS cur_detail,
              min(intent_at) AS a_intent_at, argMax(recorded_at, seq) AS cur_recorded_at, toString(max(seq)) AS cur_seq
       FROM ${this.ch.table('sync_ledger')}
       WHERE ${where}
       GROUP BY op_id ${tail}`,
      opRow,
    );
    return rows.map((r) => ({
      opId: r.op_id,
      kind: r.a_kind satisfies OpKind,
      meter: r.a_meter,
      version: r.a_version,
      customerKey: r.a_customer_key,
      stripeCustomerId: r.a_stripe_customer_id,
      eventName: r.a_event_name,
      hour: r.a_hour,
      revision: r.a_revision,
      value: r.a_value,
      eventTime: r.a_event_time,
      targetOpId: r.a_target_op_id,
      state: r.cur_state as OpState,
      detail: r.cur_detail,
      intentAt: r.a_intent_at,
      recordedAt: r.cur_recorded_at,
      seq: r.cur_seq,
    }));
  }

  record(ops: readonly LedgerOp[]): Promise<void> {
    const rows = ops.map((op) => ({
      op_id: op.opId,
      kind: op.kind,
      meter: op.meter,
      version: op.version,
      customer_key: op.customerKey,
      stripe_customer_id: op.stripeCustomerId,
      event_name: op.eventName,
      hour: seconds(op.hour),
      revision: op.revision,
      value: op.value.toString(),
      event_time: seconds(op.eventTime),
      target_op_id: op.targetOpId,
      state: op.state,
      detail: op.detail,
      intent_at: seconds(op.intentAt),
      recorded_at: seconds(op.recordedAt),
      seq: op.seq.toString(),
      fencing_token: (op.fencingToken ?? 0n).toString(),
    }));
    return new Promise<void>((resolve, reject) => {
      this.queued.push({ rows, resolve, reject });
      this.schedule();
    });
  }

  /**
   * Up to MAX_CONCURRENT_INSERTS inserts at once: one slow insert (a merge, a busy server) must not hold
   * up every call waiting for its intent; the rows that arrive meanwhile go in the next one.
   */
  private schedule(): void {
    if (this.scheduled || this.queued.length === 0 || this.inserting >= MAX_CONCURRENT_INSERTS) return;
    this.scheduled = true;
    // Let callers that are about to record in this same tick join the insert.
    setImmediate(() => {
      this.scheduled = false;
      const batch = this.queued;
      this.queued = [];
      if (batch.length === 0) return;
      this.inserting += 1;
      this.insert(
        'sync_ledger',
        batch.flatMap((b) => b.rows),
      )
        .then(
          () => batch.forEach((b) => b.resolve()),
          (err: unknown) => batch.forEach((b) => b.reject(err)),
        )
        .finally(() => {
          this.inserting -= 1;
          this.schedule();
        });
      this.schedule();
    });
  }

  async openDiscrepancies(meter: string): Promise<Discrepancy[]> {
    return (await this.readDiscrepancies(`meter = ${literal(meter)}`, 'cur_resolved = 0', 1_000_000)).filter(
      (d) => !d.resolved,
    );
  }

  async recordDiscrepancies(discrepancies: readonly Discrepancy[]): Promise<void> {
    await this.insert(
      'sync_discrepancies',
      discrepancies.map((d) => ({
        meter: d.meter,
        version: d.version,
        customer_key: d.customerKey,
        hour: seconds(d.hour),
        kind: d.kind,
        expected: d.expected.toString(),
        sent: d.sent.toString(),
        detail: d.detail,
        resolved: d.resolved ? 1 : 0,
        recorded_at: seconds(d.recordedAt),
        revision: this.nextRevision().toString(),
      })),
    );
  }

  async discrepancies(filter: DiscrepancyFilter): Promise<Discrepancy[]> {
    const where = [
      filter.meter === undefined ? '1' : `meter = ${literal(filter.meter)}`,
      filter.customer === undefined ? '1' : `customer_key = ${literal(filter.customer)}`,
    ].join(' AND ');
    const having = filter.resolved === undefined ? '1' : `cur_resolved = ${filter.resolved ? 1 : 0}`;
    return this.readDiscrepancies(where, having, filter.limit);
  }

  private async readDiscrepancies(where: string, having: string, limit: number): Promise<Discrepancy[]> {
    const rows = await this.ch.query(
      `SELECT meter, version, customer_key, hour, kind,
              toString(argMax(expected, revision)) AS cur_expected, toString(argMax(sent, revision)) AS cur_sent,
              argMax(detail, revision) AS cur_detail, argMax(resolved, revision) AS cur_resolved,
              argMax(recorded_at, revision) AS cur_recorded_at
       FROM ${this.ch.table('sync_discrepancies')}
       WHERE ${where}
       GROUP BY meter, version, customer_key, hour, kind
       HAVING ${having}
       ORDER BY hour, meter, customer_key
       LIMIT ${Math.max(1, Math.floor(limit))}`,
      discrepancyRow,
    );
    return rows.map((r) => ({
      meter: r.meter,
      version: r.version,
      customerKey: r.customer_key,
      hour: r.hour,
      kind: r.kind as DiscrepancyKind,
      expected: r.cur_expected,
      sent: r.cur_sent,
      detail: r.cur_detail,
      resolved: r.cur_resolved === 1,
      recordedAt: r.cur_recorded_at,
    }));
  }

  /** Later writes win over earlier ones, also across restarts (microseconds of the wall clock). */
  private nextRevision(): bigint {
    const candidate = BigInt(Date.now()) * 1000n;
    this.revision = candidate > this.revision ? candidate : this.revision + 1n;
    return this.revision;
  }

  private async insert(table: string, rows: object[]): Promise<void> {
    if (rows.length === 0) return;
    await this.ch.insertJsonEachRow(table, Buffer.from(rows.map((r) => JSON.stringify(r)).join('\n') + '\n'));
  }
}

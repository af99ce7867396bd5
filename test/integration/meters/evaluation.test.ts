import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { EvaluationService } from '../../../src/meters/evaluation.ts';
import { HOUR_MS } from '../../../src/time/hours.ts';
import { meterSchema, type MeterDefinition } from '../../../src/meters/meter-schema.ts';
import type { ClickHouse } from '../../../src/storage/clickhouse/clickhouse.ts';
import { ClickHouseMeterStore } from '../../../src/storage/clickhouse/meter-store.ts';
import { ENGINES, openMigratedDatabase } from '../../support/clickhouse.ts';
import { insertRequestLogs, type LogRow } from '../../support/request-logs.ts';

const T0 = Date.parse('2026-11-10T00:00:00Z');
const at = (hours: number, extraMs = 0) => new Date(T0 + hours * HOUR_MS + extraMs);

const creditScore = meterSchema.parse({
  name: 'retrieve-credit-score',
  description: 'successful credit-score lookups',
  filter: { routes: ['/RetrieveCreditScore'], status: 200 },
  aggregation: { type: 'count' },
  customer: 'company_id',
  unit: 'calls',
  effective_from: '2026-11-01T00:00:00Z',
});
const activeUsers = meterSchema.parse({
  name: 'active-users',
  description: 'users with any call',
  filter: {},
  aggregation: { type: 'unique_count', value: 'user_id' },
  unit: 'users',
  effective_from: '2026-11-01T00:00:00Z',
});

describe.each(ENGINES)('meter evaluation on %s ClickHouse', (engine) => {
  let ch: ClickHouse;
  let store: ClickHouseMeterStore;
  let clock: Date;
  let service: EvaluationService;

  const insertLogs = (rows: LogRow[]) => insertRequestLogs(ch, rows);

  const usage = async (meter: string) =>
    (
      await ch.query(
        `SELECT customer, toUInt32(hour) AS hour, toString(argMax(value, revision)) AS value, toString(argMax(period_value, revision)) AS period
         FROM ${ch.table('meter_usage')} WHERE meter = '${meter}' GROUP BY customer, hour ORDER BY hour, customer`,
        z.object({ customer: z.string(), hour: z.coerce.number(), value: z.string(), period: z.string() }),
      )
    ).map((r) => [r.customer, (r.hour * 1000 - T0) / HOUR_MS, Number(r.value), Number(r.period)]);

  beforeEach(async () => {
    ch = await openMigratedDatabase(engine, 'eval');
    store = new ClickHouseMeterStore(ch);
    clock = at(0);
    service = new EvaluationService(store, store, { latenessHours: 48, now: () => clock });
  });
  afterEach(async () => {
    await ch.command(`DROP DATABASE IF EXISTS ${ch.database}`);
    await ch.close();
  });

  it('counts only 200 responses on /RetrieveCreditScore, once per event, in the right hour either side of a boundary', async () => {
    await insertLogs([
      { id: 'a', at: at(1, 0) },
      { id: 'b', at: at(1, HOUR_MS - 1) }, // 01:59:59.999 → hour 1
      { id: 'c', at: at(2) }, // 02:00:00.000 → hour 2
      { id: 'c', at: at(2) }, // a retried event: same id
      { id: 'd', at: at(1, 10), status: 500 },
      { id: 'e', at: at(1, 20), route: '/RetrieveCreditReport' },
      { id: 'f', at: at(2, 5), company: 'co_b' },
    ]);
    await insertLogs([{ id: 'c', at: at(2) }]); // the same event in another part, before any merge
    clock = at(3, 5 * 60_000);
    const report = await service.run([creditScore]);
    expect(report.closedThrough).toEqual(at(3));
    expect(await usage('retrieve-credit-score')).toEqual([
      ['co_a', 1, 2, 2],
      ['co_a', 2, 1, 3],
      ['co_b', 2, 1, 1],
    ]);
    // Running it again changes nothing.
    await service.run([creditScore]);
    expect(await usage('retrieve-credit-score')).toEqual([
      ['co_a', 1, 2, 2],
      ['co_a', 2, 1, 3],
      ['co_b', 2, 1, 1],
    ]);
  });

  it('bills an event 3 hours late when its hour is re-evaluated, and reports one later than the window', async () => {
    await insertLogs([{ id: 'a', at: at(1) }]);
    clock = at(2, 60_000);
    await service.run([creditScore]);
    expect(await usage('retrieve-credit-score')).toEqual([['co_a', 1, 1, 1]]);

    clock = at(4, 60_000);
    await insertLogs([
      { id: 'late', at: at(1, 30), received: at(4) }, // 3 hours late: inside the 48 h window
      { id: 'too-late', at: at(-60), received: at(4) }, // 60 hours late: outside
    ]);
    const report = await service.run([creditScore]);
    expect(await usage('retrieve-credit-score')).toEqual([['co_a', 1, 2, 2]]);
    expect(report.lateOutsideWindow).toBe(1);
  });

  it('gives the monthly unique count, not the sum of the hourly ones', async () => {
    await insertLogs([
      { id: '1', at: at(1), user: 'u1' },
      { id: '2', at: at(1, 1), user: 'u2' },
      { id: '3', at: at(2), user: 'u1' },
      { id: '4', at: at(2, 1), user: 'u3' },
    ]);
    clock = at(3, 60_000);
    await service.run([activeUsers]);
    // hourly: 2 users, then 2 users; period to date: 2, then 3 (u1, u2, u3), not 4.
    expect(await usage('active-users')).toEqual([
      ['co_a', 1, 2, 2],
      ['co_a', 2, 2, 3],
    ]);
  });

  it('has no rows for a customer with no usage, and a zero when an hour loses its usage', async () => {
    await insertLogs([{ id: 'x', at: at(1), company: 'co_gone' }]);
    clock = at(2, 60_000);
    await service.run([creditScore]);
    expect(await usage('retrieve-credit-score')).toEqual([['co_gone', 1, 1, 1]]);
    await ch.command(`ALTER TABLE ${ch.table('request_logs')} DELETE WHERE event_id = 'x'`);
    await waitForMutations(ch);
    clock = at(3, 60_000);
    await service.run([creditScore]);
    expect(await usage('retrieve-credit-score')).toEqual([['co_gone', 1, 0, 0]]);
    expect((await usage('retrieve-credit-score')).some(([c]) => c === 'co_nobody')).toBe(false);
  });

  it('starts a changed definition as a new version at the next hour and never rewrites the old hours', async () => {
    await insertLogs([
      { id: '1', at: at(1) },
      { id: '2', at: at(1, 1), status: 201 },
      { id: '3', at: at(3, 1) },
      { id: '4', at: at(3, 2), status: 201 },
    ]);
    clock = at(2, 30 * 60_000);
    await service.run([creditScore]);
    // Mid-month, at 02:30, the meter changes to count every 2xx (the service loads it at boot and
    // registers it), from the next whole hour (03:00).
    const twoXx = meterSchema.parse({
      ...creditScore,
      filter: { routes: ['/RetrieveCreditScore'], status: '2xx' },
      effective_from: undefined,
    });
    await service.registerVersions([twoXx]);
    clock = at(4, 60_000);
    await service.run([twoXx]);
    const versions = await store.versions();
    expect(versions.map((v) => [v.meter, (v.effectiveFrom.getTime() - T0) / HOUR_MS]).sort()).toEqual([
      ['retrieve-credit-score', -216],
      ['retrieve-credit-score', 3],
    ]);
    const rows = await ch.query(
      `SELECT version, toUInt32(hour) AS hour, toString(argMax(value, revision)) AS value FROM ${ch.table('meter_usage')}
       GROUP BY version, hour ORDER BY hour`,
      z.object({ version: z.string(), hour: z.coerce.number(), value: z.string() }),
    );
    expect(rows.map((r) => [(r.hour * 1000 - T0) / HOUR_MS, r.value])).toEqual([
      [1, '1'], // old version: the 201 is not counted, and stays so
      [3, '2'], // new version from 03:00: 200 and 201
    ]);
    expect(new Set(rows.map((r) => r.version)).size).toBe(2);
  });

  it('evaluates a count and a unique count of one run together, the running sum from the latest stored hours before the range', async () => {
    const short = new EvaluationService(store, store, { latenessHours: 1, now: () => clock });
    await insertLogs([
      { id: '1', at: at(1), user: 'u1' },
      { id: '2', at: at(1, 1), user: 'u2', status: 500 },
      { id: '3', at: at(2), user: 'u1' },
    ]);
    clock = at(3, 60_000);
    await short.run([creditScore, activeUsers]);
    // The same hours again, at a higher revision: the totals before the next range take the latest.
    clock = at(3, 120_000);
    await short.run([creditScore, activeUsers]);
    await insertLogs([
      // Too late for its hour (outside the 1 h window of the next run): not billed, but seen first there.
      { id: '4', at: at(1, 2), user: 'u3', received: at(4) },
      { id: '5', at: at(4), user: 'u2' },
      { id: '6', at: at(4, 1), user: 'u4' },
    ]);
    clock = at(5, 60_000);
    await short.run([creditScore, activeUsers]); // hours 3 and 4; hours 1 and 2 are stored
    expect(await usage('retrieve-credit-score')).toEqual([
      ['co_a', 1, 1, 1],
      ['co_a', 2, 1, 2],
      ['co_a', 4, 2, 4],
    ]);
    expect(await usage('active-users')).toEqual([
      ['co_a', 1, 2, 2],
      ['co_a', 2, 1, 2],
      ['co_a', 4, 2, 4], // u1, u2, u3 (first seen in hour 1), u4
    ]);
  });

  it('catches up every hour after the scheduler was off for 30 hours', async () => {
    const rows: LogRow[] = Array.from({ length: 32 }, (_, h) => ({ id: `h${h}`, at: at(h, 1000) }));
    await insertLogs(rows);
    clock = at(1, 60_000);
    await service.run([creditScore]);
    expect((await usage('retrieve-credit-score')).length).toBe(1);
    clock = at(32, 5 * 60_000); // 31 hours later
    await service.run([creditScore]);
    const hours = (await usage('retrieve-credit-score')).map(([, hour, value, period]) => [
      hour,
      value,
      period,
    ]);
    expect(hours).toEqual(Array.from({ length: 32 }, (_, h) => [h, 1, h + 1]));
  });
});

async function waitForMutations(ch: ClickHouse): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const [row] = await ch.query(
      `SELECT count() AS n FROM system.mutations WHERE database = '${ch.database}' AND is_done = 0`,
      z.object({ n: z.coerce.number() }),
    );
    if (row?.n === 0) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('mutation did not finish');
}

export type { MeterDefinition };

import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { EvaluationService } from '../../../src/meters/evaluation.ts';
import { loadMeters } from '../../../src/meters/load-meters.ts';
import { meterSchema, type MeterDefinition } from '../../../src/meters/meter-schema.ts';
import { UsageQueryService } from '../../../src/meters/usage-query.ts';
import type { ClickHouse } from '../../../src/storage/clickhouse/clickhouse.ts';
import { ClickHouseMeterStore } from '../../../src/storage/clickhouse/meter-store.ts';
import { ENGINES, openMigratedDatabase } from '../../support/clickhouse.ts';
import { insertRequestLogs, type LogRow } from '../../support/request-logs.ts';

// The billing period is the calendar month, UTC. On its edges (the first hour of a year, the end of a
// leap February) the hours go to the month they belong to, the period-to-date values start again with
// the month, and the customer's priced period is the month of the clock. Each case pins the clock of
// evaluation and usage to instants around its edge.

const METERS_DIR = fileURLToPath(new URL('../../../meters', import.meta.url));

/** The shipped worked example (priced) and monthly active users, running since `effectiveFrom`. */
async function meters(effectiveFrom: string): Promise<MeterDefinition[]> {
  const { meters: loaded, errors } = await loadMeters(METERS_DIR);
  expect(errors).toEqual([]);
  return ['retrieve-credit-score', 'monthly-active-users'].map((name) =>
    meterSchema.parse({
      ...loaded.find((m) => m.definition.name === name)!.definition,
      effective_from: effectiveFrom,
    }),
  );
}

/** `n` calls of co_a in the hour starting at `hour`, by users u1..u`users`. */
const calls = (prefix: string, hour: string, n: number, users = 1): LogRow[] =>
  Array.from({ length: n }, (_, i) => ({
    id: `${prefix}-${i}`,
    at: new Date(Date.parse(hour) + i * 1000),
    user: `u${1 + (i % users)}`,
  }));

describe.each(ENGINES)('billing periods on their edges, on %s ClickHouse', (engine) => {
  let ch: ClickHouse;
  let store: ClickHouseMeterStore;
  let clock: Date;
  let evaluation: EvaluationService;
  let usage: UsageQueryService;
  let defined: MeterDefinition[];

  beforeEach(async () => {
    ch = await openMigratedDatabase(engine, 'periods');
    store = new ClickHouseMeterStore(ch);
    evaluation = new EvaluationService(store, store, { latenessHours: 48, now: () => clock });
    usage = new UsageQueryService(store, store, () => clock);
  });
  afterEach(async () => {
    await ch.command(`DROP DATABASE IF EXISTS ${ch.database}`);
    await ch.close();
  });

  /** [hour, value, period-to-date] of a meter, latest revision of each hour. */
  const hours = async (meter: string) =>
    (
      await ch.query(
        `SELECT toUInt32(hour) AS hour, toString(argMax(value, revision)) AS value, toString(argMax(period_value, revision)) AS period
         FROM ${ch.table('meter_usage')} WHERE meter = '${meter}' GROUP BY hour ORDER BY hour`,
        z.object({ hour: z.coerce.number(), value: z.string(), period: z.string() }),
      )
    ).map((r) => [new Date(r.hour * 1000).toISOString(), r.value, r.period]);

  const period = async () => {
    const { period, meters: lines } = await usage.customerPeriod('co_a', defined);
    const credit = lines.find((m) => m.meter === 'retrieve-credit-score')!;
    const users = lines.find((m) => m.meter === 'monthly-active-users')!;
    return { period, calls: credit.quantity, cost: credit.cost?.display, users: users.quantity };
  };

  it('in the first hour of a year: December keeps its last hour, January starts at zero', async () => {
    defined = await meters('2026-12-01T00:00:00Z');
    await insertRequestLogs(ch, [
      ...calls('mid', '2026-12-15T10:00:00Z', 50, 2), // users u1, u2
      ...calls('last', '2026-12-31T23:00:00Z', 150, 3), // u1..u3
      ...calls('new', '2027-01-01T00:00:00Z', 10, 1), // u1 again, in the new month
    ]);

    clock = new Date('2027-01-01T00:30:00Z');
    const first = await evaluation.run(defined);
    expect(first.closedThrough).toEqual(new Date('2027-01-01T00:00:00Z'));
    expect(await hours('retrieve-credit-score')).toEqual([
      ['2026-12-15T10:00:00.000Z', '50', '50'],
      ['2026-12-31T23:00:00.000Z', '150', '200'],
    ]);
    expect(await hours('monthly-active-users')).toEqual([
      ['2026-12-15T10:00:00.000Z', '2', '2'],
      ['2026-12-31T23:00:00.000Z', '3', '3'],
    ]);
    // No hour of January has closed: its period is empty, December's usage is December's.
    expect(await period()).toEqual({
      period: { id: '2027-01', start: '2027-01-01T00:00:00.000Z', end: '2027-02-01T00:00:00.000Z' },
      calls: '0',
      cost: '$0.00',
      users: '0',
    });
    const december = await usage.usage(defined[0]!, {
      from: new Date('2026-12-01T00:00:00Z'),
      to: clock,
      window: 'month',
    });
    expect(december.map((p) => [p.window_start, p.value])).toEqual([['2026-12-01T00:00:00.000Z', '200']]);

    clock = new Date('2027-01-01T01:30:00Z');
    await evaluation.run(defined);
    expect((await hours('retrieve-credit-score')).at(-1)).toEqual(['2027-01-01T00:00:00.000Z', '10', '10']);
    expect((await hours('monthly-active-users')).at(-1)).toEqual(['2027-01-01T00:00:00.000Z', '1', '1']);
    expect(await period()).toMatchObject({ calls: '10', cost: '$50.00', users: '1' });
  });

  it('on a leap day: 29 February is February, and March starts at zero', async () => {
    defined = await meters('2028-02-01T00:00:00Z');
    await insertRequestLogs(ch, [
      ...calls('feb28', '2028-02-28T12:00:00Z', 100),
      ...calls('feb29', '2028-02-29T22:00:00Z', 1),
      ...calls('late', '2028-02-29T23:00:00Z', 899, 2),
      ...calls('mar', '2028-03-01T00:00:00Z', 5, 1),
    ]);

    clock = new Date('2028-02-29T23:30:00Z');
    await evaluation.run(defined);
    expect(await period()).toEqual({
      period: { id: '2028-02', start: '2028-02-01T00:00:00.000Z', end: '2028-03-01T00:00:00.000Z' },
      calls: '101',
      cost: '$503.00',
      users: '1',
    });

    clock = new Date('2028-03-01T01:30:00Z');
    await evaluation.run(defined);
    expect(await hours('retrieve-credit-score')).toEqual([
      ['2028-02-28T12:00:00.000Z', '100', '100'],
      ['2028-02-29T22:00:00.000Z', '1', '101'],
      ['2028-02-29T23:00:00.000Z', '899', '1000'],
      ['2028-03-01T00:00:00.000Z', '5', '5'],
    ]);
    expect((await hours('monthly-active-users')).map(([hour, , p]) => [hour, p])).toEqual([
      ['2028-02-28T12:00:00.000Z', '1'],
      ['2028-02-29T22:00:00.000Z', '1'],
      ['2028-02-29T23:00:00.000Z', '2'],
      ['2028-03-01T00:00:00.000Z', '1'],
    ]);
    expect(await period()).toEqual({
      period: { id: '2028-03', start: '2028-03-01T00:00:00.000Z', end: '2028-04-01T00:00:00.000Z' },
      calls: '5',
      cost: '$25.00',
      users: '1',
    });
    const february = await usage.usage(defined[0]!, {
      from: new Date('2028-02-01T00:00:00Z'),
      to: new Date('2028-03-01T00:00:00Z'),
      window: 'month',
    });
    expect(february.map((p) => [p.window_start, p.value])).toEqual([['2028-02-01T00:00:00.000Z', '1000']]);
  });
});

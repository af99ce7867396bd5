// The same event id stored twice with different timestamps: every meter and every reader counts one
// copy, the first received, in that copy's hour, whichever copy was inserted first, before and after
// ClickHouse merges (OPTIMIZE … FINAL), on both engines (migration 7, copy-resolution.ts).
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { RequestLogRow } from '../../../src/collector/request-log.ts';
import { EvaluationService } from '../../../src/meters/evaluation.ts';
import { meterSchema, type MeterDefinition, type MeterInput } from '../../../src/meters/meter-schema.ts';
import type { ClickHouse } from '../../../src/storage/clickhouse/clickhouse.ts';
import { CopyResolution } from '../../../src/storage/clickhouse/copy-resolution.ts';
import { ClickHouseMeterStore } from '../../../src/storage/clickhouse/meter-store.ts';
import { RequestLogReader } from '../../../src/storage/clickhouse/request-log-reader.ts';
import { ENGINES, openMigratedDatabase } from '../../support/clickhouse.ts';
import { requestLogRow } from '../../support/request-log-row.ts';

const DAY = '2027-03-10';
const at = (time: string): Date => new Date(`${DAY}T${time}Z`);
const sec = (time: string): number => at(time).getTime() / 1000;

const copy = (id: string, requestTime: string, receivedAt: string, fields: Partial<RequestLogRow> = {}) =>
  requestLogRow({
    event_id: id,
    received_at: sec(receivedAt),
    request_time: sec(requestTime),
    customer_key: 'acme',
    company_id: 'acme',
    user_id: 'u1',
    method: 'POST',
    route: '/RetrieveCreditScore',
    latency_ms: 10,
    response_bytes: 100,
    ...fields,
  });

// The first received copy is in the 10:00 hour, the later one in the 11:00 hour; the later one is
// inserted first, so "last inserted" or "first stored" would pick the wrong one.
const FIRST = copy('dup', '10:50:00', '10:50:05', { latency_ms: 11, response_bytes: 100 });
const LATER = copy('dup', '11:20:00', '11:20:30', { latency_ms: 99, response_bytes: 900, user_id: 'u9' });
// Another event, plus an exact retry of it (same sorting key): still one call.
const OTHER = copy('other', '11:05:00', '11:05:01', { user_id: 'u2', latency_ms: 20, response_bytes: 50 });
const OTHER_RETRY = { ...OTHER, received_at: sec('11:05:09') };

const meter = (name: string, input: Partial<MeterInput>): MeterDefinition =>
  meterSchema.parse({ name, description: '', unit: 'calls', aggregation: { type: 'count' }, ...input });
const CALLS = meter('calls', { filter: { routes: ['/RetrieveCreditScore'] } });
const BYTES = meter('bytes', { aggregation: { type: 'sum', value: 'response_bytes' } });
const USERS = meter('users', { aggregation: { type: 'unique_count', value: 'user_id' } });
const SLOWEST = meter('slowest', { aggregation: { type: 'max', value: 'latency_ms' } });
const LAST = meter('last', { aggregation: { type: 'latest', value: 'latency_ms' } });

const FROM = at('00:00:00');
const TO = at('23:00:00');
const H10 = at('10:00:00');
const H11 = at('11:00:00');

describe.each(ENGINES)('copies of one event id with different timestamps on the %s engine', (engine) => {
  let ch: ClickHouse;
  let store: ClickHouseMeterStore;
  let reader: RequestLogReader;

  const insert = (...rows: RequestLogRow[]) =>
    ch.insertJsonEachRow('request_logs', rows.map((r) => `${JSON.stringify(r)}\n`).join(''));
  const hourly = async (m: MeterDefinition, from = FROM, to = TO) =>
    (await store.hourly(m, from, to)).map((v) => [v.customer, v.hour.toISOString(), Number(v.value)]);

  beforeEach(async () => {
    ch = await openMigratedDatabase(engine, 'first_received');
    // Every read catches up with what arrived (no interval between catch-ups in this test).
    const copies = new CopyResolution(ch, { minIntervalMs: 0 });
    store = new ClickHouseMeterStore(ch, copies);
    reader = new RequestLogReader(ch, copies);
    await insert(LATER);
    await insert(FIRST, OTHER);
    await insert(OTHER_RETRY);
  });

  afterEach(async () => {
    await ch.command(`DROP DATABASE IF EXISTS ${ch.database}`);
    await ch.close();
  });

  async function expectFirstCopyCounted() {
    expect(await hourly(CALLS)).toEqual([
      ['acme', H10.toISOString(), 1],
      ['acme', H11.toISOString(), 1],
    ]);
    // A range holding the later copy but not the first: the later copy still does not count.
    expect(await hourly(CALLS, H11, at('12:00:00'))).toEqual([['acme', H11.toISOString(), 1]]);
    const [calls, bytes] = await store.hourlyCombined([CALLS, BYTES], FROM, TO);
    expect(calls!.map((v) => [v.hour.toISOString(), Number(v.value)])).toEqual([
      [H10.toISOString(), 1],
      [H11.toISOString(), 1],
    ]);
    expect(bytes!.map((v) => [v.hour.toISOString(), Number(v.value)])).toEqual([
      [H10.toISOString(), 100],
      [H11.toISOString(), 50],
    ]);
    expect(await hourly(USERS)).toEqual([
      ['acme', H10.toISOString(), 1],
      ['acme', H11.toISOString(), 1],
    ]);
    expect(await store.period(USERS, FROM, TO)).toEqual(new Map([['acme', 2n]]));
    expect(await store.period(SLOWEST, FROM, TO)).toEqual(new Map([['acme', 20n]]));
    expect(await store.period(LAST, FROM, TO)).toEqual(new Map([['acme', 20n]]));
    expect(await store.period(LAST, FROM, H11)).toEqual(new Map([['acme', 11n]]));
    expect(
      (await store.firstSeen(USERS, FROM, TO)).map((v) => [v.hour.toISOString(), Number(v.value)]),
    ).toEqual([
      [H10.toISOString(), 1],
      [H11.toISOString(), 1],
    ]);
    // Received since 11:00 with a request time before 12:00: the other event, not the later copy.
    expect(await store.lateEvents(H11, at('12:00:00'))).toBe(1);

    const recent = await reader.recent({ limit: 10 });
    expect(recent.map((r) => [r.event_id, r.request_time, r.latency_ms]).sort()).toEqual([
      ['dup', `${DAY} 10:50:00`, 11],
      ['other', `${DAY} 11:05:00`, 20],
    ]);
  }

  it('counts the first received copy, in its hour, before and after a merge', async () => {
    await expectFirstCopyCounted();
    await ch.command(`OPTIMIZE TABLE ${ch.table('request_logs')} FINAL`);
    await expectFirstCopyCounted();
    const [stored] = await ch.query(
      `SELECT count() AS n FROM ${ch.table('request_logs')} FINAL WHERE event_id = 'other'`,
      z.object({ n: z.coerce.number() }),
    );
    // The exact retry collapsed into one row: the first received of the two.
    expect(stored?.n).toBe(1);
  });

  it('bills one call, in the first received copy’s hour, through the evaluation', async () => {
    const evaluation = new EvaluationService(store, store, { latenessHours: 48, now: () => at('22:30:00') });
    const usage = async () =>
      (
        await store.stored([{ meter: 'calls', version: (await store.versions())[0]!.version }], FROM, TO)
      )[0]!.map((u) => [u.hour.toISOString(), Number(u.value)]);
    // The hour of the later copy alone, as an evaluation window starting there would read it.
    await evaluation.evaluateBetween([CALLS], H11, at('12:00:00'));
    expect(await usage()).toEqual([[H11.toISOString(), 1]]);
    await evaluation.evaluateBetween([CALLS], FROM, TO);
    expect(await usage()).toEqual([
      [H10.toISOString(), 1],
      [H11.toISOString(), 1],
    ]);
  });

  it('moves to a copy received even earlier that reaches ClickHouse later (from a spool)', async () => {
    await expectFirstCopyCounted();
    // Received at 10:40, before the two others, but stored only now.
    await insert(copy('dup', '10:39:00', '10:40:00', { latency_ms: 5 }));
    expect(await hourly(CALLS)).toEqual([
      ['acme', H10.toISOString(), 1],
      ['acme', H11.toISOString(), 1],
    ]);
    expect(await store.period(LAST, FROM, H11)).toEqual(new Map([['acme', 5n]]));
    expect(await store.period(SLOWEST, FROM, TO)).toEqual(new Map([['acme', 20n]]));
  });

  it('does not relate copies further apart than the horizon (24 hours): each counts in its own day', async () => {
    const nextDay = (time: string) => new Date(at(time).getTime() + 86_400_000);
    const reused = copy('reused', '01:00:00', '01:00:01');
    await insert(reused, {
      ...reused,
      request_time: nextDay('07:00:00').getTime() / 1000,
      received_at: nextDay('07:00:01').getTime() / 1000,
    });
    const [today] = await store.hourlyCombined([CALLS], FROM, TO);
    expect(today!.map((v) => [v.hour.toISOString(), Number(v.value)])).toEqual([
      [at('01:00:00').toISOString(), 1],
      [H10.toISOString(), 1],
      [H11.toISOString(), 1],
    ]);
    const [tomorrow] = await store.hourlyCombined([CALLS], nextDay('00:00:00'), nextDay('08:00:00'));
    expect(tomorrow!.map((v) => [v.hour.toISOString(), Number(v.value)])).toEqual([
      [nextDay('07:00:00').toISOString(), 1],
    ]);
  });
});

// Current usage over real ClickHouse (both engines): the settled hours read once and the lateness
// window read each refresh add up to what one read of the whole period gives, also for an event whose
// copies fall on both sides of the boundary (the first received copy counts, in its own hour).
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { RequestLogRow } from '../../../src/collector/request-log.ts';
import { CurrentUsage } from '../../../src/governance/current-usage.ts';
import { meterSchema } from '../../../src/meters/meter-schema.ts';
import type { ClickHouse } from '../../../src/storage/clickhouse/clickhouse.ts';
import { CopyResolution } from '../../../src/storage/clickhouse/copy-resolution.ts';
import { ClickHouseMeterStore } from '../../../src/storage/clickhouse/meter-store.ts';
import { ENGINES, openMigratedDatabase } from '../../support/clickhouse.ts';
import { requestLogRow } from '../../support/request-log-row.ts';

const sec = (iso: string) => Date.parse(iso) / 1000;
const call = (id: string, at: string, received: string, customer = 'acme'): RequestLogRow =>
  requestLogRow({
    event_id: id,
    received_at: sec(received),
    request_time: sec(at),
    customer_key: customer,
    company_id: customer,
    user_id: 'u1',
    method: 'POST',
    route: '/RetrieveCreditScore',
    latency_ms: 10,
    response_bytes: 100,
  });

const CALLS = meterSchema.parse({
  name: 'calls',
  description: '',
  unit: 'calls',
  aggregation: { type: 'count' },
  filter: { routes: ['/RetrieveCreditScore'] },
});
const BYTES = meterSchema.parse({
  name: 'bytes',
  description: '',
  unit: 'bytes',
  aggregation: { type: 'sum', value: 'response_bytes' },
});

describe.each(ENGINES)('current usage on the %s engine', (engine) => {
  let ch: ClickHouse;
  let store: ClickHouseMeterStore;
  const insert = (...rows: RequestLogRow[]) =>
    ch.insertJsonEachRow('request_logs', rows.map((r) => `${JSON.stringify(r)}\n`).join(''));

  beforeEach(async () => {
    ch = await openMigratedDatabase(engine, 'current_usage');
    store = new ClickHouseMeterStore(ch, new CopyResolution(ch, { minIntervalMs: 0 }));
  });
  afterEach(async () => {
    await ch.command(`DROP DATABASE IF EXISTS ${ch.database}`);
    await ch.close();
  });

  it('settled hours kept plus the window read again equal a read of the whole period', async () => {
    let now = new Date('2027-03-10T13:30:00Z');
    const meters = () => [CALLS, BYTES];
    const kept = new CurrentUsage({ source: store, meters, now: () => now, settledAfterHours: 2 });
    const whole = new CurrentUsage({ source: store, meters, now: () => now });
    const same = async () => {
      await kept.refresh();
      await whole.refresh();
      expect(kept.snapshot()?.usage).toEqual(whole.snapshot()?.usage);
      return kept.snapshot()!.usage;
    };
    await insert(
      call('a', '2027-03-01T00:00:01Z', '2027-03-01T00:00:02Z'),
      call('b', '2027-03-09T23:59:59Z', '2027-03-10T00:00:01Z', 'beta'),
      // One event, two copies: the first received (10:50, settled) counts, not the one in the window.
      call('dup', '2027-03-10T11:20:00Z', '2027-03-10T11:20:30Z'),
      call('dup', '2027-03-10T10:50:00Z', '2027-03-10T10:50:05Z'),
      call('c', '2027-03-10T12:10:00Z', '2027-03-10T12:10:00Z'),
      call('last-month', '2027-02-28T23:59:59Z', '2027-03-01T00:00:00Z'),
    );
    let usage = await same();
    expect(usage.get('calls')).toEqual(
      new Map([
        ['acme', 3n],
        ['beta', 1n],
      ]),
    );
    expect(usage.get('bytes')).toEqual(
      new Map([
        ['acme', 300n],
        ['beta', 100n],
      ]),
    );

    // Later: new calls in the window, and the window moves past the hours read so far.
    now = new Date('2027-03-10T15:05:00Z');
    await insert(
      call('d', '2027-03-10T13:59:00Z', '2027-03-10T13:59:01Z', 'beta'),
      call('e', '2027-03-10T15:01:00Z', '2027-03-10T15:01:00Z'),
    );
    usage = await same();
    expect(usage.get('calls')).toEqual(
      new Map([
        ['acme', 4n],
        ['beta', 2n],
      ]),
    );
  });
});

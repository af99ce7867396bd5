import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sequencer, type LedgerOp } from '../../../src/billing/stripe/sync-ledger.ts';
import { SyncService } from '../../../src/billing/stripe/sync-service.ts';
import type { ClickHouse } from '../../../src/storage/clickhouse/clickhouse.ts';
import { ClickHouseMeterStore } from '../../../src/storage/clickhouse/meter-store.ts';
import { ClickHouseSyncStore } from '../../../src/storage/clickhouse/sync-store.ts';
import { ENGINES, openMigratedDatabase } from '../../support/clickhouse.ts';
import { countMeter, FakeMeterEvents, quietLogger, retrying } from '../../unit/billing/sync-fakes.ts';

const HOUR = 3_600_000;
const T0 = Date.UTC(2026, 10, 10, 12, 5);
const H1 = new Date(Date.UTC(2026, 10, 10, 10));

describe.each(ENGINES)('sync ledger on %s ClickHouse', (engine) => {
  let ch: ClickHouse;
  let store: ClickHouseSyncStore;
  const seq = sequencer();

  const op = (overrides: Partial<LedgerOp>): LedgerOp => ({
    opId: 'calls-2026111010-r1-abc',
    kind: 'send',
    meter: 'calls',
    version: 'v1',
    customerKey: "o'brien \\ \u{1F600}",
    stripeCustomerId: 'cus_1',
    eventName: 'api_calls',
    hour: H1,
    revision: 1,
    value: 9_007_199_254_740_993n, // beyond a double's integers: must survive exactly
    eventTime: H1,
    targetOpId: '',
    state: 'intent',
    detail: '',
    intentAt: new Date(T0),
    recordedAt: new Date(T0),
    seq: seq(),
    ...overrides,
  });

  beforeEach(async () => {
    ch = await openMigratedDatabase(engine, 'sync');
    store = new ClickHouseSyncStore(ch);
  });
  afterEach(async () => {
    await ch.command(`DROP DATABASE IF EXISTS ${ch.database}`);
    await ch.close();
  });

  it('reads each op at its latest state, with the time of its first intent', async () => {
    await store.record([op({})]);
    await store.record([op({ state: 'applied', recordedAt: new Date(T0 + 5000), intentAt: new Date(T0 + 5000), seq: seq() })]);
    const [read] = await store.ops('calls', new Date(T0 - 10 * HOUR), new Date(T0));
    expect(read).toMatchObject({
      opId: 'calls-2026111010-r1-abc',
      state: 'applied',
      customerKey: "o'brien \\ \u{1F600}",
      value: 9_007_199_254_740_993n,
      intentAt: new Date(T0),
      recordedAt: new Date(T0 + 5000),
      hour: H1,
    });
    expect(await store.ops('calls', new Date(T0), new Date(T0 + HOUR))).toEqual([]);
    expect(await store.ops('other', new Date(0), new Date(T0))).toEqual([]);
  });

  it('group-commits concurrent records, and every caller resumes only after its rows are stored', async () => {
    const ids = Array.from({ length: 300 }, (_, i) => `op-${i}`);
    await Promise.all(ids.map((opId) => store.record([op({ opId, seq: seq() })])));
    const read = await store.ops('calls', new Date(0), new Date(T0));
    expect(read.map((r) => r.opId).sort()).toEqual([...ids].sort());
  });

  it('keeps discrepancies open until resolved, latest write wins', async () => {
    const d = { meter: 'calls', version: 'v1', customerKey: 'acme', hour: H1, kind: 'decrease_after_24h' as const, expected: 8n, sent: 12n, detail: 'x', resolved: false, recordedAt: new Date(T0) };
    await store.recordDiscrepancies([d]);
    expect(await store.openDiscrepancies('calls')).toEqual([d]);
    await store.recordDiscrepancies([{ ...d, resolved: true, sent: 8n }]);
    expect(await store.openDiscrepancies('calls')).toEqual([]);
    expect(await store.discrepancies({ resolved: true, limit: 10 })).toEqual([{ ...d, resolved: true, sent: 8n }]);
    expect(await store.discrepancies({ customer: 'nobody', limit: 10 })).toEqual([]);
  });

  it('syncs evaluated usage through increases and a decrease, exact in the fake Stripe', async () => {
    const meters = new ClickHouseMeterStore(ch);
    let now = T0;
    const stripe = new FakeMeterEvents(() => now);
    const service = () =>
      new SyncService({
        store,
        directory: { resolve: async (keys) => new Map(keys.map((k) => [k, `cus_${k}`])) },
        sender: stripe,
        call: retrying(),
        concurrency: 8,
        logger: quietLogger,
        now: () => new Date(now),
      });
    const write = (value: bigint, revision: bigint) =>
      meters.writeUsage([{ meter: 'calls', version: 'v1', customer: 'acme', hour: H1, value, periodValue: value }], new Date(now), revision);
    await write(10n, 1n);
    await service().run([countMeter]);
    await write(15n, 2n);
    now += HOUR;
    await service().run([countMeter]);
    await write(11n, 3n);
    now += HOUR;
    const report = await service().run([countMeter]);
    expect(report).toMatchObject({ cancelled: 2, sent: 1 });
    expect(stripe.sum('cus_acme')).toBe(11n);
    now += HOUR;
    expect((await service().run([countMeter])).sent).toBe(0);
  });
});

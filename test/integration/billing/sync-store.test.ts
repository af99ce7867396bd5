import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InMemorySyncStore } from '../../../src/billing/stripe/in-memory-sync-store.ts';
import { sequencer, type LedgerOp } from '../../../src/billing/stripe/sync-ledger.ts';
import { SyncService } from '../../../src/billing/stripe/sync-service.ts';
import type { ClickHouse } from '../../../src/storage/clickhouse/clickhouse.ts';
import { ClickHouseMeterStore } from '../../../src/storage/clickhouse/meter-store.ts';
import { ClickHouseSyncStore } from '../../../src/storage/clickhouse/sync-store.ts';
import { ENGINES, openMigratedDatabase } from '../../support/clickhouse.ts';
import { countMeter, FakeMeterEvents, quietLogger, retrying } from '../../support/sync-fakes.ts';

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
    await store.record([
      op({ state: 'applied', recordedAt: new Date(T0 + 5000), intentAt: new Date(T0 + 5000), seq: seq() }),
    ]);
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
    const d = {
      meter: 'calls',
      version: 'v1',
      customerKey: 'acme',
      hour: H1,
      kind: 'decrease_after_24h' as const,
      expected: 8n,
      sent: 12n,
      detail: 'x',
      resolved: false,
      recordedAt: new Date(T0),
    };
    await store.recordDiscrepancies([d]);
    expect(await store.openDiscrepancies('calls')).toEqual([d]);
    await store.recordDiscrepancies([{ ...d, resolved: true, sent: 8n }]);
    expect(await store.openDiscrepancies('calls')).toEqual([]);
    expect(await store.discrepancies({ resolved: true, limit: 10 })).toEqual([
      { ...d, resolved: true, sent: 8n },
    ]);
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
      meters.writeUsage(
        [{ meter: 'calls', version: 'v1', customer: 'acme', hour: H1, value, periodValue: value }],
        new Date(now),
        revision,
      );
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

describe.each(ENGINES)('sync candidates on %s ClickHouse agree with the reference', (engine) => {
  let ch: ClickHouse;
  beforeEach(async () => {
    ch = await openMigratedDatabase(engine, 'cand');
  });
  afterEach(async () => {
    await ch.command(`DROP DATABASE IF EXISTS ${ch.database}`);
    await ch.close();
  });

  it('finds the same keys for additive and period meters, live and dry-run', async () => {
    const seq = sequencer();
    const reference = new InMemorySyncStore();
    const store = new ClickHouseSyncStore(ch);
    const meters = new ClickHouseMeterStore(ch);
    const h = (n: number) => new Date(Date.UTC(2026, 10, 10, n));
    const usage = async (
      meter: string,
      customer: string,
      hour: Date,
      value: bigint,
      periodValue: bigint,
      revision: bigint,
    ) => {
      reference.setUsage(meter, { version: 'v1', customer, hour, value, periodValue });
      await meters.writeUsage(
        [{ meter, version: 'v1', customer, hour, value, periodValue }],
        new Date(T0),
        revision,
      );
    };
    const op = async (
      o: Partial<LedgerOp> & Pick<LedgerOp, 'opId' | 'meter' | 'customerKey' | 'hour' | 'value' | 'state'>,
    ) => {
      const row: LedgerOp = {
        kind: 'send',
        version: 'v1',
        stripeCustomerId: 'cus_x',
        eventName: 'e',
        revision: 1,
        eventTime: o.hour,
        targetOpId: '',
        detail: '',
        intentAt: new Date(T0),
        recordedAt: new Date(T0),
        seq: seq(),
        ...o,
      };
      await reference.record([row]);
      await store.record([row]);
    };
    // calls (additive): a settled hour, a changed one (revision 2 of the usage), a pending intent, a
    // cancelled send, a dry-run send, a rejected send, an hour with no usage left, an open discrepancy.
    await usage('calls', 'settled', h(1), 5n, 5n, 1n);
    await op({ opId: 's1', meter: 'calls', customerKey: 'settled', hour: h(1), value: 5n, state: 'applied' });
    await usage('calls', 'grew', h(1), 3n, 3n, 1n);
    await usage('calls', 'grew', h(1), 7n, 7n, 2n);
    await op({ opId: 'g1', meter: 'calls', customerKey: 'grew', hour: h(1), value: 3n, state: 'duplicate' });
    await usage('calls', 'pending', h(2), 4n, 4n, 1n);
    await op({ opId: 'p1', meter: 'calls', customerKey: 'pending', hour: h(2), value: 4n, state: 'intent' });
    await usage('calls', 'cancelled', h(2), 6n, 6n, 1n);
    await op({
      opId: 'c1',
      meter: 'calls',
      customerKey: 'cancelled',
      hour: h(2),
      value: 6n,
      state: 'applied',
    });
    await op({
      opId: 'x1',
      kind: 'cancel',
      targetOpId: 'c1',
      meter: 'calls',
      customerKey: 'cancelled',
      hour: h(2),
      value: 6n,
      state: 'applied',
    });
    await usage('calls', 'dry', h(3), 2n, 2n, 1n);
    await op({ opId: 'd1', meter: 'calls', customerKey: 'dry', hour: h(3), value: 2n, state: 'dry_run' });
    await usage('calls', 'refused', h(3), 9n, 9n, 1n);
    await op({
      opId: 'r1',
      meter: 'calls',
      customerKey: 'refused',
      hour: h(3),
      value: 9n,
      state: 'rejected',
    });
    await op({ opId: 'z1', meter: 'calls', customerKey: 'gone', hour: h(4), value: 8n, state: 'applied' });
    // A cancel never heard of does not count: the send it aimed at still holds.
    await usage('calls', 'uncertain', h(5), 10n, 10n, 1n);
    await op({
      opId: 'n1',
      meter: 'calls',
      customerKey: 'uncertain',
      hour: h(5),
      value: 10n,
      state: 'applied',
    });
    await op({
      opId: 'n2',
      kind: 'cancel',
      targetOpId: 'n1',
      meter: 'calls',
      customerKey: 'uncertain',
      hour: h(5),
      value: 10n,
      state: 'unknown_outcome',
    });
    await usage('calls', 'flagged', h(4), 1n, 1n, 1n);
    await op({ opId: 'f1', meter: 'calls', customerKey: 'flagged', hour: h(4), value: 1n, state: 'applied' });
    const flagged = {
      meter: 'calls',
      version: 'v1',
      customerKey: 'flagged',
      hour: h(4),
      kind: 'rejected' as const,
      expected: 1n,
      sent: 0n,
      detail: '',
      resolved: false,
      recordedAt: new Date(T0),
    };
    await reference.recordDiscrepancies([flagged]);
    await store.recordDiscrepancies([flagged]);
    // users (period): the latest hour's period value against the highest live revision.
    await usage('users', 'same', h(1), 0n, 2n, 1n);
    await usage('users', 'same', h(2), 0n, 3n, 1n);
    await op({
      opId: 'u1',
      meter: 'users',
      customerKey: 'same',
      hour: h(1),
      value: 2n,
      state: 'applied',
      revision: 1,
    });
    await op({
      opId: 'u2',
      meter: 'users',
      customerKey: 'same',
      hour: h(2),
      value: 3n,
      state: 'applied',
      revision: 2,
    });
    await usage('users', 'fell', h(1), 0n, 4n, 1n);
    await usage('users', 'fell', h(2), 0n, 4n, 1n);
    await usage('users', 'fell', h(2), 0n, 2n, 2n);
    await op({
      opId: 'v1',
      meter: 'users',
      customerKey: 'fell',
      hour: h(2),
      value: 4n,
      state: 'applied',
      revision: 1,
    });
    await usage('users', 'new', h(3), 0n, 1n, 1n);

    const from = h(0);
    const to = h(12);
    const norm = (cs: Awaited<ReturnType<typeof store.candidates>>) =>
      cs
        .map((c) => `${c.customer} ${c.hour.toISOString()} ${c.period?.toISOString() ?? '-'} ${c.target}`)
        .sort();
    for (const dryRun of [false, true]) {
      const additive = norm(await store.candidates('calls', true, from, to, dryRun));
      expect(additive).toEqual(norm(await reference.candidates('calls', true, from, to, dryRun)));
      expect(additive.map((l) => l.split(' ')[0])).toEqual(
        dryRun
          ? ['cancelled', 'flagged', 'gone', 'grew', 'pending', 'refused']
          : ['cancelled', 'dry', 'flagged', 'gone', 'grew', 'pending', 'refused'],
      );
      const period = norm(await store.candidates('users', false, from, to, dryRun));
      expect(period).toEqual(norm(await reference.candidates('users', false, from, to, dryRun)));
      expect(period).toEqual([
        `fell ${h(2).toISOString()} ${new Date(Date.UTC(2026, 10, 1)).toISOString()} 2`,
        `new ${h(3).toISOString()} ${new Date(Date.UTC(2026, 10, 1)).toISOString()} 1`,
      ]);
    }
    // ops for some customers only.
    expect((await store.ops('calls', from, to, ['grew', 'pending'])).map((o) => o.opId).sort()).toEqual([
      'g1',
      'p1',
    ]);
  });
});

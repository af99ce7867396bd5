import { describe, expect, it } from 'vitest';
import { UpstreamError } from '../../../src/errors.ts';
import { countMeter, Harness, uniqueMeter } from '../../support/sync-fakes.ts';

const HOUR = 3_600_000;
const T0 = Date.UTC(2026, 10, 10, 12, 5);
const H1 = new Date(Date.UTC(2026, 10, 10, 10));
const H2 = new Date(Date.UTC(2026, 10, 10, 11));
const V = 'v1';

function setCount(h: Harness, customer: string, hour: Date, value: number): void {
  h.store.setUsage(countMeter.name, { version: V, customer, hour, value: BigInt(value), periodValue: 0n });
}

describe('sync of an additive meter', () => {
  it('sends each hour once, and nothing when nothing changed', async () => {
    const h = new Harness(T0);
    h.mapping.set('acme', 'cus_acme');
    setCount(h, 'acme', H1, 10);
    setCount(h, 'acme', H2, 7);
    const first = await h.service().run([countMeter]);
    expect(first).toMatchObject({ sent: 2, duplicates: 0, discrepancies: 0, aborted: false });
    expect(h.stripe.sum('cus_acme')).toBe(17n);
    const events = [...h.stripe.events.values()];
    expect(events.map((e) => e.timestamp.toISOString()).sort()).toEqual([H1.toISOString(), H2.toISOString()]);
    const second = await h.service().run([countMeter]);
    expect(second.sent).toBe(0);
    expect(h.stripe.calls).toHaveLength(2);
  });

  it('sends an increase as a new revision with its own identifier', async () => {
    const h = new Harness(T0);
    h.mapping.set('acme', 'cus_acme');
    setCount(h, 'acme', H1, 10);
    await h.service().run([countMeter]);
    setCount(h, 'acme', H1, 15);
    h.advance(HOUR);
    await h.service().run([countMeter]);
    const ids = [...h.stripe.events.keys()];
    expect(ids).toHaveLength(2);
    expect(ids[0]).toMatch(/^calls-2026111010-r1-[0-9a-f]{24}$/);
    expect(ids[1]).toMatch(/^calls-2026111010-r2-[0-9a-f]{24}$/);
    expect([...h.stripe.events.values()].map((e) => e.value)).toEqual([10n, 5n]);
    expect(h.stripe.sum('cus_acme')).toBe(15n);
  });

  it('handles a decrease within 24 h by cancelling and resending', async () => {
    const h = new Harness(T0);
    h.mapping.set('acme', 'cus_acme');
    setCount(h, 'acme', H1, 10);
    await h.service().run([countMeter]);
    setCount(h, 'acme', H1, 15);
    await h.service().run([countMeter]);
    setCount(h, 'acme', H1, 12);
    h.advance(3 * HOUR);
    const report = await h.service().run([countMeter]);
    expect(report).toMatchObject({ cancelled: 2, sent: 1, discrepancies: 0 });
    expect(h.stripe.sum('cus_acme')).toBe(12n);
    expect(h.stripe.calls.filter((c) => c.kind === 'cancel')).toHaveLength(2);
  });

  it('records a decrease after 24 h as a discrepancy, never drops it, and resolves it when usage returns', async () => {
    const h = new Harness(T0);
    h.mapping.set('acme', 'cus_acme');
    setCount(h, 'acme', H1, 12);
    await h.service().run([countMeter]);
    h.advance(25 * HOUR);
    setCount(h, 'acme', H1, 8);
    const report = await h.service().run([countMeter]);
    expect(report.discrepancies).toBe(1);
    expect(h.stripe.sum('cus_acme')).toBe(12n);
    const [d] = await h.store.discrepancies({ resolved: false, limit: 10 });
    expect(d).toMatchObject({
      kind: 'decrease_after_24h',
      customerKey: 'acme',
      expected: 8n,
      sent: 12n,
      resolved: false,
    });
    // The same difference next hour is not recorded again.
    h.advance(HOUR);
    expect((await h.service().run([countMeter])).discrepancies).toBe(0);
    setCount(h, 'acme', H1, 12);
    await h.service().run([countMeter]);
    expect(await h.store.discrepancies({ resolved: false, limit: 10 })).toEqual([]);
    expect(await h.store.discrepancies({ resolved: true, limit: 10 })).toHaveLength(1);
  });

  it('counts an event once when the connection drops after Stripe applied it', async () => {
    const h = new Harness(T0);
    h.mapping.set('acme', 'cus_acme');
    setCount(h, 'acme', H1, 10);
    h.stripe.faults.push('drop_after_apply');
    const report = await h.service().run([countMeter]);
    expect(report).toMatchObject({ sent: 0, duplicates: 1 });
    expect(h.stripe.sum('cus_acme')).toBe(10n);
    expect(h.store.ledger.map((op) => op.state)).toEqual(['intent', 'duplicate']);
  });

  it('resumes a pending intent with the value it recorded, then sends what changed since', async () => {
    const h = new Harness(T0);
    h.mapping.set('acme', 'cus_acme');
    setCount(h, 'acme', H1, 10);
    // The first attempt "dies" after its intent: nothing answers, nothing is applied.
    const dead = h.service({
      call: async () => {
        throw new UpstreamError('stripe', 'connection refused', true);
      },
    });
    const crashed = await dead.run([countMeter]);
    expect(crashed.pending).toBe(1);
    expect(h.store.ledger.map((op) => op.state)).toEqual(['intent']);
    setCount(h, 'acme', H1, 14);
    h.advance(HOUR);
    await h.service().run([countMeter]);
    expect([...h.stripe.events.values()].map((e) => e.value)).toEqual([10n, 4n]);
    expect(h.stripe.sum('cus_acme')).toBe(14n);
  });

  it('gives up on a pending intent older than 24 h: counted as sent, reported', async () => {
    const h = new Harness(T0);
    h.mapping.set('acme', 'cus_acme');
    setCount(h, 'acme', H1, 10);
    await h
      .service({
        call: async () => {
          throw new UpstreamError('stripe', 'down', true);
        },
      })
      .run([countMeter]);
    h.advance(30 * HOUR);
    const report = await h.service().run([countMeter]);
    expect(report.sent).toBe(0);
    expect(h.stripe.calls).toHaveLength(0);
    const [d] = await h.store.discrepancies({ limit: 10 });
    expect(d).toMatchObject({ kind: 'unknown_outcome', expected: 10n });
  });

  it('takes a cancel whose outcome was never heard within 24 h as not applied: never bills twice', async () => {
    const h = new Harness(T0);
    h.mapping.set('acme', 'cus_acme');
    setCount(h, 'acme', H1, 10);
    await h.service().run([countMeter]);
    setCount(h, 'acme', H1, 6);
    h.advance(HOUR);
    // The cancel's intent is stored, then nothing is heard: the process is gone for 30 hours.
    const silent = {
      send: (e: Parameters<typeof h.stripe.send>[0]) => h.stripe.send(e),
      cancel: async () => {
        throw new UpstreamError('stripe', 'timeout', true);
      },
    };
    expect((await h.service({ sender: silent }).run([countMeter])).pending).toBe(1);
    h.advance(30 * HOUR);
    const report = await h.service().run([countMeter]);
    expect(report.sent).toBe(0); // resending 6 on top of an uncancelled 10 would bill 16
    expect(h.stripe.sum('cus_acme')).toBe(10n);
    const kinds = (await h.store.discrepancies({ limit: 10 })).map((d) => d.kind).sort();
    expect(kinds).toEqual(['decrease_after_24h', 'unknown_outcome']);
  });

  it('holds usage of an unmapped customer, and sends it once mapped', async () => {
    const h = new Harness(T0);
    setCount(h, 'globex', H1, 5);
    setCount(h, 'globex', H2, 6);
    const report = await h.service().run([countMeter]);
    expect(report.sent).toBe(0);
    expect(report.held).toEqual([
      expect.objectContaining({
        meter: 'calls',
        customer: 'globex',
        hours: 2,
        value: '11',
        oldestHour: H1.toISOString(),
      }),
    ]);
    expect(await h.service().held([countMeter])).toEqual(report.held);
    h.mapping.set('globex', 'cus_globex');
    const later = await h.service().run([countMeter]);
    expect(later).toMatchObject({ sent: 2, held: [] });
    expect(h.stripe.sum('cus_globex')).toBe(11n);
  });

  it('never sends an hour older than Stripe accepts: a discrepancy instead', async () => {
    const h = new Harness(T0);
    const old = new Date(Date.UTC(2026, 9, 5, 10)); // 36 days before T0
    setCount(h, 'initech', old, 9);
    h.mapping.set('initech', 'cus_initech');
    const report = await h.service().run([countMeter]);
    expect(report.sent).toBe(0);
    const [d] = await h.store.discrepancies({ limit: 10 });
    expect(d).toMatchObject({ kind: 'outside_stripe_window', expected: 9n, sent: 0n });
  });

  it('records a refusal from Stripe as a discrepancy', async () => {
    const h = new Harness(T0);
    h.mapping.set('acme', 'cus_gone');
    setCount(h, 'acme', H1, 3);
    h.stripe.faults.push('reject');
    const report = await h.service().run([countMeter]);
    expect(report.rejected).toBe(1);
    expect((await h.store.discrepancies({ limit: 10 }))[0]).toMatchObject({
      kind: 'rejected',
      customerKey: 'acme',
    });
    // The next run tries again (the customer may have been fixed in Stripe).
    await h.service().run([countMeter]);
    expect(h.stripe.sum('cus_gone')).toBe(3n);
  });

  it('retries server errors and keeps one call in flight per customer and meter', async () => {
    const h = new Harness(T0, 2);
    for (const c of ['a', 'b', 'c', 'd', 'e', 'f']) {
      h.mapping.set(c, `cus_${c}`);
      for (let i = 0; i < 5; i++) setCount(h, c, new Date(H1.getTime() - i * HOUR), i + 1);
    }
    h.stripe.faults.push('server_error', 'server_error');
    const report = await h.service({ concurrency: 4 }).run([countMeter]);
    expect(report.sent).toBe(30);
    expect(h.stripe.maxInFlightPerCustomer).toBe(1);
    expect(h.stripe.maxInFlight).toBeGreaterThan(1);
    for (const c of ['a', 'b', 'c', 'd', 'e', 'f']) expect(h.stripe.sum(`cus_${c}`)).toBe(15n);
  });

  it('fails the run, without calling Stripe, when the intent cannot be stored; the next run sends', async () => {
    const h = new Harness(T0);
    for (const c of ['a', 'b', 'c']) {
      h.mapping.set(c, `cus_${c}`);
      setCount(h, c, H1, 2);
    }
    h.store.failRecords = 1;
    await expect(h.service({ concurrency: 1 }).run([countMeter])).rejects.toThrow('ledger unavailable');
    expect(h.stripe.calls).toHaveLength(0); // no call without its intent, and none after the failure
    const report = await h.service().run([countMeter]);
    expect(report.sent).toBe(3);
    for (const c of ['a', 'b', 'c']) expect(h.stripe.sum(`cus_${c}`)).toBe(2n);
  });

  it('fails a run only once none of its calls is in flight (its lock must outlive its calls)', async () => {
    const h = new Harness(T0, 30);
    for (const c of ['a', 'b', 'c', 'd']) {
      h.mapping.set(c, `cus_${c}`);
      setCount(h, c, H1, 1);
      setCount(h, c, H2, 1);
    }
    // The third intent cannot be stored while two calls are under way.
    let records = 0;
    const record = h.store.record.bind(h.store);
    h.store.record = async (ops) => {
      if (ops[0]?.state === 'intent' && ++records === 3) throw new Error('ledger unavailable');
      return record(ops);
    };
    let inFlightAtFailure = -1;
    await h
      .service({ concurrency: 4 })
      .run([countMeter])
      .catch(() => (inFlightAtFailure = h.stripe.inFlightNow));
    expect(inFlightAtFailure).toBe(0);
  });

  it('in dry-run sends nothing, writes what it would have sent, and does not repeat it', async () => {
    const h = new Harness(T0);
    h.mapping.set('acme', 'cus_acme');
    setCount(h, 'acme', H1, 10);
    const dry = h.service({ sender: undefined });
    expect(dry.dryRun).toBe(true);
    const report = await dry.run([countMeter]);
    expect(report.dryRun).toBe(true);
    expect(h.stripe.calls).toHaveLength(0);
    expect(h.store.ledger).toEqual([
      expect.objectContaining({ state: 'dry_run', value: 10n, stripeCustomerId: 'cus_acme' }),
    ]);
    await dry.run([countMeter]);
    expect(h.store.ledger).toHaveLength(1);
    // Going live later sends for real (dry-run rows do not count as sent).
    await h.service().run([countMeter]);
    expect(h.stripe.sum('cus_acme')).toBe(10n);
  });
});

describe('sync of a non-additive meter', () => {
  const setUsers = (h: Harness, hour: Date, periodValue: number) =>
    h.store.setUsage(uniqueMeter.name, {
      version: V,
      customer: 'acme',
      hour,
      value: 0n,
      periodValue: BigInt(periodValue),
    });

  it('sends the period-to-date value of the latest hour; later revisions win, decreases included', async () => {
    const h = new Harness(T0);
    h.mapping.set('acme', 'cus_acme');
    setUsers(h, H1, 3);
    await h.service().run([uniqueMeter]);
    expect(h.stripe.last('cus_acme')).toBe(3n);
    setUsers(h, H2, 5);
    await h.service().run([uniqueMeter]);
    expect(h.stripe.last('cus_acme')).toBe(5n);
    setUsers(h, H2, 4);
    await h.service().run([uniqueMeter]);
    expect(h.stripe.last('cus_acme')).toBe(4n);
    expect(h.stripe.calls.filter((c) => c.kind === 'cancel')).toHaveLength(0);
    // Unchanged: nothing more.
    await h.service().run([uniqueMeter]);
    expect(h.stripe.calls).toHaveLength(3);
    const stamps = [...h.stripe.events.values()].map((e) => e.timestamp.getTime());
    expect(stamps).toEqual([...stamps].sort((a, b) => a - b));
    expect(new Set(stamps).size).toBe(3);
  });
});

describe('sync through the v2 meter event stream', () => {
  it('sends every event in batches of at most the stream size, cancels through v1', async () => {
    const h = new Harness(T0);
    const batches: string[][] = [];
    const stream = {
      maxBatch: 4,
      sendBatch: async (
        events: readonly { identifier: string; stripeCustomerId: string; value: bigint }[],
      ) => {
        batches.push(events.map((e) => e.identifier));
        // Stripe's stream accepts and applies asynchronously; here: at once, through the same account.
        for (const e of events) await h.stripe.send({ ...e, eventName: 'api_calls', timestamp: new Date(0) });
      },
    };
    for (const c of ['a', 'b', 'c', 'd', 'e']) {
      h.mapping.set(c, `cus_${c}`);
      setCount(h, c, H1, 2);
      setCount(h, c, H2, 3);
    }
    const report = await h.service({ stream, concurrency: 8 }).run([countMeter]);
    expect(report.sent).toBe(10);
    expect(batches.flat()).toHaveLength(10);
    expect(Math.max(...batches.map((b) => b.length))).toBeLessThanOrEqual(4);
    expect(batches.length).toBeLessThan(10); // batched, not one call each
    for (const c of ['a', 'b', 'c', 'd', 'e']) expect(h.stripe.sum(`cus_${c}`)).toBe(5n);
    // A decrease still cancels by identifier (v1 adjustments).
    setCount(h, 'a', H1, 1);
    h.advance(HOUR);
    const later = await h.service({ stream, concurrency: 8 }).run([countMeter]);
    expect(later.cancelled).toBe(1);
    expect(h.stripe.sum('cus_a')).toBe(4n);
  });

  it('leaves a batch that failed after its retries pending, and resends it next run', async () => {
    const h = new Harness(T0);
    h.mapping.set('a', 'cus_a');
    setCount(h, 'a', H1, 2);
    let fail = true;
    const stream = {
      maxBatch: 100,
      sendBatch: async (
        events: readonly { identifier: string; stripeCustomerId: string; value: bigint }[],
      ) => {
        if (fail) throw new UpstreamError('stripe', 'stream down', true);
        for (const e of events) await h.stripe.send({ ...e, eventName: 'api_calls', timestamp: new Date(0) });
      },
    };
    expect((await h.service({ stream }).run([countMeter])).pending).toBe(1);
    fail = false;
    await h.service({ stream }).run([countMeter]);
    expect(h.stripe.sum('cus_a')).toBe(2n);
    expect([...h.stripe.events.keys()]).toHaveLength(1);
  });
});

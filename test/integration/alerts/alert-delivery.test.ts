// Alerts end to end below the HTTP API: thresholds of a real meter definition, crossings recorded in
// ClickHouse (both engines), delivered as signed webhooks to a receiver that verifies them with Stripe's
// own library. Clocks are pinned: everything is dated from T0.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { webhookChannel } from '../../../src/adapters/alerts/webhook-channel.ts';
import { AlertDeliveryService } from '../../../src/alerts/alert-delivery.ts';
import { AlertEngine, crossingId, type UsageObservation } from '../../../src/alerts/alert-engine.ts';
import type { ClickHouse } from '../../../src/storage/clickhouse/clickhouse.ts';
import {
  ClickHouseCrossingStore,
  ClickHouseDeliveryStore,
} from '../../../src/storage/clickhouse/alert-store.ts';
import { alertMeter } from '../../support/alert-meter.ts';
import { alertReceiver, type AlertReceiver } from '../../support/alert-receiver.ts';
import { ENGINES, openMigratedDatabase } from '../../support/clickhouse.ts';

const SECRET = 'alert-secret-0123456789abcdef0123';
const T0 = Date.UTC(2026, 10, 10, 12, 5);
const PERIOD = new Date(Date.UTC(2026, 10, 1));

describe.each(ENGINES)('alerts on %s ClickHouse', (engine) => {
  let ch: ClickHouse;
  let receiver: AlertReceiver;
  let clock: number;
  const now = () => new Date(clock);
  let statuses: (number | 'hang')[];

  const parts = (maxAttempts = 5) => {
    const crossings = new ClickHouseCrossingStore(ch);
    const deliveries = new ClickHouseDeliveryStore(ch);
    const engineOf = new AlertEngine(crossings, [alertMeter()], now);
    const delivery = new AlertDeliveryService({
      crossings,
      deliveries,
      channels: [webhookChannel({ url: receiver.url, secret: SECRET, timeoutMs: 2000, now })],
      units: new Map([['calls', 'calls']]),
      maxAttempts,
      backoffBaseMs: 60_000,
      backoffMaxMs: 600_000,
      lookbackMs: 35 * 86_400_000,
      now,
    });
    return { crossings, deliveries, engine: engineOf, delivery };
  };
  const seen = (customer: string, quantity: bigint): UsageObservation => ({
    customer,
    meter: 'calls',
    periodStart: PERIOD,
    quantity,
    observedAt: now(),
  });

  beforeEach(async () => {
    ch = await openMigratedDatabase(engine, 'alerts');
    clock = T0;
    statuses = [];
    receiver = await alertReceiver(SECRET, {
      answer: (n) => statuses[n - 1] ?? 200,
      nowSeconds: () => Math.floor(clock / 1000),
    });
  });
  afterEach(async () => {
    await receiver.close();
    await ch.close();
  });

  it('sends exactly two signed webhooks for 80% of the quota then the next tier, whatever usage does between', async () => {
    const { engine: alerts, delivery } = parts();
    expect(await alerts.observe([seen('acme', 79n)])).toEqual([]);
    expect((await alerts.observe([seen('acme', 85n)])).map((c) => c.threshold)).toEqual(['quota:80%']);
    await delivery.deliverDue();
    // A re-evaluation that lowers usage, then usage rising again within the period: nothing new.
    clock += 3_600_000;
    expect(await alerts.observe([seen('acme', 60n)])).toEqual([]);
    expect(await alerts.observe([seen('acme', 95n)])).toEqual([]);
    clock += 3_600_000;
    expect((await alerts.observe([seen('acme', 120n)])).map((c) => c.threshold)).toEqual(['next_tier:100']);
    await delivery.deliverDue();
    await delivery.deliverDue();

    // After a restart (new parts over the same tables), the same observations send nothing more.
    const restarted = parts();
    expect(await restarted.engine.observe([seen('acme', 120n)])).toEqual([]);
    await restarted.delivery.deliverDue();

    expect(receiver.rejected).toEqual([]);
    expect(receiver.verified.map((r) => r.event.data)).toEqual([
      expect.objectContaining({
        customer: 'acme',
        meter: 'calls',
        quantity: '85',
        threshold: { id: 'quota:80%', label: '80% of the quota of 100 calls', value: '80' },
        period: { id: '2026-11', start: '2026-11-01T00:00:00.000Z', end: '2026-12-01T00:00:00.000Z' },
      }),
      expect.objectContaining({
        quantity: '120',
        threshold: expect.objectContaining({ id: 'next_tier:100' }),
      }),
    ]);
    expect(receiver.verified.map((r) => r.event.id)).toEqual([
      crossingId('calls', 'acme', 'quota:80%', PERIOD),
      crossingId('calls', 'acme', 'next_tier:100', PERIOD),
    ]);
    const listed = await restarted.delivery.describe(await restarted.crossings.list({ limit: 10 }));
    expect(listed.map((l) => [l.crossing.threshold, l.deliveries.map((d) => d.state)])).toEqual([
      ['next_tier:100', ['delivered']],
      ['quota:80%', ['delivered']],
    ]);
  });

  it('crossing two thresholds at once records both; a copy recorded twice is still one crossing', async () => {
    const { engine: alerts, crossings } = parts();
    const fresh = await alerts.observe([seen("o'brien \\ 😀", 150n)]);
    expect(fresh.map((c) => c.threshold)).toEqual(['quota:80%', 'next_tier:100']);
    await crossings.record(fresh); // as a second writer would
    const listed = (await crossings.list({ limit: 10 })).map((c) => [c.customer, c.threshold, c.quantity]);
    expect(listed.sort()).toEqual([
      ["o'brien \\ 😀", 'next_tier:100', 150n],
      ["o'brien \\ 😀", 'quota:80%', 150n],
    ]);
    expect(await crossings.recorded('calls', PERIOD, ["o'brien \\ 😀", 'other'])).toEqual(
      new Set(["o'brien \\ 😀\u0000quota:80%", "o'brien \\ 😀\u0000next_tier:100"]),
    );
  });

  it('a new period alerts again', async () => {
    const { engine: alerts } = parts();
    await alerts.observe([seen('acme', 90n)]);
    const december = { ...seen('acme', 90n), periodStart: new Date(Date.UTC(2026, 11, 1)) };
    expect((await alerts.observe([december])).map((c) => c.threshold)).toEqual(['quota:80%']);
  });

  it('retries a failed delivery with backoff, keeps every attempt, and gives up after the last', async () => {
    statuses = [500, 503];
    const { engine: alerts, delivery, crossings } = parts(3);
    await alerts.observe([seen('acme', 85n)]);
    expect(await delivery.deliverDue()).toEqual({ delivered: 0, failed: 1 });
    // Not due yet: the first retry waits 60 s.
    clock += 59_000;
    expect(await delivery.deliverDue()).toEqual({ delivered: 0, failed: 0 });
    clock += 1_000;
    expect(await delivery.deliverDue()).toEqual({ delivered: 0, failed: 1 });
    clock += 60_000;
    expect(await delivery.deliverDue()).toEqual({ delivered: 0, failed: 0 }); // second retry waits 120 s
    clock += 60_000;
    expect(await delivery.deliverDue()).toEqual({ delivered: 1, failed: 0 });
    clock += 3_600_000;
    expect(await delivery.deliverDue()).toEqual({ delivered: 0, failed: 0 });
    const [described] = await delivery.describe(await crossings.list({ limit: 1 }));
    expect(described!.deliveries[0]!.state).toBe('delivered');
    expect(described!.deliveries[0]!.attempts.map((a) => [a.attempt, a.outcome, a.statusCode])).toEqual([
      [1, 'failed', 500],
      [2, 'failed', 503],
      [3, 'delivered', 200],
    ]);
    // Three verified requests of one event: the receiver dedupes on its id.
    expect(new Set(receiver.verified.map((r) => r.event.id)).size).toBe(1);

    statuses = [500, 500, 500, 500, 500, 500];
    await alerts.observe([seen('globex', 85n)]);
    for (let i = 0; i < 5; i++) {
      await delivery.deliverDue();
      clock += 600_000;
    }
    const [gaveUp] = await delivery.describe(await crossings.list({ customer: 'globex', limit: 1 }));
    expect(gaveUp!.deliveries[0]).toMatchObject({ state: 'failed' });
    expect(gaveUp!.deliveries[0]!.attempts).toHaveLength(3);
  });

  it('a forged or stale signature does not verify', async () => {
    const { engine: alerts, delivery } = parts();
    await receiver.close();
    receiver = await alertReceiver('another-secret-0123456789abcdef', {
      nowSeconds: () => Math.floor(clock / 1000),
    });
    const other = new AlertDeliveryService({
      crossings: new ClickHouseCrossingStore(ch),
      deliveries: new ClickHouseDeliveryStore(ch),
      channels: [webhookChannel({ url: receiver.url, secret: SECRET, timeoutMs: 2000, now })],
      units: new Map(),
      maxAttempts: 1,
      backoffBaseMs: 1000,
      backoffMaxMs: 1000,
      lookbackMs: 86_400_000,
      now,
    });
    void delivery;
    await alerts.observe([seen('acme', 85n)]);
    expect(await other.deliverDue()).toEqual({ delivered: 0, failed: 1 });
    expect(receiver.verified).toEqual([]);
    expect(receiver.rejected[0]).toMatch(/signature/i);
  });
});

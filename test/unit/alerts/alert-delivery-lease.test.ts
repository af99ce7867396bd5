// Alert delivery among replicas (the lease port), on the in-memory stores: what is due is read before
// the lease is asked for and again under it, and the fence is checked before each send and each record.
import { describe, expect, it } from 'vitest';
import {
  AlertDeliveryService,
  type AlertChannel,
  type AlertMessage,
  type DeliveryFence,
  type DeliveryLease,
  type DeliveryReport,
} from '../../../src/alerts/alert-delivery.ts';
import { crossingId, type AlertCrossing } from '../../../src/alerts/alert-engine.ts';
import { InMemoryCrossingStore, InMemoryDeliveryStore } from '../../../src/alerts/in-memory-alert-stores.ts';
import { FencedOffError } from '../../../src/billing/stripe/ports.ts';

const T0 = Date.UTC(2026, 10, 10, 12, 5);
const PERIOD = new Date(Date.UTC(2026, 10, 1));

function crossing(customer: string): AlertCrossing {
  return {
    id: crossingId('calls', customer, 'quota:80%', PERIOD),
    customer,
    meter: 'calls',
    periodStart: PERIOD,
    threshold: 'quota:80%',
    thresholdValue: 80n,
    label: '80% of the quota of 100 calls',
    quantity: 85n,
    observedAt: new Date(T0),
    recordedAt: new Date(T0),
  };
}

/** A lease whose fence holds for `checks` checks, then is lost; `before` runs once it is taken. */
function fakeLease(o: { free?: boolean; checks?: number; before?: () => Promise<void> } = {}) {
  const lease = {
    asked: 0,
    checked: 0,
    async runIfFree<T>(pass: (fence: DeliveryFence) => Promise<T>): Promise<T | undefined> {
      lease.asked += 1;
      if (o.free === false) return undefined;
      await o.before?.();
      return pass({
        assertHeld() {
          lease.checked += 1;
          if (lease.checked > (o.checks ?? Infinity)) throw new FencedOffError('lease lost');
        },
      });
    },
  } satisfies DeliveryLease & Record<string, unknown>;
  return lease;
}

/** A replica's delivery; `tables`: those of another replica (both read the same ClickHouse). */
function setup(
  lease?: DeliveryLease,
  tables = { crossings: new InMemoryCrossingStore(), deliveries: new InMemoryDeliveryStore() },
) {
  const { crossings, deliveries } = tables;
  const sent: AlertMessage[] = [];
  const channel: AlertChannel = {
    name: 'webhook',
    send: async (message) => {
      sent.push(message);
      return { ok: true, statusCode: 200 };
    },
  };
  const delivery = new AlertDeliveryService({
    crossings,
    deliveries,
    channels: [channel],
    units: new Map([['calls', 'calls']]),
    maxAttempts: 3,
    backoffBaseMs: 60_000,
    backoffMaxMs: 600_000,
    lookbackMs: 35 * 86_400_000,
    ...(lease ? { lease } : {}),
    now: () => new Date(T0),
  });
  const recordAll = () => crossings.record(['acme', 'globex', 'initech'].map(crossing));
  const sentTo = () => sent.map((m) => m.crossing.customer);
  return { crossings, deliveries, delivery, recordAll, sentTo };
}

describe('alert delivery under the lease', () => {
  it('does not ask for the lease when nothing is due', async () => {
    const lease = fakeLease();
    const { delivery, recordAll } = setup(lease);
    expect(await delivery.deliverDue()).toEqual({ delivered: 0, failed: 0 });
    await recordAll();
    expect(await delivery.deliverDue()).toEqual({ delivered: 3, failed: 0 });
    // Everything delivered: the next passes read ClickHouse only.
    expect(await delivery.deliverDue()).toEqual({ delivered: 0, failed: 0 });
    expect(lease.asked).toBe(1);
  });

  it('reads what is due again under the lease, checks it before each send and each record', async () => {
    const lease = fakeLease();
    const { delivery, deliveries, recordAll, sentTo } = setup(lease);
    await recordAll();
    await delivery.deliverDue();
    expect(sentTo()).toEqual(['acme', 'globex', 'initech']);
    expect(deliveries.reads).toBe(2);
    expect(lease.checked).toBe(6);
  });

  it('sends nothing another replica sent between the check and the lease', async () => {
    const other = setup();
    const lease = fakeLease({ before: () => other.delivery.deliverDue().then(() => undefined) });
    const { delivery } = setup(lease, other);
    await other.recordAll();
    expect(await delivery.deliverDue()).toEqual({ delivered: 0, failed: 0 });
    expect(lease.asked).toBe(1);
    expect(other.sentTo()).toEqual(['acme', 'globex', 'initech']);
    expect(other.deliveries.attempts).toHaveLength(3);
  });

  it('skips the pass while another replica holds the lease', async () => {
    const lease = fakeLease({ free: false });
    const { delivery, deliveries, recordAll, sentTo } = setup(lease);
    const heard: DeliveryReport[] = [];
    delivery.onPass((report) => heard.push(report));
    await recordAll();
    expect(await delivery.deliverDue()).toEqual({ delivered: 0, failed: 0, skipped: 1 });
    expect(heard).toEqual([{ delivered: 0, failed: 0, skipped: 1 }]);
    expect(sentTo()).toEqual([]);
    expect(deliveries.attempts).toEqual([]);
  });

  it('lost before a send: sends nothing more, and fails the pass', async () => {
    // Two checks hold: acme is sent and recorded; the check before globex's send fails.
    const lease = fakeLease({ checks: 2 });
    const { delivery, deliveries, recordAll, sentTo } = setup(lease);
    await recordAll();
    await expect(delivery.deliverDue()).rejects.toThrow(FencedOffError);
    expect(sentTo()).toEqual(['acme']);
    expect(deliveries.attempts.map((a) => a.crossingId)).toEqual([crossing('acme').id]);
  });

  it('lost during a send: records nothing for it, sends nothing more; the next holder sends it, same id', async () => {
    const lease = fakeLease({ checks: 3 });
    const { delivery, deliveries, recordAll, sentTo, crossings } = setup(lease);
    await recordAll();
    await expect(delivery.deliverDue()).rejects.toThrow(FencedOffError);
    expect(sentTo()).toEqual(['acme', 'globex']);
    expect(deliveries.attempts.map((a) => a.crossingId)).toEqual([crossing('acme').id]);
    // The next holder (a fresh lease) reads globex's attempt as not made.
    const next = setup(fakeLease(), { crossings, deliveries }).delivery;
    expect(await next.deliverDue()).toEqual({ delivered: 2, failed: 0 });
    expect(deliveries.attempts.filter((a) => a.crossingId === crossing('globex').id)).toHaveLength(1);
  });

  it('without a lease (one process) sends what is due, as before', async () => {
    const { delivery, recordAll, sentTo } = setup();
    await recordAll();
    expect(await delivery.deliverDue()).toEqual({ delivered: 3, failed: 0 });
    expect(sentTo()).toEqual(['acme', 'globex', 'initech']);
  });
});

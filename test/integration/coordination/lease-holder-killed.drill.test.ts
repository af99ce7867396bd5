// Drills with real service processes (`billing-meter serve`) on the ClickHouse cluster, under the lease
// (COORDINATION_URL, 2 s sessions), against the Stripe emulator answering slowly:
// - the replica holding the lease is SIGKILLed mid-sync: the other, asked to sync, waits for the lease,
//   gets it once ZooKeeper has ended the dead session, resumes the dead one's intents, and Stripe's totals
//   are exact;
// - a replica is SIGSTOPped mid-sync past its lease, the other takes over, then it is resumed: the
//   emulator receives nothing from it after its lease was gone.
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { copyFile, mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startServeReplica, stopReplicas, type ServeReplica } from '../../support/serve-replica.ts';
import { startStripeEmulator, type StripeEmulator } from '../../support/stripe-emulator/index.ts';
import { startTestCluster, type TestCluster } from '../../support/test-cluster.ts';

const METER_FILE = fileURLToPath(new URL('../../../meters/retrieve-credit-score.yaml', import.meta.url));
const SESSION_MS = 2000;
const HOUR_MS = 3_600_000;
const EVENTS_PATH = '/v1/billing/meter_events';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('drills: the lease holder killed or paused mid-sync (service processes, cluster)', () => {
  let cluster: TestCluster;
  let emulator: StripeEmulator;
  let stripe: Stripe;
  let meterDir: string;
  const children: ChildProcess[] = [];

  const startReplica = async (database: string, member: number) => {
    const replica = await startServeReplica({
      ...cluster.env(member),
      CLICKHOUSE_DATABASE: database,
      COORDINATION_URL: cluster.coordinationUrl(database),
      COORDINATION_SESSION_TIMEOUT_MS: String(SESSION_MS),
      STRIPE_SECRET_KEY: 'sk_test_drill',
      STRIPE_API_BASE: emulator.url,
      STRIPE_RATE_LIMIT_PER_SECOND: '1000',
      SYNC_CONCURRENCY: '1',
      METERS_DIR: meterDir,
      METER_SCHEDULE: '0 0 1 1 *',
    });
    children.push(replica.child);
    return {
      ...replica,
      /** The replica's sync run through the admin API (resolves with the HTTP status, or 0 if it died). */
      sync: () =>
        replica.admin('/v1/admin/sync/run').then(
          (r) => r.status,
          () => 0,
        ),
    };
  };

  /** Logs for `customers` over the three hours before the current one, evaluated through `replica`. */
  const seed = async (replica: ServeReplica, customers: string[]): Promise<Map<string, number>> => {
    const top = Math.floor(Date.now() / HOUR_MS) * HOUR_MS;
    const expected = new Map<string, number>();
    const events = [];
    for (const [i, customer] of customers.entries())
      for (let h = 1; h <= 3; h++)
        for (let n = 0; n < i + h; n++) {
          events.push({
            id: `${customer}-${h}-${n}`,
            timestamp: top - h * HOUR_MS + n * 1000,
            company_id: customer,
            method: 'POST',
            path: '/RetrieveCreditScore',
            status: 200,
          });
          expected.set(customer, (expected.get(customer) ?? 0) + 1);
        }
    await replica.ingest(events);
    await replica.evaluate();
    return expected;
  };

  /** What Stripe holds for these customers. */
  const stripeTotals = (customers: readonly string[]) => {
    const totals = new Map<string, number>();
    for (const e of emulator.state.meterEvents)
      if (!e.cancelled && customers.includes(e.customerId))
        totals.set(e.customerId, (totals.get(e.customerId) ?? 0) + e.value);
    return totals;
  };
  const meterEventRequests = () => emulator.requests.filter((r) => r.path === EVENTS_PATH);
  const waitFor = async (what: () => boolean, ms = 60_000) => {
    const deadline = Date.now() + ms;
    while (!what()) {
      if (Date.now() > deadline) throw new Error('timed out');
      await sleep(20);
    }
  };

  beforeAll(async () => {
    cluster = await startTestCluster();
    emulator = await startStripeEmulator();
    stripe = new Stripe('sk_test_drill', { ...emulator.stripeOptions(), maxNetworkRetries: 2 });
    await stripe.billing.meters.create({
      display_name: 'credit score',
      event_name: 'retrieve_credit_score',
      default_aggregation: { formula: 'sum' },
    });
    meterDir = await mkdtemp(join(inject('runDir'), 'meters-'));
    await copyFile(METER_FILE, join(meterDir, 'retrieve-credit-score.yaml'));
  }, 120_000);

  afterAll(async () => {
    await stopReplicas(children);
    await emulator?.stop();
    await cluster?.stop();
  });

  it('the holder is SIGKILLed mid-sync: the other takes over after the session timeout, totals exact', async () => {
    const customers: string[] = [];
    for (let i = 0; i < 6; i++) customers.push((await stripe.customers.create({ name: `k${i}` })).id);
    const [a, b] = [await startReplica('drill_killed', 0), await startReplica('drill_killed', 2)];
    const expected = await seed(a, customers);
    emulator.setLatency(150);
    const before = meterEventRequests().length;
    void a.sync();
    await waitFor(() => meterEventRequests().length >= before + 4);
    a.child.kill('SIGKILL');
    await once(a.child, 'exit');
    const killedAt = Date.now();
    expect(await b.sync()).toBe(200);
    const firstAfter = meterEventRequests().find((r) => r.receivedAtRealMs > killedAt);
    emulator.setLatency(0);
    expect(stripeTotals(customers)).toEqual(expected);
    // Taken over once ZooKeeper ended the dead session (its timeout), with slack for a loaded machine.
    expect(firstAfter!.receivedAtRealMs - killedAt).toBeLessThan(SESSION_MS * 3 + 2000);
  });

  it('a holder SIGSTOPped past its lease, then resumed, sends nothing after its lease is gone', async () => {
    const customers: string[] = [];
    for (let i = 0; i < 6; i++) customers.push((await stripe.customers.create({ name: `s${i}` })).id);
    const [a, b] = [await startReplica('drill_stopped', 0), await startReplica('drill_stopped', 2)];
    const expected = await seed(a, customers);
    emulator.setLatency(150);
    const before = meterEventRequests().length;
    const aSync = a.sync();
    await waitFor(() => meterEventRequests().length >= before + 4);
    a.child.kill('SIGSTOP');
    const stoppedAt = Date.now();
    // Past its lease: the session expires on ZooKeeper; b, asked to sync, takes over and finishes.
    expect(await b.sync()).toBe(200);
    const takenOver = meterEventRequests().filter((r) => r.receivedAtRealMs > stoppedAt).length;
    expect(takenOver).toBeGreaterThan(0);
    const seenBeforeResume = meterEventRequests().length;
    a.child.kill('SIGCONT');
    // a wakes, finds its lease gone at its next check, and fails its run (500) without a call.
    expect(await aSync).toBe(500);
    await sleep(500);
    emulator.setLatency(0);
    const fromA = meterEventRequests()
      .slice(seenBeforeResume)
      .filter((r) => r.receivedAtRealMs > stoppedAt);
    // Its call in flight when it was stopped had reached the emulator before; after waking, nothing.
    expect(fromA).toEqual([]);
    expect(stripeTotals(customers)).toEqual(expected);
  });
});

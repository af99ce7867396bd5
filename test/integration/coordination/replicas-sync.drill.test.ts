// Drill: two service replicas on a ClickHouse cluster fire the hourly job (evaluate, then sync) at the
// same moment, 20 hours in a row, against the Stripe emulator answering 500, 429 and dropping a
// connection after applying an event. The lease (COORDINATION_URL) lets one job run at a time; the
// other waits, then evaluates again and finds nothing left to send. At the end Stripe's total per customer is exactly its
// billable calls, and the ledger (live sends per customer) agrees with Stripe.
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { z } from 'zod';
import { HOUR_MS } from '../../../src/time/hours.ts';
import { startTestCluster, type TestCluster } from '../../support/test-cluster.ts';
import { startTestService, type TestService } from '../../support/service.ts';
import { startStripeEmulator, type StripeEmulator } from '../../support/stripe-emulator/index.ts';

const METER_FILE = fileURLToPath(new URL('../../../meters/retrieve-credit-score.yaml', import.meta.url));
const ROUNDS = 20;
// Inside one month whatever the date: the clock is pinned.
const H0 = Date.parse('2027-03-03T00:00:00Z');

describe('two replicas fire the hourly job at once, 20 times, with Stripe faults (cluster, lease)', () => {
  let cluster: TestCluster;
  let emulator: StripeEmulator;
  let clock = H0;
  const replicas: TestService[] = [];
  const customers: string[] = [];
  const expected = new Map<string, number>();
  let meterDir: string;

  beforeAll(async () => {
    cluster = await startTestCluster();
    emulator = await startStripeEmulator({ clock: () => clock });
    const stripe = new Stripe('sk_test_drill', { ...emulator.stripeOptions(), maxNetworkRetries: 2 });
    await stripe.billing.meters.create({
      display_name: 'credit score',
      event_name: 'retrieve_credit_score',
      default_aggregation: { formula: 'sum' },
    });
    for (const name of ['acme', 'globex', 'initech'])
      customers.push((await stripe.customers.create({ name })).id);
    meterDir = await mkdtemp(join(inject('runDir'), 'meters-'));
    await copyFile(METER_FILE, join(meterDir, 'retrieve-credit-score.yaml'));
    const env = (member: number) => ({
      ...cluster.env(member),
      CLICKHOUSE_DATABASE: 'drill_sync',
      COORDINATION_URL: cluster.coordinationUrl('drill-sync'),
      COORDINATION_SESSION_TIMEOUT_MS: '2000',
      STRIPE_SECRET_KEY: 'sk_test_drill',
      STRIPE_API_BASE: emulator.url,
      STRIPE_RATE_LIMIT_PER_SECOND: '1000',
      METERS_DIR: meterDir,
      METER_SCHEDULE: '0 0 1 1 *',
    });
    replicas.push(await startTestService('server', env(0), { now: () => new Date(clock) }));
    replicas.push(await startTestService('server', env(2), { now: () => new Date(clock) }));
  }, 120_000);

  afterAll(async () => {
    for (const r of replicas) await r.stop();
    await emulator?.stop();
    await cluster?.stop();
    if (meterDir) await rm(meterDir, { recursive: true, force: true });
  });

  it('bills every call once: Stripe totals exact, the ledger agrees', async () => {
    const [a, b] = replicas as [TestService, TestService];
    for (let round = 0; round < ROUNDS; round++) {
      const hour = H0 + round * HOUR_MS;
      clock = hour + HOUR_MS + 10 * 60_000;
      const events = [];
      for (const [i, customer] of customers.entries()) {
        const calls = ((round * 7 + i * 3) % 11) + 1;
        for (let n = 0; n < calls; n++)
          events.push({
            id: `r${round}-${customer}-${n}`,
            timestamp: hour + n * 1000,
            company_id: customer,
            method: 'POST',
            path: '/RetrieveCreditScore',
            status: 200,
          });
        // Every third round, late calls for the hour before: a second revision of a billed hour.
        const late = round % 3 === 2 ? 2 : 0;
        for (let n = 0; n < late; n++)
          events.push({
            id: `late${round}-${customer}-${n}`,
            timestamp: hour - HOUR_MS + 60_000 + n,
            company_id: customer,
            method: 'POST',
            path: '/RetrieveCreditScore',
            status: 200,
          });
        expected.set(customer, (expected.get(customer) ?? 0) + calls + late);
      }
      const via = round % 2 === 0 ? a : b;
      const res = await fetch(`${via.url}/v1/logs`, {
        method: 'POST',
        headers: { authorization: `Bearer ${a.ingestKey}`, 'content-type': 'application/json' },
        body: JSON.stringify(events),
      });
      expect(res.status).toBe(202);
      await Promise.all([a.service.flush(), b.service.flush()]);
      emulator.faults.next('/v1/billing/meter_events', 'server_error', 1);
      emulator.faults.next('/v1/billing/meter_events', 'rate_limit', 1);
      emulator.faults.next('/v1/billing/meter_events', 'drop_after_apply', 1);
      // The hourly job (evaluation and sync, under the lease) on both at once.
      const runs = (await Promise.all([a, b].map((svc) => svc.service.runHourly()))).map((r) => r.sync);
      // One of them sent this hour's usage; the other, running after it, found it sent.
      expect(runs.filter((r) => r.sent > 0).length).toBeLessThanOrEqual(1);
    }

    // Every fault was met (three per round, at least three calls per round).
    expect(emulator.faults.pending()).toBe(0);
    const stripeTotals = new Map<string, number>();
    for (const e of emulator.state.meterEvents)
      if (!e.cancelled) stripeTotals.set(e.customerId, (stripeTotals.get(e.customerId) ?? 0) + e.value);
    expect(stripeTotals).toEqual(expected);

    // The ledger: the last state of each send, summed per Stripe customer where it took effect.
    const ledger = await a.service.clickhouse.query(
      `SELECT stripe_customer_id AS customer, toString(sum(value)) AS total FROM (
         SELECT op_id, any(stripe_customer_id) AS stripe_customer_id, any(value) AS value, argMax(state, seq) AS state
         FROM ${a.service.clickhouse.table('sync_ledger')} WHERE kind = 'send' GROUP BY op_id)
       WHERE state IN ('applied', 'duplicate') GROUP BY customer`,
      z.object({ customer: z.string(), total: z.coerce.number() }),
    );
    expect(new Map(ledger.map((r) => [r.customer, r.total]))).toEqual(expected);
    // Every intent was written under a lease.
    const [unfenced] = await a.service.clickhouse.query(
      `SELECT count() AS n FROM ${a.service.clickhouse.table('sync_ledger')} WHERE state = 'intent' AND fencing_token = 0`,
      z.object({ n: z.coerce.number() }),
    );
    expect(unfenced!.n).toBe(0);
  }, 600_000);
});

// The worked example (meters/retrieve-credit-score.yaml) from request logs to Stripe's invoice, through faults and a crash.
//
// Logs for six companies go in through the collector (below, at and across every tier boundary, with
// failed calls, other routes, duplicates and late events). The customers reach Stripe customers in all
// four ways (the key is a cus_ id; the admin API; Moesif company metadata; a signed webhook), one of
// them only after its usage was held. `billing-meter stripe push --apply` creates the meter, product and
// tiered price; the emulator subscribes each customer. Hourly runs (evaluate + sync) go on while the
// emulator answers 429, 500, drops a connection after applying an event, and a `billing-meter sync run`
// process is SIGKILLed mid-sync and the service restarted. At the end each customer's upcoming invoice
// in the emulator (its own tier math) equals the service's estimate to the cent and the hand-computed
// amount, reconciliation (`billing-meter stripe reconcile`) finds no mismatch, and the status API
// follows a failed payment.
//
// The server engine only: the crash runs the CLI as a second process on the same database, which the
// embedded engine (one process per data directory) cannot do. The sync itself is tested on both
// engines in test/integration/billing/.
import { spawn } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, type Config } from '../../src/config.ts';
import { periodStart } from '../../src/time/billing-period.ts';
import { floorHour, HOUR_MS } from '../../src/time/hours.ts';
import { startService, type RunningService } from '../../src/main.ts';
import { testEnv, TEST_ADMIN_KEY } from '../support/service.ts';
import { startStripeEmulator, type StripeEmulator } from '../support/stripe-emulator/index.ts';

const BIN = fileURLToPath(new URL('../../bin/billing-meter.js', import.meta.url));
const METER_FILE = fileURLToPath(new URL('../../meters/retrieve-credit-score.yaml', import.meta.url));
const EVENTS_PATH = '/v1/billing/meter_events';

/**
 * The hour after the last log hour. Five hours before it and ten minutes after it stay inside one
 * calendar month (the billing period), whatever day the suite runs.
 */
function endHour(): number {
  const now = floorHour(new Date()).getTime();
  return now - periodStart(new Date(now)).getTime() < 6 * HOUR_MS
    ? periodStart(new Date(now)).getTime() - HOUR_MS
    : now;
}

const E = endHour();
const HOURS = [E - 5 * HOUR_MS, E - 4 * HOUR_MS, E - 3 * HOUR_MS, E - 2 * HOUR_MS, E - HOUR_MS];

/** Successful /RetrieveCreditScore calls per company in the month, and what they cost (cents). */
const PLAN = {
  acme: { calls: 60, cents: 60 * 500 }, // inside tier 1
  globex: { calls: 100, cents: 100 * 500 }, // at the first boundary
  initech: { calls: 101, cents: 100 * 500 + 300 }, // one unit across it
  umbrella: { calls: 1000, cents: 100 * 500 + 900 * 300 }, // at the second boundary
  hooli: { calls: 1001, cents: 100 * 500 + 900 * 300 + 200 }, // across it
  stark: { calls: 1500, cents: 420_000 }, // the worked example: $4,200.00
} as const;
type Company = keyof typeof PLAN;

interface Log {
  id: string;
  timestamp: number;
  company_id: string;
  user_id: string;
  method: string;
  path: string;
  status: number;
}

describe('Stripe billing of the worked example, through faults and a crash (server engine)', () => {
  let clock = E - 5 * HOUR_MS;
  const now = () => new Date(clock);
  let emulator: StripeEmulator;
  let stripe: Stripe;
  let env: Record<string, string>;
  let config: Config;
  let service: RunningService;
  let ingestKey: string;
  let webhookEndpoint: string;
  const customers = {} as Record<Company, string>;
  /** The customer key each company's logs carry: stark's is its Stripe customer id. */
  const keyOf = (c: Company) => (c === 'stark' ? customers.stark : c);
  const lateLogs: Log[] = [];
  /** Logs of hours still open at the first sync: they arrive later (see 'takes the logs'). */
  const laterLogs: Log[] = [];
  let meterDir: string;

  const start = async () => {
    service = await startService(config, pino({ level: 'silent' }), { now });
    await stripe.webhookEndpoints.update(webhookEndpoint, { url: `${service.url}/v1/webhooks/stripe` });
  };
  const admin = (path: string, init: RequestInit = {}) =>
    fetch(`${service.url}${path}`, {
      ...init,
      headers: {
        authorization: `Bearer ${TEST_ADMIN_KEY}`,
        'content-type': 'application/json',
        ...(init.headers ?? {}),
      },
    });
  const post = async (path: string, body: unknown, expected: number) => {
    const res = await fetch(`${service.url}${path}`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${ingestKey}`,
        'x-moesif-application-id': ingestKey,
        'content-type': 'application/json',
      },
      body: JSON.stringify(body),
    });
    expect(res.status, await res.clone().text()).toBe(expected);
    await service.flush();
  };
  const cli = (args: string[], extra: Record<string, string> = {}) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env: { ...process.env, ...env, ...extra },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const done = new Promise<{
      code: number | null;
      signal: NodeJS.Signals | null;
      stdout: string;
      stderr: string;
    }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal, stdout, stderr })));
    return { child, done };
  };

  beforeAll(async () => {
    emulator = await startStripeEmulator({ clock: () => clock });
    stripe = new Stripe('sk_test_e2e', { ...emulator.stripeOptions(), maxNetworkRetries: 2 });
    const endpoint = await stripe.webhookEndpoints.create({
      url: 'http://127.0.0.1:9/',
      enabled_events: ['*'],
    });
    webhookEndpoint = endpoint.id;
    meterDir = await mkdtemp(join(tmpdir(), 'bm-e2e-meters-'));
    await mkdir(meterDir, { recursive: true });
    await copyFile(METER_FILE, join(meterDir, 'retrieve-credit-score.yaml'));
    env = await testEnv('server', {
      STRIPE_SECRET_KEY: 'sk_test_e2e',
      STRIPE_API_BASE: emulator.url,
      STRIPE_WEBHOOK_SECRET: endpoint.secret!,
      METERS_DIR: meterDir,
      // The schedule never fires during the test: runs are driven by the test's clock.
      METER_SCHEDULE: '0 0 1 1 *',
    });
    config = loadConfig(env);
    await start();
    ingestKey = (await service.keys.create('e2e')).key;

    // Stark's customer key is its Stripe customer id; the others are created later, each its own way.
    customers.stark = (await stripe.customers.create({ name: 'Stark' })).id;
    for (const c of ['acme', 'globex', 'initech', 'umbrella'] as const) {
      const metadata: Record<string, string> = c === 'umbrella' ? { billing_meter_customer: 'umbrella' } : {};
      customers[c] = (await stripe.customers.create({ name: c, metadata })).id;
    }
  }, 60_000);

  afterAll(async () => {
    await service?.clickhouse
      .command(`DROP DATABASE IF EXISTS ${service.clickhouse.database}`)
      .catch(() => undefined);
    await service?.stop();
    await emulator?.stop();
    await rm(env.DATA_DIR!, { recursive: true, force: true });
    await rm(meterDir, { recursive: true, force: true });
  });

  it('pushes the meter, product and tiered price; a second push changes nothing', async () => {
    const plan = cli(['stripe', 'push']);
    const planned = await plan.done;
    expect(planned.code, planned.stderr).toBe(0);
    expect(planned.stdout).toMatch(/plan only/);
    const apply = await cli(['stripe', 'push', '--apply']).done;
    expect(apply.code, apply.stderr).toBe(0);
    const again = await cli(['stripe', 'push']).done;
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/nothing to change/);
    const [price] = (await stripe.prices.list({ lookup_keys: ['billing-meter:retrieve-credit-score'] })).data;
    expect(price).toMatchObject({
      lookup_key: 'billing-meter:retrieve-credit-score',
      active: true,
      currency: 'usd',
      billing_scheme: 'tiered',
      tiers_mode: 'graduated',
      recurring: { interval: 'month', usage_type: 'metered' },
    });
    for (const c of Object.keys(PLAN) as Company[]) {
      if (c === 'hooli') continue; // subscribed once it exists
      await stripe.subscriptions.create({ customer: customers[c], items: [{ price: price!.id }] });
    }
  }, 120_000);

  it('takes the logs: every tier boundary, failures, other routes, duplicates', async () => {
    const logs: Log[] = [];
    for (const c of Object.keys(PLAN) as Company[]) {
      for (let i = 0; i < PLAN[c].calls; i++) {
        const hour = HOURS[i % 4]!; // the fifth hour only gets late and noise calls
        const log = {
          id: `${c}-ok-${i}`,
          timestamp: hour + ((i * 7919) % HOUR_MS),
          company_id: keyOf(c),
          user_id: `u${i % 5}`,
          method: 'POST',
          path: '/RetrieveCreditScore',
          status: 200,
        };
        // Every 10th call of the second hour arrives late, after that hour was first billed.
        if (hour === HOURS[1] && i % 10 === 0) lateLogs.push(log);
        else logs.push(log);
      }
      for (let i = 0; i < 40; i++) {
        const hour = HOURS[i % 5]!;
        logs.push({
          id: `${c}-fail-${i}`,
          timestamp: hour + i * 1000,
          company_id: keyOf(c),
          user_id: 'u1',
          method: 'POST',
          path: '/RetrieveCreditScore',
          status: [500, 404, 429, 401][i % 4]!,
        });
        logs.push({
          id: `${c}-other-${i}`,
          timestamp: hour + i * 1000,
          company_id: keyOf(c),
          user_id: 'u1',
          method: 'POST',
          path: '/RetrieveCreditReport',
          status: 200,
        });
      }
    }
    // The logs arrive as their hours go by: by the first sync (ten minutes into the fourth hour) those up
    // to then; the rest come with the late ones. The service takes no event more than 5 minutes ahead of
    // its clock.
    clock = HOURS[3]! + 10 * 60_000;
    const arrived = logs.filter((l) => l.timestamp <= clock);
    laterLogs.push(...logs.filter((l) => l.timestamp > clock));
    for (let i = 0; i < arrived.length; i += 1000) await post('/v1/logs', arrived.slice(i, i + 1000), 202);
    // A retried batch: the same events again. Counted once.
    await post('/v1/logs', arrived.slice(0, 500), 202);
    // Initech reaches its Stripe customer through Moesif company metadata.
    await post(
      '/v1/companies',
      { company_id: 'initech', metadata: { stripe_customer_id: customers.initech } },
      201,
    );
    // Acme and globex through the admin API.
    for (const c of ['acme', 'globex'] as const) {
      const res = await admin(`/v1/admin/customers/${c}/stripe-customer`, {
        method: 'PUT',
        body: JSON.stringify({ stripe_customer_id: customers[c] }),
      });
      expect(res.status, await res.text()).toBe(200);
    }
    // Umbrella's mapping came with the customer.created webhook.
    await emulator.webhooksSettled();
    const status = await (await admin('/v1/customers/umbrella/status')).json();
    expect(status).toMatchObject({ status: 'ok', stripe_customer_id: customers.umbrella });
  }, 60_000);

  it('syncs the first closed hours through 429s, a 500 and a dropped connection; holds the unmapped customer', async () => {
    clock = HOURS[3]! + 10 * 60_000; // hours 0..2 are closed
    emulator.faults.next(EVENTS_PATH, 'rate_limit', 2);
    emulator.faults.next(EVENTS_PATH, 'server_error', 1);
    emulator.faults.next(EVENTS_PATH, 'drop_after_apply', 1);
    const { sync } = await service.runHourly();
    expect(sync).toMatchObject({ aborted: false, dryRun: false, rejected: 0 });
    expect(sync.duplicates).toBeGreaterThanOrEqual(1); // the dropped answer, resent
    expect(emulator.faults.pending()).toBe(0);
    const held = (await (await admin('/v1/sync/held')).json()) as { data: unknown[] };
    expect(held.data).toEqual([
      expect.objectContaining({ customer: 'hooli', meter: 'retrieve-credit-score', hours: 3 }),
    ]);
  }, 120_000);

  it('bills late events, and survives a sync process killed mid-run and a restarted service', async () => {
    // Hooli becomes a Stripe customer (mapped by its webhook) and subscribes.
    customers.hooli = (
      await stripe.customers.create({ name: 'hooli', metadata: { billing_meter_customer: 'hooli' } })
    ).id;
    const [price] = (await stripe.prices.list({ lookup_keys: ['billing-meter:retrieve-credit-score'] })).data;
    await stripe.subscriptions.create({ customer: customers.hooli, items: [{ price: price!.id }] });
    await emulator.webhooksSettled();

    clock = E + 10 * 60_000; // every hour closed
    const rest = [...lateLogs, ...laterLogs];
    for (let i = 0; i < rest.length; i += 1000) await post('/v1/logs', rest.slice(i, i + 1000), 202);
    await service.evaluation.run(service.meters);
    // A sync process dies mid-run: slow answers, and it is killed after its third meter event call.
    emulator.setLatency(150);
    const before = emulator.requests.filter((r) => r.path === EVENTS_PATH).length;
    emulator.faults.next(EVENTS_PATH, 'drop_after_apply', 1);
    const killed = cli(['sync', 'run']);
    await new Promise<void>((resolve, reject) => {
      const deadline = Date.now() + 60_000;
      const poll = setInterval(() => {
        if (emulator.requests.filter((r) => r.path === EVENTS_PATH).length - before >= 3) {
          clearInterval(poll);
          killed.child.kill('SIGKILL');
          resolve();
        } else if (Date.now() > deadline) {
          clearInterval(poll);
          reject(new Error('the sync process made no calls'));
        }
      }, 5);
    });
    const exit = await killed.done;
    expect(exit.signal).toBe('SIGKILL');
    emulator.setLatency(0);

    // The service "crashes" too and comes back on the same database and data directory.
    await service.stop();
    await start();
    emulator.faults.next(EVENTS_PATH, 'server_error', 1);
    const { sync } = await service.runHourly();
    expect(sync).toMatchObject({ aborted: false, rejected: 0, held: [] });
    // Nothing left to do.
    const again = await service.runHourly();
    expect(again.sync).toMatchObject({ sent: 0, duplicates: 0, cancelled: 0, keysChecked: 0 });
    const metrics = await (await fetch(`${service.url}/metrics`)).text();
    expect(metrics).toMatch(/billing_meter_stripe_sync_operations_total\{outcome="sent"\} [1-9]/);
    expect(metrics).toMatch(/billing_meter_stripe_sync_runs_total\{result="ok"\} 2/);
    expect(metrics).toMatch(/billing_meter_stripe_sync_held_customers 0/);
  }, 180_000);

  it("gives each customer an upcoming invoice equal to the service's estimate, to the cent", async () => {
    for (const c of Object.keys(PLAN) as Company[]) {
      const preview = await stripe.invoices.createPreview({ customer: customers[c] });
      const estimate = (await (
        await admin(`/v1/customers/${encodeURIComponent(keyOf(c))}/usage`)
      ).json()) as {
        meters: { meter: string; quantity: string; cost: { amount_minor: number } }[];
      };
      const mine = estimate.meters.find((m) => m.meter === 'retrieve-credit-score')!;
      expect({
        company: c,
        quantity: mine.quantity,
        estimate: mine.cost.amount_minor,
        invoice: preview.total,
      }).toEqual({
        company: c,
        quantity: String(PLAN[c].calls),
        estimate: PLAN[c].cents,
        invoice: PLAN[c].cents,
      });
    }
  }, 60_000);

  it('reconciles with zero mismatches and no discrepancies', async () => {
    const from = new Date(periodStart(new Date(E - HOUR_MS))).toISOString();
    const to = new Date(E).toISOString();
    const result = await cli(['stripe', 'reconcile', '--from', from, '--to', to, '--json']).done;
    expect(result.code, result.stderr + result.stdout).toBe(0);
    const report = JSON.parse(result.stdout) as {
      mismatches: number;
      lines: { customer: string; status: string }[];
    };
    expect(report.mismatches).toBe(0);
    expect(report.lines).toHaveLength(6);
    const open = (await (await admin('/v1/sync/discrepancies')).json()) as { data: unknown[] };
    expect(open.data).toEqual([]);
  }, 60_000);

  it('reports a customer unpaid after a failed payment, and an unknown one unmapped', async () => {
    emulator.payInvoice(customers.acme, { succeed: false });
    await emulator.webhooksSettled();
    expect(await (await admin('/v1/customers/acme/status')).json()).toMatchObject({ status: 'unpaid' });
    emulator.payInvoice(customers.acme, { succeed: true });
    await emulator.webhooksSettled();
    expect(await (await admin('/v1/customers/acme/status')).json()).toMatchObject({ status: 'ok' });
    expect(await (await admin('/v1/customers/nobody/status')).json()).toMatchObject({ status: 'unmapped' });
  }, 60_000);
});

// Onboarding against the Stripe emulator: a customer key subscribed by email (the Stripe customer is
// created) and one with an existing Stripe customer, each to the pushed metered price with the cycle
// anchored on the 1st; then a month's usage synced, and the emulator's invoice preview equals the
// service's estimate to the cent. The test's clock drives the service and the emulator alike.
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, type Config } from '../../src/config.ts';
import { startService, type RunningService } from '../../src/main.ts';
import { buildServices } from '../../src/services.ts';
import { periodEnd, periodStart } from '../../src/time/billing-period.ts';
import { floorHour, HOUR_MS } from '../../src/time/hours.ts';
import { runCli } from '../support/cli.ts';
import { testEnv, TEST_ADMIN_KEY } from '../support/service.ts';
import { startStripeEmulator, type StripeEmulator } from '../support/stripe-emulator/index.ts';

const METER_FILE = fileURLToPath(new URL('../../meters/retrieve-credit-score.yaml', import.meta.url));

/** As in stripe-billing.e2e: five closed hours before E and ten minutes after it stay in one month. */
function endHour(): number {
  const now = floorHour(new Date()).getTime();
  return now - periodStart(new Date(now)).getTime() < 6 * HOUR_MS
    ? periodStart(new Date(now)).getTime() - HOUR_MS
    : now;
}
const E = endHour();

const PLAN = {
  acme: { calls: 1500, cents: 420_000 }, // the worked example: $4,200.00
  globex: { calls: 101, cents: 100 * 500 + 300 },
  initech: { calls: 1001, cents: 100 * 500 + 900 * 300 + 200 }, // through Checkout
} as const;

describe('onboarding customers to Stripe (server engine)', () => {
  let clock = E - 5 * HOUR_MS - 60_000;
  const now = () => new Date(clock);
  let emulator: StripeEmulator;
  let stripe: Stripe;
  let env: Record<string, string>;
  let config: Config;
  let service: RunningService;
  let metersDir: string;
  const stripeIds: Record<string, string> = {};
  let webhookEndpoint: string;
  const admin = (path: string, init: RequestInit = {}) =>
    fetch(`${service.url}${path}`, {
      ...init,
      headers: { authorization: `Bearer ${TEST_ADMIN_KEY}`, 'content-type': 'application/json' },
    });

  beforeAll(async () => {
    emulator = await startStripeEmulator({ clock: () => clock });
    stripe = new Stripe('sk_test_e2e', { ...emulator.stripeOptions(), maxNetworkRetries: 2 });
    const endpoint = await stripe.webhookEndpoints.create({
      url: 'http://127.0.0.1:9/',
      enabled_events: ['*'],
    });
    webhookEndpoint = endpoint.id;
    metersDir = await mkdtemp(join(tmpdir(), 'bm-onboarding-meters-'));
    await copyFile(METER_FILE, join(metersDir, 'retrieve-credit-score.yaml'));
    env = await testEnv('server', {
      STRIPE_SECRET_KEY: 'sk_test_e2e',
      STRIPE_API_BASE: emulator.url,
      STRIPE_WEBHOOK_SECRET: endpoint.secret!,
      METERS_DIR: metersDir,
      METER_SCHEDULE: '0 0 1 1 *',
    });
    config = loadConfig(env);
  }, 60_000);

  afterAll(async () => {
    await service?.stop();
    await emulator?.stop();
    await rm(env.DATA_DIR!, { recursive: true, force: true });
    await rm(metersDir, { recursive: true, force: true });
  });

  it('refuses to subscribe before the prices are pushed, and bad arguments', async () => {
    const both = await runCli(
      ['customers', 'subscribe', 'acme', '--email', 'a@b.c', '--stripe-customer', 'cus_1'],
      env,
    );
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('exactly one of --stripe-customer');
    const badId = await runCli(['customers', 'subscribe', 'acme', '--stripe-customer', 'acme'], env);
    expect(badId.code).toBe(2);
    expect(badId.stderr).toContain("'acme' is not a Stripe customer id");
    const early = await runCli(['customers', 'subscribe', 'acme', '--email', 'billing@acme.test'], env);
    expect(early.code).toBe(1);
    expect(early.stderr).toContain('stripe push --apply');
  }, 60_000);

  it('subscribes by email (creating the customer) and by Stripe id, anchored on the 1st; again: nothing new', async () => {
    const pushed = await runCli(['stripe', 'push', '--apply'], env);
    expect(pushed.code, pushed.stderr).toBe(0);
    stripeIds.globex = (await stripe.customers.create({ name: 'Globex' })).id;

    const s = await buildServices(config, { now, migrate: 'eager', command: 'test' });
    try {
      const acme = await s.stripe.onboarding!.subscribe('acme', { email: 'billing@acme.test' });
      const globex = await s.stripe.onboarding!.subscribe('globex', { stripeCustomerId: stripeIds.globex });
      stripeIds.acme = acme.stripeCustomerId;
      expect(acme).toMatchObject({
        createdCustomer: true,
        billingCycleAnchor: periodEnd(now()).toISOString(),
      });
      expect(globex).toMatchObject({ createdCustomer: false, stripeCustomerId: stripeIds.globex });
      const again = await s.stripe.onboarding!.subscribe('acme', { email: 'billing@acme.test' });
      expect(again).toMatchObject({
        stripeCustomerId: acme.stripeCustomerId,
        createdCustomer: false,
        subscriptionId: undefined,
        subscribedPrices: [],
        alreadySubscribed: acme.subscribedPrices,
      });
      expect((await s.stripe.billing.mappings.get('acme'))?.stripeCustomerId).toBe(acme.stripeCustomerId);
    } finally {
      await s.close();
    }
    const customer = (await stripe.customers.retrieve(stripeIds.acme!)) as Stripe.Customer;
    expect(customer).toMatchObject({
      email: 'billing@acme.test',
      metadata: { billing_meter_customer: 'acme' },
    });
    for (const c of ['acme', 'globex']) {
      const subs = (await stripe.subscriptions.list({ customer: stripeIds[c] })).data;
      expect(subs).toHaveLength(1);
      expect(subs[0]!.billing_cycle_anchor).toBe(Math.floor(periodEnd(now()).getTime() / 1000));
      expect(subs[0]!.items.data.map((i) => i.price.lookup_key)).toEqual([
        'billing-meter:retrieve-credit-score',
      ]);
    }
  }, 120_000);

  it('creates a Checkout session for a key; checkout.session.completed maps the customer Stripe made', async () => {
    service = await startService(config, pino({ level: 'silent' }), { now });
    await stripe.webhookEndpoints.update(webhookEndpoint, { url: `${service.url}/v1/webhooks/stripe` });
    const bad = await admin('/v1/admin/checkout-sessions', {
      method: 'POST',
      body: JSON.stringify({ customer: 'initech', success_url: 'ftp://x' }),
    });
    expect(bad.status).toBe(400);
    expect(await bad.text()).toContain('success_url');
    const res = await admin('/v1/admin/checkout-sessions', {
      method: 'POST',
      body: JSON.stringify({
        customer: 'initech',
        email: 'billing@initech.test',
        success_url: 'https://initech.test/welcome',
      }),
    });
    const created = (await res.json()) as { id: string; url: string; billing_cycle_anchor: string };
    expect(res.status, JSON.stringify(created)).toBe(201);
    expect(created).toMatchObject({
      id: expect.stringMatching(/^cs_/),
      url: expect.stringContaining(created.id),
    });
    expect(created.billing_cycle_anchor).toBe(periodEnd(now()).toISOString());
    const session = await stripe.checkout.sessions.retrieve(created.id);
    expect(session).toMatchObject({ mode: 'subscription', status: 'open', client_reference_id: 'initech' });

    const completed = emulator.completeCheckoutSession(created.id);
    stripeIds.initech = String(completed.customer);
    await emulator.webhooksSettled();
    const mapping = await admin('/v1/admin/customers/initech/stripe-customer');
    expect(mapping.status).toBe(200);
    expect(await mapping.json()).toMatchObject({ stripe_customer_id: stripeIds.initech, source: 'webhook' });
    const [sub] = (await stripe.subscriptions.list({ customer: stripeIds.initech })).data;
    expect(sub!.billing_cycle_anchor).toBe(Math.floor(periodEnd(now()).getTime() / 1000));
  }, 60_000);

  it("bills a month's usage: the invoice preview equals the estimate, to the cent", async () => {
    const ingestKey = (await service.keys.create('onboarding')).key;
    clock = E + 10 * 60_000;
    for (const [company, { calls }] of Object.entries(PLAN)) {
      const logs = Array.from({ length: calls }, (_, i) => ({
        id: `${company}-${i}`,
        timestamp: E - 5 * HOUR_MS + ((i * 7919) % (5 * HOUR_MS)),
        company_id: company,
        method: 'POST',
        path: '/RetrieveCreditScore',
        status: 200,
      }));
      const res = await fetch(`${service.url}/v1/logs`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ingestKey}`, 'content-type': 'application/json' },
        body: JSON.stringify(logs),
      });
      expect(res.status, await res.text()).toBe(202);
    }
    await service.flush();
    const { sync } = await service.runHourly();
    expect(sync).toMatchObject({ aborted: false, rejected: 0, held: [] });
    for (const [company, { calls, cents }] of Object.entries(PLAN)) {
      const preview = await stripe.invoices.createPreview({ customer: stripeIds[company]! });
      const estimate = (await (
        await fetch(`${service.url}/v1/customers/${company}/usage`, {
          headers: { authorization: `Bearer ${TEST_ADMIN_KEY}` },
        })
      ).json()) as { meters: { meter: string; quantity: string; cost: { amount_minor: number } }[] };
      const mine = estimate.meters.find((m) => m.meter === 'retrieve-credit-score')!;
      expect({
        company,
        quantity: mine.quantity,
        estimate: mine.cost.amount_minor,
        invoice: preview.total,
      }).toEqual({
        company,
        quantity: String(calls),
        estimate: cents,
        invoice: cents,
      });
    }
  }, 180_000);
});

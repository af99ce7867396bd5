// The governance scenario both enforcers are tested with (moesif-nodejs in Express, our middleware in
// Koa): a service with a quota meter and two rules, the Stripe emulator sending it signed webhooks, and
// four companies: one whose invoice payment fails, one that goes over quota, two that never get blocked.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Stripe from 'stripe';
import type { Engine } from '../support/clickhouse.ts';
import { startTestService, type TestService } from '../support/service.ts';
import { startStripeEmulator, type StripeEmulator } from '../support/stripe-emulator/index.ts';

export const QUOTA = 3;

const METER = `name: score-calls
description: Successful score lookups.
filter: {routes: [/score], status: 200}
aggregation: {type: count}
customer: company_id
unit: calls
quota: ${QUOTA}
`;
const UNPAID_RULE = `name: unpaid
applies_to: {status: unpaid}
response:
  body: {error: payment_required, customer: '{{customer}}'}
`;
const QUOTA_RULE = `name: over-quota
applies_to: {status: over_quota, meter: score-calls}
when: {routes: [/score], methods: [GET]}
response:
  headers: {X-Quota-Meter: '{{meter}}'}
  body: {error: quota_exceeded, message: '{{customer}} used {{usage}} of {{quota}} {{meter}}'}
`;

export interface GovernanceScenario {
  svc: TestService;
  emulator: StripeEmulator;
  /** The service's GOVERNANCE_DIR. */
  rulesDir: string;
  /** Fails (or pays) the invoice of the company `late`: the emulator sends the signed webhooks. */
  invoice(succeed: boolean): Promise<void>;
  stop(): Promise<void>;
}

export async function startGovernanceScenario(engine: Engine): Promise<GovernanceScenario> {
  const dir = await mkdtemp(join(tmpdir(), 'bm-governance-'));
  await writeFile(join(dir, 'score-calls.yaml'), METER);
  const rulesDir = join(dir, 'governance');
  const { mkdir } = await import('node:fs/promises');
  await mkdir(rulesDir);
  await writeFile(join(rulesDir, '10-unpaid.yaml'), UNPAID_RULE);
  await writeFile(join(rulesDir, '20-over-quota.yaml'), QUOTA_RULE);

  const emulator = await startStripeEmulator();
  const stripe = new Stripe('sk_test_governance', { ...emulator.stripeOptions(), maxNetworkRetries: 2 });
  const endpoint = await stripe.webhookEndpoints.create({
    url: 'http://127.0.0.1:9/',
    enabled_events: ['*'],
  });
  const svc = await startTestService(engine, {
    METERS_DIR: dir,
    GOVERNANCE_DIR: rulesDir,
    GOVERNANCE_USAGE_REFRESH_MS: '200',
    STRIPE_SECRET_KEY: 'sk_test_governance',
    STRIPE_API_BASE: emulator.url,
    STRIPE_WEBHOOK_SECRET: endpoint.secret!,
    METER_SCHEDULE: '0 0 1 1 *',
  });
  await stripe.webhookEndpoints.update(endpoint.id, { url: `${svc.url}/v1/webhooks/stripe` });

  // Each company is mapped by its Stripe customer's metadata (customer.created webhook) and subscribed.
  const product = await stripe.products.create({ name: 'API' });
  const price = await stripe.prices.create({
    product: product.id,
    currency: 'usd',
    unit_amount: 1000,
    recurring: { interval: 'month' },
  });
  const ids: Record<string, string> = {};
  for (const company of ['late', 'heavy', 'good', 'other']) {
    const customer = await stripe.customers.create({
      name: company,
      metadata: { billing_meter_customer: company },
    });
    ids[company] = customer.id;
    await stripe.subscriptions.create({ customer: customer.id, items: [{ price: price.id }] });
  }
  await emulator.webhooksSettled();

  return {
    svc,
    emulator,
    rulesDir,
    async invoice(succeed) {
      emulator.payInvoice(ids.late!, { succeed });
      await emulator.webhooksSettled();
    },
    async stop() {
      await svc.stop();
      await emulator.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Calls `call` until `done` holds of its answer (or the deadline): how an enforcer's refresh is awaited. */
export async function callUntil<T>(
  call: () => Promise<T>,
  done: (answer: T) => boolean,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const answer = await call();
    if (done(answer) || Date.now() > deadline) return answer;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

// The governance scenario both enforcers are tested with (moesif-nodejs in Express, our middleware in
// Koa): a service with a quota meter and two rules, the Stripe emulator sending it signed webhooks, and
// four companies: one whose invoice payment fails, one that goes over quota, two that never get blocked.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Stripe from 'stripe';
import { expect } from 'vitest';
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

export interface ScenarioAnswer {
  status: number;
  body: unknown;
  /** The X-Quota-Meter header the over-quota rule sets. */
  meter: string | null;
}

/**
 * Calls the governed API as a company. Only `heavy` calls the metered /score; the others call /profile,
 * which no meter counts, so however many calls the waiting loops make, only `heavy` can go over quota.
 * `served` keeps the statuses that `good` and `other` were answered with: they must never be blocked.
 */
export function companyCaller(apiUrl: () => string) {
  const served: Record<'good' | 'other', number[]> = { good: [], other: [] };
  const call = async (company: string): Promise<ScenarioAnswer> => {
    const res = await fetch(`${apiUrl()}/${company === 'heavy' ? 'score' : 'profile'}`, {
      headers: { 'x-company-id': company },
    });
    const answer = {
      status: res.status,
      body: (await res.json()) as unknown,
      meter: res.headers.get('x-quota-meter'),
    };
    if (company === 'good' || company === 'other') served[company].push(answer.status);
    return answer;
  };
  return { call, served };
}

type Call = ReturnType<typeof companyCaller>['call'];

/** `late` gets 402 once its invoice payment failed, and is served again after invoice.paid. */
export async function expectPaymentBlockThenRelease(scenario: GovernanceScenario, call: Call): Promise<void> {
  expect((await call('late')).status).toBe(200);
  await scenario.invoice(false);
  const blocked = await callUntil(
    () => call('late'),
    (a) => a.status === 402,
  );
  expect(blocked).toEqual({
    status: 402,
    body: { error: 'payment_required', customer: 'late' },
    meter: null,
  });
  expect((await call('good')).status).toBe(200);
  await scenario.invoice(true);
  const servedAgain = await callUntil(
    () => call('late'),
    (a) => a.status === 200,
  );
  expect(servedAgain).toEqual({ status: 200, body: { score: 742 }, meter: null });
}

/**
 * `heavy` gets 429 with the merge tags filled in once over quota (calls made before the block reached
 * the enforcer count too: at least the quota); `good` and `other` never are blocked.
 */
export async function expectQuotaBlock({ call, served }: ReturnType<typeof companyCaller>): Promise<void> {
  for (let i = 0; i < QUOTA; i++) expect((await call('heavy')).status).toBe(200);
  const blocked = await callUntil(
    async () => {
      await call('other');
      return call('heavy');
    },
    (a) => a.status === 429,
  );
  expect(blocked).toEqual({
    status: 429,
    body: {
      error: 'quota_exceeded',
      message: expect.stringMatching(new RegExp(`^heavy used \\d+ of ${QUOTA} score-calls$`)),
    },
    meter: 'score-calls',
  });
  const used = Number(/used (\d+)/.exec((blocked.body as { message: string }).message)?.[1]);
  expect(used).toBeGreaterThanOrEqual(QUOTA);
  expect((await call('good')).status).toBe(200);
  expect(served.good.length).toBeGreaterThan(0);
  expect(served.other.length).toBeGreaterThan(0);
  expect([...served.good, ...served.other].every((s) => s === 200)).toBe(true);
}

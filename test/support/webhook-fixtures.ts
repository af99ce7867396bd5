// Stripe events as Stripe sends them (API 2026-10-28.endive), signed by the real SDK, and the service's
// Koa app with only the Stripe side wired, for the billing unit and integration tests.
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { once } from 'node:events';
import { pino } from 'pino';
import Stripe from 'stripe';
import { BillingStatusService } from '../../src/billing/stripe/billing-status.ts';
import { CustomerMappingService } from '../../src/billing/stripe/customer-directory.ts';
import {
  InMemoryBillingStateStore,
  InMemoryCustomerIndex,
  InMemoryCustomerMappingStore,
  InMemoryWebhookEventStore,
} from '../../src/billing/stripe/in-memory-billing-stores.ts';
import { StripeWebhookService } from '../../src/billing/stripe/webhooks.ts';
import { createApp, type AppDeps } from '../../src/http/app.ts';
import { createMetrics } from '../../src/http/metrics.ts';
import type { StripeRouteDeps } from '../../src/http/routes/stripe-routes.ts';

export const WEBHOOK_SECRET = 'whsec_test_0123456789abcdefghijklmnopqrstuv';
export const ADMIN_KEY = 'test-admin-key-0123456789abcdef0123456789';

const sdk = new Stripe('sk_test_fixtures');

/** The Stripe-Signature header the official SDK computes. */
export function sdkSignature(payload: string, timestamp: number, secret = WEBHOOK_SECRET): string {
  return sdk.webhooks.generateTestHeaderString({ payload, secret, timestamp });
}

let counter = 0;

export function stripeEvent(
  type: string,
  object: Record<string, unknown>,
  opts: { created: number; id?: string; previousAttributes?: Record<string, unknown> },
): Record<string, unknown> {
  counter += 1;
  return {
    id: opts.id ?? `evt_test${counter}${Math.random().toString(36).slice(2, 10)}`,
    object: 'event',
    api_version: '2026-10-28.endive',
    created: opts.created,
    data: { object, ...(opts.previousAttributes ? { previous_attributes: opts.previousAttributes } : {}) },
    livemode: false,
    pending_webhooks: 1,
    request: { id: null, idempotency_key: null },
    type,
  };
}

export function customerObject(id: string, metadata: Record<string, string> = {}): Record<string, unknown> {
  return {
    id,
    object: 'customer',
    created: 1_790_000_000,
    email: 'billing@example.com',
    livemode: false,
    metadata,
  };
}

/** On API 2026 the period lives on the items; `ownPeriod` puts it on the subscription (older APIs). */
export function subscriptionObject(o: {
  id: string;
  customer: string | { id: string; object: 'customer' };
  status: string;
  itemPeriods?: [number, number][];
  ownPeriod?: [number, number];
}): Record<string, unknown> {
  return {
    id: o.id,
    object: 'subscription',
    customer: o.customer,
    status: o.status,
    items: {
      object: 'list',
      data: (o.itemPeriods ?? []).map(([start, end], i) => ({
        id: `si_${i}${o.id}`,
        object: 'subscription_item',
        current_period_start: start,
        current_period_end: end,
      })),
      has_more: false,
    },
    ...(o.ownPeriod ? { current_period_start: o.ownPeriod[0], current_period_end: o.ownPeriod[1] } : {}),
  };
}

export function invoiceObject(
  id: string,
  customer: string,
  status: 'paid' | 'open' = 'open',
): Record<string, unknown> {
  return { id, object: 'invoice', customer, status, amount_due: 420000, currency: 'usd' };
}

/** The Stripe side over in-memory stores, with no webhook secret and no meters. */
export function inMemoryStripeSide(): Omit<StripeRouteDeps, 'adminApiKey'> {
  const states = new InMemoryBillingStateStore();
  const mappings = new CustomerMappingService(new InMemoryCustomerMappingStore());
  return {
    mappings,
    webhooks: new StripeWebhookService({
      events: new InMemoryWebhookEventStore(),
      states,
      mappings,
      secret: undefined,
      toleranceSeconds: 300,
      logger: pino({ level: 'silent' }),
    }),
    status: new BillingStatusService({
      directory: mappings,
      states,
      usage: { customersPeriod: async () => [] },
      meters: [],
      customers: new InMemoryCustomerIndex(),
    }),
  };
}

/** The app's deps with stand-ins that throw for everything but the Stripe side. */
export function stubAppDeps(
  stripe: Omit<StripeRouteDeps, 'adminApiKey'>,
  logger: AppDeps['logger'] = pino({ level: 'silent' }),
): AppDeps {
  const notWired = (what: string) => () => Promise.reject(new Error(`${what} is not wired in this test`));
  const deps: AppDeps = {
    ingest: { ingestBody: notWired('ingest') },
    moesifRecords: { ingestRecords: notWired('Moesif records') },
    keys: {
      authenticate: async () => undefined,
      create: notWired('keys.create'),
      refresh: notWired('keys.refresh'),
      list: () => [],
      revoke: notWired('keys.revoke'),
    },
    readiness: {
      clickhouseReachable: async () => true,
      spoolHasRoom: () => true,
      spoolBytes: () => new Map(),
    },
    metrics: createMetrics(),
    limits: { maxBodyBytes: 1024 * 1024, maxEventBytes: 64 * 1024 },
    adminApiKey: ADMIN_KEY,
    flush: async () => undefined,
    recentLogs: async () => [],
    meters: {
      meters: [],
      versions: async () => [],
      usage: {
        currentPeriod: () => {
          throw new Error('usage is not wired in this test');
        },
        usage: notWired('usage'),
        customerPeriod: notWired('usage'),
      },
      runScheduled: () => Promise.reject(new Error('not wired in this test')),
      evaluateRange: () => Promise.reject(new Error('not wired in this test')),
      latestRun: async () => undefined,
      latenessHours: 48,
    },
    logger,
    stripe,
  };
  return deps;
}

/** The whole service app (createApp) with stand-ins for everything but the Stripe side. */
export async function startStripeApp(
  stripe: Omit<StripeRouteDeps, 'adminApiKey'>,
  logger: AppDeps['logger'] = pino({ level: 'silent' }),
): Promise<{ url: string; close(): Promise<void> }> {
  const deps = stubAppDeps(stripe, logger);
  const server: Server = createApp(deps).listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve()))),
  };
}

/** POSTs a body to the webhook endpoint with a Stripe-Signature (or none). */
export async function deliver(url: string, body: string, signature: string | undefined): Promise<Response> {
  return fetch(`${url}/v1/webhooks/stripe`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json; charset=utf-8',
      'user-agent': 'Stripe/1.0 (+https://stripe.com/docs/webhooks)',
      ...(signature === undefined ? {} : { 'stripe-signature': signature }),
    },
    body,
  });
}

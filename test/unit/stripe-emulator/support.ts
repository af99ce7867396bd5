import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import Stripe from 'stripe';
import { startStripeEmulator, type StripeEmulator } from '../../support/stripe-emulator/index.ts';

export const T0 = Date.UTC(2026, 10, 2, 12, 0, 0);

export async function emulatorWithClient(
  maxNetworkRetries = 0,
): Promise<{ emulator: StripeEmulator; stripe: Stripe }> {
  const emulator = await startStripeEmulator({ clock: () => T0 });
  const stripe = new Stripe('sk_test_123', { ...emulator.stripeOptions(), maxNetworkRetries });
  return { emulator, stripe };
}

export async function customerAndMeter(
  stripe: Stripe,
  formula: 'sum' | 'last' | 'count' = 'sum',
  eventName = 'api_requests',
): Promise<{ customer: Stripe.Customer; meter: Stripe.Billing.Meter }> {
  const customer = await stripe.customers.create({
    email: 'a@example.com',
    metadata: { billing_meter_customer: 'acme' },
  });
  const meter = await stripe.billing.meters.create({
    display_name: 'API requests',
    event_name: eventName,
    default_aggregation: { formula },
    customer_mapping: { event_payload_key: 'stripe_customer_id', type: 'by_id' },
    value_settings: { event_payload_key: 'value' },
  });
  return { customer, meter };
}

export function seconds(ms: number): number {
  return Math.floor(ms / 1000);
}

/** The worked example's plan: 1–100 at $5.00, 101–1000 at $3.00, 1001+ at $2.00 (cents). */
export const WORKED_EXAMPLE_TIERS: Stripe.PriceCreateParams.Tier[] = [
  { up_to: 100, unit_amount: 500 },
  { up_to: 1000, unit_amount: 300 },
  { up_to: 'inf', unit_amount: 200 },
];

/** A product, a monthly metered tiered price on the meter, and a subscription of the customer to it. */
export async function meteredPlan(
  stripe: Stripe,
  customer: string,
  meter: string,
  tiers: Stripe.PriceCreateParams.Tier[] = WORKED_EXAMPLE_TIERS,
  tiersMode: 'graduated' | 'volume' = 'graduated',
): Promise<{ product: Stripe.Product; price: Stripe.Price; subscription: Stripe.Subscription }> {
  const product = await stripe.products.create({ name: 'Credit score API' });
  const price = await stripe.prices.create({
    currency: 'usd',
    product: product.id,
    billing_scheme: 'tiered',
    tiers_mode: tiersMode,
    tiers,
    recurring: { interval: 'month', usage_type: 'metered', meter },
  });
  const subscription = await stripe.subscriptions.create({ customer, items: [{ price: price.id }] });
  return { product, price, subscription };
}

export interface ReceivedWebhook {
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A plain HTTP receiver for webhook deliveries; `answers` are the statuses to give, in order (then 200). */
export async function webhookReceiver(answers: number[] = []): Promise<{
  url: string;
  received: ReceivedWebhook[];
  close(): Promise<void>;
}> {
  const received: ReceivedWebhook[] = [];
  const queue = [...answers];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ headers: { ...req.headers }, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(queue.shift() ?? 200, { 'content-type': 'application/json' });
      res.end('{"received":true}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/stripe/webhook`,
    received,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((e) => (e ? reject(e) : resolve()));
      }),
  };
}

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

export { startStripeEmulator } from './server.ts';
export type { PayInvoiceOptions, RecordedRequest, StripeEmulator, StripeEmulatorOptions } from './server.ts';
export type { FaultKind, FaultOptions, FaultInjector } from './faults.ts';
export type {
  Customer,
  EmulatorState,
  Meter,
  MeterFormula,
  Price,
  PriceTier,
  Product,
  StoredMeterEvent,
  StreamError,
  StripeEvent,
  SubscriptionState,
  WebhookEndpoint,
} from './state.ts';
export type { SignedWebhook, WebhookAttempt, WebhookDelivery } from './webhooks.ts';
export { signWebhook } from './webhooks.ts';
export { priceQuantity } from './invoices.ts';
export { parseForm } from './form-encoding.ts';

import { UpstreamError } from '../../errors.ts';

/**
 * The ports of the Stripe side. The sync, push, reconciliation and webhook logic depend on these
 * interfaces only; `adapters/stripe/stripe-gateway.ts` implements them with the official SDK (the only file that
 * imports `stripe`), and `in-memory-stripe.ts` is the fake beside them for unit tests.
 */

/** The payload keys every meter pushed by billing-meter uses (Stripe's own defaults). */
export const CUSTOMER_PAYLOAD_KEY = 'stripe_customer_id';
export const VALUE_PAYLOAD_KEY = 'value';

/** A failed call to Stripe, translated at the adapter's edge. */
export class StripeCallError extends UpstreamError {
  constructor(
    message: string,
    retryable: boolean,
    readonly details: {
      /** HTTP status, when Stripe answered. */
      status?: number;
      /** Stripe's error code (`resource_already_exists`, `rate_limit`, …). */
      code?: string;
      /** The `Stripe-Should-Retry` header, when Stripe sent one: it overrides the status. */
      shouldRetry?: boolean;
      /** What the call did not reach or hear back from. */
      kind: 'rate_limited' | 'server' | 'network' | 'invalid_request' | 'authentication' | 'other';
      /** The parameter Stripe blamed, if any. */
      param?: string;
    },
    options?: { cause?: unknown },
  ) {
    super('stripe', message, retryable, options);
    this.name = 'StripeCallError';
  }
}

export interface MeterEventCall {
  eventName: string;
  /** Deterministic; Stripe refuses a repeat within 24 h, which is what makes a resend safe. */
  identifier: string;
  /** Whole seconds are sent. */
  timestamp: Date;
  stripeCustomerId: string;
  /** A whole number; sent as a decimal string. */
  value: bigint;
}

/** `duplicate`: Stripe already has an event with this identifier (an earlier attempt was applied). */
export type MeterEventOutcome = 'applied' | 'duplicate';

export type CancelOutcome = 'cancelled' | 'already_cancelled' | 'window_passed' | 'not_found';

/** Sends meter events. Throws StripeCallError for anything else than the outcomes above. */
export interface MeterEventSender {
  send(event: MeterEventCall): Promise<MeterEventOutcome>;
  /** Cancels one event by identifier (a meter event adjustment). */
  cancel(eventName: string, identifier: string): Promise<CancelOutcome>;
}

/**
 * The v2 meter event stream: up to 100 events per call, on a session token valid 15 minutes (renewed
 * by the adapter before it expires). Stripe validates stream events asynchronously: a 200 means
 * accepted for processing.
 */
export interface MeterEventStream {
  readonly maxBatch: number;
  sendBatch(events: readonly MeterEventCall[]): Promise<void>;
}

export type StripeFormula = 'sum' | 'last' | 'count';

export interface StripeMeter {
  id: string;
  displayName: string;
  eventName: string;
  formula: StripeFormula;
  customerPayloadKey: string;
  valuePayloadKey: string;
  status: 'active' | 'inactive';
}

export interface StripeTier {
  upTo: number | 'inf';
  unitAmountDecimal?: string;
  flatAmountDecimal?: string;
}

export interface StripePrice {
  id: string;
  lookupKey: string | null;
  product: string;
  active: boolean;
  currency: string;
  meterId: string | null;
  interval: string | null;
  usageType: string | null;
  tiersMode: 'graduated' | 'volume' | null;
  tiers: StripeTier[];
}

export interface StripeProduct {
  id: string;
  name: string;
  active: boolean;
  /** Added for push (which keeps the product's description in step with the meter's); null when unset. */
  description?: string | null;
}

/** What `stripe push` reads and writes. */
export interface StripeCatalog {
  listMeters(): Promise<StripeMeter[]>;
  createMeter(spec: Omit<StripeMeter, 'id' | 'status'>): Promise<StripeMeter>;
  updateMeterDisplayName(id: string, displayName: string): Promise<StripeMeter>;
  retrieveProduct(id: string): Promise<StripeProduct | undefined>;
  createProduct(spec: { id: string; name: string; description?: string }): Promise<StripeProduct>;
  updateProduct(
    id: string,
    spec: { name: string; description?: string; active?: boolean },
  ): Promise<StripeProduct>;
  pricesByLookupKey(lookupKeys: readonly string[]): Promise<StripePrice[]>;
  /** With `transfer_lookup_key`, so the new price takes the lookup key from the old one. */
  createPrice(
    spec: Omit<StripePrice, 'id' | 'active'> & { lookupKey: string; nickname?: string },
  ): Promise<StripePrice>;
}

/** What reconciliation reads: Stripe's aggregate of a meter for a customer over [start, end). */
export interface StripeUsageSummaries {
  meterByEventName(eventName: string): Promise<StripeMeter | undefined>;
  /** Whole minutes; `end` exclusive. */
  summary(meterId: string, stripeCustomerId: string, start: Date, end: Date): Promise<bigint>;
}

/** Customer key (as the meters see it) → Stripe customer id. */
export interface CustomerDirectory {
  /** The Stripe customer of each key that has one; keys without one are absent. */
  resolve(customerKeys: readonly string[]): Promise<Map<string, string>>;
}

/** Every port above that Stripe itself serves: what the gateway and the in-memory fake implement. */
export type StripePorts = MeterEventSender & MeterEventStream & StripeCatalog & StripeUsageSummaries;

/**
 * The right to sync, held by one process at a time (a lease: src/coordination). The executor checks it
 * before every intent it writes and every call it makes to Stripe, and writes `token` (which only grows
 * from one holder to the next) on every intent: a process that lost its lease (paused, cut off) writes
 * and sends nothing after it knows, and the ledger says which holder wrote what.
 */
export interface SyncFence {
  readonly token: bigint;
  /** Throws FencedOffError once the lease may be someone else's. */
  assertHeld(): void;
}

export class FencedOffError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FencedOffError';
  }
}

/** A subscription as onboarding needs it: which prices it bills. */
export interface StripeSubscriptionView {
  id: string;
  status: string;
  priceIds: string[];
}

/** What onboarding asks of Stripe: customers, subscriptions and Checkout sessions. */
export interface StripeOnboarding {
  createCustomer(spec: {
    email?: string;
    customerKey: string;
    idempotencyKey: string;
  }): Promise<{ id: string }>;
  /** Subscriptions that still bill (not canceled or incomplete_expired). */
  subscriptionsOf(stripeCustomerId: string): Promise<StripeSubscriptionView[]>;
  createSubscription(spec: {
    stripeCustomerId: string;
    priceIds: readonly string[];
    /** Unix seconds: the 1st of the next month, 00:00 UTC, so Stripe's periods are calendar months. */
    billingCycleAnchor: number;
    customerKey: string;
    idempotencyKey: string;
  }): Promise<StripeSubscriptionView>;
  /** A hosted Checkout page (mode subscription) for these prices; the customer key rides as client_reference_id. */
  createCheckoutSession(spec: {
    customerKey: string;
    stripeCustomerId?: string;
    email?: string;
    priceIds: readonly string[];
    billingCycleAnchor: number;
    successUrl: string;
    cancelUrl?: string;
  }): Promise<{ id: string; url: string }>;
}

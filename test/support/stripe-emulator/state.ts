// The emulator's in-memory account: one test-mode Stripe account, plus the emulated clock that
// every time rule (24 h identifier dedupe, 35-day / 5-minute window, session expiry) reads.
import { randomBytes } from 'node:crypto';

export interface EmulatorClock {
  /** Emulated wall-clock time in ms: the base clock plus everything advanced so far. */
  now(): number;
  advance(ms: number): void;
}

export function createClock(base: () => number = Date.now): EmulatorClock {
  let offset = 0;
  return {
    now: () => base() + offset,
    advance: (ms) => {
      offset += ms;
    },
  };
}

export interface Customer {
  id: string;
  object: 'customer';
  created: number;
  livemode: false;
  email: string | null;
  name: string | null;
  description: string | null;
  metadata: Record<string, string>;
}

export type MeterFormula = 'sum' | 'count' | 'last';

export interface Meter {
  id: string;
  object: 'billing.meter';
  created: number;
  updated: number;
  livemode: false;
  display_name: string;
  event_name: string;
  event_time_window: null;
  status: 'active' | 'inactive';
  status_transitions: { deactivated_at: number | null };
  default_aggregation: { formula: MeterFormula };
  customer_mapping: { event_payload_key: string; type: 'by_id' };
  value_settings: { event_payload_key: string };
}

export interface StoredMeterEvent {
  identifier: string;
  eventName: string;
  meterId: string;
  customerId: string;
  value: number;
  /** Event time, seconds. */
  timestamp: number;
  /** Emulated receive time, ms: the 24 h dedupe and cancel windows run from here. */
  receivedAtMs: number;
  payload: Record<string, string>;
  cancelled: boolean;
  via: 'v1' | 'v2';
}

export interface MeterEventSession {
  id: string;
  token: string;
  expiresAtMs: number;
}

/** An event the v2 stream accepted on the wire and then dropped, as Stripe's asynchronous validation does. */
export interface StreamError {
  code: string;
  message: string;
  /** The event's identifier; null when the caller sent none (Stripe would have generated one). */
  identifier: string | null;
  eventName: string;
  /** Position of the event in its batch. */
  index: number;
  /** Emulated time the batch arrived, ms. */
  receivedAtMs: number;
}

export interface Product {
  id: string;
  object: 'product';
  active: boolean;
  created: number;
  default_price: string | null;
  description: string | null;
  images: string[];
  livemode: false;
  marketing_features: unknown[];
  metadata: Record<string, string>;
  name: string;
  package_dimensions: null;
  shippable: null;
  statement_descriptor: null;
  tax_code: null;
  type: 'service';
  unit_label: null;
  updated: number;
  url: null;
}

/** A tier as stored: amounts as decimal strings (minor units), `up_to` null for 'inf', as Stripe returns it. */
export interface PriceTier {
  flat_amount: number | null;
  flat_amount_decimal: string | null;
  unit_amount: number | null;
  unit_amount_decimal: string | null;
  up_to: number | null;
}

export interface Price {
  id: string;
  object: 'price';
  active: boolean;
  billing_scheme: 'per_unit' | 'tiered';
  created: number;
  currency: string;
  custom_unit_amount: null;
  livemode: false;
  lookup_key: string | null;
  metadata: Record<string, string>;
  nickname: string | null;
  product: string;
  recurring: {
    interval: 'day' | 'week' | 'month' | 'year';
    interval_count: number;
    meter: string | null;
    trial_period_days: null;
    usage_type: 'metered' | 'licensed';
  } | null;
  tax_behavior: 'unspecified';
  /** Present on the wire only when `expand[]=tiers` is asked for. */
  tiers: PriceTier[] | null;
  tiers_mode: 'graduated' | 'volume' | null;
  transform_quantity: null;
  type: 'one_time' | 'recurring';
  unit_amount: number | null;
  unit_amount_decimal: string | null;
}

export interface SubscriptionItemState {
  id: string;
  created: number;
  priceId: string;
  /** Licensed items only; metered items have no quantity. */
  quantity: number | null;
  metadata: Record<string, string>;
}

export interface SubscriptionState {
  id: string;
  created: number;
  customer: string;
  status: 'active' | 'canceled';
  billingCycleAnchor: number;
  /** Whether periods follow calendar months (no anchor given) or step from the anchor. */
  calendarAligned: boolean;
  /** Current period, seconds, [start, end). */
  periodStart: number;
  periodEnd: number;
  startDate: number;
  canceledAt: number | null;
  cancelAtPeriodEnd: boolean;
  metadata: Record<string, string>;
  items: SubscriptionItemState[];
  latestInvoice: string | null;
}

export interface WebhookEndpoint {
  id: string;
  object: 'webhook_endpoint';
  api_version: string | null;
  application: null;
  created: number;
  description: string | null;
  enabled_events: string[];
  livemode: false;
  metadata: Record<string, string>;
  /** Returned by the create call only, as on Stripe. */
  secret: string;
  status: 'enabled' | 'disabled';
  url: string;
}

export interface StripeEvent {
  id: string;
  object: 'event';
  api_version: string;
  created: number;
  data: { object: Record<string, unknown>; previous_attributes?: Record<string, unknown> };
  livemode: false;
  pending_webhooks: number;
  request: { id: string | null; idempotency_key: string | null };
  type: string;
}

/** Who caused an event: the API request (id, Idempotency-Key), or null for test helpers. */
export interface EventCause {
  requestId: string | null;
  idempotencyKey: string | null;
}

export const API_VERSION = '2026-10-28.endive';

export class EmulatorState {
  readonly customers = new Map<string, Customer>();
  readonly meters = new Map<string, Meter>();
  /** Every accepted event, in arrival order (cancelled ones stay, flagged). */
  readonly meterEvents: StoredMeterEvent[] = [];
  readonly sessions = new Map<string, MeterEventSession>();
  /** Events the v2 stream dropped after answering 200 (Stripe's asynchronous validation). */
  readonly streamErrors: StreamError[] = [];
  readonly products = new Map<string, Product>();
  readonly prices = new Map<string, Price>();
  readonly subscriptions = new Map<string, SubscriptionState>();
  readonly invoices = new Map<string, Record<string, unknown>>();
  readonly webhookEndpoints = new Map<string, WebhookEndpoint>();
  /** Every event emitted, oldest first. */
  readonly events: StripeEvent[] = [];
  /** Set by the server: hands each new event to the webhook dispatcher. */
  onEvent: (event: StripeEvent) => void = () => {};

  constructor(readonly clock: EmulatorClock) {}

  /** Records an event (a deep snapshot of `object`) and hands it to the webhook dispatcher. */
  emit(
    type: string,
    object: object,
    cause: EventCause | null,
    previousAttributes?: Record<string, unknown>,
  ): StripeEvent {
    const pending = [...this.webhookEndpoints.values()].filter((e) => endpointWants(e, type)).length;
    const data: StripeEvent['data'] = { object: structuredClone(object) as Record<string, unknown> };
    if (previousAttributes !== undefined) data.previous_attributes = structuredClone(previousAttributes);
    const event: StripeEvent = {
      id: this.newId('evt'),
      object: 'event',
      api_version: API_VERSION,
      created: this.nowSeconds(),
      data,
      livemode: false,
      pending_webhooks: pending,
      request: { id: cause?.requestId ?? null, idempotency_key: cause?.idempotencyKey ?? null },
      type,
    };
    this.events.push(event);
    this.onEvent(event);
    return event;
  }

  nowSeconds(): number {
    return Math.floor(this.clock.now() / 1000);
  }

  newId(prefix: string): string {
    return `${prefix}_${randomBytes(12).toString('base64url').replace(/[-_]/g, 'x')}`;
  }

  activeMeterForEvent(eventName: string): Meter | undefined {
    for (const meter of this.meters.values()) {
      if (meter.event_name === eventName && meter.status === 'active') return meter;
    }
    return undefined;
  }

  /** Every event by identifier, in arrival order: the lookups below stay O(1) for benchmarks. */
  private readonly byIdentifier = new Map<string, StoredMeterEvent[]>();

  /** Stores an accepted event (the only way events enter the account). */
  addMeterEvent(event: StoredMeterEvent): void {
    this.meterEvents.push(event);
    const same = this.byIdentifier.get(event.identifier);
    if (same) same.push(event);
    else this.byIdentifier.set(event.identifier, [event]);
  }

  /** The latest event with this identifier (whatever its age), if any. */
  lastEventByIdentifier(identifier: string): StoredMeterEvent | undefined {
    return this.byIdentifier.get(identifier)?.at(-1);
  }

  /** The event holding this identifier inside the rolling 24 h of emulated time, if any. */
  recentEventByIdentifier(identifier: string): StoredMeterEvent | undefined {
    const horizon = this.clock.now() - DAY_MS;
    const event = this.lastEventByIdentifier(identifier);
    return event !== undefined && event.receivedAtMs > horizon ? event : undefined;
  }

  /** Non-cancelled events of a meter and customer, for assertions. */
  eventsFor(meterId: string, customerId?: string): StoredMeterEvent[] {
    return this.meterEvents.filter(
      (e) =>
        !e.cancelled && e.meterId === meterId && (customerId === undefined || e.customerId === customerId),
    );
  }
}

export const DAY_MS = 24 * 60 * 60 * 1000;

export function endpointWants(endpoint: WebhookEndpoint, type: string): boolean {
  return (
    endpoint.status === 'enabled' &&
    (endpoint.enabled_events.includes('*') || endpoint.enabled_events.includes(type))
  );
}

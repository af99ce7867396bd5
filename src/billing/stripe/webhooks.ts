import { createHmac, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { DomainError } from '../../errors.ts';
import type { BillingState, BillingStateStore } from './billing-status.ts';
import {
  KeyedSerializer,
  nextVersion,
  STRIPE_CUSTOMER_ID,
  type CustomerMappingService,
} from './customer-directory.ts';

/**
 * Stripe webhooks: signature verification (done here with node:crypto, as Stripe documents it, so the
 * `stripe` package stays in its adapter), then the events billing-meter acts on.
 *
 * Idempotent on the event id: an id is recorded only after its effects are stored, so a crash in
 * between makes Stripe's retry redo it, and every effect is itself idempotent (a mapping or a state
 * row that is already there is not written again; an older one never overwrites a newer one).
 */

/** The metadata key on a Stripe customer that names the billing-meter customer key it bills. */
export const CUSTOMER_METADATA_KEY = 'billing_meter_customer';
/** Largest webhook body accepted. Stripe's events are a few KB; an invoice with many lines, tens. */
export const MAX_WEBHOOK_BODY_BYTES = 1024 * 1024;
const MAX_SIGNATURE_HEADER_LENGTH = 4096;
const REFUSAL_LOG_INTERVAL_MS = 60_000;

export interface BillingLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/** Port: the ids of the webhook events already handled (stripe_webhook_events). */
export interface WebhookEventStore {
  seen(eventId: string): Promise<boolean>;
  record(event: { id: string; type: string; created: Date; receivedAt: Date }): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Signatures

export interface SignatureHeader {
  timestamp: number;
  /** The v1 signatures, lower-case hex (several while a secret is being rolled). */
  v1: string[];
}

function invalidSignature(reason: string): DomainError {
  return new DomainError('invalid_signature', reason);
}

/** `t=<unix seconds>,v1=<hex>[,v1=<hex>…][,v0=…]`; other schemes are ignored, as Stripe's libraries do. */
export function parseSignatureHeader(header: string | undefined): SignatureHeader {
  if (header === undefined || header.trim() === '')
    throw invalidSignature('the Stripe-Signature header is missing');
  if (header.length > MAX_SIGNATURE_HEADER_LENGTH)
    throw invalidSignature('the Stripe-Signature header is too long');
  let timestamp: number | undefined;
  const v1: string[] = [];
  for (const part of header.split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw invalidSignature('the Stripe-Signature header is malformed: expected t=…,v1=…');
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (key === 't') {
      if (timestamp !== undefined || !/^\d{1,12}$/.test(value))
        throw invalidSignature('the Stripe-Signature header has a bad or repeated timestamp (t)');
      timestamp = Number(value);
    } else if (key === 'v1') {
      // Anything else than a SHA-256 hex digest can never match: refuse it as malformed.
      if (!/^[0-9a-fA-F]{64}$/.test(value))
        throw invalidSignature('the Stripe-Signature header has a malformed v1 signature');
      v1.push(value.toLowerCase());
    }
  }
  if (timestamp === undefined) throw invalidSignature('the Stripe-Signature header has no timestamp (t)');
  if (v1.length === 0) throw invalidSignature('the Stripe-Signature header has no v1 signature');
  return { timestamp, v1 };
}

/** HMAC-SHA256 of `${t}.${payload}` keyed with the endpoint secret (the whole `whsec_…` string), hex. */
export function computeSignature(payload: Buffer, timestamp: number, secret: string): string {
  return createHmac('sha256', secret).update(`${timestamp}.`, 'utf8').update(payload).digest('hex');
}

/**
 * Throws invalid_signature unless one v1 signature matches (constant-time compare against each) and the
 * timestamp is within `toleranceSeconds` of now, either way: an old signature is a replay, a far-future
 * one is a signature made to be replayed later.
 */
export function verifyStripeSignature(opts: {
  payload: Buffer;
  header: string | undefined;
  secret: string;
  toleranceSeconds: number;
  nowSeconds: number;
}): SignatureHeader {
  const parsed = parseSignatureHeader(opts.header);
  const expected = Buffer.from(computeSignature(opts.payload, parsed.timestamp, opts.secret), 'hex');
  let matched = false;
  // Every candidate is compared, so the time taken does not tell which one (if any) matched.
  for (const candidate of parsed.v1)
    matched = timingSafeEqual(expected, Buffer.from(candidate, 'hex')) || matched;
  if (!matched) throw invalidSignature('no v1 signature matches this body and the endpoint secret');
  if (Math.abs(opts.nowSeconds - parsed.timestamp) > opts.toleranceSeconds) {
    throw invalidSignature(
      `the signature timestamp is more than ${opts.toleranceSeconds}s from now (a replay, or a clock far off)`,
    );
  }
  return parsed;
}

// ---------------------------------------------------------------------------------------------
// Events

const eventEnvelope = z.object({
  id: z.string().min(1).max(255),
  type: z.string().min(1).max(255),
  created: z.number().int().nonnegative().max(4_000_000_000),
  data: z.object({
    object: z.record(z.string(), z.unknown()),
    previous_attributes: z.record(z.string(), z.unknown()).nullish(),
  }),
});
export type StripeEventEnvelope = z.infer<typeof eventEnvelope>;

const customerRef = z.union([z.string(), z.object({ id: z.string() }).transform((c) => c.id)]);
const unixSeconds = z.number().int().nonnegative();

const customerObject = z.object({
  id: z.string(),
  metadata: z.record(z.string(), z.unknown()).nullish(),
});
/** A completed Checkout session: the customer key rides as client_reference_id (onboarding.ts). */
const checkoutSessionObject = z.object({
  id: z.string(),
  mode: z.string().nullish(),
  customer: customerRef.nullish(),
  client_reference_id: z.string().nullish(),
});
const previousCustomer = z.object({ metadata: z.record(z.string(), z.unknown()).nullish() });

const subscriptionObject = z.object({
  id: z.string().min(1),
  customer: customerRef,
  status: z.string().min(1),
  // API 2025-03-31.basil and later (2026 included): the period lives on each item.
  items: z
    .object({
      data: z.array(
        z.object({ current_period_start: unixSeconds.nullish(), current_period_end: unixSeconds.nullish() }),
      ),
    })
    .nullish(),
  // Older API versions: on the subscription itself.
  current_period_start: unixSeconds.nullish(),
  current_period_end: unixSeconds.nullish(),
});

const invoiceObject = z.object({ id: z.string().min(1), customer: customerRef });

export type BillingChange =
  | {
      kind: 'subscription';
      stripeCustomerId: string;
      subscriptionId: string;
      status: string;
      periodStart?: Date;
      periodEnd?: Date;
    }
  | { kind: 'payment'; stripeCustomerId: string; invoiceId: string; paymentStatus: 'paid' | 'failed' };

/** The subscription's current period: over its items (min start, max end), else its own fields. */
export function subscriptionPeriod(sub: z.infer<typeof subscriptionObject>): {
  periodStart?: Date;
  periodEnd?: Date;
} {
  const items = sub.items?.data ?? [];
  const starts = items.map((i) => i.current_period_start).filter((s): s is number => typeof s === 'number');
  const ends = items.map((i) => i.current_period_end).filter((s): s is number => typeof s === 'number');
  const start = starts.length > 0 ? Math.min(...starts) : (sub.current_period_start ?? undefined);
  const end = ends.length > 0 ? Math.max(...ends) : (sub.current_period_end ?? undefined);
  return {
    ...(start !== undefined ? { periodStart: new Date(start * 1000) } : {}),
    ...(end !== undefined ? { periodEnd: new Date(end * 1000) } : {}),
  };
}

/**
 * The new state of a customer after a change from an event created at `eventCreatedSeconds`, or
 * undefined when there is nothing to write (the same state already, or an older event).
 *
 * The subscription fields and the payment fields are ordered separately, each by the events of its
 * kind (Stripe does not deliver in order, and retries late): an invoice event older than the last
 * invoice event is stale, whatever subscription events came in between, and the other way round. One
 * exception: `paid` over `failed` for the same invoice always applies (a paid invoice is final, so that
 * event is necessarily the later one).
 */
export function applyBillingChange(
  current: BillingState | undefined,
  change: BillingChange,
  eventCreatedSeconds: number,
  now: Date,
): BillingState | undefined {
  const kindVersion = current
    ? change.kind === 'subscription'
      ? current.subscriptionVersion
      : current.paymentVersion
    : 0n;
  let applyAt = nextVersion(kindVersion === 0n ? undefined : kindVersion, { eventCreatedSeconds });
  if (applyAt === 'stale') {
    const paysFailedInvoice =
      change.kind === 'payment' &&
      change.paymentStatus === 'paid' &&
      current!.paymentStatus === 'failed' &&
      current!.lastInvoiceId === change.invoiceId;
    if (!paysFailedInvoice) return undefined;
    applyAt = kindVersion + 1n;
  }
  const base: BillingState = current ?? {
    stripeCustomerId: change.stripeCustomerId,
    subscriptionId: '',
    subscriptionStatus: '',
    currentPeriodStart: undefined,
    currentPeriodEnd: undefined,
    paymentStatus: '',
    lastInvoiceId: '',
    updatedAt: now,
    subscriptionVersion: 0n,
    paymentVersion: 0n,
    version: 0n,
  };
  const next: BillingState =
    change.kind === 'subscription'
      ? {
          ...base,
          subscriptionId: change.subscriptionId,
          subscriptionStatus: change.status,
          currentPeriodStart: change.periodStart,
          currentPeriodEnd: change.periodEnd,
          subscriptionVersion: applyAt,
        }
      : {
          ...base,
          paymentStatus: change.paymentStatus,
          lastInvoiceId: change.invoiceId,
          paymentVersion: applyAt,
        };
  if (current && sameState(current, next)) return undefined;
  const rowVersion = current && current.version >= applyAt ? current.version + 1n : applyAt;
  return { ...next, updatedAt: now, version: rowVersion };
}

function sameState(a: BillingState, b: BillingState): boolean {
  return (
    a.subscriptionId === b.subscriptionId &&
    a.subscriptionStatus === b.subscriptionStatus &&
    a.currentPeriodStart?.getTime() === b.currentPeriodStart?.getTime() &&
    a.currentPeriodEnd?.getTime() === b.currentPeriodEnd?.getTime() &&
    a.paymentStatus === b.paymentStatus &&
    a.lastInvoiceId === b.lastInvoiceId
  );
}

export type WebhookOutcome = 'handled' | 'duplicate' | 'ignored' | 'stale' | 'unchanged';

export interface WebhookResult {
  id: string;
  type: string;
  outcome: WebhookOutcome;
}

export interface StripeWebhookDeps {
  events: WebhookEventStore;
  states: BillingStateStore;
  mappings: CustomerMappingService;
  /** STRIPE_WEBHOOK_SECRET; undefined: every delivery is refused with webhooks_disabled (503). */
  secret: string | undefined;
  toleranceSeconds: number;
  logger: BillingLogger;
  now?: () => Date;
}

export const HANDLED_EVENT_TYPES = [
  'customer.created',
  'customer.updated',
  'customer.subscription.created',
  'customer.subscription.updated',
  'customer.subscription.deleted',
  'invoice.paid',
  'invoice.payment_failed',
] as const;

export class StripeWebhookService {
  private readonly serializer = new KeyedSerializer();
  private readonly now: () => Date;
  private lastRefusalLogAt = -Infinity;
  private refusedSinceLog = 0;

  constructor(private readonly deps: StripeWebhookDeps) {
    this.now = deps.now ?? (() => new Date());
  }

  get enabled(): boolean {
    return this.deps.secret !== undefined && this.deps.secret !== '';
  }

  /**
   * Throws webhooks_disabled (503: Stripe retries a 5xx for days, so nothing sent before the secret is
   * set is lost) while STRIPE_WEBHOOK_SECRET is unset. Says so in the log at most once a minute, with how
   * many deliveries were refused since the last line: Stripe retries each one, and a line per delivery
   * would bury the logs.
   */
  assertEnabled(): string {
    const secret = this.deps.secret;
    if (secret !== undefined && secret !== '') return secret;
    this.refusedSinceLog += 1;
    const now = this.now().getTime();
    if (now - this.lastRefusalLogAt >= REFUSAL_LOG_INTERVAL_MS) {
      this.deps.logger.warn(
        { refused: this.refusedSinceLog },
        'stripe webhook refused (503): STRIPE_WEBHOOK_SECRET is not set; logged at most once a minute',
      );
      this.lastRefusalLogAt = now;
      this.refusedSinceLog = 0;
    }
    throw new DomainError(
      'webhooks_disabled',
      'STRIPE_WEBHOOK_SECRET is not set: set it to the signing secret of this endpoint (whsec_…) and restart',
    );
  }

  /** Verifies, parses and handles one delivery: the raw body, exactly as received, and its Stripe-Signature. */
  async receive(rawBody: Buffer, signatureHeader: string | undefined): Promise<WebhookResult> {
    const secret = this.assertEnabled();
    const receivedAt = this.now();
    verifyStripeSignature({
      payload: rawBody,
      header: signatureHeader,
      secret,
      toleranceSeconds: this.deps.toleranceSeconds,
      nowSeconds: Math.floor(receivedAt.getTime() / 1000),
    });
    let json: unknown;
    try {
      json = JSON.parse(rawBody.toString('utf8'));
    } catch {
      throw new DomainError('malformed_body', 'the body is not JSON');
    }
    const parsed = eventEnvelope.safeParse(json);
    if (!parsed.success) {
      throw new DomainError(
        'invalid_request',
        'not a Stripe event: expected id, type, created and data.object',
        {
          errors: parsed.error.issues.map((i) => ({ field: i.path.join('.'), reason: i.message })),
        },
      );
    }
    const event = parsed.data;
    if (await this.deps.events.seen(event.id))
      return { id: event.id, type: event.type, outcome: 'duplicate' };
    const outcome = await this.handle(event);
    // Only now: had the effects failed, the id stays unrecorded and Stripe's retry redoes them.
    await this.deps.events.record({
      id: event.id,
      type: event.type,
      created: new Date(event.created * 1000),
      receivedAt,
    });
    this.deps.logger.info({ eventId: event.id, type: event.type, outcome }, 'stripe webhook');
    return { id: event.id, type: event.type, outcome };
  }

  /** The effects of one verified event. Exposed for tests and replays; receive() is the entry point. */
  async handle(event: StripeEventEnvelope): Promise<WebhookOutcome> {
    switch (event.type) {
      case 'customer.created':
      case 'customer.updated':
        return this.customerEvent(event);
      case 'customer.subscription.created':
      case 'customer.subscription.updated':
      case 'customer.subscription.deleted': {
        const sub = this.object(event, subscriptionObject);
        if (!sub) return 'ignored';
        return this.applyChange(event, {
          kind: 'subscription',
          stripeCustomerId: sub.customer,
          subscriptionId: sub.id,
          status: sub.status,
          ...subscriptionPeriod(sub),
        });
      }
      case 'checkout.session.completed':
        return this.checkoutCompleted(event);
      case 'invoice.paid':
      case 'invoice.payment_failed': {
        const invoice = this.object(event, invoiceObject);
        if (!invoice) return 'ignored';
        const paymentStatus = event.type === 'invoice.paid' ? 'paid' : 'failed';
        return this.applyChange(event, {
          kind: 'payment',
          stripeCustomerId: invoice.customer,
          invoiceId: invoice.id,
          paymentStatus,
        });
      }
      default:
        return 'ignored';
    }
  }

  /** The event's object in the expected shape, or undefined (logged): retrying would not change it. */
  private object<S extends z.ZodType>(event: StripeEventEnvelope, schema: S): z.infer<S> | undefined {
    const parsed = schema.safeParse(event.data.object);
    if (!parsed.success) {
      this.deps.logger.warn(
        {
          eventId: event.id,
          type: event.type,
          problems: parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`),
        },
        'stripe webhook object not understood; event ignored',
      );
      return undefined;
    }
    return parsed.data;
  }

  /** Maps the session's customer key (client_reference_id) to the customer Stripe made or used. */
  private async checkoutCompleted(event: StripeEventEnvelope): Promise<WebhookOutcome> {
    const session = this.object(event, checkoutSessionObject);
    const key = session?.client_reference_id;
    const customer = session?.customer;
    if (!session || !key || !customer || session.mode !== 'subscription') return 'ignored';
    return this.mapFromEvent(event, key, customer);
  }

  private async mapFromEvent(
    event: StripeEventEnvelope,
    key: string,
    stripeCustomerId: string,
  ): Promise<WebhookOutcome> {
    try {
      const outcome = await this.deps.mappings.map(key, stripeCustomerId, 'webhook', event.created);
      return outcome === 'mapped' ? 'handled' : outcome;
    } catch (err) {
      if (!(err instanceof DomainError) || err.code !== 'invalid_request') throw err;
      this.deps.logger.warn(
        { eventId: event.id, stripeCustomerId },
        `stripe webhook ${event.type} names no valid customer key; event ignored`,
      );
      return 'ignored';
    }
  }

  private async customerEvent(event: StripeEventEnvelope): Promise<WebhookOutcome> {
    const customer = this.object(event, customerObject);
    if (!customer) return 'ignored';
    if (!STRIPE_CUSTOMER_ID.test(customer.id)) {
      this.deps.logger.warn(
        { eventId: event.id, type: event.type },
        'stripe webhook customer id is not cus_…; event ignored',
      );
      return 'ignored';
    }
    const key = customer.metadata?.[CUSTOMER_METADATA_KEY];
    if (typeof key !== 'string' || key === '') {
      const previous = previousCustomer.safeParse(event.data.previous_attributes ?? {});
      const removed = previous.success ? previous.data.metadata?.[CUSTOMER_METADATA_KEY] : undefined;
      if (typeof removed === 'string') {
        // Removing the metadata is not taken as an instruction to unbill the key: an operator decides (admin API).
        this.deps.logger.warn(
          { eventId: event.id, stripeCustomerId: customer.id, customerKey: removed },
          `stripe customer metadata ${CUSTOMER_METADATA_KEY} was removed; the existing mapping is left as it is`,
        );
      }
      return 'ignored';
    }
    try {
      const outcome = await this.deps.mappings.map(key, customer.id, 'webhook', event.created);
      return outcome === 'mapped' ? 'handled' : outcome;
    } catch (err) {
      if (!(err instanceof DomainError) || err.code !== 'invalid_request') throw err;
      this.deps.logger.warn(
        { eventId: event.id, stripeCustomerId: customer.id },
        `stripe customer metadata ${CUSTOMER_METADATA_KEY} is not a valid customer key; event ignored`,
      );
      return 'ignored';
    }
  }

  private async applyChange(event: StripeEventEnvelope, change: BillingChange): Promise<WebhookOutcome> {
    if (!STRIPE_CUSTOMER_ID.test(change.stripeCustomerId)) {
      this.deps.logger.warn(
        { eventId: event.id, type: event.type },
        'stripe webhook names no valid customer (cus_…); event ignored',
      );
      return 'ignored';
    }
    return this.serializer.run(change.stripeCustomerId, async () => {
      const current = (await this.deps.states.get([change.stripeCustomerId])).get(change.stripeCustomerId);
      const next = applyBillingChange(current, change, event.created, this.now());
      if (!next) {
        const stale =
          current !== undefined &&
          nextVersion(current.version, { eventCreatedSeconds: event.created }) === 'stale';
        if (stale)
          this.deps.logger.info(
            { eventId: event.id, type: event.type, stripeCustomerId: change.stripeCustomerId },
            'older stripe event left newer state as it was',
          );
        return stale ? 'stale' : 'unchanged';
      }
      await this.deps.states.put(next);
      return 'handled';
    });
  }
}

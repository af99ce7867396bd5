import { randomUUID } from 'node:crypto';
import Stripe from 'stripe';
import {
  CUSTOMER_PAYLOAD_KEY,
  StripeCallError,
  VALUE_PAYLOAD_KEY,
  type CancelOutcome,
  type MeterEventCall,
  type MeterEventOutcome,
  type StripeFormula,
  type StripeMeter,
  type StripePrice,
  type StripeProduct,
  type StripeTier,
  type StripeOnboarding,
  type StripePorts,
  type StripeSubscriptionView,
} from '../../billing/stripe/ports.ts';
import { createRateLimiter, type RateLimiter } from '../../billing/stripe/rate-limiter.ts';
import { withRetries, type RetryOptions } from '../../billing/stripe/retry.ts';

/**
 * The Stripe adapter: the only module that imports `stripe`. It implements every port of ports.ts
 * with the official SDK and translates every SDK error into a StripeCallError at this edge.
 *
 * Calls: each HTTP call waits for the rate limiter, and each logical call is retried by `withRetries`
 * (config.maxAttempts; 1 disables) on retryable errors only. The SDK's own retries are off, including
 * the one it makes on a closed connection even with `maxNetworkRetries: 0` (see
 * `gatedHttpClient`), so every attempt is ours, is rate limited and is counted. Retrying is safe
 * because every POST carries an idempotency key that stays the same across attempts: the meter
 * event identifier for events, `cancel-<identifier>` for cancels, a random key per logical call
 * otherwise. A replayed answer (`Idempotent-Replayed: true`) to a meter event means an earlier attempt
 * was applied: `duplicate`.
 */

export const STRIPE_API_VERSION = '2026-10-28.endive' as const;

/** Renew a v2 meter event session when fewer than this many ms of it remain. */
export const SESSION_RENEW_BEFORE_MS = 60_000;
const SESSION_DEFAULT_TTL_MS = 15 * 60_000;
const STREAM_MAX_BATCH = 100;
/** Stripe's `lookup_keys` filter takes at most 10 keys. */
const LOOKUP_KEYS_PER_CALL = 10;
const PAGE_SIZE = 100;

/** What the gateway needs of the configuration (config.ts's `stripe`, with a key). */
export interface StripeGatewayConfig {
  secretKey: string;
  /** Another Stripe origin (an emulator, a proxy); undefined: api.stripe.com. */
  api: { protocol: 'http' | 'https'; host: string; port: number } | undefined;
  rateLimitPerSecond: number;
  maxAttempts: number;
  timeoutMs: number;
}

export interface StripeGatewayDeps {
  /** Default: `createRateLimiter(config.rateLimitPerSecond)`. */
  limiter?: RateLimiter;
  /** Backoff, sleep, jitter and an `onRetry` hook for logs and metrics; attempts come from the config. */
  retry?: Omit<RetryOptions, 'maxAttempts'>;
  /** The local clock, ms (session expiry). Date.now by default. */
  now?: () => number;
  /** Idempotency keys of creates (meters, products, prices, stream batches). randomUUID by default. */
  newIdempotencyKey?: () => string;
}

export type StripeGateway = StripePorts & StripeOnboarding;

type SdkOptions = NonNullable<ConstructorParameters<typeof Stripe>[1]>;
type HttpClient = ReturnType<typeof Stripe.createNodeHttpClient>;
type StreamEvent = Parameters<Stripe['v2']['billing']['meterEventStream']['create']>[0]['events'][number];

export function createStripeGateway(
  config: StripeGatewayConfig,
  deps: StripeGatewayDeps = {},
): StripeGateway {
  const limiter = deps.limiter ?? createRateLimiter(config.rateLimitPerSecond);
  const now = deps.now ?? Date.now;
  const newKey = deps.newIdempotencyKey ?? randomUUID;
  const sdkOptions: SdkOptions = {
    apiVersion: STRIPE_API_VERSION,
    maxNetworkRetries: 0,
    // No X-Stripe-Client-Telemetry: it buffers per-request metrics we do not need and says how we call.
    telemetry: false,
    timeout: config.timeoutMs,
    // The rate limit gates each HTTP request right before it is written: as close to the wire as the
    // SDK lets us, so the SDK's own work between our call and the socket cannot bunch requests.
    httpClient: gatedHttpClient(Stripe.createNodeHttpClient(), limiter),
    // The SDK resolves every base address (api, files, meter_events) to `host` when it is set.
    ...(config.api ? { host: config.api.host, port: config.api.port, protocol: config.api.protocol } : {}),
  };
  const stripe = new Stripe(config.secretKey, sdkOptions);

  /** One logical call: attempts with backoff; each attempt's errors translated into StripeCallError. */
  function call<T>(what: string, attempt: () => Promise<T>): Promise<T> {
    return withRetries(
      async () => {
        try {
          return await attempt();
        } catch (error) {
          throw translateStripeError(error, what);
        }
      },
      { ...deps.retry, maxAttempts: config.maxAttempts },
    );
  }

  /** One HTTP call (the rate limiter sits in the HTTP client, see sdkOptions). */
  function http<T>(fn: () => Promise<T>): Promise<T> {
    return fn();
  }

  async function listAll<T extends { id?: string }>(
    page: (startingAfter: string | undefined) => Promise<Stripe.ApiList<T>>,
    what: string,
  ): Promise<T[]> {
    const all: T[] = [];
    let startingAfter: string | undefined;
    for (;;) {
      const after = startingAfter;
      const list = await call(what, () => http(() => page(after)));
      all.push(...list.data);
      const lastId = list.data.at(-1)?.id;
      if (!list.has_more || lastId === undefined) return all;
      startingAfter = lastId;
    }
  }

  // --- v2 meter event stream sessions -------------------------------------------------------------

  interface Session {
    token: string;
    /** Local clock. */
    expiresAtMs: number;
    client: Stripe;
  }
  let session: Session | undefined;
  let renewing: Promise<Session> | undefined;

  async function createSession(): Promise<Session> {
    const startedAt = now();
    const created = await http(() => stripe.v2.billing.meterEventSession.create());
    // Stripe's clock and ours may differ: keep its lifetime, start it at our clock.
    const ttl = Date.parse(created.expires_at) - Date.parse(created.created);
    const ttlMs = Number.isFinite(ttl) && ttl > 0 ? ttl : SESSION_DEFAULT_TTL_MS;
    return {
      token: created.authentication_token,
      expiresAtMs: startedAt + ttlMs,
      client: new Stripe(created.authentication_token, sdkOptions),
    };
  }

  /** The cached session, or a new one when fewer than SESSION_RENEW_BEFORE_MS remain; one renewal at a time. */
  function currentSession(): Promise<Session> {
    if (session !== undefined && session.expiresAtMs - now() > SESSION_RENEW_BEFORE_MS) {
      return Promise.resolve(session);
    }
    renewing ??= createSession()
      .then((s) => (session = s))
      .finally(() => {
        renewing = undefined;
      });
    return renewing;
  }

  async function streamOnce(events: StreamEvent[], key: string): Promise<void> {
    let current = await currentSession();
    const post = (s: Session) =>
      http(() => s.client.v2.billing.meterEventStream.create({ events }, { idempotencyKey: key }));
    try {
      await post(current);
    } catch (error) {
      // Expired (or revoked) early, say after a clock jump: renew once and resend.
      if (!(error instanceof Stripe.errors.StripeError) || error.statusCode !== 401) throw error;
      if (session === current) session = undefined;
      current = await currentSession();
      await post(current);
    }
  }

  // --- the ports -----------------------------------------------------------------------------------

  return {
    maxBatch: STREAM_MAX_BATCH,

    async createCustomer(spec) {
      const customer = await call('create customer', () =>
        http(() =>
          stripe.customers.create(
            {
              ...(spec.email ? { email: spec.email } : {}),
              name: spec.customerKey,
              metadata: { billing_meter_customer: spec.customerKey },
            },
            { idempotencyKey: spec.idempotencyKey },
          ),
        ),
      );
      return { id: customer.id };
    },

    async subscriptionsOf(stripeCustomerId) {
      const all = await listAll(
        (after) =>
          stripe.subscriptions.list({
            customer: stripeCustomerId,
            status: 'all',
            limit: PAGE_SIZE,
            ...(after ? { starting_after: after } : {}),
          }),
        'list subscriptions',
      );
      return all
        .filter((sub) => sub.status !== 'canceled' && sub.status !== 'incomplete_expired')
        .map(toSubscriptionView);
    },

    async createCheckoutSession(spec) {
      const key = newKey();
      const session = await call('create checkout session', () =>
        http(() =>
          stripe.checkout.sessions.create(
            {
              mode: 'subscription',
              ...(spec.stripeCustomerId ? { customer: spec.stripeCustomerId } : {}),
              ...(spec.email && !spec.stripeCustomerId ? { customer_email: spec.email } : {}),
              client_reference_id: spec.customerKey,
              line_items: spec.priceIds.map((price) => ({ price })),
              subscription_data: {
                billing_cycle_anchor: spec.billingCycleAnchor,
                metadata: { billing_meter_customer: spec.customerKey },
              },
              metadata: { billing_meter_customer: spec.customerKey },
              success_url: spec.successUrl,
              ...(spec.cancelUrl ? { cancel_url: spec.cancelUrl } : {}),
            },
            { idempotencyKey: key },
          ),
        ),
      );
      return { id: session.id, url: session.url ?? '' };
    },

    async createSubscription(spec) {
      const sub = await call('create subscription', () =>
        http(() =>
          stripe.subscriptions.create(
            {
              customer: spec.stripeCustomerId,
              items: spec.priceIds.map((price) => ({ price })),
              billing_cycle_anchor: spec.billingCycleAnchor,
              metadata: { billing_meter_customer: spec.customerKey },
            },
            { idempotencyKey: spec.idempotencyKey },
          ),
        ),
      );
      return toSubscriptionView(sub);
    },

    send(event) {
      return call('send meter event', async (): Promise<MeterEventOutcome> => {
        try {
          const created = await http(() =>
            stripe.billing.meterEvents.create(
              {
                event_name: event.eventName,
                identifier: event.identifier,
                timestamp: Math.floor(event.timestamp.getTime() / 1000),
                payload: meterEventPayload(event),
              },
              { idempotencyKey: event.identifier },
            ),
          );
          return isReplay(created) ? 'duplicate' : 'applied';
        } catch (error) {
          if (isDuplicateIdentifier(error)) return 'duplicate';
          throw error;
        }
      });
    },

    cancel(eventName, identifier) {
      return call('cancel meter event', async (): Promise<CancelOutcome> => {
        try {
          await http(() =>
            stripe.billing.meterEventAdjustments.create(
              { event_name: eventName, type: 'cancel', cancel: { identifier } },
              { idempotencyKey: `cancel-${identifier}` },
            ),
          );
          return 'cancelled';
        } catch (error) {
          const outcome = cancelOutcomeOf(error);
          if (outcome !== undefined) return outcome;
          throw error;
        }
      });
    },

    async sendBatch(events) {
      for (let i = 0; i < events.length; i += STREAM_MAX_BATCH) {
        const batch = events.slice(i, i + STREAM_MAX_BATCH).map((e) => ({
          event_name: e.eventName,
          identifier: e.identifier,
          timestamp: new Date(Math.floor(e.timestamp.getTime() / 1000) * 1000).toISOString(),
          payload: meterEventPayload(e),
        }));
        const key = newKey();
        await call('send meter event batch', () => streamOnce(batch, key));
      }
    },

    async listMeters() {
      const meters = await listAll(
        (after) =>
          stripe.billing.meters.list({ limit: PAGE_SIZE, ...(after ? { starting_after: after } : {}) }),
        'list meters',
      );
      return meters.map(toMeter);
    },

    async createMeter(spec) {
      const key = newKey();
      const meter = await call('create meter', () =>
        http(() =>
          stripe.billing.meters.create(
            {
              display_name: spec.displayName,
              event_name: spec.eventName,
              default_aggregation: { formula: spec.formula },
              customer_mapping: { type: 'by_id', event_payload_key: spec.customerPayloadKey },
              value_settings: { event_payload_key: spec.valuePayloadKey },
            },
            { idempotencyKey: key },
          ),
        ),
      );
      return toMeter(meter);
    },

    async updateMeterDisplayName(id, displayName) {
      const meter = await call('update meter', () =>
        http(() => stripe.billing.meters.update(id, { display_name: displayName })),
      );
      return toMeter(meter);
    },

    retrieveProduct(id) {
      return call('retrieve product', async () => {
        try {
          return toProduct(await http(() => stripe.products.retrieve(id)));
        } catch (error) {
          if (error instanceof Stripe.errors.StripeError && error.statusCode === 404) return undefined;
          throw error;
        }
      });
    },

    async createProduct(spec) {
      const key = newKey();
      const product = await call('create product', () =>
        http(() =>
          stripe.products.create(
            { id: spec.id, name: spec.name, ...(spec.description ? { description: spec.description } : {}) },
            { idempotencyKey: key },
          ),
        ),
      );
      return toProduct(product);
    },

    async updateProduct(id, spec) {
      const product = await call('update product', () =>
        http(() =>
          stripe.products.update(id, {
            name: spec.name,
            ...(spec.description !== undefined ? { description: spec.description } : {}),
            ...(spec.active !== undefined ? { active: spec.active } : {}),
          }),
        ),
      );
      return toProduct(product);
    },

    async pricesByLookupKey(lookupKeys) {
      const prices: StripePrice[] = [];
      for (let i = 0; i < lookupKeys.length; i += LOOKUP_KEYS_PER_CALL) {
        const keys = lookupKeys.slice(i, i + LOOKUP_KEYS_PER_CALL);
        const page = await listAll(
          (after) =>
            stripe.prices.list({
              lookup_keys: keys,
              expand: ['data.tiers'],
              limit: PAGE_SIZE,
              ...(after ? { starting_after: after } : {}),
            }),
          'list prices',
        );
        prices.push(...page.map(toPrice));
      }
      return prices;
    },

    async createPrice(spec) {
      if (spec.meterId === null) throw new TypeError('a metered price needs a meter id');
      const meterId = spec.meterId;
      const key = newKey();
      const price = await call('create price', () =>
        http(() =>
          stripe.prices.create(
            {
              currency: spec.currency,
              product: spec.product,
              lookup_key: spec.lookupKey,
              transfer_lookup_key: true,
              ...(spec.nickname ? { nickname: spec.nickname } : {}),
              recurring: {
                interval: (spec.interval ?? 'month') as Stripe.PriceCreateParams.Recurring.Interval,
                usage_type: 'metered',
                meter: meterId,
              },
              billing_scheme: 'tiered',
              tiers_mode: spec.tiersMode ?? 'graduated',
              tiers: spec.tiers.map(toTierParam),
              expand: ['tiers'],
            },
            { idempotencyKey: key },
          ),
        ),
      );
      return toPrice(price);
    },

    async meterByEventName(eventName) {
      const active = await listAll(
        (after) =>
          stripe.billing.meters.list({
            status: 'active',
            limit: PAGE_SIZE,
            ...(after ? { starting_after: after } : {}),
          }),
        'list meters',
      );
      const meter = active.find((m) => m.event_name === eventName);
      return meter === undefined ? undefined : toMeter(meter);
    },

    async summary(meterId, stripeCustomerId, start, end) {
      const summaries = await listAll(
        (after) =>
          stripe.billing.meters.listEventSummaries(meterId, {
            customer: stripeCustomerId,
            start_time: Math.floor(start.getTime() / 1000),
            end_time: Math.floor(end.getTime() / 1000),
            limit: PAGE_SIZE,
            ...(after ? { starting_after: after } : {}),
          }),
        'list meter event summaries',
      );
      let total = 0n;
      for (const s of summaries) {
        if (!Number.isSafeInteger(s.aggregated_value)) {
          throw new StripeCallError(
            `meter event summary ${s.id}: aggregated_value ${s.aggregated_value} is not a whole number`,
            false,
            { kind: 'other' },
          );
        }
        total += BigInt(s.aggregated_value);
      }
      return total;
    },
  };
}

// --- translation -------------------------------------------------------------------------------------

function meterEventPayload(event: MeterEventCall): Record<string, string> {
  return { [CUSTOMER_PAYLOAD_KEY]: event.stripeCustomerId, [VALUE_PAYLOAD_KEY]: event.value.toString() };
}

function isReplay(response: { lastResponse?: { headers?: Record<string, string> } }): boolean {
  return response.lastResponse?.headers?.['idempotent-replayed'] === 'true';
}

/** Stripe refuses a repeated identifier; the v1 body varies in public reports, so several shapes match. */
function isDuplicateIdentifier(error: unknown): boolean {
  if (!(error instanceof Stripe.errors.StripeError) || error.statusCode !== 400) return false;
  if (error.code === 'resource_already_exists' || error.code === 'duplicate_meter_event') return true;
  return error.param === 'identifier' && /already exists/i.test(error.message);
}

function cancelOutcomeOf(error: unknown): CancelOutcome | undefined {
  if (!(error instanceof Stripe.errors.StripeError)) return undefined;
  switch (error.code) {
    case 'meter_event_already_cancelled':
      return 'already_cancelled';
    case 'meter_event_adjustment_window_passed':
      return 'window_passed';
    case 'resource_missing':
      return 'not_found';
    default:
      return undefined;
  }
}

/** The code `gatedHttpClient` gives a closed connection (anything the SDK does not retry). */
const CONNECTION_CLOSED_CODE = 'ECONNCLOSED';

/** Low-level network failures that may surface outside the SDK's StripeConnectionError. */
const NETWORK_ERROR_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_SOCKET',
  CONNECTION_CLOSED_CODE,
]);

/**
 * Any error thrown by the SDK (or around it) → StripeCallError. Retryable: network errors and
 * timeouts, 429, 5xx and 409 (a lock timeout or a concurrent request with the same idempotency key;
 * stripe-node retries every 409 too), unless `Stripe-Should-Retry: false`; `Stripe-Should-Retry: true`
 * makes anything retryable.
 */
export function translateStripeError(error: unknown, what: string): StripeCallError {
  if (error instanceof StripeCallError) return error;
  if (error instanceof Stripe.errors.StripeError) {
    const status = error.statusCode;
    const header = error.headers?.['stripe-should-retry'];
    const shouldRetry = header === 'true' ? true : header === 'false' ? false : undefined;
    let kind: StripeCallError['details']['kind'];
    if (error instanceof Stripe.errors.StripeConnectionError) kind = 'network';
    else if (status === 429 || error instanceof Stripe.errors.StripeRateLimitError) kind = 'rate_limited';
    else if (status !== undefined && status >= 500) kind = 'server';
    // An unreadable answer (a proxy's HTML error page): a server-side problem.
    else if (status === undefined && error instanceof Stripe.errors.StripeAPIError) kind = 'server';
    else if (status === 401 || status === 403) kind = 'authentication';
    else if (status !== undefined && status >= 400) kind = 'invalid_request';
    else kind = 'other';
    const transient = kind === 'network' || kind === 'rate_limited' || kind === 'server' || status === 409;
    const details: StripeCallError['details'] = { kind };
    if (status !== undefined) details.status = status;
    if (error.code !== undefined) details.code = error.code;
    if (shouldRetry !== undefined) details.shouldRetry = shouldRetry;
    if (error.param !== undefined) details.param = error.param;
    const detailCode = networkCodeOf(error.detail);
    const suffix = kind === 'network' && detailCode !== undefined ? ` (${detailCode})` : '';
    return new StripeCallError(
      `${what}: ${redactKeys(error.message)}${suffix}`,
      shouldRetry ?? transient,
      details,
      {
        cause: error,
      },
    );
  }
  const code = networkCodeOf(error);
  if (code !== undefined && NETWORK_ERROR_CODES.has(code)) {
    return new StripeCallError(
      `${what}: network error (${code})`,
      true,
      { kind: 'network' },
      { cause: error },
    );
  }
  const message = error instanceof Error ? error.message : String(error);
  return new StripeCallError(`${what}: ${redactKeys(message)}`, false, { kind: 'other' }, { cause: error });
}

/**
 * Stripe masks most of a key it quotes back ("Invalid API Key provided: sk_live_****1234"), but not a
 * short one; messages end up in logs, so any key-like token is redacted here whatever Stripe did.
 */
function redactKeys(message: string): string {
  return message.replace(/\b(sk|rk|pk)_(live|test)_[A-Za-z0-9*]+/g, '$1_$2_[redacted]');
}

function networkCodeOf(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * The SDK's HTTP client with two changes:
 * - Every request waits for the rate limiter right before it goes out, and tells it when it is over.
 * - stripe-node retries a request once when its connection closes (ECONNRESET, EPIPE), even with
 *   `maxNetworkRetries: 0`, because the request usually never reached Stripe. Usually: a meter event may
 *   have been applied, and an invisible retry would hide that from the ledger. Renaming the error code
 *   turns it into an ordinary connection error that our retry sees.
 */
function gatedHttpClient(inner: HttpClient, limiter: RateLimiter): HttpClient {
  const wrapper = Object.create(inner) as HttpClient;
  wrapper.makeRequest = async (...args: Parameters<HttpClient['makeRequest']>) => {
    const done = await limiter.acquire();
    // The call holds its place in the limiter's window until its response (headers) is back or it failed.
    return inner
      .makeRequest(...args)
      .finally(done)
      .catch((error: unknown) => {
        const code = networkCodeOf(error);
        if (code !== undefined && Stripe.HttpClient.CONNECTION_CLOSED_ERROR_CODES.includes(code)) {
          const closed = new Error(`connection closed (${code})`, { cause: error }) as Error & {
            code: string;
          };
          closed.code = CONNECTION_CLOSED_CODE;
          throw closed;
        }
        throw error;
      });
  };
  return wrapper;
}

function toMeter(m: Stripe.Billing.Meter): StripeMeter {
  return {
    id: m.id,
    displayName: m.display_name,
    eventName: m.event_name,
    formula: m.default_aggregation.formula as StripeFormula,
    customerPayloadKey: m.customer_mapping.event_payload_key,
    valuePayloadKey: m.value_settings.event_payload_key,
    status: m.status === 'active' ? 'active' : 'inactive',
  };
}

function toProduct(p: Stripe.Product): StripeProduct {
  return { id: p.id, name: p.name, active: p.active, description: p.description };
}

/** A Stripe decimal (a Decimal on this SDK, a string on older ones) as a plain decimal string. */
function decimalText(decimal: unknown, integer: number | null | undefined): string | undefined {
  if (decimal !== null && decimal !== undefined) return String(decimal);
  if (integer !== null && integer !== undefined) return String(integer);
  return undefined;
}

function toPrice(p: Stripe.Price): StripePrice {
  const tiers: StripeTier[] = (p.tiers ?? []).map((t) => {
    const tier: StripeTier = { upTo: t.up_to ?? 'inf' };
    const unit = decimalText(t.unit_amount_decimal, t.unit_amount);
    const flat = decimalText(t.flat_amount_decimal, t.flat_amount);
    if (unit !== undefined) tier.unitAmountDecimal = unit;
    if (flat !== undefined) tier.flatAmountDecimal = flat;
    return tier;
  });
  return {
    id: p.id,
    lookupKey: p.lookup_key,
    product: typeof p.product === 'string' ? p.product : p.product.id,
    active: p.active,
    currency: p.currency,
    meterId: p.recurring?.meter ?? null,
    interval: p.recurring?.interval ?? null,
    usageType: p.recurring?.usage_type ?? null,
    tiersMode: p.tiers_mode === 'graduated' ? 'graduated' : p.tiers_mode === 'volume' ? 'volume' : null,
    tiers,
  };
}

function toTierParam(t: StripeTier): Stripe.PriceCreateParams.Tier {
  return {
    up_to: t.upTo,
    ...(t.unitAmountDecimal !== undefined
      ? { unit_amount_decimal: Stripe.Decimal.from(t.unitAmountDecimal) }
      : {}),
    ...(t.flatAmountDecimal !== undefined
      ? { flat_amount_decimal: Stripe.Decimal.from(t.flatAmountDecimal) }
      : {}),
  };
}

function toSubscriptionView(sub: Stripe.Subscription): StripeSubscriptionView {
  return { id: sub.id, status: sub.status, priceIds: sub.items.data.map((i) => i.price.id) };
}

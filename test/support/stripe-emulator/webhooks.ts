// Webhook endpoints (/v1/webhook_endpoints) and delivery. Every event the account emits goes to each
// enabled endpoint whose enabled_events hold its type or '*', as a POST of the event JSON signed like
// Stripe: `Stripe-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`. Delivery is
// asynchronous (the API call that caused the event has already answered); a non-2xx answer or a network
// error is retried with a short backoff (real ms, so tests stay fast), each attempt freshly signed.
// The signature timestamp is the emulated clock unless a `webhookClock` is given: a test that fixes the
// emulator's clock verifies with `constructEvent(..., tolerance, undefined, receivedAt)` or a real clock.
import { createHmac, randomBytes } from 'node:crypto';
import {
  applyMetadata,
  arrayParam,
  ok,
  paginate,
  route,
  stringParam,
  type EmulatorRequest,
  type Route,
} from './routing.ts';
import { endpointWants, type EmulatorState, type StripeEvent, type WebhookEndpoint } from './state.ts';
import { invalidParam, missingParam, resourceMissing, unknownParams } from './stripe-error.ts';

export interface WebhookAttempt {
  /** Real time the attempt was sent, ms. */
  atRealMs: number;
  signature: string;
  /** HTTP status the endpoint answered; undefined when the request failed before an answer. */
  status?: number;
  error?: string;
}

export interface WebhookDelivery {
  endpointId: string;
  url: string;
  event: StripeEvent;
  /** The exact body sent (the same on every attempt). */
  body: string;
  attempts: WebhookAttempt[];
  state: 'pending' | 'succeeded' | 'failed';
}

export interface SignedWebhook {
  body: string;
  /** The `Stripe-Signature` header value. */
  signature: string;
  timestamp: number;
}

/** Signs a payload exactly as Stripe does; `body` is the event JSON unless a string is given. */
export function signWebhook(event: object | string, secret: string, timestampSeconds: number): SignedWebhook {
  const body = typeof event === 'string' ? event : JSON.stringify(event, null, 2);
  const v1 = createHmac('sha256', secret).update(`${timestampSeconds}.${body}`, 'utf8').digest('hex');
  return { body, signature: `t=${timestampSeconds},v1=${v1}`, timestamp: timestampSeconds };
}

export interface WebhookDispatcherOptions {
  /** Waits between attempts, real ms; the number of retries is its length (default 50, 100, 200). */
  retryDelaysMs?: number[];
  /** Per-attempt timeout, real ms (default 5 s). */
  attemptTimeoutMs?: number;
  /** Signature timestamps, ms (default: the emulated clock). */
  clock: () => number;
}

export class WebhookDispatcher {
  readonly deliveries: WebhookDelivery[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private stopped = false;
  private readonly retryDelaysMs: number[];
  private readonly attemptTimeoutMs: number;

  constructor(
    private readonly state: EmulatorState,
    private readonly options: WebhookDispatcherOptions,
  ) {
    this.retryDelaysMs = options.retryDelaysMs ?? [50, 100, 200];
    this.attemptTimeoutMs = options.attemptTimeoutMs ?? 5000;
  }

  dispatch(event: StripeEvent): void {
    for (const endpoint of this.state.webhookEndpoints.values()) {
      if (!endpointWants(endpoint, event.type)) continue;
      const delivery: WebhookDelivery = {
        endpointId: endpoint.id,
        url: endpoint.url,
        event,
        body: JSON.stringify(event, null, 2),
        attempts: [],
        state: 'pending',
      };
      this.deliveries.push(delivery);
      const running = this.run(delivery, endpoint.secret).finally(() => this.inFlight.delete(running));
      this.inFlight.add(running);
    }
  }

  /** Resolves once every delivery so far (and any it led to) has succeeded or run out of retries. */
  async settled(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  stop(): void {
    this.stopped = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
  }

  private async run(delivery: WebhookDelivery, secret: string): Promise<void> {
    // Let the API response that caused the event leave first, as Stripe delivers after the fact.
    await this.sleep(0);
    for (let attempt = 0; attempt <= this.retryDelaysMs.length && !this.stopped; attempt++) {
      if (attempt > 0) await this.sleep(this.retryDelaysMs[attempt - 1] ?? 0);
      if (this.stopped) break;
      const signed = signWebhook(delivery.body, secret, Math.floor(this.options.clock() / 1000));
      const record: WebhookAttempt = { atRealMs: Date.now(), signature: signed.signature };
      delivery.attempts.push(record);
      try {
        const res = await fetch(delivery.url, {
          method: 'POST',
          headers: {
            'Content-Type': 'application/json; charset=utf-8',
            'Stripe-Signature': signed.signature,
            'User-Agent': 'Stripe/1.0 (+https://stripe.com/docs/webhooks)',
          },
          body: delivery.body,
          signal: AbortSignal.timeout(this.attemptTimeoutMs),
        });
        record.status = res.status;
        await res.arrayBuffer().catch(() => undefined);
        if (res.status >= 200 && res.status < 300) {
          delivery.state = 'succeeded';
          return;
        }
      } catch (error) {
        record.error = error instanceof Error ? error.message : String(error);
      }
    }
    delivery.state = 'failed';
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        resolve();
      }, ms);
      this.timers.add(timer);
    });
  }
}

const PUBLIC_FIELDS = (endpoint: WebhookEndpoint): Omit<WebhookEndpoint, 'secret'> => {
  const { secret: _secret, ...rest } = endpoint;
  return rest;
};

function findEndpoint(req: EmulatorRequest): WebhookEndpoint {
  const id = req.params.id ?? '';
  const endpoint = req.state.webhookEndpoints.get(id);
  if (endpoint === undefined) throw resourceMissing('webhook_endpoint', id);
  return endpoint;
}

function parseEnabledEvents(body: Record<string, unknown>): string[] | undefined {
  const raw = arrayParam(body, 'enabled_events');
  if (raw === undefined) return undefined;
  if (raw.length === 0) throw missingParam('enabled_events');
  return raw.map((value, i) => {
    if (typeof value !== 'string' || !/^(\*|[a-z_]+(\.[a-z_*]+)+)$/.test(value))
      throw invalidParam(`Invalid enabled_events[${i}]: ${String(value)}`, `enabled_events[${i}]`);
    return value;
  });
}

function parseUrl(body: Record<string, unknown>): string | undefined {
  const url = stringParam(body, 'url');
  if (url === undefined) return undefined;
  try {
    const parsed = new URL(url);
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new Error('scheme');
  } catch {
    throw invalidParam(`Invalid URL: ${url}`, 'url', 'url_invalid');
  }
  return url;
}

export const webhookEndpointRoutes: Route[] = [
  route('POST', '/v1/webhook_endpoints', (req) => {
    unknownParams(req.body, ['url', 'enabled_events', 'description', 'metadata', 'api_version']);
    const url = parseUrl(req.body);
    if (url === undefined) throw missingParam('url');
    const enabled = parseEnabledEvents(req.body);
    if (enabled === undefined) throw missingParam('enabled_events');
    const metadata: Record<string, string> = {};
    applyMetadata(metadata, req.body.metadata);
    const endpoint: WebhookEndpoint = {
      id: req.state.newId('we'),
      object: 'webhook_endpoint',
      api_version: stringParam(req.body, 'api_version') ?? null,
      application: null,
      created: req.state.nowSeconds(),
      description: stringParam(req.body, 'description') ?? null,
      enabled_events: enabled,
      livemode: false,
      metadata,
      secret: `whsec_${randomBytes(24).toString('hex')}`,
      status: 'enabled',
      url,
    };
    req.state.webhookEndpoints.set(endpoint.id, endpoint);
    return ok(endpoint);
  }),
  route('GET', '/v1/webhook_endpoints/:id', (req) => ok(PUBLIC_FIELDS(findEndpoint(req)))),
  route('POST', '/v1/webhook_endpoints/:id', (req) => {
    unknownParams(req.body, ['url', 'enabled_events', 'description', 'metadata', 'disabled']);
    const endpoint = findEndpoint(req);
    const url = parseUrl(req.body);
    const enabled = parseEnabledEvents(req.body);
    const disabled = req.body.disabled;
    if (disabled !== undefined && disabled !== 'true' && disabled !== 'false')
      throw invalidParam('Invalid boolean', 'disabled');
    applyMetadata(endpoint.metadata, req.body.metadata);
    if (url !== undefined) endpoint.url = url;
    if (enabled !== undefined) endpoint.enabled_events = enabled;
    const description = stringParam(req.body, 'description');
    if (description !== undefined) endpoint.description = description === '' ? null : description;
    if (disabled !== undefined) endpoint.status = disabled === 'true' ? 'disabled' : 'enabled';
    return ok(PUBLIC_FIELDS(endpoint));
  }),
  route('GET', '/v1/webhook_endpoints', (req) => {
    unknownParams(req.query, ['limit', 'starting_after', 'ending_before']);
    return paginate(
      '/v1/webhook_endpoints',
      req.query,
      [...req.state.webhookEndpoints.values()].reverse(),
      PUBLIC_FIELDS,
    );
  }),
  route('DELETE', '/v1/webhook_endpoints/:id', (req) => {
    const endpoint = findEndpoint(req);
    req.state.webhookEndpoints.delete(endpoint.id);
    return ok({ id: endpoint.id, object: 'webhook_endpoint', deleted: true });
  }),
];

/** /v1/events: the account's event log, newest first. */
export const eventRoutes: Route[] = [
  route('GET', '/v1/events/:id', (req) => {
    const id = req.params.id ?? '';
    const event = req.state.events.find((e) => e.id === id);
    if (event === undefined) throw resourceMissing('event', id);
    return ok(event);
  }),
  route('GET', '/v1/events', (req) => {
    unknownParams(req.query, ['limit', 'starting_after', 'ending_before', 'type', 'types']);
    const type = stringParam(req.query, 'type');
    const all = [...req.state.events].reverse().filter((e) => type === undefined || e.type === type);
    return paginate('/v1/events', req.query, all);
  }),
];

// The Stripe emulator's HTTP edge: a plain node:http server that records every request, applies
// queued faults, authenticates, parses Stripe's two wire formats (v1 form-encoded, v2 JSON), replays
// idempotent requests, and turns StripeEmulatorError into Stripe's error envelope. It also owns the
// webhook dispatcher and the test helpers (paying an invoice, rolling a subscription, signing a payload).
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { checkoutSessionRoutes, checkoutSessions, renderCheckoutSession } from './checkout-sessions.ts';
import { customerRoutes } from './customers.ts';
import { drawInvoice, invoiceRoutes } from './invoices.ts';
import { priceRoutes } from './prices.ts';
import { productRoutes } from './products.ts';
import { renderSubscription, rollSubscription, subscriptionRoutes } from './subscriptions.ts';
import {
  eventRoutes,
  signWebhook,
  WebhookDispatcher,
  webhookEndpointRoutes,
  type SignedWebhook,
  type WebhookDelivery,
} from './webhooks.ts';
import { FaultInjector } from './faults.ts';
import { parseForm, type FormObject } from './form-encoding.ts';
import { IdempotencyStore } from './idempotency.ts';
import { meterEventRoutes } from './meter-events.ts';
import { meterEventStreamRoutes, sessionForToken } from './meter-event-stream.ts';
import { meterRoutes } from './meters.ts';
import { findRoute, type EmulatorResponse, type Route } from './routing.ts';
import { createClock, EmulatorState, type EmulatorClock, type EventCause } from './state.ts';
import { StripeEmulatorError } from './stripe-error.ts';

export interface RecordedRequest {
  method: string;
  path: string;
  query: FormObject;
  headers: Record<string, string | string[] | undefined>;
  /** Parsed body: a nested object for form bodies, the JSON value for v2. */
  body: unknown;
  rawBody: string;
  /** Emulated time the request arrived, ms. */
  atMs: number;
  /** Real wall-clock time the request arrived, ms (Date.now), for rate checks in benchmarks. */
  receivedAtRealMs: number;
}

export interface StripeEmulatorOptions {
  /** Base clock in ms (default Date.now); `advanceClock` adds to it. */
  clock?: () => number;
  /** Host to bind (default 127.0.0.1). */
  host?: string;
  /** Delay before every request is handled, real ms (default 0); change it later with setLatency. */
  latencyMs?: number;
  /** Waits between webhook delivery attempts, real ms; its length is the number of retries (default [50, 100, 200]). */
  webhookRetryDelaysMs?: number[];
  /** Clock for webhook signature timestamps, ms (default: the emulated clock). */
  webhookClock?: () => number;
  /**
   * `false`: `requests` keeps method, path and times only (no headers, query or body), for a benchmark
   * whose garbage collections would otherwise stall the emulator and bunch its arrival times.
   */
  recordBodies?: boolean;
}

export interface PayInvoiceOptions {
  /** Whether the payment succeeds (invoice.paid) or fails (invoice.payment_failed); default true. */
  succeed?: boolean;
  /** Which subscription to invoice; default the customer's active subscription whose period ends first. */
  subscription?: string;
}

export interface StripeEmulator {
  /** `http://127.0.0.1:PORT`, for STRIPE_API_BASE. */
  url: string;
  host: string;
  port: number;
  state: EmulatorState;
  faults: FaultInjector;
  requests: RecordedRequest[];
  clock: EmulatorClock;
  /** Moves emulated time forward (identifier dedupe, timestamp window, sessions, idempotency). */
  advanceClock(ms: number): void;
  /** Options for `new Stripe(key, …)` pointing at this emulator. */
  stripeOptions(): { host: string; port: number; protocol: 'http' };
  /** Sets the injected per-request latency, real ms. */
  setLatency(ms: number): void;
  /** Every webhook delivery so far: the event, the body sent, each attempt's signature and answer. */
  webhookDeliveries: WebhookDelivery[];
  /** Resolves when every webhook delivery so far has succeeded or run out of retries. */
  webhooksSettled(): Promise<void>;
  /**
   * Signs a payload as Stripe would (for forgery and replay tests): `body` is the event as pretty JSON
   * (or the string given), `signature` the Stripe-Signature header. Timestamp defaults to the webhook clock.
   */
  signWebhook(event: object | string, secret: string, timestampSeconds?: number): SignedWebhook;
  /**
   * Draws the invoice of the customer's subscription for its current period, pays it or fails to, and
   * emits invoice.created, invoice.finalized, then invoice.paid + invoice.payment_succeeded or
   * invoice.payment_failed. Returns the invoice object. Throws (a plain Error) if there is nothing to bill.
   */
  payInvoice(customerId: string, options?: PayInvoiceOptions): Record<string, unknown>;
  /**
   * Moves a subscription to its next billing period (emits customer.subscription.updated), or ends it if
   * it was set to cancel at period end (customer.subscription.deleted). Does not move the clock.
   * Returns the subscription object as the API renders it.
   */
  rollSubscription(subscriptionId: string): Record<string, unknown>;
  /**
   * Plays the customer completing a Checkout session: creates the customer if the session named none
   * (with its customer_email), creates the subscription to its prices (with its billing cycle anchor),
   * marks it complete and emits checkout.session.completed. Returns the session as the API renders it.
   */
  completeCheckoutSession(sessionId: string): Record<string, unknown>;
  stop(): Promise<void>;
}

const ROUTES: Route[] = [
  ...customerRoutes,
  ...meterRoutes,
  ...meterEventRoutes,
  ...meterEventStreamRoutes,
  ...productRoutes,
  ...priceRoutes,
  ...subscriptionRoutes,
  ...checkoutSessionRoutes,
  ...invoiceRoutes,
  ...webhookEndpointRoutes,
  ...eventRoutes,
];
const STREAM_PATH = '/v2/billing/meter_event_stream';
const DEFAULT_TIMEOUT_FAULT_MS = 30_000;

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function bearer(req: IncomingMessage): string {
  const auth = header(req, 'authorization');
  if (auth === undefined || !auth.startsWith('Bearer ') || auth.length <= 'Bearer '.length) {
    throw new StripeEmulatorError(
      401,
      'invalid_request_error',
      "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
    );
  }
  return auth.slice('Bearer '.length).trim();
}

function authenticate(req: IncomingMessage, path: string, state: EmulatorState): void {
  const key = bearer(req);
  if (path === STREAM_PATH) {
    sessionForToken(state, key);
    return;
  }
  if (!/^sk_test_\w+$/.test(key)) {
    const shown =
      key.length > 8 ? `${key.slice(0, 8)}${'*'.repeat(Math.max(0, key.length - 12))}${key.slice(-4)}` : key;
    throw new StripeEmulatorError(
      401,
      'invalid_request_error',
      `Invalid API Key provided: ${shown}`,
      'api_key_invalid',
    );
  }
}

function parseBody(raw: string, path: string): Record<string, unknown> {
  if (!path.startsWith('/v2/')) return parseForm(raw);
  if (raw.trim() === '') return {};
  try {
    const value: unknown = JSON.parse(raw);
    if (typeof value === 'object' && value !== null && !Array.isArray(value))
      return value as Record<string, unknown>;
  } catch {
    // fall through to the error below
  }
  throw new StripeEmulatorError(400, 'invalid_request_error', 'Invalid JSON body.');
}

export async function startStripeEmulator(options: StripeEmulatorOptions = {}): Promise<StripeEmulator> {
  const clock = createClock(options.clock);
  const state = new EmulatorState(clock);
  const faults = new FaultInjector();
  const requests: RecordedRequest[] = [];
  const idempotency = new IdempotencyStore(() => clock.now());
  const heldTimers = new Set<NodeJS.Timeout>();
  const requestIds = new WeakMap<IncomingMessage, string>();
  let requestCounter = 0;
  let latencyMs = options.latencyMs ?? 0;
  const webhookClock = options.webhookClock ?? (() => clock.now());
  const dispatcher = new WebhookDispatcher(state, {
    clock: webhookClock,
    ...(options.webhookRetryDelaysMs === undefined ? {} : { retryDelaysMs: options.webhookRetryDelaysMs }),
  });
  state.onEvent = (event) => dispatcher.dispatch(event);

  function requestId(req: IncomingMessage): string {
    let id = requestIds.get(req);
    if (id === undefined) {
      requestCounter += 1;
      id = `req_emu${String(requestCounter).padStart(10, '0')}`;
      requestIds.set(req, id);
    }
    return id;
  }

  function delay(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        heldTimers.delete(timer);
        resolve();
      }, ms);
      heldTimers.add(timer);
    });
  }

  function send(
    res: ServerResponse,
    req: IncomingMessage,
    response: EmulatorResponse,
    extra: Record<string, string> = {},
  ): void {
    if (res.destroyed || res.headersSent) return;
    const body = JSON.stringify(response.body);
    res.writeHead(response.status, {
      'Content-Type': 'application/json',
      'Content-Length': Buffer.byteLength(body),
      'Request-Id': requestId(req),
      'Stripe-Version': header(req, 'stripe-version') ?? '2026-10-28.endive',
      ...extra,
    });
    res.end(body);
  }

  function sendError(
    res: ServerResponse,
    req: IncomingMessage,
    error: StripeEmulatorError,
    extra: Record<string, string> = {},
  ): void {
    send(res, req, { status: error.status, body: error.toBody() }, extra);
  }

  function execute(
    method: string,
    path: string,
    query: FormObject,
    body: Record<string, unknown>,
    cause: EventCause,
  ): EmulatorResponse {
    const found = findRoute(ROUTES, method, path);
    if (found === undefined) {
      const error = new StripeEmulatorError(
        404,
        'invalid_request_error',
        `Unrecognized request URL (${method}: ${path}). Please see https://stripe.com/docs or we can help at https://support.stripe.com/.`,
      );
      return { status: error.status, body: error.toBody() };
    }
    try {
      return found.handler({ method, path, params: found.params, query, body, state, cause });
    } catch (error) {
      if (error instanceof StripeEmulatorError) return { status: error.status, body: error.toBody() };
      console.error('stripe emulator: handler failed', error);
      return {
        status: 500,
        body: new StripeEmulatorError(500, 'api_error', 'An unknown error occurred.').toBody(),
      };
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://emulator');
    const method = (req.method ?? 'GET').toUpperCase();
    const path = url.pathname;
    // When the request reached the server (its headers), as a rate limit at Stripe's edge counts it.
    const receivedAtRealMs = Date.now();
    const rawBody = await readBody(req);
    const query = parseForm(url.search.slice(1));
    let parsedForRecord: unknown;
    try {
      parsedForRecord = parseBody(rawBody, path);
    } catch {
      parsedForRecord = rawBody;
    }
    const full = options.recordBodies ?? true;
    requests.push({
      method,
      path,
      query: full ? query : {},
      headers: full ? { ...req.headers } : {},
      body: full ? parsedForRecord : undefined,
      rawBody: full ? rawBody : '',
      atMs: clock.now(),
      receivedAtRealMs,
    });
    if (latencyMs > 0) await delay(latencyMs);

    const fault = faults.take(path);
    if (fault?.kind === 'rate_limit') {
      const error = new StripeEmulatorError(
        429,
        'invalid_request_error',
        'Too many requests hit the API too quickly. We recommend an exponential backoff of your requests.',
        'rate_limit',
      );
      sendError(res, req, error, { 'Stripe-Should-Retry': 'true' });
      return;
    }
    if (fault?.kind === 'server_error') {
      sendError(res, req, new StripeEmulatorError(500, 'api_error', 'An unknown error occurred.'));
      return;
    }
    if (fault?.kind === 'timeout') {
      const timer = setTimeout(() => {
        heldTimers.delete(timer);
        req.socket.destroy();
      }, fault.options.ms ?? DEFAULT_TIMEOUT_FAULT_MS);
      heldTimers.add(timer);
      return;
    }

    const respond = (response: EmulatorResponse, extra: Record<string, string> = {}): void => {
      if (fault?.kind === 'drop_after_apply') {
        // The work is done and saved; the caller never hears about it.
        req.socket.destroy();
        return;
      }
      send(res, req, response, extra);
    };

    try {
      authenticate(req, path, state);
      const body = method === 'GET' || method === 'DELETE' ? {} : parseBody(rawBody, path);
      const key = method === 'POST' ? header(req, 'idempotency-key') : undefined;
      const cause: EventCause = { requestId: requestId(req), idempotencyKey: key ?? null };
      if (key === undefined) {
        respond(execute(method, path, query, body, cause));
        return;
      }
      const fingerprint = `${method} ${path} ${rawBody}`;
      const lookup = idempotency.begin(key, fingerprint);
      if (lookup.kind === 'replay') {
        respond(lookup.response, { 'Idempotent-Replayed': 'true', 'Idempotency-Key': key });
        return;
      }
      const response = execute(method, path, query, body, cause);
      idempotency.finish(key, fingerprint, response);
      respond(response, { 'Idempotency-Key': key });
    } catch (error) {
      if (error instanceof StripeEmulatorError) respond({ status: error.status, body: error.toBody() });
      else throw error;
    }
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      console.error('stripe emulator: request failed', error);
      if (!res.headersSent)
        sendError(res, req, new StripeEmulatorError(500, 'api_error', 'An unknown error occurred.'));
      else res.destroy();
    });
  });

  const bindHost = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, bindHost, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://${bindHost}:${port}`,
    host: bindHost,
    port,
    state,
    faults,
    requests,
    clock,
    advanceClock: (ms) => clock.advance(ms),
    stripeOptions: () => ({ host: bindHost, port, protocol: 'http' }),
    setLatency: (ms) => {
      if (!Number.isFinite(ms) || ms < 0)
        throw new RangeError(`latency must be a non-negative number of ms, got ${ms}`);
      latencyMs = ms;
    },
    webhookDeliveries: dispatcher.deliveries,
    webhooksSettled: () => dispatcher.settled(),
    signWebhook: (event, secret, timestampSeconds) =>
      signWebhook(event, secret, timestampSeconds ?? Math.floor(webhookClock() / 1000)),
    payInvoice: (customerId, payOptions) => drawInvoice(state, customerId, payOptions),
    rollSubscription: (subscriptionId) => renderSubscription(state, rollSubscription(state, subscriptionId)),
    completeCheckoutSession: (sessionId) => {
      const session = checkoutSessions(state).get(sessionId);
      if (!session) throw new Error(`no checkout session ${sessionId}`);
      if (session.status === 'complete') throw new Error(`checkout session ${sessionId} is complete already`);
      const cause: EventCause = { requestId: null, idempotencyKey: null };
      const must = (r: EmulatorResponse): Record<string, unknown> => {
        if (r.status !== 200) throw new Error(`checkout completion failed: ${JSON.stringify(r.body)}`);
        return r.body as Record<string, unknown>;
      };
      if (session.customer === null) {
        const created = must(
          execute(
            'POST',
            '/v1/customers',
            {},
            session.customerEmail ? { email: session.customerEmail } : {},
            cause,
          ),
        );
        session.customer = String(created.id);
      }
      const subscription = must(
        execute(
          'POST',
          '/v1/subscriptions',
          {},
          {
            customer: session.customer,
            items: session.priceIds.map((price) => ({ price })),
            ...(session.billingCycleAnchor === null
              ? {}
              : { billing_cycle_anchor: String(session.billingCycleAnchor) }),
            metadata: session.subscriptionMetadata,
          },
          cause,
        ),
      );
      session.subscription = String(subscription.id);
      session.status = 'complete';
      const rendered = renderCheckoutSession(session);
      state.emit('checkout.session.completed', rendered, null);
      return rendered;
    },
    stop: async () => {
      dispatcher.stop();
      for (const timer of heldTimers) clearTimeout(timer);
      heldTimers.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve, reject) =>
        server.close((error) => (error ? reject(error) : resolve())),
      );
    },
  };
}

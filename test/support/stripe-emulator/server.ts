// The Stripe emulator's HTTP edge: a plain node:http server that records every request, applies
// queued faults, authenticates, parses Stripe's two wire formats (v1 form-encoded, v2 JSON), replays
// idempotent requests, and turns StripeEmulatorError into Stripe's error envelope.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { customerRoutes } from './customers.ts';
import { FaultInjector } from './faults.ts';
import { parseForm, type FormObject } from './form-encoding.ts';
import { IdempotencyStore } from './idempotency.ts';
import { meterEventRoutes } from './meter-events.ts';
import { meterEventStreamRoutes, sessionForToken } from './meter-event-stream.ts';
import { meterRoutes } from './meters.ts';
import { findRoute, type EmulatorResponse, type Route } from './routing.ts';
import { createClock, EmulatorState, type EmulatorClock } from './state.ts';
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
}

export interface StripeEmulatorOptions {
  /** Base clock in ms (default Date.now); `advanceClock` adds to it. */
  clock?: () => number;
  /** Host to bind (default 127.0.0.1). */
  host?: string;
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
  stop(): Promise<void>;
}

const ROUTES: Route[] = [...customerRoutes, ...meterRoutes, ...meterEventRoutes, ...meterEventStreamRoutes];
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
  let requestCounter = 0;

  function send(
    res: ServerResponse,
    req: IncomingMessage,
    response: EmulatorResponse,
    extra: Record<string, string> = {},
  ): void {
    const body = JSON.stringify(response.body);
    requestCounter += 1;
    res.writeHead(response.status, {
      'Content-Type': 'application/json',
      'Content-Length': Buffer.byteLength(body),
      'Request-Id': `req_emu${String(requestCounter).padStart(10, '0')}`,
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
      return found.handler({ method, path, params: found.params, query, body, state });
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
    const rawBody = await readBody(req);
    const query = parseForm(url.search.slice(1));
    let parsedForRecord: unknown;
    try {
      parsedForRecord = parseBody(rawBody, path);
    } catch {
      parsedForRecord = rawBody;
    }
    requests.push({
      method,
      path,
      query,
      headers: { ...req.headers },
      body: parsedForRecord,
      rawBody,
      atMs: clock.now(),
    });

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
      if (key === undefined) {
        respond(execute(method, path, query, body));
        return;
      }
      const fingerprint = `${method} ${path} ${rawBody}`;
      const lookup = idempotency.begin(key, fingerprint);
      if (lookup.kind === 'replay') {
        respond(lookup.response, { 'Idempotent-Replayed': 'true', 'Idempotency-Key': key });
        return;
      }
      const response = execute(method, path, query, body);
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
    stop: async () => {
      for (const timer of heldTimers) clearTimeout(timer);
      heldTimers.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve, reject) =>
        server.close((error) => (error ? reject(error) : resolve())),
      );
    },
  };
}

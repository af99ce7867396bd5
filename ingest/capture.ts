/**
 * Turning one node:http exchange into a native record. Everything here runs either synchronously at the
 * start of the request (a few property reads, one 'finish' listener, res.write/end wrapped by shared
 * functions) or after the response has been sent ('finish'), so it can neither delay nor fail the API's
 * response; every user hook is called inside try/catch.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Identity, NativeRecord } from './native-record.ts';

export interface CaptureSettings {
  /** Lower-case header names to forward; already stripped of secret-bearing ones. */
  headerAllowList: readonly string[];
  countResponseBytes: boolean;
  identify: ((req: IncomingMessage, res: ServerResponse, context?: unknown) => Identity | null | undefined) | undefined;
  skip: ((req: IncomingMessage, res: ServerResponse, context?: unknown) => boolean) | undefined;
}

type Chunk = unknown;

function byteLength(chunk: Chunk, encoding: unknown): number {
  if (typeof chunk === 'string') {
    return Buffer.byteLength(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8');
  }
  if (chunk instanceof Uint8Array) return chunk.byteLength;
  return 0;
}

function toCount(value: number | string | string[] | undefined): number | undefined {
  if (value === undefined || Array.isArray(value)) return undefined;
  const n = typeof value === 'number' ? value : Number(value);
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

function stripQuery(url: string): string {
  const q = url.indexOf('?');
  const h = url.indexOf('#');
  const cut = q < 0 ? h : h < 0 ? q : Math.min(q, h);
  return cut < 0 ? url : url.slice(0, cut);
}

/** Per-exchange state, kept on the response under a symbol so that the hot path creates no closures. */
interface Exchange {
  capturer: Capturer;
  req: IncomingMessage;
  context: unknown;
  startedAt: number;
  started: bigint;
  method: string;
  url: string;
  /** Body bytes written; only counted when the response has no Content-Length. */
  counted: number;
  /** Decided at the first write: undefined until then. */
  counting: boolean | undefined;
  write: ServerResponse['write'];
  end: ServerResponse['end'];
}

export interface Capturer {
  settings: CaptureSettings;
  emit: (record: NativeRecord) => void;
  report: (err: unknown, what: string) => void;
}

const EXCHANGE = Symbol('billing-meter.exchange');
type ObservedResponse = ServerResponse & { [EXCHANGE]?: Exchange };

function count(exchange: Exchange, res: ServerResponse, chunk: Chunk, encoding: unknown): void {
  try {
    if (exchange.counting === undefined) exchange.counting = res.getHeader('content-length') === undefined;
    if (exchange.counting) exchange.counted += byteLength(chunk, encoding);
  } catch {
    exchange.counting = false;
  }
}

function countingWrite(this: ObservedResponse, ...args: unknown[]): boolean {
  const exchange = this[EXCHANGE]!;
  count(exchange, this, args[0], args[1]);
  return Reflect.apply(exchange.write, this, args) as boolean;
}

function countingEnd(this: ObservedResponse, ...args: unknown[]): ServerResponse {
  const exchange = this[EXCHANGE]!;
  if (typeof args[0] !== 'function') count(exchange, this, args[0], args[1]);
  return Reflect.apply(exchange.end, this, args) as ServerResponse;
}

/**
 * Starts observing an exchange; `capturer.emit` gets the record once the response has finished.
 * `context` is handed to the hooks untouched (the Koa ctx, for example). A response that never finishes
 * (the client went away first) is not recorded.
 */
export function captureExchange(capturer: Capturer, req: IncomingMessage, res: ServerResponse, context: unknown): void {
  const observed = res as ObservedResponse;
  if (observed[EXCHANGE]) return; // already observed (middleware registered twice)
  // Express rewrites req.url under mounted routers; originalUrl keeps the full path.
  const originalUrl = (req as { originalUrl?: unknown }).originalUrl;
  const exchange: Exchange = {
    capturer,
    req,
    context,
    startedAt: Date.now(),
    started: process.hrtime.bigint(),
    method: req.method ?? 'GET',
    url: typeof originalUrl === 'string' ? originalUrl : (req.url ?? '/'),
    counted: 0,
    counting: undefined,
    write: res.write,
    end: res.end,
  };
  observed[EXCHANGE] = exchange;
  if (capturer.settings.countResponseBytes) {
    res.write = countingWrite as ServerResponse['write'];
    res.end = countingEnd as ServerResponse['end'];
  }
  res.on('finish', onFinish);
}

function onFinish(this: ObservedResponse): void {
  record(this);
}

function record(res: ObservedResponse): void {
  const exchange = res[EXCHANGE];
  if (!exchange) return;
  const { capturer, req, context } = exchange;
  const { settings } = capturer;
  try {
    if (settings.skip) {
      try {
        if (settings.skip(req, res, context)) return;
      } catch (err) {
        capturer.report(err, 'skip hook threw; the request is recorded');
      }
    }
    const latencyMs = Number(process.hrtime.bigint() - exchange.started) / 1e6;
    const record: NativeRecord = {
      id: randomUUID(),
      timestamp: exchange.startedAt,
      method: exchange.method,
      path: stripQuery(exchange.url),
      status: res.statusCode,
      latency_ms: Math.round(latencyMs * 1000) / 1000,
    };
    const host = req.headers.host;
    if (host) record.host = host;
    const requestBytes = toCount(req.headers['content-length']);
    if (requestBytes !== undefined) record.request_bytes = requestBytes;
    const responseBytes = toCount(res.getHeader('content-length')) ?? (exchange.counting ? exchange.counted : undefined);
    if (responseBytes !== undefined) record.response_bytes = responseBytes;

    let headers: Record<string, string> | undefined;
    for (const name of settings.headerAllowList) {
      const value = req.headers[name];
      if (value === undefined) continue;
      headers ??= {};
      headers[name] = Array.isArray(value) ? value.join(', ') : value;
    }
    if (headers) record.headers = headers;
    const version = req.headers['x-api-version'];
    if (typeof version === 'string') record.api_version = version;

    if (settings.identify) {
      try {
        const who = settings.identify(req, res, context);
        if (who) {
          if (who.company_id != null) record.company_id = String(who.company_id);
          if (who.user_id != null) record.user_id = String(who.user_id);
          if (who.customer != null) record.customer = String(who.customer);
          if (who.api_version != null) record.api_version = String(who.api_version);
          if (who.metadata && typeof who.metadata === 'object') record.metadata = who.metadata;
        }
      } catch (err) {
        capturer.report(err, 'identify hook threw; the request is recorded without identity');
      }
    }
    capturer.emit(record);
  } catch (err) {
    capturer.report(err, 'could not record a request');
  }
}

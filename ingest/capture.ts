/**
 * Turning one node:http exchange into a native record. Everything here runs either synchronously at the
 * start of the request (a few reads, one WeakMap entry, one shared 'finish' listener) or after the
 * response has been sent ('finish'), so it can neither delay nor fail the API's response; every user
 * hook is called inside try/catch.
 *
 * By default nothing is added to or replaced on `req`/`res`: giving a ServerResponse own properties (such
 * as wrapped write/end) changes its hidden class and slows later property accesses on it, in Node's HTTP
 * code and the framework's (~25 µs a request, ~10% of an Express hello-world, in our bench on Node 20).
 * So per-exchange state lives in a WeakMap, and the body size of a response without Content-Length comes
 * from the connection's byte counter ('wire'); exact counting by wrapping write/end is opt-in ('exact').
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Identity, NativeRecord } from './native-record.ts';

/**
 * How `response_bytes` is found when a response has no Content-Length (chunked or close-delimited):
 * - 'wire': bytes the connection wrote after the header block, chunked framing included (a few bytes a
 *   write, plus 5 at the end); free. Wrong under HTTP pipelining, which clients rarely use.
 * - 'exact': body bytes counted by wrapping res.write/res.end; costs ~25 µs a request (see above).
 * - 'content-length': left out.
 */
export type ResponseBytesMode = 'wire' | 'exact' | 'content-length';

export interface CaptureSettings {
  /** Lower-case header names to forward; already stripped of secret-bearing ones. */
  headerAllowList: readonly string[];
  responseBytes: ResponseBytesMode;
  identify:
    | ((req: IncomingMessage, res: ServerResponse, context?: unknown) => Identity | null | undefined)
    | undefined;
  skip: ((req: IncomingMessage, res: ServerResponse, context?: unknown) => boolean) | undefined;
}

export interface Capturer {
  settings: CaptureSettings;
  emit: (record: NativeRecord) => void;
  report: (err: unknown, what: string) => void;
}

interface Exchange {
  capturer: Capturer;
  req: IncomingMessage;
  context: unknown;
  startedAt: number;
  started: bigint;
  method: string;
  url: string;
  /** 'wire' mode: the connection and its bytesWritten when the request arrived. */
  socket: Socket | null;
  bytesBefore: number;
  /** 'exact' mode: body bytes written, counted only if the response turns out to have no Content-Length. */
  counted: number;
  counting: boolean | undefined;
  write: ServerResponse['write'] | undefined;
  end: ServerResponse['end'] | undefined;
}

const exchanges = new WeakMap<ServerResponse, Exchange>();

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

/**
 * Starts observing an exchange; `capturer.emit` gets the record once the response has finished.
 * `context` is handed to the hooks untouched (the Koa ctx, for example). A response that never finishes
 * (the client went away first) is not recorded. Observing the same response twice records it once.
 */
export function captureExchange(
  capturer: Capturer,
  req: IncomingMessage,
  res: ServerResponse,
  context: unknown,
): void {
  if (exchanges.has(res)) return;
  // Express rewrites req.url under mounted routers; originalUrl keeps the full path.
  const originalUrl = (req as { originalUrl?: unknown }).originalUrl;
  const mode = capturer.settings.responseBytes;
  const socket = mode === 'wire' ? (req.socket as Socket | null) : null;
  const exchange: Exchange = {
    capturer,
    req,
    context,
    startedAt: Date.now(),
    started: process.hrtime.bigint(),
    method: req.method ?? 'GET',
    url: typeof originalUrl === 'string' ? originalUrl : (req.url ?? '/'),
    socket,
    bytesBefore: socket ? socket.bytesWritten : 0,
    counted: 0,
    counting: undefined,
    write: undefined,
    end: undefined,
  };
  exchanges.set(res, exchange);
  if (mode === 'exact') {
    exchange.write = res.write;
    exchange.end = res.end;
    res.write = countingWrite as ServerResponse['write'];
    res.end = countingEnd as ServerResponse['end'];
  }
  res.on('finish', onFinish);
}

function count(exchange: Exchange, res: ServerResponse, chunk: unknown, encoding: unknown): void {
  try {
    // Decided at the first write: with a Content-Length there is nothing to count.
    if (exchange.counting === undefined) exchange.counting = contentLength(res) === undefined;
    if (!exchange.counting) return;
    if (typeof chunk === 'string') {
      exchange.counted += Buffer.byteLength(
        chunk,
        typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8',
      );
    } else if (chunk instanceof Uint8Array) {
      exchange.counted += chunk.byteLength;
    }
  } catch {
    exchange.counting = false;
  }
}

function countingWrite(this: ServerResponse, ...args: unknown[]): boolean {
  const exchange = exchanges.get(this);
  if (exchange) count(exchange, this, args[0], args[1]);
  const write = exchange?.write ?? Object.getPrototypeOf(this).write;
  return Reflect.apply(write, this, args) as boolean;
}

function countingEnd(this: ServerResponse, ...args: unknown[]): ServerResponse {
  const exchange = exchanges.get(this);
  if (exchange && typeof args[0] !== 'function') count(exchange, this, args[0], args[1]);
  const end = exchange?.end ?? Object.getPrototypeOf(this).end;
  return Reflect.apply(end, this, args) as ServerResponse;
}

function onFinish(this: ServerResponse): void {
  const exchange = exchanges.get(this);
  if (!exchange) return;
  recordExchange(this, exchange);
}

/** The response's Content-Length, also when it was passed to writeHead (which getHeader does not see). */
function contentLength(res: ServerResponse): number | undefined {
  const fromHeaders = toCount(res.getHeader('content-length'));
  if (fromHeaders !== undefined) return fromHeaders;
  const header = (res as { _header?: unknown })._header;
  if (typeof header !== 'string') return undefined;
  const match = /\r\ncontent-length:[ \t]*(\d+)/i.exec(header);
  return match ? toCount(match[1]) : undefined;
}

/** 'wire' mode: what the connection wrote since the request arrived, less the header block. */
function socketBodyBytes(res: ServerResponse, exchange: Exchange): number | undefined {
  const { socket } = exchange;
  if (!socket || typeof socket.bytesWritten !== 'number') return undefined;
  const header = (res as { _header?: unknown })._header;
  const written =
    socket.bytesWritten - exchange.bytesBefore - (typeof header === 'string' ? header.length : 0);
  return written >= 0 ? written : undefined;
}

function recordExchange(res: ServerResponse, exchange: Exchange): void {
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
    const responseBytes =
      contentLength(res) ??
      (exchange.counting ? exchange.counted : undefined) ??
      socketBodyBytes(res, exchange);
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

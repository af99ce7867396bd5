/**
 * Sending one batch of native records to the collector (`POST {baseUrl}/v1/logs`), with the retry
 * policy the collector's contract asks for. Shared by the forwarder (middleware) and the file shipper,
 * so the policy lives here only:
 *
 * - 2xx: done; `{accepted, rejected}` in the body says which records the collector refused.
 * - 400/413 whose problem+json carries `accepted` and `rejected`: a per-event verdict (the valid records
 *   were stored); done, with the refused records counted as rejected.
 * - 413: split the batch in half and send each half (a single record that is still too large fails).
 * - 400/415 (bad input), 401/403 (bad key), other 4xx: not retried; the batch fails with an IngestError.
 * - 408/429/5xx, timeouts and network errors: retried up to `maxRetries` times with exponential backoff
 *   and jitter, never sooner than the collector's `Retry-After`.
 *
 * Transport is node:http/https rather than global fetch: fetch is the one global that frameworks and test
 * tools replace or patch (Next.js caches it, MSW and undici's setGlobalDispatcher intercept it), and a
 * logging add-on must not be affected by, or affect, what the API owner did to it. node:http also gives us
 * our own keep-alive Agent with a fixed socket count that `close()` can destroy.
 */
import http from 'node:http';
import https from 'node:https';
import { promisify } from 'node:util';
import { gzip as gzipCallback, constants as zlibConstants } from 'node:zlib';

const gzip = promisify(gzipCallback);

/** Closed set of reasons a record did not reach the collector. */
export type IngestErrorCode =
  | 'bad_request'
  | 'unauthorized'
  | 'payload_too_large'
  | 'unexpected_status'
  | 'retries_exhausted'
  | 'aborted'
  | 'queue_full'
  | 'capture_failed';

export class IngestError extends Error {
  readonly code: IngestErrorCode;
  /** HTTP status of the collector's last answer, when there was one. */
  readonly status: number | undefined;
  /** How many records this failure covers. */
  readonly records: number;

  constructor(
    code: IngestErrorCode,
    message: string,
    options: { status?: number; records?: number; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'IngestError';
    this.code = code;
    this.status = options.status;
    this.records = options.records ?? 0;
  }
}

/** Where to send, and how hard to try. */
export interface CollectorOptions {
  /** Collector base URL, e.g. `https://meter.example.com`; `/v1/logs` is appended. */
  baseUrl: string;
  /** Ingest key (at least 50 characters), sent as `Authorization: Bearer`. */
  apiKey: string;
  /** Gzip request bodies. Default true. */
  gzip?: boolean;
  /** Limit for one HTTP attempt, connect to last byte. Default 10 000 ms. */
  timeoutMs?: number;
  /** Retries after the first attempt for retryable failures. Default 8. */
  maxRetries?: number;
  /** First backoff step; doubles each retry. Default 250 ms. */
  retryBaseMs?: number;
  /** Largest backoff step. Default 30 000 ms. */
  retryMaxMs?: number;
  /** Largest `Retry-After` honoured; longer ones are cut to this. Default 60 000 ms. */
  retryAfterMaxMs?: number;
}

/** One record the collector refused, as reported in its 2xx answer. */
export interface Rejection {
  /** Index into the batch given to postBatch. */
  index: number;
  id?: string;
  field?: string;
  reason: string;
}

export interface PostBatchResult {
  /** Records the collector accepted. */
  accepted: number;
  /** Records the collector answered for but refused. */
  rejected: Rejection[];
  /** Records that never got an answer (see errors). */
  failed: number;
  /** Retries made, over all attempts and halves. */
  retries: number;
  errors: IngestError[];
}

export interface RetryInfo {
  attempt: number;
  delayMs: number;
  reason: string;
}

export interface PostHooks {
  /** Gives up (remaining records fail with `aborted`) as soon as it fires, even mid-request. */
  signal?: AbortSignal;
  onRetry?: (info: RetryInfo) => void;
}

export type Sleep = (ms: number, signal?: AbortSignal) => Promise<void>;

/** A resolved, validated collector endpoint with its own connection pool. */
export interface CollectorTarget {
  readonly url: URL;
  readonly apiKey: string;
  readonly gzip: boolean;
  readonly timeoutMs: number;
  readonly maxRetries: number;
  readonly retryBaseMs: number;
  readonly retryMaxMs: number;
  readonly retryAfterMaxMs: number;
  readonly agent: http.Agent;
  readonly sleep: Sleep;
  /** Closes pooled connections; in-flight requests are aborted. */
  destroy(): void;
}

export const MIN_API_KEY_LENGTH = 50;
const MAX_RESPONSE_BODY = 64 * 1024;
/** JSON request logs compress ~10x at level 3; higher levels cost CPU on the API's machine for little. */
const GZIP_LEVEL = 3;
const USER_AGENT = 'billing-meter-ingest/0.1';

export function defaultSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function positiveNumber(name: string, value: number | undefined, fallback: number, min = 0): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min) {
    throw new TypeError(
      `billing-meter ingest: ${name} must be a finite number >= ${min}, got ${String(value)}`,
    );
  }
  return value;
}

/** Validates options (throws TypeError on programmer errors) and opens a keep-alive pool. */
export function createCollectorTarget(
  options: CollectorOptions,
  extra: { sleep?: Sleep; maxSockets?: number } = {},
): CollectorTarget {
  let url: URL;
  try {
    url = new URL(options.baseUrl);
  } catch {
    throw new TypeError(`billing-meter ingest: baseUrl is not a URL: ${String(options.baseUrl)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new TypeError(`billing-meter ingest: baseUrl must be http(s), got ${url.protocol}`);
  }
  if (typeof options.apiKey !== 'string' || options.apiKey.length < MIN_API_KEY_LENGTH) {
    throw new TypeError(
      `billing-meter ingest: apiKey must be an ingest key of at least ${MIN_API_KEY_LENGTH} characters`,
    );
  }
  url.pathname = `${url.pathname.replace(/\/+$/, '')}/v1/logs`;
  url.search = '';
  url.hash = '';
  const agentOptions = { keepAlive: true, maxSockets: extra.maxSockets ?? 2, maxFreeSockets: 2 };
  const agent = url.protocol === 'https:' ? new https.Agent(agentOptions) : new http.Agent(agentOptions);
  return {
    url,
    apiKey: options.apiKey,
    gzip: options.gzip ?? true,
    timeoutMs: positiveNumber('timeoutMs', options.timeoutMs, 10_000, 1),
    maxRetries: Math.floor(positiveNumber('maxRetries', options.maxRetries, 8)),
    retryBaseMs: positiveNumber('retryBaseMs', options.retryBaseMs, 250),
    retryMaxMs: positiveNumber('retryMaxMs', options.retryMaxMs, 30_000),
    retryAfterMaxMs: positiveNumber('retryAfterMaxMs', options.retryAfterMaxMs, 60_000),
    agent,
    sleep: extra.sleep ?? defaultSleep,
    destroy: () => agent.destroy(),
  };
}

interface HttpAnswer {
  status: number;
  retryAfter: string | undefined;
  body: string;
}

function sendOnce(target: CollectorTarget, body: Buffer, signal: AbortSignal): Promise<HttpAnswer> {
  const headers: Record<string, string | number> = {
    authorization: `Bearer ${target.apiKey}`,
    'content-type': 'application/json',
    'content-length': body.length,
    accept: 'application/json',
    'user-agent': USER_AGENT,
  };
  if (target.gzip) headers['content-encoding'] = 'gzip';
  const request = target.url.protocol === 'https:' ? https.request : http.request;
  return new Promise<HttpAnswer>((resolve, reject) => {
    const req = request(target.url, { method: 'POST', agent: target.agent, headers, signal }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        if (size < MAX_RESPONSE_BODY) chunks.push(chunk);
        size += chunk.length;
      });
      let ended = false;
      res.on('error', reject);
      // Destroyed mid-body (timeout, abort, dropped connection) may end in 'close' without 'end'.
      res.on('close', () => {
        if (!ended) reject(new Error('connection closed before the response ended'));
      });
      res.on('end', () => {
        ended = true;
        const retryAfter = res.headers['retry-after'];
        resolve({
          status: res.statusCode ?? 0,
          retryAfter: Array.isArray(retryAfter) ? retryAfter[0] : retryAfter,
          body: Buffer.concat(chunks).toString('utf8', 0, MAX_RESPONSE_BODY),
        });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** `Retry-After` as milliseconds (delta-seconds or HTTP-date), clamped to [0, max]; undefined if absent/bad. */
export function parseRetryAfter(
  value: string | undefined,
  maxMs: number,
  now = Date.now(),
): number | undefined {
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  let ms: number;
  if (/^\d+$/.test(trimmed)) ms = Number(trimmed) * 1000;
  else {
    // An HTTP-date names a weekday and month; Date.parse alone also takes things like "-1".
    const at = /[a-z]{3}/i.test(trimmed) ? Date.parse(trimmed) : Number.NaN;
    if (Number.isNaN(at)) return undefined;
    ms = at - now;
  }
  return Math.min(Math.max(ms, 0), maxMs);
}

/** Exponential backoff with "equal jitter": half the step fixed, half random; never before Retry-After. */
export function retryDelay(
  target: CollectorTarget,
  attempt: number,
  retryAfterMs: number | undefined,
): number {
  const step = Math.min(target.retryMaxMs, target.retryBaseMs * 2 ** attempt);
  const jittered = step / 2 + Math.random() * (step / 2);
  return Math.max(retryAfterMs ?? 0, jittered);
}

function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

function describeProblem(body: string): string {
  try {
    const parsed: unknown = JSON.parse(body);
    if (parsed !== null && typeof parsed === 'object') {
      const { title, detail } = parsed as { title?: unknown; detail?: unknown };
      const text = [title, detail].filter((part) => typeof part === 'string').join(': ');
      if (text) return text.slice(0, 500);
    }
  } catch {
    // not JSON: fall through to the raw text
  }
  return body.slice(0, 200);
}

function parseAccepted(
  body: string,
  records: readonly object[],
): { accepted: number; rejected: Rejection[] } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return { accepted: records.length, rejected: [] };
  }
  const answer = (parsed ?? {}) as { accepted?: unknown; rejected?: unknown };
  const rejected: Rejection[] = [];
  if (Array.isArray(answer.rejected)) {
    for (const item of answer.rejected as unknown[]) {
      const entry = (item ?? {}) as { index?: unknown; field?: unknown; reason?: unknown };
      const index = typeof entry.index === 'number' ? entry.index : -1;
      const id = (records[index] as { id?: unknown } | undefined)?.id;
      rejected.push({
        index,
        ...(typeof id === 'string' ? { id } : {}),
        ...(typeof entry.field === 'string' ? { field: entry.field } : {}),
        reason: typeof entry.reason === 'string' ? entry.reason : 'rejected',
      });
    }
  }
  const accepted =
    typeof answer.accepted === 'number' ? answer.accepted : Math.max(records.length - rejected.length, 0);
  return { accepted, rejected };
}

/** A problem+json that lists rejected events (and how many were accepted) rather than refusing the batch. */
function hasEventVerdict(body: string): boolean {
  try {
    const parsed = JSON.parse(body) as { accepted?: unknown; rejected?: unknown } | null;
    return typeof parsed?.accepted === 'number' && Array.isArray(parsed.rejected);
  } catch {
    return false;
  }
}

function failure(records: number, retries: number, error: IngestError): PostBatchResult {
  return { accepted: 0, rejected: [], failed: records, retries, errors: [error] };
}

async function encode(target: CollectorTarget, records: readonly object[]): Promise<Buffer> {
  const json = Buffer.from(JSON.stringify(records), 'utf8');
  return target.gzip ? gzip(json, { level: GZIP_LEVEL, strategy: zlibConstants.Z_DEFAULT_STRATEGY }) : json;
}

/**
 * Sends `records` (any JSON objects: native records) as one JSON array, retrying as the module comment
 * says. Never throws: every outcome is in the result.
 */
export async function postBatch(
  target: CollectorTarget,
  records: readonly object[],
  hooks: PostHooks = {},
): Promise<PostBatchResult> {
  if (records.length === 0) return { accepted: 0, rejected: [], failed: 0, retries: 0, errors: [] };
  const { signal } = hooks;
  if (signal?.aborted) {
    return failure(
      records.length,
      0,
      new IngestError('aborted', 'sending was stopped', { records: records.length }),
    );
  }
  let body: Buffer;
  try {
    body = await encode(target, records);
  } catch (err) {
    return failure(
      records.length,
      0,
      new IngestError('bad_request', `could not encode batch: ${String(err)}`, {
        records: records.length,
        cause: err,
      }),
    );
  }
  let retries = 0;
  for (let attempt = 0; ; attempt++) {
    if (signal?.aborted) {
      return failure(
        records.length,
        retries,
        new IngestError('aborted', 'sending was stopped', { records: records.length }),
      );
    }
    const attemptSignal = signal
      ? AbortSignal.any([signal, AbortSignal.timeout(target.timeoutMs)])
      : AbortSignal.timeout(target.timeoutMs);
    let answer: HttpAnswer | undefined;
    let networkError: unknown;
    try {
      answer = await sendOnce(target, body, attemptSignal);
    } catch (err) {
      networkError = err;
    }

    if (answer && answer.status >= 200 && answer.status < 300) {
      return { ...parseAccepted(answer.body, records), failed: 0, retries, errors: [] };
    }
    // 400/413 with a per-event verdict: the collector judged each record, stored the valid ones and
    // named the rest. Neither resending nor splitting changes that verdict.
    if (answer && (answer.status === 400 || answer.status === 413) && hasEventVerdict(answer.body)) {
      return { ...parseAccepted(answer.body, records), failed: 0, retries, errors: [] };
    }
    if (answer?.status === 413) {
      if (records.length === 1) {
        return failure(
          1,
          retries,
          new IngestError('payload_too_large', 'a single record is larger than the collector accepts', {
            status: 413,
            records: 1,
          }),
        );
      }
      return splitAndPost(target, records, hooks, retries);
    }
    if (answer && !isRetryableStatus(answer.status)) {
      const code =
        answer.status === 401 || answer.status === 403
          ? 'unauthorized'
          : answer.status === 400 || answer.status === 415 || answer.status === 422
            ? 'bad_request'
            : 'unexpected_status';
      const message = `collector answered ${answer.status}: ${describeProblem(answer.body)}`;
      return failure(
        records.length,
        retries,
        new IngestError(code, message, { status: answer.status, records: records.length }),
      );
    }

    const reason = answer
      ? `HTTP ${answer.status}`
      : signal?.aborted
        ? 'aborted'
        : networkErrorText(networkError, target.timeoutMs);
    if (signal?.aborted) continue; // reported as `aborted` at the top of the loop
    if (attempt >= target.maxRetries) {
      return failure(
        records.length,
        retries,
        new IngestError('retries_exhausted', `gave up after ${attempt + 1} attempts, last: ${reason}`, {
          records: records.length,
          ...(answer ? { status: answer.status } : {}),
          cause: networkError,
        }),
      );
    }
    const delayMs = retryDelay(target, attempt, parseRetryAfter(answer?.retryAfter, target.retryAfterMaxMs));
    retries++;
    hooks.onRetry?.({ attempt: attempt + 1, delayMs, reason });
    await target.sleep(delayMs, signal);
  }
}

function networkErrorText(err: unknown, timeoutMs: number): string {
  if (err instanceof Error) {
    if (err.name === 'AbortError' || err.name === 'TimeoutError') return `timed out after ${timeoutMs} ms`;
    const code = (err as { code?: unknown }).code;
    return typeof code === 'string' ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}

async function splitAndPost(
  target: CollectorTarget,
  records: readonly object[],
  hooks: PostHooks,
  retriesSoFar: number,
): Promise<PostBatchResult> {
  const middle = Math.ceil(records.length / 2);
  const first = await postBatch(target, records.slice(0, middle), hooks);
  const second = await postBatch(target, records.slice(middle), hooks);
  return {
    accepted: first.accepted + second.accepted,
    rejected: [
      ...first.rejected,
      ...second.rejected.map((rejection) => ({
        ...rejection,
        index: rejection.index < 0 ? -1 : rejection.index + middle,
      })),
    ],
    failed: first.failed + second.failed,
    retries: retriesSoFar + first.retries + second.retries,
    errors: [...first.errors, ...second.errors],
  };
}

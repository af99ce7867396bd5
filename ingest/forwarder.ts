/**
 * The forwarder: a bounded in-memory queue of native records, drained in batches to the collector by
 * postBatch (one request in flight at a time), flushed when a batch is full or every flushIntervalMs.
 *
 * Guarantees to the API it runs in:
 * - it never delays or fails a response: records are built after 'finish' and queued; sending is async;
 * - memory is bounded: at most `maxQueue` records are held (queued or in flight); beyond it new records are
 *   dropped and counted in `stats().dropped`;
 * - its timers are unref()ed, so it never keeps the process alive (except while you await close()).
 *
 * Delivery is at-least-once with dedupe: every record gets a random `id`, so a batch retried after a lost
 * answer is counted once by the collector. Records still failing after `maxRetries` are dropped and
 * counted in `stats().failed` (the forwarder does not spool to disk).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import { captureExchange } from './capture.ts';
import type { Capturer, ResponseBytesMode } from './capture.ts';
import { isSensitiveHeader } from './header-policy.ts';
import { DEFAULT_HEADER_ALLOW_LIST } from './native-record.ts';
import type { Identity, NativeRecord } from './native-record.ts';
import { IngestError, createCollectorTarget, postBatch } from './post-batch.ts';
import type { CollectorOptions, CollectorTarget, PostBatchResult } from './post-batch.ts';

export interface ForwarderOptions extends CollectorOptions {
  /** Records per request. Default 500. */
  batchSize?: number;
  /** A partial batch waits at most this long. Default 1000 ms. */
  flushIntervalMs?: number;
  /** Most records held in memory (queued + in flight); newer ones are dropped. Default 10 000. */
  maxQueue?: number;
  /**
   * Called for every failure (dropped batch, exhausted retries, queue full, throwing hook).
   * Default: console.warn, once per error code, so a down collector does not flood the API's logs.
   */
  onError?: (err: IngestError) => void;
  /**
   * Who made the call, read after the response finished. `req` is the framework's request (Express's
   * `req` with `req.user`, or Koa's `ctx.req`); `context` is the Koa `ctx` under koaMiddleware.
   */
  identify?: (req: IncomingMessage, res: ServerResponse, context?: unknown) => Identity | null | undefined;
  /** Request headers to forward (case-insensitive). Default content-type, user-agent, x-api-version. */
  headerAllowList?: readonly string[];
  /** Return true to not record a request (health checks...). Called after the response finished. */
  skip?: (req: IncomingMessage, res: ServerResponse, context?: unknown) => boolean;
  /**
   * `response_bytes` of a response without Content-Length: 'wire' (default: bytes the connection wrote
   * after the headers, chunked framing included; free), 'exact' (body bytes, by wrapping res.write/end;
   * ~25 µs a request) or 'content-length' (left out).
   */
  responseBytes?: ResponseBytesMode;
}

export interface ForwarderStats {
  /** Records held: waiting or in flight. */
  queued: number;
  /** Records the collector accepted. */
  sent: number;
  /** Records the collector answered for but refused (bad field...). */
  rejected: number;
  /** Records not queued because the queue was full or the forwarder closed. */
  dropped: number;
  /** Records given up on: non-retryable answer or retries exhausted. */
  failed: number;
  /** HTTP retries made. */
  retries: number;
}

export interface Forwarder {
  /** Queues a record (an `id` is added if missing). False if it was dropped. Never throws. */
  record(record: NativeRecord): boolean;
  /** Observes a node:http exchange and records it when the response finishes. Never throws. */
  observe(req: IncomingMessage, res: ServerResponse, context?: unknown): void;
  /** Sends everything queued so far; resolves when each of those records was sent or given up on. */
  flush(): Promise<void>;
  /**
   * Stops accepting records, flushes, stops timers and closes connections. Records still unsent after
   * `timeoutMs` (default 15 000) are given up on and counted as failed. Idempotent.
   */
  close(options?: { timeoutMs?: number }): Promise<void>;
  stats(): ForwarderStats;
}

function positiveInteger(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new TypeError(`billing-meter ingest: ${name} must be a positive integer, got ${String(value)}`);
  }
  return value;
}

function resolveHeaderAllowList(list: readonly string[] | undefined): string[] {
  const names = (list ?? DEFAULT_HEADER_ALLOW_LIST).map((name) => name.toLowerCase());
  const secret = names.filter(isSensitiveHeader);
  if (secret.length > 0) {
    throw new TypeError(
      `billing-meter ingest: these headers carry credentials and are never forwarded: ${secret.join(', ')}`,
    );
  }
  return [...new Set(names)];
}

function responseBytesMode(value: ResponseBytesMode | undefined): ResponseBytesMode {
  if (value === undefined) return 'wire';
  if (value !== 'wire' && value !== 'exact' && value !== 'content-length') {
    throw new TypeError(
      `billing-meter ingest: responseBytes must be 'wire', 'exact' or 'content-length', got ${String(value)}`,
    );
  }
  return value;
}

function defaultOnError(): (err: IngestError) => void {
  const seen = new Set<string>();
  return (err) => {
    if (seen.has(err.code)) return;
    seen.add(err.code);
    console.warn(
      `billing-meter ingest: ${err.code}: ${err.message} (further '${err.code}' errors are not logged; see stats())`,
    );
  };
}

interface FlushWaiter {
  upTo: number;
  resolve: () => void;
}

export function createForwarder(options: ForwarderOptions): Forwarder {
  const batchSize = positiveInteger('batchSize', options.batchSize, 500);
  const flushIntervalMs = positiveInteger('flushIntervalMs', options.flushIntervalMs, 1000);
  const maxQueue = positiveInteger('maxQueue', options.maxQueue, 10_000);
  const onError = options.onError ?? defaultOnError();
  const headerAllowList = resolveHeaderAllowList(options.headerAllowList);

  // Backoff sleeps are unref()ed like the flush timer, but ref()ed while close() is awaited so that a
  // script awaiting close() is not cut short by Node exiting with nothing "alive".
  let closing = false;
  const sleeping = new Set<NodeJS.Timeout>();
  const target: CollectorTarget = createCollectorTarget(options, {
    maxSockets: 1,
    sleep: (ms, signal) =>
      new Promise<void>((resolve) => {
        if (signal?.aborted) return resolve();
        const done = (): void => {
          clearTimeout(timer);
          sleeping.delete(timer);
          signal?.removeEventListener('abort', done);
          resolve();
        };
        const timer = setTimeout(done, ms);
        if (!closing) timer.unref();
        sleeping.add(timer);
        signal?.addEventListener('abort', done, { once: true });
      }),
  });

  let queue: NativeRecord[] = [];
  let inFlight = 0;
  let enqueued = 0; // records ever queued
  let completed = 0; // records ever sent or given up on (in queue order: one batch in flight at a time)
  let flushMark = 0; // records up to this count are due now, even if a batch is not full
  let waiters: FlushWaiter[] = [];
  let full = false;
  const totals = { sent: 0, rejected: 0, dropped: 0, failed: 0, retries: 0 };
  const stop = new AbortController();
  let closed: Promise<void> | undefined;

  const safeOnError = (err: IngestError): void => {
    try {
      onError(err);
    } catch {
      // a throwing onError must not reach the API
    }
  };
  const report = (err: unknown, what: string): void => {
    safeOnError(
      new IngestError('capture_failed', `${what}: ${err instanceof Error ? err.message : String(err)}`, {
        cause: err,
      }),
    );
  };

  const settle = (result: PostBatchResult, count: number): void => {
    totals.sent += result.accepted;
    totals.rejected += result.rejected.length;
    totals.failed += result.failed;
    completed += count;
    for (const error of result.errors) safeOnError(error);
    if (waiters.length > 0) {
      const due = waiters.filter((waiter) => waiter.upTo <= completed);
      waiters = waiters.filter((waiter) => waiter.upTo > completed);
      for (const waiter of due) waiter.resolve();
    }
  };

  const pump = (): void => {
    if (inFlight > 0 || queue.length === 0) return;
    if (queue.length < batchSize && completed + inFlight >= flushMark) return;
    const batch = queue.length <= batchSize ? queue : queue.slice(0, batchSize);
    queue = queue.length <= batchSize ? [] : queue.slice(batchSize);
    inFlight = batch.length;
    postBatch(target, batch, { signal: stop.signal, onRetry: () => void totals.retries++ })
      .catch((err: unknown): PostBatchResult => ({
        accepted: 0,
        rejected: [],
        failed: batch.length,
        retries: 0,
        errors: [
          new IngestError('retries_exhausted', `unexpected: ${String(err)}`, {
            records: batch.length,
            cause: err,
          }),
        ],
      }))
      .then((result) => {
        inFlight = 0;
        settle(result, batch.length);
        pump();
      })
      .catch(() => {
        // settle/pump do not throw; this only keeps a rejection from ever going unhandled
      });
  };

  const timer = setInterval(() => {
    if (queue.length === 0) return;
    flushMark = enqueued;
    pump();
  }, flushIntervalMs);
  timer.unref();

  const record = (input: NativeRecord): boolean => {
    try {
      if (closing || queue.length + inFlight >= maxQueue) {
        totals.dropped++;
        if (!full && !closing) {
          full = true;
          safeOnError(
            new IngestError(
              'queue_full',
              `queue is full (${maxQueue} records); new records are dropped until it drains`,
              { records: 1 },
            ),
          );
        }
        return false;
      }
      full = false;
      queue.push(input.id === undefined ? { ...input, id: randomUUID() } : input);
      enqueued++;
      if (queue.length >= batchSize) pump();
      return true;
    } catch (err) {
      report(err, 'could not queue a record');
      return false;
    }
  };

  const capturer: Capturer = {
    settings: {
      headerAllowList,
      responseBytes: responseBytesMode(options.responseBytes),
      identify: options.identify,
      skip: options.skip,
    },
    emit: (rec) => void record(rec),
    report,
  };

  const flush = (): Promise<void> => {
    flushMark = enqueued;
    const upTo = enqueued;
    if (completed >= upTo) return Promise.resolve();
    const done = new Promise<void>((resolve) => waiters.push({ upTo, resolve }));
    pump();
    return done;
  };

  return {
    record,
    observe(req, res, context) {
      if (closing) return;
      try {
        captureExchange(capturer, req, res, context);
      } catch (err) {
        report(err, 'could not observe a request');
      }
    },
    flush,
    close({ timeoutMs = 15_000 } = {}) {
      if (closed) return closed;
      closing = true;
      clearInterval(timer);
      for (const sleep of sleeping) sleep.ref();
      const giveUp = setTimeout(() => stop.abort(), timeoutMs);
      closed = flush().finally(() => {
        clearTimeout(giveUp);
        target.destroy();
      });
      return closed;
    },
    stats() {
      return { queued: queue.length + inFlight, ...totals };
    },
  };
}

/**
 * Shipping an NDJSON file of native records (one JSON object a line) to the collector, for logs written
 * to disk or replayed from elsewhere. Used by `billing-meter ship FILE|-`.
 *
 * The file is streamed (node:readline), so its size does not matter; one batch is held and in flight at
 * a time. Lines that are not JSON objects are reported with their line numbers and not sent. Sending and
 * retrying is postBatch's, the same code the middleware forwarder uses.
 *
 * Records are sent as they are: no `id` is added. A record without one is deduplicated by the collector
 * on a hash of its content, so shipping the same file twice does not count twice (a random id would).
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { createCollectorTarget, postBatch } from './post-batch.ts';
import type { CollectorOptions, IngestErrorCode, PostHooks } from './post-batch.ts';

export interface ShipOptions extends CollectorOptions {
  /** Records per request. Default 1000. */
  batchSize?: number;
  /** Stream to read when the path is '-'. Default process.stdin. */
  stdin?: Readable;
  /** Most bad/rejected lines listed in the report (all are counted). Default 1000. */
  maxReported?: number;
  /** Stops reading and sending; the report covers what was done. */
  signal?: AbortSignal;
  /** Called after each batch. */
  onProgress?: (report: Readonly<ShipReport>) => void;
  /** Called before each retry of a batch: the collector is slow, down or refusing for now. */
  onRetry?: PostHooks['onRetry'];
  /**
   * Moves every record's `timestamp` by one offset, so that the newest lands at this time and their
   * spacing is kept: for sample files recorded on a past date (ingest/samples/), which the collector
   * would refuse once they are older than its INGEST_MAX_PAST_DAYS. Never for real logs: their times
   * are what is billed. Needs a file, which is read twice (first for the newest time), not stdin.
   */
  shiftTo?: Date;
}

export interface BadLine {
  line: number;
  reason: string;
}

export interface RejectedLine {
  line: number;
  id?: string;
  field?: string;
  reason: string;
}

export interface ShipError {
  code: IngestErrorCode;
  message: string;
  status?: number;
  /** First and last line of the batch that failed. */
  lines: [number, number];
}

export interface ShipReport {
  /** Lines read, blank ones included (line numbers are 1-based physical lines). */
  lines: number;
  /** Records the collector accepted. */
  sent: number;
  /** Records the collector refused, by line (at most maxReported listed). */
  rejected: RejectedLine[];
  rejectedCount: number;
  /** Lines that are not a JSON object, by line (at most maxReported listed); not sent. */
  badLines: BadLine[];
  badLineCount: number;
  /** Records in batches that got no answer or a non-retryable error (see errors). */
  failed: number;
  errors: ShipError[];
  /** True when shipping stopped early: bad ingest key, or the signal fired. */
  aborted: boolean;
}

/** Ships `path` (or stdin for '-') and resolves with what happened. Throws only if the file cannot be read. */
export async function shipFile(path: string, options: ShipOptions): Promise<ShipReport> {
  const batchSize = options.batchSize ?? 1000;
  if (!Number.isSafeInteger(batchSize) || batchSize < 1) {
    throw new TypeError(`billing-meter ship: batchSize must be a positive integer, got ${String(batchSize)}`);
  }
  const maxReported = options.maxReported ?? 1000;
  if (options.shiftTo !== undefined && path === '-') {
    throw new TypeError(
      'billing-meter ship: shifting times to now needs a file, not stdin (it is read twice)',
    );
  }
  const target = createCollectorTarget(options, { maxSockets: 1 });
  const report: ShipReport = {
    lines: 0,
    sent: 0,
    rejected: [],
    rejectedCount: 0,
    badLines: [],
    badLineCount: 0,
    failed: 0,
    errors: [],
    aborted: false,
  };

  const input: Readable = path === '-' ? (options.stdin ?? process.stdin) : createReadStream(path);
  // A missing/unreadable file fails here, before anything is sent.
  const opened = new Promise<void>((resolve, reject) => {
    if (path === '-') return resolve();
    input.once('open', () => resolve());
    input.once('error', reject);
  });
  await opened;

  const shiftMs = options.shiftTo === undefined ? 0 : await offsetToNewest(path, options.shiftTo);

  let batch: object[] = [];
  let batchLines: number[] = [];

  const send = async (): Promise<void> => {
    if (batch.length === 0) return;
    const records = batch;
    const lines = batchLines;
    batch = [];
    batchLines = [];
    const result = await postBatch(target, records, {
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.onRetry ? { onRetry: options.onRetry } : {}),
    });
    report.sent += result.accepted;
    report.failed += result.failed;
    report.rejectedCount += result.rejected.length;
    for (const rejection of result.rejected) {
      if (report.rejected.length >= maxReported) break;
      const line = lines[rejection.index] ?? -1;
      const { index: _index, ...rest } = rejection;
      report.rejected.push({ line, ...rest });
    }
    for (const error of result.errors) {
      report.errors.push({
        code: error.code,
        message: error.message,
        ...(error.status === undefined ? {} : { status: error.status }),
        lines: [lines[0] ?? 0, lines[lines.length - 1] ?? 0],
      });
      if (error.code === 'unauthorized' || error.code === 'aborted') report.aborted = true;
    }
    options.onProgress?.(report);
  };

  const reader = createInterface({ input, crlfDelay: Infinity });
  try {
    for await (const raw of reader) {
      report.lines++;
      const text = report.lines === 1 ? raw.replace(/^\uFEFF/, '') : raw;
      if (text.trim() === '') continue;
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch (err) {
        badLine(
          report,
          maxReported,
          report.lines,
          `invalid JSON: ${err instanceof Error ? err.message : String(err)}`,
        );
        continue;
      }
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
        badLine(report, maxReported, report.lines, 'not a JSON object');
        continue;
      }
      if (shiftMs !== 0) shiftTimestamp(parsed as { timestamp?: unknown }, shiftMs);
      batch.push(parsed);
      batchLines.push(report.lines);
      if (batch.length >= batchSize) {
        await send();
        if (report.aborted || options.signal?.aborted) break;
      }
    }
    if (!report.aborted && !options.signal?.aborted) await send();
    if (options.signal?.aborted) report.aborted = true;
  } finally {
    reader.close();
    if (path !== '-') input.destroy();
    target.destroy();
  }
  return report;
}

function badLine(report: ShipReport, maxReported: number, line: number, reason: string): void {
  report.badLineCount++;
  if (report.badLines.length < maxReported) report.badLines.push({ line, reason });
}

/**
 * Epoch milliseconds of a record's `timestamp`: epoch ms, or an ISO string with a zone. Undefined for
 * anything else, which is then neither shifted nor counted (a zone-less time shifted into a `Z` one
 * would turn a record the collector refuses into one it accepts).
 */
function timestampMs(record: { timestamp?: unknown }): number | undefined {
  const value = record.timestamp;
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  if (typeof value !== 'string' || !/(?:Z|[+-]\d\d:?\d\d)$/i.test(value)) return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : ms;
}

/** Moves `record.timestamp` by `ms`, in the form it came in; one the collector cannot read is left for it to refuse. */
function shiftTimestamp(record: { timestamp?: unknown }, ms: number): void {
  const at = timestampMs(record);
  if (at === undefined) return;
  record.timestamp = typeof record.timestamp === 'number' ? at + ms : new Date(at + ms).toISOString();
}

/** `to` minus the newest timestamp of the file's records (0 when none has one). */
async function offsetToNewest(path: string, to: Date): Promise<number> {
  let newest = -Infinity;
  const reader = createInterface({ input: createReadStream(path), crlfDelay: Infinity });
  try {
    for await (const line of reader) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(line.replace(/^\uFEFF/, ''));
      } catch {
        continue; // reported as a bad line by the pass that sends
      }
      if (parsed === null || typeof parsed !== 'object') continue;
      const at = timestampMs(parsed as { timestamp?: unknown });
      if (at !== undefined && at > newest) newest = at;
    }
  } finally {
    reader.close();
  }
  return Number.isFinite(newest) ? to.getTime() - newest : 0;
}

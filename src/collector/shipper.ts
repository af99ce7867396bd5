import { readFile } from 'node:fs/promises';
import { UpstreamError } from '../errors.ts';
import { sameRowFormat, type RowFormat } from './row-format.ts';
import type { SealedSegment, Spool } from './spool.ts';

/** Where spooled rows go: a table (ClickHouse, or a fake in unit tests). */
export interface RowSink {
  /** Inserts whole lines of rows in `format` (without a TabSeparated segment's header line). */
  insertRows(table: string, format: RowFormat, body: Buffer): Promise<void>;
}

export interface ShipperLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface ShipperEvents {
  /** After each insert attempt: how many bytes, how long, and whether it worked. */
  onInsert?(table: string, bytes: number, seconds: number, ok: boolean): void;
}

export interface ShipperOptions {
  /** Spools by destination table. */
  spools: ReadonlyMap<string, Spool>;
  sink: RowSink;
  intervalMs: number;
  /** Most bytes one INSERT carries; consecutive small segments are merged up to this. */
  maxInsertBytes?: number;
  logger: ShipperLogger;
  events?: ShipperEvents;
  /** The clock and timer of the schedule and of the insert timings; default performance.now, setTimeout. */
  timer?: ShipperTimer;
}

/** What the shipper reads the time from and waits with (tests drive it by hand). */
export interface ShipperTimer {
  /** Milliseconds on a monotonic clock. */
  now(): number;
  /** Calls `fn` once after `ms`, without keeping the process alive; the function returned cancels it. */
  after(ms: number, fn: () => void): () => void;
}

const REAL_TIMER: ShipperTimer = {
  now: () => performance.now(),
  after: (ms, fn) => {
    const timeout = setTimeout(fn, ms);
    timeout.unref();
    return () => clearTimeout(timeout);
  },
};

const MAX_BACKOFF_MS = 30_000;
/**
 * When this much is still spooled after a shipment, events arrive faster than the interval drains
 * them: the next shipment starts at once instead of after `intervalMs`, so a backlog (heavy load, or
 * after an outage) drains without pauses. Below it the interval keeps inserts few and large, and leaves
 * the CPU to ingest (shipping back-to-back at any load raised bench:ingest's p99 from ~70 to ~90 ms).
 */
const BACKLOG_BYTES = 8 * 1024 * 1024;

/**
 * Moves sealed spool segments into ClickHouse, oldest first, deleting each only after ClickHouse
 * acknowledged the insert. A crash between the two replays the segment: the rows carry their event
 * ids and the table collapses duplicates, so a replay is never counted twice.
 * While ClickHouse is down it backs off (up to 30 s) and the spool keeps absorbing ingest.
 */
export class Shipper {
  private cancelTimer: (() => void) | undefined;
  /** Every shipment runs on this chain, one at a time: two at once would insert the same segment twice. */
  private chain: Promise<void> = Promise.resolve();
  private failures = 0;
  private stopped = true;
  private lastError: string | undefined;
  private readonly maxInsertBytes: number;
  private readonly timer: ShipperTimer;

  constructor(private readonly options: ShipperOptions) {
    this.maxInsertBytes = options.maxInsertBytes ?? 64 * 1024 * 1024;
    this.timer = options.timer ?? REAL_TIMER;
  }

  /** True when the last attempt reached ClickHouse (or nothing has needed it yet). */
  get healthy(): boolean {
    return this.failures === 0;
  }

  get lastFailure(): string | undefined {
    return this.lastError;
  }

  start(): void {
    this.stopped = false;
    this.schedule(this.options.intervalMs);
  }

  /** Stops the timer and waits for a shipment in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    await this.chain;
  }

  /** Seals and ships everything now; throws if ClickHouse refuses (what is left stays spooled). */
  flush(): Promise<void> {
    return this.exclusive(() => this.shipAll());
  }

  private exclusive(task: () => Promise<void>): Promise<void> {
    const run = this.chain.then(task);
    this.chain = run.catch(() => undefined);
    return run;
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.cancelTimer = this.timer.after(delayMs, () => {
      const started = this.timer.now();
      void this.flush()
        .catch(() => undefined)
        .then(() => {
          if (this.failures > 0) {
            const backoff = Math.min(
              MAX_BACKOFF_MS,
              this.options.intervalMs * 2 ** Math.min(this.failures, 10),
            );
            this.schedule(backoff * (0.5 + Math.random() / 2));
            return;
          }
          // The interval runs from start to start: a shipment that took longer than the interval
          // (a big insert under load) is followed at once, not after another full interval.
          const elapsed = this.timer.now() - started;
          const backlog = this.backlogBytes() >= BACKLOG_BYTES;
          this.schedule(backlog ? 0 : Math.max(0, this.options.intervalMs - elapsed));
        });
    });
  }

  private backlogBytes(): number {
    let bytes = 0;
    for (const spool of this.options.spools.values()) bytes += spool.depthBytes;
    return bytes;
  }

  private async shipAll(): Promise<void> {
    for (const [table, spool] of this.options.spools) {
      await spool.seal();
      try {
        await this.shipSpool(table, spool);
        if (this.failures > 0)
          this.options.logger.info({ table }, 'clickhouse reachable again; spool drained');
        this.failures = 0;
        this.lastError = undefined;
      } catch (err) {
        this.failures += 1;
        this.lastError = err instanceof Error ? err.message : String(err);
        this.options.logger.warn(
          { table, err: this.lastError, spooledBytes: spool.depthBytes, attempt: this.failures },
          'clickhouse insert failed; events stay in the spool',
        );
        throw err;
      }
    }
  }

  private async shipSpool(table: string, spool: Spool): Promise<void> {
    for (;;) {
      const group = takeGroup(spool.sealedSegments(), this.maxInsertBytes);
      if (group.length === 0) return;
      await this.shipGroup(table, spool, group);
    }
  }

  private async shipGroup(table: string, spool: Spool, group: SealedSegment[]): Promise<void> {
    const bodies = await Promise.all(group.map(async (s) => (await readFile(s.path)).subarray(s.rowsOffset)));
    const body = bodies.length === 1 ? bodies[0]! : Buffer.concat(bodies);
    const started = this.timer.now();
    try {
      await this.options.sink.insertRows(table, group[0]!.format, body);
      this.options.events?.onInsert?.(table, body.length, (this.timer.now() - started) / 1000, true);
    } catch (err) {
      this.options.events?.onInsert?.(table, body.length, (this.timer.now() - started) / 1000, false);
      if (!(err instanceof UpstreamError) || err.retryable) throw err;
      if (group.length > 1) {
        // Find the segment ClickHouse refuses without holding back the good ones merged with it.
        for (const segment of group) await this.shipGroup(table, spool, [segment]);
        return;
      }
      // ClickHouse will refuse these bytes forever: set them aside for the operator rather than
      // blocking every later event behind them. Nothing is deleted.
      const where = await spool.quarantine(group[0]!);
      this.options.logger.error({ table, segment: where, err: err.message }, 'segment quarantined');
      return;
    }
    for (const segment of group) await spool.remove(segment);
  }
}

/** The oldest segments, up to maxBytes, all of one format (one INSERT). */
function takeGroup(sealed: readonly SealedSegment[], maxBytes: number): SealedSegment[] {
  const group: SealedSegment[] = [];
  let bytes = 0;
  for (const segment of sealed) {
    if (
      group.length > 0 &&
      (bytes + segment.bytes > maxBytes || !sameRowFormat(group[0]!.format, segment.format))
    )
      break;
    group.push(segment);
    bytes += segment.bytes;
  }
  return group;
}

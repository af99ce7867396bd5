import type { MeterDefinition } from '../meters/meter-schema.ts';
import { periodEnd, periodStart, type BillingPeriod } from '../time/billing-period.ts';
import { floorHour, HOUR_MS } from '../time/hours.ts';

/**
 * Current-period usage per customer and meter, read from the request logs (not from the hourly
 * evaluation), refreshed on a timer (each minute by default): what over-quota membership and alerts
 * need within a minute of the call that crossed a line. One query per meter per refresh, over
 * [start of the billing period, end of the current hour) (the meter queries take whole hours; calls
 * stamped later in this hour, within the collector's future tolerance, count too): for count meters a scan of the month's rows of that meter's
 * routes; the limit is that the cost grows with the month, which at one query a minute per meter is
 * what ClickHouse is made for. A failed refresh keeps the previous snapshot (and reports the error):
 * usage is never turned into 0 by a failure.
 */

/** Port: a meter's value per customer over a range, computed from the logs (UsageSource.period). */
export interface PeriodUsageSource {
  period(meter: MeterDefinition, from: Date, to: Date): Promise<Map<string, bigint>>;
}

export interface CurrentUsageSnapshot {
  period: BillingPeriod;
  /** When the snapshot was read (its queries run to the end of that hour). */
  asOf: Date;
  /** meter name → customer → quantity this period. */
  usage: ReadonlyMap<string, ReadonlyMap<string, bigint>>;
}

export interface CurrentUsageOptions {
  source: PeriodUsageSource;
  /** Read at each refresh, so reloaded meters are followed. */
  meters: () => readonly MeterDefinition[];
  /** Which meters to follow (default: all). */
  follows?: (meter: MeterDefinition) => boolean;
  now?: () => Date;
  onError?: (err: unknown) => void;
  /** Listeners hear of each new snapshot (membership, alerts). */
  onRefresh?: (snapshot: CurrentUsageSnapshot) => void;
}

export class CurrentUsage {
  private current: CurrentUsageSnapshot | undefined;
  private timer: ReturnType<typeof setInterval> | undefined;
  private running: Promise<CurrentUsageSnapshot | undefined> | undefined;
  private readonly listeners: ((s: CurrentUsageSnapshot) => void)[] = [];

  constructor(private readonly options: CurrentUsageOptions) {
    if (options.onRefresh) this.listeners.push(options.onRefresh);
  }

  /** The latest snapshot; undefined before the first refresh succeeded. */
  snapshot(): CurrentUsageSnapshot | undefined {
    return this.current;
  }

  quantity(meter: string, customer: string): bigint {
    return this.current?.usage.get(meter)?.get(customer) ?? 0n;
  }

  onRefresh(listener: (s: CurrentUsageSnapshot) => void): void {
    this.listeners.push(listener);
  }

  /** One refresh now (joins one already running); resolves to the new snapshot, or undefined on failure. */
  refresh(): Promise<CurrentUsageSnapshot | undefined> {
    this.running ??= this.read().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  start(intervalMs = 60_000): void {
    this.stop();
    this.timer = setInterval(() => void this.refresh(), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private async read(): Promise<CurrentUsageSnapshot | undefined> {
    const asOf = (this.options.now ?? (() => new Date()))();
    const period = { start: periodStart(asOf), end: periodEnd(asOf) };
    const follows = this.options.follows ?? (() => true);
    const to = new Date(floorHour(asOf).getTime() + HOUR_MS);
    try {
      const usage = new Map<string, ReadonlyMap<string, bigint>>();
      for (const meter of this.options.meters().filter(follows)) {
        usage.set(meter.name, await this.options.source.period(meter, period.start, to));
      }
      this.current = { period, asOf, usage };
      for (const listener of this.listeners) listener(this.current);
      return this.current;
    } catch (err) {
      this.options.onError?.(err);
      return undefined;
    }
  }
}

import { aggregationOf } from '../meters/aggregations.ts';
import type { MeterDefinition } from '../meters/meter-schema.ts';
import { periodEnd, periodStart, type BillingPeriod } from '../time/billing-period.ts';
import { floorHour, HOUR_MS } from '../time/hours.ts';

/**
 * Current-period usage per customer and meter, read from the request logs (not from the hourly
 * evaluation), refreshed on a timer (each minute by default): what over-quota membership and alerts
 * need within a minute of the call that crossed a line. The meter queries take whole hours, over
 * [start of the billing period, end of the current hour) (calls stamped later in this hour, within the
 * collector's future tolerance, count too).
 *
 * The cost must not grow with the month at every refresh (every replica refreshes each minute): for
 * additive meters (count, sum), hours older than the lateness window (`settledAfterHours`, the
 * evaluation's LATENESS_HOURS) are read once and their totals kept; each refresh then reads only the
 * window and adds them. That is what billing sees too: the evaluation does not go back further than the
 * window either, so an event later than that counts for neither. Unique counts are not additive over
 * hours and are read over the whole period each time. A changed definition (reload), a new period or
 * a day gone by starts the kept totals again: the daily re-read picks up what an explicit backfill
 * (`meters evaluate --from`) of events later than the window made billable.
 *
 * A failed refresh keeps the previous snapshot (and reports the error): usage is never turned into 0 by
 * a failure.
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
  /**
   * Hours that end this many hours or more before the current hour no longer change (the lateness
   * window): additive meters read them once. Undefined: every refresh reads the whole period.
   */
  settledAfterHours?: number;
}

const REREAD_AFTER_MS = 24 * HOUR_MS;

/** An additive meter's totals over [period start, through), read once. */
interface SettledTotals {
  definition: string;
  periodStart: number;
  /** When these totals were started (they are read again after a day). */
  startedAt: number;
  through: number;
  totals: Map<string, bigint>;
}

export class CurrentUsage {
  private current: CurrentUsageSnapshot | undefined;
  private timer: ReturnType<typeof setInterval> | undefined;
  private running: Promise<CurrentUsageSnapshot | undefined> | undefined;
  private readonly listeners: ((s: CurrentUsageSnapshot) => void)[] = [];
  private readonly settled = new Map<string, SettledTotals>();

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
        usage.set(meter.name, await this.meterUsage(meter, period.start, asOf, to));
      }
      this.current = { period, asOf, usage };
      for (const listener of this.listeners) listener(this.current);
      return this.current;
    } catch (err) {
      this.options.onError?.(err);
      return undefined;
    }
  }

  private async meterUsage(
    meter: MeterDefinition,
    periodStart: Date,
    asOf: Date,
    to: Date,
  ): Promise<Map<string, bigint>> {
    const { source, settledAfterHours } = this.options;
    if (settledAfterHours === undefined || !aggregationOf(meter).additive)
      return source.period(meter, periodStart, to);
    const settledThrough = Math.max(
      periodStart.getTime(),
      floorHour(asOf).getTime() - settledAfterHours * HOUR_MS,
    );
    const definition = JSON.stringify(meter);
    const now = asOf.getTime();
    let kept = this.settled.get(meter.name);
    const stale =
      kept === undefined ||
      kept.definition !== definition ||
      kept.periodStart !== periodStart.getTime() ||
      kept.through > settledThrough || // the clock went back
      now - kept.startedAt >= REREAD_AFTER_MS;
    if (kept === undefined || stale)
      kept = {
        definition,
        periodStart: periodStart.getTime(),
        startedAt: now,
        through: periodStart.getTime(),
        totals: new Map(),
      };
    if (kept.through < settledThrough) {
      const more = await source.period(meter, new Date(kept.through), new Date(settledThrough));
      // Kept only once read: a failed read leaves the totals as they were.
      kept = { ...kept, through: settledThrough, totals: added(kept.totals, more) };
    }
    this.settled.set(meter.name, kept);
    return added(kept.totals, await source.period(meter, new Date(settledThrough), to));
  }
}

function added(a: ReadonlyMap<string, bigint>, b: ReadonlyMap<string, bigint>): Map<string, bigint> {
  const sum = new Map(a);
  for (const [customer, quantity] of b) sum.set(customer, (sum.get(customer) ?? 0n) + quantity);
  return sum;
}

import { aggregationOf, combinable } from './aggregations.ts';
import { DomainError } from '../errors.ts';
import { periodEnd, periodStart } from '../time/billing-period.ts';
import { addHours, floorHour } from '../time/hours.ts';
import type { MeterDefinition } from './meter-schema.ts';
import { meterVersion } from './meter-version.ts';

/**
 * Hourly evaluation: turns request logs into per-(meter, version, customer, hour) usage.
 *
 * - Idempotent: an hour is recomputed from the logs, never incremented, and written with a higher
 *   revision; running twice gives the same rows.
 * - Catch-up: each meter version keeps a watermark (evaluated through); a run computes every closed hour
 *   from there, so a scheduler that was off for 30 hours loses nothing.
 * - Late events: the last `latenessHours` closed hours are recomputed on every run. Events that arrive
 *   later than that are counted and reported per run (`lateOutsideWindow`), never silently ignored.
 * - Versions: a changed definition is a new version from its effective time (default: the next whole
 *   hour; a meter's first version: the start of the current month). Each version computes only its own
 *   hours, so hours already billed under the old definition are never rewritten.
 * - Backfill: an `effective_from` earlier than the meter's first version extends the current version
 *   back to it (no version billed those hours, so nothing billed is rewritten); evaluateBetween over
 *   those hours then bills them. A range that no version of a meter covers is refused (422), never
 *   answered with nothing.
 * - Non-additive meters (unique_count, min, max, latest) also get the period-to-date value of each hour
 *   from the logs (not the sum of hours); additive ones a running sum. The billing period is the
 *   calendar month, UTC.
 */

export interface MeterVersionKey {
  meter: string;
  version: string;
}

export interface MeterVersionRecord {
  meter: string;
  version: string;
  definition: MeterDefinition;
  effectiveFrom: Date;
}

export interface HourlyValue {
  customer: string;
  hour: Date;
  value: bigint;
}

export interface UsageRow extends HourlyValue {
  meter: string;
  version: string;
  periodValue: bigint;
}

/** Port: usage computed from the request logs (the meter compiler over ClickHouse). */
export interface UsageSource {
  hourly(meter: MeterDefinition, from: Date, to: Date): Promise<HourlyValue[]>;
  /**
   * count, sum and unique_count meters over one range in one scan (unique counts only when all share one
   * customer: compile.ts's `combinable`): the hourly values of each, in order.
   */
  hourlyCombined(meters: readonly MeterDefinition[], from: Date, to: Date): Promise<HourlyValue[][]>;
  period(meter: MeterDefinition, from: Date, to: Date): Promise<Map<string, bigint>>;
  /** unique_count meters: per (customer, hour), how many values were first seen in that hour of [from, to). */
  firstSeen(meter: MeterDefinition, from: Date, to: Date): Promise<HourlyValue[]>;
  /** Events received at or after `receivedSince` whose request time is before `requestBefore`. */
  lateEvents(receivedSince: Date, requestBefore: Date): Promise<number>;
}

/** Port: where versions, usage, watermarks and runs are kept. */
export interface UsageStore {
  versions(): Promise<MeterVersionRecord[]>;
  recordVersion(record: MeterVersionRecord, recordedAt: Date): Promise<void>;
  watermark(meter: string, version: string): Promise<Date | undefined>;
  setWatermark(meter: string, version: string, through: Date, revision: bigint): Promise<void>;
  /** Latest stored hourly values of each (meter, version) in [from, to), in the order asked; hour by hour. */
  stored(versions: readonly MeterVersionKey[], from: Date, to: Date): Promise<HourlyValue[][]>;
  /** Per customer, the sum of the latest stored hourly values of each (meter, version) in [from, to). */
  storedTotals(versions: readonly MeterVersionKey[], from: Date, to: Date): Promise<Map<string, bigint>[]>;
  writeUsage(rows: UsageRow[], computedAt: Date, revision: bigint): Promise<void>;
  /** The latest scheduled run, as recorded by recordRun. */
  latestRun(): Promise<RecordedRun | undefined>;
  recordRun(run: EvaluationReport): Promise<void>;
}

/** What is kept of a scheduled run (table meter_runs): enough to say what it covered and what it missed. */
export interface RecordedRun {
  runAt: Date;
  closedThrough: Date;
  windowStart: Date;
  /** Events that arrived since the previous run for hours no longer re-evaluated: not billed. */
  lateOutsideWindow: number;
}

export interface EvaluatedRange {
  meter: string;
  version: string;
  from: Date;
  to: Date;
  rows: number;
}

export interface EvaluationReport extends RecordedRun {
  ranges: EvaluatedRange[];
}

/** Hours of [from, to) that no version of a meter covers: they are before its first version. */
export interface UncoveredRange {
  meter: string;
  from: Date;
  to: Date;
  /** The start of the meter's first version; undefined when it has none. */
  firstEffectiveFrom: Date | undefined;
}

export interface EvaluationOptions {
  latenessHours: number;
  now?: () => Date;
}

interface RangeTask {
  record: MeterVersionRecord;
  from: Date;
  to: Date;
  watermark?: Date;
}

const maxDate = (a: Date, b: Date): Date => (a > b ? a : b);
const minDate = (a: Date, b: Date): Date => (a < b ? a : b);

export class EvaluationService {
  private readonly now: () => Date;
  private lastRevision = 0n;

  constructor(
    private readonly source: UsageSource,
    private readonly store: UsageStore,
    private readonly options: EvaluationOptions,
  ) {
    this.now = options.now ?? (() => new Date());
  }

  /**
   * A revision later than any this service wrote before: microseconds of the run's time, bumped if the
   * clock has not moved on (or went back), so a re-evaluation always wins over the rows it replaces.
   */
  private nextRevision(runAt: Date): bigint {
    const candidate = BigInt(runAt.getTime()) * 1000n;
    this.lastRevision = candidate > this.lastRevision ? candidate : this.lastRevision + 1n;
    return this.lastRevision;
  }

  /** Records a version for every meter whose current definition has none yet. */
  async registerVersions(meters: readonly MeterDefinition[]): Promise<MeterVersionRecord[]> {
    const known = await this.store.versions();
    const now = this.now();
    for (const definition of meters) {
      const version = meterVersion(definition);
      const mine = known
        .filter((v) => v.meter === definition.name)
        .sort((a, b) => +a.effectiveFrom - +b.effectiveFrom);
      const explicitFrom = definition.effective_from ? new Date(definition.effective_from) : undefined;
      if (mine.at(-1)?.version === version) {
        // The same rules with an earlier start than the meter has ever had: a backfill. Only before the
        // first version, so that no hour already billed by another version changes hands.
        if (explicitFrom && explicitFrom < mine[0]!.effectiveFrom) {
          const record = { meter: definition.name, version, definition, effectiveFrom: explicitFrom };
          await this.store.recordVersion(record, now);
          known.push(record);
        }
        continue;
      }
      const effectiveFrom = explicitFrom
        ? explicitFrom
        : mine.length === 0
          ? periodStart(now)
          : addHours(floorHour(now), 1);
      const record = { meter: definition.name, version, definition, effectiveFrom };
      await this.store.recordVersion(record, now);
      known.push(record);
    }
    return known;
  }

  /** The scheduled run: every closed hour since each watermark, plus the lateness window. */
  async run(meters: readonly MeterDefinition[]): Promise<EvaluationReport> {
    const runAt = this.now();
    const closedThrough = floorHour(runAt);
    const windowStart = addHours(closedThrough, -this.options.latenessHours);
    const versions = await this.registerVersions(meters);
    const active = new Set(meters.map((m) => m.name));
    const revision = this.nextRevision(runAt);
    let lowest = windowStart;
    const tasks: RangeTask[] = [];
    for (const { record, until } of intervals(versions.filter((v) => active.has(v.meter)))) {
      const upper = until ? minDate(until, closedThrough) : closedThrough;
      if (upper <= record.effectiveFrom) continue;
      const watermark = await this.store.watermark(record.meter, record.version);
      const lower = maxDate(record.effectiveFrom, minDate(watermark ?? record.effectiveFrom, windowStart));
      if (lower < lowest) lowest = lower;
      tasks.push({ record, from: lower, to: upper, watermark });
    }
    const ranges = await this.evaluateTasks(
      tasks.filter((t) => t.from < t.to),
      runAt,
      revision,
    );
    // One watermark per (meter, version), even when a version has several intervals (a definition
    // reverted, a backfill): the end of the latest, written once, so no two writes tie on a revision.
    const through = new Map<string, { meter: string; version: string; to: Date; stored?: Date }>();
    for (const t of tasks) {
      const key = `${t.record.meter}\u0000${t.record.version}`;
      const entry = through.get(key);
      if (!entry) through.set(key, { ...t.record, to: t.to, stored: t.watermark });
      else if (t.to > entry.to) entry.to = t.to;
    }
    for (const w of through.values()) {
      if (!w.stored || w.to > w.stored) await this.store.setWatermark(w.meter, w.version, w.to, revision);
    }
    const previous = await this.store.latestRun();
    const lateOutsideWindow = previous ? await this.source.lateEvents(previous.runAt, lowest) : 0;
    const report = { runAt, closedThrough, windowStart, ranges, lateOutsideWindow };
    await this.store.recordRun(report);
    return report;
  }

  /** The latest scheduled run (its late events included), or undefined before the first. */
  latestRun(): Promise<RecordedRun | undefined> {
    return this.store.latestRun();
  }

  /**
   * On demand: recompute [from, to) for every version of the given meters, whatever the watermarks.
   * Throws MeterRangeNotCoveredError when some meter has no version over any hour of the range: a
   * caller must hear that nothing can be billed there, and how to make it so (see uncoveredRanges for
   * the hours left out of a range that is partly covered).
   */
  async evaluateBetween(meters: readonly MeterDefinition[], from: Date, to: Date): Promise<EvaluatedRange[]> {
    const runAt = this.now();
    const revision = this.nextRevision(runAt);
    const closed = minDate(floorHour(to), floorHour(runAt));
    const versions = await this.registerVersions(meters);
    const active = new Set(meters.map((m) => m.name));
    // Wholly: up to the last whole hour asked for (a part hour is never evaluated anyway).
    const wholly = uncoveredRanges(versions, [...active], from, to).filter((u) => u.to >= floorHour(to));
    if (wholly.length > 0) throw new MeterRangeNotCoveredError(wholly, from);
    const tasks: RangeTask[] = [];
    for (const { record, until } of intervals(versions.filter((v) => active.has(v.meter)))) {
      const lower = maxDate(record.effectiveFrom, floorHour(from));
      const upper = until ? minDate(until, closed) : closed;
      if (lower < upper) tasks.push({ record, from: lower, to: upper });
    }
    return this.evaluateTasks(tasks, runAt, revision);
  }

  /**
   * Tasks are evaluated by range (all meters of a scheduled run share one): count, sum and unique_count
   * meters of a range are read in one scan (one event-id dedupe, the costly part: bench:meters), the
   * others one query each; the stored usage is read one query per meter version, side by side (one
   * query for all measured slower: meter-store.ts), the month-to-date totals before the range in one
   * query for all, and their rows written in one insert. The reads of a range
   * start together, so ClickHouse works on them side by side. Ranges are evaluated RANGE_CONCURRENCY at
   * a time: each is a few queries with work in Node between them (parsing, sorting, running sums), so
   * while one waits for ClickHouse another uses the Node thread. They are independent (each writes only
   * its own meters' rows); one that fails fails the run, as in turn.
   */
  private async evaluateTasks(tasks: RangeTask[], runAt: Date, revision: bigint): Promise<EvaluatedRange[]> {
    const groups = new Map<string, RangeTask[]>();
    for (const t of tasks) {
      const k = `${t.from.getTime()}-${t.to.getTime()}`;
      groups.set(k, [...(groups.get(k) ?? []), t]);
    }
    const evaluated = new Map<RangeTask, EvaluatedRange>();
    await mapInTurns([...groups.values()], RANGE_CONCURRENCY, async (group) => {
      const { from, to } = group[0]!;
      const oneCustomer = group.every(
        (t) => t.record.definition.customer === group[0]!.record.definition.customer,
      );
      let shared = group.filter((t) => combinable(t.record.definition, oneCustomer));
      if (shared.length < 2) shared = [];
      const combined =
        shared.length > 0
          ? settledLater(
              this.source.hourlyCombined(
                shared.map((t) => t.record.definition),
                from,
                to,
              ),
            )
          : undefined;
      const keys = group.map((t) => ({ meter: t.record.meter, version: t.record.version }));
      const stored = settledLater(this.store.stored(keys, from, to));
      // Running sums start from the month's hours before the range (only its first month can have any).
      const monthStart = periodStart(from);
      const additive = group.filter((t) => aggregationOf(t.record.definition).additive);
      const before =
        monthStart < from && additive.length > 0
          ? settledLater(
              this.store.storedTotals(
                additive.map((t) => ({ meter: t.record.meter, version: t.record.version })),
                monthStart,
                from,
              ),
            )
          : undefined;
      const results = await Promise.all(
        group.map(async (t, i) => {
          // A unique count's first-seen scan of the range's first month, beside the hourly scan.
          const firstSeen =
            t.record.definition.aggregation.type === 'unique_count'
              ? settledLater(
                  this.source.firstSeen(
                    t.record.definition,
                    maxDate(monthStart, t.record.effectiveFrom),
                    minDate(periodEnd(monthStart), to),
                  ),
                )
              : undefined;
          const at = shared.indexOf(t);
          const fresh =
            at >= 0 ? ((await combined!)[at] ?? []) : await this.source.hourly(t.record.definition, from, to);
          const a = additive.indexOf(t);
          const totals = a >= 0 && before ? (await before)[a] : undefined;
          return this.evaluateRange(t.record, from, to, fresh, (await stored)[i] ?? [], totals, firstSeen);
        }),
      );
      await this.store.writeUsage(
        results.flatMap((r) => r.rows),
        runAt,
        revision,
      );
      group.forEach((t, i) =>
        evaluated.set(t, {
          meter: t.record.meter,
          version: t.record.version,
          from,
          to,
          rows: results[i]!.rows.length,
        }),
      );
    });
    return tasks.map((t) => evaluated.get(t)!);
  }

  /**
   * The rows of one meter version over [from, to): `fresh` from the logs, `storedRows` what meter_usage
   * holds for those hours, `before` (additive meters) the month-to-date totals before `from`,
   * `firstMonthSeen` (unique counts) the first-seen counts of the month of `from`, if started already.
   */
  private async evaluateRange(
    record: MeterVersionRecord,
    from: Date,
    to: Date,
    fresh: HourlyValue[],
    storedRows: HourlyValue[],
    before: Map<string, bigint> | undefined,
    firstMonthSeen?: Promise<HourlyValue[]>,
  ): Promise<{ rows: UsageRow[] }> {
    const { definition, meter, version } = record;
    const values = new Map<string, HourlyValue>();
    const key = (customer: string, hour: Date) => `${hour.getTime()}\u0000${customer}`;
    // An hour that had usage and now has none must say 0, not keep its old value.
    for (const old of storedRows) values.set(key(old.customer, old.hour), { ...old, value: 0n });
    for (const v of fresh) values.set(key(v.customer, v.hour), v);

    const rows: UsageRow[] = [];
    const row = (v: HourlyValue, periodValue: bigint): UsageRow => ({
      customer: v.customer,
      hour: v.hour,
      value: v.value,
      meter,
      version,
      periodValue,
    });
    const byHour = [...values.values()].sort(
      (a, b) => a.hour.getTime() - b.hour.getTime() || (a.customer < b.customer ? -1 : 1),
    );
    if (aggregationOf(definition).additive) {
      // Running sums within each month; hours of the month before `from` come from the store.
      const running = new Map<string, bigint>();
      let month = -1;
      let hourOfMonth = -1;
      for (const v of byHour) {
        // Rows come hour by hour: the month is worked out once per hour, not per row.
        if (v.hour.getTime() !== hourOfMonth) {
          hourOfMonth = v.hour.getTime();
          const start = periodStart(v.hour);
          if (start.getTime() !== month) {
            month = start.getTime();
            running.clear();
            if (start < from && before) for (const [customer, total] of before) running.set(customer, total);
          }
        }
        const total = (running.get(v.customer) ?? 0n) + v.value;
        running.set(v.customer, total);
        rows.push(row(v, total));
      }
    } else if (definition.aggregation.type === 'unique_count') {
      // One scan per month: values counted in the hour they were first seen; running sums give the
      // period-to-date count of every hour. Per month and customer, the first-seen counts sorted by
      // hour and a cursor into them: rows come in hour order, so each count is added once.
      interface Seen {
        hours: number[];
        counts: bigint[];
        next: number;
        total: bigint;
      }
      const firstSeenByMonth = new Map<number, Map<string, Seen>>();
      let hourOfMonth = -1;
      let seen: Map<string, Seen> | undefined;
      for (const v of byHour) {
        if (v.hour.getTime() !== hourOfMonth) {
          hourOfMonth = v.hour.getTime();
          const month = periodStart(v.hour);
          seen = firstSeenByMonth.get(month.getTime());
          if (!seen) {
            const byCustomer = new Map<string, Seen>();
            const end = periodEnd(month);
            const found = await (firstMonthSeen && +month === +periodStart(from)
              ? firstMonthSeen
              : this.source.firstSeen(definition, maxDate(month, record.effectiveFrom), minDate(end, to)));
            found.sort((a, b) => a.hour.getTime() - b.hour.getTime());
            for (const f of found) {
              let c = byCustomer.get(f.customer);
              if (!c) byCustomer.set(f.customer, (c = { hours: [], counts: [], next: 0, total: 0n }));
              c.hours.push(f.hour.getTime());
              c.counts.push(f.value);
            }
            firstSeenByMonth.set(month.getTime(), byCustomer);
            seen = byCustomer;
          }
        }
        const c = seen!.get(v.customer);
        if (c) {
          while (c.next < c.hours.length && c.hours[c.next]! <= hourOfMonth) c.total += c.counts[c.next++]!;
        }
        rows.push(row(v, c?.total ?? 0n));
      }
    } else {
      const periodByHour = new Map<number, Map<string, bigint>>();
      for (const v of byHour) {
        let period = periodByHour.get(v.hour.getTime());
        if (!period) {
          period = await this.source.period(
            definition,
            maxDate(periodStart(v.hour), record.effectiveFrom),
            addHours(v.hour, 1),
          );
          periodByHour.set(v.hour.getTime(), period);
        }
        rows.push(row(v, period.get(v.customer) ?? 0n));
      }
    }
    return { rows };
  }
}

/**
 * The hours of [from, to) before each meter's first version (none of its versions computes them), for
 * the meters named. Versions cover everything from the first one's start onward: each ends where the
 * next begins.
 */
export function uncoveredRanges(
  versions: readonly MeterVersionRecord[],
  meterNames: readonly string[],
  from: Date,
  to: Date,
): UncoveredRange[] {
  const start = floorHour(from);
  const out: UncoveredRange[] = [];
  for (const meter of meterNames) {
    const starts = versions.filter((v) => v.meter === meter).map((v) => v.effectiveFrom.getTime());
    const first = starts.length > 0 ? new Date(Math.min(...starts)) : undefined;
    if (first && first <= start) continue;
    out.push({ meter, from: start, to: first && first < to ? first : to, firstEffectiveFrom: first });
  }
  return out;
}

/** Some meters have no version over any hour of the range asked for: nothing there can be billed. */
export class MeterRangeNotCoveredError extends DomainError {
  constructor(
    readonly uncovered: readonly UncoveredRange[],
    from: Date,
  ) {
    const hour = floorHour(from).toISOString();
    super(
      'range_not_covered',
      `no version of ${uncovered.map((u) => u.meter).join(', ')} covers this range: ` +
        uncovered
          .map((u) =>
            u.firstEffectiveFrom
              ? `${u.meter} starts at ${u.firstEffectiveFrom.toISOString()}`
              : `${u.meter} has no version yet`,
          )
          .join('; ') +
        `. To bill these hours (a backfill), set effective_from: '${hour}' in the meter's YAML file, ` +
        `restart, and evaluate this range again; or leave these meters out with "meters"`,
      {
        meters: uncovered.map((u) => ({
          meter: u.meter,
          first_effective_from: u.firstEffectiveFrom?.toISOString() ?? null,
        })),
        backfill: {
          effective_from: hour,
          how: "set effective_from in the meter's YAML (unchanged otherwise: its first version then starts there), restart, evaluate the range again",
        },
      },
    );
  }
}

/** Each version with the start of the next version of the same meter (its end), in order. */
function intervals(
  versions: MeterVersionRecord[],
): { record: MeterVersionRecord; until: Date | undefined }[] {
  const byMeter = new Map<string, MeterVersionRecord[]>();
  for (const v of versions) byMeter.set(v.meter, [...(byMeter.get(v.meter) ?? []), v]);
  const out: { record: MeterVersionRecord; until: Date | undefined }[] = [];
  for (const list of byMeter.values()) {
    list.sort((a, b) => +a.effectiveFrom - +b.effectiveFrom);
    list.forEach((record, i) => out.push({ record, until: list[i + 1]?.effectiveFrom }));
  }
  return out;
}

/**
 * The promise, marked as handled: a read started early and awaited after others must not count as an
 * unhandled rejection if it fails first (the await still throws).
 */
function settledLater<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => undefined);
  return promise;
}

/** Ranges evaluated at once (evaluateTasks): enough to overlap Node's work with ClickHouse's. */
const RANGE_CONCURRENCY = 3;

/** `run` over `items` with at most `limit` in flight; results in the items' order. */
async function mapInTurns<T, R>(
  items: readonly T[],
  limit: number,
  run: (item: T) => Promise<R>,
): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  let failed = false;
  const lane = async () => {
    // After a failure no lane starts another item (the run fails either way).
    while (next < items.length && !failed) {
      const i = next++;
      try {
        out[i] = await run(items[i]!);
      } catch (error) {
        failed = true;
        throw error;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  return out;
}

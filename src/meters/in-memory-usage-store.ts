import type {
  EvaluationReport,
  HourlyValue,
  MeterVersionKey,
  MeterVersionRecord,
  RecordedRun,
  UsageRow,
  UsageStore,
} from './evaluation.ts';

/** The fake beside the UsageStore port, for unit tests: the latest write of an hour wins, as in ClickHouse. */
export class InMemoryUsageStore implements UsageStore {
  readonly versionRecords: MeterVersionRecord[] = [];
  readonly usage = new Map<string, UsageRow & { revision: bigint }>();
  readonly watermarks = new Map<string, Date>();
  readonly runs: EvaluationReport[] = [];

  async versions(): Promise<MeterVersionRecord[]> {
    return [...this.versionRecords];
  }

  async recordVersion(record: MeterVersionRecord): Promise<void> {
    this.versionRecords.push(record);
  }

  async watermark(meter: string, version: string): Promise<Date | undefined> {
    return this.watermarks.get(`${meter}/${version}`);
  }

  async setWatermark(meter: string, version: string, through: Date): Promise<void> {
    this.watermarks.set(`${meter}/${version}`, through);
  }

  async stored(versions: readonly MeterVersionKey[], from: Date, to: Date): Promise<HourlyValue[][]> {
    return versions.map(({ meter, version }) => this.hours(meter, version, from, to));
  }

  async storedTotals(
    versions: readonly MeterVersionKey[],
    from: Date,
    to: Date,
  ): Promise<Map<string, bigint>[]> {
    return versions.map(({ meter, version }) => {
      const totals = new Map<string, bigint>();
      for (const h of this.hours(meter, version, from, to))
        totals.set(h.customer, (totals.get(h.customer) ?? 0n) + h.value);
      return totals;
    });
  }

  private hours(meter: string, version: string, from: Date, to: Date): HourlyValue[] {
    return [...this.usage.values()]
      .filter((r) => r.meter === meter && r.version === version && r.hour >= from && r.hour < to)
      .map(({ customer, hour, value }) => ({ customer, hour, value }));
  }

  async writeUsage(rows: UsageRow[], _computedAt: Date, revision: bigint): Promise<void> {
    for (const r of rows) {
      const key = `${r.meter}/${r.version}/${r.customer}/${r.hour.getTime()}`;
      const old = this.usage.get(key);
      // As ReplacingMergeTree(revision): the highest revision wins, whatever the order of writes.
      if (!old || revision >= old.revision) this.usage.set(key, { ...r, revision });
    }
  }

  async latestRun(): Promise<RecordedRun | undefined> {
    const run = this.runs.at(-1);
    return (
      run && {
        runAt: run.runAt,
        closedThrough: run.closedThrough,
        windowStart: run.windowStart,
        lateOutsideWindow: run.lateOutsideWindow,
      }
    );
  }

  async recordRun(run: EvaluationReport): Promise<void> {
    this.runs.push(run);
  }
}

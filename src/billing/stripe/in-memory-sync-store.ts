import type { Discrepancy, LedgerOp, SyncStore, UsageForSync } from './sync-ledger.ts';

/** The SyncStore fake for unit tests: same semantics as the ClickHouse one (latest row wins). */
export class InMemorySyncStore implements SyncStore {
  readonly usageRows: (UsageForSync & { meter: string })[] = [];
  readonly ledger: LedgerOp[] = [];
  readonly discrepancyRows: Discrepancy[] = [];
  /** Makes the next `record` calls fail (a ClickHouse outage). */
  failRecords = 0;

  /** Sets a meter's hour as the evaluation would (the latest write of a key wins). */
  setUsage(meter: string, row: UsageForSync): void {
    const i = this.usageRows.findIndex((r) => r.meter === meter && r.version === row.version && r.customer === row.customer && +r.hour === +row.hour);
    if (i >= 0) this.usageRows.splice(i, 1);
    this.usageRows.push({ meter, ...row });
  }

  async usage(meter: string, from: Date, to: Date): Promise<UsageForSync[]> {
    return this.usageRows.filter((r) => r.meter === meter && r.hour >= from && r.hour < to).map(({ meter: _, ...rest }) => rest);
  }

  async ops(meter: string, from: Date, to: Date): Promise<LedgerOp[]> {
    const latest = new Map<string, LedgerOp>();
    const firstIntent = new Map<string, Date>();
    for (const op of this.ledger) {
      if (op.meter !== meter || op.hour < from || op.hour >= to) continue;
      const seen = latest.get(op.opId);
      if (!seen || op.seq > seen.seq) latest.set(op.opId, op);
      const first = firstIntent.get(op.opId);
      if (!first || op.intentAt < first) firstIntent.set(op.opId, op.intentAt);
    }
    return [...latest.values()].map((op) => ({ ...op, intentAt: firstIntent.get(op.opId)! }));
  }

  async record(ops: readonly LedgerOp[]): Promise<void> {
    if (this.failRecords > 0) {
      this.failRecords -= 1;
      throw new Error('ledger unavailable');
    }
    this.ledger.push(...ops.map((op) => ({ ...op })));
  }

  async openDiscrepancies(meter: string): Promise<Discrepancy[]> {
    return this.current().filter((d) => d.meter === meter && !d.resolved);
  }

  async recordDiscrepancies(discrepancies: readonly Discrepancy[]): Promise<void> {
    this.discrepancyRows.push(...discrepancies.map((d) => ({ ...d })));
  }

  async discrepancies(filter: { resolved?: boolean; meter?: string; customer?: string; limit: number }): Promise<Discrepancy[]> {
    return this.current()
      .filter(
        (d) =>
          (filter.resolved === undefined || d.resolved === filter.resolved) &&
          (filter.meter === undefined || d.meter === filter.meter) &&
          (filter.customer === undefined || d.customerKey === filter.customer),
      )
      .slice(0, filter.limit);
  }

  private current(): Discrepancy[] {
    const latest = new Map<string, Discrepancy>();
    for (const d of this.discrepancyRows) latest.set([d.meter, d.version, d.customerKey, d.hour.getTime(), d.kind].join('\u0000'), d);
    return [...latest.values()];
  }
}

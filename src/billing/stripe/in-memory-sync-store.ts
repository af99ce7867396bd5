import { periodStart } from '../../time/billing-period.ts';
import {
  lastLiveSend,
  liveSends,
  type Discrepancy,
  type DiscrepancyFilter,
  type LedgerOp,
  type SyncCandidate,
  type SyncStore,
  type UsageForSync,
} from './sync-ledger.ts';

/** The SyncStore fake for unit tests: same semantics as the ClickHouse one (latest row wins). */
export class InMemorySyncStore implements SyncStore {
  readonly usageRows: (UsageForSync & { meter: string })[] = [];
  readonly ledger: LedgerOp[] = [];
  readonly discrepancyRows: Discrepancy[] = [];
  /** Makes the next `record` calls fail (a ClickHouse outage). */
  failRecords = 0;

  /** Sets a meter's hour as the evaluation would (the latest write of a key wins). */
  setUsage(meter: string, row: UsageForSync): void {
    const i = this.usageRows.findIndex(
      (r) =>
        r.meter === meter &&
        r.version === row.version &&
        r.customer === row.customer &&
        +r.hour === +row.hour,
    );
    if (i >= 0) this.usageRows.splice(i, 1);
    this.usageRows.push({ meter, ...row });
  }

  async usage(meter: string, from: Date, to: Date): Promise<UsageForSync[]> {
    return this.usageRows
      .filter((r) => r.meter === meter && r.hour >= from && r.hour < to)
      .map(({ meter: _, ...rest }) => rest);
  }

  /** The reference the ClickHouse query is tested against (same scenarios, both engines). */
  async candidates(
    meter: string,
    additive: boolean,
    from: Date,
    to: Date,
    dryRun: boolean,
  ): Promise<SyncCandidate[]> {
    const usage = await this.usage(meter, from, to);
    const ops = await this.ops(meter, from, to);
    const open = (await this.openDiscrepancies(meter)).filter((d) => d.hour >= from && d.hour < to);
    const keyHour = (hour: Date) => (additive ? hour : periodStart(hour));
    const k = (version: string, customer: string, hour: Date) =>
      [version, customer, keyHour(hour).getTime()].join('\u0000');
    const keys = new Map<
      string,
      {
        version: string;
        customer: string;
        hour: Date;
        target: bigint;
        ops: LedgerOp[];
        open: boolean;
        latestUsage: number;
      }
    >();
    const at = (version: string, customer: string, hour: Date) => {
      const key = k(version, customer, hour);
      let found = keys.get(key);
      if (!found) {
        found = { version, customer, hour, target: 0n, ops: [], open: false, latestUsage: -1 };
        keys.set(key, found);
      }
      if (hour > found.hour) found.hour = hour;
      return found;
    };
    for (const u of usage) {
      const c = at(u.version, u.customer, u.hour);
      if (additive) c.target = u.value;
      else if (u.hour.getTime() > c.latestUsage) {
        c.latestUsage = u.hour.getTime();
        c.target = u.periodValue;
      }
    }
    for (const op of ops) at(op.version, op.customerKey, op.hour).ops.push(op);
    for (const d of open) at(d.version, d.customerKey, d.hour).open = true;
    const out: SyncCandidate[] = [];
    for (const c of keys.values()) {
      const sent = additive ? liveSends(c.ops, dryRun).total : (lastLiveSend(c.ops, dryRun)?.value ?? 0n);
      const pending = c.ops.some((o) => o.state === 'intent');
      if (c.target === sent && !pending && !c.open) continue;
      out.push({
        version: c.version,
        customer: c.customer,
        hour: c.hour,
        ...(additive ? {} : { period: periodStart(c.hour) }),
        target: c.target,
      });
    }
    return out;
  }

  async ops(meter: string, from: Date, to: Date, customers?: readonly string[]): Promise<LedgerOp[]> {
    const latest = new Map<string, LedgerOp>();
    const firstIntent = new Map<string, Date>();
    const wanted = customers ? new Set(customers) : undefined;
    for (const op of this.ledger) {
      if (op.meter !== meter || op.hour < from || op.hour >= to) continue;
      if (wanted && !wanted.has(op.customerKey)) continue;
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

  async discrepancies(filter: DiscrepancyFilter): Promise<Discrepancy[]> {
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
    for (const d of this.discrepancyRows)
      latest.set([d.meter, d.version, d.customerKey, d.hour.getTime(), d.kind].join('\u0000'), d);
    return [...latest.values()];
  }
}

import { floorHour } from '../../time/hours.ts';
import { aggregationOf } from '../../meters/aggregations.ts';
import type { MeterDefinition } from '../../meters/meter-schema.ts';
import type { CustomerDirectory, StripeUsageSummaries } from './ports.ts';
import type { SyncStore } from './sync-ledger.ts';

/**
 * Reconciliation: for every meter with a `stripe` block and every customer with usage in [from, to),
 * the service's total against Stripe's meter event summary over the same range.
 * - Additive meters: the sum of the hours. Stripe's `sum` over the same range must be equal.
 * - Non-additive meters: the period-to-date value of the latest hour in the range; Stripe's `last`
 *   over the range must be equal. A range should then lie within one billing period (calendar month).
 * A customer without a Stripe customer is a mismatch (`unmapped`): its usage is not in Stripe.
 */
export type ReconcileStatus = 'ok' | 'mismatch' | 'unmapped' | 'no_stripe_meter';

export interface ReconcileLine {
  meter: string;
  customer: string;
  stripeCustomerId: string | null;
  ours: string;
  stripe: string | null;
  difference: string | null;
  status: ReconcileStatus;
}

export interface ReconcileResult {
  from: string;
  to: string;
  lines: ReconcileLine[];
  mismatches: number;
}

export class ReconcileService {
  constructor(
    private readonly store: Pick<SyncStore, 'usage'>,
    private readonly directory: CustomerDirectory,
    private readonly summaries: StripeUsageSummaries,
  ) {}

  async reconcile(
    meters: readonly MeterDefinition[],
    range: { from: Date; to: Date },
  ): Promise<ReconcileResult> {
    // Stripe's summaries take whole minutes; usage is hourly, so whole hours lose nothing.
    const from = floorHour(range.from);
    const to = floorHour(range.to);
    const lines: ReconcileLine[] = [];
    for (const meter of meters) {
      if (!meter.stripe) continue;
      const ours = await this.totals(meter, from, to);
      if (ours.size === 0) continue;
      const mapping = await this.directory.resolve([...ours.keys()]);
      const stripeMeter = await this.summaries.meterByEventName(meter.stripe.event_name);
      for (const [customer, value] of [...ours].sort(([a], [b]) => (a < b ? -1 : 1))) {
        const stripeCustomerId = mapping.get(customer) ?? null;
        const line: ReconcileLine = {
          meter: meter.name,
          customer,
          stripeCustomerId,
          ours: value.toString(),
          stripe: null,
          difference: null,
          status: 'ok',
        };
        if (stripeCustomerId === null) line.status = value === 0n ? 'ok' : 'unmapped';
        else if (!stripeMeter) line.status = 'no_stripe_meter';
        else {
          const theirs = await this.summaries.summary(stripeMeter.id, stripeCustomerId, from, to);
          line.stripe = theirs.toString();
          line.difference = (value - theirs).toString();
          line.status = theirs === value ? 'ok' : 'mismatch';
        }
        lines.push(line);
      }
    }
    return {
      from: from.toISOString(),
      to: to.toISOString(),
      lines,
      mismatches: lines.filter((l) => l.status !== 'ok').length,
    };
  }

  private async totals(meter: MeterDefinition, from: Date, to: Date): Promise<Map<string, bigint>> {
    const rows = await this.store.usage(meter.name, from, to);
    const totals = new Map<string, bigint>();
    if (aggregationOf(meter).additive) {
      for (const r of rows) totals.set(r.customer, (totals.get(r.customer) ?? 0n) + r.value);
      return totals;
    }
    const latest = new Map<string, Date>();
    for (const r of rows) {
      const seen = latest.get(r.customer);
      if (seen && seen >= r.hour) continue;
      latest.set(r.customer, r.hour);
      totals.set(r.customer, r.periodValue);
    }
    return totals;
  }
}

/** The result as a fixed-width table for a terminal. */
export function formatReconcile(result: ReconcileResult): string {
  const header = ['meter', 'customer', 'stripe customer', 'ours', 'stripe', 'difference', 'status'];
  const rows = result.lines.map((l) => [
    l.meter,
    l.customer,
    l.stripeCustomerId ?? '-',
    l.ours,
    l.stripe ?? '-',
    l.difference ?? '-',
    l.status,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [
    `reconciliation ${result.from} → ${result.to}`,
    line(header),
    ...rows.map(line),
    result.mismatches === 0 ? 'no mismatches' : `${result.mismatches} mismatch(es)`,
  ].join('\n');
}

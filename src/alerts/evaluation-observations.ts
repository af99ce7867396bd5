import type { EvaluationReport } from '../meters/evaluation.ts';
import type { MeterDefinition } from '../meters/meter-schema.ts';
import type { UsageQueryService } from '../meters/usage-query.ts';
import { periodEnd, periodStart } from '../time/billing-period.ts';
import type { UsageObservation } from './alert-engine.ts';

/**
 * Observations from the hourly evaluation: the stored period-to-date usage of every customer, for each
 * billing period the evaluation touched (its lowest range up to the hours it closed), as of its run.
 * Until a per-minute source exists this is what alerts see: a crossing is noticed within the hour.
 */
export async function observationsAfterEvaluation(
  usage: Pick<UsageQueryService, 'usage'>,
  meters: readonly MeterDefinition[],
  report: Pick<EvaluationReport, 'runAt' | 'closedThrough' | 'ranges'>,
): Promise<UsageObservation[]> {
  if (report.ranges.length === 0) return [];
  const lowest = new Date(Math.min(...report.ranges.map((r) => r.from.getTime())));
  const out: UsageObservation[] = [];
  for (let start = periodStart(lowest); start < report.closedThrough; start = periodEnd(start)) {
    const to = periodEnd(start) < report.closedThrough ? periodEnd(start) : report.closedThrough;
    for (const meter of meters) {
      for (const p of await usage.usage(meter, { from: start, to, window: 'month' })) {
        out.push({
          customer: p.customer,
          meter: meter.name,
          periodStart: start,
          quantity: BigInt(p.value),
          observedAt: report.runAt,
        });
      }
    }
  }
  return out;
}

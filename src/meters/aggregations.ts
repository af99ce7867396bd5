import { raw, type SqlFragment } from '../sql/escape.ts';
import type { AggregationType } from './meter-schema.ts';

/**
 * What each aggregation is, in one place: its SQL, whether its hours add up, what Stripe is sent and
 * how hours roll up into a day and a month. The compiler, the evaluation, the usage API, `stripe push`,
 * the sync and reconciliation all ask this module instead of testing the type themselves.
 */
export interface Aggregation {
  type: AggregationType;
  /**
   * Hours add up (count, sum): a day or a month is the sum of its hours, Stripe gets hourly deltas.
   * Otherwise a month is its period-to-date value, a day is computed again from the logs, and Stripe
   * gets the period-to-date value.
   */
  additive: boolean;
  /** The formula of the Stripe meter that receives it. */
  stripeFormula: 'sum' | 'last';
  /** The ClickHouse aggregate over the filtered rows, as a decimal string. */
  sql: SqlFragment;
  /** The columns the aggregate reads besides the customer (and request_time for hourly grouping). */
  reads: { weight: boolean; value: boolean; latestOrder: boolean };
  /**
   * Whether copies of one event must be collapsed first: they change a count or a sum, never a unique
   * count, an extreme or the latest value. The dedupe is the costly part (bench:meters), so only here.
   */
  needsDedupe: boolean;
}

const additive = (type: 'count' | 'sum', sql: string): Aggregation => ({
  type,
  additive: true,
  stripeFormula: 'sum',
  sql: raw(sql),
  reads: { weight: true, value: type === 'sum', latestOrder: false },
  needsDedupe: true,
});

const periodToDate = (
  type: Exclude<AggregationType, 'count' | 'sum'>,
  sql: string,
  latestOrder = false,
): Aggregation => ({
  type,
  additive: false,
  stripeFormula: 'last',
  sql: raw(sql),
  reads: { weight: false, value: true, latestOrder },
  needsDedupe: false,
});

export const AGGREGATIONS: Readonly<Record<AggregationType, Aggregation>> = {
  // Sampled-away calls count through their weight.
  count: additive('count', 'toString(sum(sample_weight))'),
  sum: additive('sum', 'toString(sum(metered * sample_weight))'),
  min: periodToDate('min', 'toString(min(metered))'),
  max: periodToDate('max', 'toString(max(metered))'),
  // Sampled-away calls' values are unknown: only the values seen are counted.
  unique_count: periodToDate('unique_count', 'toString(uniqExact(metered))'),
  // Ties broken by the event id, so the same rows always give the same value.
  latest: periodToDate(
    'latest',
    'toString(argMax(metered, (request_time, request_time_ms, event_id)))',
    true,
  ),
};

export function aggregationOf(meter: { aggregation: { type: AggregationType } }): Aggregation {
  return AGGREGATIONS[meter.aggregation.type];
}

/**
 * Whether a meter can share the one scan of compileCombinedHourly: count and sum always, unique_count
 * when all the meters of the scan have one customer (its conditional aggregates; the other form fans rows
 * out to meters and sums).
 */
export function combinable(meter: { aggregation: { type: AggregationType } }, oneCustomer: boolean): boolean {
  const { type } = meter.aggregation;
  return type === 'count' || type === 'sum' || (type === 'unique_count' && oneCustomer);
}

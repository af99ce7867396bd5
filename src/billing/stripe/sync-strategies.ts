import { periodEnd, periodStart } from '../../time/billing-period.ts';
import { floorHour } from '../../time/hours.ts';
import type { MeterDefinition } from '../../meters/meter-schema.ts';
import { aggregationOf } from '../../meters/aggregations.ts';
import { lastLiveSend, liveSends, type LedgerOp } from './sync-ledger.ts';

/**
 * How a meter's usage reaches Stripe, chosen once per meter by the formula its Stripe meter has
 * (`aggregations.ts`, the one `stripe push` declares):
 * - hourly deltas (`sum`: count, sum): each hour is its own key, and Stripe holds the sum of the
 *   live sends of the hour. A new event can only add, so a decrease is taken back by cancelling.
 * - period-to-date (`last`: unique_count, min, max, latest): the key is the billing period, and
 *   Stripe holds the value of the period's last event. Any change is a new, later event.
 *
 * A strategy answers questions about values and time only; `decide` (sync-plan.ts) turns the answers
 * into actions, so the interface can later be derived from a shared aggregation module.
 */
export interface SyncStrategy {
  /** One key per hour (true) or per billing period (false): how the store groups its candidates. */
  readonly additive: boolean;
  /** The start of the key an hour's usage or ledger operation belongs to. */
  keyStart(hour: Date): Date;
  /** Where the key whose latest hour is `hour` stands against Stripe's window (see KeyWindow). */
  window(hour: Date, sendableFrom: Date): KeyWindow;
  /** What Stripe holds for a key, from the current state of its operations. */
  sent(ops: readonly LedgerOp[], dryRun: boolean): bigint;
  /** What a key's usage going from `sent` (what Stripe holds) to `target` asks of Stripe. */
  change(target: bigint, sent: bigint): UsageChange;
  /** The timestamp of the key's new event of this revision. */
  eventTime(hour: Date, window: KeyWindow, revision: number): Date;
}

export interface KeyWindow {
  /** Period-to-date only: the start of the billing period. */
  period?: Date;
  /** Whether Stripe still accepts an event for the key (35 days). */
  sendable: boolean;
  /** Lower bound for a new event's timestamp (period-to-date: the start of the sendable window). */
  earliestEventTime: Date;
}

interface UsageChange {
  /**
   * send: one new event of `value` brings Stripe to the target. take_back: Stripe holds more than the
   * usage, and a new event of a `sum` meter cannot lower it.
   */
  kind: 'send' | 'take_back';
  /** What the new event carries; for take_back, target − sent (negative). Held usage lists it. */
  value: bigint;
  /**
   * Whether a send also closes the key's open discrepancies about amounts in the same run. Hourly
   * deltas: yes. Period-to-date: no, the next run closes them (it finds the key by its open
   * discrepancy), as the sync always did.
   */
  closesDiscrepancies: boolean;
}

const hourlyDeltas: SyncStrategy = {
  additive: true,
  keyStart: (hour) => hour,
  window: (hour, sendableFrom) => ({ sendable: hour >= sendableFrom, earliestEventTime: hour }),
  sent: (ops, dryRun) => liveSends(ops, dryRun).total,
  change: (target, sent) => ({
    kind: target > sent ? 'send' : 'take_back',
    value: target - sent,
    closesDiscrepancies: true,
  }),
  eventTime: (hour) => hour,
};

const periodToDate: SyncStrategy = {
  additive: false,
  keyStart: periodStart,
  window: (hour, sendableFrom) => {
    const period = periodStart(hour);
    return { period, sendable: periodEnd(period) > sendableFrom, earliestEventTime: sendableFrom };
  },
  sent: (ops, dryRun) => lastLiveSend(ops, dryRun)?.value ?? 0n,
  change: (target) => ({ kind: 'send', value: target, closesDiscrepancies: false }),
  // Later revisions are later events, so `last` picks them, decreases included: the hour (or the
  // start of the sendable window) plus the revision in seconds, capped inside the hour and the period.
  eventTime: (hour, window, revision) => {
    const base = hour > window.earliestEventTime ? hour : floorHour(window.earliestEventTime);
    const end = periodEnd(window.period ?? periodStart(hour)).getTime() - 1000;
    return new Date(Math.min(base.getTime() + Math.min(revision, 3599) * 1000, end));
  },
};

const BY_FORMULA = { sum: hourlyDeltas, last: periodToDate } as const;

export const syncStrategyFor = (meter: MeterDefinition): SyncStrategy =>
  BY_FORMULA[aggregationOf(meter).stripeFormula];

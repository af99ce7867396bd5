import { HOUR_MS } from '../../time/hours.ts';
import { liveSends, type Discrepancy, type DiscrepancyKind, type LedgerOp } from './sync-ledger.ts';
import type { KeyWindow, SyncStrategy } from './sync-strategies.ts';

/**
 * What the sync does for one key, as a pure function: `decide(item, ledger, now)` reads the key's
 * usage and what the ledger knows of it, and answers with the actions to take. The executor carries
 * them out; the run loop folds their outcomes back into the ledger and asks again while the round only
 * finished or cancelled operations (`decidesAgain`), because what Stripe holds then changed. A key
 * takes at most three rounds: finish what earlier runs left pending; bring the key to its usage; after
 * cancels, send what they did not take back, or record it.
 */

/** One (meter, version, customer, hour) of usage, or (…, billing period) for period-to-date meters. */
export interface SyncItem extends KeyWindow {
  meter: string;
  eventName: string;
  strategy: SyncStrategy;
  version: string;
  customer: string;
  /** Hourly deltas: the hour. Period-to-date: the latest hour of the period with usage. */
  hour: Date;
  /** The hour's value (hourly deltas) or the period-to-date value of the latest hour. */
  target: bigint;
  /** Absent: the customer has no Stripe customer yet, and its usage is held. */
  stripeCustomerId?: string;
}

/** What the ledger knows of one key. */
interface KeyLedger {
  /** The current state of each of the key's operations, this run's outcomes included. */
  ops: readonly LedgerOp[];
  /** The key's open discrepancies, as the run found them. */
  open: readonly Discrepancy[];
  /** A dry run counts its own dry_run rows as sent. */
  dryRun: boolean;
  /**
   * Sends whose cancel this run already tried (by op id). Stripe's answer (too old, no such event)
   * stands until the next run, so the same cancel is not tried twice in one run.
   */
  cancelsTried: ReadonlySet<string>;
}

export type SyncAction =
  /** Finish an operation an earlier run (or a crashed process) left pending, with what it intended. */
  | { kind: 'resume'; op: LedgerOp }
  /**
   * An intent never heard back within Stripe's 24 h identifier window: resending could bill twice, so
   * it is taken as it cannot (a send as applied, a cancel as not) and reported.
   */
  | { kind: 'give_up'; op: LedgerOp }
  /** A new revision of the key. */
  | { kind: 'send'; stripeCustomerId: string; revision: number; value: bigint; eventTime: Date }
  /** Cancel a live send (within Stripe's 24 h window); `detail` says why. */
  | { kind: 'cancel'; send: LedgerOp; detail: string }
  /** Record a discrepancy for the operator (unless the same one is open). */
  | { kind: 'discrepancy'; of: DiscrepancyKind; expected: bigint; sent: bigint; detail: string }
  /** Stripe holds the usage: close these open discrepancies, with what it holds. */
  | { kind: 'resolve'; sent: bigint; discrepancies: readonly Discrepancy[] }
  /** Nothing can be sent before the customer is mapped: list the usage as held. */
  | { kind: 'hold'; value: bigint };

/** Stripe's identifier dedupe and cancel windows are 24 h from receipt; keep 10 minutes of margin. */
const STRIPE_WINDOW_MS = 24 * HOUR_MS - 10 * 60_000;

const age = (op: LedgerOp, now: Date) => now.getTime() - op.intentAt.getTime();

export function decide(item: SyncItem, ledger: KeyLedger, now: Date): SyncAction[] {
  const pending = ledger.ops.filter((o) => o.state === 'intent').sort((a, b) => (a.seq < b.seq ? -1 : 1));
  if (pending.length > 0)
    return pending.map((op) => ({ kind: age(op, now) > STRIPE_WINDOW_MS ? 'give_up' : 'resume', op }));

  const sent = item.strategy.sent(ledger.ops, ledger.dryRun);
  if (item.target === sent) return resolve(ledger, sent);
  if (!item.sendable)
    return [
      {
        kind: 'discrepancy',
        of: 'outside_stripe_window',
        expected: item.target,
        sent,
        detail: 'usage changed after Stripe stopped accepting events for this hour (35 days)',
      },
    ];
  const change = item.strategy.change(item.target, sent);
  if (item.stripeCustomerId === undefined) return [{ kind: 'hold', value: change.value }];
  if (change.kind === 'send') {
    const revision = nextRevision(ledger.ops);
    const send: SyncAction = {
      kind: 'send',
      stripeCustomerId: item.stripeCustomerId,
      revision,
      value: change.value,
      eventTime: item.strategy.eventTime(item.hour, item, revision),
    };
    return change.closesDiscrepancies ? [send, ...resolve(ledger, item.target)] : [send];
  }

  // Stripe holds more than the usage: cancel what it still lets us cancel; the next round sends the
  // usage again. What cannot be cancelled any more is the operator's.
  const cancellable = liveSends(ledger.ops, ledger.dryRun).live.filter(
    (op) =>
      op.state !== 'unknown_outcome' && age(op, now) < STRIPE_WINDOW_MS && !ledger.cancelsTried.has(op.opId),
  );
  if (cancellable.length > 0)
    return cancellable.map((op) => ({
      kind: 'cancel',
      send: op,
      detail: `usage went down from ${sent} to ${item.target}`,
    }));
  return [
    {
      kind: 'discrepancy',
      of: 'decrease_after_24h',
      expected: item.target,
      sent,
      detail: "usage went down after Stripe's 24 h cancel window: Stripe holds more than was used",
    },
  ];
}

/** Whether the run loop asks `decide` again after this round: it only finished or cancelled operations. */
export const decidesAgain = (actions: readonly SyncAction[]): boolean =>
  actions.length > 0 &&
  actions.every((a) => a.kind === 'resume' || a.kind === 'give_up' || a.kind === 'cancel');

const nextRevision = (ops: readonly LedgerOp[]): number =>
  1 + Math.max(0, ...ops.filter((o) => o.kind === 'send').map((o) => o.revision));

/** Closes the open discrepancies about amounts; an unknown outcome stays for the operator. */
function resolve(ledger: KeyLedger, sent: bigint): SyncAction[] {
  const discrepancies = ledger.open.filter((d) => d.kind !== 'unknown_outcome');
  return discrepancies.length === 0 ? [] : [{ kind: 'resolve', sent, discrepancies }];
}

import { createHash } from 'node:crypto';

/**
 * The sync ledger: every call billing-meter makes to Stripe for usage, as an operation whose intent is
 * durable before the call and whose result is recorded after it.
 *
 * Why it makes the sync exactly-once in effect:
 * - An operation's identifier is a pure function of (meter, version, customer, hour, revision), and
 *   the intent (with its value) is stored before the call. A resend after a crash, a timeout or a
 *   dropped connection sends the same identifier and the same value, and Stripe refuses a repeated
 *   identifier for 24 h, so the event counts once whatever happened to the first attempt.
 * - What Stripe holds for an hour is the sum of the operations applied and not cancelled; the sync only
 *   ever sends the difference between that and the hour's current usage, as a new revision.
 */

export type OpKind = 'send' | 'cancel';

/**
 * - intent: stored before the call; the outcome is not known yet (pending).
 * - applied: Stripe accepted it. duplicate: Stripe already had this identifier (an earlier attempt
 *   was applied): as good as applied.
 * - dry_run: what would have been sent without a Stripe key.
 * - rejected: Stripe refused it for good (4xx); nothing was applied.
 * - unknown_outcome: an intent older than Stripe's 24 h identifier window whose outcome was never
 *   heard: resending could bill twice, so it is counted as sent and reported as a discrepancy.
 * - not_cancellable: a cancel Stripe refused because the event is older than its 24 h window.
 */
export type OpState =
  'intent' | 'applied' | 'duplicate' | 'dry_run' | 'rejected' | 'unknown_outcome' | 'not_cancellable';

export interface LedgerOp {
  opId: string;
  kind: OpKind;
  meter: string;
  version: string;
  customerKey: string;
  stripeCustomerId: string;
  eventName: string;
  /** The usage hour the operation is for (additive meters) or the latest hour of the period (others). */
  hour: Date;
  /** 1, 2, …: per (meter, version, customer, hour) for additive meters, per period for the others. */
  revision: number;
  /** What a send adds; a cancel's is the value of the event it cancels. */
  value: bigint;
  /** The meter event's timestamp. */
  eventTime: Date;
  /** For a cancel: the op id of the send it cancels. */
  targetOpId: string;
  state: OpState;
  detail: string;
  /** When the intent was first recorded (Stripe's 24 h windows run from about then). */
  intentAt: Date;
  recordedAt: Date;
  /** Orders the rows of one op: the highest is its state. */
  seq: bigint;
  /** The fencing token of the lease the intent was written under (SyncFence); absent or 0n: none. */
  fencingToken?: bigint;
}

export type DiscrepancyKind =
  /** Usage went down after the events for it could no longer be cancelled: Stripe holds more. */
  | 'decrease_after_24h'
  /** Usage that could not be sent because its hour is older than Stripe accepts (35 days). */
  | 'outside_stripe_window'
  /** An operation whose outcome was never heard within Stripe's 24 h dedupe window. */
  | 'unknown_outcome'
  /** Stripe refused an operation for good (for example an unknown customer). */
  | 'rejected';

export interface Discrepancy {
  meter: string;
  version: string;
  customerKey: string;
  hour: Date;
  kind: DiscrepancyKind;
  /** What the service computed. */
  expected: bigint;
  /** What Stripe holds (as far as the ledger knows). */
  sent: bigint;
  detail: string;
  resolved: boolean;
  recordedAt: Date;
}

export interface UsageForSync {
  version: string;
  customer: string;
  hour: Date;
  value: bigint;
  periodValue: bigint;
}

/** Port: what the sync reads and writes. */
export interface SyncStore {
  /** Latest usage of every (version, customer, hour) of a meter in [from, to). */
  usage(meter: string, from: Date, to: Date): Promise<UsageForSync[]>;
  /**
   * The keys of a meter in [from, to) that need the sync (see SyncCandidate), computed where the data
   * is: a run reads what changed, not 35 days of every customer. `dryRun`: dry-run rows count as sent.
   */
  candidates(
    meter: string,
    additive: boolean,
    from: Date,
    to: Date,
    dryRun: boolean,
  ): Promise<SyncCandidate[]>;
  /** The current state (latest row) of every op of a meter with an hour in [from, to), of these customers only if given. */
  ops(meter: string, from: Date, to: Date, customers?: readonly string[]): Promise<LedgerOp[]>;
  /** Durable once resolved. */
  record(ops: readonly LedgerOp[]): Promise<void>;
  openDiscrepancies(meter: string): Promise<Discrepancy[]>;
  recordDiscrepancies(discrepancies: readonly Discrepancy[]): Promise<void>;
  discrepancies(filter: DiscrepancyFilter): Promise<Discrepancy[]>;
}

/** Which discrepancies to list: open or resolved (both when absent), of a meter or customer. */
export interface DiscrepancyFilter {
  resolved?: boolean;
  meter?: string;
  customer?: string;
  limit: number;
}

/** Stripe allows identifiers of up to 100 characters. */
const MAX_METER_CHARS = 40;

const compactHour = (hour: Date): string => hour.toISOString().slice(0, 13).replace(/[-T]/g, '');

/**
 * The meter event identifier of one revision: readable (meter, hour, revision) and unique (a hash of
 * everything that identifies it, including the customer key, which is not shown to keep it short and
 * keep customer keys out of Stripe's dashboard).
 */
export function eventIdentifier(
  meter: string,
  version: string,
  customerKey: string,
  hour: Date,
  revision: number,
): string {
  const hash = createHash('sha256')
    .update(JSON.stringify([meter, version, customerKey, hour.toISOString(), revision]))
    .digest('hex')
    .slice(0, 24);
  return `${meter.slice(0, MAX_METER_CHARS)}-${compactHour(hour)}-r${revision}-${hash}`;
}

export const cancelOpId = (identifier: string): string => `cancel:${identifier}`;

/**
 * Whether an operation in this state took effect, as far as Stripe's totals are concerned. An outcome
 * never heard (`unknown_outcome`) is taken the way that cannot bill twice: a send as applied, a cancel
 * as not applied.
 */
export const SEND_COUNTED_STATES: readonly OpState[] = ['applied', 'duplicate', 'unknown_outcome'];
export const CANCEL_COUNTED_STATES: readonly OpState[] = ['applied', 'duplicate'];

const tookEffect = (kind: OpKind, state: OpState, dryRun: boolean): boolean =>
  (kind === 'send' ? SEND_COUNTED_STATES : CANCEL_COUNTED_STATES).includes(state) ||
  (dryRun && state === 'dry_run');

/** The sends that count for Stripe's totals (applied or as good as, not cancelled), and their sum. */
export function liveSends(ops: readonly LedgerOp[], dryRun: boolean): { live: LedgerOp[]; total: bigint } {
  const cancelled = new Set(
    ops.filter((o) => o.kind === 'cancel' && tookEffect('cancel', o.state, dryRun)).map((o) => o.targetOpId),
  );
  const live = ops.filter(
    (o) => o.kind === 'send' && tookEffect('send', o.state, dryRun) && !cancelled.has(o.opId),
  );
  return { live, total: live.reduce((sum, o) => sum + o.value, 0n) };
}

/**
 * Non-additive meters: the send Stripe's `last` sees. Within a period a later revision always has a
 * later (or, when capped, equal and later received) timestamp, so the highest revision is it.
 */
export function lastLiveSend(ops: readonly LedgerOp[], dryRun: boolean): LedgerOp | undefined {
  let last: LedgerOp | undefined;
  for (const op of liveSends(ops, dryRun).live) if (!last || op.revision > last.revision) last = op;
  return last;
}

/**
 * A key the sync must look at: its usage differs from what counts as sent, it has a pending intent, or
 * an open discrepancy. Additive meters: one per (version, customer, hour). Non-additive: one per
 * (version, customer, period), `hour` its latest hour with usage or an operation.
 */
export interface SyncCandidate {
  version: string;
  customer: string;
  hour: Date;
  /** Non-additive only: the start of the billing period. */
  period?: Date;
  /** The hour's value (additive) or the period-to-date value of the latest hour (non-additive). */
  target: bigint;
}

/** A strictly increasing sequence for ledger rows written by this process (microseconds, then +1). */
export function sequencer(now: () => number = Date.now): () => bigint {
  let last = 0n;
  return () => {
    const candidate = BigInt(now()) * 1000n;
    last = candidate > last ? candidate : last + 1n;
    return last;
  };
}

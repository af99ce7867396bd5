import { periodStart } from '../../time/billing-period.ts';
import { floorHour, HOUR_MS } from '../../time/hours.ts';
import type { MeterDefinition } from '../../meters/meter-schema.ts';
import type { CustomerDirectory, MeterEventSender, MeterEventStream, SyncFence } from './ports.ts';
import { StripeKeepsFailing, SyncExecutor, type SyncLogger } from './sync-executor.ts';
import { sequencer, type Discrepancy, type LedgerOp, type SyncStore } from './sync-ledger.ts';
import { decide, decidesAgain, type SyncItem } from './sync-plan.ts';
import { syncStrategyFor } from './sync-strategies.ts';

/**
 * The Stripe sync: brings what Stripe holds for every (meter, version, customer, hour) to the usage the
 * meters computed, through the ledger (see sync-ledger.ts for why that is exactly-once in effect).
 *
 * - What to do for one key is `decide` (sync-plan.ts), by the meter's strategy (sync-strategies.ts:
 *   hourly deltas to a `sum` meter, or the period-to-date value to a `last` meter); the executor
 *   (sync-executor.ts) makes the calls. This file is the run: which keys need work, in what order.
 * - Usage of a customer without a Stripe customer is held (listed, retried every run) until mapped.
 * - Hours older than Stripe accepts (35 days) are never sent: a difference there is a discrepancy.
 * - At most one call is in flight per customer and meter; `concurrency` such pairs run at once, and
 *   every call goes through `call` (rate limit and retries, wired in main.ts).
 */

export interface SyncDeps {
  store: SyncStore;
  directory: CustomerDirectory;
  /** Absent: dry-run. Nothing reaches Stripe; the ledger and logs show what would have been sent. */
  sender?: MeterEventSender;
  /** Present: sends go through the v2 meter event stream (cancels still use `sender`). */
  stream?: MeterEventStream;
  /**
   * Wraps every call to Stripe. The SDK gateway already rate-limits and retries each call itself, so
   * the default is the call as it is; tests use it to retry around fakes.
   */
  call?: <T>(fn: () => Promise<T>) => Promise<T>;
  concurrency: number;
  logger: SyncLogger;
  now?: () => Date;
}

export interface HeldUsage {
  meter: string;
  customer: string;
  /** Hours (or periods) waiting, and the usage not yet in Stripe. */
  hours: number;
  value: string;
  oldestHour: string;
  /** After this, the oldest hour can no longer be sent (Stripe's 35 days). */
  sendableUntil: string;
}

export interface SyncReport {
  runAt: Date;
  dryRun: boolean;
  keysChecked: number;
  sent: number;
  duplicates: number;
  cancelled: number;
  rejected: number;
  /** Operations still pending after their retries (resumed by the next run). */
  pending: number;
  held: HeldUsage[];
  discrepancies: number;
  /** Stripe kept failing: the run stopped early; the next one resumes. */
  aborted: boolean;
}

/** Stripe accepts meter events up to 35 days old; one hour of margin covers the run itself. */
const STRIPE_MAX_AGE_MS = 35 * 24 * HOUR_MS;
const SENDABLE_MARGIN_MS = HOUR_MS;
/** How far before the sendable window usage is still read, to report what can no longer be sent. */
const LOOKBACK_BEYOND_WINDOW_MS = 7 * 24 * HOUR_MS;
/** Calls that fail after all their retries in a row before a run gives up (Stripe is down). */
const MAX_CONSECUTIVE_FAILURES = 3;

/** A key that needs work, before its customer is resolved, with what the ledger holds for it. */
interface WorkKey {
  item: Omit<SyncItem, 'stripeCustomerId'>;
  ops: LedgerOp[];
  open: Discrepancy[];
}

const keyOf = (...parts: (string | number)[]) => parts.join('\u0000');
const addMs = (d: Date, ms: number) => new Date(d.getTime() + ms);
const byOldestHour = (a: HeldUsage, b: HeldUsage) => (a.oldestHour < b.oldestHour ? -1 : 1);

export class SyncService {
  private readonly now: () => Date;
  private readonly seq = sequencer();
  private readonly call: <T>(fn: () => Promise<T>) => Promise<T>;

  constructor(private readonly deps: SyncDeps) {
    this.now = deps.now ?? (() => new Date());
    this.call = deps.call ?? ((fn) => fn());
  }

  get dryRun(): boolean {
    return this.deps.sender === undefined;
  }

  /** One sync pass over every meter that has a `stripe` block. */
  async run(meters: readonly MeterDefinition[], fence?: SyncFence): Promise<SyncReport> {
    const runAt = this.now();
    const keys = await this.collect(meters, runAt);
    const mapping = await this.deps.directory.resolve([...new Set(keys.map((k) => k.item.customer))]);
    const executor = new SyncExecutor({
      store: this.deps.store,
      ...(this.deps.sender ? { sender: this.deps.sender } : {}),
      ...(this.deps.stream ? { stream: this.deps.stream } : {}),
      call: this.call,
      logger: this.deps.logger,
      now: this.now,
      seq: this.seq,
      runAt,
      ...(fence ? { fence } : {}),
    });
    const held = new Map<string, HeldUsage>();

    const groups = new Map<string, WorkKey[]>();
    for (const key of keys) {
      const k = keyOf(key.item.meter, key.item.customer);
      const group = groups.get(k);
      if (group) group.push(key);
      else groups.set(k, [key]);
    }
    // A customer's hours go oldest first: when a call fails for good, the later ones wait, in order.
    for (const group of groups.values()) group.sort((a, b) => +a.item.hour - +b.item.hour);

    let pending = 0;
    let aborted = false;
    let consecutiveFailures = 0;
    // Anything else than Stripe failing (ClickHouse refusing an intent, a bug) stops every worker
    // before its next call and fails the run, but only once no call is in flight: the run's lock must
    // not be released while one of its calls could still be writing.
    let fatal: { error: unknown } | undefined;
    const work = [...groups.values()];
    const worker = async () => {
      for (let group = work.shift(); group !== undefined; group = work.shift()) {
        for (const key of group) {
          if (aborted || fatal) return;
          try {
            await this.syncKey(key, mapping.get(key.item.customer), executor, held, runAt);
            consecutiveFailures = 0;
          } catch (err) {
            if (!(err instanceof StripeKeepsFailing)) {
              fatal ??= { error: err };
              return;
            }
            pending += 1;
            consecutiveFailures += 1;
            if (consecutiveFailures >= MAX_CONSECUTIVE_FAILURES) aborted = true;
            break; // the rest of this customer's hours wait for the next run, in order
          }
        }
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.max(1, this.deps.concurrency) }, worker));
      await executor.flush();
    } finally {
      await executor.settled();
    }
    if (fatal) throw fatal.error;

    const { sent, duplicates, cancelled, rejected, discrepancies } = executor.counts;
    const report: SyncReport = {
      runAt,
      dryRun: this.dryRun,
      keysChecked: keys.length,
      sent,
      duplicates,
      cancelled,
      rejected,
      pending,
      held: [...held.values()].sort(byOldestHour),
      discrepancies,
      aborted,
    };
    const log = aborted
      ? this.deps.logger.warn.bind(this.deps.logger)
      : this.deps.logger.info.bind(this.deps.logger);
    log(
      {
        dryRun: report.dryRun,
        keys: report.keysChecked,
        sent: report.sent,
        duplicates: report.duplicates,
        cancelled: report.cancelled,
        rejected: report.rejected,
        pending: report.pending,
        held: report.held.length,
        discrepancies: report.discrepancies,
      },
      aborted ? 'stripe sync stopped early: stripe keeps failing; the next run resumes' : 'stripe sync done',
    );
    return report;
  }

  /** Usage waiting for a Stripe customer, without syncing anything. */
  async held(meters: readonly MeterDefinition[]): Promise<HeldUsage[]> {
    const keys = await this.collect(meters, this.now());
    const mapping = await this.deps.directory.resolve([...new Set(keys.map((k) => k.item.customer))]);
    const held = new Map<string, HeldUsage>();
    for (const { item, ops } of keys) {
      if (mapping.has(item.customer) || !item.sendable) continue;
      const sent = item.strategy.sent(ops, this.dryRun);
      if (item.target === sent) continue;
      // Only what a mapping would send is waiting; a decrease is taken back, not sent.
      const change = item.strategy.change(item.target, sent);
      if (change.kind === 'send') hold(held, item, change.value);
    }
    return [...held.values()].sort(byOldestHour);
  }

  /** Brings one key to its usage: decide, carry the actions out, and decide again while it asks to. */
  private async syncKey(
    key: WorkKey,
    stripeCustomerId: string | undefined,
    executor: SyncExecutor,
    held: Map<string, HeldUsage>,
    runAt: Date,
  ): Promise<void> {
    const item: SyncItem = { ...key.item, ...(stripeCustomerId === undefined ? {} : { stripeCustomerId }) };
    const ops = new Map(key.ops.map((op) => [op.opId, op]));
    const cancelsTried = new Set<string>();
    for (;;) {
      const ledger = { ops: [...ops.values()], open: key.open, dryRun: this.dryRun, cancelsTried };
      const actions = decide(item, ledger, runAt);
      for (const action of actions) {
        if (action.kind === 'hold') {
          hold(held, item, action.value);
          continue;
        }
        if (action.kind === 'cancel') cancelsTried.add(action.send.opId);
        const op = await executor.execute(action, item, key.open);
        if (op) ops.set(op.opId, op);
      }
      if (!decidesAgain(actions)) return;
    }
  }

  /** The keys that need work: only those the store finds changed, with their ledger rows. */
  private async collect(meters: readonly MeterDefinition[], runAt: Date): Promise<WorkKey[]> {
    const sendableFrom = addMs(floorHour(addMs(runAt, -STRIPE_MAX_AGE_MS)), SENDABLE_MARGIN_MS);
    const scanFrom = new Date(
      Math.min(periodStart(sendableFrom).getTime(), sendableFrom.getTime() - LOOKBACK_BEYOND_WINDOW_MS),
    );
    // The meters' reads run side by side: they are independent, and ClickHouse's latency dominates.
    // Only keys that need the sync are read (the store computes them where the data is), then the
    // ledger rows of those keys' customers.
    const reads = await Promise.all(
      meters
        .filter((meter) => meter.stripe !== undefined)
        .map(async (meter) => {
          const strategy = syncStrategyFor(meter);
          const [candidates, discrepancies] = await Promise.all([
            this.deps.store.candidates(meter.name, strategy.additive, scanFrom, runAt, this.dryRun),
            this.deps.store.openDiscrepancies(meter.name),
          ]);
          const customers = [...new Set(candidates.map((c) => c.customer))];
          const ops =
            customers.length === 0 ? [] : await this.deps.store.ops(meter.name, scanFrom, runAt, customers);
          return { meter, strategy, candidates, ops, discrepancies };
        }),
    );
    const keys: WorkKey[] = [];
    for (const { meter, strategy, candidates, ops, discrepancies } of reads) {
      const open = new Map<string, Discrepancy[]>();
      for (const d of discrepancies) {
        const k = keyOf(d.version, d.customerKey, d.hour.getTime());
        open.set(k, [...(open.get(k) ?? []), d]);
      }
      const opsByKey = new Map<string, LedgerOp[]>();
      for (const op of ops) {
        const k = keyOf(op.version, op.customerKey, strategy.keyStart(op.hour).getTime());
        opsByKey.set(k, [...(opsByKey.get(k) ?? []), op]);
      }
      for (const c of candidates) {
        keys.push({
          item: {
            meter: meter.name,
            eventName: meter.stripe!.event_name,
            strategy,
            version: c.version,
            customer: c.customer,
            hour: c.hour,
            target: c.target,
            ...strategy.window(c.hour, sendableFrom),
          },
          ops: opsByKey.get(keyOf(c.version, c.customer, strategy.keyStart(c.hour).getTime())) ?? [],
          open: open.get(keyOf(c.version, c.customer, c.hour.getTime())) ?? [],
        });
      }
    }
    return keys;
  }
}

/** Adds a key's usage to its customer's held usage. */
function hold(held: Map<string, HeldUsage>, item: Omit<SyncItem, 'stripeCustomerId'>, value: bigint): void {
  const k = keyOf(item.meter, item.customer);
  const h = held.get(k);
  const hour = item.period ?? item.hour;
  const until = (d: Date) => addMs(d, STRIPE_MAX_AGE_MS - SENDABLE_MARGIN_MS).toISOString();
  if (!h) {
    held.set(k, {
      meter: item.meter,
      customer: item.customer,
      hours: 1,
      value: value.toString(),
      oldestHour: item.hour.toISOString(),
      sendableUntil: until(hour < item.earliestEventTime ? item.hour : hour),
    });
    return;
  }
  h.hours += 1;
  h.value = (BigInt(h.value) + value).toString();
  if (item.hour.toISOString() < h.oldestHour) {
    h.oldestHour = item.hour.toISOString();
    h.sendableUntil = until(item.hour);
  }
}

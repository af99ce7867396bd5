import { UpstreamError } from '../../errors.ts';
import { floorHour, HOUR_MS } from '../../time/hours.ts';
import { periodStart } from '../../time/billing-period.ts';
import { ADDITIVE_AGGREGATIONS, type MeterDefinition } from '../../meters/meter-schema.ts';
import {
  StripeCallError,
  type CustomerDirectory,
  type MeterEventCall,
  type MeterEventSender,
  type MeterEventStream,
} from './ports.ts';
import {
  cancelOpId,
  eventIdentifier,
  lastLiveSend,
  liveSends,
  sequencer,
  type Discrepancy,
  type DiscrepancyKind,
  type LedgerOp,
  type OpState,
  type SyncStore,
} from './sync-ledger.ts';

/**
 * The Stripe sync: brings what Stripe holds for every (meter, version, customer, hour) to the usage the
 * meters computed, through the ledger (see sync-ledger.ts for why that is exactly-once in effect).
 *
 * - Additive meters (count, sum; Stripe formula `sum`): each hour is its own key; the sync sends the
 *   difference between the hour's usage and what Stripe holds for it, as a new revision. A decrease is
 *   made right by cancelling that hour's events still inside Stripe's 24 h cancel window and sending
 *   the hour's value again; what cannot be cancelled any more is recorded as a discrepancy.
 * - Non-additive meters (unique_count, min, max, latest; formula `last`): the key is the billing
 *   period; the sync sends the period-to-date value of its latest hour whenever it differs from the
 *   last value sent. Its timestamp is that hour plus the revision in seconds, so a later revision is
 *   always the later event and wins under `last`, decreases included.
 * - Usage of a customer without a Stripe customer is held (listed, retried every run) until mapped.
 * - Hours older than Stripe accepts (35 days) are never sent: a difference there is a discrepancy.
 * - At most one call is in flight per customer and meter; `concurrency` such pairs run at once, and
 *   every call goes through `call` (rate limit and retries, wired in main.ts).
 */

export interface SyncLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  debug(obj: object, msg: string): void;
}

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
export const STRIPE_MAX_AGE_MS = 35 * 24 * HOUR_MS;
const SENDABLE_MARGIN_MS = HOUR_MS;
/** Stripe's identifier dedupe and cancel windows are 24 h from receipt; keep 10 minutes of margin. */
export const STRIPE_DEDUPE_MS = 24 * HOUR_MS;
const DEDUPE_MARGIN_MS = 10 * 60_000;
/** How far before the sendable window usage is still read, to report what can no longer be sent. */
const LOOKBACK_BEYOND_WINDOW_MS = 7 * 24 * HOUR_MS;
/** Calls that fail after all their retries in a row before a run gives up (Stripe is down). */
const MAX_CONSECUTIVE_FAILURES = 3;

interface WorkItem {
  meter: MeterDefinition;
  eventName: string;
  additive: boolean;
  version: string;
  customer: string;
  /** Additive: the hour. Non-additive: the latest hour of the period with usage. */
  hour: Date;
  /** Non-additive: the start of the period. */
  period?: Date;
  target: bigint;
  ops: LedgerOp[];
  sendable: boolean;
  /** Lower bound for a new event's timestamp (non-additive: the start of the sendable window). */
  earliestEventTime: Date;
}

class RunAborted extends Error {}

/** What one run carries through its keys. */
interface RunContext {
  runAt: Date;
  report: SyncReport;
  /** Open discrepancies by key, so an unchanged one is not written again every run. */
  open: Map<string, Discrepancy[]>;
  held: Map<string, HeldUsage>;
}

const keyOf = (...parts: (string | number)[]) => parts.join('\u0000');
const addMs = (d: Date, ms: number) => new Date(d.getTime() + ms);
const nextPeriod = (d: Date) => new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1));

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
  async run(meters: readonly MeterDefinition[]): Promise<SyncReport> {
    const runAt = this.now();
    const report: SyncReport = {
      runAt,
      dryRun: this.dryRun,
      keysChecked: 0,
      sent: 0,
      duplicates: 0,
      cancelled: 0,
      rejected: 0,
      pending: 0,
      held: [],
      discrepancies: 0,
      aborted: false,
    };
    const { items, open } = await this.collect(meters, runAt);
    report.keysChecked = items.length;
    const mapping = await this.deps.directory.resolve([...new Set(items.map((i) => i.customer))]);

    const held = new Map<string, HeldUsage>();
    const ctx: RunContext = { runAt, report, open, held };
    const groups = new Map<string, WorkItem[]>();
    for (const item of items) {
      const k = keyOf(item.meter.name, item.customer);
      const group = groups.get(k);
      if (group) group.push(item);
      else groups.set(k, [item]);
    }
    // A customer's hours go oldest first: when a call fails for good, the later ones wait, in order.
    for (const group of groups.values()) group.sort((a, b) => +a.hour - +b.hour);

    let consecutiveFailures = 0;
    // Anything else than Stripe failing (ClickHouse refusing an intent, a bug) stops every worker
    // before its next call and fails the run, but only once no call is in flight: the run's lock must
    // not be released while one of its calls could still be writing.
    let fatal: { error: unknown } | undefined;
    const work = [...groups.values()];
    const worker = async () => {
      for (let group = work.shift(); group !== undefined; group = work.shift()) {
        for (const item of group) {
          if (report.aborted || fatal) return;
          try {
            await this.syncItem(item, mapping.get(item.customer), ctx);
            consecutiveFailures = 0;
          } catch (err) {
            if (!(err instanceof RunAborted)) {
              fatal ??= { error: err };
              return;
            }
            report.pending += 1;
            consecutiveFailures += 1;
            if (consecutiveFailures >= MAX_CONSECUTIVE_FAILURES) report.aborted = true;
            break; // the rest of this customer's hours wait for the next run, in order
          }
        }
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.max(1, this.deps.concurrency) }, worker));
      await this.flushStream();
    } finally {
      await Promise.all([...this.outcomeWrites]);
    }
    if (fatal) throw fatal.error;

    report.held = [...held.values()].sort((a, b) => (a.oldestHour < b.oldestHour ? -1 : 1));
    const log = report.aborted
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
      report.aborted
        ? 'stripe sync stopped early: stripe keeps failing; the next run resumes'
        : 'stripe sync done',
    );
    return report;
  }

  /** Usage waiting for a Stripe customer, without syncing anything. */
  async held(meters: readonly MeterDefinition[]): Promise<HeldUsage[]> {
    const runAt = this.now();
    const { items } = await this.collect(meters, runAt);
    const mapping = await this.deps.directory.resolve([...new Set(items.map((i) => i.customer))]);
    const held = new Map<string, HeldUsage>();
    for (const item of items) {
      if (mapping.has(item.customer) || !item.sendable) continue;
      const sent = item.additive ? this.effective(item.ops).total : (this.lastSent(item.ops)?.value ?? 0n);
      if (item.additive ? item.target > sent : item.target !== sent)
        this.hold(held, item, item.additive ? item.target - sent : item.target);
    }
    return [...held.values()].sort((a, b) => (a.oldestHour < b.oldestHour ? -1 : 1));
  }

  // ---------------------------------------------------------------------------------------------
  // What to look at

  private async collect(
    meters: readonly MeterDefinition[],
    runAt: Date,
  ): Promise<{ items: WorkItem[]; open: Map<string, Discrepancy[]> }> {
    const sendableFrom = addMs(floorHour(addMs(runAt, -STRIPE_MAX_AGE_MS)), SENDABLE_MARGIN_MS);
    const scanFrom = new Date(
      Math.min(periodStart(sendableFrom).getTime(), sendableFrom.getTime() - LOOKBACK_BEYOND_WINDOW_MS),
    );
    const items: WorkItem[] = [];
    const open = new Map<string, Discrepancy[]>();
    // The meters' reads run side by side: they are independent, and ClickHouse's latency dominates.
    // Only keys that need the sync are read (the store computes them where the data is), then the
    // ledger rows of those keys' customers.
    const reads = await Promise.all(
      meters
        .filter((meter) => meter.stripe !== undefined)
        .map(async (meter) => {
          const additive = ADDITIVE_AGGREGATIONS.has(meter.aggregation.type);
          const [candidates, discrepancies] = await Promise.all([
            this.deps.store.candidates(meter.name, additive, scanFrom, runAt, this.dryRun),
            this.deps.store.openDiscrepancies(meter.name),
          ]);
          const customers = [...new Set(candidates.map((c) => c.customer))];
          const ops =
            customers.length === 0 ? [] : await this.deps.store.ops(meter.name, scanFrom, runAt, customers);
          return { meter, additive, candidates, ops, discrepancies };
        }),
    );
    for (const { meter, additive, candidates, ops, discrepancies } of reads) {
      for (const d of discrepancies) {
        const k = keyOf(d.meter, d.version, d.customerKey, d.hour.getTime());
        open.set(k, [...(open.get(k) ?? []), d]);
      }
      const opsByKey = new Map<string, LedgerOp[]>();
      for (const op of ops) {
        const k = keyOf(op.version, op.customerKey, (additive ? op.hour : periodStart(op.hour)).getTime());
        opsByKey.set(k, [...(opsByKey.get(k) ?? []), op]);
      }
      for (const c of candidates) {
        const period = additive ? undefined : periodStart(c.hour);
        const mine = opsByKey.get(keyOf(c.version, c.customer, (period ?? c.hour).getTime())) ?? [];
        items.push({
          meter,
          eventName: meter.stripe!.event_name,
          additive,
          version: c.version,
          customer: c.customer,
          hour: c.hour,
          ...(period ? { period } : {}),
          target: c.target,
          ops: mine,
          sendable: period ? nextPeriod(period) > sendableFrom : c.hour >= sendableFrom,
          earliestEventTime: period ? sendableFrom : c.hour,
        });
      }
    }
    return { items, open };
  }

  // ---------------------------------------------------------------------------------------------
  // One key

  private async syncItem(
    item: WorkItem,
    stripeCustomerId: string | undefined,
    ctx: RunContext,
  ): Promise<void> {
    const { runAt } = ctx;
    const ops = new Map(item.ops.map((op) => [op.opId, op]));
    const track = (op: LedgerOp) => ops.set(op.opId, op);

    // 1. Finish what an earlier run (or a crashed process) started, with exactly what it intended.
    for (const op of [...ops.values()]
      .filter((o) => o.state === 'intent')
      .sort((a, b) => (a.seq < b.seq ? -1 : 1))) {
      if (runAt.getTime() - op.intentAt.getTime() > STRIPE_DEDUPE_MS - DEDUPE_MARGIN_MS) {
        track(
          this.settle(
            op,
            'unknown_outcome',
            'never heard back within Stripe 24 h identifier window; counted as sent',
          ),
        );
        await this.discrepancy(
          item,
          'unknown_outcome',
          op.value,
          op.value,
          `operation ${op.opId} (${op.kind}): outcome unknown`,
          ctx,
        );
        continue;
      }
      track(await this.execute(op, item, ctx, true));
    }

    const current = [...ops.values()];
    const sent = item.additive ? this.effective(current).total : (this.lastSent(current)?.value ?? 0n);
    if (item.target === sent) {
      await this.resolve(item, ctx, sent);
      return;
    }
    if (!item.sendable) {
      await this.discrepancy(
        item,
        'outside_stripe_window',
        item.target,
        sent,
        'usage changed after Stripe stopped accepting events for this hour (35 days)',
        ctx,
      );
      return;
    }
    if (stripeCustomerId === undefined) {
      this.hold(ctx.held, item, item.additive ? item.target - sent : item.target);
      return;
    }
    const nextRevision = () =>
      1 + Math.max(0, ...[...ops.values()].filter((o) => o.kind === 'send').map((o) => o.revision));

    if (!item.additive) {
      track(
        await this.execute(
          this.newSend(item, stripeCustomerId, nextRevision(), item.target, runAt),
          item,
          ctx,
          false,
        ),
      );
      return;
    }
    if (item.target > sent) {
      track(
        await this.execute(
          this.newSend(item, stripeCustomerId, nextRevision(), item.target - sent, runAt),
          item,
          ctx,
          false,
        ),
      );
      await this.resolve(item, ctx, item.target);
      return;
    }

    // A decrease: cancel what Stripe still lets us cancel, then send the hour's value again.
    const { live } = this.effective(current);
    const cancellable = live.filter(
      (op) =>
        op.state !== 'unknown_outcome' &&
        runAt.getTime() - op.intentAt.getTime() < STRIPE_DEDUPE_MS - DEDUPE_MARGIN_MS,
    );
    for (const target of cancellable) {
      const cancel: LedgerOp = {
        ...target,
        opId: cancelOpId(target.opId),
        kind: 'cancel',
        targetOpId: target.opId,
        state: 'intent',
        detail: `usage went down from ${sent} to ${item.target}`,
        intentAt: runAt,
        recordedAt: runAt,
        seq: this.seq(),
      };
      track(await this.execute(cancel, item, ctx, false));
    }
    const after = this.effective([...ops.values()]).total;
    if (item.target > after) {
      track(
        await this.execute(
          this.newSend(item, stripeCustomerId, nextRevision(), item.target - after, runAt),
          item,
          ctx,
          false,
        ),
      );
      await this.resolve(item, ctx, item.target);
    } else if (item.target < after) {
      await this.discrepancy(
        item,
        'decrease_after_24h',
        item.target,
        after,
        "usage went down after Stripe's 24 h cancel window: Stripe holds more than was used",
        ctx,
      );
    } else {
      await this.resolve(item, ctx, after);
    }
  }

  private effective(ops: readonly LedgerOp[]): { live: LedgerOp[]; total: bigint } {
    return liveSends(ops, this.dryRun);
  }

  private lastSent(ops: readonly LedgerOp[]): LedgerOp | undefined {
    return lastLiveSend(ops, this.dryRun);
  }

  private newSend(
    item: WorkItem,
    stripeCustomerId: string,
    revision: number,
    value: bigint,
    runAt: Date,
  ): LedgerOp {
    let eventTime = item.hour;
    if (!item.additive) {
      // Later revisions are later events: `last` must pick them, decreases included.
      const base = item.hour > item.earliestEventTime ? item.hour : floorHour(item.earliestEventTime);
      const end = nextPeriod(item.period!).getTime() - 1000;
      eventTime = new Date(Math.min(base.getTime() + Math.min(revision, 3599) * 1000, end));
    }
    return {
      opId: eventIdentifier(item.meter.name, item.version, item.customer, item.hour, revision),
      kind: 'send',
      meter: item.meter.name,
      version: item.version,
      customerKey: item.customer,
      stripeCustomerId,
      eventName: item.eventName,
      hour: item.hour,
      revision,
      value,
      eventTime,
      targetOpId: '',
      state: 'intent',
      detail: '',
      intentAt: runAt,
      recordedAt: runAt,
      seq: this.seq(),
    };
  }

  // ---------------------------------------------------------------------------------------------
  // Calls

  /** Records the intent (durably), makes the call, records the result. */
  private async execute(op: LedgerOp, item: WorkItem, ctx: RunContext, resumed: boolean): Promise<LedgerOp> {
    const { report } = ctx;
    if (this.dryRun) {
      const settled = this.settle(op, 'dry_run', 'dry-run: no STRIPE_SECRET_KEY');
      this.deps.logger.info(
        {
          meter: op.meter,
          customer: op.customerKey,
          hour: op.hour.toISOString(),
          kind: op.kind,
          value: op.value.toString(),
          identifier: op.kind === 'send' ? op.opId : op.targetOpId,
        },
        'stripe sync dry-run: would send',
      );
      return settled;
    }
    if (!resumed) await this.deps.store.record([{ ...op, state: 'intent', recordedAt: this.now() }]);
    try {
      if (op.kind === 'send') {
        const outcome = await this.sendEvent({
          eventName: op.eventName,
          identifier: op.opId,
          timestamp: op.eventTime,
          stripeCustomerId: op.stripeCustomerId,
          value: op.value,
        });
        if (outcome === 'duplicate') report.duplicates += 1;
        else report.sent += 1;
        return this.settle(op, outcome, '');
      }
      const identifier = op.targetOpId;
      const outcome = await this.call(() => this.deps.sender!.cancel(op.eventName, identifier));
      if (outcome === 'cancelled' || outcome === 'already_cancelled') {
        report.cancelled += 1;
        return this.settle(op, 'applied', outcome);
      }
      if (outcome === 'window_passed')
        return this.settle(op, 'not_cancellable', 'Stripe: older than its 24 h cancel window');
      report.rejected += 1;
      await this.discrepancy(
        item,
        'rejected',
        item.target,
        op.value,
        `cancel of ${identifier}: Stripe has no such event`,
        ctx,
      );
      return this.settle(op, 'rejected', 'Stripe: no such event');
    } catch (err) {
      if (err instanceof StripeCallError && !err.retryable) {
        report.rejected += 1;
        const detail = `Stripe refused ${op.kind} ${op.opId}: ${err.message}`;
        this.deps.logger.warn(
          {
            meter: op.meter,
            customer: op.customerKey,
            hour: op.hour.toISOString(),
            code: err.details.code,
            status: err.details.status,
          },
          'stripe refused a usage operation',
        );
        await this.discrepancy(item, 'rejected', item.target, op.value, detail, ctx);
        return this.settle(op, 'rejected', detail.slice(0, 1000));
      }
      // Stripe still failing after the retries: this key waits for the next run. Anything else (the
      // ledger's ClickHouse refusing a write, say) is not Stripe's and fails the run.
      if (err instanceof UpstreamError && err.service === 'stripe') {
        this.deps.logger.warn(
          { meter: op.meter, customer: op.customerKey, hour: op.hour.toISOString(), err: err.message },
          'stripe call failed after retries; the next run resumes it',
        );
        throw new RunAborted();
      }
      throw err;
    }
  }

  /**
   * Records an outcome. Not awaited: an outcome lost in a crash leaves its intent pending, and the next
   * run resends it under the same identifier, which Stripe answers as a duplicate. So only intents
   * hold up a call; outcomes are group-committed in the background and awaited at the end of the run.
   */
  private settle(op: LedgerOp, state: OpState, detail: string): LedgerOp {
    const settled: LedgerOp = { ...op, state, detail, recordedAt: this.now(), seq: this.seq() };
    const write = this.deps.store.record([settled]).catch((err: unknown) => {
      this.deps.logger.warn(
        { op: op.opId, state, err: String(err) },
        'could not record a stripe outcome; the next run resends it as a duplicate',
      );
    });
    this.outcomeWrites.add(write);
    void write.finally(() => this.outcomeWrites.delete(write));
    return settled;
  }

  private readonly outcomeWrites = new Set<Promise<void>>();

  // v2 stream: sends of many customers share requests of up to stream.maxBatch events.
  private batch:
    | { events: MeterEventCall[]; waiters: { resolve: () => void; reject: (e: unknown) => void }[] }
    | undefined;

  private async sendEvent(event: MeterEventCall): Promise<'applied' | 'duplicate'> {
    const stream = this.deps.stream;
    if (stream === undefined) return this.call(() => this.deps.sender!.send(event));
    await new Promise<void>((resolve, reject) => {
      if (!this.batch) {
        this.batch = { events: [], waiters: [] };
        setImmediate(() => void this.flushStream());
      }
      this.batch.events.push(event);
      this.batch.waiters.push({ resolve, reject });
      if (this.batch.events.length >= stream.maxBatch) void this.flushStream();
    });
    return 'applied';
  }

  private async flushStream(): Promise<void> {
    const batch = this.batch;
    if (!batch || !this.deps.stream) return;
    this.batch = undefined;
    const stream = this.deps.stream;
    try {
      await this.call(() => stream.sendBatch(batch.events));
      for (const w of batch.waiters) w.resolve();
    } catch (err) {
      for (const w of batch.waiters) w.reject(err);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Held usage and discrepancies

  private hold(held: Map<string, HeldUsage>, item: WorkItem, value: bigint): void {
    const k = keyOf(item.meter.name, item.customer);
    const h = held.get(k);
    const hour = item.period ?? item.hour;
    const until = (d: Date) => addMs(d, STRIPE_MAX_AGE_MS - SENDABLE_MARGIN_MS).toISOString();
    if (!h) {
      held.set(k, {
        meter: item.meter.name,
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

  private async discrepancy(
    item: WorkItem,
    kind: DiscrepancyKind,
    expected: bigint,
    sent: bigint,
    detail: string,
    ctx: RunContext,
  ): Promise<void> {
    const existing = (
      ctx.open.get(keyOf(item.meter.name, item.version, item.customer, item.hour.getTime())) ?? []
    ).find((d) => d.kind === kind);
    if (existing && existing.expected === expected && existing.sent === sent) return;
    ctx.report.discrepancies += 1;
    this.deps.logger.warn(
      {
        meter: item.meter.name,
        customer: item.customer,
        hour: item.hour.toISOString(),
        kind,
        expected: expected.toString(),
        sent: sent.toString(),
      },
      'stripe sync discrepancy',
    );
    await this.deps.store.recordDiscrepancies([
      {
        meter: item.meter.name,
        version: item.version,
        customerKey: item.customer,
        hour: item.hour,
        kind,
        expected,
        sent,
        detail,
        resolved: false,
        recordedAt: this.now(),
      },
    ]);
  }

  /** Stripe now holds the usage: close the discrepancies of this key that are about amounts. */
  private async resolve(item: WorkItem, ctx: RunContext, sent: bigint): Promise<void> {
    const { open } = ctx;
    const k = keyOf(item.meter.name, item.version, item.customer, item.hour.getTime());
    const mine = (open.get(k) ?? []).filter((d) => d.kind !== 'unknown_outcome');
    if (mine.length === 0) return;
    await this.deps.store.recordDiscrepancies(
      mine.map((d) => ({
        ...d,
        resolved: true,
        sent,
        detail: `${d.detail} (resolved)`,
        recordedAt: this.now(),
      })),
    );
    open.set(
      k,
      (open.get(k) ?? []).filter((d) => d.kind === 'unknown_outcome'),
    );
  }
}

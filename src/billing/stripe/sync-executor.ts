import { UpstreamError } from '../../errors.ts';
import {
  StripeCallError,
  type SyncFence,
  type MeterEventCall,
  type MeterEventSender,
  type MeterEventStream,
} from './ports.ts';
import {
  cancelOpId,
  eventIdentifier,
  type Discrepancy,
  type DiscrepancyKind,
  type LedgerOp,
  type OpState,
  type SyncStore,
} from './sync-ledger.ts';
import type { SyncAction, SyncItem } from './sync-plan.ts';

/**
 * Carries out the actions `decide` chose, for one run: each call to Stripe is intent → call → settle
 * (the intent durable before the call, the outcome recorded after it), and with the v2 stream, the
 * sends of many customers share requests.
 */

export interface SyncLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  debug(obj: object, msg: string): void;
}

export interface SyncExecutorDeps {
  store: SyncStore;
  /** Absent: dry-run. Nothing reaches Stripe; the ledger and logs show what would have been sent. */
  sender?: MeterEventSender;
  /** Present: sends go through the v2 meter event stream (cancels still use `sender`). */
  stream?: MeterEventStream;
  /** Wraps every call to Stripe (rate limit and retries). */
  call: <T>(fn: () => Promise<T>) => Promise<T>;
  logger: SyncLogger;
  now: () => Date;
  /** Orders the rows of one op (see sequencer in sync-ledger.ts). */
  seq: () => bigint;
  /** When the run started: the intent time of the operations it creates. */
  runAt: Date;
  /** The lease of a run among several replicas (COORDINATION_URL); absent: one process, a file lock. */
  fence?: SyncFence;
}

/** What the run's calls did, for its report. */
interface ExecutionCounts {
  sent: number;
  duplicates: number;
  cancelled: number;
  rejected: number;
  discrepancies: number;
}

/** Stripe kept failing after the retries: the key waits for the next run. */
export class StripeKeepsFailing extends Error {}

type Waiter = { resolve: () => void; reject: (e: unknown) => void };

export class SyncExecutor {
  readonly counts: ExecutionCounts = { sent: 0, duplicates: 0, cancelled: 0, rejected: 0, discrepancies: 0 };
  private readonly outcomeWrites = new Set<Promise<void>>();
  /** v2 stream: the sends waiting for the next request of up to stream.maxBatch events. */
  private batch: { events: MeterEventCall[]; waiters: Waiter[] } | undefined;

  constructor(private readonly deps: SyncExecutorDeps) {}

  get dryRun(): boolean {
    return this.deps.sender === undefined;
  }

  /**
   * Carries out one action for a key whose open discrepancies are `open`, and returns the operation
   * it created or settled (none for a discrepancy or a resolve). Throws StripeKeepsFailing when Stripe
   * still fails after the retries; anything else (the ledger refusing a write) as it came.
   */
  async execute(
    action: Exclude<SyncAction, { kind: 'hold' }>,
    item: SyncItem,
    open: readonly Discrepancy[],
  ): Promise<LedgerOp | undefined> {
    switch (action.kind) {
      case 'resume':
        return this.call(action.op, item, open, true);
      case 'give_up': {
        const { op } = action;
        const settled = this.settle(
          op,
          'unknown_outcome',
          'never heard back within Stripe 24 h identifier window; counted as sent',
        );
        await this.discrepancy(
          item,
          open,
          'unknown_outcome',
          op.value,
          op.value,
          `operation ${op.opId} (${op.kind}): outcome unknown`,
        );
        return settled;
      }
      case 'send':
        return this.call(this.newSend(item, action), item, open, false);
      case 'cancel': {
        const target = action.send;
        const cancel: LedgerOp = {
          ...target,
          opId: cancelOpId(target.opId),
          kind: 'cancel',
          targetOpId: target.opId,
          state: 'intent',
          detail: action.detail,
          intentAt: this.deps.runAt,
          recordedAt: this.deps.runAt,
          seq: this.deps.seq(),
        };
        return this.call(cancel, item, open, false);
      }
      case 'discrepancy':
        await this.discrepancy(item, open, action.of, action.expected, action.sent, action.detail);
        return undefined;
      case 'resolve':
        await this.deps.store.recordDiscrepancies(
          action.discrepancies.map((d) => ({
            ...d,
            resolved: true,
            sent: action.sent,
            detail: `${d.detail} (resolved)`,
            recordedAt: this.deps.now(),
          })),
        );
        return undefined;
    }
  }

  /** Sends what the stream still holds. */
  async flush(): Promise<void> {
    const batch = this.batch;
    if (!batch || !this.deps.stream) return;
    this.batch = undefined;
    const stream = this.deps.stream;
    try {
      await this.fenced(() => stream.sendBatch(batch.events));
      for (const w of batch.waiters) w.resolve();
    } catch (err) {
      for (const w of batch.waiters) w.reject(err);
    }
  }

  /**
   * A call to Stripe through the rate limit and retries, the lease checked before every attempt: a wait
   * for the limiter or a backoff can outlast the lease, and a paused process resumes inside one. The
   * check's FencedOffError is not retried (retry.ts) and fails the run.
   */
  private fenced<T>(fn: () => Promise<T>): Promise<T> {
    return this.deps.call(() => {
      this.deps.fence?.assertHeld();
      return fn();
    });
  }

  /** Resolves when every outcome written in the background is stored (or its failure logged). */
  async settled(): Promise<void> {
    await Promise.all([...this.outcomeWrites]);
  }

  private newSend(item: SyncItem, send: Extract<SyncAction, { kind: 'send' }>): LedgerOp {
    const { runAt } = this.deps;
    return {
      opId: eventIdentifier(item.meter, item.version, item.customer, item.hour, send.revision),
      kind: 'send',
      meter: item.meter,
      version: item.version,
      customerKey: item.customer,
      stripeCustomerId: send.stripeCustomerId,
      eventName: item.eventName,
      hour: item.hour,
      revision: send.revision,
      value: send.value,
      eventTime: send.eventTime,
      targetOpId: '',
      state: 'intent',
      detail: '',
      intentAt: runAt,
      recordedAt: runAt,
      seq: this.deps.seq(),
    };
  }

  /** Records the intent (durably, unless resumed: it is stored already), makes the call, settles. */
  private async call(
    op: LedgerOp,
    item: SyncItem,
    open: readonly Discrepancy[],
    resumed: boolean,
  ): Promise<LedgerOp> {
    const { counts, deps } = this;
    if (this.dryRun) {
      const settled = this.settle(op, 'dry_run', 'dry-run: no STRIPE_SECRET_KEY');
      deps.logger.info(
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
    // Fenced: no intent once the lease may be another replica's (and no call: see fenced()).
    deps.fence?.assertHeld();
    if (!resumed) {
      op = { ...op, fencingToken: deps.fence?.token ?? 0n };
      await deps.store.record([{ ...op, state: 'intent', recordedAt: deps.now() }]);
    }
    try {
      if (op.kind === 'send') {
        const outcome = await this.sendEvent({
          eventName: op.eventName,
          identifier: op.opId,
          timestamp: op.eventTime,
          stripeCustomerId: op.stripeCustomerId,
          value: op.value,
        });
        if (outcome === 'duplicate') counts.duplicates += 1;
        else counts.sent += 1;
        return this.settle(op, outcome, '');
      }
      const identifier = op.targetOpId;
      const outcome = await this.fenced(() => deps.sender!.cancel(op.eventName, identifier));
      if (outcome === 'cancelled' || outcome === 'already_cancelled') {
        counts.cancelled += 1;
        return this.settle(op, 'applied', outcome);
      }
      if (outcome === 'window_passed')
        return this.settle(op, 'not_cancellable', 'Stripe: older than its 24 h cancel window');
      counts.rejected += 1;
      await this.discrepancy(
        item,
        open,
        'rejected',
        item.target,
        op.value,
        `cancel of ${identifier}: Stripe has no such event`,
      );
      return this.settle(op, 'rejected', 'Stripe: no such event');
    } catch (err) {
      if (err instanceof StripeCallError && !err.retryable) {
        counts.rejected += 1;
        const detail = `Stripe refused ${op.kind} ${op.opId}: ${err.message}`;
        deps.logger.warn(
          {
            meter: op.meter,
            customer: op.customerKey,
            hour: op.hour.toISOString(),
            code: err.details.code,
            status: err.details.status,
          },
          'stripe refused a usage operation',
        );
        await this.discrepancy(item, open, 'rejected', item.target, op.value, detail);
        return this.settle(op, 'rejected', detail.slice(0, 1000));
      }
      // Stripe still failing after the retries: this key waits for the next run. Anything else (the
      // ledger's ClickHouse refusing a write, say) is not Stripe's and fails the run.
      if (err instanceof UpstreamError && err.service === 'stripe') {
        deps.logger.warn(
          { meter: op.meter, customer: op.customerKey, hour: op.hour.toISOString(), err: err.message },
          'stripe call failed after retries; the next run resumes it',
        );
        throw new StripeKeepsFailing();
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
    const settled: LedgerOp = { ...op, state, detail, recordedAt: this.deps.now(), seq: this.deps.seq() };
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

  private async sendEvent(event: MeterEventCall): Promise<'applied' | 'duplicate'> {
    const stream = this.deps.stream;
    if (stream === undefined) return this.fenced(() => this.deps.sender!.send(event));
    await new Promise<void>((resolve, reject) => {
      if (!this.batch) {
        this.batch = { events: [], waiters: [] };
        setImmediate(() => void this.flush());
      }
      this.batch.events.push(event);
      this.batch.waiters.push({ resolve, reject });
      if (this.batch.events.length >= stream.maxBatch) void this.flush();
    });
    return 'applied';
  }

  /** Records a discrepancy, unless the same one (kind, expected, sent) is open for the key. */
  private async discrepancy(
    item: SyncItem,
    open: readonly Discrepancy[],
    kind: DiscrepancyKind,
    expected: bigint,
    sent: bigint,
    detail: string,
  ): Promise<void> {
    const existing = open.find((d) => d.kind === kind);
    if (existing && existing.expected === expected && existing.sent === sent) return;
    this.counts.discrepancies += 1;
    this.deps.logger.warn(
      {
        meter: item.meter,
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
        meter: item.meter,
        version: item.version,
        customerKey: item.customer,
        hour: item.hour,
        kind,
        expected,
        sent,
        detail,
        resolved: false,
        recordedAt: this.deps.now(),
      },
    ]);
  }
}

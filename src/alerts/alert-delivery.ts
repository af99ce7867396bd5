import { computeSignature } from '../billing/stripe/webhooks.ts';
import { periodEnd, periodId } from '../time/billing-period.ts';
import type { AlertCrossing, CrossingStore } from './alert-engine.ts';

/**
 * Delivery of recorded crossings (the outbox of alert-engine.ts) to each configured channel: a signed
 * webhook, an email. Every attempt and its outcome is recorded; a failed one is tried again with
 * exponential backoff, up to `maxAttempts`, across restarts (the schedule is in the store, not in
 * memory).
 *
 * Exactly once, and its limit: a crossing is sent until one attempt is recorded as delivered. A crash
 * after the receiver answered and before the outcome was recorded sends it once more, with the same
 * event id; receivers dedupe on that id, as with Stripe's webhooks. Nothing else sends twice.
 *
 * Among replicas (`lease`, with COORDINATION_URL): a pass first reads what is due (ClickHouse only, what
 * every tick costs), and only if something is takes the lease; another replica holding it is delivering,
 * so this tick is skipped, not queued. Under the lease it reads what is due again (the other replica may
 * just have sent it), and checks the fence before each send and before recording each attempt: a replica
 * that lost its lease mid-pass sends and records nothing more. The limit is the one above: a replica
 * paused or cut off during a send, past its lease, leaves that attempt unrecorded, and the next holder
 * sends it again with the same id. Without a lease (one process): as before, every pass sends what is due.
 */

export type ChannelName = 'webhook' | 'email';

export interface DeliveryAttempt {
  crossingId: string;
  channel: ChannelName;
  /** 1-based. */
  attempt: number;
  outcome: 'delivered' | 'failed';
  /** The HTTP status of a webhook answer, else 0. */
  statusCode: number;
  error: string;
  attemptedAt: Date;
  /** When a failed attempt may be retried; undefined when it is the last or delivered. */
  nextAttemptAt: Date | undefined;
}

/** Port: the attempts kept beside the crossings. */
export interface DeliveryStore {
  record(attempt: DeliveryAttempt): Promise<void>;
  /** Attempts made at or after `since`. */
  attemptsSince(since: Date): Promise<DeliveryAttempt[]>;
  /** Every attempt for these crossings, oldest first. */
  attemptsOf(crossingIds: readonly string[]): Promise<DeliveryAttempt[]>;
}

/** What a channel sends: the webhook body (also the source of the email's text). */
export interface AlertMessage {
  crossing: AlertCrossing;
  /** The JSON body, identical on every attempt (the signature is made per attempt). */
  body: Buffer;
  event: AlertEvent;
}

export type SendResult = { ok: true; statusCode: number } | { ok: false; statusCode: number; error: string };

/** Port: one way of telling someone (adapters/alerts). */
export interface AlertChannel {
  name: ChannelName;
  send(message: AlertMessage): Promise<SendResult>;
}

export interface AlertEvent {
  id: string;
  object: 'event';
  type: 'alert.threshold_crossed';
  /** Unix seconds: when the crossing was recorded. */
  created: number;
  data: {
    customer: string;
    meter: string;
    unit: string;
    threshold: { id: string; label: string; value: string };
    period: { id: string; start: string; end: string };
    quantity: string;
    observed_at: string;
  };
}

export function alertEvent(crossing: AlertCrossing, unit: string): AlertEvent {
  return {
    id: crossing.id,
    object: 'event',
    type: 'alert.threshold_crossed',
    created: Math.floor(crossing.recordedAt.getTime() / 1000),
    data: {
      customer: crossing.customer,
      meter: crossing.meter,
      unit,
      threshold: { id: crossing.threshold, label: crossing.label, value: crossing.thresholdValue.toString() },
      period: {
        id: periodId(crossing.periodStart),
        start: crossing.periodStart.toISOString(),
        end: periodEnd(crossing.periodStart).toISOString(),
      },
      quantity: crossing.quantity.toString(),
      observed_at: crossing.observedAt.toISOString(),
    },
  };
}

/** `t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">`: Stripe's scheme, so its libraries verify it. */
export function alertSignatureHeader(body: Buffer, secret: string, nowSeconds: number): string {
  return `t=${nowSeconds},v1=${computeSignature(body, nowSeconds, secret)}`;
}

/** What a delivery pass checks before each send and each record: throws once the lease may be another's. */
export interface DeliveryFence {
  assertHeld(): void;
}

/** Port: keeps delivery to one replica at a time (coordination/zookeeper-lease.ts, wired in services.ts). */
export interface DeliveryLease {
  /** Runs `pass` holding the lease; undefined, without running it, when another replica holds it. */
  runIfFree<T>(pass: (fence: DeliveryFence) => Promise<T>): Promise<T | undefined>;
}

/** One send that is due: the crossing, the channel, and the attempt it would be. */
interface DueAttempt {
  crossing: AlertCrossing;
  channel: AlertChannel;
  attempt: number;
}

export interface DeliveryOptions {
  crossings: CrossingStore;
  deliveries: DeliveryStore;
  channels: readonly AlertChannel[];
  /** Unit of each meter, for the message. */
  units: ReadonlyMap<string, string>;
  maxAttempts: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  /** Crossings older than this are not sent any more (a warning that late is no warning). */
  lookbackMs: number;
  /** Among replicas; absent: this process is the only one that delivers. */
  lease?: DeliveryLease;
  now?: () => Date;
  logger?: { warn(obj: object, msg: string): void; info(obj: object, msg: string): void };
}

export interface DeliveryReport {
  delivered: number;
  failed: number;
  /** Passes that found something due while another replica held the lease (so left it to that one). */
  skipped?: number;
}

export type DeliveryState = 'pending' | 'delivered' | 'retrying' | 'failed' | 'no_channel';

export interface CrossingWithDeliveries {
  crossing: AlertCrossing;
  deliveries: { channel: ChannelName; state: DeliveryState; attempts: DeliveryAttempt[] }[];
}

export class AlertDeliveryService {
  private readonly now: () => Date;
  private running: Promise<DeliveryReport> | undefined;
  private again = false;
  private readonly listeners: ((report: DeliveryReport) => void)[] = [];

  constructor(private readonly o: DeliveryOptions) {
    this.now = o.now ?? (() => new Date());
  }

  get channels(): ChannelName[] {
    return this.o.channels.map((c) => c.name);
  }

  /** A delivery pass now; one at a time (a pass asked for during another runs right after it). */
  deliverDue(): Promise<DeliveryReport> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    const run = async (): Promise<DeliveryReport> => {
      const total: DeliveryReport = { delivered: 0, failed: 0 };
      do {
        this.again = false;
        const r = await this.pass();
        for (const listener of this.listeners) listener(r);
        total.delivered += r.delivered;
        total.failed += r.failed;
        if (r.skipped) total.skipped = (total.skipped ?? 0) + r.skipped;
      } while (this.again);
      return total;
    };
    this.running = run().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /** Hears the report of every pass (the metrics). */
  onPass(listener: (report: DeliveryReport) => void): void {
    this.listeners.push(listener);
  }

  /** Resolves when no delivery pass is running. */
  async idle(): Promise<void> {
    await this.running?.catch(() => undefined);
  }

  /** Each crossing with the state of its delivery on every channel. */
  async describe(crossings: readonly AlertCrossing[]): Promise<CrossingWithDeliveries[]> {
    const attempts = await this.o.deliveries.attemptsOf(crossings.map((c) => c.id));
    return crossings.map((crossing) => {
      const mine = attempts.filter((a) => a.crossingId === crossing.id);
      const channels = new Set<ChannelName>([...this.channels, ...mine.map((a) => a.channel)]);
      return {
        crossing,
        deliveries: [...channels].map((channel) => {
          const list = dedupe(mine.filter((a) => a.channel === channel));
          return { channel, state: this.stateOf(list), attempts: list };
        }),
      };
    });
  }

  private stateOf(attempts: readonly DeliveryAttempt[]): DeliveryState {
    if (attempts.some((a) => a.outcome === 'delivered')) return 'delivered';
    if (attempts.length === 0) return 'pending';
    return attempts.length >= this.o.maxAttempts ? 'failed' : 'retrying';
  }

  private async pass(): Promise<DeliveryReport> {
    if (this.o.channels.length === 0) return { delivered: 0, failed: 0 };
    const due = await this.due();
    if (due.length === 0) return { delivered: 0, failed: 0 };
    const lease = this.o.lease;
    if (!lease) return this.send(due);
    const report = await lease.runIfFree(async (fence) => this.send(await this.due(), fence));
    return report ?? { delivered: 0, failed: 0, skipped: 1 };
  }

  /** What may be sent now: not delivered, attempts left, and past the backoff of the last one. */
  private async due(): Promise<DueAttempt[]> {
    const since = new Date(this.now().getTime() - this.o.lookbackMs);
    const crossings = await this.o.crossings.recordedSince(since);
    if (crossings.length === 0) return [];
    const attempts = await this.o.deliveries.attemptsSince(since);
    const byKey = new Map<string, DeliveryAttempt[]>();
    for (const a of attempts) {
      const key = `${a.crossingId}\u0000${a.channel}`;
      byKey.set(key, [...(byKey.get(key) ?? []), a]);
    }
    const now = this.now();
    const due: DueAttempt[] = [];
    for (const crossing of crossings)
      for (const channel of this.o.channels) {
        const done = dedupe(byKey.get(`${crossing.id}\u0000${channel.name}`) ?? []);
        if (this.stateOf(done) === 'delivered' || done.length >= this.o.maxAttempts) continue;
        const last = done.at(-1);
        if (last?.nextAttemptAt && last.nextAttemptAt > now) continue;
        due.push({ crossing, channel, attempt: done.length + 1 });
      }
    return due;
  }

  private async send(due: readonly DueAttempt[], fence?: DeliveryFence): Promise<DeliveryReport> {
    const report = { delivered: 0, failed: 0 };
    for (const item of due) {
      const outcome = await this.attempt(item, fence);
      if (outcome === 'delivered') report.delivered++;
      else report.failed++;
    }
    return report;
  }

  private async attempt(
    { crossing, channel, attempt }: DueAttempt,
    fence: DeliveryFence | undefined,
  ): Promise<'delivered' | 'failed'> {
    const event = alertEvent(crossing, this.o.units.get(crossing.meter) ?? '');
    const message = { crossing, event, body: Buffer.from(JSON.stringify(event), 'utf8') };
    const now = this.now();
    fence?.assertHeld();
    const result = await channel
      .send(message)
      .catch((err: unknown): SendResult => ({ ok: false, statusCode: 0, error: String(err) }));
    const last = attempt >= this.o.maxAttempts;
    const delay = Math.min(this.o.backoffBaseMs * 2 ** (attempt - 1), this.o.backoffMaxMs);
    const attemptedAt = this.now();
    // Lost during the send: the next holder reads this attempt as not made, and makes it (same event id).
    fence?.assertHeld();
    await this.o.deliveries.record({
      crossingId: crossing.id,
      channel: channel.name,
      attempt,
      outcome: result.ok ? 'delivered' : 'failed',
      statusCode: result.statusCode,
      error: result.ok ? '' : result.error.slice(0, 1000),
      attemptedAt,
      nextAttemptAt: result.ok || last ? undefined : new Date(now.getTime() + delay),
    });
    if (!result.ok)
      this.o.logger?.warn(
        { alert: crossing.id, channel: channel.name, attempt, error: result.error, final: last },
        last ? 'alert delivery failed; giving up' : 'alert delivery failed; will retry',
      );
    return result.ok ? 'delivered' : 'failed';
  }
}

/** One row per attempt number (the store may hold a row twice until it merges), in attempt order. */
function dedupe(attempts: readonly DeliveryAttempt[]): DeliveryAttempt[] {
  const byAttempt = new Map<number, DeliveryAttempt>();
  for (const a of attempts) {
    const kept = byAttempt.get(a.attempt);
    if (!kept || (a.outcome === 'delivered' && kept.outcome !== 'delivered')) byAttempt.set(a.attempt, a);
  }
  return [...byAttempt.values()].sort((a, b) => a.attempt - b.attempt);
}

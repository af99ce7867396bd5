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
  now?: () => Date;
  logger?: { warn(obj: object, msg: string): void; info(obj: object, msg: string): void };
}

export interface DeliveryReport {
  delivered: number;
  failed: number;
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
      const total = { delivered: 0, failed: 0 };
      do {
        this.again = false;
        const r = await this.pass();
        total.delivered += r.delivered;
        total.failed += r.failed;
      } while (this.again);
      return total;
    };
    this.running = run().finally(() => {
      this.running = undefined;
    });
    return this.running;
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
    const report = { delivered: 0, failed: 0 };
    if (this.o.channels.length === 0) return report;
    const since = new Date(this.now().getTime() - this.o.lookbackMs);
    const crossings = await this.o.crossings.recordedSince(since);
    if (crossings.length === 0) return report;
    const attempts = await this.o.deliveries.attemptsSince(since);
    const byKey = new Map<string, DeliveryAttempt[]>();
    for (const a of attempts) {
      const key = `${a.crossingId}\u0000${a.channel}`;
      byKey.set(key, [...(byKey.get(key) ?? []), a]);
    }
    for (const crossing of crossings) {
      for (const channel of this.o.channels) {
        const done = dedupe(byKey.get(`${crossing.id}\u0000${channel.name}`) ?? []);
        if (this.stateOf(done) === 'delivered' || done.length >= this.o.maxAttempts) continue;
        const last = done.at(-1);
        const now = this.now();
        if (last?.nextAttemptAt && last.nextAttemptAt > now) continue;
        const outcome = await this.attempt(crossing, channel, done.length + 1, now);
        if (outcome === 'delivered') report.delivered++;
        else report.failed++;
      }
    }
    return report;
  }

  private async attempt(
    crossing: AlertCrossing,
    channel: AlertChannel,
    attempt: number,
    now: Date,
  ): Promise<'delivered' | 'failed'> {
    const event = alertEvent(crossing, this.o.units.get(crossing.meter) ?? '');
    const message = { crossing, event, body: Buffer.from(JSON.stringify(event), 'utf8') };
    const result = await channel
      .send(message)
      .catch((err: unknown): SendResult => ({ ok: false, statusCode: 0, error: String(err) }));
    const last = attempt >= this.o.maxAttempts;
    const delay = Math.min(this.o.backoffBaseMs * 2 ** (attempt - 1), this.o.backoffMaxMs);
    const attemptedAt = this.now();
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

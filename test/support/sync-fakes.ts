import {
  StripeCallError,
  type CancelOutcome,
  type MeterEventCall,
  type MeterEventOutcome,
  type MeterEventSender,
} from '../../src/billing/stripe/ports.ts';
import { InMemorySyncStore } from '../../src/billing/stripe/in-memory-sync-store.ts';
import { SyncService, type SyncDeps } from '../../src/billing/stripe/sync-service.ts';
import { meterSchema, type MeterDefinition } from '../../src/meters/meter-schema.ts';

const DAY = 24 * 3_600_000;

export type Fault = 'drop_after_apply' | 'server_error' | 'reject';

/** A Stripe account reduced to what the sync needs: identifier dedupe (24 h), cancel window (24 h). */
export class FakeMeterEvents implements MeterEventSender {
  readonly events = new Map<string, MeterEventCall & { receivedAt: number; cancelled: boolean }>();
  readonly calls: { kind: 'send' | 'cancel'; identifier: string }[] = [];
  readonly faults: Fault[] = [];
  private readonly inFlight = new Map<string, number>();
  maxInFlightPerCustomer = 0;
  /** Calls started and not finished. */
  get inFlightNow(): number {
    return this.total;
  }
  maxInFlight = 0;
  private total = 0;

  constructor(
    private readonly now: () => number,
    private readonly latencyMs = 0,
  ) {}

  async send(event: MeterEventCall): Promise<MeterEventOutcome> {
    this.calls.push({ kind: 'send', identifier: event.identifier });
    const n = (this.inFlight.get(event.stripeCustomerId) ?? 0) + 1;
    this.inFlight.set(event.stripeCustomerId, n);
    this.total += 1;
    this.maxInFlightPerCustomer = Math.max(this.maxInFlightPerCustomer, n);
    this.maxInFlight = Math.max(this.maxInFlight, this.total);
    try {
      if (this.latencyMs > 0) await new Promise((r) => setTimeout(r, this.latencyMs));
      const fault = this.faults.shift();
      if (fault === 'server_error')
        throw new StripeCallError('An unknown error occurred.', true, { kind: 'server', status: 500 });
      if (fault === 'reject')
        throw new StripeCallError('No such customer', false, { kind: 'invalid_request', status: 400 });
      const seen = this.events.get(event.identifier);
      if (seen && this.now() - seen.receivedAt < DAY) return 'duplicate';
      this.events.set(event.identifier, { ...event, receivedAt: this.now(), cancelled: false });
      if (fault === 'drop_after_apply')
        throw new StripeCallError('socket hang up', true, { kind: 'network' });
      return 'applied';
    } finally {
      this.inFlight.set(event.stripeCustomerId, n - 1);
      this.total -= 1;
    }
  }

  async cancel(_eventName: string, identifier: string): Promise<CancelOutcome> {
    this.calls.push({ kind: 'cancel', identifier });
    const seen = this.events.get(identifier);
    if (!seen) return 'not_found';
    if (this.now() - seen.receivedAt > DAY) return 'window_passed';
    if (seen.cancelled) return 'already_cancelled';
    seen.cancelled = true;
    return 'cancelled';
  }

  /** What Stripe's `sum` would say for a customer. */
  sum(stripeCustomerId: string): bigint {
    let total = 0n;
    for (const e of this.events.values())
      if (!e.cancelled && e.stripeCustomerId === stripeCustomerId) total += e.value;
    return total;
  }

  /** What Stripe's `last` would say: the latest timestamp wins. */
  last(stripeCustomerId: string): bigint | undefined {
    let last: (MeterEventCall & { receivedAt: number }) | undefined;
    for (const e of this.events.values()) {
      if (e.cancelled || e.stripeCustomerId !== stripeCustomerId) continue;
      if (!last || e.timestamp >= last.timestamp) last = e;
    }
    return last?.value;
  }
}

/** Retries like the real wiring (attempts, no sleeping). */
export function retrying(maxAttempts = 3): SyncDeps['call'] {
  return async (fn) => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        if (!(err instanceof StripeCallError) || !err.retryable || attempt >= maxAttempts) throw err;
      }
    }
  };
}

export const quietLogger = { info: () => undefined, warn: () => undefined, debug: () => undefined };

export const countMeter: MeterDefinition = meterSchema.parse({
  name: 'calls',
  description: 'calls',
  aggregation: { type: 'count' },
  unit: 'calls',
  stripe: { event_name: 'api_calls' },
});

export const uniqueMeter: MeterDefinition = meterSchema.parse({
  name: 'users',
  description: 'users',
  aggregation: { type: 'unique_count', value: 'user_id' },
  unit: 'users',
  stripe: { event_name: 'active_users' },
});

export class Harness {
  nowMs: number;
  readonly store = new InMemorySyncStore();
  readonly stripe: FakeMeterEvents;
  readonly mapping = new Map<string, string>();

  constructor(start: number, latencyMs = 0) {
    this.nowMs = start;
    this.stripe = new FakeMeterEvents(() => this.nowMs, latencyMs);
  }

  service(overrides: Partial<SyncDeps> = {}): SyncService {
    return new SyncService({
      store: this.store,
      directory: {
        resolve: async (keys) =>
          new Map(keys.flatMap((k) => (this.mapping.has(k) ? [[k, this.mapping.get(k)!] as const] : []))),
      },
      sender: this.stripe,
      call: retrying(),
      concurrency: 4,
      logger: quietLogger,
      now: () => new Date(this.nowMs),
      ...overrides,
    });
  }

  advance(ms: number): void {
    this.nowMs += ms;
  }
}

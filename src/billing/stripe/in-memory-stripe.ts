import {
  StripeCallError,
  type CancelOutcome,
  type MeterEventCall,
  type MeterEventOutcome,
  type StripeMeter,
  type StripePrice,
  type StripePorts,
  type StripeProduct,
} from './ports.ts';

/**
 * The fake beside the ports: an in-memory Stripe account with meters, products, prices and meter
 * events, behaving like Stripe where the sync and push depend on it (identifier dedupe for 24 h,
 * cancels within 24 h, `transfer_lookup_key`, meters whose event_name and formula cannot change,
 * summaries per formula). Failures are queued with `failNext`; every call is recorded in `calls`.
 * Not modelled: customers (any id is accepted), the 35-day timestamp window, rate limits.
 */

export type InMemoryStripeOperation = Exclude<keyof StripePorts, 'maxBatch'>;

export interface StoredEvent {
  eventName: string;
  identifier: string;
  meterId: string;
  stripeCustomerId: string;
  value: bigint;
  /** Event time, ms (whole seconds, as sent). */
  timestampMs: number;
  /** Fake clock, ms. */
  receivedAtMs: number;
  cancelled: boolean;
  via: 'v1' | 'v2';
}

interface QueuedFailure {
  remaining: number;
  error: Error;
  operation: InMemoryStripeOperation | undefined;
  /** Apply the call, then throw (the answer was lost on the way back). */
  afterApply: boolean;
}

const DAY_MS = 24 * 60 * 60 * 1000;
const MAX_BATCH = 100;

/** Errors shaped like the gateway's, for `failNext`. */
export const stripeErrors = {
  rateLimited: (): StripeCallError =>
    new StripeCallError('fake: too many requests', true, {
      status: 429,
      code: 'rate_limit',
      shouldRetry: true,
      kind: 'rate_limited',
    }),
  server: (): StripeCallError =>
    new StripeCallError('fake: an unknown error occurred', true, { status: 500, kind: 'server' }),
  network: (): StripeCallError => new StripeCallError('fake: connection reset', true, { kind: 'network' }),
  invalid: (message = 'fake: invalid request', param?: string): StripeCallError =>
    new StripeCallError(message, false, {
      status: 400,
      code: 'parameter_invalid',
      kind: 'invalid_request',
      ...(param !== undefined ? { param } : {}),
    }),
};

export class InMemoryStripe implements StripePorts {
  readonly maxBatch = MAX_BATCH;
  readonly meters = new Map<string, StripeMeter>();
  readonly products = new Map<string, StripeProduct>();
  readonly prices = new Map<string, StripePrice>();
  readonly events: StoredEvent[] = [];
  /** Every call, in order, failed ones included. */
  readonly calls: InMemoryStripeOperation[] = [];
  private readonly failures: QueuedFailure[] = [];
  private counter = 0;

  /** `now`: the fake's clock in ms (dedupe and cancel windows). */
  constructor(private readonly now: () => number = Date.now) {}

  /**
   * The next `count` calls (of `operation`, or of any operation) throw `error`. With `afterApply`, the
   * call takes effect first, as when Stripe applied a request whose answer never arrived.
   */
  failNext(
    count: number,
    error: Error,
    options: { operation?: InMemoryStripeOperation; afterApply?: boolean } = {},
  ): void {
    this.failures.push({
      remaining: count,
      error,
      operation: options.operation,
      afterApply: options.afterApply ?? false,
    });
  }

  pendingFailures(): number {
    return this.failures.reduce((n, f) => n + f.remaining, 0);
  }

  /** Non-cancelled events of an event name (and customer). */
  activeEvents(eventName: string, stripeCustomerId?: string): StoredEvent[] {
    return this.events.filter(
      (e) =>
        !e.cancelled &&
        e.eventName === eventName &&
        (stripeCustomerId === undefined || e.stripeCustomerId === stripeCustomerId),
    );
  }

  // --- MeterEventSender ------------------------------------------------------------------------------

  send(event: MeterEventCall): Promise<MeterEventOutcome> {
    return this.run('send', () => {
      if (this.recentEvent(event.identifier) !== undefined) return 'duplicate';
      this.events.push(this.toStored(event, 'v1'));
      return 'applied';
    });
  }

  cancel(eventName: string, identifier: string): Promise<CancelOutcome> {
    return this.run('cancel', () => {
      const event = this.events.findLast((e) => e.identifier === identifier && e.eventName === eventName);
      if (event === undefined) return 'not_found';
      if (this.now() - event.receivedAtMs > DAY_MS) return 'window_passed';
      if (event.cancelled) return 'already_cancelled';
      event.cancelled = true;
      return 'cancelled';
    });
  }

  // --- MeterEventStream ------------------------------------------------------------------------------

  sendBatch(events: readonly MeterEventCall[]): Promise<void> {
    return this.run('sendBatch', () => {
      const stored = events.map((e) => this.toStored(e, 'v2'));
      // Stripe validates stream events asynchronously: a repeated identifier is dropped, not refused.
      for (const e of stored) if (this.recentEvent(e.identifier) === undefined) this.events.push(e);
    });
  }

  // --- StripeCatalog ---------------------------------------------------------------------------------

  listMeters(): Promise<StripeMeter[]> {
    return this.run('listMeters', () => [...this.meters.values()].map((m) => ({ ...m })));
  }

  createMeter(spec: Omit<StripeMeter, 'id' | 'status'>): Promise<StripeMeter> {
    return this.run('createMeter', () => {
      if (this.activeMeter(spec.eventName) !== undefined) {
        throw new StripeCallError(
          `fake: an active meter with event_name '${spec.eventName}' already exists`,
          false,
          { status: 400, code: 'resource_already_exists', kind: 'invalid_request', param: 'event_name' },
        );
      }
      const meter: StripeMeter = { ...spec, id: this.newId('mtr'), status: 'active' };
      this.meters.set(meter.id, meter);
      return { ...meter };
    });
  }

  updateMeterDisplayName(id: string, displayName: string): Promise<StripeMeter> {
    return this.run('updateMeterDisplayName', () => {
      const meter = this.meters.get(id);
      if (meter === undefined) throw missing('billing.meter', id);
      meter.displayName = displayName;
      return { ...meter };
    });
  }

  /** Test helper: what Stripe's deactivate does. */
  deactivateMeter(id: string): void {
    const meter = this.meters.get(id);
    if (meter === undefined) throw missing('billing.meter', id);
    meter.status = 'inactive';
  }

  retrieveProduct(id: string): Promise<StripeProduct | undefined> {
    return this.run('retrieveProduct', () => {
      const product = this.products.get(id);
      return product === undefined ? undefined : { ...product };
    });
  }

  createProduct(spec: { id: string; name: string; description?: string }): Promise<StripeProduct> {
    return this.run('createProduct', () => {
      if (this.products.has(spec.id)) {
        throw new StripeCallError(`fake: product ${spec.id} already exists`, false, {
          status: 400,
          code: 'resource_already_exists',
          kind: 'invalid_request',
          param: 'id',
        });
      }
      const product: StripeProduct = {
        id: spec.id,
        name: spec.name,
        active: true,
        description: spec.description ?? null,
      };
      this.products.set(product.id, product);
      return { ...product };
    });
  }

  updateProduct(
    id: string,
    spec: { name: string; description?: string; active?: boolean },
  ): Promise<StripeProduct> {
    return this.run('updateProduct', () => {
      const product = this.products.get(id);
      if (product === undefined) throw missing('product', id);
      product.name = spec.name;
      if (spec.description !== undefined)
        product.description = spec.description === '' ? null : spec.description;
      if (spec.active !== undefined) product.active = spec.active;
      return { ...product };
    });
  }

  pricesByLookupKey(lookupKeys: readonly string[]): Promise<StripePrice[]> {
    return this.run('pricesByLookupKey', () =>
      [...this.prices.values()]
        .filter((p) => p.lookupKey !== null && lookupKeys.includes(p.lookupKey))
        .map(clonePrice),
    );
  }

  createPrice(
    spec: Omit<StripePrice, 'id' | 'active'> & { lookupKey: string; nickname?: string },
  ): Promise<StripePrice> {
    return this.run('createPrice', () => {
      if (!this.products.has(spec.product)) throw missing('product', spec.product, 'product');
      if (spec.meterId !== null && !this.meters.has(spec.meterId)) {
        throw missing('billing.meter', spec.meterId, 'recurring[meter]');
      }
      // transfer_lookup_key: the key moves from the price holding it to the new one.
      for (const p of this.prices.values()) if (p.lookupKey === spec.lookupKey) p.lookupKey = null;
      const price: StripePrice = {
        id: this.newId('price'),
        lookupKey: spec.lookupKey,
        product: spec.product,
        active: true,
        currency: spec.currency,
        meterId: spec.meterId,
        interval: spec.interval,
        usageType: spec.usageType,
        tiersMode: spec.tiersMode,
        tiers: spec.tiers.map((t) => ({ ...t })),
      };
      this.prices.set(price.id, price);
      return clonePrice(price);
    });
  }

  // --- StripeUsageSummaries --------------------------------------------------------------------------

  meterByEventName(eventName: string): Promise<StripeMeter | undefined> {
    return this.run('meterByEventName', () => {
      const meter = this.activeMeter(eventName);
      return meter === undefined ? undefined : { ...meter };
    });
  }

  summary(meterId: string, stripeCustomerId: string, start: Date, end: Date): Promise<bigint> {
    return this.run('summary', () => {
      const meter = this.meters.get(meterId);
      if (meter === undefined) throw missing('billing.meter', meterId);
      const events = this.events.filter(
        (e) =>
          !e.cancelled &&
          e.meterId === meterId &&
          e.stripeCustomerId === stripeCustomerId &&
          e.timestampMs >= start.getTime() &&
          e.timestampMs < end.getTime(),
      );
      switch (meter.formula) {
        case 'sum':
          return events.reduce((total, e) => total + e.value, 0n);
        case 'count':
          return BigInt(events.length);
        case 'last': {
          // The latest event time wins; among equal times, the one received last (as the emulator).
          let last: StoredEvent | undefined;
          for (const e of events) if (last === undefined || e.timestampMs >= last.timestampMs) last = e;
          return last?.value ?? 0n;
        }
      }
    });
  }

  // --- internals -------------------------------------------------------------------------------------

  private async run<T>(operation: InMemoryStripeOperation, apply: () => T): Promise<T> {
    this.calls.push(operation);
    const index = this.failures.findIndex((f) => f.operation === undefined || f.operation === operation);
    const failure = this.failures[index];
    if (failure !== undefined) {
      failure.remaining -= 1;
      if (failure.remaining <= 0) this.failures.splice(index, 1);
      if (failure.afterApply) apply();
      throw failure.error;
    }
    return apply();
  }

  private toStored(event: MeterEventCall, via: StoredEvent['via']): StoredEvent {
    const meter = this.activeMeter(event.eventName);
    if (meter === undefined) {
      throw new StripeCallError(
        `fake: no active meter was found for event_name '${event.eventName}'`,
        false,
        { status: 400, code: 'meter_event_no_active_meter', kind: 'invalid_request', param: 'event_name' },
      );
    }
    return {
      eventName: event.eventName,
      identifier: event.identifier,
      meterId: meter.id,
      stripeCustomerId: event.stripeCustomerId,
      value: event.value,
      timestampMs: Math.floor(event.timestamp.getTime() / 1000) * 1000,
      receivedAtMs: this.now(),
      cancelled: false,
      via,
    };
  }

  private recentEvent(identifier: string): StoredEvent | undefined {
    const horizon = this.now() - DAY_MS;
    return this.events.findLast((e) => e.identifier === identifier && e.receivedAtMs > horizon);
  }

  private activeMeter(eventName: string): StripeMeter | undefined {
    for (const m of this.meters.values()) if (m.eventName === eventName && m.status === 'active') return m;
    return undefined;
  }

  private newId(prefix: string): string {
    this.counter += 1;
    return `${prefix}_fake${String(this.counter).padStart(6, '0')}`;
  }
}

function clonePrice(p: StripePrice): StripePrice {
  return { ...p, tiers: p.tiers.map((t) => ({ ...t })) };
}

function missing(kind: string, id: string, param = 'id'): StripeCallError {
  return new StripeCallError(`fake: no such ${kind}: '${id}'`, false, {
    status: 404,
    code: 'resource_missing',
    kind: 'invalid_request',
    param,
  });
}

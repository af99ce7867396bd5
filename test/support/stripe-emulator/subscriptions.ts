// /v1/subscriptions: create, retrieve, update (metadata, cancel_at_period_end), list, cancel (DELETE).
//
// Billing periods, a documented simplification: without `billing_cycle_anchor` a monthly (yearly)
// subscription's current period is the UTC calendar month (year) holding the emulated now, so usage
// tests line up with month boundaries; Stripe itself would start the period at creation time. Daily
// and weekly subscriptions start their period at creation. With an anchor in the future the first
// period runs from now to the anchor (Stripe prorates it), then steps from the anchor, month ends
// clamped (an anchor on the 31st bills on the 30th in April). Since API 2025-03-31.basil the period
// lives on each subscription item; the emulator also puts it on the subscription for convenience.
import { findPriceById, renderPrice } from './prices.ts';
import {
  applyMetadata,
  arrayParam,
  booleanParam,
  intParam,
  ok,
  paginate,
  route,
  stringParam,
  type EmulatorRequest,
  type Route,
} from './routing.ts';
import type { EmulatorState, Price, SubscriptionItemState, SubscriptionState } from './state.ts';
import { invalidParam, missingParam, StripeEmulatorError, unknownParams } from './stripe-error.ts';

type Interval = NonNullable<Price['recurring']>['interval'];

function addMonths(seconds: number, months: number, anchorDay: number): number {
  const d = new Date(seconds * 1000);
  const target = new Date(
    Date.UTC(
      d.getUTCFullYear(),
      d.getUTCMonth() + months,
      1,
      d.getUTCHours(),
      d.getUTCMinutes(),
      d.getUTCSeconds(),
    ),
  );
  const daysInMonth = new Date(Date.UTC(target.getUTCFullYear(), target.getUTCMonth() + 1, 0)).getUTCDate();
  target.setUTCDate(Math.min(anchorDay, daysInMonth));
  return Math.floor(target.getTime() / 1000);
}

/** The k-th period boundary after the anchor (k = 0 is the anchor itself). */
export function boundary(anchor: number, interval: Interval, count: number, k: number): number {
  const anchorDay = new Date(anchor * 1000).getUTCDate();
  switch (interval) {
    case 'day':
      return anchor + k * count * 86_400;
    case 'week':
      return anchor + k * count * 7 * 86_400;
    case 'month':
      return addMonths(anchor, k * count, anchorDay);
    case 'year':
      return addMonths(anchor, k * count * 12, anchorDay);
  }
}

function calendarStart(now: number, interval: Interval): number {
  const d = new Date(now * 1000);
  if (interval === 'month') return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1) / 1000;
  if (interval === 'year') return Date.UTC(d.getUTCFullYear(), 0, 1) / 1000;
  return now;
}

export function subscriptionPrices(state: EmulatorState, sub: SubscriptionState): Price[] {
  return sub.items.map((item) => findPriceById(state, item.priceId));
}

function recurringOf(state: EmulatorState, sub: SubscriptionState): NonNullable<Price['recurring']> {
  const recurring = subscriptionPrices(state, sub)[0]?.recurring;
  if (recurring == null) throw new Error(`subscription ${sub.id} has no recurring price`);
  return recurring;
}

/** The period that follows the current one, [start, end). */
export function nextPeriod(state: EmulatorState, sub: SubscriptionState): { start: number; end: number } {
  const { interval, interval_count } = recurringOf(state, sub);
  const start = sub.periodEnd;
  let k = 0;
  while (boundary(sub.billingCycleAnchor, interval, interval_count, k) <= start) k += 1;
  return { start, end: boundary(sub.billingCycleAnchor, interval, interval_count, k) };
}

function planFromPrice(price: Price): Record<string, unknown> {
  return {
    id: price.id,
    object: 'plan',
    active: price.active,
    amount: price.unit_amount,
    amount_decimal: price.unit_amount_decimal,
    billing_scheme: price.billing_scheme,
    created: price.created,
    currency: price.currency,
    interval: price.recurring?.interval ?? 'month',
    interval_count: price.recurring?.interval_count ?? 1,
    livemode: false,
    metadata: price.metadata,
    meter: price.recurring?.meter ?? null,
    nickname: price.nickname,
    product: price.product,
    tiers_mode: price.tiers_mode,
    transform_usage: null,
    trial_period_days: null,
    usage_type: price.recurring?.usage_type ?? 'licensed',
  };
}

function renderItem(
  state: EmulatorState,
  sub: SubscriptionState,
  item: SubscriptionItemState,
): Record<string, unknown> {
  const price = findPriceById(state, item.priceId);
  const rendered: Record<string, unknown> = {
    id: item.id,
    object: 'subscription_item',
    billing_thresholds: null,
    created: item.created,
    current_period_end: sub.periodEnd,
    current_period_start: sub.periodStart,
    discounts: [],
    metadata: item.metadata,
    plan: planFromPrice(price),
    price: renderPrice(price, false),
    subscription: sub.id,
    tax_rates: [],
  };
  if (item.quantity !== null) rendered.quantity = item.quantity;
  return rendered;
}

export function renderSubscription(state: EmulatorState, sub: SubscriptionState): Record<string, unknown> {
  const currency = subscriptionPrices(state, sub)[0]?.currency ?? 'usd';
  return {
    id: sub.id,
    object: 'subscription',
    application: null,
    application_fee_percent: null,
    automatic_tax: { disabled_reason: null, enabled: false, liability: null },
    billing_cycle_anchor: sub.billingCycleAnchor,
    billing_cycle_anchor_config: null,
    cancel_at: sub.cancelAtPeriodEnd ? sub.periodEnd : null,
    cancel_at_period_end: sub.cancelAtPeriodEnd,
    canceled_at: sub.canceledAt,
    cancellation_details: {
      comment: null,
      feedback: null,
      reason: sub.canceledAt === null ? null : 'cancellation_requested',
    },
    collection_method: 'charge_automatically',
    created: sub.created,
    currency,
    customer: sub.customer,
    days_until_due: null,
    default_payment_method: null,
    default_source: null,
    description: null,
    discounts: [],
    ended_at: sub.status === 'canceled' ? sub.canceledAt : null,
    items: {
      object: 'list',
      data: sub.items.map((item) => renderItem(state, sub, item)),
      has_more: false,
      total_count: sub.items.length,
      url: `/v1/subscription_items?subscription=${sub.id}`,
    },
    latest_invoice: sub.latestInvoice,
    livemode: false,
    metadata: sub.metadata,
    pause_collection: null,
    pending_update: null,
    schedule: null,
    start_date: sub.startDate,
    status: sub.status,
    test_clock: null,
    trial_end: null,
    trial_start: null,
    // Not on the 2025+ subscription object (they moved to items); kept here for tests' convenience.
    current_period_start: sub.periodStart,
    current_period_end: sub.periodEnd,
  };
}

export function findSubscriptionById(
  state: EmulatorState,
  id: string,
  param = 'id',
  status = 404,
): SubscriptionState {
  const sub = state.subscriptions.get(id);
  if (sub === undefined) {
    throw new StripeEmulatorError(
      status,
      'invalid_request_error',
      `No such subscription: '${id}'`,
      'resource_missing',
      param,
    );
  }
  return sub;
}

function find(req: EmulatorRequest): SubscriptionState {
  return findSubscriptionById(req.state, req.params.id ?? '');
}

function parseItems(
  state: EmulatorState,
  body: Record<string, unknown>,
): { price: Price; quantity: number | null; metadata: Record<string, string> }[] {
  const raw = arrayParam(body, 'items');
  if (raw === undefined || raw.length === 0) throw missingParam('items');
  const seen = new Set<string>();
  return raw.map((value, i) => {
    if (typeof value !== 'object' || value === null || Array.isArray(value))
      throw invalidParam('Invalid object', `items[${i}]`);
    const item = value as Record<string, unknown>;
    for (const key of Object.keys(item)) {
      if (!['price', 'quantity', 'metadata'].includes(key))
        throw invalidParam(
          `Received unknown parameter: items[${i}][${key}]`,
          `items[${i}][${key}]`,
          'parameter_unknown',
        );
    }
    const priceId = stringParam(item, 'price');
    if (priceId === undefined) throw missingParam(`items[${i}][price]`);
    const price = findPriceById(state, priceId, `items[${i}][price]`, 400);
    if (price.recurring === null)
      throw invalidParam(
        `The price specified (${priceId}) is not recurring; a subscription needs recurring prices.`,
        `items[${i}][price]`,
      );
    if (!price.active)
      throw invalidParam(`The price specified (${priceId}) is inactive.`, `items[${i}][price]`);
    if (seen.has(priceId))
      throw invalidParam('Cannot add multiple subscription items with the same price.', `items[${i}][price]`);
    seen.add(priceId);
    const quantity = intParam(item, 'quantity', { min: 0, param: `items[${i}][quantity]` });
    if (price.recurring.usage_type === 'metered' && quantity !== undefined)
      throw invalidParam(
        'Quantity should not be specified where usage_type is `metered`.',
        `items[${i}][quantity]`,
      );
    const metadata: Record<string, string> = {};
    applyMetadata(metadata, item.metadata, `items[${i}][metadata]`);
    return { price, quantity: price.recurring.usage_type === 'metered' ? null : (quantity ?? 1), metadata };
  });
}

/** Moves a subscription to its next period (or ends it, if it was set to cancel at period end). */
export function rollSubscription(state: EmulatorState, id: string): SubscriptionState {
  const sub = findSubscriptionById(state, id);
  if (sub.status === 'canceled') throw new Error(`subscription ${id} is canceled`);
  const previous = { current_period_start: sub.periodStart, current_period_end: sub.periodEnd };
  if (sub.cancelAtPeriodEnd) {
    sub.status = 'canceled';
    sub.canceledAt = sub.periodEnd;
    state.emit('customer.subscription.deleted', renderSubscription(state, sub), null);
    return sub;
  }
  const next = nextPeriod(state, sub);
  sub.periodStart = next.start;
  sub.periodEnd = next.end;
  state.emit('customer.subscription.updated', renderSubscription(state, sub), null, previous);
  return sub;
}

export const subscriptionRoutes: Route[] = [
  route('POST', '/v1/subscriptions', (req) => {
    unknownParams(req.body, ['customer', 'items', 'billing_cycle_anchor', 'metadata']);
    const { state, body } = req;
    const customer = stringParam(body, 'customer');
    if (customer === undefined) throw missingParam('customer');
    if (!state.customers.has(customer))
      throw new StripeEmulatorError(
        400,
        'invalid_request_error',
        `No such customer: '${customer}'`,
        'resource_missing',
        'customer',
      );
    const items = parseItems(state, body);
    const first = items[0]?.price.recurring;
    if (first == null) throw missingParam('items');
    for (const [i, item] of items.entries()) {
      if (
        item.price.recurring?.interval !== first.interval ||
        item.price.recurring.interval_count !== first.interval_count
      )
        throw invalidParam(
          'All prices on a subscription must have the same recurring interval.',
          `items[${i}][price]`,
        );
      if (item.price.currency !== items[0]?.price.currency)
        throw invalidParam('All prices on a subscription must have the same currency.', `items[${i}][price]`);
    }
    const now = state.nowSeconds();
    const anchorParam = intParam(body, 'billing_cycle_anchor', { min: 0 });
    let anchor: number;
    let periodStart: number;
    let periodEnd: number;
    if (anchorParam === undefined) {
      anchor = calendarStart(now, first.interval);
      periodStart = anchor;
      periodEnd = boundary(anchor, first.interval, first.interval_count, 1);
    } else {
      if (anchorParam < now)
        throw invalidParam('billing_cycle_anchor cannot be in the past.', 'billing_cycle_anchor');
      if (anchorParam > boundary(now, first.interval, first.interval_count, 1))
        throw invalidParam(
          'billing_cycle_anchor cannot be later than the next natural billing date.',
          'billing_cycle_anchor',
        );
      anchor = anchorParam;
      periodStart = now;
      periodEnd =
        anchorParam === now ? boundary(anchor, first.interval, first.interval_count, 1) : anchorParam;
    }
    const metadata: Record<string, string> = {};
    applyMetadata(metadata, body.metadata);
    const sub: SubscriptionState = {
      id: state.newId('sub'),
      created: now,
      customer,
      status: 'active',
      billingCycleAnchor: anchor,
      calendarAligned: anchorParam === undefined,
      periodStart,
      periodEnd,
      startDate: now,
      canceledAt: null,
      cancelAtPeriodEnd: false,
      metadata,
      items: items.map((item) => ({
        id: state.newId('si'),
        created: now,
        priceId: item.price.id,
        quantity: item.quantity,
        metadata: item.metadata,
      })),
      latestInvoice: null,
    };
    state.subscriptions.set(sub.id, sub);
    const rendered = renderSubscription(state, sub);
    state.emit('customer.subscription.created', rendered, req.cause);
    return ok(rendered);
  }),
  route('GET', '/v1/subscriptions/:id', (req) => ok(renderSubscription(req.state, find(req)))),
  route('POST', '/v1/subscriptions/:id', (req) => {
    unknownParams(req.body, ['metadata', 'cancel_at_period_end']);
    const sub = find(req);
    if (sub.status === 'canceled')
      throw invalidParam(
        'A canceled subscription can only update its cancellation_details and metadata.',
        'cancel_at_period_end',
      );
    const before = renderSubscription(req.state, sub);
    const metadata = { ...sub.metadata };
    applyMetadata(metadata, req.body.metadata);
    sub.metadata = metadata;
    const cancelAtEnd = booleanParam(req.body, 'cancel_at_period_end');
    if (cancelAtEnd !== undefined) sub.cancelAtPeriodEnd = cancelAtEnd;
    const after = renderSubscription(req.state, sub);
    const previous: Record<string, unknown> = {};
    for (const key of ['metadata', 'cancel_at_period_end', 'cancel_at'])
      if (JSON.stringify(before[key]) !== JSON.stringify(after[key])) previous[key] = before[key];
    if (Object.keys(previous).length > 0)
      req.state.emit('customer.subscription.updated', after, req.cause, previous);
    return ok(after);
  }),
  route('GET', '/v1/subscriptions', (req) => {
    unknownParams(req.query, ['limit', 'starting_after', 'ending_before', 'customer', 'status', 'price']);
    const customer = stringParam(req.query, 'customer');
    const status = stringParam(req.query, 'status');
    const price = stringParam(req.query, 'price');
    // Stripe lists non-canceled subscriptions unless a status (or 'all') is asked for.
    const all = [...req.state.subscriptions.values()]
      .reverse()
      .filter(
        (s) =>
          (customer === undefined || s.customer === customer) &&
          (status === 'all' || (status === undefined ? s.status !== 'canceled' : s.status === status)) &&
          (price === undefined || s.items.some((i) => i.priceId === price)),
      );
    return paginate('/v1/subscriptions', req.query, all, (s) => renderSubscription(req.state, s));
  }),
  route('DELETE', '/v1/subscriptions/:id', (req) => {
    unknownParams(req.query, ['invoice_now', 'prorate', 'cancellation_details']);
    const sub = find(req);
    if (sub.status === 'canceled') throw resourceMissingCanceled(sub.id);
    sub.status = 'canceled';
    sub.canceledAt = req.state.nowSeconds();
    const rendered = renderSubscription(req.state, sub);
    req.state.emit('customer.subscription.deleted', rendered, req.cause);
    return ok(rendered);
  }),
];

function resourceMissingCanceled(id: string): StripeEmulatorError {
  return invalidParam(`This subscription (${id}) has already been canceled.`, 'id');
}

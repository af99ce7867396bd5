// Invoices: POST /v1/invoices/create_preview (the upcoming invoice of a subscription's current period),
// GET /v1/invoices/:id and GET /v1/invoices for invoices the `payInvoice` test helper drew.
//
// The pricing here is an implementation of Stripe's rules written apart from the service's own tier
// math (src/meters/tiers.ts), so the two can catch each other's mistakes:
// - usage: a metered item's quantity is its meter's aggregate (sum / count / last, as event summaries)
//   over the period [start, end) of the customer's non-cancelled events; a negative aggregate bills 0;
// - graduated: each tier bills its own units at its unit amount, plus its flat amount once a unit falls
//   in it; the first tier's flat amount is billed even at quantity 0 (the first tier is always reached);
// - volume: every unit at the unit amount of the tier the total falls in, plus that tier's flat amount
//   (at quantity 0, the first tier's);
// - rounding: one line per tier, each rounded to a whole minor unit after quantity × unit_amount_decimal
//   (+ its flat amount, which Stripe requires to be whole), halves away from zero; total = sum of lines.
// Licensed items are billed in advance for the next period (quantity × price), as on Stripe.
import { aggregate } from './meter-events.ts';
import { formatDecimal, formatUnitPrice, parseDecimal, roundToMinor } from './money.ts';
import { paginate, ok, route, stringParam, type Route } from './routing.ts';
import type { EmulatorState, Price, PriceTier, SubscriptionItemState, SubscriptionState } from './state.ts';
import { findSubscriptionById, nextPeriod, subscriptionPrices } from './subscriptions.ts';
import {
  invalidParam,
  missingParam,
  resourceMissing,
  StripeEmulatorError,
  unknownParams,
} from './stripe-error.ts';
import { findPriceById } from './prices.ts';

export interface PricedLine {
  /** 1-based tier number, or null for a per-unit price. */
  tier: number | null;
  quantity: bigint;
  unitAmountDecimal: string;
  /** Exact amount in minor units × 10^12, before rounding. */
  exactScaled: bigint;
  amount: bigint;
}

function scaled(decimal: string | null): bigint {
  if (decimal === null) return 0n;
  const value = parseDecimal(decimal);
  if (value === undefined) throw new Error(`stored decimal '${decimal}' does not parse`);
  return value;
}

function tierLine(tier: PriceTier, index: number, quantity: bigint, chargeFlat: boolean): PricedLine {
  const exact =
    quantity * scaled(tier.unit_amount_decimal) + (chargeFlat ? scaled(tier.flat_amount_decimal) : 0n);
  return {
    tier: index + 1,
    quantity,
    unitAmountDecimal: tier.unit_amount_decimal ?? '0',
    exactScaled: exact,
    amount: roundToMinor(exact),
  };
}

/** Stripe's price math for a quantity: one line per tier reached (the first always), or one per-unit line. */
export function priceQuantity(price: Price, quantity: bigint): PricedLine[] {
  if (price.billing_scheme === 'per_unit') {
    const exact = quantity * scaled(price.unit_amount_decimal);
    return [
      {
        tier: null,
        quantity,
        unitAmountDecimal: price.unit_amount_decimal ?? '0',
        exactScaled: exact,
        amount: roundToMinor(exact),
      },
    ];
  }
  const tiers = price.tiers ?? [];
  if (price.tiers_mode === 'volume') {
    const index = tiers.findIndex((t) => t.up_to === null || quantity <= BigInt(t.up_to));
    const tier = tiers[index];
    if (tier === undefined) throw new Error(`price ${price.id} has no tier for ${quantity}`);
    return [tierLine(tier, index, quantity, true)];
  }
  const lines: PricedLine[] = [];
  let below = 0n;
  for (const [index, tier] of tiers.entries()) {
    const top = tier.up_to === null ? null : BigInt(tier.up_to);
    const reached = top === null || quantity < top ? quantity : top;
    const inTier = reached > below ? reached - below : 0n;
    if (index === 0 || inTier > 0n) lines.push(tierLine(tier, index, inTier, index === 0 || inTier > 0n));
    if (top === null || quantity <= top) break;
    below = top;
  }
  return lines;
}

function intervalLabel(price: Price): string {
  const r = price.recurring;
  if (r === null) return '';
  return r.interval_count === 1 ? ` / ${r.interval}` : ` every ${r.interval_count} ${r.interval}s`;
}

function describe(state: EmulatorState, price: Price, line: PricedLine): string {
  const product = state.products.get(price.product)?.name ?? price.product;
  const unit = formatUnitPrice(scaled(line.unitAmountDecimal), price.currency);
  if (line.tier === null) return `${line.quantity} × ${product} (at ${unit}${intervalLabel(price)})`;
  const tier = price.tiers?.[line.tier - 1];
  const flat =
    tier?.flat_amount_decimal != null && scaled(tier.flat_amount_decimal) > 0n
      ? ` + ${formatUnitPrice(scaled(tier.flat_amount_decimal), price.currency)} flat fee`
      : '';
  return `${product} (Tier ${line.tier} at ${unit}${intervalLabel(price)}${flat})`;
}

/** The meter's aggregate for the customer over [start, end); negative aggregates bill 0. */
export function usageQuantity(
  state: EmulatorState,
  price: Price,
  customer: string,
  start: number,
  end: number,
): bigint {
  const meterId = price.recurring?.meter;
  const meter = meterId == null ? undefined : state.meters.get(meterId);
  if (meter === undefined) return 0n;
  const events = state.eventsFor(meter.id, customer).filter((e) => e.timestamp >= start && e.timestamp < end);
  const value = BigInt(aggregate(meter, events));
  return value < 0n ? 0n : value;
}

function toNumber(value: bigint): number {
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`amount ${value} is beyond a safe integer`);
  return Number(value);
}

interface InvoiceOptions {
  id: string;
  status: 'draft' | 'open' | 'paid';
  billingReason: 'upcoming' | 'subscription_cycle';
  number: string | null;
  paid: boolean;
  attempted: boolean;
}

/** An invoice object for the subscription's current period, shaped like Stripe's (API 2025+). */
export function buildInvoice(
  state: EmulatorState,
  sub: SubscriptionState,
  options: InvoiceOptions,
): Record<string, unknown> {
  const now = state.nowSeconds();
  const customer = state.customers.get(sub.customer);
  const prices = subscriptionPrices(state, sub);
  const currency = prices[0]?.currency ?? 'usd';
  const lines: Record<string, unknown>[] = [];
  const next = nextPeriod(state, sub);
  const addLines = (item: SubscriptionItemState, price: Price): void => {
    const metered = price.recurring?.usage_type === 'metered';
    const period = metered ? { start: sub.periodStart, end: sub.periodEnd } : next;
    const quantity = metered
      ? usageQuantity(state, price, sub.customer, sub.periodStart, sub.periodEnd)
      : BigInt(item.quantity ?? 1);
    for (const line of priceQuantity(price, quantity)) {
      const amount = toNumber(line.amount);
      lines.push({
        id: state.newId('il'),
        object: 'line_item',
        amount,
        currency,
        description: describe(state, price, line),
        discount_amounts: [],
        discountable: true,
        discounts: [],
        invoice: options.id,
        livemode: false,
        metadata: {},
        parent: {
          type: 'subscription_item_details',
          invoice_item_details: null,
          subscription_item_details: {
            invoice_item: null,
            proration: false,
            proration_details: { credited_items: null },
            subscription: sub.id,
            subscription_item: item.id,
          },
        },
        period,
        pretax_credit_amounts: [],
        pricing: {
          type: 'price_details',
          price_details: { price: price.id, product: price.product },
          unit_amount_decimal: line.unitAmountDecimal,
        },
        quantity: toNumber(line.quantity),
        quantity_decimal: line.quantity.toString(),
        subscription: sub.id,
        subtotal: amount,
        taxes: [],
        // Emulator-only: the exact amount before the line was rounded, for assertions.
        exact_amount_decimal: formatDecimal(line.exactScaled),
      });
    }
  };
  sub.items.forEach((item) => addLines(item, findPriceById(state, item.priceId)));
  const total = lines.reduce((sum, line) => sum + (line.amount as number), 0);
  return {
    id: options.id,
    object: 'invoice',
    account_country: 'US',
    account_name: 'Stripe emulator',
    account_tax_ids: null,
    amount_due: total,
    amount_overpaid: 0,
    amount_paid: options.paid ? total : 0,
    amount_remaining: options.paid ? 0 : total,
    amount_shipping: 0,
    application: null,
    attempt_count: options.attempted ? 1 : 0,
    attempted: options.attempted,
    auto_advance: options.status !== 'paid',
    automatic_tax: { disabled_reason: null, enabled: false, liability: null, provider: null, status: null },
    automatically_finalizes_at: null,
    billing_reason: options.billingReason,
    collection_method: 'charge_automatically',
    created: now,
    currency,
    custom_fields: null,
    customer: sub.customer,
    customer_account: null,
    customer_address: null,
    customer_email: customer?.email ?? null,
    customer_name: customer?.name ?? null,
    customer_phone: null,
    customer_shipping: null,
    customer_tax_exempt: 'none',
    default_payment_method: null,
    default_source: null,
    default_tax_rates: [],
    description: null,
    discounts: [],
    due_date: null,
    effective_at: options.status === 'draft' ? null : now,
    ending_balance: options.status === 'draft' ? null : 0,
    footer: null,
    from_invoice: null,
    issuer: { type: 'self' },
    last_finalization_error: null,
    latest_revision: null,
    lines: {
      object: 'list',
      data: lines,
      has_more: false,
      total_count: lines.length,
      url: `/v1/invoices/${options.id}/lines`,
    },
    livemode: false,
    metadata: {},
    next_payment_attempt: null,
    number: options.number,
    on_behalf_of: null,
    parent: {
      type: 'subscription_details',
      quote_details: null,
      subscription_details: { metadata: sub.metadata, subscription: sub.id },
    },
    period_end: sub.periodEnd,
    period_start: sub.periodStart,
    post_payment_credit_notes_amount: 0,
    pre_payment_credit_notes_amount: 0,
    receipt_number: null,
    rendering: null,
    shipping_cost: null,
    shipping_details: null,
    starting_balance: 0,
    statement_descriptor: null,
    status: options.status,
    status_transitions: {
      finalized_at: options.status === 'draft' ? null : now,
      marked_uncollectible_at: null,
      paid_at: options.paid ? now : null,
      voided_at: null,
    },
    // Not on the 2025+ invoice object (it lives in parent.subscription_details); kept for convenience.
    subscription: sub.id,
    subtotal: total,
    subtotal_excluding_tax: total,
    test_clock: null,
    total,
    total_discount_amounts: [],
    total_excluding_tax: total,
    total_pretax_credit_amounts: [],
    total_taxes: [],
    webhooks_delivered_at: null,
  };
}

/** The customer's active subscription whose period ends first (Stripe's choice of "the upcoming invoice"). */
function upcomingSubscription(state: EmulatorState, customer: string): SubscriptionState | undefined {
  return [...state.subscriptions.values()]
    .filter((s) => s.customer === customer && s.status === 'active')
    .sort((a, b) => a.periodEnd - b.periodEnd)[0];
}

/**
 * Test helper behind `emulator.payInvoice`: draws the invoice of the subscription's current period and
 * pays it (or fails to), emitting invoice.created, invoice.finalized, then invoice.paid +
 * invoice.payment_succeeded, or invoice.payment_failed.
 */
export function drawInvoice(
  state: EmulatorState,
  customer: string,
  { succeed = true, subscription }: { succeed?: boolean; subscription?: string } = {},
): Record<string, unknown> {
  if (!state.customers.has(customer)) throw new Error(`payInvoice: no such customer ${customer}`);
  const sub =
    subscription === undefined
      ? upcomingSubscription(state, customer)
      : findSubscriptionById(state, subscription);
  if (sub === undefined) throw new Error(`payInvoice: customer ${customer} has no active subscription`);
  if (sub.customer !== customer)
    throw new Error(`payInvoice: subscription ${sub.id} belongs to ${sub.customer}`);
  const id = state.newId('in');
  const draft = buildInvoice(state, sub, {
    id,
    status: 'draft',
    billingReason: 'subscription_cycle',
    number: null,
    paid: false,
    attempted: false,
  });
  state.emit('invoice.created', draft, null);
  const number = `EMU-${String(state.invoices.size + 1).padStart(4, '0')}`;
  const open = buildInvoice(state, sub, {
    id,
    status: 'open',
    billingReason: 'subscription_cycle',
    number,
    paid: false,
    attempted: false,
  });
  state.emit('invoice.finalized', open, null);
  const settled = buildInvoice(state, sub, {
    id,
    status: succeed ? 'paid' : 'open',
    billingReason: 'subscription_cycle',
    number,
    paid: succeed,
    attempted: true,
  });
  state.invoices.set(id, settled);
  sub.latestInvoice = id;
  if (succeed) {
    state.emit('invoice.paid', settled, null);
    state.emit('invoice.payment_succeeded', settled, null);
  } else {
    state.emit('invoice.payment_failed', settled, null);
  }
  return settled;
}

export const invoiceRoutes: Route[] = [
  route('POST', '/v1/invoices/create_preview', (req) => {
    unknownParams(req.body, ['customer', 'subscription']);
    const { state } = req;
    const customer = stringParam(req.body, 'customer');
    const subscriptionId = stringParam(req.body, 'subscription');
    if (customer === undefined && subscriptionId === undefined) throw missingParam('customer');
    if (customer !== undefined && !state.customers.has(customer))
      throw new StripeEmulatorError(
        400,
        'invalid_request_error',
        `No such customer: '${customer}'`,
        'resource_missing',
        'customer',
      );
    let sub: SubscriptionState | undefined;
    if (subscriptionId !== undefined) {
      sub = findSubscriptionById(state, subscriptionId, 'subscription', 400);
      if (customer !== undefined && sub.customer !== customer)
        throw invalidParam(
          `The subscription ${sub.id} does not belong to customer ${customer}.`,
          'subscription',
        );
    } else if (customer !== undefined) sub = upcomingSubscription(state, customer);
    if (sub === undefined || sub.status !== 'active') {
      throw new StripeEmulatorError(
        400,
        'invalid_request_error',
        `No upcoming invoices for customer: ${customer ?? sub?.customer ?? ''}`,
        'invoice_upcoming_none',
      );
    }
    return ok(
      buildInvoice(state, sub, {
        id: `upcoming_in_${sub.id.slice(4)}`,
        status: 'draft',
        billingReason: 'upcoming',
        number: null,
        paid: false,
        attempted: false,
      }),
    );
  }),
  route('GET', '/v1/invoices/:id', (req) => {
    const id = req.params.id ?? '';
    const invoice = req.state.invoices.get(id);
    if (invoice === undefined) throw resourceMissing('invoice', id);
    return ok(invoice);
  }),
  route('GET', '/v1/invoices', (req) => {
    unknownParams(req.query, [
      'limit',
      'starting_after',
      'ending_before',
      'customer',
      'subscription',
      'status',
    ]);
    const customer = stringParam(req.query, 'customer');
    const subscription = stringParam(req.query, 'subscription');
    const status = stringParam(req.query, 'status');
    const all = [...req.state.invoices.values()]
      .reverse()
      .filter(
        (i) =>
          (customer === undefined || i.customer === customer) &&
          (subscription === undefined || i.subscription === subscription) &&
          (status === undefined || i.status === status),
      ) as { id: string }[];
    return paginate('/v1/invoices', req.query, all);
  }),
];

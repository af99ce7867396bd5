import { AGGREGATIONS } from '../../meters/aggregations.ts';
import { DomainError } from '../../errors.ts';
import { type AggregationType, type MeterDefinition } from '../../meters/meter-schema.ts';
import { formatScaled, parseScaled } from '../../meters/money.ts';
import {
  CUSTOMER_PAYLOAD_KEY,
  VALUE_PAYLOAD_KEY,
  type StripeCatalog,
  type StripeFormula,
  type StripeMeter,
  type StripePrice,
  type StripeProduct,
  type StripeTier,
} from './ports.ts';

/**
 * `stripe push`: make Stripe's catalog match the meter YAML, like `terraform plan` / `apply`.
 *
 * For each meter with a `stripe` block:
 * - a Stripe **meter** on `stripe.event_name`, display name = the meter's name (its stable slug: what
 *   operators grep for; the description goes on the product, which is what invoices show). Formula
 *   `sum` for additive aggregations (hourly deltas are sent) and `last` for the others (the
 *   period-to-date value is sent), payload keys `stripe_customer_id` and `value`. Stripe cannot change
 *   a meter's event_name, formula or payload keys: an active meter on the same event_name that differs
 *   in those is a **conflict**, reported and never silently replaced; `applyPush` refuses while any
 *   exists. Only the display name is updated in place.
 * - when the meter has `pricing`: a **product** `bm_<meter name>` (Stripe takes caller-chosen ids)
 *   named after the meter with its description, and a monthly metered tiered **price** found by lookup
 *   key `billing-meter:<meter name>`. Prices are immutable: when the active price under that key
 *   differs (currency, tiers mode, tiers compared as normalized decimals, interval, usage type, meter,
 *   product), a new price is created with `transfer_lookup_key`, and the old one stays active for the
 *   subscriptions that use it (moving them is the operator's decision).
 * Nothing is ever deleted or deactivated. Planning again after an apply shows everything unchanged.
 */

export const PRODUCT_ID_PREFIX = 'bm_';
export const LOOKUP_KEY_PREFIX = 'billing-meter:';

export const productIdFor = (meterName: string): string => `${PRODUCT_ID_PREFIX}${meterName}`;
export const lookupKeyFor = (meterName: string): string => `${LOOKUP_KEY_PREFIX}${meterName}`;

/** Additive meters send hourly deltas (summed by Stripe); the others send period-to-date values. */
export function stripeFormulaFor(aggregation: AggregationType): Extract<StripeFormula, 'sum' | 'last'> {
  return AGGREGATIONS[aggregation].stripeFormula;
}

export type DesiredMeter = Omit<StripeMeter, 'id' | 'status'>;

export interface DesiredProduct {
  id: string;
  name: string;
  description: string;
}

export interface DesiredPrice {
  lookupKey: string;
  nickname: string;
  product: string;
  currency: string;
  tiersMode: 'graduated' | 'volume';
  tiers: StripeTier[];
  interval: 'month';
  usageType: 'metered';
}

export type MeterStep =
  | { action: 'create'; desired: DesiredMeter }
  | { action: 'update'; desired: DesiredMeter; existing: StripeMeter; changes: string[] }
  | { action: 'unchanged'; desired: DesiredMeter; existing: StripeMeter }
  | { action: 'conflict'; desired: DesiredMeter; existing?: StripeMeter; reasons: string[] };

export type ProductStep =
  | { action: 'create'; desired: DesiredProduct }
  | { action: 'update'; desired: DesiredProduct; existing: StripeProduct; changes: string[] }
  | { action: 'unchanged'; desired: DesiredProduct; existing: StripeProduct };

export type PriceStep =
  /** `replaces`: the active price that holds the lookup key now; `reasons`: why it cannot stay. */
  | { action: 'create'; desired: DesiredPrice; replaces?: StripePrice; reasons: string[] }
  | { action: 'unchanged'; desired: DesiredPrice; existing: StripePrice };

export interface MeterPushPlan {
  /** The meter's name in YAML. */
  name: string;
  meter: MeterStep;
  /** Only for meters with `pricing`. */
  product?: ProductStep;
  price?: PriceStep;
}

export interface PushPlan {
  meters: MeterPushPlan[];
  /** Meters without a `stripe` block: not pushed. */
  skipped: string[];
  counts: { create: number; update: number; unchanged: number; conflict: number };
}

export interface AppliedMeter {
  name: string;
  meterId: string;
  productId?: string;
  priceId?: string;
}

export interface PushResult {
  meters: AppliedMeter[];
  /** One line per change made, in order, as formatPlan words them. */
  applied: string[];
}

/** `applyPush` refuses a plan with conflicts: nothing is changed. */
export class PushConflictError extends DomainError {
  constructor(readonly conflicts: { name: string; reasons: string[] }[]) {
    super(
      'invalid_request',
      `${conflicts.length} meter(s) conflict with Stripe; nothing was pushed: ` +
        conflicts.map((c) => `${c.name}: ${c.reasons.join('; ')}`).join(' | '),
      { conflicts },
    );
    this.name = 'PushConflictError';
  }
}

// --- plan --------------------------------------------------------------------------------------------

export function desiredMeterFor(meter: MeterDefinition): DesiredMeter | undefined {
  if (meter.stripe === undefined) return undefined;
  return {
    displayName: meter.name,
    eventName: meter.stripe.event_name,
    formula: stripeFormulaFor(meter.aggregation.type),
    customerPayloadKey: CUSTOMER_PAYLOAD_KEY,
    valuePayloadKey: VALUE_PAYLOAD_KEY,
  };
}

function desiredPriceFor(meter: MeterDefinition): DesiredPrice | undefined {
  if (meter.pricing === undefined) return undefined;
  return {
    lookupKey: lookupKeyFor(meter.name),
    nickname: `billing-meter ${meter.name}`,
    product: productIdFor(meter.name),
    currency: meter.pricing.currency,
    tiersMode: meter.pricing.tiers_mode,
    tiers: meter.pricing.tiers.map((t) => {
      const tier: StripeTier = { upTo: t.up_to };
      if (t.unit_amount_decimal !== undefined) tier.unitAmountDecimal = t.unit_amount_decimal;
      if (t.flat_amount_decimal !== undefined) tier.flatAmountDecimal = t.flat_amount_decimal;
      return tier;
    }),
    interval: 'month',
    usageType: 'metered',
  };
}

export async function planPush(
  meters: readonly MeterDefinition[],
  catalog: StripeCatalog,
): Promise<PushPlan> {
  const pushed = meters.filter((m) => m.stripe !== undefined);
  const skipped = meters.filter((m) => m.stripe === undefined).map((m) => m.name);
  const existingMeters = pushed.length > 0 ? await catalog.listMeters() : [];
  const priced = pushed.filter((m) => m.pricing !== undefined);
  const existingPrices =
    priced.length > 0 ? await catalog.pricesByLookupKey(priced.map((m) => lookupKeyFor(m.name))) : [];

  const eventNameOwners = new Map<string, string>();
  const plans: MeterPushPlan[] = [];
  for (const meter of pushed) {
    const desired = desiredMeterFor(meter)!;
    const owner = eventNameOwners.get(desired.eventName);
    eventNameOwners.set(desired.eventName, owner ?? meter.name);
    const meterStep: MeterStep =
      owner !== undefined
        ? {
            action: 'conflict',
            desired,
            reasons: [`event_name '${desired.eventName}' is already pushed by meter '${owner}'`],
          }
        : planMeter(desired, existingMeters);
    const plan: MeterPushPlan = { name: meter.name, meter: meterStep };
    const desiredPrice = desiredPriceFor(meter);
    if (desiredPrice !== undefined) {
      plan.product = planProduct(
        { id: productIdFor(meter.name), name: meter.name, description: meter.description },
        await catalog.retrieveProduct(productIdFor(meter.name)),
      );
      const meterId = meterStep.action === 'create' ? undefined : meterStep.existing?.id;
      plan.price = planPrice(desiredPrice, meterId, existingPrices);
    }
    plans.push(plan);
  }

  const counts = { create: 0, update: 0, unchanged: 0, conflict: 0 };
  for (const p of plans) for (const step of [p.meter, p.product, p.price]) if (step) counts[step.action] += 1;
  return { meters: plans, skipped, counts };
}

function planMeter(desired: DesiredMeter, existing: readonly StripeMeter[]): MeterStep {
  const current = existing.find((m) => m.status === 'active' && m.eventName === desired.eventName);
  if (current === undefined) return { action: 'create', desired };
  const reasons: string[] = [];
  if (current.formula !== desired.formula) {
    reasons.push(`formula is ${current.formula}, the meter needs ${desired.formula}`);
  }
  if (current.customerPayloadKey !== desired.customerPayloadKey) {
    reasons.push(
      `customer payload key is '${current.customerPayloadKey}', not '${desired.customerPayloadKey}'`,
    );
  }
  if (current.valuePayloadKey !== desired.valuePayloadKey) {
    reasons.push(`value payload key is '${current.valuePayloadKey}', not '${desired.valuePayloadKey}'`);
  }
  if (reasons.length > 0) return { action: 'conflict', desired, existing: current, reasons };
  if (current.displayName !== desired.displayName) {
    return {
      action: 'update',
      desired,
      existing: current,
      changes: [`display_name '${current.displayName}' → '${desired.displayName}'`],
    };
  }
  return { action: 'unchanged', desired, existing: current };
}

function planProduct(desired: DesiredProduct, existing: StripeProduct | undefined): ProductStep {
  if (existing === undefined) return { action: 'create', desired };
  const changes: string[] = [];
  if (existing.name !== desired.name) changes.push(`name '${existing.name}' → '${desired.name}'`);
  if ((existing.description ?? '') !== desired.description) changes.push('description');
  if (!existing.active) changes.push('reactivate');
  return changes.length > 0
    ? { action: 'update', desired, existing, changes }
    : { action: 'unchanged', desired, existing };
}

function planPrice(
  desired: DesiredPrice,
  meterId: string | undefined,
  prices: readonly StripePrice[],
): PriceStep {
  const current = prices.find((p) => p.active && p.lookupKey === desired.lookupKey);
  if (current === undefined) return { action: 'create', desired, reasons: [] };
  const reasons = priceDifferences(desired, meterId, current);
  return reasons.length > 0
    ? { action: 'create', desired, replaces: current, reasons }
    : { action: 'unchanged', desired, existing: current };
}

/** Why `current` is not the desired price (empty: it is). `meterId` undefined: the meter is new. */
export function priceDifferences(
  desired: DesiredPrice,
  meterId: string | undefined,
  current: StripePrice,
): string[] {
  const reasons: string[] = [];
  if (meterId === undefined) reasons.push('the meter is new');
  else if (current.meterId !== meterId) reasons.push(`meter is ${current.meterId ?? 'none'}, not ${meterId}`);
  if (current.product !== desired.product)
    reasons.push(`product is ${current.product}, not ${desired.product}`);
  if (current.currency !== desired.currency)
    reasons.push(`currency is ${current.currency}, not ${desired.currency}`);
  if (current.interval !== desired.interval)
    reasons.push(`interval is ${current.interval ?? 'none'}, not month`);
  if (current.usageType !== desired.usageType) {
    reasons.push(`usage_type is ${current.usageType ?? 'none'}, not metered`);
  }
  if (current.tiersMode !== desired.tiersMode) {
    reasons.push(`tiers_mode is ${current.tiersMode ?? 'none'}, not ${desired.tiersMode}`);
  }
  if (!sameTiers(current.tiers, desired.tiers)) {
    reasons.push(`tiers are ${describeTiers(current.tiers)}, not ${describeTiers(desired.tiers)}`);
  }
  return reasons;
}

/** A missing amount is 0; '500', '500.0' and '500.000' are the same amount. */
function normalizedAmount(amount: string | undefined): string {
  if (amount === undefined) return '0';
  try {
    return formatScaled(parseScaled(amount));
  } catch {
    return amount;
  }
}

function sameTiers(a: readonly StripeTier[], b: readonly StripeTier[]): boolean {
  return (
    a.length === b.length &&
    a.every((t, i) => {
      const u = b[i]!;
      return (
        t.upTo === u.upTo &&
        normalizedAmount(t.unitAmountDecimal) === normalizedAmount(u.unitAmountDecimal) &&
        normalizedAmount(t.flatAmountDecimal) === normalizedAmount(u.flatAmountDecimal)
      );
    })
  );
}

function describeTiers(tiers: readonly StripeTier[]): string {
  if (tiers.length === 0) return '[]';
  const parts = tiers.map((t) => {
    const amounts = [`unit ${normalizedAmount(t.unitAmountDecimal)}`];
    if (t.flatAmountDecimal !== undefined) amounts.push(`flat ${normalizedAmount(t.flatAmountDecimal)}`);
    return `≤${t.upTo}: ${amounts.join(' + ')}`;
  });
  return `[${parts.join(', ')}]`;
}

// --- apply -------------------------------------------------------------------------------------------

/**
 * Carries out a plan, meter by meter (meter, then product, then price, which needs both). Refuses a
 * plan with conflicts before changing anything. Safe to run again after a failure part-way: planning
 * again finds what was already made.
 */
export async function applyPush(plan: PushPlan, catalog: StripeCatalog): Promise<PushResult> {
  const conflicts = plan.meters.flatMap((m) =>
    m.meter.action === 'conflict' ? [{ name: m.name, reasons: m.meter.reasons }] : [],
  );
  if (conflicts.length > 0) throw new PushConflictError(conflicts);

  const result: PushResult = { meters: [], applied: [] };
  for (const entry of plan.meters) {
    const step = entry.meter;
    let meterId: string;
    if (step.action === 'create') {
      meterId = (await catalog.createMeter(step.desired)).id;
    } else if (step.action === 'update') {
      meterId = (await catalog.updateMeterDisplayName(step.existing.id, step.desired.displayName)).id;
    } else if (step.action === 'unchanged') {
      meterId = step.existing.id;
    } else {
      throw new Error('unreachable: conflicts were refused above');
    }
    if (step.action !== 'unchanged') result.applied.push(describeMeterStep(step, meterId));
    const applied: AppliedMeter = { name: entry.name, meterId };

    if (entry.product !== undefined) {
      const p = entry.product;
      const spec = { name: p.desired.name, description: p.desired.description };
      if (p.action === 'create') {
        applied.productId = (await catalog.createProduct({ id: p.desired.id, ...spec })).id;
      } else if (p.action === 'update') {
        const reactivate = p.existing.active ? {} : { active: true };
        applied.productId = (await catalog.updateProduct(p.existing.id, { ...spec, ...reactivate })).id;
      } else {
        applied.productId = p.existing.id;
      }
      if (p.action !== 'unchanged') result.applied.push(describeProductStep(p));
    }

    if (entry.price !== undefined) {
      const p = entry.price;
      if (p.action === 'create') {
        const created = await catalog.createPrice({ ...p.desired, meterId });
        applied.priceId = created.id;
        result.applied.push(`${describePriceStep(p)} → ${created.id}`);
      } else {
        applied.priceId = p.existing.id;
      }
    }
    result.meters.push(applied);
  }
  return result;
}

// --- format ------------------------------------------------------------------------------------------

const SIGN = { create: '+', update: '~', unchanged: '=', conflict: '!' } as const;

function describeMeterStep(step: MeterStep, createdId?: string): string {
  const d = step.desired;
  switch (step.action) {
    case 'create':
      return `${SIGN.create} create meter ${d.eventName} (${d.formula})${createdId ? ` → ${createdId}` : ''}`;
    case 'update':
      return `${SIGN.update} update meter ${d.eventName} (${step.existing.id}): ${step.changes.join(', ')}`;
    case 'unchanged':
      return `${SIGN.unchanged} unchanged meter ${d.eventName} (${step.existing.id}, ${d.formula})`;
    case 'conflict':
      return (
        `${SIGN.conflict} conflict meter ${d.eventName}${step.existing ? ` (${step.existing.id})` : ''}: ` +
        `${step.reasons.join('; ')}. Stripe cannot change a meter's event_name, formula or payload keys: ` +
        'deactivate that meter in Stripe, or give this meter another stripe.event_name'
      );
  }
}

function describeProductStep(step: ProductStep): string {
  const id = step.desired.id;
  switch (step.action) {
    case 'create':
      return `${SIGN.create} create product ${id} '${step.desired.name}'`;
    case 'update':
      return `${SIGN.update} update product ${id}: ${step.changes.join(', ')}`;
    case 'unchanged':
      return `${SIGN.unchanged} unchanged product ${id}`;
  }
}

function describePriceStep(step: PriceStep): string {
  const d = step.desired;
  const shape = `${d.currency} ${d.tiersMode} ${describeTiers(d.tiers)} per month`;
  if (step.action === 'unchanged')
    return `${SIGN.unchanged} unchanged price ${d.lookupKey} (${step.existing.id})`;
  const replacing = step.replaces
    ? ` replacing ${step.replaces.id} (${step.reasons.join('; ')}; the old price stays active for its subscriptions)`
    : '';
  return `${SIGN.create} create price ${d.lookupKey}: ${shape}${replacing}`;
}

/** The plan as people read it, one line per step, then a summary line. */
export function formatPlan(plan: PushPlan): string {
  const lines: string[] = [];
  for (const entry of plan.meters) {
    lines.push(`meter ${entry.name}:`);
    lines.push(`  ${describeMeterStep(entry.meter)}`);
    if (entry.product) lines.push(`  ${describeProductStep(entry.product)}`);
    if (entry.price) lines.push(`  ${describePriceStep(entry.price)}`);
  }
  if (plan.skipped.length > 0) lines.push(`(not pushed, no stripe block: ${plan.skipped.join(', ')})`);
  const { create, update, unchanged, conflict } = plan.counts;
  lines.push(
    `Plan: ${create} to create, ${update} to update, ${unchanged} unchanged, ${conflict} conflict(s).`,
  );
  if (conflict > 0) lines.push('Resolve the conflicts before applying: apply refuses while any remain.');
  return lines.join('\n');
}

/** Whether applying the plan would change anything. */
export function planHasChanges(plan: PushPlan): boolean {
  return plan.counts.create + plan.counts.update > 0;
}

export interface PushPlanView {
  meters: {
    name: string;
    steps: { object: 'meter' | 'product' | 'price'; action: MeterStep['action']; line: string }[];
  }[];
  skipped: string[];
  counts: PushPlan['counts'];
  has_changes: boolean;
}

/** The plan as data (GET /v1/admin/stripe/push-plan): each step with the line formatPlan prints for it. */
export function pushPlanView(plan: PushPlan): PushPlanView {
  return {
    meters: plan.meters.map((entry) => ({
      name: entry.name,
      steps: [
        { object: 'meter' as const, action: entry.meter.action, line: describeMeterStep(entry.meter) },
        ...(entry.product
          ? [
              {
                object: 'product' as const,
                action: entry.product.action,
                line: describeProductStep(entry.product),
              },
            ]
          : []),
        ...(entry.price
          ? [{ object: 'price' as const, action: entry.price.action, line: describePriceStep(entry.price) }]
          : []),
      ],
    })),
    skipped: plan.skipped,
    counts: plan.counts,
    has_changes: planHasChanges(plan),
  };
}

// /v1/prices: create, retrieve, update (active, nickname, metadata, lookup_key only: a price's amounts
// are immutable on Stripe), list (lookup_keys, active, product, type, currency). Tiers appear on the
// wire only when asked for with `expand[]=tiers` (`expand[]=data.tiers` on a list), as on Stripe.
import { formatDecimal, isWhole, parseDecimal } from './money.ts';
import { newProduct } from './products.ts';
import {
  applyMetadata,
  arrayParam,
  booleanParam,
  expandList,
  intParam,
  objectParam,
  ok,
  paginate,
  route,
  stringParam,
  type EmulatorRequest,
  type Route,
} from './routing.ts';
import type { EmulatorState, EventCause, Price, PriceTier } from './state.ts';
import { invalidParam, missingParam, StripeEmulatorError, unknownParams } from './stripe-error.ts';

const INTERVALS = ['day', 'week', 'month', 'year'] as const;
const MAX_LOOKUP_KEY = 200;

/** The price as Stripe sends it: `tiers` only when expanded. */
export function renderPrice(price: Price, expandTiers: boolean): Record<string, unknown> {
  const { tiers, ...rest } = price;
  return expandTiers && tiers !== null ? { ...rest, tiers } : rest;
}

export function findPriceById(state: EmulatorState, id: string, param = 'id', status = 404): Price {
  const price = state.prices.get(id);
  if (price === undefined) {
    throw new StripeEmulatorError(
      status,
      'invalid_request_error',
      `No such price: '${id}'`,
      'resource_missing',
      param,
    );
  }
  return price;
}

function findPrice(req: EmulatorRequest): Price {
  return findPriceById(req.state, req.params.id ?? '');
}

/** An integer amount and its decimal twin: exactly one may be given; either fills both fields. */
function amountPair(
  source: Record<string, unknown>,
  integerName: string,
  decimalName: string,
  param: (name: string) => string,
  { wholeOnly = false }: { wholeOnly?: boolean } = {},
): { amount: number | null; decimal: string | null } {
  const integer = intParam(source, integerName, { min: 0, param: param(integerName) });
  const rawDecimal = source[decimalName];
  if (integer !== undefined && rawDecimal !== undefined) {
    throw invalidParam(
      `You may only specify one of these parameters: ${integerName}, ${decimalName}.`,
      param(decimalName),
    );
  }
  if (integer !== undefined) return { amount: integer, decimal: String(integer) };
  if (rawDecimal === undefined) return { amount: null, decimal: null };
  const scaled = typeof rawDecimal === 'string' ? parseDecimal(rawDecimal) : undefined;
  if (scaled === undefined) {
    throw invalidParam(
      `Invalid decimal: ${String(rawDecimal)}. Must be a non-negative decimal with at most 12 decimal places.`,
      param(decimalName),
    );
  }
  if (wholeOnly && !isWhole(scaled)) {
    // Stripe documents flat_amount_decimal as "a decimal value representing an integer".
    throw invalidParam(
      `Invalid ${decimalName}: ${String(rawDecimal)} must represent a whole number of minor units.`,
      param(decimalName),
    );
  }
  const decimal = formatDecimal(scaled);
  return { amount: isWhole(scaled) ? Number(decimal) : null, decimal };
}

function parseTiers(body: Record<string, unknown>): PriceTier[] {
  const raw = arrayParam(body, 'tiers');
  if (raw === undefined || raw.length === 0) throw missingParam('tiers');
  const tiers = raw.map((value, i): PriceTier => {
    const p = (name: string): string => `tiers[${i}][${name}]`;
    if (typeof value !== 'object' || value === null || Array.isArray(value))
      throw invalidParam('Invalid object', `tiers[${i}]`);
    const tier = value as Record<string, unknown>;
    unknownTierParams(tier, i);
    const upTo = tier.up_to;
    if (upTo === undefined) throw missingParam(p('up_to'));
    let up_to: number | null;
    if (upTo === 'inf') up_to = null;
    else if (
      typeof upTo === 'string' &&
      /^\d+$/.test(upTo) &&
      Number(upTo) >= 1 &&
      Number.isSafeInteger(Number(upTo))
    )
      up_to = Number(upTo);
    else throw invalidParam(`Invalid ${p('up_to')}: must be a positive integer or 'inf'.`, p('up_to'));
    const unit = amountPair(tier, 'unit_amount', 'unit_amount_decimal', p);
    const flat = amountPair(tier, 'flat_amount', 'flat_amount_decimal', p, { wholeOnly: true });
    return {
      flat_amount: flat.amount,
      flat_amount_decimal: flat.decimal,
      unit_amount: unit.amount,
      unit_amount_decimal: unit.decimal,
      up_to,
    };
  });
  tiers.forEach((tier, i) => {
    const last = i === tiers.length - 1;
    if (tier.up_to === null && !last)
      throw invalidParam(`Only the last tier may have up_to 'inf'.`, `tiers[${i}][up_to]`);
    if (tier.up_to !== null && last)
      throw invalidParam(`The last tier must have up_to 'inf'.`, `tiers[${i}][up_to]`);
    const previous = tiers[i - 1];
    if (previous?.up_to != null && tier.up_to !== null && tier.up_to <= previous.up_to) {
      throw invalidParam(
        'Tiers must be sorted by up_to in ascending order, without repeats.',
        `tiers[${i}][up_to]`,
      );
    }
  });
  return tiers;
}

function unknownTierParams(tier: Record<string, unknown>, i: number): void {
  for (const key of Object.keys(tier)) {
    if (!['up_to', 'unit_amount', 'unit_amount_decimal', 'flat_amount', 'flat_amount_decimal'].includes(key))
      throw invalidParam(
        `Received unknown parameter: tiers[${i}][${key}]`,
        `tiers[${i}][${key}]`,
        'parameter_unknown',
      );
  }
}

function parseRecurring(state: EmulatorState, body: Record<string, unknown>): Price['recurring'] {
  const recurring = objectParam(body, 'recurring');
  if (recurring === undefined) return null;
  for (const key of Object.keys(recurring)) {
    if (!['interval', 'interval_count', 'usage_type', 'meter'].includes(key))
      throw invalidParam(
        `Received unknown parameter: recurring[${key}]`,
        `recurring[${key}]`,
        'parameter_unknown',
      );
  }
  const interval = stringParam(recurring, 'interval');
  if (interval === undefined) throw missingParam('recurring[interval]');
  if (!(INTERVALS as readonly string[]).includes(interval))
    throw invalidParam(
      `Invalid recurring[interval]: must be one of ${INTERVALS.join(', ')}`,
      'recurring[interval]',
    );
  const count = intParam(recurring, 'interval_count', { min: 1, param: 'recurring[interval_count]' }) ?? 1;
  const usageType = stringParam(recurring, 'usage_type') ?? 'licensed';
  if (usageType !== 'metered' && usageType !== 'licensed')
    throw invalidParam(
      'Invalid recurring[usage_type]: must be one of licensed, metered',
      'recurring[usage_type]',
    );
  const meter = stringParam(recurring, 'meter');
  if (usageType === 'metered' && meter === undefined) {
    // Since 2025-03-31.basil usage records are gone: a metered price must be backed by a meter.
    throw invalidParam(
      'A metered price requires recurring[meter] on this API version.',
      'recurring[meter]',
      'parameter_missing',
    );
  }
  if (meter !== undefined) {
    if (usageType !== 'metered')
      throw invalidParam(
        'recurring[meter] can only be set when recurring[usage_type] is metered.',
        'recurring[meter]',
      );
    if (!state.meters.has(meter))
      throw new StripeEmulatorError(
        400,
        'invalid_request_error',
        `No such billing.meter: '${meter}'`,
        'resource_missing',
        'recurring[meter]',
      );
  }
  return {
    interval: interval as (typeof INTERVALS)[number],
    interval_count: count,
    meter: meter ?? null,
    trial_period_days: null,
    usage_type: usageType,
  };
}

/**
 * A lookup key belongs to one price at a time, archived prices included (Stripe keeps an archived
 * price's key, and a lookup_keys list finds it). `transfer_lookup_key` moves it; the old price's
 * change is emitted as price.updated. Returns the commit step so nothing moves if validation fails.
 */
function claimLookupKey(
  state: EmulatorState,
  key: string | undefined,
  transfer: boolean,
  self: string | undefined,
  cause: EventCause,
): () => void {
  if (key === undefined || key === '') return () => {};
  if (key.length > MAX_LOOKUP_KEY)
    throw invalidParam(`lookup_key may be at most ${MAX_LOOKUP_KEY} characters.`, 'lookup_key');
  const holder = [...state.prices.values()].find((p) => p.lookup_key === key && p.id !== self);
  if (holder === undefined) return () => {};
  if (!transfer) {
    throw invalidParam(
      `A price (\`${holder.id}\`) already uses that lookup key.`,
      'lookup_key',
      'lookup_key_already_exists',
    );
  }
  return () => {
    holder.lookup_key = null;
    state.emit('price.updated', renderPrice(holder, false), cause, { lookup_key: key });
  };
}

const CREATE_PARAMS = [
  'currency',
  'product',
  'product_data',
  'unit_amount',
  'unit_amount_decimal',
  'billing_scheme',
  'tiers_mode',
  'tiers',
  'recurring',
  'lookup_key',
  'transfer_lookup_key',
  'nickname',
  'metadata',
  'active',
  'tax_behavior',
] as const;

export const priceRoutes: Route[] = [
  route('POST', '/v1/prices', (req) => {
    unknownParams(req.body, CREATE_PARAMS);
    const { state, body } = req;
    const currency = stringParam(body, 'currency');
    if (currency === undefined) throw missingParam('currency');
    if (!/^[a-z]{3}$/.test(currency)) throw invalidParam(`Invalid currency: ${currency}`, 'currency');
    let productId = stringParam(body, 'product');
    const productData = objectParam(body, 'product_data');
    if (productId !== undefined && productData !== undefined)
      throw invalidParam(
        'You may only specify one of these parameters: product, product_data.',
        'product_data',
      );
    if (productId === undefined && productData === undefined) throw missingParam('product');
    if (productId !== undefined && !state.products.has(productId)) {
      throw new StripeEmulatorError(
        400,
        'invalid_request_error',
        `No such product: '${productId}'`,
        'resource_missing',
        'product',
      );
    }
    const scheme = stringParam(body, 'billing_scheme') ?? 'per_unit';
    if (scheme !== 'per_unit' && scheme !== 'tiered')
      throw invalidParam('Invalid billing_scheme: must be one of per_unit, tiered', 'billing_scheme');
    const tiersMode = stringParam(body, 'tiers_mode');
    let tiers: PriceTier[] | null = null;
    let unit: { amount: number | null; decimal: string | null } = { amount: null, decimal: null };
    if (scheme === 'tiered') {
      if (tiersMode === undefined) throw missingParam('tiers_mode');
      if (tiersMode !== 'graduated' && tiersMode !== 'volume')
        throw invalidParam('Invalid tiers_mode: must be one of graduated, volume', 'tiers_mode');
      if (body.unit_amount !== undefined || body.unit_amount_decimal !== undefined)
        throw invalidParam(
          'unit_amount cannot be set on a price with billing_scheme=tiered; set it on each tier.',
          'unit_amount',
        );
      tiers = parseTiers(body);
    } else {
      if (tiersMode !== undefined || body.tiers !== undefined)
        throw invalidParam(
          'tiers and tiers_mode require billing_scheme=tiered.',
          tiersMode !== undefined ? 'tiers_mode' : 'tiers',
        );
      unit = amountPair(body, 'unit_amount', 'unit_amount_decimal', (n) => n);
      if (unit.decimal === null) throw missingParam('unit_amount');
    }
    const recurring = parseRecurring(state, body);
    if (tiers !== null && recurring === null)
      throw invalidParam('Tiered pricing is only available for recurring prices.', 'billing_scheme');
    const lookupKey = stringParam(body, 'lookup_key');
    const transfer = booleanParam(body, 'transfer_lookup_key') ?? false;
    const commitLookupKey = claimLookupKey(state, lookupKey, transfer, undefined, req.cause);
    const metadata: Record<string, string> = {};
    applyMetadata(metadata, body.metadata);
    const active = booleanParam(body, 'active') ?? true;
    if (productData !== undefined) {
      const name = stringParam(productData, 'name');
      if (!name) throw missingParam('product_data[name]');
      productId = state.newId('prod');
      state.products.set(productId, newProduct(productId, name, state.nowSeconds()));
    }
    commitLookupKey();
    const nickname = stringParam(body, 'nickname');
    const price: Price = {
      id: state.newId('price'),
      object: 'price',
      active,
      billing_scheme: scheme,
      created: state.nowSeconds(),
      currency,
      custom_unit_amount: null,
      livemode: false,
      lookup_key: lookupKey === undefined || lookupKey === '' ? null : lookupKey,
      metadata,
      nickname: nickname === undefined || nickname === '' ? null : nickname,
      product: productId ?? '',
      recurring,
      tax_behavior: 'unspecified',
      tiers,
      tiers_mode: scheme === 'tiered' ? (tiersMode as 'graduated' | 'volume') : null,
      transform_quantity: null,
      type: recurring === null ? 'one_time' : 'recurring',
      unit_amount: unit.amount,
      unit_amount_decimal: unit.decimal,
    };
    state.prices.set(price.id, price);
    state.emit('price.created', renderPrice(price, false), req.cause);
    return ok(renderPrice(price, expandList(body).includes('tiers')));
  }),
  route('GET', '/v1/prices/:id', (req) => {
    unknownParams(req.query, []);
    return ok(renderPrice(findPrice(req), expandList(req.query).includes('tiers')));
  }),
  route('POST', '/v1/prices/:id', (req) => {
    unknownParams(req.body, ['active', 'nickname', 'metadata', 'lookup_key', 'transfer_lookup_key']);
    const price = findPrice(req);
    const before = structuredClone(price);
    const lookupKey = stringParam(req.body, 'lookup_key');
    const transfer = booleanParam(req.body, 'transfer_lookup_key') ?? false;
    const active = booleanParam(req.body, 'active');
    const commitLookupKey = claimLookupKey(req.state, lookupKey, transfer, price.id, req.cause);
    const scratch = { ...price.metadata };
    applyMetadata(scratch, req.body.metadata);
    commitLookupKey();
    price.metadata = scratch;
    if (active !== undefined) price.active = active;
    const nickname = stringParam(req.body, 'nickname');
    if (nickname !== undefined) price.nickname = nickname === '' ? null : nickname;
    if (lookupKey !== undefined) price.lookup_key = lookupKey === '' ? null : lookupKey;
    const previous: Record<string, unknown> = {};
    for (const key of ['active', 'nickname', 'lookup_key', 'metadata'] as const)
      if (JSON.stringify(before[key]) !== JSON.stringify(price[key])) previous[key] = before[key];
    if (Object.keys(previous).length > 0)
      req.state.emit('price.updated', renderPrice(price, false), req.cause, previous);
    return ok(renderPrice(price, expandList(req.body).includes('tiers')));
  }),
  route('GET', '/v1/prices', (req) => {
    unknownParams(req.query, [
      'limit',
      'starting_after',
      'ending_before',
      'active',
      'product',
      'lookup_keys',
      'type',
      'currency',
      'recurring',
    ]);
    const active = booleanParam(req.query, 'active');
    const product = stringParam(req.query, 'product');
    const type = stringParam(req.query, 'type');
    const currency = stringParam(req.query, 'currency');
    const rawKeys = arrayParam(req.query, 'lookup_keys');
    const lookupKeys = rawKeys?.filter((k): k is string => typeof k === 'string');
    if (lookupKeys !== undefined && lookupKeys.length > 10)
      throw invalidParam('lookup_keys can hold at most 10 keys.', 'lookup_keys');
    const recurring = objectParam(req.query, 'recurring') ?? {};
    const meter = stringParam(recurring, 'meter');
    const usageType = stringParam(recurring, 'usage_type');
    const interval = stringParam(recurring, 'interval');
    const all = [...req.state.prices.values()]
      .reverse()
      .filter(
        (p) =>
          (active === undefined || p.active === active) &&
          (product === undefined || p.product === product) &&
          (type === undefined || p.type === type) &&
          (currency === undefined || p.currency === currency) &&
          (lookupKeys === undefined || (p.lookup_key !== null && lookupKeys.includes(p.lookup_key))) &&
          (meter === undefined || p.recurring?.meter === meter) &&
          (usageType === undefined || p.recurring?.usage_type === usageType) &&
          (interval === undefined || p.recurring?.interval === interval),
      );
    const expandTiers = expandList(req.query).includes('data.tiers');
    return paginate('/v1/prices', req.query, all, (p) => renderPrice(p, expandTiers));
  }),
];

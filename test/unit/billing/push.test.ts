import { describe, expect, it } from 'vitest';
import { meterSchema, type MeterDefinition, type MeterInput } from '../../../src/meters/meter-schema.ts';
import { InMemoryStripe, stripeErrors } from '../../../src/billing/stripe/in-memory-stripe.ts';
import {
  applyPush,
  formatPlan,
  planHasChanges,
  planPush,
  PushConflictError,
  stripeFormulaFor,
} from '../../../src/billing/stripe/push.ts';

const creditScore = (overrides: Partial<MeterInput> = {}): MeterDefinition =>
  meterSchema.parse({
    name: 'retrieve-credit-score',
    description: 'Successful /RetrieveCreditScore calls',
    filter: { routes: ['/RetrieveCreditScore'], status: 200 },
    aggregation: { type: 'count' },
    unit: 'calls',
    stripe: { event_name: 'retrieve_credit_score' },
    pricing: {
      currency: 'usd',
      tiers_mode: 'graduated',
      tiers: [
        { up_to: 100, unit_amount_decimal: '500' },
        { up_to: 1000, unit_amount_decimal: '300' },
        { up_to: 'inf', unit_amount_decimal: '200' },
      ],
    },
    ...overrides,
  });

const activeUsers = (): MeterDefinition =>
  meterSchema.parse({
    name: 'monthly-active-users',
    description: 'Distinct users',
    aggregation: { type: 'unique_count', value: 'user_id' },
    unit: 'users',
    stripe: { event_name: 'monthly_active_users' },
  });

const noStripe = (): MeterDefinition =>
  meterSchema.parse({
    name: 'response-bytes',
    description: 'Bytes',
    aggregation: { type: 'sum', value: 'response_bytes' },
    unit: 'bytes',
  });

describe('stripeFormulaFor', () => {
  it('sends additive meters to sum meters and the others to last meters', () => {
    expect(
      ['count', 'sum', 'unique_count', 'min', 'max', 'latest'].map((t) => stripeFormulaFor(t as never)),
    ).toEqual(['sum', 'sum', 'last', 'last', 'last', 'last']);
  });
});

describe('stripe push on the in-memory Stripe', () => {
  it('creates meters, the product and the price, then plans everything unchanged', async () => {
    const stripe = new InMemoryStripe();
    const meters = [creditScore(), activeUsers(), noStripe()];
    const plan = await planPush(meters, stripe);
    expect(plan.counts).toEqual({ create: 4, update: 0, unchanged: 0, conflict: 0 });
    expect(plan.skipped).toEqual(['response-bytes']);
    const text = formatPlan(plan);
    expect(text).toContain('+ create meter retrieve_credit_score (sum)');
    expect(text).toContain('+ create meter monthly_active_users (last)');
    expect(text).toContain("+ create product bm_retrieve-credit-score 'retrieve-credit-score'");
    expect(text).toContain('+ create price billing-meter:retrieve-credit-score: usd graduated');
    expect(text).toContain('Plan: 4 to create, 0 to update, 0 unchanged, 0 conflict(s).');

    const result = await applyPush(plan, stripe);
    expect(result.applied).toHaveLength(4);
    const [meter] = [...stripe.meters.values()].filter((m) => m.eventName === 'retrieve_credit_score');
    expect(meter).toMatchObject({
      displayName: 'retrieve-credit-score',
      formula: 'sum',
      customerPayloadKey: 'stripe_customer_id',
      valuePayloadKey: 'value',
      status: 'active',
    });
    expect(stripe.products.get('bm_retrieve-credit-score')).toMatchObject({
      name: 'retrieve-credit-score',
      description: 'Successful /RetrieveCreditScore calls',
      active: true,
    });
    const [price] = [...stripe.prices.values()];
    expect(price).toMatchObject({
      lookupKey: 'billing-meter:retrieve-credit-score',
      product: 'bm_retrieve-credit-score',
      meterId: meter!.id,
      currency: 'usd',
      interval: 'month',
      usageType: 'metered',
      tiersMode: 'graduated',
      tiers: [
        { upTo: 100, unitAmountDecimal: '500' },
        { upTo: 1000, unitAmountDecimal: '300' },
        { upTo: 'inf', unitAmountDecimal: '200' },
      ],
    });
    expect(result.meters.find((m) => m.name === 'retrieve-credit-score')).toEqual({
      name: 'retrieve-credit-score',
      meterId: meter!.id,
      productId: 'bm_retrieve-credit-score',
      priceId: price!.id,
    });

    const again = await planPush(meters, stripe);
    expect(again.counts).toEqual({ create: 0, update: 0, unchanged: 4, conflict: 0 });
    expect(planHasChanges(again)).toBe(false);
    expect(formatPlan(again)).toContain('= unchanged meter retrieve_credit_score');
    const second = await applyPush(again, stripe);
    expect(second.applied).toEqual([]);
    expect(stripe.meters.size).toBe(2);
    expect(stripe.prices.size).toBe(1);
  });

  it('treats equal amounts written differently as unchanged (500 == 500.0, absent flat == 0)', async () => {
    const stripe = new InMemoryStripe();
    await applyPush(await planPush([creditScore()], stripe), stripe);
    const [price] = [...stripe.prices.values()];
    price!.tiers = [
      { upTo: 100, unitAmountDecimal: '500.0', flatAmountDecimal: '0' },
      { upTo: 1000, unitAmountDecimal: '300.000' },
      { upTo: 'inf', unitAmountDecimal: '200' },
    ];
    const plan = await planPush([creditScore()], stripe);
    expect(plan.meters[0]?.price?.action).toBe('unchanged');
  });

  it('creates a new price (transferring the lookup key) when the pricing changes', async () => {
    const stripe = new InMemoryStripe();
    await applyPush(await planPush([creditScore()], stripe), stripe);
    const [old] = [...stripe.prices.values()];
    const changed = creditScore({
      pricing: {
        currency: 'usd',
        tiers_mode: 'graduated',
        tiers: [
          { up_to: 100, unit_amount_decimal: '450' },
          { up_to: 'inf', unit_amount_decimal: '200', flat_amount_decimal: '1000' },
        ],
      },
    });
    const plan = await planPush([changed], stripe);
    expect(plan.counts).toEqual({ create: 1, update: 0, unchanged: 2, conflict: 0 });
    const step = plan.meters[0]?.price;
    expect(step).toMatchObject({ action: 'create', replaces: { id: old!.id } });
    expect(formatPlan(plan)).toMatch(
      /\+ create price billing-meter:retrieve-credit-score: .* replacing price_fake\d+ \(tiers are/,
    );

    await applyPush(plan, stripe);
    expect(stripe.prices.size).toBe(2);
    expect(stripe.prices.get(old!.id)).toMatchObject({ lookupKey: null, active: true });
    const current = [...stripe.prices.values()].find(
      (p) => p.lookupKey === 'billing-meter:retrieve-credit-score',
    );
    expect(current?.tiers).toEqual([
      { upTo: 100, unitAmountDecimal: '450' },
      { upTo: 'inf', unitAmountDecimal: '200', flatAmountDecimal: '1000' },
    ]);
    expect((await planPush([changed], stripe)).counts.create).toBe(0);

    // volume vs graduated and another currency are price changes too
    const volume = creditScore({
      pricing: { currency: 'eur', tiers_mode: 'volume', tiers: [{ up_to: 'inf', unit_amount_decimal: '1' }] },
    });
    const reasons = (await planPush([volume], stripe)).meters[0]?.price;
    expect(reasons?.action === 'create' && reasons.reasons.join('; ')).toMatch(
      /currency is usd, not eur.*tiers_mode is graduated, not volume/,
    );
  });

  it('updates a display name and a product in place', async () => {
    const stripe = new InMemoryStripe();
    await applyPush(await planPush([creditScore()], stripe), stripe);
    const [meter] = [...stripe.meters.values()];
    await stripe.updateMeterDisplayName(meter!.id, 'Old name');
    await stripe.updateProduct('bm_retrieve-credit-score', {
      name: 'old',
      description: 'old',
      active: false,
    });
    const plan = await planPush([creditScore()], stripe);
    expect(plan.counts).toEqual({ create: 0, update: 2, unchanged: 1, conflict: 0 });
    expect(formatPlan(plan)).toContain(
      `~ update meter retrieve_credit_score (${meter!.id}): display_name 'Old name' → 'retrieve-credit-score'`,
    );
    expect(formatPlan(plan)).toContain(
      "~ update product bm_retrieve-credit-score: name 'old' → 'retrieve-credit-score', description, reactivate",
    );
    await applyPush(plan, stripe);
    expect(stripe.meters.get(meter!.id)?.displayName).toBe('retrieve-credit-score');
    expect(stripe.products.get('bm_retrieve-credit-score')).toMatchObject({
      name: 'retrieve-credit-score',
      active: true,
    });
    expect((await planPush([creditScore()], stripe)).counts.unchanged).toBe(3);
  });

  it('reports a meter whose formula or keys cannot change as a conflict, and apply refuses', async () => {
    const stripe = new InMemoryStripe();
    const existing = await stripe.createMeter({
      displayName: 'Credit score',
      eventName: 'retrieve_credit_score',
      formula: 'last',
      customerPayloadKey: 'customer',
      valuePayloadKey: 'value',
    });
    const plan = await planPush([creditScore(), activeUsers()], stripe);
    expect(plan.meters[0]?.meter).toMatchObject({ action: 'conflict', existing: { id: existing.id } });
    expect(plan.counts.conflict).toBe(1);
    const text = formatPlan(plan);
    expect(text).toContain(
      `! conflict meter retrieve_credit_score (${existing.id}): formula is last, the meter needs sum; customer payload key is 'customer', not 'stripe_customer_id'`,
    );
    expect(text).toContain('apply refuses');
    const calls = stripe.calls.length;
    const error = await applyPush(plan, stripe).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PushConflictError);
    expect((error as PushConflictError).conflicts).toEqual([
      { name: 'retrieve-credit-score', reasons: expect.any(Array) },
    ]);
    // nothing was changed, not even the meter without a conflict
    expect(stripe.calls.length).toBe(calls);
    expect(stripe.meters.size).toBe(1);
  });

  it('ignores inactive meters on the same event name and refuses two meters pushing one event name', async () => {
    const stripe = new InMemoryStripe();
    const old = await stripe.createMeter({
      displayName: 'old',
      eventName: 'retrieve_credit_score',
      formula: 'last',
      customerPayloadKey: 'stripe_customer_id',
      valuePayloadKey: 'value',
    });
    stripe.deactivateMeter(old.id);
    const plan = await planPush([creditScore()], stripe);
    expect(plan.meters[0]?.meter.action).toBe('create');

    const twin = creditScore({ name: 'credit-score-twin', pricing: undefined });
    const twins = await planPush([creditScore(), twin], stripe);
    expect(twins.meters[1]?.meter).toMatchObject({
      action: 'conflict',
      reasons: ["event_name 'retrieve_credit_score' is already pushed by meter 'retrieve-credit-score'"],
    });
  });

  it('is safe to run again after a failure part-way through apply', async () => {
    const stripe = new InMemoryStripe();
    stripe.failNext(1, stripeErrors.server(), { operation: 'createPrice' });
    const plan = await planPush([creditScore()], stripe);
    await expect(applyPush(plan, stripe)).rejects.toMatchObject({ retryable: true });
    expect(stripe.prices.size).toBe(0);
    const resumed = await planPush([creditScore()], stripe);
    expect(resumed.counts).toEqual({ create: 1, update: 0, unchanged: 2, conflict: 0 });
    await applyPush(resumed, stripe);
    expect((await planPush([creditScore()], stripe)).counts).toEqual({
      create: 0,
      update: 0,
      unchanged: 3,
      conflict: 0,
    });
  });

  it('plans nothing, and calls nothing, for meters without a stripe block', async () => {
    const stripe = new InMemoryStripe();
    const plan = await planPush([noStripe()], stripe);
    expect(plan.meters).toEqual([]);
    expect(stripe.calls).toEqual([]);
    expect(formatPlan(plan)).toContain('(not pushed, no stripe block: response-bytes)');
  });
});

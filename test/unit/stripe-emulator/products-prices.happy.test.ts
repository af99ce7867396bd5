import { afterEach, describe, expect, it } from 'vitest';
import Stripe from 'stripe';
import type { StripeEmulator } from '../../support/stripe-emulator/index.ts';
import { customerAndMeter, emulatorWithClient, seconds, T0, WORKED_EXAMPLE_TIERS } from './support.ts';

describe('stripe emulator, driven by stripe-node: products and prices', () => {
  let emulator: StripeEmulator;
  let stripe: Stripe;
  afterEach(async () => emulator.stop());

  it('creates a product under a caller-chosen id, then retrieves, updates and lists it', async () => {
    ({ emulator, stripe } = await emulatorWithClient());
    const product = await stripe.products.create({
      id: 'credit_score_api',
      name: 'Credit score API',
      metadata: { meter: 'credit_score' },
    });
    expect(product).toMatchObject({
      id: 'credit_score_api',
      object: 'product',
      active: true,
      livemode: false,
      name: 'Credit score API',
      description: null,
      created: seconds(T0),
      metadata: { meter: 'credit_score' },
    });
    const updated = await stripe.products.update('credit_score_api', {
      description: 'Calls that returned 200',
      active: false,
      metadata: { owner: 'billing' },
    });
    expect(updated).toMatchObject({
      description: 'Calls that returned 200',
      active: false,
      metadata: { meter: 'credit_score', owner: 'billing' },
    });
    expect((await stripe.products.retrieve('credit_score_api')).description).toBe('Calls that returned 200');
    const generated = await stripe.products.create({ name: 'Other' });
    expect(generated.id).toMatch(/^prod_/);
    expect((await stripe.products.list()).data.map((p) => p.id)).toEqual([generated.id, 'credit_score_api']);
    expect((await stripe.products.list({ active: false })).data.map((p) => p.id)).toEqual([
      'credit_score_api',
    ]);
  });

  it('creates a metered graduated price on a meter; tiers come back only with expand[]=tiers', async () => {
    ({ emulator, stripe } = await emulatorWithClient());
    const { meter } = await customerAndMeter(stripe);
    const product = await stripe.products.create({ name: 'Credit score API' });
    const price = await stripe.prices.create({
      currency: 'usd',
      product: product.id,
      nickname: 'graduated monthly',
      lookup_key: 'credit_score_monthly',
      billing_scheme: 'tiered',
      tiers_mode: 'graduated',
      tiers: WORKED_EXAMPLE_TIERS,
      recurring: { interval: 'month', usage_type: 'metered', meter: meter.id },
      metadata: { plan: 'v1' },
    });
    expect(price).toMatchObject({
      object: 'price',
      active: true,
      billing_scheme: 'tiered',
      tiers_mode: 'graduated',
      currency: 'usd',
      product: product.id,
      type: 'recurring',
      lookup_key: 'credit_score_monthly',
      nickname: 'graduated monthly',
      unit_amount: null,
      unit_amount_decimal: null,
      recurring: { interval: 'month', interval_count: 1, usage_type: 'metered', meter: meter.id },
      metadata: { plan: 'v1' },
    });
    expect(price.id).toMatch(/^price_/);
    expect(price.tiers).toBeUndefined();
    expect((await stripe.prices.retrieve(price.id)).tiers).toBeUndefined();
    const expanded = await stripe.prices.retrieve(price.id, { expand: ['tiers'] });
    // stripe-node 23 turns *_decimal strings into its Decimal type.
    expect(
      expanded.tiers?.map((t) => [t.up_to, t.unit_amount, t.unit_amount_decimal?.toString(), t.flat_amount]),
    ).toEqual([
      [100, 500, '500', null],
      [1000, 300, '300', null],
      [null, 200, '200', null],
    ]);
    expect(emulator.requests.at(-1)?.query).toEqual({ expand: ['tiers'] });
    const listed = await stripe.prices.list({ expand: ['data.tiers'] });
    expect(listed.data[0]?.tiers).toHaveLength(3);
  });

  it('keeps decimal unit and flat amounts exact', async () => {
    ({ emulator, stripe } = await emulatorWithClient());
    const { meter } = await customerAndMeter(stripe);
    const product = await stripe.products.create({ name: 'Tokens' });
    const price = await stripe.prices.create({
      currency: 'usd',
      product: product.id,
      billing_scheme: 'tiered',
      tiers_mode: 'volume',
      tiers: [
        {
          up_to: 1000,
          unit_amount_decimal: Stripe.Decimal.from('0.125'),
          flat_amount_decimal: Stripe.Decimal.from('250'),
        },
        { up_to: 'inf', unit_amount_decimal: Stripe.Decimal.from('0.000000000001') },
      ],
      recurring: { interval: 'month', usage_type: 'metered', meter: meter.id },
      expand: ['tiers'],
    });
    expect(emulator.requests.at(-1)?.rawBody).toContain('tiers[0][unit_amount_decimal]=0.125');
    expect(
      price.tiers?.map((t) => [
        t.unit_amount,
        t.unit_amount_decimal?.toString(),
        t.flat_amount,
        t.flat_amount_decimal?.toString(),
      ]),
    ).toEqual([
      [null, '0.125', 250, '250'],
      [null, '0.000000000001', null, undefined],
    ]);
    const perUnit = await stripe.prices.create({
      currency: 'usd',
      product: product.id,
      unit_amount_decimal: Stripe.Decimal.from('0.5'),
      recurring: { interval: 'month', usage_type: 'metered', meter: meter.id },
    });
    expect([perUnit.billing_scheme, perUnit.unit_amount, perUnit.unit_amount_decimal?.toString()]).toEqual([
      'per_unit',
      null,
      '0.5',
    ]);
  });

  it('finds prices by lookup_keys, and moves a lookup key with transfer_lookup_key', async () => {
    ({ emulator, stripe } = await emulatorWithClient());
    const product = await stripe.products.create({ name: 'Seats' });
    const base = { currency: 'usd', product: product.id, recurring: { interval: 'month' as const } };
    const old = await stripe.prices.create({ ...base, unit_amount: 1000, lookup_key: 'seats' });
    const other = await stripe.prices.create({ ...base, unit_amount: 10, lookup_key: 'other' });
    const replacement = await stripe.prices.create({
      ...base,
      unit_amount: 1200,
      lookup_key: 'seats',
      transfer_lookup_key: true,
    });
    expect(replacement.lookup_key).toBe('seats');
    expect((await stripe.prices.retrieve(old.id)).lookup_key).toBeNull();
    const found = await stripe.prices.list({ lookup_keys: ['seats', 'other'] });
    expect(emulator.requests.at(-1)?.query).toMatchObject({ lookup_keys: ['seats', 'other'] });
    expect(found.data.map((p) => p.id).sort()).toEqual([replacement.id, other.id].sort());
    const archived = await stripe.prices.update(old.id, {
      active: false,
      nickname: 'v1',
      metadata: { gone: 'yes' },
    });
    expect(archived).toMatchObject({ active: false, nickname: 'v1', metadata: { gone: 'yes' } });
    expect((await stripe.prices.list({ active: true })).data.map((p) => p.id)).not.toContain(old.id);
    expect((await stripe.prices.list({ product: product.id, limit: 2 })).has_more).toBe(true);
    // Moving a key back with an update works the same way.
    const back = await stripe.prices.update(old.id, { lookup_key: 'seats', transfer_lookup_key: true });
    expect(back.lookup_key).toBe('seats');
    expect((await stripe.prices.retrieve(replacement.id)).lookup_key).toBeNull();
  });
});

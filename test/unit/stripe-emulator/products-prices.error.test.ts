import { afterEach, describe, expect, it } from 'vitest';
import Stripe from 'stripe';
import type { StripeEmulator } from '../../support/stripe-emulator/index.ts';
import { customerAndMeter, emulatorWithClient } from './support.ts';

describe('stripe emulator, driven by stripe-node: product and price refusals', () => {
  let emulator: StripeEmulator;
  let stripe: Stripe;
  afterEach(async () => emulator.stop());

  const tiered = (
    product: string,
    meter: string,
    tiers: Stripe.PriceCreateParams.Tier[],
  ): Stripe.PriceCreateParams => ({
    currency: 'usd',
    product,
    billing_scheme: 'tiered',
    tiers_mode: 'graduated',
    tiers,
    recurring: { interval: 'month', usage_type: 'metered', meter },
  });

  it('refuses a product id that is taken with 400 resource_already_exists', async () => {
    ({ emulator, stripe } = await emulatorWithClient());
    await stripe.products.create({ id: 'credit_score_api', name: 'A' });
    await expect(stripe.products.create({ id: 'credit_score_api', name: 'B' })).rejects.toMatchObject({
      statusCode: 400,
      type: 'StripeInvalidRequestError',
      code: 'resource_already_exists',
    });
    expect((await stripe.products.retrieve('credit_score_api')).name).toBe('A');
    await expect(stripe.products.retrieve('nope')).rejects.toMatchObject({
      statusCode: 404,
      code: 'resource_missing',
    });
    await expect(stripe.products.create({} as Stripe.ProductCreateParams)).rejects.toMatchObject({
      statusCode: 400,
      code: 'parameter_missing',
      param: 'name',
    });
  });

  it('refuses tiers that do not ascend or do not end with inf, and amounts given twice', async () => {
    ({ emulator, stripe } = await emulatorWithClient());
    const { meter } = await customerAndMeter(stripe);
    const { id: product } = await stripe.products.create({ name: 'P' });
    const cases: [Stripe.PriceCreateParams.Tier[], string][] = [
      [
        [
          { up_to: 100, unit_amount: 5 },
          { up_to: 50, unit_amount: 3 },
          { up_to: 'inf', unit_amount: 1 },
        ],
        'tiers[1][up_to]',
      ],
      [
        [
          { up_to: 100, unit_amount: 5 },
          { up_to: 100, unit_amount: 3 },
          { up_to: 'inf', unit_amount: 1 },
        ],
        'tiers[1][up_to]',
      ],
      [
        [
          { up_to: 100, unit_amount: 5 },
          { up_to: 1000, unit_amount: 3 },
        ],
        'tiers[1][up_to]',
      ],
      [
        [
          { up_to: 'inf', unit_amount: 5 },
          { up_to: 'inf', unit_amount: 3 },
        ],
        'tiers[0][up_to]',
      ],
      [
        [{ up_to: 'inf', unit_amount: 5, unit_amount_decimal: Stripe.Decimal.from('5') }],
        'tiers[0][unit_amount_decimal]',
      ],
      // Stripe documents flat_amount_decimal as representing a whole number of minor units.
      [[{ up_to: 'inf', flat_amount_decimal: Stripe.Decimal.from('10.5') }], 'tiers[0][flat_amount_decimal]'],
      [
        [{ up_to: 'inf', unit_amount_decimal: Stripe.Decimal.from('0.0000000000001') }],
        'tiers[0][unit_amount_decimal]',
      ],
    ];
    for (const [tiers, param] of cases) {
      await expect(stripe.prices.create(tiered(product, meter.id, tiers))).rejects.toMatchObject({
        statusCode: 400,
        param,
      });
    }
    expect(emulator.state.prices.size).toBe(0);
  });

  it('needs a meter for a metered price, an existing one, and an existing product', async () => {
    ({ emulator, stripe } = await emulatorWithClient());
    const { id: product } = await stripe.products.create({ name: 'P' });
    await expect(
      stripe.prices.create({
        currency: 'usd',
        product,
        unit_amount: 5,
        recurring: { interval: 'month', usage_type: 'metered' },
      }),
    ).rejects.toMatchObject({ statusCode: 400, param: 'recurring[meter]' });
    await expect(
      stripe.prices.create({
        currency: 'usd',
        product,
        unit_amount: 5,
        recurring: { interval: 'month', usage_type: 'metered', meter: 'mtr_nope' },
      }),
    ).rejects.toMatchObject({ statusCode: 400, code: 'resource_missing', param: 'recurring[meter]' });
    await expect(
      stripe.prices.create({ currency: 'usd', product: 'prod_nope', unit_amount: 5 }),
    ).rejects.toMatchObject({ statusCode: 400, code: 'resource_missing', param: 'product' });
    await expect(
      stripe.prices.create({ currency: 'usd', product, billing_scheme: 'tiered', tiers_mode: 'graduated' }),
    ).rejects.toMatchObject({ statusCode: 400, param: 'tiers' });
    await expect(stripe.prices.create({ currency: 'usd', product })).rejects.toMatchObject({
      statusCode: 400,
      param: 'unit_amount',
    });
  });

  it('refuses a second price with a taken lookup_key unless transfer_lookup_key is set (archived prices too)', async () => {
    ({ emulator, stripe } = await emulatorWithClient());
    const { id: product } = await stripe.products.create({ name: 'P' });
    const first = await stripe.prices.create({ currency: 'usd', product, unit_amount: 5, lookup_key: 'k' });
    await expect(
      stripe.prices.create({ currency: 'usd', product, unit_amount: 6, lookup_key: 'k' }),
    ).rejects.toMatchObject({
      statusCode: 400,
      param: 'lookup_key',
      message: expect.stringContaining(first.id),
    });
    await stripe.prices.update(first.id, { active: false });
    await expect(
      stripe.prices.create({ currency: 'usd', product, unit_amount: 6, lookup_key: 'k' }),
    ).rejects.toMatchObject({ statusCode: 400, param: 'lookup_key' });
    const second = await stripe.prices.create({ currency: 'usd', product, unit_amount: 7 });
    await expect(stripe.prices.update(second.id, { lookup_key: 'k' })).rejects.toMatchObject({
      statusCode: 400,
      param: 'lookup_key',
    });
    expect((await stripe.prices.retrieve(first.id)).lookup_key).toBe('k');
  });

  it('keeps a price immutable apart from active, nickname, metadata and lookup_key', async () => {
    ({ emulator, stripe } = await emulatorWithClient());
    const { id: product } = await stripe.products.create({ name: 'P' });
    const price = await stripe.prices.create({ currency: 'usd', product, unit_amount: 5 });
    for (const change of [{ unit_amount: 6 }, { currency: 'eur' }, { tiers_mode: 'volume' }]) {
      await expect(stripe.prices.update(price.id, change as never)).rejects.toMatchObject({
        statusCode: 400,
        code: 'parameter_unknown',
      });
    }
    expect((await stripe.prices.retrieve(price.id)).unit_amount).toBe(5);
    await expect(stripe.prices.retrieve('price_nope')).rejects.toMatchObject({ statusCode: 404 });
  });
});

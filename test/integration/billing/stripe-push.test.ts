import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startStripeEmulator, type StripeEmulator } from '../../support/stripe-emulator/index.ts';
import { loadMeters } from '../../../src/meters/load-meters.ts';
import type { MeterDefinition } from '../../../src/meters/meter-schema.ts';
import { createStripeGateway, type StripeGateway } from '../../../src/adapters/stripe/stripe-gateway.ts';
import { applyPush, formatPlan, planHasChanges, planPush } from '../../../src/billing/stripe/push.ts';

// `stripe push` of the shipped meters (meters/*.yaml) through the real gateway to the emulator.

const METERS_DIR = fileURLToPath(new URL('../../../meters/', import.meta.url));

let emulator: StripeEmulator;
let stripe: StripeGateway;
let meters: MeterDefinition[];

beforeEach(async () => {
  emulator = await startStripeEmulator();
  stripe = createStripeGateway({
    secretKey: 'sk_test_push',
    api: { protocol: 'http', host: emulator.host, port: emulator.port },
    rateLimitPerSecond: 1000,
    maxAttempts: 3,
    timeoutMs: 5000,
  });
  const loaded = await loadMeters(METERS_DIR);
  expect(loaded.errors).toEqual([]);
  meters = loaded.meters.map((m) => m.definition);
});

afterEach(async () => emulator.stop());

describe('stripe push against the emulator', () => {
  it('pushes the shipped meters, and a second plan shows everything unchanged', async () => {
    const first = await planPush(meters, stripe);
    const pushed = meters.filter((m) => m.stripe !== undefined);
    expect(pushed.length).toBeGreaterThan(0);
    expect(first.counts.conflict).toBe(0);
    expect(first.counts.unchanged).toBe(0);
    expect(formatPlan(first)).toContain('+ create meter retrieve_credit_score (sum)');

    const result = await applyPush(first, stripe);
    expect(result.meters.map((m) => m.name)).toEqual(pushed.map((m) => m.name));

    const creditScore = result.meters.find((m) => m.name === 'retrieve-credit-score');
    expect(creditScore?.productId).toBe('bm_retrieve-credit-score');
    const meter = emulator.state.meters.get(creditScore!.meterId);
    expect(meter).toMatchObject({
      display_name: 'retrieve-credit-score',
      event_name: 'retrieve_credit_score',
      default_aggregation: { formula: 'sum' },
      customer_mapping: { type: 'by_id', event_payload_key: 'stripe_customer_id' },
      value_settings: { event_payload_key: 'value' },
    });
    const [price] = await stripe.pricesByLookupKey(['billing-meter:retrieve-credit-score']);
    expect(price).toMatchObject({
      id: creditScore!.priceId,
      product: 'bm_retrieve-credit-score',
      currency: 'usd',
      interval: 'month',
      usageType: 'metered',
      meterId: creditScore!.meterId,
      tiersMode: 'graduated',
      tiers: [
        { upTo: 100, unitAmountDecimal: '500' },
        { upTo: 1000, unitAmountDecimal: '300' },
        { upTo: 'inf', unitAmountDecimal: '200' },
      ],
    });

    const second = await planPush(meters, stripe);
    expect(planHasChanges(second)).toBe(false);
    expect(second.counts).toEqual({ create: 0, update: 0, unchanged: first.counts.create, conflict: 0 });
    const text = formatPlan(second);
    expect(text).not.toMatch(/^\s*[+~!]/m);
    const applied = await applyPush(second, stripe);
    expect(applied.applied).toEqual([]);
    expect(applied.meters).toEqual(result.meters);
  });

  it('creates a new price when the tiers change, and is unchanged again after', async () => {
    await applyPush(await planPush(meters, stripe), stripe);
    const changed = meters.map((m) =>
      m.pricing === undefined
        ? m
        : {
            ...m,
            pricing: {
              ...m.pricing,
              tiers: m.pricing.tiers.map((t, i) => (i === 0 ? { ...t, unit_amount_decimal: '450.00' } : t)),
            },
          },
    );
    const plan = await planPush(changed, stripe);
    expect(plan.counts.create).toBe(1);
    expect(formatPlan(plan)).toMatch(
      /\+ create price billing-meter:retrieve-credit-score: .* replacing price_/,
    );
    await applyPush(plan, stripe);
    expect(planHasChanges(await planPush(changed, stripe))).toBe(false);
    const [price] = await stripe.pricesByLookupKey(['billing-meter:retrieve-credit-score']);
    expect(price?.tiers[0]).toEqual({ upTo: 100, unitAmountDecimal: '450' });
  });
});

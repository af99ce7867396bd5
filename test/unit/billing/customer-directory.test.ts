import { describe, expect, it } from 'vitest';
import {
  chooseMapping,
  CustomerMappingService,
  nextVersion,
} from '../../../src/billing/stripe/customer-directory.ts';
import { InMemoryCustomerMappingStore } from '../../../src/billing/stripe/in-memory-billing-stores.ts';
import { DomainError } from '../../../src/errors.ts';

function setup() {
  const store = new InMemoryCustomerMappingStore();
  let nowMs = Date.UTC(2026, 10, 2, 12);
  const mappings = new CustomerMappingService(store, () => new Date(nowMs));
  return { store, mappings, advance: (ms: number) => (nowMs += ms) };
}

describe('customer mapping precedence', () => {
  it('explicit mapping > Moesif company metadata > the key itself when it is a cus_ id', async () => {
    const { store, mappings } = setup();
    store.moesif.set('acme', 'cus_Moesif');
    store.moesif.set('cus_Key1', 'cus_FromMoesif');
    expect(await mappings.get('acme')).toEqual({ stripeCustomerId: 'cus_Moesif', source: 'moesif' });
    expect(await mappings.get('cus_Key2')).toEqual({ stripeCustomerId: 'cus_Key2', source: 'customer_id' });
    expect(await mappings.get('cus_Key1')).toEqual({ stripeCustomerId: 'cus_FromMoesif', source: 'moesif' });
    expect(await mappings.get('nobody')).toBeUndefined();

    await mappings.map('acme', 'cus_Admin', 'admin');
    expect(await mappings.get('acme')).toEqual({ stripeCustomerId: 'cus_Admin', source: 'admin' });
    expect(await mappings.resolve(['acme', 'cus_Key2', 'nobody', 'cus_Key1', 'acme'])).toEqual(
      new Map([
        ['acme', 'cus_Admin'],
        ['cus_Key2', 'cus_Key2'],
        ['cus_Key1', 'cus_FromMoesif'],
      ]),
    );
  });

  it('the most recent explicit mapping wins, admin or webhook', async () => {
    const { mappings, advance } = setup();
    const t = Math.floor(Date.UTC(2026, 10, 2, 12) / 1000);
    expect(await mappings.map('acme', 'cus_Hook1', 'webhook', t - 60)).toBe('mapped');
    expect(await mappings.map('acme', 'cus_Admin', 'admin')).toBe('mapped');
    expect(await mappings.map('acme', 'cus_Hook0', 'webhook', t - 30)).toBe('stale');
    expect((await mappings.get('acme'))?.stripeCustomerId).toBe('cus_Admin');
    advance(120_000);
    expect(await mappings.map('acme', 'cus_Hook2', 'webhook', t + 60)).toBe('mapped');
    expect(await mappings.get('acme')).toEqual({ stripeCustomerId: 'cus_Hook2', source: 'webhook' });
  });

  it('removing an explicit mapping falls back to Moesif, then the key', async () => {
    const { store, mappings } = setup();
    store.moesif.set('acme', 'cus_Moesif');
    await mappings.map('acme', 'cus_Admin', 'admin');
    expect(await mappings.unmap('acme')).toBe(true);
    expect(await mappings.get('acme')).toEqual({ stripeCustomerId: 'cus_Moesif', source: 'moesif' });
    expect(await mappings.unmap('acme')).toBe(false);
    await mappings.map('cus_Self', 'cus_Other', 'admin');
    await mappings.unmap('cus_Self');
    expect(await mappings.get('cus_Self')).toEqual({ stripeCustomerId: 'cus_Self', source: 'customer_id' });
  });

  it('ignores a Moesif value that is not a Stripe customer id', () => {
    expect(chooseMapping('acme', undefined, 'not-a-customer')).toBeUndefined();
    expect(chooseMapping('cus_X', undefined, 'cus_bad-id')).toEqual({
      stripeCustomerId: 'cus_X',
      source: 'customer_id',
    });
  });

  it('does not write a repeat of the current mapping', async () => {
    const { store, mappings } = setup();
    await mappings.map('acme', 'cus_A', 'admin');
    expect(await mappings.map('acme', 'cus_A', 'admin')).toBe('unchanged');
    expect(store.writes).toBe(1);
  });

  it('serialises concurrent changes of one key: the last call wins', async () => {
    const { mappings } = setup();
    await Promise.all([
      mappings.map('acme', 'cus_A', 'admin'),
      mappings.map('acme', 'cus_B', 'admin'),
      mappings.map('acme', 'cus_C', 'admin'),
    ]);
    expect((await mappings.get('acme'))?.stripeCustomerId).toBe('cus_C');
  });
});

describe('customer mapping validation', () => {
  it.each([
    ['', 'cus_A'],
    ['x'.repeat(1025), 'cus_A'],
    ['acme', 'cus_'],
    ['acme', 'cus_a-b'],
    ['acme', 'sub_123'],
    ['acme', `cus_${'a'.repeat(251)}`],
    ['acme', ' cus_A'],
  ])('refuses key %j → %j', async (key, id) => {
    const { mappings } = setup();
    const err = await mappings.map(key, id, 'admin').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DomainError);
    expect((err as DomainError).code).toBe('invalid_request');
  });

  it('accepts the longest key and id', async () => {
    const { mappings } = setup();
    expect(await mappings.map('k'.repeat(1024), `cus_${'A'.repeat(250)}`, 'admin')).toBe('mapped');
  });

  it('lists explicit mappings by key, paginated, without removed ones', async () => {
    const { mappings } = setup();
    for (const k of ['b', 'a', 'd', 'c']) await mappings.map(k, `cus_${k}`, 'admin');
    await mappings.unmap('c');
    expect((await mappings.list({ limit: 2 })).map((m) => m.customerKey)).toEqual(['a', 'b']);
    expect((await mappings.list({ limit: 2, after: 'b' })).map((m) => m.customerKey)).toEqual(['d']);
  });
});

describe('nextVersion', () => {
  it.each([
    [undefined, 100, 100_000n],
    [99_999n, 100, 100_000n],
    [100_000n, 100, 100_001n],
    [100_998n, 100, 100_999n],
    [101_000n, 100, 'stale'],
  ] as const)('over %s, an event at %is gets %s', (current, created, expected) => {
    expect(nextVersion(current, { eventCreatedSeconds: created })).toBe(expected);
  });

  it('an operator change now always wins', () => {
    expect(nextVersion(5_000n, { nowMs: 1_000 })).toBe(5_001n);
    expect(nextVersion(5_000n, { nowMs: 9_000 })).toBe(9_000n);
  });
});

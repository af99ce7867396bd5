import { describe, expect, it } from 'vitest';
import { InMemorySyncStore } from '../../../src/billing/stripe/in-memory-sync-store.ts';
import { formatReconcile, ReconcileService } from '../../../src/billing/stripe/reconcile.ts';
import { countMeter, uniqueMeter } from '../../support/sync-fakes.ts';

const H = (hour: number) => new Date(Date.UTC(2026, 10, 10, hour));

describe('reconciliation', () => {
  const store = new InMemorySyncStore();
  for (const [customer, hour, value] of [
    ['acme', 1, 4],
    ['acme', 2, 6],
    ['globex', 1, 3],
    ['initech', 3, 2],
  ] as const) {
    store.setUsage(countMeter.name, {
      version: 'v1',
      customer,
      hour: H(hour),
      value: BigInt(value),
      periodValue: 0n,
    });
  }
  store.setUsage(uniqueMeter.name, {
    version: 'v1',
    customer: 'acme',
    hour: H(1),
    value: 0n,
    periodValue: 2n,
  });
  store.setUsage(uniqueMeter.name, {
    version: 'v2',
    customer: 'acme',
    hour: H(2),
    value: 0n,
    periodValue: 5n,
  });
  const stripeTotals: Record<string, bigint> = {
    'mtr_calls/cus_acme': 10n,
    'mtr_calls/cus_globex': 4n,
    'mtr_users/cus_acme': 5n,
  };
  const asked: string[] = [];
  const service = new ReconcileService(
    store,
    { resolve: async (keys) => new Map(keys.filter((k) => k !== 'initech').map((k) => [k, `cus_${k}`])) },
    {
      meterByEventName: async (name) => ({
        id: name === 'api_calls' ? 'mtr_calls' : 'mtr_users',
        displayName: name,
        eventName: name,
        formula: 'sum',
        customerPayloadKey: 'stripe_customer_id',
        valuePayloadKey: 'value',
        status: 'active',
      }),
      summary: async (meterId, customer, start, end) => {
        asked.push(`${meterId} ${customer} ${start.toISOString()} ${end.toISOString()}`);
        return stripeTotals[`${meterId}/${customer}`] ?? 0n;
      },
    },
  );

  it('compares sums for additive meters and the latest period value for the others', async () => {
    const result = await service.reconcile([countMeter, uniqueMeter], {
      from: new Date(Date.UTC(2026, 10, 10, 0, 30)),
      to: H(12),
    });
    expect(result.from).toBe(H(0).toISOString());
    expect(result.lines).toEqual([
      {
        meter: 'calls',
        customer: 'acme',
        stripeCustomerId: 'cus_acme',
        ours: '10',
        stripe: '10',
        difference: '0',
        status: 'ok',
      },
      {
        meter: 'calls',
        customer: 'globex',
        stripeCustomerId: 'cus_globex',
        ours: '3',
        stripe: '4',
        difference: '-1',
        status: 'mismatch',
      },
      {
        meter: 'calls',
        customer: 'initech',
        stripeCustomerId: null,
        ours: '2',
        stripe: null,
        difference: null,
        status: 'unmapped',
      },
      {
        meter: 'users',
        customer: 'acme',
        stripeCustomerId: 'cus_acme',
        ours: '5',
        stripe: '5',
        difference: '0',
        status: 'ok',
      },
    ]);
    expect(result.mismatches).toBe(2);
    expect(asked[0]).toBe(`mtr_calls cus_acme ${H(0).toISOString()} ${H(12).toISOString()}`);
    const table = formatReconcile(result);
    expect(table).toContain('globex');
    expect(table.split('\n').at(-1)).toBe('2 mismatch(es)');
  });
});

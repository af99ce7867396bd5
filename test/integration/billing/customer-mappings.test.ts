import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CustomerMappingService } from '../../../src/billing/stripe/customer-directory.ts';
import type { ClickHouse } from '../../../src/storage/clickhouse/clickhouse.ts';
import {
  chunkKeys,
  ClickHouseCustomerMappingStore,
} from '../../../src/storage/clickhouse/stripe-customer-store.ts';
import { ENGINES, openMigratedDatabase } from '../../support/clickhouse.ts';

/** A Moesif company profile row, as MoesifRecordService writes it. */
async function company(
  ch: ClickHouse,
  app: string,
  companyId: string,
  stripeCustomerId: string,
  version: number,
): Promise<void> {
  const row = {
    app,
    company_id: companyId,
    stripe_customer_id: stripeCustomerId,
    meta_keys: [],
    meta_values: [],
    received_at: Math.floor(version / 1e6),
    version,
  };
  await ch.insertJsonEachRow('companies', `${JSON.stringify(row)}\n`);
}

describe.each(ENGINES)('customer mappings on %s ClickHouse', (engine) => {
  let ch: ClickHouse;
  let nowMs: number;
  let mappings: CustomerMappingService;

  beforeEach(async () => {
    ch = await openMigratedDatabase(engine, 'mappings');
    nowMs = Date.UTC(2026, 10, 2, 12);
    mappings = new CustomerMappingService(new ClickHouseCustomerMappingStore(ch), () => new Date(nowMs));
  });
  afterEach(async () => {
    await ch.command(`DROP DATABASE IF EXISTS ${ch.database}`);
    await ch.close();
  });

  it('resolves by precedence: explicit > Moesif company > cus_ key', async () => {
    await company(ch, 'app1', 'acme', 'cus_MoesifOld', 1_000);
    await company(ch, 'app1', 'acme', 'cus_MoesifNew', 2_000);
    await company(ch, 'app1', 'globex', 'cus_Globex', 1_000);
    await company(ch, 'app1', 'initech', 'cus_Initech', 1_000);
    await company(ch, 'app1', 'initech', '', 2_000); // the metadata was removed since
    await company(ch, 'app2', 'umbrella', 'garbage', 1_000);
    await mappings.map('globex', 'cus_Admin', 'admin');

    expect(await mappings.resolve(['acme', 'globex', 'initech', 'umbrella', 'cus_Self', 'nobody'])).toEqual(
      new Map([
        ['acme', 'cus_MoesifNew'],
        ['globex', 'cus_Admin'],
        ['cus_Self', 'cus_Self'],
      ]),
    );
    expect(await mappings.get('acme')).toEqual({ stripeCustomerId: 'cus_MoesifNew', source: 'moesif' });
    expect(await mappings.get('globex')).toEqual({ stripeCustomerId: 'cus_Admin', source: 'admin' });
  });

  it('keeps the most recent explicit mapping, and falls back after a removal', async () => {
    await company(ch, 'app1', 'acme', 'cus_Moesif', 1_000);
    const t = Math.floor(nowMs / 1000);
    expect(await mappings.map('acme', 'cus_Hook', 'webhook', t - 10)).toBe('mapped');
    expect(await mappings.map('acme', 'cus_Admin', 'admin')).toBe('mapped');
    expect(await mappings.map('acme', 'cus_Late', 'webhook', t - 5)).toBe('stale');
    expect(await mappings.get('acme')).toEqual({ stripeCustomerId: 'cus_Admin', source: 'admin' });
    nowMs += 1000;
    expect(await mappings.unmap('acme')).toBe(true);
    expect(await mappings.get('acme')).toEqual({ stripeCustomerId: 'cus_Moesif', source: 'moesif' });
    expect(await mappings.unmap('acme')).toBe(false);
  });

  it('round-trips awkward keys exactly', async () => {
    const keys = ["o'brien", 'back\\slash', 'tab\there', 'ünïcødé 🚀', 'new\nline', 'x'.repeat(1024)];
    for (const [i, k] of keys.entries()) await mappings.map(k, `cus_K${i}`, 'admin');
    const resolved = await mappings.resolve(keys);
    expect(keys.map((k) => resolved.get(k))).toEqual(keys.map((_, i) => `cus_K${i}`));
    expect((await mappings.list({ limit: 100 })).map((m) => m.customerKey).sort()).toEqual([...keys].sort());
  });

  it('lists explicit mappings by key, page by page', async () => {
    for (const k of ['d', 'a', 'c', 'b', 'e'])
      await mappings.map(
        k,
        `cus_${k}`,
        k === 'e' ? 'webhook' : 'admin',
        k === 'e' ? Math.floor(nowMs / 1000) : undefined,
      );
    nowMs += 1000;
    await mappings.unmap('c');
    const first = await mappings.list({ limit: 2 });
    expect(first.map((m) => [m.customerKey, m.stripeCustomerId])).toEqual([
      ['a', 'cus_a'],
      ['b', 'cus_b'],
    ]);
    const second = await mappings.list({ limit: 2, after: 'b' });
    expect(second.map((m) => m.customerKey)).toEqual(['d', 'e']);
    expect(second[1]).toMatchObject({ source: 'webhook', updatedAt: new Date(Date.UTC(2026, 10, 2, 12)) });
    expect(await mappings.list({ limit: 2, after: 'e' })).toEqual([]);
  });

  it('resolves thousands of keys, split under the server query size limit', async () => {
    const keys = Array.from({ length: 6000 }, (_, i) => `company-with-a-long-identifier-${i}`);
    expect(chunkKeys(keys).length).toBeGreaterThan(1);
    await mappings.map(keys[0]!, 'cus_First', 'admin');
    await mappings.map(keys[5999]!, 'cus_Last', 'admin');
    const resolved = await mappings.resolve([...keys, 'cus_Direct']);
    expect(resolved).toEqual(
      new Map([
        [keys[0]!, 'cus_First'],
        [keys[5999]!, 'cus_Last'],
        ['cus_Direct', 'cus_Direct'],
      ]),
    );
  });
});

import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { compileCombinedHourly, compileMeterHourly } from '../../../src/meters/compile.ts';
import { meterSchema } from '../../../src/meters/meter-schema.ts';
import { connectClickHouse, type ClickHouse } from '../../../src/storage/clickhouse/clickhouse.ts';
import { migrate } from '../../../src/storage/clickhouse/migrations.ts';
import { chdbPath, ENGINES, serverUrl } from '../../support/clickhouse.ts';

// The single-scan query for several count/sum (and unique_count) meters must give each meter exactly what
// its own query gives.
const base = { description: '', unit: 'x' };
const meters = [
  meterSchema.parse({
    ...base,
    name: 'calls',
    filter: { routes: ['/RetrieveCreditScore'], status: 200 },
    aggregation: { type: 'count' },
  }),
  meterSchema.parse({ ...base, name: 'bytes', aggregation: { type: 'sum', value: 'response_bytes' } }),
  meterSchema.parse({
    ...base,
    name: 'tokens-by-user',
    customer: 'user_id',
    filter: { where: [{ field: 'metadata.plan', op: 'eq', value: 'pro' }] },
    aggregation: { type: 'sum', value: 'metadata.tokens' },
  }),
  meterSchema.parse({ ...base, name: 'errors', filter: { status: '5xx' }, aggregation: { type: 'count' } }),
];
const uniqueCounts = [
  meterSchema.parse({ ...base, name: 'users', aggregation: { type: 'unique_count', value: 'user_id' } }),
  // A metadata value with a filter: rows without the key (or of another route) must not count.
  meterSchema.parse({
    ...base,
    name: 'token-values',
    filter: { routes: ['/RetrieveCreditScore'] },
    aggregation: { type: 'unique_count', value: 'metadata.tokens' },
  }),
];
const from = new Date('2026-11-10T00:00:00Z');
const to = new Date('2026-11-10T04:00:00Z');

describe.each(ENGINES)('combined hourly meters on %s ClickHouse', (engine) => {
  let ch: ClickHouse;
  beforeAll(async () => {
    const database = `comb_${process.pid}_${randomBytes(4).toString('hex')}`;
    ch = await connectClickHouse(
      engine === 'server'
        ? { kind: 'server', url: serverUrl(), username: 'default', password: '', database }
        : { kind: 'embedded', path: chdbPath(), database },
    );
    await migrate(ch);
    // 30 events stored twice, identical (as a retried batch leaves them before a merge).
    const rows = Array.from({ length: 400 }, (_, n) => n % 370).map((i) => ({
      event_id: `e${i}`,
      app: 'a',
      received_at: 1_794_300_000,
      request_time: Math.floor(from.getTime() / 1000) + ((i * 37) % (4 * 3600)),
      request_time_ms: 0,
      customer_key: `co_${i % 3}`,
      company_id: `co_${i % 3}`,
      user_id: `u${i % 5}`,
      method: 'POST',
      route: i % 4 === 0 ? '/Other' : '/RetrieveCreditScore',
      host: '',
      status: i % 7 === 0 ? 503 : 200,
      latency_ms: 1,
      request_bytes: 0,
      response_bytes: 100 + i,
      api_version: '',
      source_format: 'native',
      sample_weight: 1 + (i % 2),
      meta_keys: ['metadata.plan', 'metadata.tokens'],
      meta_values: [i % 2 === 0 ? 'pro' : 'free', i % 9 === 0 ? 'n/a' : String(i)],
    }));
    await ch.insertJsonEachRow(
      'request_logs',
      Buffer.from(rows.map((r) => JSON.stringify(r)).join('\n') + '\n'),
    );
  });
  afterAll(async () => {
    await ch.command(`DROP DATABASE IF EXISTS ${ch.database}`);
    await ch.close();
  });

  // Two forms: meters of several customer expressions fan rows out (arrayJoin), meters of one share a
  // GROUP BY of conditional aggregates. Both must match the meters' own queries.
  it.each([
    ['several customer expressions', meters],
    ['one customer expression', meters.filter((m) => m.customer === 'company_id')],
    [
      'one customer expression, unique counts among them',
      [...uniqueCounts, ...meters.filter((m) => m.customer === 'company_id')],
    ],
  ])('gives every meter the numbers of its own query (%s)', async (_form, meters) => {
    expect(meters.length).toBeGreaterThan(1);
    const table = ch.table('request_logs');
    const combined = await ch.query(
      compileCombinedHourly(meters, { table, from, to }),
      z.object({ meter_index: z.coerce.number(), customer: z.string(), hour: z.string(), value: z.string() }),
    );
    for (const [i, meter] of meters.entries()) {
      const alone = await ch.query(
        compileMeterHourly(meter, { table, from, to }),
        z.object({ customer: z.string(), hour: z.string(), value: z.string() }),
      );
      expect(alone.length).toBeGreaterThan(0);
      expect(
        combined
          .filter((r) => r.meter_index === i)
          .map(({ customer, hour, value }) => ({ customer, hour, value })),
      ).toEqual(alone);
    }
  });

  it('refuses unique counts among meters of several customer expressions', () => {
    expect(() =>
      compileCombinedHourly([...meters, ...uniqueCounts], { table: ch.table('request_logs'), from, to }),
    ).toThrow(TypeError);
  });
});

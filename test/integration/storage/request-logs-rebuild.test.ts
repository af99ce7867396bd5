// Migration 7 rebuilds request_logs (ReplacingMergeTree(received_rank)) and must carry every row over,
// on both engines, also when it runs again after a crash before its bookkeeping row.
import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { RequestLogRow } from '../../../src/collector/request-log.ts';
import { meterSchema } from '../../../src/meters/meter-schema.ts';
import { connectClickHouse, type ClickHouse } from '../../../src/storage/clickhouse/clickhouse.ts';
import { CopyResolution } from '../../../src/storage/clickhouse/copy-resolution.ts';
import { ClickHouseMeterStore } from '../../../src/storage/clickhouse/meter-store.ts';
import { migrate, MIGRATIONS } from '../../../src/storage/clickhouse/migrations.ts';
import { chdbPath, ENGINES, serverUrl } from '../../support/clickhouse.ts';
import { requestLogRow } from '../../support/request-log-row.ts';

const base = Date.parse('2027-05-04T10:00:00Z') / 1000;
const row = (id: string, offset: number, received: number): RequestLogRow =>
  requestLogRow({
    event_id: id,
    received_at: base + received,
    request_time: base + offset,
    customer_key: 'acme',
    company_id: 'acme',
  });
// 200 events in the 10:00 hour, one of them with a later copy in the 11:00 hour (a different sorting
// key), and an exact retry of another (the same sorting key).
const ROWS = [
  ...Array.from({ length: 200 }, (_, i) => row(`e${i}`, i * 10, i * 10 + 1)),
  row('e7', 3600 + 70, 3600 + 71),
  row('e9', 90, 95),
];
const CALLS = meterSchema.parse({
  name: 'calls',
  description: '',
  unit: 'calls',
  aggregation: { type: 'count' },
});

describe.each(ENGINES)('migration 7 on %s ClickHouse', (engine) => {
  let ch: ClickHouse;

  beforeEach(async () => {
    const database = `rebuild_${process.pid}_${randomBytes(4).toString('hex')}`;
    ch = await connectClickHouse(
      engine === 'server'
        ? { kind: 'server', url: serverUrl(), username: 'default', password: '', database }
        : { kind: 'embedded', path: chdbPath(), database },
    );
    // A database as version 6 left it, with rows in the old table.
    await migrate(
      ch,
      MIGRATIONS.filter((m) => m.version < 7),
    );
    await ch.insertJsonEachRow('request_logs', ROWS.map((r) => `${JSON.stringify(r)}\n`).join(''));
  });

  afterEach(async () => {
    await ch.command(`DROP DATABASE IF EXISTS ${ch.database}`);
    await ch.close();
  });

  const count = async (sql: string) => (await ch.query(sql, z.object({ n: z.coerce.number() })))[0]?.n;
  const hourlyCalls = async () =>
    (
      await new ClickHouseMeterStore(ch, new CopyResolution(ch, { minIntervalMs: 0 })).hourly(
        CALLS,
        new Date(base * 1000),
        new Date((base + 3 * 3600) * 1000),
      )
    ).map((v) => [v.hour.getTime() / 1000 - base, Number(v.value)]);

  it('carries every row over into the new table and counts each event once', async () => {
    // 26.x collapses the exact retry already on insert (optimize_on_insert), 18.16 keeps both rows.
    const before = await count(`SELECT count() AS n FROM ${ch.table('request_logs')}`);
    expect(await migrate(ch)).toEqual(MIGRATIONS.filter((m) => m.version >= 7).map((m) => m.version));
    const [table] = await ch.query(
      `SELECT engine_full FROM system.tables WHERE database = '${ch.database}' AND name = 'request_logs'`,
      z.object({ engine_full: z.string() }),
    );
    expect(table?.engine_full).toMatch(/^ReplacingMergeTree\(received_rank\)/);
    // Every row is in the new table; the old one is kept (it held rows).
    expect(await count(`SELECT count() AS n FROM ${ch.table('request_logs')}`)).toBe(before);
    expect(await count(`SELECT count() AS n FROM ${ch.table('request_logs')} FINAL`)).toBe(201);
    expect(await count(`SELECT count() AS n FROM ${ch.table('request_logs_before_v7')}`)).toBe(before);
    // 200 calls in the 10:00 hour; e7's later copy, in the 11:00 hour, does not count.
    expect(await hourlyCalls()).toEqual([[0, 200]]);
  });

  it('runs again safely after a crash before its bookkeeping row', async () => {
    await migrate(ch);
    await ch.command(`DROP TABLE ${ch.table('schema_migrations')}`);
    expect(await migrate(ch)).toEqual(MIGRATIONS.map((m) => m.version));
    expect(await count(`SELECT count() AS n FROM ${ch.table('request_logs')} FINAL`)).toBe(201);
    expect(await hourlyCalls()).toEqual([[0, 200]]);
  });

  it('leaves every row in place when two processes migrate at once (a loser applies it at its next try)', async () => {
    const second = await connectClickHouse(
      engine === 'server'
        ? { kind: 'server', url: serverUrl(), username: 'default', password: '', database: ch.database }
        : { kind: 'embedded', path: chdbPath(), database: ch.database },
    );
    try {
      await Promise.allSettled([migrate(ch), migrate(second)]);
      // Whichever failed tries again, as the service does before its next insert or evaluation.
      await migrate(ch);
      await migrate(second);
      expect(await migrate(ch)).toEqual([]);
      expect(await count(`SELECT count() AS n FROM ${ch.table('request_logs')} FINAL`)).toBe(201);
      expect(await hourlyCalls()).toEqual([[0, 200]]);
      const tables = await ch.query(
        `SELECT name FROM system.tables WHERE database = '${ch.database}' AND name LIKE 'request_logs%' ORDER BY name`,
        z.object({ name: z.string() }),
      );
      expect(tables.map((t) => t.name)).toEqual([
        'request_logs',
        'request_logs_before_v7',
        'request_logs_counted',
      ]);
    } finally {
      await second.close();
    }
  });
});

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { ClickHouse } from '../../../src/storage/clickhouse/clickhouse.ts';
import { migrate, MIGRATIONS } from '../../../src/storage/clickhouse/migrations.ts';
import { ENGINES, openMigratedDatabase } from '../../support/clickhouse.ts';

describe.each(ENGINES)('migrations on %s ClickHouse', (engine) => {
  let ch: ClickHouse;
  beforeEach(async () => {
    ch = await openMigratedDatabase(engine, 'migrations');
  });
  afterEach(async () => {
    await ch.command(`DROP DATABASE IF EXISTS ${ch.database}`);
    await ch.close();
  });

  it('applies nothing the second time', async () => {
    expect(await migrate(ch)).toEqual([]);
  });

  it('runs every migration again safely after a crash before its bookkeeping row', async () => {
    // As if the process died after each migration's statements but before it was recorded.
    await ch.command(`DROP TABLE ${ch.table('schema_migrations')}`);
    expect(await migrate(ch)).toEqual(MIGRATIONS.map((m) => m.version));
    const columns = await ch.query(
      `SELECT name FROM system.columns WHERE database = '${ch.database}' AND table = 'stripe_billing_state' ORDER BY name`,
      z.object({ name: z.string() }),
    );
    expect(columns.map((c) => c.name)).toEqual(
      expect.arrayContaining(['payment_version', 'subscription_version']),
    );
  });
});

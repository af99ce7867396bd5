import { describe, expect, it } from 'vitest';
import { clusterStatements, SHARDING_KEYS } from '../../../src/storage/clickhouse/cluster-ddl.ts';
import { MIGRATIONS } from '../../../src/storage/clickhouse/migrations.ts';
import {
  createCountedView,
  createRequestLogsTable,
} from '../../../src/storage/clickhouse/request-logs-table.ts';

describe('single-node DDL said for a cluster', () => {
  it.each([
    [
      `CREATE TABLE IF NOT EXISTS db.ingest_keys (
        key_id String,
        version UInt64
      ) ENGINE = ReplacingMergeTree(version)
      ORDER BY key_id`,
      [
        `CREATE TABLE IF NOT EXISTS db.ingest_keys_local ON CLUSTER c (
        key_id String,
        version UInt64
      ) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/db/ingest_keys_local', '{replica}', version)
      ORDER BY key_id`,
        `CREATE TABLE IF NOT EXISTS db.ingest_keys ON CLUSTER c (
        key_id String,
        version UInt64
      ) ENGINE = Distributed(c, db, ingest_keys_local, cityHash64(key_id))`,
      ],
    ],
    ['CREATE DATABASE IF NOT EXISTS db', ['CREATE DATABASE IF NOT EXISTS db ON CLUSTER c']],
    [
      'DROP TABLE IF EXISTS db.request_logs_v7_build',
      ['DROP TABLE IF EXISTS db.request_logs_v7_build ON CLUSTER c'],
    ],
    [
      'ALTER TABLE db.stripe_billing_state ADD COLUMN payment_version UInt64 DEFAULT 0',
      [
        'ALTER TABLE db.stripe_billing_state_local ON CLUSTER c ADD COLUMN payment_version UInt64 DEFAULT 0',
        'DROP TABLE IF EXISTS db.stripe_billing_state ON CLUSTER c',
        'CREATE TABLE IF NOT EXISTS db.stripe_billing_state ON CLUSTER c AS db.stripe_billing_state_local ENGINE = Distributed(c, db, stripe_billing_state_local, cityHash64(stripe_customer_id))',
      ],
    ],
    ['INSERT INTO db.t (a) SELECT a FROM db.u', ['INSERT INTO db.t (a) SELECT a FROM db.u']],
  ])('%s', (statement, expected) => {
    expect(clusterStatements(statement, 'c')).toEqual(expected);
  });

  it('leaves the MATERIALIZED rank out of the Distributed request_logs (the shard computes it)', () => {
    const [local, distributed] = clusterStatements(createRequestLogsTable('db.request_logs'), 'c');
    expect(local).toContain('received_rank UInt32 MATERIALIZED');
    expect(local).toContain(
      "ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/db/request_logs_local', '{replica}', received_rank)",
    );
    expect(distributed).not.toContain('received_rank');
    expect(distributed).toContain('meta_values Array(String)');
    expect(distributed).toContain(
      'ENGINE = Distributed(c, db, request_logs_local, cityHash64(app, event_id))',
    );
  });

  it('puts the view on every server, its subquery GLOBAL', () => {
    expect(clusterStatements(createCountedView('db', true), 'c')[0]).toMatch(
      /^CREATE VIEW IF NOT EXISTS db\.request_logs_counted ON CLUSTER c AS[\s\S]*GLOBAL NOT IN \(SELECT/,
    );
  });

  it('refuses what it cannot say: a table without a sharding key, other DDL', () => {
    expect(() =>
      clusterStatements(
        'CREATE TABLE IF NOT EXISTS db.new_table (a String) ENGINE = MergeTree() ORDER BY a',
        'c',
      ),
    ).toThrow(/no sharding key for table new_table/);
    expect(() => clusterStatements('RENAME TABLE db.a TO db.b', 'c')).toThrow(/cannot run on a cluster/);
    expect(() => clusterStatements('ALTER TABLE db.request_logs ADD COLUMN x UInt8', 'c')).toThrow();
  });

  it('can say every statement of the migration list, and every table it creates has a key', () => {
    for (const m of MIGRATIONS) {
      for (const statement of (m.clusterStatements ?? m.statements)('db'))
        expect(() => clusterStatements(statement, 'c')).not.toThrow();
      for (const add of m.addColumns ?? []) expect(SHARDING_KEYS[add.table]).toBeDefined();
    }
  });
});

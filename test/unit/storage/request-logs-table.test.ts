import { describe, expect, it } from 'vitest';
import { REQUEST_LOG_SCHEMA } from '../../../src/collector/request-log.ts';
import { MIGRATIONS } from '../../../src/storage/clickhouse/migrations.ts';
import { createRequestLogsTable } from '../../../src/storage/clickhouse/request-logs-table.ts';

describe('request_logs DDL from the schema of record', () => {
  it('is what migration 1 created, column for column (migration 1 is history and stays as it ran)', () => {
    const [v1] = MIGRATIONS[0]!.statements('db');
    const body = /\(\n([\s\S]*)\n\s*\) ENGINE/.exec(v1!)![1]!;
    const columns = body.split(',\n').map((line) => line.trim());
    expect(columns).toEqual(REQUEST_LOG_SCHEMA.map((c) => `${c.name} ${c.type}`));
  });

  it('generates the table of migration 7', () => {
    expect(createRequestLogsTable('db.request_logs')).toBe(
      [
        'CREATE TABLE IF NOT EXISTS db.request_logs (',
        '        event_id String,',
        '        app String,',
        "        received_at DateTime('UTC'),",
        "        request_time DateTime('UTC'),",
        '        request_time_ms UInt16,',
        '        customer_key String,',
        '        company_id String,',
        '        user_id String,',
        '        method String,',
        '        route String,',
        '        host String,',
        '        status UInt16,',
        '        latency_ms UInt32,',
        '        request_bytes UInt64,',
        '        response_bytes UInt64,',
        '        api_version String,',
        '        source_format String,',
        '        sample_weight UInt32,',
        '        meta_keys Array(String),',
        '        meta_values Array(String),',
        '        received_rank UInt32 MATERIALIZED 4294967295 - toUInt32(received_at)',
        '      ) ENGINE = ReplacingMergeTree(received_rank)',
        '      PARTITION BY toYYYYMM(request_time)',
        '      ORDER BY (app, customer_key, request_time, event_id)',
      ].join('\n'),
    );
  });
});

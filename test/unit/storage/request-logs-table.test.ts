import { describe, expect, it } from 'vitest';
import { REQUEST_LOG_SCHEMA } from '../../../src/collector/request-log.ts';
import { MIGRATIONS } from '../../../src/storage/clickhouse/migrations.ts';

describe('request_logs DDL and the schema of record', () => {
  it('is what migration 1 created, column for column (migration 1 is history and stays as it ran)', () => {
    const [v1] = MIGRATIONS[0]!.statements('db');
    const body = /\(\n([\s\S]*)\n\s*\) ENGINE/.exec(v1!)![1]!;
    const columns = body.split(',\n').map((line) => line.trim());
    expect(columns).toEqual(REQUEST_LOG_SCHEMA.map((c) => `${c.name} ${c.type}`));
  });
});

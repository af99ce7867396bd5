import { describe, expect, it } from 'vitest';
import {
  columnsExposedAs,
  REQUEST_LOG_COLUMNS,
  REQUEST_LOG_SCHEMA,
  requestLogRowSchema,
  type RequestLogRow,
} from '../../../src/collector/request-log.ts';
import { INTEGER_COLUMNS, NUMERIC_VALUE_COLUMNS, TEXT_COLUMNS } from '../../../src/meters/meter-schema.ts';

const ROW: RequestLogRow = {
  event_id: 'e1',
  app: 'app_1',
  received_at: 1_795_000_000,
  request_time: 1_794_999_940,
  request_time_ms: 999,
  customer_key: 'acme',
  company_id: 'acme',
  user_id: 'u1',
  method: 'POST',
  route: '/x',
  host: 'api.test',
  status: 200,
  latency_ms: 4_294_967_295,
  request_bytes: Number.MAX_SAFE_INTEGER,
  response_bytes: 0,
  api_version: '2024-06-01',
  source_format: 'kong',
  sample_weight: 3,
  meta_keys: ['metadata.plan'],
  meta_values: ['pro'],
};

describe('the schema of record of request_logs', () => {
  it('lists every field of the row once, in table order', () => {
    expect(REQUEST_LOG_COLUMNS).toEqual(REQUEST_LOG_SCHEMA.map((c) => c.name));
    expect([...REQUEST_LOG_COLUMNS].sort()).toEqual(Object.keys(ROW).sort());
  });

  it.each([
    [
      '18.16 (64-bit integers quoted)',
      { request_bytes: String(Number.MAX_SAFE_INTEGER), response_bytes: '0' },
    ],
    ['26.x (64-bit integers bare)', { request_bytes: Number.MAX_SAFE_INTEGER, response_bytes: 0 }],
  ])('reads a row back as a RequestLogRow from %s', (_engine, integers) => {
    const asReturned = {
      ...ROW,
      ...integers,
      received_at: '2026-11-18 11:06:40',
      request_time: '2026-11-18 11:05:40',
    };
    expect(requestLogRowSchema.parse(asReturned)).toEqual(ROW);
  });

  it('refuses a row of another shape instead of guessing', () => {
    expect(requestLogRowSchema.safeParse({ ...ROW, received_at: '2026-11-18T11:06:40Z' }).success).toBe(
      false,
    );
    expect(requestLogRowSchema.safeParse({ ...ROW, source_format: 'other' }).success).toBe(false);
    const { meta_values: _dropped, ...missing } = ROW;
    expect(requestLogRowSchema.safeParse(missing).success).toBe(false);
  });

  it('gives meters the fields they may name', () => {
    expect(TEXT_COLUMNS).toEqual([
      'event_id',
      'app',
      'customer_key',
      'company_id',
      'user_id',
      'method',
      'route',
      'host',
      'api_version',
      'source_format',
    ]);
    expect(INTEGER_COLUMNS).toEqual([
      'request_time_ms',
      'status',
      'latency_ms',
      'request_bytes',
      'response_bytes',
      'sample_weight',
    ]);
    expect(NUMERIC_VALUE_COLUMNS).toEqual(['latency_ms', 'request_bytes', 'response_bytes']);
    // The time range is the evaluation's; metadata is reached by key.
    expect(columnsExposedAs('none')).toEqual(['received_at', 'request_time', 'meta_keys', 'meta_values']);
  });
});

import type { RequestLogRow } from '../../src/collector/request-log.ts';

/** A request_logs row with neutral values, for tests that only care about a few fields. */
export function requestLogRow(
  fields: Partial<RequestLogRow> & Pick<RequestLogRow, 'event_id'>,
): RequestLogRow {
  return {
    app: 'app_1',
    received_at: 0,
    request_time: 0,
    request_time_ms: 0,
    customer_key: '',
    company_id: '',
    user_id: '',
    method: 'GET',
    route: '/',
    host: '',
    status: 200,
    latency_ms: 0,
    request_bytes: 0,
    response_bytes: 0,
    api_version: '',
    source_format: 'native',
    sample_weight: 1,
    meta_keys: [],
    meta_values: [],
    ...fields,
  };
}

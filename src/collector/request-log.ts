import type { EventRejection } from '../errors.ts';
/**
 * The canonical request log row: one per API call, whatever wire format it arrived in.
 * Column names match `request_logs` in ClickHouse one to one (see storage/clickhouse/migrations.ts),
 * so a row serialises straight to a JSONEachRow line.
 */
export type SourceFormat = 'native' | 'moesif' | 'cloudevents' | 'kong';

export interface RequestLogRow {
  /** Sender's id where it has one, else a content hash (see event-id.ts). Dedupe key with `app`. */
  event_id: string;
  /** Id of the ingest key the event came in with. */
  app: string;
  /** Seconds since the epoch, UTC. */
  received_at: number;
  /** Seconds since the epoch, UTC, of the API call itself. */
  request_time: number;
  /** Milliseconds within `request_time` (0–999). */
  request_time_ms: number;
  /** The customer the call is billed to: company_id, else user_id, else ''. */
  customer_key: string;
  company_id: string;
  user_id: string;
  method: string;
  /** Path without query string or fragment. */
  route: string;
  host: string;
  status: number;
  latency_ms: number;
  request_bytes: number;
  response_bytes: number;
  api_version: string;
  source_format: SourceFormat;
  /** How many real calls this row stands for (Moesif sampling `weight`), at least 1. */
  sample_weight: number;
  /** Flattened metadata (`metadata.<path>`) and allow-listed headers (`header.<name>`), parallel arrays. */
  meta_keys: string[];
  meta_values: string[];
}

// Defined beside the error that carries it (errors.ts sits below every domain room).
export type { EventRejection } from '../errors.ts';

/** What an adapter makes of one request body. */
export interface AdaptResult {
  rows: RequestLogRow[];
  rejected: EventRejection[];
}

/** What an adapter needs besides the body. */
export interface AdaptContext {
  app: string;
  /** Milliseconds since the epoch when the request arrived. */
  receivedAtMs: number;
  /** Lower-case header names that may be stored (on top of nothing: every other header is dropped). */
  headerAllowList: ReadonlySet<string>;
  /** Accepted range of request times, as offsets from receivedAtMs. */
  maxPastMs: number;
  maxFutureMs: number;
  /** Largest serialized event, in bytes. */
  maxEventBytes: number;
  /**
   * REQUIRE_CUSTOMER: refuse an event that names no customer (its field named), instead of storing a
   * row with customer_key '' that no meter bills. Unset: such events are stored and counted.
   */
  requireCustomer?: boolean;
}

export const REQUEST_LOG_COLUMNS = [
  'event_id',
  'app',
  'received_at',
  'request_time',
  'request_time_ms',
  'customer_key',
  'company_id',
  'user_id',
  'method',
  'route',
  'host',
  'status',
  'latency_ms',
  'request_bytes',
  'response_bytes',
  'api_version',
  'source_format',
  'sample_weight',
  'meta_keys',
  'meta_values',
] as const satisfies readonly (keyof RequestLogRow)[];

/**
 * The collector's native record (`POST /v1/logs`), as the forwarder, the shipper and the sample
 * generator produce it. Only `timestamp`, `method` and `status` are required by the collector.
 */
export interface NativeRecord {
  /** Dedupe key: a retried batch carrying the same ids is counted once. */
  id?: string;
  /** ISO 8601 string or epoch milliseconds, of the API call itself. */
  timestamp: string | number;
  customer?: string;
  company_id?: string;
  user_id?: string;
  method: string;
  /** Path without query string (the collector strips one if present). */
  path?: string;
  url?: string;
  host?: string;
  status: number;
  latency_ms?: number;
  request_bytes?: number;
  response_bytes?: number;
  api_version?: string;
  metadata?: Record<string, unknown>;
  /** Allow-listed request headers, lower-case names. */
  headers?: Record<string, string>;
  response_headers?: Record<string, string>;
  /** How many real calls this record stands for (sampling), at least 1. */
  weight?: number;
}

/** Who made a call, as returned by the `identify` hook. */
export interface Identity {
  company_id?: string;
  user_id?: string;
  customer?: string;
  api_version?: string;
  metadata?: Record<string, unknown>;
}

export const DEFAULT_HEADER_ALLOW_LIST: readonly string[] = ['content-type', 'user-agent', 'x-api-version'];

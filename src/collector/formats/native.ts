/**
 * Our own request record, `POST /v1/logs` (a JSON array of these):
 *
 * ```
 * {
 *   id?: string,                       // dedupe key; default: content hash
 *   timestamp: string | number,        // ISO-8601 with zone, or epoch ms (seconds below 1e11)
 *   customer?: string,                 // billed customer; default: company_id, else user_id
 *   company_id?: string | number,
 *   user_id?: string | number,
 *   method: string,                    // GET, POST, … (upper-cased)
 *   path?: string,                     // /v1/widgets?x=1 (query dropped); one of path/url required
 *   url?: string,                      // https://api.example.com/v1/widgets?x=1 (gives host too)
 *   host?: string,                     // default: the url's host
 *   status: number,                    // 100–599
 *   latency_ms?: number,               // default 0
 *   request_bytes?: number,            // default 0
 *   response_bytes?: number,           // default 0
 *   api_version?: string,
 *   metadata?: object,                 // flattened to metadata.<path>
 *   headers?: object,                  // request headers; allow-listed ones kept as header.<name>
 *   response_headers?: object,         // allow-listed ones kept as response_header.<name>
 *   weight?: number                    // sample weight, 1–1,000,000; default 1
 * }
 * ```
 *
 * Unknown top-level keys are ignored (forward compatible); bodies (`request_body`, `response_body`,
 * `body`) are never read or stored.
 */
import type { AdaptContext, AdaptResult, RequestLogRow } from '../request-log.ts';
import { contentEventId } from './event-id.ts';
import { attributed, customerKey } from './customer.ts';
import { headersInto } from './headers.ts';
import { flattenMetadataInto } from './metadata.ts';
import { adaptEach } from './per-event.ts';
import { invalid, isObject, reject } from './rejection.ts';
import { parseHost, parseMethod, parseTarget } from './request-target.ts';
import { parseBytes, parseId, parseLatencyMs, parseSampleWeight, parseStatus, parseText } from './scalars.ts';
import { parseRequestTime, receivedAtSeconds, splitTime } from './time.ts';

export function nativeToRow(raw: unknown, ctx: AdaptContext): RequestLogRow {
  // A plain check rather than a zod object schema: this runs once per event on the hottest path, and
  // zod's loose objects copy every key.
  if (!isObject(raw)) invalid('', raw, 'must be a JSON object (a request log record)');
  const event = raw;
  const eventId = parseId(event.id, 'id') || contentEventId(raw);
  const timeMs = parseRequestTime(event.timestamp, 'timestamp', ctx);
  const customer = parseId(event.customer, 'customer');
  const companyId = parseId(event.company_id, 'company_id');
  const userId = parseId(event.user_id, 'user_id');
  const method = parseMethod(event.method, 'method');
  if (event.path == null && event.url == null) {
    reject('path', 'is required (or url) and must be a path such as /v1/widgets');
  }
  const fromPath = event.path == null ? undefined : parseTarget(event.path, 'path');
  const fromUrl = event.url == null ? undefined : parseTarget(event.url, 'url');
  const route = (fromPath ?? fromUrl)?.route ?? '';
  const host = event.host == null ? fromUrl?.host || fromPath?.host || '' : parseHost(event.host, 'host');
  const status = parseStatus(event.status, 'status');
  const latencyMs = parseLatencyMs(event.latency_ms, 'latency_ms');
  const requestBytes = parseBytes(event.request_bytes, 'request_bytes');
  const responseBytes = parseBytes(event.response_bytes, 'response_bytes');
  const apiVersion = parseText(event.api_version, 'api_version');
  // Metadata, then request headers, then response headers, appended straight to the row's columns.
  const metaKeys: string[] = [];
  const metaValues: string[] = [];
  flattenMetadataInto(metaKeys, metaValues, event.metadata);
  headersInto(metaKeys, metaValues, event.headers, 'header.', ctx.headerAllowList, 'headers');
  headersInto(
    metaKeys,
    metaValues,
    event.response_headers,
    'response_header.',
    ctx.headerAllowList,
    'response_headers',
  );
  const sampleWeight = parseSampleWeight(event.weight, 'weight');
  const { request_time: requestTime, request_time_ms: requestTimeMs } = splitTime(timeMs);

  return {
    event_id: eventId,
    app: ctx.app,
    // timeColumns(ctx, timeMs) spelled out: a spread in the middle of a literal copies key by key.
    received_at: receivedAtSeconds(ctx),
    request_time: requestTime,
    request_time_ms: requestTimeMs,
    customer_key: attributed(
      customerKey(customer, companyId, userId),
      ctx,
      'customer',
      'send customer, company_id or user_id',
    ),
    company_id: companyId,
    user_id: userId,
    method,
    route,
    host,
    status,
    latency_ms: latencyMs,
    request_bytes: requestBytes,
    response_bytes: responseBytes,
    api_version: apiVersion,
    source_format: 'native',
    sample_weight: sampleWeight,
    meta_keys: metaKeys,
    meta_values: metaValues,
  };
}

/** POST /v1/logs: every record converted independently. */
export function adaptNative(events: unknown[], ctx: AdaptContext): AdaptResult {
  return adaptEach(events, ctx, nativeToRow);
}

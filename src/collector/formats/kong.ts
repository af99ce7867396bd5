/**
 * Kong Gateway's http-log plugin payload (the output of `kong.log.serialize()`): one object, or a
 * JSON array of them when the plugin batches.
 *
 * Log entry → row:
 *   event_id                 request.id, else content hash
 *   request_time             started_at (epoch milliseconds; seconds below 1e11)
 *   method                   request.method
 *   route                    request.uri, else request.url, without query string
 *   host                     request header host, else request.url's host
 *   status                   response.status
 *   latency_ms               latencies.request (Kong's whole-request latency)
 *   request_bytes            request.size
 *   response_bytes           response.size
 *   customer_key, company_id consumer.custom_id, else consumer.username, else consumer.id
 *   user_id                  authenticated_entity.id
 *   meta                     metadata.kong.route (route.name), metadata.kong.service (service.name),
 *                            metadata.kong.consumer_id (consumer.id), allow-listed header.* / response_header.*
 * Numbers may arrive as decimal strings (Kong sends upstream_status as one). client_ip, tries and
 * querystring are never stored: client addresses are personal data.
 */
import { z } from 'zod';
import type { AdaptContext, AdaptResult, RequestLogRow } from '../request-log.ts';
import { contentEventId } from './event-id.ts';
import { attributed } from './customer.ts';
import { headerValue, exchangeHeaders } from './headers.ts';
import { adaptEach } from './per-event.ts';
import { checkShape, reject } from './rejection.ts';
import { parseHost, parseMethod, parseTarget } from './request-target.ts';
import {
  parseBytes,
  parseId,
  parseLatencyMs,
  parseStatus,
  parseText,
  type NumberOptions,
} from './scalars.ts';
import { parseRequestTime, timeColumns } from './time.ts';

const optionalObject = z.looseObject({}, 'must be an object').nullish();

const entryShape = z.looseObject(
  {
    request: z.looseObject({}, 'must be an object (the request part of the log entry)'),
    response: z.looseObject({}, 'must be an object (the response part of the log entry)'),
    latencies: optionalObject,
    consumer: optionalObject,
    authenticated_entity: optionalObject,
    route: optionalObject,
    service: optionalObject,
  },
  'must be a JSON object (a Kong http-log entry)',
);

const KONG_NUMBERS: NumberOptions = { allowString: true };

export function kongEntryToRow(raw: unknown, ctx: AdaptContext): RequestLogRow {
  const entry = checkShape(entryShape, raw);
  const { request, response } = entry;
  const eventId = parseId(request.id, 'request.id') || contentEventId(raw);
  const timeMs = parseRequestTime(entry.started_at, 'started_at', ctx);
  const method = parseMethod(request.method, 'request.method');
  if (request.uri == null && request.url == null) {
    reject('request.uri', 'is required (or request.url) and must be a path such as /v1/widgets');
  }
  const fromUri = request.uri == null ? undefined : parseTarget(request.uri, 'request.uri');
  const fromUrl = request.url == null ? undefined : parseTarget(request.url, 'request.url');
  const route = (fromUri ?? fromUrl)?.route ?? '';
  const hostHeader = headerValue(request.headers, 'host');
  const host =
    hostHeader == null ? fromUrl?.host || fromUri?.host || '' : parseHost(hostHeader, 'request.headers.host');

  const consumer = entry.consumer ?? {};
  const customer =
    parseId(consumer.custom_id, 'consumer.custom_id') ||
    parseId(consumer.username, 'consumer.username') ||
    parseId(consumer.id, 'consumer.id');
  const consumerId = parseId(consumer.id, 'consumer.id');
  const routeName = parseText(entry.route?.name, 'route.name');
  const serviceName = parseText(entry.service?.name, 'service.name');
  const kongKeys: string[] = [];
  const kongValues: string[] = [];
  for (const [key, value] of [
    ['metadata.kong.route', routeName],
    ['metadata.kong.service', serviceName],
    ['metadata.kong.consumer_id', consumerId],
  ] as const) {
    if (value === '') continue;
    kongKeys.push(key);
    kongValues.push(value);
  }
  const [headerKeys, headerValues] = exchangeHeaders(request, response, ctx.headerAllowList);

  return {
    event_id: eventId,
    app: ctx.app,
    ...timeColumns(ctx, timeMs),
    customer_key: attributed(
      customer,
      ctx,
      'consumer',
      'Kong logs a consumer (custom_id, username or id) only on a route with an authentication plugin',
    ),
    company_id: customer,
    user_id: parseId(entry.authenticated_entity?.id, 'authenticated_entity.id'),
    method,
    route,
    host,
    status: parseStatus(response.status, 'response.status', KONG_NUMBERS),
    latency_ms: parseLatencyMs(entry.latencies?.request, 'latencies.request', KONG_NUMBERS),
    request_bytes: parseBytes(request.size, 'request.size', KONG_NUMBERS),
    response_bytes: parseBytes(response.size, 'response.size', KONG_NUMBERS),
    api_version: '',
    source_format: 'kong',
    sample_weight: 1,
    meta_keys: [...kongKeys, ...headerKeys],
    meta_values: [...kongValues, ...headerValues],
  };
}

export function adaptKong(events: unknown[], ctx: AdaptContext): AdaptResult {
  return adaptEach(events, ctx, kongEntryToRow);
}

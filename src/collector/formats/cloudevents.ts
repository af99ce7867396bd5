/**
 * CloudEvents 1.0 in structured JSON mode, as OpenMeter and its SDKs send them
 * (`application/cloudevents+json` one event, `application/cloudevents-batch+json` an array).
 *
 * Event → row:
 *   event_id                 `${source}/${id}` with `%` and `/` in source escaped (%25, %2F), so the first
 *                            `/` always ends the source (each required, at most 256 characters)
 *   request_time             time (optional; default: when it was received)
 *   customer_key, company_id subject (required: it is the customer)
 *   route, host              data.route, else data.path (a path or a full URL); data.host overrides the host
 *   method                   data.method
 *   status                   data.status, else data.status_code
 *   latency_ms               data.duration_ms, else data.latency_ms
 *   request_bytes, response_bytes, user_id, api_version   data.<same name>
 *   meta                     metadata.type (the CloudEvents type), then every data field flattened
 *                            as metadata.<key> (mapped ones included; the route without its query)
 * A CloudEvent need not be an HTTP call: without those data fields, method and route are '' and
 * status 0 (only this format accepts status 0). Numbers in data may be sent as decimal strings.
 */
import { z } from 'zod';
import type { AdaptContext, AdaptResult, RequestLogRow } from '../request-log.ts';
import { flattenMetadata } from './metadata.ts';
import { adaptEach } from './per-event.ts';
import { checkShape, invalid, isObject } from './rejection.ts';
import { parseHost, parseMethod, parseTarget, type RequestTarget } from './request-target.ts';
import {
  parseBytes,
  parseId,
  parseLatencyMs,
  parseStatus,
  parseText,
  requireId,
  type NumberOptions,
} from './scalars.ts';
import { parseRequestTime, timeColumns } from './time.ts';

const requiredString = (what: string) =>
  z.string(`must be a non-empty string (${what})`).min(1, `must be a non-empty string (${what})`);

const envelopeShape = z.looseObject(
  {
    specversion: z.literal('1.0', 'must be "1.0" (CloudEvents 1.0)'),
    id: requiredString('the event id'),
    source: requiredString('who sent the event'),
    type: requiredString('the event type'),
    subject: requiredString('the customer the event is billed to'),
  },
  'must be a JSON object (a CloudEvent)',
);

const DATA_NUMBERS: NumberOptions = { allowString: true };

export function cloudEventToRow(raw: unknown, ctx: AdaptContext): RequestLogRow {
  const event = checkShape(envelopeShape, raw);
  const id = requireId(event.id, 'id');
  const source = requireId(event.source, 'source');
  const type = requireId(event.type, 'type');
  const subject = requireId(event.subject, 'subject');
  const timeMs = event.time == null ? ctx.receivedAtMs : parseRequestTime(event.time, 'time', ctx);
  const data = event.data ?? {};
  if (!isObject(data)) invalid('data', data, 'must be a JSON object');

  const targetField = data.route == null ? 'data.path' : 'data.route';
  const targetValue = data.route ?? data.path;
  const target: RequestTarget =
    targetValue == null ? { route: '', host: '' } : parseTarget(targetValue, targetField);
  const host = data.host == null ? target.host : parseHost(data.host, 'data.host');
  const status =
    data.status == null
      ? parseStatus(data.status_code, 'data.status_code', { ...DATA_NUMBERS, optional: true })
      : parseStatus(data.status, 'data.status', { ...DATA_NUMBERS, optional: true });
  const latencyMs =
    data.duration_ms == null
      ? parseLatencyMs(data.latency_ms, 'data.latency_ms', DATA_NUMBERS)
      : parseLatencyMs(data.duration_ms, 'data.duration_ms', DATA_NUMBERS);
  const [dataKeys, dataValues] = flattenMetadata(data, { field: 'data', alreadyUsed: 1 });
  // The route's query string may carry personal data (?ssn=…): metadata keeps the stripped route too.
  const routeKey = `metadata.${targetField.slice('data.'.length)}`;
  const routeIndex = dataKeys.indexOf(routeKey);
  if (routeIndex >= 0) dataValues[routeIndex] = target.route;

  return {
    // `/` and `%` escaped in the source, so the first `/` always separates it from the id:
    // (gateway/eu, 42) and (gateway, eu/42) stay two events.
    event_id: `${source.replaceAll('%', '%25').replaceAll('/', '%2F')}/${id}`,
    app: ctx.app,
    ...timeColumns(ctx, timeMs),
    customer_key: subject,
    company_id: subject,
    user_id: parseId(data.user_id, 'data.user_id'),
    method: parseMethod(data.method, 'data.method', { optional: true }),
    route: target.route,
    host,
    status,
    latency_ms: latencyMs,
    request_bytes: parseBytes(data.request_bytes, 'data.request_bytes', DATA_NUMBERS),
    response_bytes: parseBytes(data.response_bytes, 'data.response_bytes', DATA_NUMBERS),
    api_version: parseText(data.api_version, 'data.api_version'),
    source_format: 'cloudevents',
    sample_weight: 1,
    meta_keys: ['metadata.type', ...dataKeys],
    meta_values: [type, ...dataValues],
  };
}

export function adaptCloudEvents(events: unknown[], ctx: AdaptContext): AdaptResult {
  return adaptEach(events, ctx, cloudEventToRow);
}

import { createHash } from 'node:crypto';
/**
 * Moesif's wire format, as the Moesif SDKs send it: events (`POST /v1/events` one object,
 * `POST /v1/events/batch` an array), and the side records users, companies and actions.
 *
 * Event → row:
 *   event_id        'm:' + hash of (transaction id, time, method, route, host, company, user), where the
 *                   transaction id is transaction_id, else header x-moesif-transaction-id (request, then
 *                   response); without one, the content hash. The transaction id is kept as
 *                   metadata.moesif.transaction_id (see moesifEventToRow for why it is not the id itself)
 *   request_time    request.time (ISO-8601; without a zone it is UTC, as Moesif documents)
 *   latency_ms      response.time − request.time, at least 0 (0 without response.time)
 *   method / route  request.verb / request.uri without query string and fragment
 *   host            the Host header (cut off request.uri as a whole), else request.uri's host; '' unless a
 *                   plain host[:port]
 *   status          response.status
 *   *_bytes         content-length header when numeric, else the body's size: its JSON text as UTF-8,
 *                   the decoded bytes when transfer_encoding is base64, a string's UTF-8 bytes; else 0
 *   company_id, user_id, customer_key (company_id, else user_id), api_version (request.api_version)
 *   sample_weight   weight
 *   meta            metadata.* (flattened metadata), metadata.moesif.direction (Incoming/Outgoing),
 *                   allow-listed header.* and response_header.*
 * Never stored: bodies, request.ip_address, session_token.
 */
import { Buffer } from 'node:buffer';
import { z } from 'zod';
import type { AdaptContext, AdaptResult, RequestLogRow } from '../request-log.ts';
import { contentEventId } from './event-id.ts';
import { attributed, customerKey } from './customer.ts';
import { headerValue, exchangeHeaders } from './headers.ts';
import { LIMITS } from './limits.ts';
import { flattenMetadata } from './metadata.ts';
import {
  adaptEach,
  adaptItems,
  adaptOne,
  jsonByteLength,
  type BatchResult,
  type ItemResult,
} from './per-event.ts';
import { checkShape, isObject, reject } from './rejection.ts';
import { parseHost, parseMethod, parseTarget } from './request-target.ts';
import { parseId, parseSampleWeight, parseStatus, parseText, requireId } from './scalars.ts';
import { parseRequestTime, parseTimestampMs, timeColumns, type TimestampOptions } from './time.ts';

export type { BatchResult, ItemResult } from './per-event.ts';

const TRANSACTION_ID_HEADER = 'x-moesif-transaction-id';
const MOESIF_TIME: TimestampOptions = { zonelessIsUtc: true };

const eventShape = z.looseObject(
  {
    request: z.looseObject({}, 'must be an object (the request part of the event)'),
    response: z.looseObject({}, 'must be an object (the response part of the event)'),
  },
  'must be a JSON object (a Moesif event)',
);

export function moesifEventToRow(raw: unknown, ctx: AdaptContext): RequestLogRow {
  const event = checkShape(eventShape, raw);
  const { request, response } = event;
  const transactionId = firstText(
    event.transaction_id,
    headerValue(request.headers, TRANSACTION_ID_HEADER),
    headerValue(response.headers, TRANSACTION_ID_HEADER),
  );
  const requestMs = parseRequestTime(request.time, 'request.time', ctx, MOESIF_TIME);
  const responseMs =
    response.time == null ? requestMs : parseTimestampMs(response.time, 'response.time', MOESIF_TIME);
  const latencyMs = Math.max(0, responseMs - requestMs);
  if (latencyMs > LIMITS.latencyMsMax) {
    reject('response.time', `must be at most ${LIMITS.latencyMsMax} ms after request.time`);
  }
  const { route, host } = moesifTarget(request);
  const method = parseMethod(request.verb, 'request.verb');
  const status = parseStatus(response.status, 'response.status');
  const companyId = parseId(event.company_id, 'company_id');
  const userId = parseId(event.user_id, 'user_id');
  const apiVersion = parseText(request.api_version, 'request.api_version');
  const direction = parseText(event.direction, 'direction');
  const keepTransactionId =
    transactionId !== '' && [...transactionId].length <= LIMITS.idChars && !transactionId.includes('\u0000');
  const [metaKeys, metaValues] = flattenMetadata(event.metadata, {
    alreadyUsed: (direction === '' ? 0 : 1) + (keepTransactionId ? 1 : 0),
  });
  if (direction !== '') {
    metaKeys.push('metadata.moesif.direction');
    metaValues.push(direction);
  }
  if (keepTransactionId) {
    metaKeys.push('metadata.moesif.transaction_id');
    metaValues.push(transactionId);
  }
  const [headerKeys, headerValues] = exchangeHeaders(request, response, ctx.headerAllowList);

  return {
    // The transaction id is chosen by whoever calls the API (the SDK reuses an incoming
    // X-Moesif-Transaction-Id header), so alone it would let a caller collapse its own calls into one
    // and not be billed. Hashed with what identifies the call, a retry still maps to the same id while
    // a forged one does not swallow other calls; an id of any length is fine.
    event_id:
      transactionId === ''
        ? contentEventId(raw)
        : `m:${createHash('sha256')
            .update(JSON.stringify([transactionId, requestMs, method, route, host, companyId, userId]))
            .digest('hex')
            .slice(0, 32)}`,
    app: ctx.app,
    ...timeColumns(ctx, requestMs),
    customer_key: attributed(
      customerKey('', companyId, userId),
      ctx,
      'company_id',
      'send company_id or user_id (identifyCompany or identifyUser in the Moesif SDKs)',
    ),
    company_id: companyId,
    user_id: userId,
    method,
    route,
    host,
    status,
    latency_ms: latencyMs,
    request_bytes: bodyBytes(request),
    response_bytes: bodyBytes(response),
    api_version: apiVersion,
    source_format: 'moesif',
    sample_weight: parseSampleWeight(event.weight, 'weight'),
    meta_keys: [...metaKeys, ...headerKeys],
    meta_values: [...metaValues, ...headerValues],
  };
}

/** The first of the values that is a non-empty string (or a number, as text). */
function firstText(...values: unknown[]): string {
  for (const v of values) {
    if (typeof v === 'string' && v !== '') return v;
    if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  }
  return '';
}

const SAFE_HOST = /^[a-z0-9.-]+(:\d{1,5})?$|^\[[0-9a-f:.]+\](:\d{1,5})?$/i;

/**
 * Route and host of a Moesif event. The SDKs build `uri` as scheme + Host header + original URL, and the
 * Host header is the API caller's to choose: `Host: free.example/healthz?` would otherwise turn a billed
 * `/RetrieveCreditScore` into `/healthz`. So the Host header's text is cut off the uri as a whole, and a
 * host that is not a plain host[:port] is not stored.
 */
function moesifTarget(request: Record<string, unknown>): { route: string; host: string } {
  const hostHeader = headerValue(request.headers, 'host');
  const uri = request.uri;
  if (typeof uri === 'string' && typeof hostHeader === 'string' && hostHeader !== '') {
    for (const scheme of ['http://', 'https://']) {
      if (uri.startsWith(scheme + hostHeader)) {
        const rest = uri.slice(scheme.length + hostHeader.length);
        // Only when the Host header is the uri's whole authority: `127.0.0.1:3` is not `127.0.0.1:37785`.
        if (rest !== '' && !/^[/?#]/.test(rest)) continue;
        const { route } = parseTarget(rest.startsWith('/') ? rest : `/${rest}`, 'request.uri');
        return {
          route,
          host: SAFE_HOST.test(hostHeader) ? parseHost(hostHeader, 'request.headers.host') : '',
        };
      }
    }
  }
  const target = parseTarget(uri, 'request.uri');
  const host =
    target.host ||
    (typeof hostHeader === 'string' && SAFE_HOST.test(hostHeader)
      ? parseHost(hostHeader, 'request.headers.host')
      : '');
  return { route: target.route, host: SAFE_HOST.test(host) ? host : '' };
}

/** Size of a request or response: its content-length header when numeric, else measured from the body. */
function bodyBytes(part: Record<string, unknown>): number {
  const declared = headerValue(part.headers, 'content-length');
  const length =
    typeof declared === 'string' && /^\s*\d{1,16}\s*$/.test(declared) ? Number(declared) : declared;
  if (typeof length === 'number' && Number.isSafeInteger(length) && length >= 0) return length;
  const body = part.body;
  if (body == null) return 0;
  if (typeof body === 'string') {
    const encoding = part.transfer_encoding ?? part.transferEncoding;
    return encoding === 'base64' ? Buffer.from(body, 'base64').length : Buffer.byteLength(body, 'utf8');
  }
  return jsonByteLength(body) ?? 0;
}

/** POST /v1/events (wrapped in an array by the caller) and /v1/events/batch. */
export function adaptMoesif(events: unknown[], ctx: AdaptContext): AdaptResult {
  return adaptEach(events, ctx, moesifEventToRow);
}

// ---------------------------------------------------------------------------------------------------
// Side records. Times are epoch milliseconds.

export interface MoesifCompany {
  company_id: string;
  /** When the profile was last modified, if the sender said. */
  modified_time?: number;
  meta_keys: string[];
  meta_values: string[];
  /** metadata.stripe_customer_id when it is a string, else ''. */
  stripe_customer_id: string;
}

export interface MoesifUser {
  user_id: string;
  company_id: string;
  meta_keys: string[];
  meta_values: string[];
}

export interface MoesifAction {
  /** transaction_id, else content hash. */
  event_id: string;
  action_name: string;
  user_id: string;
  company_id: string;
  /** request.time (within the accepted window), else when it was received. */
  time: number;
  meta_keys: string[];
  meta_values: string[];
}

const companyShape = z.looseObject({}, 'must be a JSON object (a Moesif company)');
const userShape = z.looseObject({}, 'must be a JSON object (a Moesif user)');
const actionShape = z.looseObject(
  { request: z.looseObject({}, 'must be an object').nullish() },
  'must be a JSON object (a Moesif action)',
);

function companyFromMoesif(raw: unknown): MoesifCompany {
  const company = checkShape(companyShape, raw);
  const companyId = requireId(company.company_id, 'company_id');
  const modifiedTime =
    company.modified_time == null
      ? undefined
      : parseTimestampMs(company.modified_time, 'modified_time', MOESIF_TIME);
  const [metaKeys, metaValues] = flattenMetadata(company.metadata);
  const stripeId = isObject(company.metadata) ? company.metadata.stripe_customer_id : undefined;
  return {
    company_id: companyId,
    ...(modifiedTime === undefined ? {} : { modified_time: modifiedTime }),
    meta_keys: metaKeys,
    meta_values: metaValues,
    stripe_customer_id: typeof stripeId === 'string' ? parseId(stripeId, 'metadata.stripe_customer_id') : '',
  };
}

function userFromMoesif(raw: unknown): MoesifUser {
  const user = checkShape(userShape, raw);
  const userId = requireId(user.user_id, 'user_id');
  const companyId = parseId(user.company_id, 'company_id');
  const [metaKeys, metaValues] = flattenMetadata(user.metadata);
  return { user_id: userId, company_id: companyId, meta_keys: metaKeys, meta_values: metaValues };
}

function actionFromMoesif(raw: unknown, ctx: AdaptContext): MoesifAction {
  const action = checkShape(actionShape, raw);
  const eventId = parseId(action.transaction_id, 'transaction_id') || contentEventId(raw);
  const actionName = requireId(action.action_name, 'action_name');
  const time =
    action.request?.time == null
      ? ctx.receivedAtMs
      : parseRequestTime(action.request.time, 'request.time', ctx, MOESIF_TIME);
  const [metaKeys, metaValues] = flattenMetadata(action.metadata);
  return {
    event_id: eventId,
    action_name: actionName,
    user_id: parseId(action.user_id, 'user_id'),
    company_id: parseId(action.company_id, 'company_id'),
    time,
    meta_keys: metaKeys,
    meta_values: metaValues,
  };
}

/** POST /v1/companies. `index` is reported in the rejection. */
export function adaptMoesifCompany(raw: unknown, ctx: AdaptContext, index = 0): ItemResult<MoesifCompany> {
  return adaptOne(raw, index, ctx, companyFromMoesif);
}

/** POST /v1/companies/batch. */
export function adaptMoesifCompanies(items: unknown[], ctx: AdaptContext): BatchResult<MoesifCompany> {
  return adaptItems(items, ctx, companyFromMoesif);
}

/** POST /v1/users. */
export function adaptMoesifUser(raw: unknown, ctx: AdaptContext, index = 0): ItemResult<MoesifUser> {
  return adaptOne(raw, index, ctx, userFromMoesif);
}

/** POST /v1/users/batch. */
export function adaptMoesifUsers(items: unknown[], ctx: AdaptContext): BatchResult<MoesifUser> {
  return adaptItems(items, ctx, userFromMoesif);
}

/** POST /v1/actions. */
export function adaptMoesifAction(raw: unknown, ctx: AdaptContext, index = 0): ItemResult<MoesifAction> {
  return adaptOne(raw, index, ctx, actionFromMoesif);
}

/** POST /v1/actions/batch. */
export function adaptMoesifActions(items: unknown[], ctx: AdaptContext): BatchResult<MoesifAction> {
  return adaptItems(items, ctx, actionFromMoesif);
}

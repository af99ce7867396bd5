import type { Context, Next } from 'koa';
import { DomainError, InvalidEventsError, SpoolFullError, UpstreamError, type ErrorCode } from '../errors.ts';

/**
 * The one place where errors become HTTP: RFC 9457 problem+json. 4xx explain themselves;
 * 5xx say nothing beyond their title and are logged with the request id.
 */
const STATUS: Record<ErrorCode, number> = {
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  method_not_allowed: 405,
  not_implemented: 501,
  invalid_request: 400,
  // 422: the request is well formed, but what it asks for cannot be done with the meters as defined.
  range_not_covered: 422,
  invalid_events: 400,
  malformed_body: 400,
  unsupported_media_type: 415,
  unsupported_encoding: 415,
  payload_too_large: 413,
  // 400, as Stripe's own examples answer a bad signature (401 would invite a Bearer challenge).
  invalid_signature: 400,
  // 503, not 404: Stripe keeps retrying a 5xx for days, so events sent before the secret was set still arrive.
  webhooks_disabled: 503,
  // 503 like a dependency that is not there: the service runs, the Stripe side of it is off.
  stripe_disabled: 503,
  spool_full: 503,
  upstream_unavailable: 503,
  internal: 500,
};

const TITLE: Record<ErrorCode, string> = {
  unauthorized: 'Missing, unknown or revoked key',
  forbidden: 'Forbidden',
  not_found: 'Not found',
  method_not_allowed: 'Method not allowed',
  not_implemented: 'Method not implemented',
  invalid_request: 'Invalid request',
  range_not_covered: 'No version of the meter covers this range',
  invalid_events: 'Invalid events',
  malformed_body: 'Malformed body',
  unsupported_media_type: 'Unsupported media type',
  unsupported_encoding: 'Unsupported content encoding',
  payload_too_large: 'Payload too large',
  invalid_signature: 'Invalid Stripe-Signature',
  webhooks_disabled: 'Stripe webhooks are not configured: set STRIPE_WEBHOOK_SECRET',
  stripe_disabled: 'Stripe is not configured: set STRIPE_SECRET_KEY',
  spool_full: 'Temporarily unable to accept events',
  upstream_unavailable: 'A dependency is unavailable',
  internal: 'Internal error',
};

export interface ProblemLogger {
  error(obj: object, msg: string): void;
}

/**
 * 5xx that are states of the service an operator chose or is told about where they arise (a full
 * spool, webhooks not configured, a method no route knows), not failures: no error log with a stack
 * for each request that meets them.
 */
const NOT_LOGGED: ReadonlySet<ErrorCode> = new Set([
  'spool_full',
  'webhooks_disabled',
  'stripe_disabled',
  'not_implemented',
]);

/** A status that a router or Koa set without a body (no route, a method not routed): a problem too. */
function emptyResponseError(ctx: Context): DomainError | undefined {
  if (ctx.body != null || ctx.status < 400) return undefined;
  switch (ctx.status) {
    case 404:
      return new DomainError('not_found', `no route for ${ctx.method} ${ctx.path}`);
    case 405: {
      // Koa 3 answers undefined for a header that is not set, whatever its type says.
      const allow = (ctx.response.get('Allow') as string | undefined) ?? '';
      const allowed = allow === '' ? [] : allow.split(/,\s*/);
      return new DomainError(
        'method_not_allowed',
        `${ctx.method} is not allowed on ${ctx.path}; allowed: ${allowed.join(', ')}`,
        { allow: allowed },
      );
    }
    case 501:
      return new DomainError('not_implemented', `the method ${ctx.method} is not implemented here`);
    default:
      return new DomainError(ctx.status >= 500 ? 'internal' : 'invalid_request', ctx.message);
  }
}

export function problemMiddleware(logger: ProblemLogger) {
  return async function problems(ctx: Context, next: Next): Promise<void> {
    try {
      await next();
      const empty = emptyResponseError(ctx);
      if (empty) throw empty;
    } catch (err) {
      const problem = toProblem(err, ctx);
      if (problem.status >= 500 && !(err instanceof DomainError && NOT_LOGGED.has(err.code))) {
        logger.error({ err, requestId: ctx.state.requestId, path: ctx.path }, 'request failed');
      }
      ctx.status = problem.status;
      ctx.type = 'application/problem+json';
      ctx.body = problem;
      if (err instanceof SpoolFullError) ctx.set('Retry-After', String(err.retryAfterSeconds));
      if (problem.status === 401) ctx.set('WWW-Authenticate', 'Bearer realm="billing-meter"');
    }
  };
}

interface Problem {
  type: string;
  title: string;
  status: number;
  detail?: string;
  instance?: string;
  [extension: string]: unknown;
}

function toProblem(err: unknown, ctx: Context): Problem {
  if (err instanceof DomainError) {
    const status = STATUS[err.code];
    const body: Problem = {
      type: `https://billing-meter.dev/problems/${err.code.replaceAll('_', '-')}`,
      title: TITLE[err.code],
      status,
      instance: ctx.path,
      request_id: ctx.state.requestId,
    };
    if (status < 500 || NOT_LOGGED.has(err.code)) body.detail = err.message;
    if (err instanceof InvalidEventsError) {
      body.accepted = err.accepted;
      body.unattributed = err.unattributed;
      body.rejected = err.rejected;
    } else if (status < 500) {
      Object.assign(body, err.details);
    }
    return body;
  }
  if (err instanceof UpstreamError && err.retryable) {
    return {
      type: 'https://billing-meter.dev/problems/upstream-unavailable',
      title: TITLE.upstream_unavailable,
      status: 503,
      instance: ctx.path,
      request_id: ctx.state.requestId,
    };
  }
  // Koa and its body helpers throw HttpErrors with `status` and `expose`.
  if (typeof err === 'object' && err !== null && 'status' in err && typeof err.status === 'number') {
    const status = err.status;
    const expose = 'expose' in err && err.expose === true;
    if (status >= 400 && status < 500) {
      return {
        type: 'about:blank',
        title: expose && err instanceof Error ? err.message : 'Bad request',
        status,
        instance: ctx.path,
        request_id: ctx.state.requestId,
      };
    }
  }
  return {
    type: 'https://billing-meter.dev/problems/internal',
    title: TITLE.internal,
    status: 500,
    instance: ctx.path,
    request_id: ctx.state.requestId,
  };
}

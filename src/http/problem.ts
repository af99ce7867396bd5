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
  invalid_request: 400,
  invalid_events: 400,
  malformed_body: 400,
  unsupported_media_type: 415,
  unsupported_encoding: 415,
  payload_too_large: 413,
  // 400, as Stripe's own examples answer a bad signature (401 would invite a Bearer challenge).
  invalid_signature: 400,
  // 503, not 404: Stripe keeps retrying a 5xx for days, so events sent before the secret was set still arrive.
  webhooks_disabled: 503,
  spool_full: 503,
  upstream_unavailable: 503,
  internal: 500,
};

const TITLE: Record<ErrorCode, string> = {
  unauthorized: 'Missing, unknown or revoked key',
  forbidden: 'Forbidden',
  not_found: 'Not found',
  invalid_request: 'Invalid request',
  invalid_events: 'Invalid events',
  malformed_body: 'Malformed body',
  unsupported_media_type: 'Unsupported media type',
  unsupported_encoding: 'Unsupported content encoding',
  payload_too_large: 'Payload too large',
  invalid_signature: 'Invalid Stripe-Signature',
  webhooks_disabled: 'Stripe webhooks are not configured: set STRIPE_WEBHOOK_SECRET',
  spool_full: 'Temporarily unable to accept events',
  upstream_unavailable: 'A dependency is unavailable',
  internal: 'Internal error',
};

export interface ProblemLogger {
  error(obj: object, msg: string): void;
}

export function problemMiddleware(logger: ProblemLogger) {
  return async function problems(ctx: Context, next: Next): Promise<void> {
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) {
        throw new DomainError('not_found', `no route for ${ctx.method} ${ctx.path}`);
      }
    } catch (err) {
      const problem = toProblem(err, ctx);
      if (problem.status >= 500 && !(err instanceof SpoolFullError)) {
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
    if (status < 500 || err instanceof SpoolFullError) body.detail = err.message;
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

import { describe, expect, it } from 'vitest';
import Stripe from 'stripe';
import { StripeCallError } from '../../../src/billing/stripe/ports.ts';
import { translateStripeError } from '../../../src/adapters/stripe/stripe-gateway.ts';

const E = Stripe.errors;
const raw = (
  statusCode: number,
  extra: Record<string, unknown> = {},
  headers: Record<string, string> = {},
) => ({
  message: 'boom',
  statusCode,
  headers,
  ...extra,
});

describe('translateStripeError', () => {
  it.each([
    ['429', new E.StripeRateLimitError(raw(429, { code: 'rate_limit' })), true, 'rate_limited'],
    ['500', new E.StripeAPIError(raw(500)), true, 'server'],
    ['503', new E.StripeAPIError(raw(503)), true, 'server'],
    [
      '409 lock_timeout',
      new E.StripeInvalidRequestError(raw(409, { code: 'lock_timeout' })),
      true,
      'invalid_request',
    ],
    ['409 idempotency in flight', new E.StripeIdempotencyError(raw(409)), true, 'invalid_request'],
    ['connection', new E.StripeConnectionError({ message: 'socket hang up' }), true, 'network'],
    [
      '400',
      new E.StripeInvalidRequestError(raw(400, { code: 'parameter_invalid', param: 'x' })),
      false,
      'invalid_request',
    ],
    ['400 idempotency misuse', new E.StripeIdempotencyError(raw(400)), false, 'invalid_request'],
    [
      '404',
      new E.StripeInvalidRequestError(raw(404, { code: 'resource_missing' })),
      false,
      'invalid_request',
    ],
    ['401', new E.StripeAuthenticationError(raw(401)), false, 'authentication'],
    ['403', new E.StripePermissionError(raw(403)), false, 'authentication'],
  ] as const)('%s → retryable %s, kind %s', (_name, error, retryable, kind) => {
    const translated = translateStripeError(error, 'do it');
    expect(translated).toBeInstanceOf(StripeCallError);
    expect(translated.retryable).toBe(retryable);
    expect(translated.details.kind).toBe(kind);
    expect(translated.cause).toBe(error);
    expect(translated.message).toMatch(/^stripe: do it: /);
  });

  it('lets Stripe-Should-Retry override the status either way, and reports it', () => {
    const no = translateStripeError(
      new E.StripeAPIError(raw(500, {}, { 'stripe-should-retry': 'false' })),
      'x',
    );
    expect(no).toMatchObject({
      retryable: false,
      details: { status: 500, shouldRetry: false, kind: 'server' },
    });
    const yes = translateStripeError(
      new E.StripeInvalidRequestError(raw(400, { code: 'x' }, { 'stripe-should-retry': 'true' })),
      'x',
    );
    expect(yes).toMatchObject({ retryable: true, details: { status: 400, shouldRetry: true, code: 'x' } });
    expect(translateStripeError(new E.StripeAPIError(raw(500)), 'x').details).not.toHaveProperty(
      'shouldRetry',
    );
  });

  it('carries code and param; redacts keys Stripe quotes back', () => {
    const error = translateStripeError(
      new E.StripeAuthenticationError({ ...raw(401), message: 'Invalid API Key provided: sk_live_abcd' }),
      'x',
    );
    expect(error.message).toBe('stripe: x: Invalid API Key provided: sk_live_[redacted]');
    const invalid = translateStripeError(
      new E.StripeInvalidRequestError(raw(400, { code: 'parameter_missing', param: 'event_name' })),
      'x',
    );
    expect(invalid.details).toEqual({
      status: 400,
      code: 'parameter_missing',
      param: 'event_name',
      kind: 'invalid_request',
    });
  });

  it('treats bare socket errors as retryable network errors and anything else as not retryable', () => {
    const reset = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
    expect(translateStripeError(reset, 'x')).toMatchObject({ retryable: true, details: { kind: 'network' } });
    expect(translateStripeError(new TypeError('bug'), 'x')).toMatchObject({
      retryable: false,
      details: { kind: 'other' },
    });
    const already = new StripeCallError('m', true, { kind: 'server' });
    expect(translateStripeError(already, 'x')).toBe(already);
  });
});

// Stripe's error envelope: `{ error: { type, message, code?, param? } }` with the HTTP status that
// stripe-node maps to its error classes (400/404 invalid request, 401 authentication, 429 rate limit).

export type StripeErrorType =
  | 'invalid_request_error'
  | 'api_error'
  | 'idempotency_error'
  | 'rate_limit_error'
  | 'temporary_session_expired';

export class StripeEmulatorError extends Error {
  constructor(
    readonly status: number,
    readonly type: StripeErrorType,
    message: string,
    readonly code?: string,
    readonly param?: string,
  ) {
    super(message);
  }

  toBody(): { error: Record<string, string> } {
    const error: Record<string, string> = { type: this.type, message: this.message };
    if (this.code !== undefined) error.code = this.code;
    if (this.param !== undefined) error.param = this.param;
    return { error };
  }
}

export function invalidParam(
  message: string,
  param: string,
  code = 'parameter_invalid',
): StripeEmulatorError {
  return new StripeEmulatorError(400, 'invalid_request_error', message, code, param);
}

export function missingParam(param: string): StripeEmulatorError {
  return invalidParam(`Missing required param: ${param}.`, param, 'parameter_missing');
}

export function resourceMissing(kind: string, id: string, param = 'id'): StripeEmulatorError {
  return new StripeEmulatorError(
    404,
    'invalid_request_error',
    `No such ${kind}: '${id}'`,
    'resource_missing',
    param,
  );
}

export function unknownParams(body: Record<string, unknown>, allowed: readonly string[]): void {
  for (const key of Object.keys(body)) {
    if (key !== 'expand' && !allowed.includes(key)) {
      throw invalidParam(`Received unknown parameter: ${key}`, key, 'parameter_unknown');
    }
  }
}

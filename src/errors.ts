/** One rejected event of a batch: which one, which field, and why. */
export interface EventRejection {
  index: number;
  field: string;
  reason: string;
}

/**
 * Domain errors: a closed set of codes. `http/problem.ts` alone maps them to HTTP status and
 * problem+json; nothing else decides a status code.
 */
export type ErrorCode =
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'method_not_allowed'
  | 'not_implemented'
  | 'invalid_request'
  | 'range_not_covered'
  | 'invalid_events'
  | 'malformed_body'
  | 'unsupported_media_type'
  | 'unsupported_encoding'
  | 'payload_too_large'
  | 'invalid_signature'
  | 'webhooks_disabled'
  | 'stripe_disabled'
  | 'spool_full'
  | 'upstream_unavailable'
  | 'internal';

export class DomainError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'DomainError';
  }
}

/**
 * Some or all events of a batch were rejected; `accepted` of them were stored anyway, `unattributed`
 * of those without a customer (stored, never billed).
 */
export class InvalidEventsError extends DomainError {
  constructor(
    readonly accepted: number,
    readonly rejected: EventRejection[],
    readonly tooLarge: boolean,
    readonly unattributed = 0,
  ) {
    super(
      tooLarge ? 'payload_too_large' : 'invalid_events',
      accepted > 0
        ? `${rejected.length} event(s) rejected; the other ${accepted} were accepted and stored, do not resend them`
        : `all ${rejected.length} event(s) rejected`,
      { accepted, unattributed, rejected },
    );
  }
}

export class SpoolFullError extends DomainError {
  constructor(readonly retryAfterSeconds: number) {
    super('spool_full', 'ClickHouse is unreachable and the local spool is full; retry later', {});
  }
}

/** A failure of a dependency (ClickHouse, Stripe). `retryable` says whether trying again may help. */
export class UpstreamError extends Error {
  constructor(
    readonly service: string,
    message: string,
    readonly retryable: boolean,
    options?: { cause?: unknown },
  ) {
    super(`${service}: ${message}`, options);
    this.name = 'UpstreamError';
  }
}

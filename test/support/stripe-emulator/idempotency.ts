// Stripe's idempotency: a key replays the first response for 24 h (emulated), but only for the same
// method, path and body; a different request under the same key is an idempotency_error. Responses to
// requests refused before any work (4xx validation) are not saved, as on Stripe; 2xx and 5xx are.
import { DAY_MS } from './state.ts';
import { StripeEmulatorError } from './stripe-error.ts';
import type { EmulatorResponse } from './routing.ts';

interface Saved {
  fingerprint: string;
  response: EmulatorResponse;
  savedAtMs: number;
}

export type IdempotencyLookup = { kind: 'fresh' } | { kind: 'replay'; response: EmulatorResponse };

export class IdempotencyStore {
  private readonly saved = new Map<string, Saved>();
  private readonly inFlight = new Set<string>();

  constructor(private readonly now: () => number) {}

  begin(key: string, fingerprint: string): IdempotencyLookup {
    const saved = this.saved.get(key);
    if (saved !== undefined && this.now() - saved.savedAtMs < DAY_MS) {
      if (saved.fingerprint !== fingerprint) {
        throw new StripeEmulatorError(
          400,
          'idempotency_error',
          `Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '${key}' if you meant to execute a different request.`,
        );
      }
      return { kind: 'replay', response: saved.response };
    }
    if (this.inFlight.has(key)) {
      throw new StripeEmulatorError(
        409,
        'idempotency_error',
        'There is currently another in-progress request using this Idempotent Key (that probably means you submitted twice, and the other request is still going through): ' +
          `${key}. Please try again later.`,
      );
    }
    this.inFlight.add(key);
    return { kind: 'fresh' };
  }

  finish(key: string, fingerprint: string, response: EmulatorResponse): void {
    this.inFlight.delete(key);
    if (response.status >= 400 && response.status < 500) return;
    this.saved.set(key, { fingerprint, response, savedAtMs: this.now() });
  }
}

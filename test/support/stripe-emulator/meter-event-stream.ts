// The v2 high-throughput path: a session (made with the secret key) hands out an authentication
// token valid for 15 minutes of emulated time; the stream takes JSON batches of up to 100 events
// authenticated by that token. A batch is all-or-nothing here: the first invalid event refuses it.
import { invalidParam, StripeEmulatorError } from './stripe-error.ts';
import { validateMeterEvent } from './meter-events.ts';
import { ok, route, type Route } from './routing.ts';
import type { EmulatorState, MeterEventSession } from './state.ts';

export const SESSION_TTL_MS = 15 * 60 * 1000;
const MAX_EVENTS = 100;

export function sessionForToken(state: EmulatorState, token: string): MeterEventSession {
  const session = state.sessions.get(token);
  if (session === undefined) {
    throw new StripeEmulatorError(
      401,
      'invalid_request_error',
      'Invalid meter event session token provided.',
      'invalid_api_key',
    );
  }
  if (state.clock.now() >= session.expiresAtMs) {
    throw new StripeEmulatorError(
      401,
      'temporary_session_expired',
      'The meter event session has expired. Create a new session.',
      'billing_meter_event_session_expired',
    );
  }
  return session;
}

function parseTimestamp(raw: unknown, param: string): number | undefined {
  if (raw === undefined) return undefined;
  const ms = typeof raw === 'string' ? Date.parse(raw) : Number.NaN;
  if (Number.isNaN(ms)) throw invalidParam('Invalid timestamp: must be an RFC 3339 date-time.', param);
  return Math.floor(ms / 1000);
}

export const meterEventStreamRoutes: Route[] = [
  route('POST', '/v2/billing/meter_event_session', (req) => {
    const now = req.state.clock.now();
    const session: MeterEventSession = {
      id: req.state.newId('mtrsess'),
      token: `mtrtok_${req.state.newId('test').slice(5)}`,
      expiresAtMs: now + SESSION_TTL_MS,
    };
    req.state.sessions.set(session.token, session);
    return ok({
      id: session.id,
      object: 'v2.billing.meter_event_session',
      authentication_token: session.token,
      created: new Date(now).toISOString(),
      expires_at: new Date(session.expiresAtMs).toISOString(),
      livemode: false,
    });
  }),
  route('POST', '/v2/billing/meter_event_stream', (req) => {
    const events = req.body.events;
    if (!Array.isArray(events) || events.length === 0)
      throw invalidParam('events must be a non-empty array.', 'events');
    if (events.length > MAX_EVENTS)
      throw invalidParam(`events can hold at most ${MAX_EVENTS} events.`, 'events');
    const accepted = events.map((raw: unknown, i) => {
      const param = `events[${i}]`;
      if (typeof raw !== 'object' || raw === null) throw invalidParam('Invalid object', param);
      const input = raw as Record<string, unknown>;
      const event = validateMeterEvent(
        req.state,
        {
          event_name: input.event_name,
          payload: input.payload,
          identifier: input.identifier,
          timestamp: parseTimestamp(input.timestamp, `${param}[timestamp]`),
        },
        'v2',
        param,
      );
      return event;
    });
    const seen = new Set<string>();
    accepted.forEach((event, i) => {
      if (seen.has(event.identifier)) {
        throw new StripeEmulatorError(
          400,
          'invalid_request_error',
          `An event already exists with identifier ${event.identifier}.`,
          'duplicate_meter_event',
          `events[${i}][identifier]`,
        );
      }
      seen.add(event.identifier);
    });
    req.state.meterEvents.push(...accepted);
    return ok({}, 202);
  }),
];

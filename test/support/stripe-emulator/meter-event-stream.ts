// The v2 high-throughput path: a session (made with the secret key) hands out an authentication
// token valid for 15 minutes of emulated time; the stream takes JSON batches of up to 100 events
// authenticated by that token.
//
// Like real Stripe, the stream validates asynchronously: only a structurally bad request is refused
// with 400 (nothing applied): no `events` array, more than 100 events, an event that is not an object
// or lacks event_name or payload, a payload value that is not a string, a malformed identifier or
// timestamp. Everything else (a duplicate identifier within 24 h, including inside the batch; no active
// meter; an unknown or missing customer; a value that is not a whole number; a timestamp outside
// 35 days back / 5 minutes ahead) drops that event only, is recorded in `state.streamErrors`, and the
// request still answers 200 with `{}`. A caller learns of such drops only from Stripe's meter error
// reports, so a client that trusts the 200 can lose usage silently: that is the point of emulating it.
import { invalidParam, missingParam, StripeEmulatorError } from './stripe-error.ts';
import { validateMeterEvent, type MeterEventInput } from './meter-events.ts';
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
    // Structure first, for the whole batch: a malformed request applies nothing.
    const inputs = events.map((raw: unknown, i): MeterEventInput => {
      const param = `events[${i}]`;
      if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
        throw invalidParam('Invalid object', param);
      const input = raw as Record<string, unknown>;
      if (typeof input.event_name !== 'string' || input.event_name === '')
        throw missingParam(`${param}[event_name]`);
      const payload = input.payload;
      if (typeof payload !== 'object' || payload === null || Array.isArray(payload))
        throw missingParam(`${param}[payload]`);
      for (const [key, value] of Object.entries(payload)) {
        if (typeof value !== 'string') throw invalidParam('Invalid string', `${param}[payload][${key}]`);
      }
      const identifier = input.identifier;
      if (
        identifier !== undefined &&
        (typeof identifier !== 'string' || identifier === '' || identifier.length > 100)
      )
        throw invalidParam('Invalid identifier: must be 1 to 100 characters.', `${param}[identifier]`);
      return {
        event_name: input.event_name,
        payload,
        identifier,
        timestamp: parseTimestamp(input.timestamp, `${param}[timestamp]`),
      };
    });
    const receivedAtMs = req.state.clock.now();
    inputs.forEach((input, index) => {
      try {
        // Pushed one by one, so a repeated identifier inside the batch is a duplicate too.
        req.state.addMeterEvent(validateMeterEvent(req.state, input, 'v2', `events[${index}]`));
      } catch (error) {
        if (!(error instanceof StripeEmulatorError)) throw error;
        req.state.streamErrors.push({
          code: error.code ?? 'invalid_request',
          message: error.message,
          identifier: typeof input.identifier === 'string' ? input.identifier : null,
          eventName: String(input.event_name),
          index,
          receivedAtMs,
        });
      }
    });
    return ok({}, 200);
  }),
];

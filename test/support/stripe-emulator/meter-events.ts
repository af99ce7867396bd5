// Meter events (v1 and the shared validation the v2 stream reuses), cancel adjustments and event
// summaries. Validation is synchronous here, where real Stripe validates some rules asynchronously
// and reports them through meter error reports: a test double that refuses loudly is the safer one.
import { invalidParam, missingParam, StripeEmulatorError, unknownParams } from './stripe-error.ts';
import { findMeter } from './meters.ts';
import { list, ok, route, stringParam, type Route } from './routing.ts';
import { DAY_MS, type EmulatorState, type Meter, type StoredMeterEvent } from './state.ts';

const MAX_PAST_S = 35 * 24 * 60 * 60;
const MAX_FUTURE_S = 5 * 60;

export interface MeterEventInput {
  event_name: unknown;
  payload: unknown;
  identifier?: unknown;
  /** Seconds since the epoch. */
  timestamp?: number;
}

/** Checks one event against the account; `param` prefixes error params (`events[3]` on v2). */
export function validateMeterEvent(
  state: EmulatorState,
  input: MeterEventInput,
  via: StoredMeterEvent['via'],
  param = '',
): StoredMeterEvent {
  const p = (name: string): string => {
    if (param === '') return name;
    const bracket = name.indexOf('[');
    return bracket < 0 ? `${param}[${name}]` : `${param}[${name.slice(0, bracket)}]${name.slice(bracket)}`;
  };
  if (typeof input.event_name !== 'string' || input.event_name === '') throw missingParam(p('event_name'));
  const payload = input.payload;
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload))
    throw missingParam(p('payload'));
  for (const [key, value] of Object.entries(payload)) {
    if (typeof value !== 'string') throw invalidParam('Invalid string', p(`payload[${key}]`));
  }
  const strings = payload as Record<string, string>;
  const meter = state.activeMeterForEvent(input.event_name);
  if (meter === undefined) {
    throw invalidParam(
      `No active meter was found for event_name '${input.event_name}'.`,
      p('event_name'),
      'meter_event_no_active_meter',
    );
  }
  const customerKey = meter.customer_mapping.event_payload_key;
  const customerId = strings[customerKey];
  if (customerId === undefined || customerId === '') {
    throw invalidParam(
      `The payload is missing the customer mapping key '${customerKey}'.`,
      p(`payload[${customerKey}]`),
      'meter_event_no_customer_defined',
    );
  }
  if (!state.customers.has(customerId)) {
    throw invalidParam(
      `No such customer: '${customerId}'`,
      p(`payload[${customerKey}]`),
      'meter_event_customer_not_found',
    );
  }
  const valueKey = meter.value_settings.event_payload_key;
  const raw = strings[valueKey];
  let value: number;
  if (raw === undefined) {
    if (meter.default_aggregation.formula !== 'count') {
      throw invalidParam(
        `The payload is missing the value key '${valueKey}'.`,
        p(`payload[${valueKey}]`),
        'meter_event_value_not_found',
      );
    }
    value = 1;
  } else if (/^-?\d+$/.test(raw.trim()) && Number.isSafeInteger(Number(raw))) {
    value = Number(raw);
  } else {
    throw invalidParam(
      `The value in the event payload must be a whole number. Received '${raw}'.`,
      p(`payload[${valueKey}]`),
      'meter_event_invalid_value',
    );
  }
  const now = state.nowSeconds();
  const timestamp = input.timestamp ?? now;
  if (timestamp < now - MAX_PAST_S) {
    throw invalidParam(
      'Timestamp must be within the past 35 calendar days.',
      p('timestamp'),
      'timestamp_too_far_in_past',
    );
  }
  if (timestamp > now + MAX_FUTURE_S) {
    throw invalidParam(
      'Timestamp must not be more than 5 minutes in the future.',
      p('timestamp'),
      'timestamp_in_future',
    );
  }
  let identifier: string;
  if (input.identifier === undefined) identifier = state.newId('mevt');
  else if (typeof input.identifier !== 'string' || input.identifier === '' || input.identifier.length > 100) {
    throw invalidParam('Invalid identifier: must be 1 to 100 characters.', p('identifier'));
  } else identifier = input.identifier;
  if (state.recentEventByIdentifier(identifier) !== undefined)
    throw duplicateIdentifier(identifier, p('identifier'), via);
  return {
    identifier,
    eventName: input.event_name,
    meterId: meter.id,
    customerId,
    value,
    timestamp,
    receivedAtMs: state.clock.now(),
    payload: { ...strings },
    cancelled: false,
    via,
  };
}

/**
 * Real Stripe refuses a repeated identifier (it does not accept it quietly). Public reports differ on the
 * exact v1 body; the emulator sends code `resource_already_exists` with `param: identifier` and a message
 * matching /already exists with identifier/. The v2 stream's error type is `duplicate_meter_event`.
 */
function duplicateIdentifier(
  identifier: string,
  param: string,
  via: StoredMeterEvent['via'],
): StripeEmulatorError {
  const message = `An event already exists with identifier ${identifier}.`;
  if (via === 'v2')
    return new StripeEmulatorError(400, 'invalid_request_error', message, 'duplicate_meter_event', param);
  return invalidParam(message, param, 'resource_already_exists');
}

export function meterEventObject(event: StoredMeterEvent): Record<string, unknown> {
  return {
    object: 'billing.meter_event',
    created: Math.floor(event.receivedAtMs / 1000),
    event_name: event.eventName,
    identifier: event.identifier,
    livemode: false,
    payload: event.payload,
    timestamp: event.timestamp,
  };
}

function integerParam(source: Record<string, unknown>, name: string, required: boolean): number | undefined {
  const raw = stringParam(source, name);
  if (raw === undefined) {
    if (required) throw missingParam(name);
    return undefined;
  }
  if (!/^-?\d+$/.test(raw)) throw invalidParam(`Invalid integer: ${raw}`, name);
  return Number(raw);
}

/** A meter's aggregate over events (sum / count / last): event summaries and invoices both use this. */
export function aggregate(meter: Meter, events: StoredMeterEvent[]): number {
  switch (meter.default_aggregation.formula) {
    case 'sum':
      return events.reduce((total, e) => total + e.value, 0);
    case 'count':
      return events.length;
    case 'last': {
      // The latest event time wins; among equal times, the one received last.
      let last: StoredMeterEvent | undefined;
      for (const e of events) if (last === undefined || e.timestamp >= last.timestamp) last = e;
      return last?.value ?? 0;
    }
  }
}

const GROUPING_S = { hour: 3600, day: 86400 } as const;

export const meterEventRoutes: Route[] = [
  route('POST', '/v1/billing/meter_events', (req) => {
    unknownParams(req.body, ['event_name', 'payload', 'identifier', 'timestamp']);
    const timestamp = integerParam(req.body, 'timestamp', false);
    const event = validateMeterEvent(
      req.state,
      {
        event_name: req.body.event_name,
        payload: req.body.payload,
        identifier: req.body.identifier,
        timestamp,
      },
      'v1',
    );
    req.state.addMeterEvent(event);
    return ok(meterEventObject(event));
  }),
  route('POST', '/v1/billing/meter_event_adjustments', (req) => {
    unknownParams(req.body, ['event_name', 'type', 'cancel']);
    const eventName = stringParam(req.body, 'event_name');
    if (!eventName) throw missingParam('event_name');
    const type = stringParam(req.body, 'type') ?? 'cancel';
    if (type !== 'cancel') throw invalidParam('Invalid type: must be cancel', 'type');
    const cancel = req.body.cancel;
    const identifier =
      typeof cancel === 'object' && cancel !== null
        ? stringParam(cancel as Record<string, unknown>, 'identifier')
        : undefined;
    if (!identifier) throw missingParam('cancel[identifier]');
    const last = req.state.lastEventByIdentifier(identifier);
    const event = last?.eventName === eventName ? last : undefined;
    if (event === undefined) {
      throw invalidParam(
        `No meter event found with identifier '${identifier}'.`,
        'cancel[identifier]',
        'resource_missing',
      );
    }
    if (req.state.clock.now() - event.receivedAtMs > DAY_MS) {
      throw invalidParam(
        'Meter events can only be cancelled within 24 hours of being received.',
        'cancel[identifier]',
        'meter_event_adjustment_window_passed',
      );
    }
    if (event.cancelled) {
      throw invalidParam(
        `The meter event '${identifier}' has already been cancelled.`,
        'cancel[identifier]',
        'meter_event_already_cancelled',
      );
    }
    event.cancelled = true;
    return ok({
      object: 'billing.meter_event_adjustment',
      livemode: false,
      status: 'pending',
      event_name: eventName,
      type: 'cancel',
      cancel: { identifier },
    });
  }),
  route('GET', '/v1/billing/meters/:id/event_summaries', (req) => {
    unknownParams(req.query, [
      'customer',
      'start_time',
      'end_time',
      'value_grouping_window',
      'limit',
      'starting_after',
      'ending_before',
    ]);
    const meter = findMeter(req);
    const customer = stringParam(req.query, 'customer');
    if (!customer) throw missingParam('customer');
    const start = integerParam(req.query, 'start_time', true) ?? 0;
    const end = integerParam(req.query, 'end_time', true) ?? 0;
    const grouping = stringParam(req.query, 'value_grouping_window');
    if (grouping !== undefined && grouping !== 'hour' && grouping !== 'day') {
      throw invalidParam('Invalid value_grouping_window: must be one of hour, day', 'value_grouping_window');
    }
    const align = grouping === undefined ? 60 : GROUPING_S[grouping];
    for (const [name, t] of [
      ['start_time', start],
      ['end_time', end],
    ] as const) {
      if (t % align !== 0)
        throw invalidParam(`${name} must be aligned to ${grouping ?? 'minute'} boundaries.`, name);
    }
    if (end <= start) throw invalidParam('end_time must be after start_time.', 'end_time');
    const limit = integerParam(req.query, 'limit', false) ?? 10;
    const events = req.state.eventsFor(meter.id, customer);
    const step = grouping === undefined ? end - start : GROUPING_S[grouping];
    const summaries: Record<string, unknown>[] = [];
    // Newest window first, like Stripe's other lists.
    for (let windowStart = end - step; windowStart >= start; windowStart -= step) {
      const windowEnd = windowStart + step;
      const inWindow = events.filter((e) => e.timestamp >= windowStart && e.timestamp < windowEnd);
      summaries.push({
        id: `mtrusg_${meter.id.slice(4)}_${customer.slice(4)}_${windowStart}_${windowEnd}`,
        object: 'billing.meter_event_summary',
        aggregated_value: aggregate(meter, inWindow),
        end_time: windowEnd,
        livemode: false,
        meter: meter.id,
        start_time: windowStart,
      });
    }
    let page = summaries;
    const after = stringParam(req.query, 'starting_after');
    if (after !== undefined) page = page.slice(page.findIndex((s) => s.id === after) + 1);
    return list(`/v1/billing/meters/${meter.id}/event_summaries`, page.slice(0, limit), page.length > limit);
  }),
];

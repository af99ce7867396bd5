// /v1/billing/meters: create, list, retrieve, update (display_name only, as on Stripe),
// deactivate and reactivate.
import { invalidParam, missingParam, resourceMissing, unknownParams } from './stripe-error.ts';
import { list, ok, route, stringParam, type EmulatorRequest, type Route } from './routing.ts';
import type { Meter, MeterFormula } from './state.ts';

const FORMULAS: readonly MeterFormula[] = ['sum', 'count', 'last'];

function nested(body: Record<string, unknown>, name: string): Record<string, unknown> | undefined {
  const value = body[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw invalidParam('Invalid object', name);
  return value as Record<string, unknown>;
}

export function findMeter(req: EmulatorRequest): Meter {
  const id = req.params.id ?? '';
  const meter = req.state.meters.get(id);
  if (meter === undefined) throw resourceMissing('billing.meter', id);
  return meter;
}

export const meterRoutes: Route[] = [
  route('POST', '/v1/billing/meters', (req) => {
    unknownParams(req.body, [
      'display_name',
      'event_name',
      'default_aggregation',
      'customer_mapping',
      'value_settings',
      'event_time_window',
    ]);
    const displayName = stringParam(req.body, 'display_name');
    if (!displayName) throw missingParam('display_name');
    const eventName = stringParam(req.body, 'event_name');
    if (!eventName) throw missingParam('event_name');
    const formula = stringParam(nested(req.body, 'default_aggregation') ?? {}, 'formula');
    if (formula === undefined) throw missingParam('default_aggregation[formula]');
    if (!FORMULAS.includes(formula as MeterFormula)) {
      throw invalidParam(
        `Invalid default_aggregation[formula]: must be one of ${FORMULAS.join(', ')}`,
        'default_aggregation[formula]',
      );
    }
    const mapping = nested(req.body, 'customer_mapping');
    const mappingType = mapping ? stringParam(mapping, 'type') : 'by_id';
    if (mappingType !== 'by_id')
      throw invalidParam('Invalid customer_mapping[type]: must be by_id', 'customer_mapping[type]');
    const customerKey = mapping ? stringParam(mapping, 'event_payload_key') : 'stripe_customer_id';
    if (!customerKey) throw missingParam('customer_mapping[event_payload_key]');
    const valueKey = stringParam(nested(req.body, 'value_settings') ?? {}, 'event_payload_key') ?? 'value';
    if (req.state.activeMeterForEvent(eventName) !== undefined) {
      throw invalidParam(
        `An active meter with event_name '${eventName}' already exists.`,
        'event_name',
        'resource_already_exists',
      );
    }
    const now = req.state.nowSeconds();
    const meter: Meter = {
      id: req.state.newId('mtr'),
      object: 'billing.meter',
      created: now,
      updated: now,
      livemode: false,
      display_name: displayName,
      event_name: eventName,
      event_time_window: null,
      status: 'active',
      status_transitions: { deactivated_at: null },
      default_aggregation: { formula: formula as MeterFormula },
      customer_mapping: { event_payload_key: customerKey, type: 'by_id' },
      value_settings: { event_payload_key: valueKey },
    };
    req.state.meters.set(meter.id, meter);
    return ok(meter);
  }),
  route('GET', '/v1/billing/meters', (req) => {
    unknownParams(req.query, ['limit', 'starting_after', 'ending_before', 'status']);
    const status = stringParam(req.query, 'status');
    const limit = Number(stringParam(req.query, 'limit') ?? '10');
    let all = [...req.state.meters.values()]
      .reverse()
      .filter((m) => status === undefined || m.status === status);
    const after = stringParam(req.query, 'starting_after');
    if (after !== undefined) all = all.slice(all.findIndex((m) => m.id === after) + 1);
    return list('/v1/billing/meters', all.slice(0, limit), all.length > limit);
  }),
  route('GET', '/v1/billing/meters/:id', (req) => ok(findMeter(req))),
  route('POST', '/v1/billing/meters/:id', (req) => {
    unknownParams(req.body, ['display_name']);
    const meter = findMeter(req);
    const displayName = stringParam(req.body, 'display_name');
    if (displayName !== undefined) meter.display_name = displayName;
    meter.updated = req.state.nowSeconds();
    return ok(meter);
  }),
  route('POST', '/v1/billing/meters/:id/deactivate', (req) => {
    const meter = findMeter(req);
    meter.status = 'inactive';
    meter.status_transitions.deactivated_at = req.state.nowSeconds();
    meter.updated = req.state.nowSeconds();
    return ok(meter);
  }),
  route('POST', '/v1/billing/meters/:id/reactivate', (req) => {
    const meter = findMeter(req);
    if (meter.status === 'active') return ok(meter);
    if (req.state.activeMeterForEvent(meter.event_name) !== undefined) {
      throw invalidParam(
        `An active meter with event_name '${meter.event_name}' already exists.`,
        'event_name',
      );
    }
    meter.status = 'active';
    meter.status_transitions.deactivated_at = null;
    meter.updated = req.state.nowSeconds();
    return ok(meter);
  }),
];

// /v1/customers: create, retrieve, update (metadata merge, '' unsets a key), list. Creating and
// updating emit customer.created / customer.updated; an update that changes nothing emits nothing.
import { invalidParam, resourceMissing, unknownParams } from './stripe-error.ts';
import { list, ok, route, stringParam, type EmulatorRequest, type Route } from './routing.ts';
import type { Customer } from './state.ts';

const WRITABLE = ['email', 'name', 'description', 'metadata'] as const;

function applyFields(customer: Customer, body: Record<string, unknown>): void {
  for (const field of ['email', 'name', 'description'] as const) {
    const value = stringParam(body, field);
    if (value !== undefined) customer[field] = value === '' ? null : value;
  }
  const metadata = body.metadata;
  if (metadata === '') customer.metadata = {};
  else if (metadata !== undefined) {
    if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) {
      throw invalidParam('Invalid object', 'metadata');
    }
    for (const [key, value] of Object.entries(metadata)) {
      if (typeof value !== 'string') throw invalidParam('Invalid string', `metadata[${key}]`);
      if (value === '') delete customer.metadata[key];
      else customer.metadata[key] = value;
    }
  }
}

/**
 * Stripe's `previous_attributes`: the old value of each changed top-level field. For metadata Stripe
 * lists only the changed keys (old value, or null for a key that was added); the emulator does the same.
 */
export function previousAttributes(before: object, after: object): Record<string, unknown> | undefined {
  const previous: Record<string, unknown> = {};
  const old = before as Record<string, unknown>;
  const now = after as Record<string, unknown>;
  for (const key of Object.keys(now)) {
    if (key === 'metadata') {
      const a = (old.metadata ?? {}) as Record<string, string>;
      const b = (now.metadata ?? {}) as Record<string, string>;
      const changed: Record<string, string | null> = {};
      for (const k of new Set([...Object.keys(a), ...Object.keys(b)]))
        if (a[k] !== b[k]) changed[k] = a[k] ?? null;
      if (Object.keys(changed).length > 0) previous.metadata = changed;
    } else if (JSON.stringify(old[key]) !== JSON.stringify(now[key])) previous[key] = old[key] ?? null;
  }
  return Object.keys(previous).length > 0 ? previous : undefined;
}

function find(req: EmulatorRequest): Customer {
  const id = req.params.id ?? '';
  const customer = req.state.customers.get(id);
  if (customer === undefined) throw resourceMissing('customer', id);
  return customer;
}

export const customerRoutes: Route[] = [
  route('POST', '/v1/customers', (req) => {
    unknownParams(req.body, WRITABLE);
    const customer: Customer = {
      id: req.state.newId('cus'),
      object: 'customer',
      created: req.state.nowSeconds(),
      livemode: false,
      email: null,
      name: null,
      description: null,
      metadata: {},
    };
    applyFields(customer, req.body);
    req.state.customers.set(customer.id, customer);
    req.state.emit('customer.created', customer, req.cause);
    return ok(customer);
  }),
  route('GET', '/v1/customers/:id', (req) => ok(find(req))),
  route('POST', '/v1/customers/:id', (req) => {
    unknownParams(req.body, WRITABLE);
    const customer = find(req);
    const before = structuredClone(customer);
    applyFields(customer, req.body);
    const previous = previousAttributes(before, customer);
    if (previous !== undefined) req.state.emit('customer.updated', customer, req.cause, previous);
    return ok(customer);
  }),
  route('GET', '/v1/customers', (req) => {
    unknownParams(req.query, ['limit', 'starting_after', 'ending_before', 'email', 'created']);
    const limit = Number(stringParam(req.query, 'limit') ?? '10');
    if (!Number.isInteger(limit) || limit < 1 || limit > 100) throw invalidParam('Invalid integer', 'limit');
    const email = stringParam(req.query, 'email');
    // Stripe lists newest first.
    let all = [...req.state.customers.values()]
      .reverse()
      .filter((c) => email === undefined || c.email === email);
    const after = stringParam(req.query, 'starting_after');
    if (after !== undefined) all = all.slice(all.findIndex((c) => c.id === after) + 1);
    return list('/v1/customers', all.slice(0, limit), all.length > limit);
  }),
];

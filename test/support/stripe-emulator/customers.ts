// /v1/customers: create, retrieve, update (metadata merge, '' unsets a key), list.
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
    return ok(customer);
  }),
  route('GET', '/v1/customers/:id', (req) => ok(find(req))),
  route('POST', '/v1/customers/:id', (req) => {
    unknownParams(req.body, WRITABLE);
    const customer = find(req);
    applyFields(customer, req.body);
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

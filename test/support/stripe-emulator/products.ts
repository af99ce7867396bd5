// /v1/products: create (a caller may choose the id; a taken id is refused), retrieve, update, list.
import { invalidParam, missingParam, resourceMissing, unknownParams } from './stripe-error.ts';
import {
  applyMetadata,
  booleanParam,
  ok,
  paginate,
  route,
  stringParam,
  type EmulatorRequest,
  type Route,
} from './routing.ts';
import type { Product } from './state.ts';

function findProduct(req: EmulatorRequest): Product {
  const id = req.params.id ?? '';
  const product = req.state.products.get(id);
  if (product === undefined) throw resourceMissing('product', id);
  return product;
}

function applyProductFields(product: Product, body: Record<string, unknown>): void {
  const name = stringParam(body, 'name');
  if (name !== undefined) {
    if (name === '') throw invalidParam('You must provide a non-empty name.', 'name');
    product.name = name;
  }
  const description = stringParam(body, 'description');
  if (description !== undefined) product.description = description === '' ? null : description;
  const active = booleanParam(body, 'active');
  if (active !== undefined) product.active = active;
  applyMetadata(product.metadata, body.metadata);
}

/** A product as Stripe creates it, before any optional field is applied (POST /v1/products, prices' product_data). */
export function newProduct(id: string, name: string, now: number): Product {
  return {
    id,
    object: 'product',
    active: true,
    created: now,
    default_price: null,
    description: null,
    images: [],
    livemode: false,
    marketing_features: [],
    metadata: {},
    name,
    package_dimensions: null,
    shippable: null,
    statement_descriptor: null,
    tax_code: null,
    type: 'service',
    unit_label: null,
    updated: now,
    url: null,
  };
}

export const productRoutes: Route[] = [
  route('POST', '/v1/products', (req) => {
    unknownParams(req.body, ['id', 'name', 'description', 'active', 'metadata']);
    const name = stringParam(req.body, 'name');
    if (!name) throw missingParam('name');
    const id = stringParam(req.body, 'id') ?? req.state.newId('prod');
    if (!/^[\w-]{1,255}$/.test(id)) throw invalidParam('Invalid id: letters, digits, _ and - only.', 'id');
    if (req.state.products.has(id)) {
      throw invalidParam(`Product already exists.`, 'id', 'resource_already_exists');
    }
    const product = newProduct(id, name, req.state.nowSeconds());
    applyProductFields(product, req.body);
    req.state.products.set(id, product);
    req.state.emit('product.created', product, req.cause);
    return ok(product);
  }),
  route('GET', '/v1/products/:id', (req) => ok(findProduct(req))),
  route('POST', '/v1/products/:id', (req) => {
    unknownParams(req.body, ['name', 'description', 'active', 'metadata']);
    const product = findProduct(req);
    applyProductFields(product, req.body);
    product.updated = req.state.nowSeconds();
    req.state.emit('product.updated', product, req.cause);
    return ok(product);
  }),
  route('GET', '/v1/products', (req) => {
    unknownParams(req.query, ['limit', 'starting_after', 'ending_before', 'active', 'ids']);
    const active = booleanParam(req.query, 'active');
    const ids = req.query.ids;
    const wanted = Array.isArray(ids) ? ids.filter((v): v is string => typeof v === 'string') : undefined;
    const all = [...req.state.products.values()]
      .reverse()
      .filter((p) => active === undefined || p.active === active)
      .filter((p) => wanted === undefined || wanted.includes(p.id));
    return paginate('/v1/products', req.query, all);
  }),
];

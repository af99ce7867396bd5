// A tiny route table: `METHOD /v1/things/:id` patterns to handlers returning a status and a JSON body.
import type { FormObject } from './form-encoding.ts';
import type { EmulatorState, EventCause } from './state.ts';
import { invalidParam } from './stripe-error.ts';

export interface EmulatorRequest {
  method: string;
  path: string;
  params: Record<string, string>;
  query: FormObject;
  /** Parsed form body on v1, parsed JSON on v2. */
  body: Record<string, unknown>;
  state: EmulatorState;
  /** The request id and Idempotency-Key, for the `request` field of the events it causes. */
  cause: EventCause;
}

export interface EmulatorResponse {
  status: number;
  body: unknown;
}

export type Handler = (req: EmulatorRequest) => EmulatorResponse;

export interface Route {
  method: string;
  segments: string[];
  handler: Handler;
}

export function route(method: string, pattern: string, handler: Handler): Route {
  return { method, segments: pattern.split('/'), handler };
}

export function findRoute(
  routes: readonly Route[],
  method: string,
  path: string,
): { handler: Handler; params: Record<string, string> } | undefined {
  const got = path.split('/');
  for (const r of routes) {
    if (r.method !== method || r.segments.length !== got.length) continue;
    const params: Record<string, string> = {};
    const ok = r.segments.every((segment, i) => {
      const value = got[i] ?? '';
      if (segment.startsWith(':')) {
        params[segment.slice(1)] = decodeURIComponent(value);
        return value !== '';
      }
      return segment === value;
    });
    if (ok) return { handler: r.handler, params };
  }
  return undefined;
}

export function ok(body: unknown, status = 200): EmulatorResponse {
  return { status, body };
}

export function list(url: string, data: unknown[], hasMore = false): EmulatorResponse {
  return ok({ object: 'list', data, has_more: hasMore, url });
}

export function stringParam(body: Record<string, unknown>, name: string): string | undefined {
  const value = body[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') return undefined;
  return value;
}

export function objectParam(
  body: Record<string, unknown>,
  name: string,
): Record<string, unknown> | undefined {
  const value = body[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw invalidParam('Invalid object', name);
  return value as Record<string, unknown>;
}

export function arrayParam(body: Record<string, unknown>, name: string): unknown[] | undefined {
  const value = body[name];
  if (value === undefined) return undefined;
  if (!Array.isArray(value)) throw invalidParam('Invalid array', name);
  // A sparse form array (`x[0]`, `x[2]`) leaves holes; Stripe reads the values in index order.
  return value.filter((v) => v !== undefined);
}

/** Form booleans arrive as the strings 'true' / 'false'. */
export function booleanParam(body: Record<string, unknown>, name: string): boolean | undefined {
  const value = body[name];
  if (value === undefined) return undefined;
  if (value === 'true') return true;
  if (value === 'false') return false;
  throw invalidParam('Invalid boolean', name);
}

export function intParam(
  body: Record<string, unknown>,
  name: string,
  { min = Number.MIN_SAFE_INTEGER, param = name }: { min?: number; param?: string } = {},
): number | undefined {
  const raw = body[name];
  if (raw === undefined) return undefined;
  if (
    typeof raw !== 'string' ||
    !/^-?\d+$/.test(raw) ||
    !Number.isSafeInteger(Number(raw)) ||
    Number(raw) < min
  )
    throw invalidParam(`Invalid integer: ${String(raw)}`, param);
  return Number(raw);
}

/** Stripe's metadata update: keys merge, `''` unsets a key, `metadata=''` clears all. */
export function applyMetadata(target: Record<string, string>, value: unknown, param = 'metadata'): void {
  if (value === undefined) return;
  if (value === '') {
    for (const key of Object.keys(target)) delete target[key];
    return;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw invalidParam('Invalid object', param);
  for (const [key, v] of Object.entries(value)) {
    if (typeof v !== 'string') throw invalidParam('Invalid string', `${param}[${key}]`);
    if (v === '') delete target[key];
    else target[key] = v;
  }
}

/** The `expand` list, from `expand[]=x` or `expand[0]=x`. */
export function expandList(source: Record<string, unknown>): string[] {
  const value = source.expand;
  if (value === undefined) return [];
  if (typeof value === 'string') return [value];
  if (!Array.isArray(value)) throw invalidParam('Invalid array', 'expand');
  return value.filter((v): v is string => typeof v === 'string');
}

/** Newest-first cursor pagination over `items` (already newest first), Stripe's list shape. */
export function paginate<T extends { id: string }>(
  url: string,
  query: Record<string, unknown>,
  items: T[],
  render: (item: T) => unknown = (item) => item,
): EmulatorResponse {
  const limit = intParam(query, 'limit', { min: 1 }) ?? 10;
  if (limit > 100) throw invalidParam('Invalid integer: limit must be at most 100', 'limit');
  let page = items;
  const after = stringParam(query, 'starting_after');
  if (after !== undefined) page = page.slice(page.findIndex((item) => item.id === after) + 1);
  const before = stringParam(query, 'ending_before');
  if (before !== undefined) {
    const end = page.findIndex((item) => item.id === before);
    page = page.slice(Math.max(0, end - limit), Math.max(0, end));
  }
  return list(url, page.slice(0, limit).map(render), page.length > limit);
}

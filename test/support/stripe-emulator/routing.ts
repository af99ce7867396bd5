// A tiny route table: `METHOD /v1/things/:id` patterns to handlers returning a status and a JSON body.
import type { FormObject } from './form-encoding.ts';
import type { EmulatorState } from './state.ts';

export interface EmulatorRequest {
  method: string;
  path: string;
  params: Record<string, string>;
  query: FormObject;
  /** Parsed form body on v1, parsed JSON on v2. */
  body: Record<string, unknown>;
  state: EmulatorState;
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

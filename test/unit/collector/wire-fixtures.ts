import type { AdaptContext } from '../../../src/collector/request-log.ts';
import type { WireCapture } from '../../fixtures/wire/wire-capture.ts';

export { readWire, type WireCapture } from '../../fixtures/wire/wire-capture.ts';

/** The body of the first capture sent to `path`. */
export function bodyOf(captures: WireCapture[], path: string): unknown {
  const capture = captures.find((c) => c.path === path);
  if (!capture) throw new Error(`no capture for ${path}`);
  return capture.body;
}

export const DAY_MS = 86_400_000;

export function context(receivedAt: string, overrides: Partial<AdaptContext> = {}): AdaptContext {
  return {
    app: 'app_test',
    receivedAtMs: Date.parse(receivedAt),
    headerAllowList: new Set<string>(),
    maxPastMs: 35 * DAY_MS,
    maxFutureMs: 5 * 60_000,
    maxEventBytes: 1_048_576,
    ...overrides,
  };
}

/** `{ a: { a: … { a: leaf } } }`, `depth` objects deep, built without recursion. */
export function nestedObjects(depth: number, leaf: unknown = 1): Record<string, unknown> {
  let value: unknown = leaf;
  for (let i = 0; i < depth; i += 1) value = { a: value };
  return value as Record<string, unknown>;
}

/** `[[[ … ]]]`, `depth` arrays deep. */
export function nestedArrays(depth: number): unknown[] {
  let value: unknown[] = [];
  for (let i = 1; i < depth; i += 1) value = [value];
  return value;
}

export { moesifEventId, type MoesifCall } from '../../support/moesif-event-id.ts';

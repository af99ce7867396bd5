// Metadata: a nested object flattened into the row's `metadata.<path>` key/value columns, within limits.
import { jsonText } from './json-text.ts';
import { LIMITS } from './limits.ts';
import { invalid, isObject, reject } from './rejection.ts';
import { describeLength, exceedsChars } from './scalars.ts';

export interface FlattenOptions {
  /** Field path of the object, for rejections ('metadata'; CloudEvents: 'data'). */
  field?: string;
  /** Metadata keys the event already has (they count towards LIMITS.metadataKeys). */
  alreadyUsed?: number;
}

/**
 * Flattens an object into `metadata.<path>` keys and text values, depth first in key order:
 * nested objects become `metadata.a.b`; arrays, and objects nested deeper than 5 levels, become their
 * JSON text; numbers and booleans their String(); null (and an empty object) nothing. Refuses the
 * event for more than 100 keys, a key over 256 or a value over 8192 characters. Iterative, so no
 * depth of nesting can overflow the stack.
 */
export function flattenMetadata(value: unknown, options: FlattenOptions = {}): [string[], string[]] {
  const keys: string[] = [];
  const values: string[] = [];
  flattenMetadataInto(keys, values, value, options);
  return [keys, values];
}

/**
 * flattenMetadata, appending to a row's own `keys` and `values` rather than to arrays the caller
 * then has to copy. Keys already in `keys` do not count towards the limit (options.alreadyUsed does).
 */
export function flattenMetadataInto(
  keys: string[],
  values: string[],
  value: unknown,
  options: FlattenOptions = {},
): void {
  const field = options.field ?? 'metadata';
  const budget = LIMITS.metadataKeys - (options.alreadyUsed ?? 0);
  const first = keys.length;
  if (value == null) return;
  if (!isObject(value)) invalid(field, value, 'must be a JSON object');

  interface Frame {
    source: Record<string, unknown>;
    path: string;
    depth: number;
    names: string[];
    next: number;
  }
  const frames: Frame[] = [{ source: value, path: '', depth: 0, names: Object.keys(value), next: 0 }];
  while (frames.length > 0) {
    const frame = frames[frames.length - 1]!;
    if (frame.next >= frame.names.length) {
      frames.pop();
      continue;
    }
    const name = frame.names[frame.next]!;
    frame.next += 1;
    const item = frame.source[name];
    const path = frame.depth === 0 ? name : `${frame.path}.${name}`;
    const depth = frame.depth + 1;
    if (isObject(item) && depth < LIMITS.metadataDepth) {
      frames.push({ source: item, path, depth, names: Object.keys(item), next: 0 });
      continue;
    }
    const text = metadataText(item, field, path);
    if (text === undefined) continue;
    if (keys.length - first >= budget) {
      reject(
        field,
        `has more than ${LIMITS.metadataKeys} keys once nested objects are flattened (at most ${LIMITS.metadataKeys} per event)`,
      );
    }
    const key = `metadata.${path}`;
    if (exceedsChars(key, LIMITS.metaKeyChars)) {
      reject(
        `${field}.${path}`,
        `makes a metadata key longer than ${LIMITS.metaKeyChars} characters (keys are stored as metadata.<path>)`,
      );
    }
    keys.push(key);
    values.push(text);
  }
}

/** `${field}.${path}` is only spelled out for a rejection: building it for every value cost more than the check. */
function metadataText(item: unknown, field: string, path: string): string | undefined {
  let text: string | undefined;
  switch (typeof item) {
    case 'string':
      text = item;
      break;
    case 'number':
    case 'boolean':
    case 'bigint':
      text = String(item);
      break;
    case 'object':
      if (item === null) return undefined;
      // Twice the limit in code units: a code point is at most two units.
      text = jsonText(item, { maxLength: 2 * LIMITS.metaValueChars });
      if (text === undefined) {
        reject(
          `${field}.${path}`,
          `must be at most ${LIMITS.metaValueChars} characters, got more than ${2 * LIMITS.metaValueChars} as JSON text`,
        );
      }
      break;
    default:
      return undefined;
  }
  checkValueLength(text, field, path);
  return text;
}

/** Rejects `${field}.${path}` for a value over LIMITS.metaValueChars. */
export function checkValueLength(text: string, field: string, path: string): void {
  if (exceedsChars(text, LIMITS.metaValueChars)) {
    reject(
      `${field}.${path}`,
      `must be at most ${LIMITS.metaValueChars} characters, got ${describeLength(text)}`,
    );
  }
}

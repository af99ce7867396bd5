// Headers of an event: the allow-listed ones kept as `header.<name>` / `response_header.<name>` columns.
import { isSensitiveHeader } from './header-policy.ts';
import { checkValueLength } from './metadata.ts';
import { invalid, isObject } from './rejection.ts';

export type HeaderPrefix = 'header.' | 'response_header.';

/** Allow-listed request headers (`header.*`) then response headers (`response_header.*`) of an exchange. */
export function exchangeHeaders(
  request: Record<string, unknown>,
  response: Record<string, unknown>,
  allowList: ReadonlySet<string>,
): [string[], string[]] {
  const keys: string[] = [];
  const values: string[] = [];
  headersInto(keys, values, request.headers, 'header.', allowList, 'request.headers');
  headersInto(keys, values, response.headers, 'response_header.', allowList, 'response.headers');
  return [keys, values];
}

/**
 * The allow-listed headers of `obj` as `<prefix><lower-case name>` keys and text values (arrays joined
 * with ', '), in the object's order. Sensitive headers are dropped even when allow-listed. Values
 * that are neither text, numbers nor arrays of them are skipped; a value over 8192 characters
 * rejects the event.
 */
export function headers(
  obj: unknown,
  prefix: HeaderPrefix,
  allowList: ReadonlySet<string>,
  field: string = prefix === 'header.' ? 'headers' : 'response_headers',
): [string[], string[]] {
  const keys: string[] = [];
  const values: string[] = [];
  headersInto(keys, values, obj, prefix, allowList, field);
  return [keys, values];
}

/** headers, appending to a row's own `keys` and `values` rather than to arrays the caller then has to copy. */
export function headersInto(
  keys: string[],
  values: string[],
  obj: unknown,
  prefix: HeaderPrefix,
  allowList: ReadonlySet<string>,
  field: string = prefix === 'header.' ? 'headers' : 'response_headers',
): void {
  if (obj == null) return;
  if (!isObject(obj)) invalid(field, obj, 'must be an object of header names to values');
  if (allowList.size === 0) return;
  for (const rawName of Object.keys(obj)) {
    const name = rawName.toLowerCase();
    if (!allowList.has(name)) continue;
    const key = storedHeaderKey(prefix, name);
    if (key === null) continue;
    const text = headerText(obj[rawName]);
    if (text === undefined) continue;
    checkValueLength(text, field, name);
    keys.push(key);
    values.push(text);
  }
}

/**
 * Every event names the same few allow-listed headers, so whether a name is sensitive (a regex) and
 * its row key (a concatenation, a fresh string per event otherwise) are worked out once per name.
 * Only allow-listed names are looked up, so the maps stay as small as the allow list; the bound is
 * for a caller that keeps changing lists.
 */
const HEADER_KEY_CACHE_SIZE = 1024;
const headerKeyCache: Record<HeaderPrefix, Map<string, string | null>> = {
  'header.': new Map(),
  'response_header.': new Map(),
};

/** `<prefix><name>` for a header that may be stored, null for a sensitive one. */
function storedHeaderKey(prefix: HeaderPrefix, name: string): string | null {
  const cache = headerKeyCache[prefix];
  let key = cache.get(name);
  if (key === undefined) {
    if (cache.size >= HEADER_KEY_CACHE_SIZE) cache.clear();
    key = isSensitiveHeader(name) ? null : `${prefix}${name}`;
    cache.set(name, key);
  }
  return key;
}

/** The value of header `name` (any case) in a header object; an array gives its first element. */
export function headerValue(obj: unknown, name: string): unknown {
  if (!isObject(obj)) return undefined;
  const wanted = name.toLowerCase();
  for (const key of Object.keys(obj)) {
    if (key.toLowerCase() === wanted) {
      const value = obj[key];
      return Array.isArray(value) ? (value as unknown[])[0] : value;
    }
  }
  return undefined;
}

/** A header's text; a repeated header (an array) is joined with ', ' like HTTP folds it. */
function headerText(value: unknown): string | undefined {
  if (!Array.isArray(value)) return scalarText(value);
  const parts = (value as unknown[]).map(scalarText).filter((part): part is string => part !== undefined);
  return parts.length > 0 ? parts.join(', ') : undefined;
}

function scalarText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return undefined;
}

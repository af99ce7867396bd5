/**
 * JSON text of a value, without recursion.
 *
 * Why not JSON.stringify: on Node 20 it overflows the stack near 10,000 levels of nesting, while
 * JSON.parse happily builds a million levels, so any event we managed to parse could crash us here.
 * This walks the value with an explicit stack and gives exactly JSON.stringify's output for JSON
 * values (optionally with object keys sorted, for content hashes).
 *
 * Differences from JSON.stringify, all for values JSON.parse never produces: a top-level value with no
 * JSON form (undefined, a function, a symbol) gives 'null'; a bigint gives its digits; a reference
 * cycle gives the string "[Circular]" instead of throwing.
 */
export interface JsonTextOptions {
  /** Sort object keys (by UTF-16 code units) at every level: a canonical form for hashing. */
  sortKeys?: boolean;
  /** Stop and return undefined as soon as the text is longer than this many UTF-16 code units. */
  maxLength?: number;
}

interface ArrayFrame {
  kind: 'array';
  source: object;
  items: ArrayLike<unknown>;
  next: number;
}

interface ObjectFrame {
  kind: 'object';
  source: object;
  keys: string[];
  next: number;
  written: number;
}

export function jsonText(value: unknown, options: JsonTextOptions = {}): string | undefined {
  const { sortKeys = false, maxLength = Number.POSITIVE_INFINITY } = options;
  const frames: (ArrayFrame | ObjectFrame)[] = [];
  const ancestors = new Set<object>();
  let out = '';

  const open = (v: unknown): void => {
    if (v === null || typeof v !== 'object') {
      out += primitiveText(v);
      return;
    }
    if (ancestors.has(v)) {
      out += '"[Circular]"';
      return;
    }
    ancestors.add(v);
    if (Array.isArray(v)) {
      frames.push({ kind: 'array', source: v, items: v, next: 0 });
      out += '[';
    } else {
      const keys = Object.keys(v);
      if (sortKeys) keys.sort();
      frames.push({ kind: 'object', source: v, keys, next: 0, written: 0 });
      out += '{';
    }
  };

  open(resolve(value));
  while (frames.length > 0 && out.length <= maxLength) {
    const frame = frames[frames.length - 1]!;
    if (frame.kind === 'array') {
      if (frame.next >= frame.items.length) {
        out += ']';
        frames.pop();
        ancestors.delete(frame.source);
        continue;
      }
      if (frame.next > 0) out += ',';
      const item = resolve(frame.items[frame.next]);
      frame.next += 1;
      if (hasNoJsonForm(item)) out += 'null';
      else open(item);
      continue;
    }
    let key: string | undefined;
    let item: unknown;
    while (frame.next < frame.keys.length) {
      const candidate = frame.keys[frame.next]!;
      frame.next += 1;
      const resolved = resolve((frame.source as Record<string, unknown>)[candidate]);
      if (!hasNoJsonForm(resolved)) {
        key = candidate;
        item = resolved;
        break;
      }
    }
    if (key === undefined) {
      out += '}';
      frames.pop();
      ancestors.delete(frame.source);
      continue;
    }
    if (frame.written > 0) out += ',';
    frame.written += 1;
    out += `${JSON.stringify(key)}:`;
    open(item);
  }
  return out.length > maxLength ? undefined : out;
}

/** What JSON.stringify would serialize in place of `v`: the result of toJSON, or a boxed primitive's value. */
function resolve(v: unknown): unknown {
  if (v === null || typeof v !== 'object') return v;
  const toJSON = (v as { toJSON?: unknown }).toJSON;
  if (typeof toJSON === 'function') return (toJSON as () => unknown).call(v);
  if (v instanceof Number || v instanceof String || v instanceof Boolean) return v.valueOf();
  return v;
}

function hasNoJsonForm(v: unknown): boolean {
  return v === undefined || typeof v === 'function' || typeof v === 'symbol';
}

function primitiveText(v: unknown): string {
  switch (typeof v) {
    case 'string':
      return JSON.stringify(v);
    case 'number':
      return Number.isFinite(v) ? JSON.stringify(v) : 'null';
    case 'boolean':
      return v ? 'true' : 'false';
    case 'bigint':
      return v.toString();
    default:
      return 'null';
  }
}

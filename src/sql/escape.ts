// The one way a value or a name reaches ClickHouse SQL.
//
// Debian's clickhouse-server 18.16 has no server-side query parameters, so every literal is
// written into the SQL text here, and the output must parse to the same value on 18.16 and on
// the embedded 26.x engine (chdb). Everything below is restricted to syntax both accept:
// - strings: single quotes, backslash escapes `\\ \' \0 \n \t \r`, `\xHH` for the other ASCII
//   controls; every other character is written raw (the query is sent as UTF-8);
// - numbers: plain decimal integers, JS shortest round-trip floats (exponent allowed), no
//   subnormals (18.16's parser rejects them);
// - booleans as 1/0 (18.16 has neither `true` nor a Bool type);
// - DateTime through `toDateTime('YYYY-MM-DD hh:mm:ss', 'UTC')`.
// Identifiers are never quoted: they either match IDENTIFIER_PATTERN or are refused.

export const IDENTIFIER_PATTERN = /^[a-zA-Z_][a-zA-Z0-9_]{0,62}$/;

export class InvalidIdentifierError extends Error {
  override readonly name = 'InvalidIdentifierError';
  readonly identifier: string;

  constructor(identifier: string) {
    const shown = identifier.length > 80 ? `${identifier.slice(0, 80)}…` : identifier;
    super(`invalid SQL identifier ${JSON.stringify(shown)}: must match ${IDENTIFIER_PATTERN.source}`);
    this.identifier = identifier;
  }
}

export type ScalarValue = string | number | bigint | boolean | Date;
export type SqlValue = ScalarValue | readonly (string | number)[];

/**
 * Replaces every lone UTF-16 surrogate with U+FFFD, exactly as `Buffer.from(s, 'utf8')` and
 * `String.prototype.toWellFormed` do (one U+FFFD per lone code unit). A lone surrogate has no
 * UTF-8 encoding, so this is what any string becomes on its way to ClickHouse; callers that
 * insert rows as JSON must apply it themselves, because 26.x rejects `\ud800` in JSON input.
 */
export function wellFormed(s: string): string {
  let out: string | undefined;
  let from = 0;
  for (let i = 0; i < s.length; i++) {
    const unit = s.charCodeAt(i);
    if (unit < 0xd800 || unit > 0xdfff) continue;
    if (unit <= 0xdbff && i + 1 < s.length) {
      const next = s.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        i++;
        continue;
      }
    }
    out = (out ?? '') + s.slice(from, i) + '\ufffd';
    from = i + 1;
  }
  return out === undefined ? s : out + s.slice(from);
}

const NAMED_ESCAPES: Readonly<Record<number, string>> = {
  0x00: '\\0',
  0x09: '\\t',
  0x0a: '\\n',
  0x0d: '\\r',
  0x27: "\\'",
  0x5c: '\\\\',
};

/**
 * A single-quoted ClickHouse string literal for any JavaScript string. Lone surrogates become
 * U+FFFD (see wellFormed); everything else round-trips exactly on 18.16 and 26.x.
 */
export function quoteString(s: string): string {
  const text = wellFormed(s);
  let out = "'";
  let from = 0;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit >= 0x20 && unit !== 0x27 && unit !== 0x5c && unit !== 0x7f) continue;
    out +=
      text.slice(from, i) + (NAMED_ESCAPES[unit] ?? `\\x${unit.toString(16).toUpperCase().padStart(2, '0')}`);
    from = i + 1;
  }
  return out + text.slice(from) + "'";
}

const SMALLEST_NORMAL_FLOAT64 = 2 ** -1022;
// DateTime is seconds since the epoch in a UInt32; 18.16's date tables end with 2105.
const MAX_DATETIME_MS = Date.UTC(2105, 11, 31, 23, 59, 59);

function numberLiteral(v: number): string {
  if (!Number.isFinite(v)) throw new RangeError(`SQL literal must be a finite number, got ${v}`);
  if (Number.isInteger(v)) {
    if (!Number.isSafeInteger(v)) {
      throw new RangeError(`SQL literal ${v} is not a safe integer: pass a bigint for exact large integers`);
    }
    return String(v); // safe integers never print with an exponent; -0 prints as 0
  }
  if (Math.abs(v) < SMALLEST_NORMAL_FLOAT64) {
    throw new RangeError(`SQL literal ${v} is subnormal: ClickHouse 18.16 cannot parse it`);
  }
  return String(v);
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

function dateTimeLiteral(d: Date): string {
  const ms = d.getTime();
  if (Number.isNaN(ms)) throw new RangeError('SQL literal is an invalid Date');
  if (ms < 0 || ms > MAX_DATETIME_MS + 999) {
    throw new RangeError(
      `SQL literal ${d.toISOString()} is outside DateTime's range (1970-01-01 .. 2105-12-31 UTC)`,
    );
  }
  // DateTime has second precision: milliseconds are dropped (floor), as toDateTime would.
  const text =
    `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1, 2)}-${pad(d.getUTCDate(), 2)} ` +
    `${pad(d.getUTCHours(), 2)}:${pad(d.getUTCMinutes(), 2)}:${pad(d.getUTCSeconds(), 2)}`;
  return `toDateTime('${text}', 'UTC')`;
}

function elementLiteral(v: string | number): string {
  if (typeof v === 'string') return quoteString(v);
  if (typeof v === 'number') return numberLiteral(v);
  throw new TypeError(`unsupported SQL array element of type ${typeof v}`);
}

/**
 * A SQL literal for a value. Negative numbers at top level are parenthesised so that
 * `a-${n}` can never become a `--` comment; inside arrays they follow `[` or `, ` and are not.
 */
export function literal(v: SqlValue): string {
  switch (typeof v) {
    case 'string':
      return quoteString(v);
    case 'number': {
      const text = numberLiteral(v);
      return text.startsWith('-') ? `(${text})` : text;
    }
    case 'bigint':
      return v < 0n ? `(${v})` : String(v);
    case 'boolean':
      return v ? '1' : '0';
    default:
      if (v instanceof Date) return dateTimeLiteral(v);
      if (Array.isArray(v)) return `[${v.map(elementLiteral).join(', ')}]`;
      throw new TypeError(`unsupported SQL literal of type ${v === null ? 'null' : typeof v}`);
  }
}

/** The name itself, if it matches IDENTIFIER_PATTERN; otherwise throws InvalidIdentifierError. */
export function identifier(name: string): string {
  if (typeof name !== 'string' || !IDENTIFIER_PATTERN.test(name))
    throw new InvalidIdentifierError(String(name));
  return name;
}

/** `db.table`, both parts checked by identifier(). */
export function qualified(database: string, table: string): string {
  return `${identifier(database)}.${identifier(table)}`;
}

/** SQL text that is trusted: built by sql`` or by ident()/raw(). Only this module constructs it. */
class SqlFragment {
  readonly text: string;

  constructor(text: string) {
    this.text = text;
  }

  toString(): string {
    return this.text;
  }
}
export type { SqlFragment };

/** A checked identifier (or `db.table` when given two names) to interpolate into sql``. */
export function ident(name: string, table?: string): SqlFragment {
  return new SqlFragment(table === undefined ? identifier(name) : qualified(name, table));
}

/**
 * Trusted SQL text, inserted verbatim. Only for fragments our own code builds from constants
 * (for example a list of clauses joined by a builder); never for anything from a request,
 * a YAML file or the environment: those are values (interpolate them) or identifiers (ident).
 */
export function raw(fragment: string): SqlFragment {
  return new SqlFragment(fragment);
}

/**
 * sql`SELECT … FROM ${ident('db', 't')} WHERE a = ${value}`: every interpolation goes through
 * literal(), except fragments made by sql``, ident() and raw(), which are inserted as they are.
 */
export function sql(
  strings: TemplateStringsArray,
  ...values: readonly (SqlValue | SqlFragment)[]
): SqlFragment {
  const segment = (i: number): string => {
    const text = strings[i];
    // A tagged template keeps an invalid escape such as `\u{` as an undefined cooked string.
    if (text === undefined) throw new SyntaxError('sql`` template contains an invalid escape sequence');
    return text;
  };
  let text = segment(0);
  values.forEach((value, i) => {
    text += (value instanceof SqlFragment ? value.text : literal(value)) + segment(i + 1);
  });
  return new SqlFragment(text);
}

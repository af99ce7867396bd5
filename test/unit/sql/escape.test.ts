import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  InvalidIdentifierError,
  ident,
  identifier,
  literal,
  qualified,
  quoteString,
  raw,
  sql,
  wellFormed,
} from '../../../src/sql/escape.ts';
import type { SqlValue } from '../../../src/sql/escape.ts';

describe('quoteString', () => {
  it.each([
    ['', "''"],
    ['plain', "'plain'"],
    ["it's", "'it\\'s'"],
    ['back\\slash', "'back\\\\slash'"],
    ["\\'", "'\\\\\\''"],
    ['nul\0byte', "'nul\\0byte'"],
    ['line\nfeed', "'line\\nfeed'"],
    ['tab\there', "'tab\\there'"],
    ['cr\rlf', "'cr\\rlf'"],
    ['\x01\x08\x0b\x0c\x1b\x1f', "'\\x01\\x08\\x0B\\x0C\\x1B\\x1F'"],
    ['del\x7f', "'del\\x7F'"],
    ['"double" `back` ?{x:String} $1 --;/*', '\'"double" `back` ?{x:String} $1 --;/*\''],
    ['é ü ß 中文 \u0085 \u00a0 \u2028 \ufeff', "'é ü ß 中文 \u0085 \u00a0 \u2028 \ufeff'"],
    ['😀 \u{10ffff}', "'😀 \u{10ffff}'"],
    ['lone \ud800 high', "'lone \ufffd high'"],
    ['lone \udc00 low', "'lone \ufffd low'"],
    ['\udc00\ud800', "'\ufffd\ufffd'"],
    ['\ud800\ud83d\ude00\ud800', "'\ufffd😀\ufffd'"],
    ["'; DROP TABLE t; --", "'\\'; DROP TABLE t; --'"],
  ])('quotes %j as %s', (input, expected) => {
    expect(quoteString(input)).toBe(expected);
  });

  it('never leaves a raw quote, backslash or control character inside the literal', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (s) => {
        const body = quoteString(s).slice(1, -1);
        // Remove well-formed escapes; nothing quote-breaking may remain.
        const rest = body.replace(/\\(?:x[0-9A-F]{2}|[0ntr'\\])/g, '');
        expect(rest).not.toMatch(/['\\]/);
        expect([...rest].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f)).toBe(false);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('wellFormed', () => {
  it('replaces lone surrogates exactly as Buffer does', () => {
    const codeUnits = fc.array(
      fc.oneof(fc.integer({ min: 0xd7f0, max: 0xe010 }), fc.integer({ min: 0, max: 0xffff })),
      { maxLength: 30 },
    );
    fc.assert(
      fc.property(codeUnits, (units) => {
        const s = String.fromCharCode(...units);
        expect(wellFormed(s)).toBe(Buffer.from(s, 'utf8').toString('utf8'));
      }),
      { numRuns: 2000 },
    );
  });

  it('returns a well-formed string unchanged', () => {
    const s = 'abc😀';
    expect(wellFormed(s)).toBe(s);
  });
});

describe('literal', () => {
  it.each<[SqlValue, string]>([
    ['x', "'x'"],
    [0, '0'],
    [-0, '0'],
    [42, '42'],
    [-42, '(-42)'],
    [Number.MAX_SAFE_INTEGER, '9007199254740991'],
    [Number.MIN_SAFE_INTEGER, '(-9007199254740991)'],
    [0.1, '0.1'],
    [-2.5, '(-2.5)'],
    [1e-7, '1e-7'],
    [-1.5e-300, '(-1.5e-300)'],
    [2 ** -1022, '2.2250738585072014e-308'],
    [18446744073709551615n, '18446744073709551615'],
    [-9223372036854775808n, '(-9223372036854775808)'],
    [0n, '0'],
    [true, '1'],
    [false, '0'],
    [new Date('2024-02-29T23:59:59.999Z'), "toDateTime('2024-02-29 23:59:59', 'UTC')"],
    [new Date('1970-01-01T00:00:00Z'), "toDateTime('1970-01-01 00:00:00', 'UTC')"],
    [new Date('2105-12-31T23:59:59Z'), "toDateTime('2105-12-31 23:59:59', 'UTC')"],
    [[], '[]'],
    [['a', "b'"], "['a', 'b\\'']"],
    [[1, -2, 0.5], '[1, -2, 0.5]'],
  ])('renders a %s as %s', (value, expected) => {
    expect(literal(value)).toBe(expected);
  });

  it.each<[string, SqlValue]>([
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['-Infinity', Number.NEGATIVE_INFINITY],
    ['NaN in an array', [1, Number.NaN]],
    ['Infinity in an array', [Number.POSITIVE_INFINITY]],
    ['an unsafe integer', 2 ** 53],
    ['1e21', 1e21],
    ['a huge double (every double above 2^53 is an integer)', 1.5e300],
    ['a subnormal', Number.MIN_VALUE],
    ['a negative subnormal', -(2 ** -1030)],
    ['an invalid Date', new Date(Number.NaN)],
    ['a Date before 1970', new Date('1969-12-31T23:59:59Z')],
    ['a Date after 2105', new Date('2106-01-01T00:00:00Z')],
  ])('throws a RangeError for %s', (_name, value) => {
    expect(() => literal(value)).toThrow(RangeError);
  });

  it.each<[string, unknown]>([
    ['null', null],
    ['undefined', undefined],
    ['an object', { a: 1 }],
    ['a nested array', [['a']]],
    ['a bigint in an array', [1n]],
  ])('throws a TypeError for %s', (_name, value) => {
    expect(() => literal(value as SqlValue)).toThrow(TypeError);
  });

  it('prints every safe integer without an exponent', () => {
    fc.assert(
      fc.property(fc.maxSafeInteger(), (n) => {
        expect(literal(n)).toMatch(/^(?:\d+|\(-\d+\))$/);
      }),
    );
  });
});

describe('identifier', () => {
  it.each([
    'a',
    '_',
    'request_logs',
    'Meter_2024',
    '_tmp9',
    'a'.repeat(63),
    'select', // a keyword is still a valid name in the positions we use names in
  ])('accepts %j', (name) => {
    expect(identifier(name)).toBe(name);
  });

  it.each([
    ['empty', ''],
    ['64 characters', 'a'.repeat(64)],
    ['a leading digit', '1abc'],
    ['a statement separator', 'a;DROP'],
    ['a space', 'a b'],
    ['a dot', 'db.table'],
    ['a hyphen', 'a-b'],
    ['backticks', '`a`'],
    ['double quotes', '"a"'],
    ['a single quote', "a'"],
    ['a trailing newline', 'a\n'],
    ['a leading newline', '\na'],
    ['NUL', 'a\0'],
    ['Cyrillic а (U+0430) look-alike', '\u0430bc'],
    ['Greek ο (U+03BF) look-alike', 'l\u03bfgs'],
    ['fullwidth Ａ', '\uff21'],
    ['Latin ı (dotless i)', 'ıd'],
    ['a Kelvin sign K', '\u212a'],
    ['a zero-width space', 'a\u200b'],
    ['an accented letter', 'é'],
    ['a comment', 'a--'],
  ])('rejects %s', (_name, name) => {
    expect(() => identifier(name)).toThrow(InvalidIdentifierError);
  });

  it('carries the offending name on the error', () => {
    const error = (() => {
      try {
        identifier('a;DROP');
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(InvalidIdentifierError);
    expect(error).toMatchObject({ name: 'InvalidIdentifierError', identifier: 'a;DROP' });
  });

  it('qualifies a table with its database, checking both', () => {
    expect(qualified('billing', 'request_logs')).toBe('billing.request_logs');
    expect(() => qualified('billing;', 'request_logs')).toThrow(InvalidIdentifierError);
    expect(() => qualified('billing', 'request logs')).toThrow(InvalidIdentifierError);
  });
});

describe('sql``', () => {
  it('passes every interpolation through literal()', () => {
    const q = sql`SELECT count() FROM ${ident('db', 't')} WHERE a = ${"x' OR 1=1 --"} AND b > ${-1} AND c IN ${[
      1, 2,
    ]} AND d < ${new Date('2025-01-02T03:04:05Z')} AND e = ${true}`;
    expect(q.text).toBe(
      "SELECT count() FROM db.t WHERE a = 'x\\' OR 1=1 --' AND b > (-1) AND c IN [1, 2]" +
        " AND d < toDateTime('2025-01-02 03:04:05', 'UTC') AND e = 1",
    );
    expect(String(q)).toBe(q.text);
  });

  it('cannot turn a minus sign into a comment', () => {
    expect(sql`SELECT 1-${-1}`.text).toBe('SELECT 1-(-1)');
    expect(sql`SELECT 1-${-1n}`.text).toBe('SELECT 1-(-1)');
  });

  it('inserts ident(), raw() and nested sql`` fragments verbatim', () => {
    const where = sql`status = ${200}`;
    const q = sql`SELECT ${ident('v')} FROM t WHERE ${where} ${raw('ORDER BY v')}`;
    expect(q.text).toBe('SELECT v FROM t WHERE status = 200 ORDER BY v');
  });

  it('rejects a bad identifier when ident() is called', () => {
    expect(() => ident('t; DROP TABLE x')).toThrow(InvalidIdentifierError);
    expect(() => ident('db', '`t`')).toThrow(InvalidIdentifierError);
  });

  it('treats a look-alike fragment object as a value, and refuses it', () => {
    const forged = { text: '1; DROP TABLE t' } as unknown as SqlValue;
    expect(() => sql`SELECT ${forged}`).toThrow(TypeError);
  });

  it('quotes a string even when it looks like SQL', () => {
    expect(sql`SELECT ${'ORDER BY v'}`.text).toBe("SELECT 'ORDER BY v'");
  });
});

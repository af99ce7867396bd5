import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { contentEventId } from '../../../src/collector/formats/event-id.ts';
import { adapters } from '../../../src/collector/formats/index.ts';
import { jsonText } from '../../../src/collector/formats/json-text.ts';
import { isSensitiveHeader } from '../../../src/collector/formats/header-policy.ts';
import { headers } from '../../../src/collector/formats/headers.ts';
import { EventRejectedError } from '../../../src/collector/formats/rejection.ts';
import { parseMethod, parseTarget } from '../../../src/collector/formats/request-target.ts';
import { isoToMsByPattern, isoToMsFast, parseTimestampMs } from '../../../src/collector/formats/time.ts';
import { REQUEST_LOG_COLUMNS } from '../../../src/collector/request-log.ts';
import { context } from './wire-fixtures.ts';

// The per-event hot path of the adapters avoids regexes, Date and throwaway arrays; each shortcut is
// checked here against what it replaced, on generated input.
//
// isoToMsFast may decline a string (undefined: the pattern then decides), but whenever it answers,
// the answer must be the pattern's, to the millisecond and the sign of zero.

const pad = (n: number, width: number): string => String(n).padStart(width, '0');

/** Fields in and around their valid ranges, so both accepted and refused dates come up often. */
const nearlyValid = fc
  .record({
    year: fc.oneof(fc.integer({ min: 0, max: 9999 }), fc.constantFrom(0, 1900, 2000, 2024, 2100, 9999)),
    month: fc.integer({ min: 0, max: 13 }),
    day: fc.oneof(fc.integer({ min: 0, max: 32 }), fc.constantFrom(28, 29, 30, 31)),
    hour: fc.integer({ min: 0, max: 25 }),
    minute: fc.integer({ min: 0, max: 61 }),
    second: fc.option(fc.integer({ min: 0, max: 61 }), { freq: 8 }),
    fraction: fc.option(
      fc.tuple(
        fc.constantFrom('.', ','),
        fc.string({ unit: fc.constantFrom(...'0123456789'), maxLength: 12 }),
      ),
      { freq: 3 },
    ),
    separator: fc.constantFrom('T', 't', ' ', 'x', '_'),
    zone: fc.oneof(
      fc.constantFrom('', 'Z', 'z', 'Zz', '+', '-', 'GMT'),
      fc
        .record({
          sign: fc.constantFrom('+', '-', '\u2212'),
          hours: fc.integer({ min: 0, max: 25 }),
          colon: fc.constantFrom(':', '', '::'),
          minutes: fc.option(fc.integer({ min: 0, max: 61 })),
        })
        .map(({ sign, hours, colon, minutes }) =>
          minutes === null ? `${sign}${pad(hours, 2)}` : `${sign}${pad(hours, 2)}${colon}${pad(minutes, 2)}`,
        ),
    ),
  })
  .map((f) => {
    const seconds =
      f.second === null ? '' : `:${pad(f.second, 2)}${f.fraction === null ? '' : f.fraction.join('')}`;
    return (
      `${pad(f.year, 4)}-${pad(f.month, 2)}-${pad(f.day, 2)}${f.separator}` +
      `${pad(f.hour, 2)}:${pad(f.minute, 2)}${seconds}${f.zone}`
    );
  });

/** Any string the pattern itself could match (random digits: mostly impossible dates). */
const patternShaped = fc.stringMatching(
  /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?(?:([Zz])|([+-])(\d{2})(?::?(\d{2}))?)?$/,
);

const NEAR_MISS_CHARS = [...'0123456789-:.,+TtZz \n', '\u0660', '\uff10', '\u2212', 'x'];

/** A string with one character replaced, inserted or removed, or cut short. */
function mutated(base: fc.Arbitrary<string>): fc.Arbitrary<string> {
  return fc
    .tuple(
      base,
      fc.nat(),
      fc.constantFrom(...NEAR_MISS_CHARS),
      fc.constantFrom('replace', 'insert', 'delete', 'cut'),
    )
    .map(([text, position, char, how]) => {
      const at = position % (text.length + 1);
      switch (how) {
        case 'replace':
          return text.slice(0, at) + char + text.slice(at + 1);
        case 'insert':
          return text.slice(0, at) + char + text.slice(at);
        case 'delete':
          return text.slice(0, at) + text.slice(at + 1);
        default:
          return text.slice(0, at);
      }
    });
}

/** A valid date-time of years 0000–9999 as toISOString gives it, re-zoned to some offset. */
const canonical = fc
  .record({
    date: fc.date({
      min: new Date('0000-01-02T00:00:00.000Z'),
      max: new Date('9999-12-30T23:59:59.999Z'),
      noInvalidDate: true,
    }),
    offsetMinutes: fc.integer({ min: -(23 * 60 + 59), max: 23 * 60 + 59 }),
    style: fc.constantFrom('Z', 'z', '+HH:MM', '+HHMM', '+HH'),
    fractionDigits: fc.constantFrom(0, 1, 2, 3, 6, 9),
    separator: fc.constantFrom('T', 't', ' '),
    comma: fc.boolean(),
  })
  .map(({ date, offsetMinutes, style, fractionDigits, separator, comma }) => {
    const offset =
      style === 'Z' || style === 'z'
        ? 0
        : style === '+HH'
          ? offsetMinutes - (offsetMinutes % 60)
          : offsetMinutes;
    const local = new Date(date.getTime() + offset * 60_000).toISOString(); // YYYY-MM-DDTHH:MM:SS.mmmZ
    const millis = local.slice(20, 23);
    const fraction =
      fractionDigits === 0 ? '' : `${comma ? ',' : '.'}${`${millis}000000`.slice(0, fractionDigits)}`;
    const abs = Math.abs(offset);
    const sign = offset < 0 ? '-' : '+';
    const zone =
      style === 'Z' || style === 'z'
        ? style
        : style === '+HH:MM'
          ? `${sign}${pad(Math.floor(abs / 60), 2)}:${pad(abs % 60, 2)}`
          : style === '+HHMM'
            ? `${sign}${pad(Math.floor(abs / 60), 2)}${pad(abs % 60, 2)}`
            : `${sign}${pad(Math.floor(abs / 60), 2)}`;
    const text = `${local.slice(0, 10)}${separator}${local.slice(11, 19)}${fraction}${zone}`;
    const expected = date.getTime() - (fractionDigits >= 3 ? 0 : Number(millis) % 10 ** (3 - fractionDigits));
    return { text, expected };
  });

function expectAgreement(text: string, zonelessIsUtc: boolean): void {
  const fast = isoToMsFast(text, zonelessIsUtc);
  if (fast !== undefined) expect(Object.is(fast, isoToMsByPattern(text, zonelessIsUtc)), text).toBe(true);
}

describe('isoToMsFast', () => {
  const strings = fc.oneof(
    { arbitrary: nearlyValid, weight: 4 },
    { arbitrary: mutated(nearlyValid), weight: 3 },
    { arbitrary: patternShaped, weight: 2 },
    { arbitrary: mutated(canonical.map((c) => c.text)), weight: 2 },
    { arbitrary: fc.string({ maxLength: 40 }), weight: 1 },
  );

  it('gives the pattern’s result whenever it gives one', () => {
    fc.assert(
      fc.property(strings, fc.boolean(), (text, zonelessIsUtc) => expectAgreement(text, zonelessIsUtc)),
      { numRuns: 30_000 },
    );
  });

  it('answers every canonical date-time itself, with the right instant', () => {
    fc.assert(
      fc.property(canonical, fc.boolean(), ({ text, expected }, zonelessIsUtc) => {
        expect(isoToMsFast(text, zonelessIsUtc), text).toBe(expected);
        expect(isoToMsByPattern(text, zonelessIsUtc), text).toBe(expected);
      }),
      { numRuns: 10_000 },
    );
  });

  it.each([
    // Calendar edges: leap years by the 4/100/400 rule, year 0 included (Date's proleptic calendar).
    '2024-02-29T00:00:00Z',
    '2023-02-29T00:00:00Z',
    '1900-02-29T00:00:00Z',
    '2000-02-29T00:00:00Z',
    '0000-02-29T00:00:00Z',
    '0000-01-01T00:00:00Z',
    '0000-03-01T00:00:00+23:59',
    '9999-12-31T23:59:59.999-23:59',
    '2026-04-31T00:00:00Z',
    '2026-12-31T23:59:59Z',
    '2026-00-10T00:00:00Z',
    '2026-13-10T00:00:00Z',
    '2026-11-00T00:00:00Z',
    // Times and zones out of range.
    '2026-11-21T24:00:00Z',
    '2026-11-21T23:60:00Z',
    '2026-11-21T23:59:60Z',
    '2026-11-21T12:00:00+24:00',
    '2026-11-21T12:00:00+23:60',
    '1970-01-01T00:00:00-00:00',
    '1970-01-01T00:00:00.000+00',
    // Spellings the pattern allows.
    '2026-11-21t12:06:20.048z',
    '2026-11-21 12:06:20,048Z',
    '2026-11-21T14:06:20.048999+0200',
    '2026-11-21T14:06:20+02',
    '2026-11-21T12:06:20.1234567890123Z',
    '2026-11-21T12:06Z',
    '2026-11-21T12:06:20',
    // Near misses.
    '2026-11-21T12:06:20.Z',
    '2026-11-21T12:06:20Z\n',
    '2026-11-21T12:06:20+05:',
    '2026-11-21T12:06:20+05:3',
    '2026-11-21T12:06:20+0530Z',
    '2026-11-21T12:06:20ZZ',
    '2026-11-21T12:06:2\u0660Z',
    '+02026-11-21T12:06:20Z',
    '2026-11-21T12:06:20 Z',
  ])('%j agrees with the pattern', (text) => {
    expectAgreement(text, false);
    expectAgreement(text, true);
  });
});

describe('parseTimestampMs on the fast path and off it', () => {
  it.each([
    ['2024-02-29T00:00:00Z', Date.UTC(2024, 1, 29)],
    ['2000-02-29T23:59:59.999Z', Date.UTC(2000, 1, 29, 23, 59, 59, 999)],
    ['2106-02-07T06:28:15.999Z', 4_294_967_295_999],
    ['2106-02-07T08:28:15.999+02:00', 4_294_967_295_999],
    ['1970-01-01T00:00:00-00:00', 0],
    ['2026-11-21t12:06:20.048z', Date.UTC(2026, 10, 21, 12, 6, 20, 48)],
    ['2026-11-21 14:06:20,0489+0200', Date.UTC(2026, 10, 21, 12, 6, 20, 48)],
    ['2026-11-21T07:06:20.5-05', Date.UTC(2026, 10, 21, 12, 6, 20, 500)],
    ['2026-11-21T12:06Z', Date.UTC(2026, 10, 21, 12, 6)],
  ])('%s is %d', (text, expected) => {
    expect(Object.is(parseTimestampMs(text, 't'), expected)).toBe(true);
  });

  it.each([
    '2023-02-29T00:00:00Z',
    '1900-02-29T00:00:00Z',
    '2026-04-31T00:00:00Z',
    '2026-11-21T24:00:00Z',
    '2026-11-21T12:00:00+24:00',
    '2026-11-21T12:06:20',
    '2026-11-21T12:06:20.Z',
    '2026-11-21T12:06:20Z\n',
  ])('%j is refused', (text) => {
    expect(() => parseTimestampMs(text, 't')).toThrow(
      `t: must be an ISO-8601 date-time with a time zone (e.g. 2026-11-21T12:06:20.048Z) or epoch milliseconds or seconds, got ${JSON.stringify(text)}`,
    );
  });

  it('takes a zoneless time as UTC only when asked', () => {
    expect(parseTimestampMs('2026-11-21T12:06:20.048', 't', { zonelessIsUtc: true })).toBe(
      Date.UTC(2026, 10, 21, 12, 6, 20, 48),
    );
    expect(() => parseTimestampMs('2026-11-21T12:06:20.048', 't')).toThrow(/must be an ISO-8601/);
  });

  it('keeps the ClickHouse DateTime bounds', () => {
    expect(() => parseTimestampMs('1969-12-31T23:59:59.999Z', 't')).toThrow(/must be between/);
    expect(() => parseTimestampMs('2106-02-07T06:28:16.000Z', 't')).toThrow(/must be between/);
    expect(() => parseTimestampMs('0000-01-01T00:00:00Z', 't')).toThrow(/must be between/);
  });
});

/** What parseTarget and parseMethod did with regexes before: the oracle for their loops. */
function targetByRegex(value: string): { route: string; host: string } {
  let host = '';
  let path = value;
  const url = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/([^/?#]*)(.*)$/s.exec(value);
  if (url !== null) {
    const authority = url[1] ?? '';
    host = authority.slice(authority.lastIndexOf('@') + 1).toLowerCase();
    path = url[2] ?? '';
  }
  const end = path.search(/[?#]/);
  if (end >= 0) path = path.slice(0, end);
  if (!path.startsWith('/')) path = `/${path}`;
  return { route: path, host };
}

function outcome(run: () => unknown): unknown {
  try {
    return { value: run() };
  } catch (error) {
    if (error instanceof EventRejectedError) return { field: error.field, reason: error.reason };
    throw error;
  }
}

const URLISH_CHARS = [...'/?#:@.+-aZ09 ', 'ſ', 'ı', '\n', 'H', 'T', 'P', 's'];

describe('request line without regexes', () => {
  const urlish = fc.oneof(
    fc.string({ unit: fc.constantFrom(...URLISH_CHARS), minLength: 1, maxLength: 24 }),
    fc.webUrl({ withQueryParameters: true, withFragments: true }),
    fc.string({ minLength: 1, maxLength: 24 }),
  );

  it('parseTarget cuts what the patterns cut', () => {
    fc.assert(
      fc.property(urlish, (value) => {
        expect(parseTarget(value, 'path')).toEqual(targetByRegex(value));
      }),
      { numRuns: 5_000 },
    );
  });

  it.each([
    ['', undefined],
    ['A'.repeat(16), 'A'.repeat(16)],
    ['a'.repeat(16), 'A'.repeat(16)],
    ['A'.repeat(17), undefined],
    ['poſt', 'POST'],
    ['GET\n', undefined],
    ['G-T', undefined],
  ])('parseMethod(%j) is %j', (value, expected) => {
    if (expected === undefined) expect(() => parseMethod(value, 'm')).toThrow(EventRejectedError);
    else expect(parseMethod(value, 'm')).toBe(expected);
  });

  it('parseMethod accepts what /^[A-Z]{1,16}$/ accepted once upper-cased', () => {
    const methods = fc.oneof(
      fc.string({ unit: fc.constantFrom(...'GETPOSTgetpost', 'ſ', 'ı', '-', ' ', '\n'), maxLength: 18 }),
      fc.string({ maxLength: 18 }),
    );
    fc.assert(
      fc.property(methods, (value) => {
        const upper = value.toUpperCase();
        const expected = /^[A-Z]{1,16}$/.test(upper)
          ? { value: upper }
          : {
              field: 'm',
              reason: `must be an HTTP method of 1 to 16 letters, such as GET, got ${JSON.stringify(value)}`,
            };
        expect(outcome(() => parseMethod(value, 'm'))).toEqual(expected);
      }),
      { numRuns: 5_000 },
    );
  });
});

describe('header keys worked out once per name', () => {
  it('still drops every sensitive name, before and after its answer is remembered, and past the bound', () => {
    const names = Array.from({ length: 3000 }, (_, i) =>
      i % 3 === 0 ? `x-auth-token-${i}` : i % 3 === 1 ? `x-${i}-session` : `x-plain-${i}`,
    );
    const allow = new Set(names);
    const obj = Object.fromEntries(names.map((name) => [name.toUpperCase(), 'v']));
    const expected = names.filter((name) => !isSensitiveHeader(name));
    for (let round = 0; round < 2; round += 1) {
      const [keys, values] = headers(obj, 'response_header.', allow);
      expect(keys).toEqual(expected.map((name) => `response_header.${name}`));
      expect(values).toEqual(expected.map(() => 'v'));
      expect(headers({ 'X-Plain-2': 'v', Cookie: 'c' }, 'header.', new Set(['x-plain-2', 'cookie']))).toEqual(
        [['header.x-plain-2'], ['v']],
      );
    }
  });
});

describe('native rows', () => {
  it('keep the column order and put metadata, then request, then response headers in the meta columns', () => {
    const ctx = context('2026-11-21T12:06:30.000Z', { headerAllowList: new Set(['accept', 'etag']) });
    const { rows } = adapters.native(
      [
        {
          timestamp: '2026-11-21T12:06:20.048Z',
          method: 'get',
          path: '/v1/x?y',
          status: 200,
          metadata: { plan: 'free', a: { b: 1 } },
          headers: { Accept: 'a/b', Authorization: 'no' },
          response_headers: { ETag: '"1"' },
        },
      ],
      ctx,
    );
    const row = rows[0]!;
    expect(Object.keys(row)).toEqual([...REQUEST_LOG_COLUMNS]);
    expect(row).toMatchObject({
      received_at: 1_795_262_790,
      request_time: 1_795_262_780,
      request_time_ms: 48,
      method: 'GET',
      route: '/v1/x',
      meta_keys: ['metadata.plan', 'metadata.a.b', 'header.accept', 'response_header.etag'],
      meta_values: ['free', '1', 'a/b', '"1"'],
    });
  });
});

describe('contentEventId', () => {
  it('is the SHA-256 of the canonical JSON, as with a Hash object', () => {
    const values = fc.oneof(
      fc.jsonValue(),
      fc.string({ unit: 'binary' }),
      fc.constantFrom('\ud800', 'a\udc00b', { k: '\udbff' }),
    );
    fc.assert(
      fc.property(values, (value) => {
        const digest = createHash('sha256')
          .update(jsonText(value, { sortKeys: true }) ?? 'null', 'utf8')
          .digest('hex');
        expect(contentEventId(value)).toBe(`h:${digest.slice(0, 32)}`);
      }),
      { numRuns: 2_000 },
    );
  });
});

import { describe, expect, it } from 'vitest';
import { parseInstant } from '../../../src/time/parse-instant.ts';

const iso = (text: string) => {
  const parsed = parseInstant(text);
  if (!(parsed instanceof Date)) throw new Error(parsed.message);
  return parsed.toISOString();
};

describe('parseInstant: the forms it takes', () => {
  it.each([
    ['2026-12-01T00:00:00Z', '2026-12-01T00:00:00.000Z'],
    ['2026-12-01T00:00Z', '2026-12-01T00:00:00.000Z'],
    ['2026-12-01t00:00:00z', '2026-12-01T00:00:00.000Z'],
    ['2026-12-01T00:00:00+01:00', '2026-11-30T23:00:00.000Z'],
    ['2026-12-01T00:00:00-05:30', '2026-12-01T05:30:00.000Z'],
    ['2026-12-01T00:00:00.250Z', '2026-12-01T00:00:00.250Z'],
    // Beyond milliseconds: dropped, never rounded up into the next millisecond.
    ['2026-12-01T00:00:00.999999999Z', '2026-12-01T00:00:00.999Z'],
  ])('%s is %s', (text, expected) => {
    expect(iso(text)).toBe(expected);
  });

  it('reads a date alone as 00:00 UTC of that day', () => {
    expect(iso('2026-12-01')).toBe('2026-12-01T00:00:00.000Z');
    expect(iso('2028-02-29')).toBe('2028-02-29T00:00:00.000Z');
  });

  it('reads a + that a query string turned into a space as the + it was', () => {
    // `?from=2026-12-01T00:00:00+01:00` not URL-encoded arrives as "…00:00:00 01:00".
    expect(iso('2026-12-01T00:00:00 01:00')).toBe(iso('2026-12-01T00:00:00+01:00'));
    expect(iso(new URLSearchParams('from=2026-12-01T00:00:00+01:00').get('from')!)).toBe(
      '2026-11-30T23:00:00.000Z',
    );
  });

  it('takes the first and the last instants ClickHouse DateTime holds', () => {
    expect(iso('1970-01-01T00:00:00Z')).toBe('1970-01-01T00:00:00.000Z');
    expect(iso('2105-12-31T23:59:59Z')).toBe('2105-12-31T23:59:59.000Z');
  });
});

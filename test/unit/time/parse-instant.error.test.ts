import { describe, expect, it } from 'vitest';
import {
  ACCEPTED_INSTANT_FORMS,
  parseInstant,
  type InvalidInstant,
} from '../../../src/time/parse-instant.ts';

const refused = (text: string): InvalidInstant => {
  const parsed = parseInstant(text);
  if (parsed instanceof Date) throw new Error(`${text} was accepted as ${parsed.toISOString()}`);
  return parsed;
};

describe('parseInstant: what it refuses, and the words it uses', () => {
  it.each([
    ['2026-12-01T00:00:00', 'has no time zone'],
    ['2026-12-01T00:00', 'has no time zone'],
    ['1764547200', 'looks like epoch seconds'],
    ['1764547200000', 'looks like epoch milliseconds'],
    ['2026-13-01', 'no such date or time'],
    ['2026-02-29', 'no such date or time'],
    ['2026-04-31T00:00:00Z', 'no such date or time'],
    ['2026-12-01T24:00:00Z', 'no such date or time'],
    ['2026-12-01T00:60:00Z', 'no such date or time'],
    ['2026-12-01T00:00:60Z', 'no such date or time'],
    ['2026-12-01T00:00:00+24:00', 'no such zone offset'],
    ['1969-12-31', 'the year must be 1970-2105'],
    ['2106-01-01', 'the year must be 1970-2105'],
    ['1970-01-01T00:30:00+01:00', 'must fall in the years 1970-2105'],
    ['2026-12-01T00:00:00+0100', 'not a time'],
    ['01/12/2026', 'not a time'],
    ['now', 'not a time'],
    ['', 'not a time'],
  ])('%j: %s', (text, reason) => {
    const { kind, message } = refused(text);
    expect(kind).toBe('invalid_instant');
    expect(message).toContain(reason);
    // Every refusal names the accepted forms and quotes what was sent.
    expect(message).toContain(ACCEPTED_INSTANT_FORMS);
    expect(message).toContain(`got '${text}'`);
  });

  it('quotes at most 64 characters of what was sent', () => {
    expect(refused('x'.repeat(500)).message).toContain(`got '${'x'.repeat(64)}…'`);
  });
});

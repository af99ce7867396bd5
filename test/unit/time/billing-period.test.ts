import { describe, expect, it } from 'vitest';
import { parsePeriod, periodEnd, periodId, periodStart } from '../../../src/time/billing-period.ts';

describe('billing periods (calendar months, UTC)', () => {
  it('finds the period of an instant, across a year end and a leap day', () => {
    const d = new Date('2027-12-31T23:30:00Z');
    expect([periodStart(d), periodEnd(d)].map((x) => x.toISOString())).toEqual([
      '2027-12-01T00:00:00.000Z',
      '2028-01-01T00:00:00.000Z',
    ]);
    expect(periodEnd(new Date('2028-02-29T23:30:00Z')).toISOString()).toBe('2028-03-01T00:00:00.000Z');
    expect(periodId(new Date('2026-01-01T00:30:00Z'))).toBe('2026-01');
  });

  it('parses YYYY-MM and names the form when it is anything else', () => {
    expect(parsePeriod('2026-11')).toEqual({
      start: new Date('2026-11-01T00:00:00Z'),
      end: new Date('2026-12-01T00:00:00Z'),
    });
    for (const bad of ['2026-13', '2026-00', '2026-1', '2026-11-01', 'november', '1969-12', '2106-01']) {
      expect(parsePeriod(bad)).toEqual({
        kind: 'invalid_period',
        message: expect.stringContaining(`YYYY-MM, e.g. '2026-11'`),
      });
    }
  });
});

// Where the explorer's histogram dedupes (dedupeRanges): the request times two parts both span, and
// those of a part never merged; nothing else. Pure: parts in, ranges out.
import { describe, expect, it } from 'vitest';
import {
  dedupeMinutes,
  dedupeRanges,
  histogramSql,
} from '../../../src/storage/clickhouse/request-log-explorer.ts';

const merged = (min: number, max: number) => ({ min, max, level: 1 });
const inserted = (min: number, max: number) => ({ min, max, level: 0 });

describe('dedupeRanges', () => {
  it.each([
    { name: 'one merged part: nowhere', parts: [merged(0, 999)], want: [] },
    { name: 'merged parts apart: nowhere', parts: [merged(0, 99), merged(100, 199)], want: [] },
    { name: 'merged parts sharing a second', parts: [merged(0, 100), merged(100, 199)], want: [[100, 100]] },
    {
      name: 'a part inserted since, inside a merged one',
      parts: [merged(0, 999), merged(500, 509)],
      want: [[500, 509]],
    },
    { name: 'a part never merged, alone', parts: [inserted(10, 20)], want: [[10, 20]] },
    {
      name: 'overlaps merged into one range, in order',
      parts: [merged(0, 999), merged(700, 710), merged(300, 305), merged(304, 320), inserted(709, 730)],
      want: [
        [300, 320],
        [700, 730],
      ],
    },
    { name: 'clipped to the range', parts: [inserted(0, 5000)], want: [[1000, 1999]], range: [1000, 2000] },
  ])('$name', ({ parts, want, range = [0, 10_000] }) => {
    expect(dedupeRanges(parts, range[0]!, range[1]!)).toEqual(want);
  });
});

describe('dedupeMinutes', () => {
  it('lists the minutes that hold the ranges, once each, in order', () => {
    expect(
      dedupeMinutes([
        [59, 60],
        [61, 179],
        [600, 600],
      ]),
    ).toEqual([0, 1, 2, 10]);
  });
  it('gives up past its maximum (the histogram then dedupes everything)', () => {
    expect(dedupeMinutes([[0, 60 * 100]], 100)).toBeUndefined();
    expect(dedupeMinutes([[0, 60 * 100 - 1]], 100)).toHaveLength(100);
  });
});

describe('histogramSql', () => {
  const f = { from: new Date('2027-04-02T00:00:00Z'), to: new Date('2027-04-03T00:00:00Z') };
  it('counts with count() alone where no copies can be', () => {
    const sql = histogramSql('db.request_logs', f, 60, []);
    expect(sql).toContain('count() AS calls');
    expect(sql).not.toContain('uniqExact');
  });
  it('dedupes the minutes where copies can be, counts the rest', () => {
    const sql = histogramSql('db.request_logs', f, 60, [30110400, 30110402]);
    expect(sql).toContain('AND intDiv(toUInt32(request_time), 60) NOT IN (30110400, 30110402)');
    expect(sql).toContain(`uniqExact(app, event_id) AS calls\n    FROM db.request_logs WHERE`);
    expect(sql).toContain('AND intDiv(toUInt32(request_time), 60) IN (30110400, 30110402)');
  });
  it('reads the filter where copies can be only, with PREWHERE on request_logs itself', () => {
    const sql = histogramSql('db.request_logs', f, 60, [30110400], true);
    expect(sql).toContain(
      'FROM db.request_logs PREWHERE intDiv(toUInt32(request_time), 60) IN (30110400) WHERE',
    );
    expect(histogramSql('db.request_logs_counted', f, 60, [30110400])).not.toContain('PREWHERE');
  });
  it('dedupes everything where the parts cannot be seen', () => {
    const sql = histogramSql('db.request_logs', f, 60);
    expect(sql).toContain('uniqExact(app, event_id)');
    expect(sql).not.toContain('count()');
  });
});

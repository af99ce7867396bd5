// Unix time in seconds, as Stripe and `date +%s` give it, sent where a timestamp is expected. It was
// read as milliseconds and refused with a date in January 1970; a number below 1e11 is now seconds.
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config.ts';
import { adapters } from '../../../src/collector/formats/index.ts';
import { EPOCH_SECONDS_BELOW, parseTimestampMs } from '../../../src/collector/formats/time.ts';
import { context, readWire } from './wire-fixtures.ts';

const ctx = context('2026-11-21T12:00:00.000Z');
const SECONDS = 1795262399; // 2026-11-21T11:59:59Z
const MS = SECONDS * 1000;

describe('epoch seconds', () => {
  it('reads a number below 1e11 as seconds (fractions to the millisecond) and from 1e11 on as milliseconds', () => {
    expect(parseTimestampMs(SECONDS, 't')).toBe(MS);
    expect(parseTimestampMs(SECONDS + 0.123, 't')).toBe(MS + 123);
    expect(parseTimestampMs(SECONDS + 0.9999, 't')).toBe(MS + 999);
    expect(parseTimestampMs(0, 't')).toBe(0);
    expect(parseTimestampMs(4_294_967_295, 't')).toBe(4_294_967_295_000); // the last second a DateTime holds
    expect(parseTimestampMs(MS, 't')).toBe(MS);
    expect(parseTimestampMs(EPOCH_SECONDS_BELOW, 't')).toBe(1e11); // milliseconds: 1973-03-03
    expect(() => parseTimestampMs(EPOCH_SECONDS_BELOW - 1, 't')).toThrow(/must be between 1970.* and 2106/);
  });

  it('no accepted range reaches a millisecond time below 1e11, so the two readings never compete', () => {
    const widest = loadConfig({ INGEST_MAX_PAST_DAYS: '3650' }).limits.maxPastMs;
    expect(() => loadConfig({ INGEST_MAX_PAST_DAYS: '3651' })).toThrow(/INGEST_MAX_PAST_DAYS/);
    // Any service started since 1983 (1e11 ms plus the widest range) refuses every such millisecond time.
    expect(Date.parse('1983-03-04T00:00:00Z') - widest).toBeGreaterThan(EPOCH_SECONDS_BELOW);
  });

  it('gives the same row for seconds as for milliseconds, in every format that takes a number', () => {
    const native = { id: 'n', timestamp: MS, company_id: 'c', method: 'GET', path: '/x', status: 200 };
    const kong = { ...readWire<Record<string, unknown>>('kong-http-log-3.8.json'), started_at: MS };
    const moesif = {
      request: { time: MS, uri: '/x', verb: 'GET', headers: {} },
      response: { time: MS + 20, status: 200, headers: {} },
      company_id: 'c',
    };
    const cases = [
      ['native', native, { ...native, timestamp: SECONDS }],
      ['kong', kong, { ...kong, started_at: SECONDS }],
      ['moesif', moesif, { ...moesif, request: { ...moesif.request, time: SECONDS } }],
    ] as const;
    for (const [format, inMs, inSeconds] of cases) {
      const [fromMs] = adapters[format]([inMs], ctx).rows;
      const result = adapters[format]([inSeconds], ctx);
      expect(result.rejected, format).toEqual([]);
      expect(result.rows[0]).toMatchObject({ request_time: SECONDS, request_time_ms: 0 });
      // Without a transaction id a Moesif event's id is a hash of its content, which differs.
      expect({ ...result.rows[0]!, event_id: '' }, format).toEqual({ ...fromMs!, event_id: '' });
    }
  });
});

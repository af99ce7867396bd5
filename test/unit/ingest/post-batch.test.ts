import { describe, expect, it } from 'vitest';
import { createCollectorTarget, parseRetryAfter, retryDelay } from '../../../ingest/post-batch.ts';

describe('parseRetryAfter', () => {
  const now = Date.parse('2026-11-21T12:00:00Z');
  it.each([
    [undefined, undefined],
    ['0', 0],
    ['3', 3000],
    [' 7 ', 7000],
    ['999999', 60_000],
    ['Sat, 21 Nov 2026 12:00:05 GMT', 5000],
    ['Sat, 21 Nov 2026 11:00:00 GMT', 0],
    ['soon', undefined],
    ['-1', undefined],
  ])('%s → %s ms', (value, expected) => {
    expect(parseRetryAfter(value, 60_000, now)).toBe(expected);
  });
});

describe('retryDelay', () => {
  const target = createCollectorTarget({
    baseUrl: 'http://127.0.0.1:1',
    apiKey: 'k'.repeat(50),
    retryBaseMs: 100,
    retryMaxMs: 1000,
  });
  it('doubles with equal jitter, capped, and never undercuts Retry-After', () => {
    for (let i = 0; i < 200; i++) {
      const first = retryDelay(target, 0, undefined);
      expect(first).toBeGreaterThanOrEqual(50);
      expect(first).toBeLessThanOrEqual(100);
      const capped = retryDelay(target, 20, undefined);
      expect(capped).toBeGreaterThanOrEqual(500);
      expect(capped).toBeLessThanOrEqual(1000);
      expect(retryDelay(target, 0, 5000)).toBe(5000);
    }
    target.destroy();
  });

  it('appends /v1/logs to the base URL', () => {
    const withPath = createCollectorTarget({
      baseUrl: 'https://meter.example.com/ingest/?x=1',
      apiKey: 'k'.repeat(50),
    });
    expect(withPath.url.href).toBe('https://meter.example.com/ingest/v1/logs');
    withPath.destroy();
  });
});

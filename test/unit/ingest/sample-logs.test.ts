import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { generateSampleLogs } from '../../../ingest/sample-logs.ts';
import type { SampleLogOptions } from '../../../ingest/sample-logs.ts';

const base: SampleLogOptions = {
  count: 5000,
  seed: 7,
  start: new Date('2026-11-01T00:00:00Z'),
  end: new Date('2026-11-08T00:00:00Z'),
  companies: 20,
  users: 200,
};

describe('generateSampleLogs', () => {
  it('is deterministic for the same options and differs for another seed', () => {
    const a = [...generateSampleLogs(base)];
    const b = [...generateSampleLogs(base)];
    const c = [...generateSampleLogs({ ...base, seed: 8 })];
    expect(a).toEqual(b);
    expect(a).toHaveLength(5000);
    expect(c[0]).not.toEqual(a[0]);
    expect(new Set([...a, ...c].map((r) => r.id)).size).toBe(10_000);
  });

  it('looks like credit-score API traffic', () => {
    const records = [...generateSampleLogs(base)];
    const times = records.map((r) => Date.parse(r.timestamp as string));
    expect(times).toEqual([...times].sort((x, y) => x - y));
    expect(Math.min(...times)).toBeGreaterThanOrEqual(base.start.getTime());
    expect(Math.max(...times)).toBeLessThan(base.end.getTime());

    const share = (predicate: (r: (typeof records)[number]) => boolean) =>
      records.filter(predicate).length / records.length;
    expect(share((r) => r.path === '/RetrieveCreditScore')).toBeGreaterThan(0.6);
    expect(share((r) => r.path === '/RetrieveCreditReport')).toBeGreaterThan(0.1);
    expect(share((r) => /^\/v1\/accounts\/acc_\d{6}$/.test(r.path ?? ''))).toBeGreaterThan(0.05);
    expect(share((r) => r.status === 200)).toBeGreaterThan(0.8);
    expect(new Set(records.map((r) => r.status))).toEqual(new Set([200, 400, 401, 404, 429, 500]));
    for (const r of records.filter((x) => x.status === 404)) expect(r.path).toMatch(/^\/v1\/accounts\/acc_/);
    expect(new Set(records.map((r) => r.company_id)).size).toBe(20);
    expect(share((r) => r.company_id === 'co_001')).toBeGreaterThan(share((r) => r.company_id === 'co_020'));
    for (const r of records) {
      expect(r.company_id).toMatch(/^co_\d{3}$/);
      expect(r.user_id).toMatch(/^usr_\d{4}$/);
      // users belong to one company: usr_N is in co_((N-1) % 20 + 1)
      expect((Number(r.user_id!.slice(4)) - 1) % 20).toBe(Number(r.company_id!.slice(3)) - 1);
      expect(r.metadata?.plan).toMatch(/^(free|starter|growth|enterprise)$/);
      expect(r.latency_ms).toBeGreaterThan(0);
    }
  });

  it('matches the committed sample file', async () => {
    const text = await readFile(
      new URL('../../../ingest/samples/credit-score-sample.ndjson', import.meta.url),
      'utf8',
    );
    const expected = [...generateSampleLogs({ ...base, count: 200, seed: 1 })]
      .map((r) => JSON.stringify(r))
      .join('\n');
    expect(text).toBe(`${expected}\n`);
  });
});

import { afterAll, describe, expect, it } from 'vitest';
import { inlinePreparer, WorkerPoolPreparer } from '../../../src/collector/body-to-rows-threads.ts';
import type { PrepareInput } from '../../../src/collector/body-to-rows.ts';

const now = Date.parse('2026-11-21T12:00:00Z');
const input = (events: unknown[]): PrepareInput => ({
  format: 'native',
  kind: 'json',
  shape: 'either',
  body: Buffer.from(JSON.stringify(events)),
  app: 'app1',
  receivedAtMs: now,
  headerAllowList: ['content-type'],
  limits: {
    maxEventBytes: 1024 * 1024,
    maxEventsPerRequest: 100_000,
    maxPastMs: 86_400_000,
    maxFutureMs: 300_000,
  },
});

describe('worker pool preparer', () => {
  const pool = new WorkerPoolPreparer(2, 1024);
  afterAll(() => pool.close());

  it('gives a worker-prepared batch byte for byte what the inline path gives', async () => {
    const events = Array.from({ length: 2000 }, (_, i) => ({
      id: `e${i}`,
      timestamp: now - i * 1000,
      company_id: `co_${i % 7}`,
      method: 'post',
      path: `/RetrieveCreditScore?i=${i}`,
      status: i % 100 === 0 ? 1e30 : 200,
      metadata: { plan: 'pro', note: 'ünïcode \u{1F600}' },
      headers: { 'content-type': 'application/json', authorization: 'Bearer x' },
    }));
    const inline = await inlinePreparer.prepare(input(events));
    const pooled = await pool.prepare(input(events));
    expect(pooled.ok && inline.ok).toBe(true);
    if (!pooled.ok || !inline.ok) return;
    expect(Buffer.from(pooled.rows).equals(Buffer.from(inline.rows))).toBe(true);
    expect(pooled.accepted).toBe(1980);
    expect(pooled.rejected).toEqual(inline.rejected);
    expect(pooled.rejected.map((r) => r.index)).toEqual(Array.from({ length: 20 }, (_, i) => i * 100));
  });

  it('carries a whole-body error back as data, and keeps serving many batches at once', async () => {
    const bad = await pool.prepare({ ...input([]), body: Buffer.from('[{"a":'.padEnd(2048, ' ')) });
    expect(bad).toMatchObject({ ok: false, code: 'malformed_body' });
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, b) =>
        pool.prepare(
          input(
            Array.from({ length: 50 }, (_, i) => ({
              id: `b${b}-${i}`,
              timestamp: now,
              method: 'GET',
              path: '/x',
              status: 200,
            })),
          ),
        ),
      ),
    );
    expect(results.map((r) => r.ok && r.accepted)).toEqual(Array.from({ length: 20 }, () => 50));
  });
});

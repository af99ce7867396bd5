import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { shipFile } from '../../../ingest/ship.ts';
import { startTestService, type TestService } from '../../support/service.ts';

// `billing-meter ship` against the real collector: the collector's per-event verdict on a mixed batch
// (400 with accepted + rejected) must reach the report as what it is, not as a failed batch.
describe('ship against the collector', () => {
  let svc: TestService;
  let dir: string;
  beforeAll(async () => {
    svc = await startTestService('server');
    dir = await mkdtemp(join(tmpdir(), 'bm-ship-'));
  });
  afterAll(async () => {
    await svc?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('reports stored, rejected and unreadable lines exactly, and stores the valid ones once', async () => {
    const now = new Date().toISOString();
    const line = (id: string, status: number) =>
      JSON.stringify({
        id,
        timestamp: now,
        company_id: 'co_ship',
        method: 'GET',
        path: '/RetrieveCreditScore',
        status,
      });
    const file = join(dir, 'logs.ndjson');
    await writeFile(file, [line('s1', 200), line('s2', 1e30), 'not json', line('s3', 500), ''].join('\n'));
    const report = await shipFile(file, { baseUrl: svc.url, apiKey: svc.ingestKey });
    expect(report).toMatchObject({ sent: 2, rejectedCount: 1, badLineCount: 1, failed: 0, aborted: false });
    expect(report.rejected).toEqual([expect.objectContaining({ line: 2, field: 'status' })]);
    expect(report.badLines).toEqual([expect.objectContaining({ line: 3 })]);
    // Shipping the same file again counts nothing twice.
    await shipFile(file, { baseUrl: svc.url, apiKey: svc.ingestKey });
    const ids = (await svc.rows()).filter((r) => r.customer_key === 'co_ship').map((r) => r.event_id);
    expect(ids).toEqual(['s1', 's3']);
  });
});

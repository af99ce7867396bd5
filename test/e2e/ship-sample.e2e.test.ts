// The committed sample file (ingest/samples/, recorded in November 2026) stays shippable on any later
// date: `billing-meter ship --shift-to-now` moves its times so the newest call is now, and a real
// collector, which refuses request times older than 35 days, takes every record.
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestService, type TestService } from '../support/service.ts';
import { requestMsOf, waitForRows } from './support.ts';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const sample = 'ingest/samples/credit-score-sample.ndjson';

let svc: TestService;
beforeAll(async () => {
  svc = await startTestService('server');
});
afterAll(async () => {
  await svc?.stop();
});

describe('billing-meter ship --shift-to-now of the committed sample', () => {
  it('is accepted in full, its newest call now and the others as far apart as recorded', async () => {
    const recorded = (await readFile(new URL(`../../${sample}`, import.meta.url), 'utf8'))
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { id: string; timestamp: string });
    const before = Date.now();
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [
        'bin/billing-meter.js',
        'ship',
        sample,
        '--url',
        svc.url,
        '--key',
        svc.ingestKey,
        '--shift-to-now',
        '--json',
      ],
      { cwd: repo, env: { ...process.env, LOG_LEVEL: 'silent' } },
    );
    const after = Date.now();
    expect(JSON.parse(stdout)).toMatchObject({ sent: recorded.length, rejectedCount: 0, failed: 0 });

    const rows = await waitForRows(svc, (row) => row.app === svc.keyId, recorded.length);
    expect(rows).toHaveLength(recorded.length);
    const stored = new Map(rows.map((row) => [row.event_id, requestMsOf(row)]));
    const newestRecorded = Math.max(...recorded.map((r) => Date.parse(r.timestamp)));
    const newestStored = Math.max(...stored.values());
    expect(newestStored).toBeGreaterThanOrEqual(before - 1000);
    expect(newestStored).toBeLessThanOrEqual(after);
    for (const record of recorded)
      expect(newestStored - stored.get(record.id)!).toBe(newestRecorded - Date.parse(record.timestamp));
  });
});

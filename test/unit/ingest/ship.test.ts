import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { shipFile } from '../../../ingest/ship.ts';
import { acceptAll, startCatcher, TEST_KEY } from './catcher.ts';
import type { Catcher } from './catcher.ts';

let catcher: Catcher;
let dir: string;
beforeEach(async () => {
  catcher = await startCatcher();
  dir = await mkdtemp(join(tmpdir(), 'ship-test-'));
});
afterEach(async () => {
  await catcher.close();
  await rm(dir, { recursive: true, force: true });
});

const record = (i: number) => ({
  id: `r${i}`,
  timestamp: '2026-11-01T00:00:00.000Z',
  method: 'POST',
  path: '/RetrieveCreditScore',
  status: 200,
});

describe('shipFile', () => {
  it('sends the good lines in batches and reports bad lines by number without sending them', async () => {
    const lines = [
      JSON.stringify(record(1)),
      JSON.stringify(record(2)),
      '{"id": "broken", ',
      '',
      JSON.stringify(record(3)),
      '[1, 2]',
      JSON.stringify(record(4)),
      JSON.stringify(record(5)),
    ];
    const file = join(dir, 'logs.ndjson');
    await writeFile(file, `${lines.join('\r\n')}\n`);

    const report = await shipFile(file, {
      baseUrl: catcher.baseUrl,
      apiKey: TEST_KEY,
      batchSize: 2,
      retryBaseMs: 1,
    });

    expect(report).toMatchObject({
      lines: 8,
      sent: 5,
      rejectedCount: 0,
      badLineCount: 2,
      failed: 0,
      errors: [],
      aborted: false,
    });
    expect(report.badLines.map((b) => b.line)).toEqual([3, 6]);
    expect(report.badLines[0]!.reason).toMatch(/invalid JSON/);
    expect(report.badLines[1]!.reason).toBe('not a JSON object');
    expect(catcher.requests.map((r) => r.records.length)).toEqual([2, 2, 1]);
    expect(catcher.records()).toEqual([1, 2, 3, 4, 5].map(record));
    expect(catcher.requests[0]!.headers['content-encoding']).toBe('gzip');
  });

  it('maps records rejected by the collector back to line numbers, and retries through postBatch', async () => {
    catcher.respond = (request, n) => {
      if (n === 1) return { status: 503, headers: { 'retry-after': '0' } };
      if (request.records.some((r) => r.id === 'r3')) {
        return {
          status: 202,
          body: { accepted: 1, rejected: [{ index: 0, field: 'status', reason: 'out of range' }] },
        };
      }
      return acceptAll(request);
    };
    const stdin = Readable.from([1, 2, 3, 4].map((i) => `${JSON.stringify(record(i))}\n`).join(''));
    const report = await shipFile('-', {
      baseUrl: catcher.baseUrl,
      apiKey: TEST_KEY,
      batchSize: 2,
      retryBaseMs: 1,
      stdin,
    });
    expect(report).toMatchObject({ lines: 4, sent: 3, rejectedCount: 1, failed: 0 });
    expect(report.rejected).toEqual([{ line: 3, id: 'r3', field: 'status', reason: 'out of range' }]);
    expect(catcher.requests).toHaveLength(3);
  });

  it('stops at a bad ingest key', async () => {
    catcher.respond = () => ({ status: 401, body: { title: 'Unauthorized' } });
    const stdin = Readable.from([1, 2, 3, 4, 5].map((i) => `${JSON.stringify(record(i))}\n`).join(''));
    const report = await shipFile('-', { baseUrl: catcher.baseUrl, apiKey: TEST_KEY, batchSize: 2, stdin });
    expect(catcher.requests).toHaveLength(1);
    expect(report).toMatchObject({ sent: 0, failed: 2, aborted: true });
    expect(report.errors).toEqual([
      expect.objectContaining({ code: 'unauthorized', status: 401, lines: [1, 2] }),
    ]);
  });

  it('rejects a missing file before sending anything', async () => {
    await expect(
      shipFile(join(dir, 'nope.ndjson'), { baseUrl: catcher.baseUrl, apiKey: TEST_KEY }),
    ).rejects.toThrow(/ENOENT/);
    expect(catcher.requests).toHaveLength(0);
  });
});

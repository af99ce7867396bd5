import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
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

describe('shipFile with shiftTo', () => {
  const at = (timestamp: string | number, id: string) => ({ id, timestamp, method: 'GET', status: 200 });

  it('moves every time by one offset so the newest is at shiftTo, keeping spacing and each time’s form', async () => {
    const file = join(dir, 'old.ndjson');
    const records = [
      at('2026-11-01T00:00:00.000Z', 'a'),
      at('2026-11-03T12:00:00+01:00', 'newest'), // 11:00 UTC
      at(Date.parse('2026-11-02T00:00:00Z'), 'epoch-ms'),
      at('2026-11-02', 'no zone'),
      { id: 'no time', method: 'GET', status: 200 },
    ];
    await writeFile(file, `\uFEFF${records.map((r) => JSON.stringify(r)).join('\n')}\nnot json\n`);
    const now = new Date('2027-03-01T09:30:00.000Z');
    const report = await shipFile(file, { baseUrl: catcher.baseUrl, apiKey: TEST_KEY, shiftTo: now });

    expect(report).toMatchObject({ sent: 5, badLineCount: 1, failed: 0 });
    const offset = now.getTime() - Date.parse('2026-11-03T11:00:00Z');
    const sent = Object.fromEntries(catcher.records().map((r) => [r.id, r.timestamp]));
    expect(sent).toEqual({
      a: new Date(Date.parse('2026-11-01T00:00:00Z') + offset).toISOString(),
      newest: now.toISOString(),
      'epoch-ms': Date.parse('2026-11-02T00:00:00Z') + offset,
      // Left as they are, for the collector to refuse with its own reason.
      'no zone': '2026-11-02',
      'no time': undefined,
    });
  });

  it('ships the committed sample file with its newest call now and the rest as far apart as recorded', async () => {
    const sample = fileURLToPath(
      new URL('../../../ingest/samples/credit-score-sample.ndjson', import.meta.url),
    );
    const original = (await readFile(sample, 'utf8'))
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { id: string; timestamp: string });
    const now = new Date();
    const report = await shipFile(sample, { baseUrl: catcher.baseUrl, apiKey: TEST_KEY, shiftTo: now });
    expect(report).toMatchObject({ sent: original.length, badLineCount: 0, failed: 0 });

    const shifted = new Map(catcher.records().map((r) => [r.id, Date.parse(r.timestamp as string)]));
    const times = original.map((r) => Date.parse(r.timestamp));
    const offset = now.getTime() - Math.max(...times);
    expect(Math.max(...shifted.values())).toBe(now.getTime());
    for (const r of original) expect(shifted.get(r.id)).toBe(Date.parse(r.timestamp) + offset);
  });

  it('refuses stdin, which cannot be read twice', async () => {
    await expect(
      shipFile('-', {
        baseUrl: catcher.baseUrl,
        apiKey: TEST_KEY,
        shiftTo: new Date(),
        stdin: Readable.from([]),
      }),
    ).rejects.toThrow(/needs a file, not stdin/);
    expect(catcher.requests).toHaveLength(0);
  });
});

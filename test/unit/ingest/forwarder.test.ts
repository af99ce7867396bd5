import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createForwarder } from '../../../ingest/forwarder.ts';
import type { ForwarderOptions } from '../../../ingest/forwarder.ts';
import type { NativeRecord } from '../../../ingest/native-record.ts';
import type { IngestError } from '../../../ingest/post-batch.ts';
import { acceptAll, startCatcher, TEST_KEY } from './catcher.ts';
import type { Catcher } from './catcher.ts';

let catcher: Catcher;
beforeEach(async () => {
  catcher = await startCatcher();
});
afterEach(async () => {
  await catcher.close();
});

function options(extra: Partial<ForwarderOptions> = {}): ForwarderOptions {
  return { baseUrl: catcher.baseUrl, apiKey: TEST_KEY, flushIntervalMs: 60_000, retryBaseMs: 1, ...extra };
}

function sample(i: number): NativeRecord {
  return {
    id: `rec-${i}`,
    timestamp: 1_700_000_000_000 + i,
    method: 'POST',
    path: '/RetrieveCreditScore',
    status: 200,
  };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('forwarder batching', () => {
  it('sends full batches at once and the rest on flush(), gzip body decoding to exactly the records', async () => {
    const forwarder = createForwarder(options({ batchSize: 3 }));
    const records = Array.from({ length: 7 }, (_, i) => sample(i));
    for (const record of records) expect(forwarder.record(record)).toBe(true);
    await catcher.waitFor(() => catcher.requests.length === 2);
    await forwarder.flush();

    expect(catcher.requests.map((r) => r.records.length)).toEqual([3, 3, 1]);
    for (const request of catcher.requests) {
      expect(request.method).toBe('POST');
      expect(request.url).toBe('/v1/logs');
      expect(request.headers.authorization).toBe(`Bearer ${TEST_KEY}`);
      expect(request.headers['content-type']).toBe('application/json');
      expect(request.headers['content-encoding']).toBe('gzip');
      expect(request.raw.subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]));
    }
    expect(catcher.records()).toEqual(records);
    expect(forwarder.stats()).toEqual({ queued: 0, sent: 7, rejected: 0, dropped: 0, failed: 0, retries: 0 });
    await forwarder.close();
  });

  it('adds a random uuid id where a record has none, and can send plain JSON', async () => {
    const forwarder = createForwarder(options({ gzip: false }));
    forwarder.record({ timestamp: '2026-11-01T00:00:00.000Z', method: 'GET', status: 200 });
    forwarder.record({ timestamp: '2026-11-01T00:00:00.000Z', method: 'GET', status: 200 });
    await forwarder.flush();
    const [request] = catcher.requests;
    expect(request?.headers['content-encoding']).toBeUndefined();
    const ids = catcher.records().map((r) => r.id as string);
    expect(ids).toHaveLength(2);
    for (const id of ids) expect(id).toMatch(UUID);
    expect(ids[0]).not.toBe(ids[1]);
    await forwarder.close();
  });

  it('sends a partial batch after flushIntervalMs without flush()', async () => {
    const forwarder = createForwarder(options({ flushIntervalMs: 50 }));
    forwarder.record(sample(1));
    await catcher.waitFor(() => catcher.records().length === 1, 2000);
    await forwarder.close();
  });

  it('counts records the collector rejects in a 2xx answer', async () => {
    catcher.respond = () => ({
      status: 202,
      body: { accepted: 1, rejected: [{ index: 1, field: 'status', reason: 'not an integer' }] },
    });
    const forwarder = createForwarder(options());
    forwarder.record(sample(1));
    forwarder.record(sample(2));
    await forwarder.flush();
    expect(forwarder.stats()).toMatchObject({ sent: 1, rejected: 1, failed: 0 });
    await forwarder.close();
  });
});

describe('forwarder retries', () => {
  it('retries a 503, not before its Retry-After, with the same ids', async () => {
    catcher.respond = (request, n) =>
      n === 1
        ? { status: 503, headers: { 'retry-after': '1' }, body: { title: 'spool full' } }
        : acceptAll(request);
    const forwarder = createForwarder(options());
    forwarder.record(sample(1));
    forwarder.record(sample(2));
    await forwarder.flush();
    const [first, second] = catcher.requests;
    expect(catcher.requests).toHaveLength(2);
    expect(second!.at - first!.at).toBeGreaterThanOrEqual(950);
    expect(second!.records).toEqual(first!.records);
    expect(forwarder.stats()).toMatchObject({ sent: 2, retries: 1, failed: 0 });
    await forwarder.close();
  });

  it('retries when the connection is dropped', async () => {
    catcher.respond = (request, n) => (n === 1 ? 'destroy' : acceptAll(request));
    const forwarder = createForwarder(options());
    forwarder.record(sample(1));
    await forwarder.flush();
    expect(catcher.requests).toHaveLength(2);
    expect(catcher.requests[1]!.records).toEqual([sample(1)]);
    expect(forwarder.stats()).toMatchObject({ sent: 1, retries: 1, failed: 0 });
    await forwarder.close();
  });

  it('retries a hung request after timeoutMs', async () => {
    catcher.respond = (request, n) => (n === 1 ? 'hang' : acceptAll(request));
    const forwarder = createForwarder(options({ timeoutMs: 200 }));
    forwarder.record(sample(1));
    await forwarder.flush();
    expect(catcher.requests).toHaveLength(2);
    expect(forwarder.stats()).toMatchObject({ sent: 1, retries: 1 });
    await forwarder.close();
  });

  it('does not retry a 400: the batch is dropped, counted as failed and reported', async () => {
    catcher.respond = () => ({
      status: 400,
      headers: { 'content-type': 'application/problem+json' },
      body: { title: 'Bad Request', detail: 'not JSON' },
    });
    const errors: IngestError[] = [];
    const forwarder = createForwarder(options({ onError: (err) => errors.push(err) }));
    forwarder.record(sample(1));
    forwarder.record(sample(2));
    await forwarder.flush();
    expect(catcher.requests).toHaveLength(1);
    expect(forwarder.stats()).toMatchObject({ sent: 0, failed: 2, retries: 0 });
    expect(errors.map((e) => [e.code, e.status, e.records])).toEqual([['bad_request', 400, 2]]);
    expect(errors[0]!.message).toContain('not JSON');
    await forwarder.close();
  });

  it('does not retry a 401', async () => {
    catcher.respond = () => ({ status: 401, body: { title: 'Unauthorized' } });
    const errors: IngestError[] = [];
    const forwarder = createForwarder(options({ onError: (err) => errors.push(err) }));
    forwarder.record(sample(1));
    await forwarder.flush();
    expect(catcher.requests).toHaveLength(1);
    expect(errors.map((e) => e.code)).toEqual(['unauthorized']);
    await forwarder.close();
  });

  it('splits a batch in half on 413 until it fits', async () => {
    catcher.respond = (request) =>
      request.records.length > 2 ? { status: 413, body: { title: 'too large' } } : acceptAll(request);
    const forwarder = createForwarder(options({ batchSize: 100 }));
    const records = Array.from({ length: 5 }, (_, i) => sample(i));
    for (const record of records) forwarder.record(record);
    await forwarder.flush();
    expect(catcher.requests.map((r) => r.records.length)).toEqual([5, 3, 2, 1, 2]);
    expect(catcher.requests.slice(2).flatMap((r) => r.records)).toEqual(records);
    expect(forwarder.stats()).toMatchObject({ sent: 5, failed: 0 });
    await forwarder.close();
  });

  it('gives up after maxRetries and counts the batch as failed', async () => {
    catcher.respond = () => ({ status: 500 });
    const errors: IngestError[] = [];
    const forwarder = createForwarder(options({ maxRetries: 2, onError: (err) => errors.push(err) }));
    forwarder.record(sample(1));
    await forwarder.flush();
    expect(catcher.requests).toHaveLength(3);
    expect(forwarder.stats()).toMatchObject({ sent: 0, failed: 1, retries: 2 });
    expect(errors.map((e) => e.code)).toEqual(['retries_exhausted']);
    await forwarder.close();
  });
});

describe('forwarder bounds and shutdown', () => {
  it('holds at most maxQueue records while the collector hangs, dropping and counting new ones', async () => {
    catcher.respond = () => 'hang';
    const errors: IngestError[] = [];
    const forwarder = createForwarder(
      options({ batchSize: 5, maxQueue: 10, onError: (err) => errors.push(err) }),
    );
    let accepted = 0;
    for (let i = 0; i < 100; i++) if (forwarder.record(sample(i))) accepted++;
    expect(accepted).toBe(10);
    expect(forwarder.stats()).toMatchObject({ queued: 10, dropped: 90 });
    expect(errors.map((e) => e.code)).toEqual(['queue_full']);
    await catcher.waitFor(() => catcher.requests.length === 1);

    const started = Date.now();
    await forwarder.close({ timeoutMs: 200 });
    expect(Date.now() - started).toBeLessThan(5000);
    expect(forwarder.stats()).toMatchObject({ queued: 0, sent: 0, dropped: 90, failed: 10 });
  });

  it('close() sends what is queued, then refuses new records', async () => {
    const forwarder = createForwarder(options({ batchSize: 100 }));
    for (let i = 0; i < 3; i++) forwarder.record(sample(i));
    expect(catcher.requests).toHaveLength(0);
    await forwarder.close();
    expect(catcher.records()).toEqual([sample(0), sample(1), sample(2)]);
    expect(forwarder.record(sample(4))).toBe(false);
    expect(forwarder.stats()).toMatchObject({ queued: 0, sent: 3, dropped: 1 });
    await forwarder.close(); // idempotent
  });

  it('rejects bad options at creation', () => {
    expect(() => createForwarder(options({ apiKey: 'short' }))).toThrow(/at least 50/);
    expect(() => createForwarder(options({ baseUrl: 'not a url' }))).toThrow(/baseUrl/);
    expect(() => createForwarder(options({ batchSize: 0 }))).toThrow(/batchSize/);
    expect(() => createForwarder(options({ headerAllowList: ['user-agent', 'Authorization'] }))).toThrow(
      /authorization/,
    );
    expect(() => createForwarder(options({ headerAllowList: ['x-api-key'] }))).toThrow(/never forwarded/);
  });

  it('never keeps the process alive: a script that does not close it exits while a retry is pending', async () => {
    catcher.respond = () => ({ status: 503, headers: { 'retry-after': '30' } });
    const script = fileURLToPath(new URL('./fixtures/exit-without-close.ts', import.meta.url));
    const started = Date.now();
    const code = await new Promise<number | null>((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', 'tsx', script, catcher.baseUrl], {
        stdio: 'inherit',
      });
      const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      child.on('error', reject);
      child.on('exit', (exitCode) => {
        clearTimeout(killer);
        resolve(exitCode);
      });
    });
    expect(code).toBe(0);
    expect(Date.now() - started).toBeLessThan(8000);
    expect(catcher.requests).toHaveLength(1);
  });
});

// Our own ingest/ middleware in a real Koa 3 app with @koa/router, forwarding to the collector's
// native endpoint: exact rows when the collector is up, and an API that does not notice when it is not.
import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import Router from '@koa/router';
import Koa from 'koa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createForwarder,
  koaMiddleware,
  type Forwarder,
  type ForwarderOptions,
  type IngestError,
} from '../../ingest/index.ts';
import { ENGINES } from '../support/clickhouse.ts';
import { startTestService, type StoredRow, type TestService } from '../support/service.ts';
import {
  closedPort,
  epochSeconds,
  hangingServer,
  listen,
  metaOf,
  waitFor,
  type Listening,
} from './support.ts';

const header = (req: IncomingMessage, name: string): string | undefined => {
  const value = req.headers[name];
  return typeof value === 'string' ? value : undefined;
};

/** Who called, as an API would work it out; the route template comes from @koa/router's ctx._matchedRoute. */
const identify: ForwarderOptions['identify'] = (req, _res, ctx) => {
  if (header(req, 'x-explode') === '1') throw new Error('identify hook bug');
  const matched = (ctx as { _matchedRoute?: unknown } | undefined)?._matchedRoute;
  return {
    company_id: header(req, 'x-company-id'),
    user_id: header(req, 'x-user-id'),
    metadata: { plan: 'pro', ...(typeof matched === 'string' ? { route_template: matched } : {}) },
  };
};

/** A small credit-score API: JSON, text, a stream, a 500 it sets, an error it throws, a 402 via ctx.throw. */
function creditApi(forwarder: Forwarder): Koa {
  const app = new Koa();
  app.silent = true; // the thrown errors below are on purpose: keep Koa from printing them
  app.use(koaMiddleware(forwarder));
  const router = new Router();
  router.get('/RetrieveCreditScore', (ctx) => {
    ctx.body = { score: 'SCORE-MARKER-742', band: 'good' };
  });
  router.post('/RetrieveCreditScore', async (ctx) => {
    let size = 0;
    for await (const chunk of ctx.req as AsyncIterable<Buffer>) size += chunk.length;
    ctx.body = { score: 'SCORE-MARKER-742', received: size };
  });
  router.get('/v1/reports/:id', (ctx) => {
    ctx.body = `report ${ctx.params.id}`;
  });
  router.get('/v1/export', (ctx) => {
    ctx.type = 'text/csv';
    ctx.body = Readable.from(['id,score\n', '1,742\n', '2,650\n']); // no Content-Length: chunked
  });
  router.get('/broken', (ctx) => {
    ctx.status = 500;
    ctx.body = { error: 'database down' };
  });
  router.get('/throws', () => {
    throw new Error('kaboom');
  });
  router.get('/pay', (ctx) => {
    ctx.throw(402, 'payment required');
  });
  app.use(router.routes()).use(router.allowedMethods());
  return app;
}

interface Answer {
  status: number;
  body: string;
  contentLength: number | undefined;
  ms: number;
}

async function call(api: Listening, path: string, init: RequestInit = {}): Promise<Answer> {
  const started = performance.now();
  // A bounded wait, so that a middleware which held answers back fails the test instead of hanging it.
  const res = await fetch(`${api.url}${path}`, { signal: AbortSignal.timeout(5_000), ...init });
  const body = await res.text();
  const length = res.headers.get('content-length');
  return {
    status: res.status,
    body,
    contentLength: length === null ? undefined : Number(length),
    ms: performance.now() - started,
  };
}

describe.each(ENGINES)('ingest/ koaMiddleware in Koa → collector on %s ClickHouse', (engine) => {
  let svc: TestService;
  let api: Listening;
  let forwarder: Forwarder;
  const errors: IngestError[] = [];

  beforeAll(async () => {
    svc = await startTestService(engine);
    forwarder = createForwarder({
      baseUrl: svc.url,
      apiKey: svc.ingestKey,
      batchSize: 100,
      flushIntervalMs: 60_000, // only the explicit flush() sends
      headerAllowList: ['x-request-id', 'content-type', 'x-api-version'],
      // Body bytes of the chunked stream exactly (the default, 'wire', also counts chunk framing).
      responseBytes: 'exact',
      identify,
      onError: (err) => errors.push(err),
    });
    api = await listen(creditApi(forwarder).callback());
  });

  afterAll(async () => {
    await api?.close();
    await forwarder?.close({ timeoutMs: 2_000 });
    await svc?.stop();
  });

  it('records every call (200s, a 500, a thrown error, a 402, a 404, a stream) as exact native rows', async () => {
    const startedAt = Date.now();
    const who = { 'x-company-id': 'co_koa', 'x-user-id': 'user_koa', 'x-api-version': '2024-06-01' };
    const postBody = JSON.stringify({ ssn: '123-45-6789', name: 'Ada Lovelace' });
    const answers = {
      r1: await call(api, '/RetrieveCreditScore?ssn=123-45-6789', {
        headers: { ...who, 'x-request-id': 'r1' },
      }),
      r2: await call(api, '/RetrieveCreditScore?debug=true', {
        method: 'POST',
        headers: {
          ...who,
          'x-request-id': 'r2',
          'content-type': 'application/json',
          authorization: 'Bearer secret',
        },
        body: postBody,
      }),
      r3: await call(api, '/v1/reports/42?format=pdf#top', { headers: { ...who, 'x-request-id': 'r3' } }),
      r4: await call(api, '/broken', { headers: { 'x-company-id': 'co_koa', 'x-request-id': 'r4' } }),
      r5: await call(api, '/throws?token=abc', {
        headers: { 'x-company-id': 'co_koa', 'x-request-id': 'r5' },
      }),
      r6: await call(api, '/pay', { headers: { 'x-company-id': 'co_koa', 'x-request-id': 'r6' } }),
      r7: await call(api, '/nowhere?x=1', { headers: { 'x-company-id': 'co_koa', 'x-request-id': 'r7' } }),
      r8: await call(api, '/v1/export', { headers: { 'x-company-id': 'co_koa', 'x-request-id': 'r8' } }),
      // identify throws: the call is still answered, and recorded without identity
      r9: await call(api, '/RetrieveCreditScore', {
        headers: { 'x-company-id': 'co_koa', 'x-request-id': 'r9', 'x-explode': '1' },
      }),
    };
    const endedAt = Date.now();

    // The API's own answers are untouched by the middleware.
    expect(Object.fromEntries(Object.entries(answers).map(([k, a]) => [k, [a.status, a.body]]))).toEqual({
      r1: [200, '{"score":"SCORE-MARKER-742","band":"good"}'],
      r2: [200, `{"score":"SCORE-MARKER-742","received":${Buffer.byteLength(postBody)}}`],
      r3: [200, 'report 42'],
      r4: [500, '{"error":"database down"}'],
      r5: [500, 'Internal Server Error'],
      r6: [402, 'payment required'],
      r7: [404, 'Not Found'],
      r8: [200, 'id,score\n1,742\n2,650\n'],
      r9: [200, '{"score":"SCORE-MARKER-742","band":"good"}'],
    });
    expect(answers.r8.contentLength).toBeUndefined();

    // Records are made on 'finish', which can trail the client's last byte a little.
    await waitFor(
      () => forwarder.stats(),
      (s) => s.queued + s.sent >= 9,
    );
    await forwarder.flush();
    expect(forwarder.stats()).toMatchObject({ sent: 9, queued: 0, rejected: 0, failed: 0, dropped: 0 });

    const rows = (await svc.rows()).filter((r) => r.source_format === 'native');
    const byRequest = Object.fromEntries(rows.map((r) => [metaOf(r)['header.x-request-id'], r]));
    expect(Object.keys(byRequest).sort()).toEqual(['r1', 'r2', 'r3', 'r4', 'r5', 'r6', 'r7', 'r8', 'r9']);
    expect(rows).toHaveLength(9);

    const host = `127.0.0.1:${api.port}`;
    const row = (
      request: keyof typeof answers,
      fields: Pick<StoredRow, 'method' | 'route' | 'status'> & Partial<StoredRow>,
    ): StoredRow => ({
      event_id: expect.stringMatching(
        /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
      ),
      app: svc.keyId,
      received_at: expect.any(Number),
      request_time: expect.any(Number),
      request_time_ms: expect.any(Number),
      customer_key: 'co_koa',
      company_id: 'co_koa',
      user_id: '',
      host,
      latency_ms: expect.any(Number),
      request_bytes: 0,
      response_bytes: answers[request].contentLength ?? -1,
      api_version: '',
      source_format: 'native',
      sample_weight: 1,
      meta_keys: ['metadata.plan', 'header.x-request-id'],
      meta_values: ['pro', request],
      ...fields,
    });
    const identified = { user_id: 'user_koa', api_version: '2024-06-01' };
    expect(byRequest).toEqual({
      r1: row('r1', {
        ...identified,
        method: 'GET',
        route: '/RetrieveCreditScore',
        status: 200,
        meta_keys: [
          'metadata.plan',
          'metadata.route_template',
          'header.x-request-id',
          'header.x-api-version',
        ],
        meta_values: ['pro', '/RetrieveCreditScore', 'r1', '2024-06-01'],
      }),
      r2: row('r2', {
        ...identified,
        method: 'POST',
        route: '/RetrieveCreditScore',
        status: 200,
        request_bytes: Buffer.byteLength(postBody),
        meta_keys: [
          'metadata.plan',
          'metadata.route_template',
          'header.x-request-id',
          'header.content-type',
          'header.x-api-version',
        ],
        meta_values: ['pro', '/RetrieveCreditScore', 'r2', 'application/json', '2024-06-01'],
      }),
      r3: row('r3', {
        ...identified,
        method: 'GET',
        route: '/v1/reports/42',
        status: 200,
        meta_keys: [
          'metadata.plan',
          'metadata.route_template',
          'header.x-request-id',
          'header.x-api-version',
        ],
        meta_values: ['pro', '/v1/reports/:id', 'r3', '2024-06-01'],
      }),
      r4: row('r4', {
        method: 'GET',
        route: '/broken',
        status: 500,
        meta_keys: ['metadata.plan', 'metadata.route_template', 'header.x-request-id'],
        meta_values: ['pro', '/broken', 'r4'],
      }),
      r5: row('r5', {
        method: 'GET',
        route: '/throws',
        status: 500,
        meta_keys: ['metadata.plan', 'metadata.route_template', 'header.x-request-id'],
        meta_values: ['pro', '/throws', 'r5'],
      }),
      r6: row('r6', {
        method: 'GET',
        route: '/pay',
        status: 402,
        meta_keys: ['metadata.plan', 'metadata.route_template', 'header.x-request-id'],
        meta_values: ['pro', '/pay', 'r6'],
      }),
      r7: row('r7', { method: 'GET', route: '/nowhere', status: 404 }),
      r8: row('r8', {
        method: 'GET',
        route: '/v1/export',
        status: 200,
        response_bytes: Buffer.byteLength('id,score\n1,742\n2,650\n'),
        meta_keys: ['metadata.plan', 'metadata.route_template', 'header.x-request-id'],
        meta_values: ['pro', '/v1/export', 'r8'],
      }),
      r9: row('r9', {
        customer_key: '',
        company_id: '',
        method: 'GET',
        route: '/RetrieveCreditScore',
        status: 200,
        meta_keys: ['header.x-request-id'],
        meta_values: ['r9'],
      }),
    });
    for (const r of rows) {
      expect(r.request_time).toBeGreaterThanOrEqual(epochSeconds(startedAt));
      expect(r.request_time).toBeLessThanOrEqual(epochSeconds(endedAt));
      expect(r.latency_ms).toBeLessThanOrEqual(endedAt - startedAt);
    }
    // Response sizes are real numbers of bytes, not zeros.
    expect(Object.values(answers).every((a) => (a.contentLength ?? 1) > 0)).toBe(true);
    const stored = JSON.stringify(rows);
    for (const secret of [
      'Bearer secret',
      '123-45-6789',
      'Ada Lovelace',
      'SCORE-MARKER',
      'token=abc',
      'debug=true',
      'kaboom',
    ]) {
      expect(stored).not.toContain(secret);
    }
    // The throwing identify hook was reported, not thrown into the API.
    expect(errors.map((e) => e.code)).toEqual(['capture_failed']);
    expect(errors[0]!.message).toContain('identify hook bug');
  });

  it('a record flushed twice (a retried batch) is still one row', async () => {
    const record = {
      id: 'koa-manual-1',
      timestamp: Date.now() - 1_000,
      company_id: 'co_koa_manual',
      method: 'get',
      path: '/RetrieveCreditScore?ssn=1',
      status: 200,
      latency_ms: 3,
    };
    expect(forwarder.record(record)).toBe(true);
    await forwarder.flush();
    expect(forwarder.record({ ...record })).toBe(true);
    await forwarder.flush();
    const rows = (await svc.rows()).filter((r) => r.company_id === 'co_koa_manual');
    expect(rows).toEqual([
      {
        event_id: 'koa-manual-1',
        app: svc.keyId,
        received_at: expect.any(Number),
        request_time: epochSeconds(record.timestamp),
        request_time_ms: record.timestamp % 1000,
        customer_key: 'co_koa_manual',
        company_id: 'co_koa_manual',
        user_id: '',
        method: 'GET',
        route: '/RetrieveCreditScore',
        host: '',
        status: 200,
        latency_ms: 3,
        request_bytes: 0,
        response_bytes: 0,
        api_version: '',
        source_format: 'native',
        sample_weight: 1,
        meta_keys: [],
        meta_values: [],
      },
    ]);
  });
});

// No ClickHouse involved: the collector is down or hangs, and the API must not notice.
describe('ingest/ koaMiddleware when the collector is unreachable', () => {
  const expectHealthyAnswers = (answers: Answer[]) => {
    for (const [i, a] of answers.entries()) {
      const expected =
        i % 3 === 2 ? [500, 'Internal Server Error'] : [200, '{"score":"SCORE-MARKER-742","band":"good"}'];
      expect([a.status, a.body]).toEqual(expected);
    }
  };
  const drive = async (api: Listening, n: number): Promise<Answer[]> => {
    const answers: Answer[] = [];
    for (let i = 0; i < n; i++)
      answers.push(
        await call(api, i % 3 === 2 ? '/throws' : '/RetrieveCreditScore', {
          headers: { 'x-company-id': 'co_down' },
        }),
      );
    return answers;
  };

  it('collector port closed: answers stay correct and fast while sends fail and back off; failures are counted, never thrown', async () => {
    const errors: IngestError[] = [];
    const forwarder = createForwarder({
      baseUrl: `http://127.0.0.1:${await closedPort()}`,
      apiKey: 'k'.repeat(64),
      batchSize: 6,
      // Backoff of 350-700 ms then 700-1400 ms: a middleware that waited for delivery would hold
      // the 6th and 12th answers for over a second.
      maxRetries: 2,
      retryBaseMs: 700,
      identify,
      onError: (err) => errors.push(err),
    });
    const api = await listen(creditApi(forwarder).callback());
    try {
      const answers = await drive(api, 12);
      expectHealthyAnswers(answers);
      expect(Math.max(...answers.map((a) => a.ms))).toBeLessThan(1_000);
      // The collector was tried and refused (and the forwarder backs off without the API noticing).
      expect(
        await waitFor(
          () => forwarder.stats().retries,
          (n) => n >= 1,
        ),
      ).toBeGreaterThanOrEqual(1);

      await waitFor(
        () => forwarder.stats(),
        (s) => s.queued + s.failed >= 12,
      );
      await forwarder.flush();
      expect(forwarder.stats()).toMatchObject({ sent: 0, queued: 0, failed: 12, dropped: 0, retries: 4 });
      expect(errors.map((e) => [e.code, e.records])).toEqual([
        ['retries_exhausted', 6],
        ['retries_exhausted', 6],
      ]);
      expect(errors[0]!.message).toMatch(/gave up after 3 attempts, last: ECONNREFUSED/);
    } finally {
      await api.close();
      await forwarder.close({ timeoutMs: 1_000 });
    }
  });

  it('collector hangs (accepts, never answers): answers are not delayed by the 5 s send timeout; close() gives up on time', async () => {
    const hanging = await hangingServer();
    const errors: IngestError[] = [];
    const forwarder = createForwarder({
      baseUrl: hanging.url,
      apiKey: 'k'.repeat(64),
      batchSize: 1, // every record is sent at once, so a send is in flight during the later calls
      timeoutMs: 5_000,
      identify,
      onError: (err) => errors.push(err),
    });
    const api = await listen(creditApi(forwarder).callback());
    try {
      const answers = await drive(api, 9);
      expectHealthyAnswers(answers);
      // A middleware that waited for the collector would take the 5 s timeout on every call.
      expect(Math.max(...answers.map((a) => a.ms))).toBeLessThan(1_000);
      await waitFor(
        () => hanging.connections(),
        (n) => n >= 1,
      );
      expect(hanging.connections()).toBeGreaterThanOrEqual(1);
      await waitFor(
        () => forwarder.stats(),
        (s) => s.queued >= 9,
      );

      const closeStarted = performance.now();
      await forwarder.close({ timeoutMs: 300 });
      const closeMs = performance.now() - closeStarted;
      expect(closeMs).toBeGreaterThanOrEqual(250);
      expect(closeMs).toBeLessThan(2_000);
      expect(forwarder.stats()).toMatchObject({ sent: 0, queued: 0, failed: 9 });
      expect(errors.map((e) => [e.code, e.records])).toEqual(Array.from({ length: 9 }, () => ['aborted', 1]));
      // Closed: further calls are answered and simply not recorded.
      expectHealthyAnswers(await drive(api, 2));
      expect(forwarder.stats()).toMatchObject({ queued: 0, failed: 9 });
    } finally {
      await api.close();
      await forwarder.close();
      await hanging.close();
    }
  });
});

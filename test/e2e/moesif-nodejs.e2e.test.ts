// The real npm `moesif-nodejs` 3.11 middleware in a real Express 5 app, pointed at the collector with
// `baseUri`: what it sends must land in ClickHouse as exactly the canonical rows.
import http, { type IncomingMessage } from 'node:http';
import express from 'express';
import moesif from 'moesif-nodejs';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENGINES } from '../support/clickhouse.ts';
import { startTestService, type StoredRow, type TestService } from '../support/service.ts';
import {
  epochSeconds,
  listen,
  metaOf,
  moesifEventId,
  requestMsOf,
  waitFor,
  waitForRows,
  type Listening,
  type MoesifCall,
} from './support.ts';

/** The transaction id the row keeps as metadata ('' without one). */
const txOf = (row: StoredRow): string => metaOf(row)['metadata.moesif.transaction_id'] ?? '';

/**
 * The documented event id of the stored call with transaction id `txId`: it hashes the call's request
 * time (taken from that row, as only the SDK knows it) with the fields the test expects.
 */
const expectedId = (rows: StoredRow[], txId: string, call: Omit<MoesifCall, 'requestMs'>): string => {
  const row = rows.find((r) => txOf(r) === txId);
  return row
    ? moesifEventId(txId, { ...call, requestMs: requestMsOf(row) })
    : `no row with transaction id ${txId}`;
};

const header = (req: object, name: string): string | undefined => {
  const value = (req as IncomingMessage).headers[name];
  return typeof value === 'string' ? value : undefined;
};

/** An Express API with the Moesif middleware first, a JSON route, a chunked text route, and Express's own 404. */
function creditScoreApi(middleware: ReturnType<typeof moesif>): express.Express {
  const app = express();
  app.use(middleware);
  app.use(express.json());
  app.post('/RetrieveCreditScore', (req, res) => {
    const body = req.body as { name?: string };
    res.json({ score: 'SCORE-MARKER-742', band: 'good', for: body.name ?? null });
  });
  // No Content-Length: the SDK sends the body it captured (base64 for text) and the size comes from that.
  app.get('/v1/things', (_req, res) => {
    res.type('text/plain');
    res.write('chunk-one ');
    res.end('chunk-two');
  });
  return app;
}

describe.each(ENGINES)('moesif-nodejs 3.11 in Express → collector on %s ClickHouse', (engine) => {
  let svc: TestService;
  let batchedApi: Listening;
  let unbatchedApi: Listening;
  let batched: ReturnType<typeof moesif>;
  const sdkErrors: unknown[] = [];
  const sdkBatches: number[] = [];
  let sdkSingles = 0;

  beforeAll(async () => {
    svc = await startTestService(engine);
    const common = {
      applicationId: svc.ingestKey,
      baseUri: svc.url,
      identifyUser: (req: object) => header(req, 'x-user-id'),
      identifyCompany: (req: object) => header(req, 'x-company-id'),
      getApiVersion: (req: object) => header(req, 'x-api-version'),
      getMetadata: (req: object) => ({ region: header(req, 'x-region') ?? 'unknown' }),
    };
    batched = moesif({
      ...common,
      batchSize: 3,
      batchMaxTime: 501, // the SDK refuses 500 ms or less
      // Called with (error, events) after every batch the collector answered.
      callback: ((err: unknown, events: unknown[]) => {
        if (err) sdkErrors.push(err);
        else sdkBatches.push(events.length);
      }) as (error: object) => unknown,
    });
    const unbatched = moesif({
      ...common,
      disableBatching: true,
      callback: ((err: unknown) => {
        if (err) sdkErrors.push(err);
        else sdkSingles++;
      }) as (error: object) => unknown,
    });
    batchedApi = await listen(creditScoreApi(batched));
    unbatchedApi = await listen(creditScoreApi(unbatched));
  });

  afterAll(async () => {
    await batchedApi?.close();
    await unbatchedApi?.close();
    await svc?.stop();
  });

  const call = async (api: Listening, path: string, init: RequestInit = {}) => {
    const res = await fetch(`${api.url}${path}`, init);
    const body = await res.text();
    return {
      status: res.status,
      body,
      txId: res.headers.get('x-moesif-transaction-id') ?? '',
      contentLength: Number(res.headers.get('content-length') ?? 'NaN'),
      contentType: res.headers.get('content-type') ?? '',
    };
  };

  const scoreRequest = (user: string | undefined, company: string | undefined, name: string) => {
    const body = JSON.stringify({ ssn: '123-45-6789', name });
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      authorization: 'Bearer secret',
      'x-api-version': '2024-06-01',
      'x-region': 'eu',
    };
    if (user) headers['x-user-id'] = user;
    if (company) headers['x-company-id'] = company;
    return { init: { method: 'POST', headers, body }, bytes: Buffer.byteLength(body) };
  };

  it('batched: every call becomes one row, its id derived from its transaction id, with customer, route, status and sizes', async () => {
    const startedAt = Date.now();
    const ada = scoreRequest('user_ada', 'co_acme', 'Ada Lovelace');
    const bob = scoreRequest('user_bob', 'co_acme', 'Bob Builder');
    const solo = scoreRequest('user_solo', undefined, 'Solo Dev');
    const r1 = await call(batchedApi, '/RetrieveCreditScore?ssn=123-45-6789', ada.init);
    const r2 = await call(batchedApi, '/RetrieveCreditScore', bob.init);
    const r3 = await call(batchedApi, '/nope?token=abc', {
      headers: { 'x-company-id': 'co_acme', authorization: 'Bearer secret' },
    });
    // The fourth event waits for batchMaxTime (the first three filled a batch).
    const r4 = await call(batchedApi, '/RetrieveCreditScore', solo.init);
    const endedAt = Date.now();

    expect([r1.status, r2.status, r3.status, r4.status]).toEqual([200, 200, 404, 200]);
    expect(JSON.parse(r1.body)).toEqual({ score: 'SCORE-MARKER-742', band: 'good', for: 'Ada Lovelace' });
    const ids = [r1.txId, r2.txId, r3.txId, r4.txId];
    for (const id of ids)
      expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(new Set(ids).size).toBe(4);

    const rows = await waitForRows(svc, (r) => ids.includes(txOf(r)), 4);
    const host = `127.0.0.1:${batchedApi.port}`;
    const base = {
      app: svc.keyId,
      received_at: expect.any(Number),
      request_time: expect.any(Number),
      request_time_ms: expect.any(Number),
      host,
      latency_ms: expect.any(Number),
      api_version: '2024-06-01',
      source_format: 'moesif',
      sample_weight: 1,
    };
    const jsonMeta = (txId: string) => ({
      meta_keys: [
        'metadata.region',
        'metadata.moesif.direction',
        'metadata.moesif.transaction_id',
        'header.content-type',
        'header.x-api-version',
        'header.accept',
        'header.user-agent',
        'response_header.content-type',
      ],
      meta_values: [
        'eu',
        'Incoming',
        txId,
        'application/json',
        '2024-06-01',
        '*/*',
        'node',
        'application/json; charset=utf-8',
      ],
    });
    const expected: StoredRow[] = [
      {
        ...base,
        event_id: expectedId(rows, r1.txId, {
          method: 'POST',
          route: '/RetrieveCreditScore',
          host,
          companyId: 'co_acme',
          userId: 'user_ada',
        }),
        customer_key: 'co_acme',
        company_id: 'co_acme',
        user_id: 'user_ada',
        method: 'POST',
        route: '/RetrieveCreditScore',
        status: 200,
        request_bytes: ada.bytes,
        response_bytes: r1.contentLength,
        ...jsonMeta(r1.txId),
      },
      {
        ...base,
        event_id: expectedId(rows, r2.txId, {
          method: 'POST',
          route: '/RetrieveCreditScore',
          host,
          companyId: 'co_acme',
          userId: 'user_bob',
        }),
        customer_key: 'co_acme',
        company_id: 'co_acme',
        user_id: 'user_bob',
        method: 'POST',
        route: '/RetrieveCreditScore',
        status: 200,
        request_bytes: bob.bytes,
        response_bytes: r2.contentLength,
        ...jsonMeta(r2.txId),
      },
      {
        ...base,
        event_id: expectedId(rows, r3.txId, {
          method: 'GET',
          route: '/nope',
          host,
          companyId: 'co_acme',
          userId: '',
        }),
        customer_key: 'co_acme',
        company_id: 'co_acme',
        user_id: '',
        method: 'GET',
        route: '/nope',
        status: 404,
        request_bytes: 0,
        response_bytes: r3.contentLength,
        api_version: '',
        meta_keys: [
          'metadata.region',
          'metadata.moesif.direction',
          'metadata.moesif.transaction_id',
          'header.accept',
          'header.user-agent',
          'response_header.content-type',
        ],
        meta_values: ['unknown', 'Incoming', r3.txId, '*/*', 'node', r3.contentType],
      },
      {
        ...base,
        event_id: expectedId(rows, r4.txId, {
          method: 'POST',
          route: '/RetrieveCreditScore',
          host,
          companyId: '',
          userId: 'user_solo',
        }),
        customer_key: 'user_solo',
        company_id: '',
        user_id: 'user_solo',
        method: 'POST',
        route: '/RetrieveCreditScore',
        status: 200,
        request_bytes: solo.bytes,
        response_bytes: r4.contentLength,
        ...jsonMeta(r4.txId),
      },
    ];
    expect([...rows].sort((a, b) => ids.indexOf(txOf(a)) - ids.indexOf(txOf(b)))).toEqual(expected);
    // The sizes are real ones, not zeros that would also match a broken content-length read.
    expect(Math.min(r1.contentLength, r2.contentLength, r3.contentLength, r4.contentLength)).toBeGreaterThan(
      20,
    );
    expect(r3.contentType).toBe('text/html; charset=utf-8');

    for (const row of rows) {
      expect(row.request_time).toBeGreaterThanOrEqual(epochSeconds(startedAt));
      expect(row.request_time).toBeLessThanOrEqual(epochSeconds(endedAt));
      expect(row.latency_ms).toBeLessThan(endedAt - startedAt + 1);
      expect(row.received_at).toBeGreaterThanOrEqual(row.request_time);
    }
    // Neither the bodies (which the SDK does send) nor the caller's credentials or query string are stored.
    const stored = JSON.stringify(rows);
    for (const secret of [
      'Bearer secret',
      'secret',
      '123-45-6789',
      'Ada Lovelace',
      'SCORE-MARKER',
      'token=abc',
      'ssn',
    ]) {
      expect(stored).not.toContain(secret);
    }
    expect(
      await waitFor(
        () => sdkBatches,
        (b) => b.length >= 2,
      ),
    ).toEqual([3, 1]);
    expect(sdkErrors).toEqual([]);
  });

  it('unbatched (disableBatching): one POST /v1/events per call; a chunked response is sized from the captured body', async () => {
    const call1 = scoreRequest('user_cy', 'co_beta', 'Cy Young');
    const r1 = await call(unbatchedApi, '/RetrieveCreditScore?debug=1', call1.init);
    const r2 = await call(unbatchedApi, '/v1/things?page=2', {
      headers: { 'x-company-id': 'co_beta', 'x-user-id': 'user_cy' },
    });
    expect([r1.status, r2.status]).toEqual([200, 200]);
    expect(r2.body).toBe('chunk-one chunk-two');
    expect(Number.isNaN(r2.contentLength)).toBe(true); // chunked: no Content-Length

    const rows = await waitForRows(svc, (r) => r.company_id === 'co_beta', 2);
    const host = `127.0.0.1:${unbatchedApi.port}`;
    const base = {
      app: svc.keyId,
      received_at: expect.any(Number),
      request_time: expect.any(Number),
      request_time_ms: expect.any(Number),
      customer_key: 'co_beta',
      company_id: 'co_beta',
      user_id: 'user_cy',
      host,
      latency_ms: expect.any(Number),
      source_format: 'moesif',
      sample_weight: 1,
    };
    const expected: StoredRow[] = [
      {
        ...base,
        event_id: expectedId(rows, r1.txId, {
          method: 'POST',
          route: '/RetrieveCreditScore',
          host,
          companyId: 'co_beta',
          userId: 'user_cy',
        }),
        method: 'POST',
        route: '/RetrieveCreditScore',
        status: 200,
        request_bytes: call1.bytes,
        response_bytes: r1.contentLength,
        api_version: '2024-06-01',
        meta_keys: [
          'metadata.region',
          'metadata.moesif.direction',
          'metadata.moesif.transaction_id',
          'header.content-type',
          'header.x-api-version',
          'header.accept',
          'header.user-agent',
          'response_header.content-type',
        ],
        meta_values: [
          'eu',
          'Incoming',
          r1.txId,
          'application/json',
          '2024-06-01',
          '*/*',
          'node',
          'application/json; charset=utf-8',
        ],
      },
      {
        ...base,
        event_id: expectedId(rows, r2.txId, {
          method: 'GET',
          route: '/v1/things',
          host,
          companyId: 'co_beta',
          userId: 'user_cy',
        }),
        method: 'GET',
        route: '/v1/things',
        status: 200,
        request_bytes: 0,
        response_bytes: Buffer.byteLength('chunk-one chunk-two'),
        api_version: '',
        meta_keys: [
          'metadata.region',
          'metadata.moesif.direction',
          'metadata.moesif.transaction_id',
          'header.accept',
          'header.user-agent',
          'response_header.content-type',
        ],
        meta_values: ['unknown', 'Incoming', r2.txId, '*/*', 'node', 'text/plain; charset=utf-8'],
      },
    ];
    expect([...rows].sort((a, b) => (txOf(a) === r1.txId ? -1 : txOf(b) === r1.txId ? 1 : 0))).toEqual(
      expected,
    );
    expect(JSON.stringify(rows)).not.toContain('chunk-');
    expect(JSON.stringify(rows)).not.toContain('Bearer secret');
    expect(
      await waitFor(
        () => sdkSingles,
        (n) => n >= 2,
      ),
    ).toBe(2);
    expect(sdkErrors).toEqual([]);
  });

  /** Returns once the clock has moved past the current millisecond. */
  const nextMillisecond = async () => {
    const now = Date.now();
    while (Date.now() <= now) await new Promise((resolve) => setTimeout(resolve, 1));
  };

  it('a caller reusing one X-Moesif-Transaction-Id ("free-ride") on every call is still billed for each call', async () => {
    const forged = (company: string): RequestInit => ({
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-company-id': company,
        'x-moesif-transaction-id': 'free-ride',
      },
      body: JSON.stringify({ name: 'Mallory' }),
    });
    const responses = [];
    for (const company of ['co_x', 'co_x', 'co_x', 'co_y']) {
      responses.push(await call(batchedApi, '/RetrieveCreditScore', forged(company)));
      // The same transaction id, customer and route in the same millisecond is what an SDK retry looks
      // like (one event by design): the caller's calls here are apart in time, as real calls are.
      await nextMillisecond();
    }
    expect(responses.map((r) => r.status)).toEqual([200, 200, 200, 200]);
    // The SDK does reuse the caller's header as the transaction id of every call.
    expect(responses.map((r) => r.txId)).toEqual(['free-ride', 'free-ride', 'free-ride', 'free-ride']);

    const rows = await waitForRows(
      svc,
      (r) => r.app === svc.keyId && ['co_x', 'co_y'].includes(r.company_id),
      4,
    );
    const host = `127.0.0.1:${batchedApi.port}`;
    const byTime = [...rows].sort((a, b) => requestMsOf(a) - requestMsOf(b));
    expect(byTime.map((r) => [r.customer_key, r.method, r.route, r.host, r.status, txOf(r)])).toEqual([
      ['co_x', 'POST', '/RetrieveCreditScore', host, 200, 'free-ride'],
      ['co_x', 'POST', '/RetrieveCreditScore', host, 200, 'free-ride'],
      ['co_x', 'POST', '/RetrieveCreditScore', host, 200, 'free-ride'],
      ['co_y', 'POST', '/RetrieveCreditScore', host, 200, 'free-ride'],
    ]);
    expect(new Set(rows.map((r) => r.event_id)).size).toBe(4);
    for (const row of rows) {
      expect(row.event_id).toBe(
        moesifEventId('free-ride', {
          requestMs: requestMsOf(row),
          method: 'POST',
          route: '/RetrieveCreditScore',
          host,
          companyId: row.company_id,
          userId: '',
        }),
      );
    }
    expect(sdkErrors).toEqual([]);
  });

  it('a Host header injection (Host: free.example/healthz?) cannot turn a billed /RetrieveCreditScore into another route', async () => {
    const body = JSON.stringify({ name: 'Mallory' });
    // fetch() sets Host itself: node:http sends the caller's own.
    const response = await new Promise<{ status: number; txId: string }>((resolve, reject) => {
      const req = http.request(
        {
          host: '127.0.0.1',
          port: unbatchedApi.port,
          method: 'POST',
          path: '/RetrieveCreditScore',
          headers: {
            host: 'free.example/healthz?',
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
            'x-company-id': 'co_host',
            'x-user-id': 'user_host',
          },
        },
        (res) => {
          res.resume();
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              txId: String(res.headers['x-moesif-transaction-id'] ?? ''),
            }),
          );
        },
      );
      req.on('error', reject);
      req.end(body);
    });
    expect(response.status).toBe(200);

    const [row, ...more] = await waitForRows(
      svc,
      (r) => r.app === svc.keyId && r.company_id === 'co_host',
      1,
    );
    expect(more).toEqual([]);
    expect(row).toMatchObject({
      customer_key: 'co_host',
      user_id: 'user_host',
      method: 'POST',
      route: '/RetrieveCreditScore',
      host: '',
      status: 200,
      source_format: 'moesif',
    });
    expect(txOf(row!)).toBe(response.txId);
    expect(row!.event_id).toBe(
      moesifEventId(response.txId, {
        requestMs: requestMsOf(row!),
        method: 'POST',
        route: '/RetrieveCreditScore',
        host: '',
        companyId: 'co_host',
        userId: 'user_host',
      }),
    );
    expect(JSON.stringify(row)).not.toMatch(/healthz|free\.example/);
    expect(sdkErrors).toEqual([]);
  });

  it('updateCompany and updateUser store profiles; the latest stripe_customer_id wins', async () => {
    await expect(
      batched.updateCompany({
        companyId: 'co_acme',
        metadata: { stripe_customer_id: 'cus_OLD000', plan: 'free' },
      }),
    ).resolves.toMatchObject({ statusCode: 201 });
    await expect(
      batched.updateCompany({
        companyId: 'co_acme',
        metadata: { stripe_customer_id: 'cus_Acme123', plan: 'gold' },
      }),
    ).resolves.toMatchObject({ statusCode: 201 });
    await expect(
      batched.updateCompany({ companyId: 'co_beta', metadata: { plan: 'trial' } }),
    ).resolves.toMatchObject({ statusCode: 201 });
    await expect(
      batched.updateUser({
        userId: 'user_ada',
        companyId: 'co_acme',
        metadata: { email: 'ada@example.com', role: 'owner' },
      }),
    ).resolves.toMatchObject({ statusCode: 201 });

    await svc.service.flush();
    const ch = svc.service.clickhouse;
    const companies = await ch.query(
      `SELECT company_id, argMax(stripe_customer_id, version) AS stripe_customer_id,
              argMax(meta_keys, version) AS meta_keys, argMax(meta_values, version) AS meta_values
       FROM ${ch.table('companies')} WHERE app = '${svc.keyId}' GROUP BY company_id ORDER BY company_id`,
      z.object({
        company_id: z.string(),
        stripe_customer_id: z.string(),
        meta_keys: z.array(z.string()),
        meta_values: z.array(z.string()),
      }),
    );
    expect(companies).toEqual([
      {
        company_id: 'co_acme',
        stripe_customer_id: 'cus_Acme123',
        meta_keys: ['metadata.stripe_customer_id', 'metadata.plan'],
        meta_values: ['cus_Acme123', 'gold'],
      },
      { company_id: 'co_beta', stripe_customer_id: '', meta_keys: ['metadata.plan'], meta_values: ['trial'] },
    ]);
    const users = await ch.query(
      `SELECT user_id, argMax(company_id, version) AS company_id, argMax(meta_keys, version) AS meta_keys,
              argMax(meta_values, version) AS meta_values
       FROM ${ch.table('users')} WHERE app = '${svc.keyId}' GROUP BY user_id ORDER BY user_id`,
      z.object({
        user_id: z.string(),
        company_id: z.string(),
        meta_keys: z.array(z.string()),
        meta_values: z.array(z.string()),
      }),
    );
    expect(users).toEqual([
      {
        user_id: 'user_ada',
        company_id: 'co_acme',
        meta_keys: ['metadata.email', 'metadata.role'],
        meta_values: ['ada@example.com', 'owner'],
      },
    ]);
  });
});

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Router from '@koa/router';
import express from 'express';
import Koa from 'koa';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createForwarder } from '../../../ingest/forwarder.ts';
import type { Forwarder, ForwarderOptions } from '../../../ingest/forwarder.ts';
import { expressMiddleware, koaMiddleware, wrapHandler } from '../../../ingest/middleware.ts';
import type { IngestError } from '../../../ingest/post-batch.ts';
import { startCatcher, TEST_KEY } from './catcher.ts';
import type { Catcher } from './catcher.ts';

let catcher: Catcher;
const cleanups: (() => Promise<unknown>)[] = [];
beforeEach(async () => {
  catcher = await startCatcher();
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  await catcher.close();
});

function options(extra: Partial<ForwarderOptions> = {}): ForwarderOptions {
  return { baseUrl: catcher.baseUrl, apiKey: TEST_KEY, flushIntervalMs: 60_000, retryBaseMs: 1, ...extra };
}

async function serve(server: http.Server): Promise<string> {
  if (!server.listening) await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function track(forwarder: Forwarder): Forwarder {
  cleanups.push(() => forwarder.close({ timeoutMs: 500 }));
  return forwarder;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const secretHeaders = {
  authorization: 'Bearer caller-secret',
  cookie: 'sid=caller-secret',
  'x-api-key': 'caller-secret',
};

describe('koaMiddleware (real Koa app)', () => {
  it('records method, path without query, status, latency, bytes, identity and safe headers only', async () => {
    const app = new Koa();
    app.silent = true;
    const middleware = koaMiddleware(
      options({
        identify: (_req, _res, ctx) => ({
          company_id: (ctx as { state: { company?: string } }).state.company,
        }),
      }),
    );
    track(middleware.forwarder);
    app.use(middleware);
    app.use(async (ctx, next) => {
      ctx.state.company = ctx.get('x-company');
      await next();
    });
    const router = new Router();
    router.get('/RetrieveCreditScore', async (ctx) => {
      await new Promise((resolve) => setTimeout(resolve, 50));
      ctx.body = { score: 712 };
    });
    router.post('/v1/accounts/:id', (ctx) => {
      ctx.status = 201;
      ctx.body = 'created';
    });
    router.get('/boom', () => {
      throw new Error('boom');
    });
    app.use(router.routes());
    const base = await serve(app.listen(0, '127.0.0.1'));

    const before = Date.now();
    const res = await fetch(`${base}/RetrieveCreditScore?api_key=caller-secret`, {
      headers: {
        ...secretHeaders,
        'user-agent': 'test-agent/1',
        'x-company': 'co_001',
        'x-api-version': '2025-06-01',
      },
    });
    expect(await res.json()).toEqual({ score: 712 });
    const posted = await fetch(`${base}/v1/accounts/acc_42`, {
      method: 'POST',
      body: 'x'.repeat(123),
      headers: { 'x-company': 'co_002' },
    });
    expect(posted.status).toBe(201);
    await posted.text();
    expect((await fetch(`${base}/boom`)).status).toBe(500);
    expect((await fetch(`${base}/missing`)).status).toBe(404);
    const after = Date.now();

    await middleware.forwarder.flush();
    const records = catcher.records();
    expect(records.map((r) => [r.method, r.path, r.status])).toEqual([
      ['GET', '/RetrieveCreditScore', 200],
      ['POST', '/v1/accounts/acc_42', 201],
      ['GET', '/boom', 500],
      ['GET', '/missing', 404],
    ]);
    const [score, account] = records;
    expect(score).toMatchObject({
      host: base.slice('http://'.length),
      company_id: 'co_001',
      api_version: '2025-06-01',
      response_bytes: Buffer.byteLength('{"score":712}'),
      headers: { 'user-agent': 'test-agent/1', 'x-api-version': '2025-06-01' },
    });
    expect(Object.keys(score!.headers as object).sort()).toEqual(['user-agent', 'x-api-version']);
    expect(score!.id).toMatch(UUID);
    expect(score!.timestamp).toBeGreaterThanOrEqual(before);
    expect(score!.timestamp).toBeLessThanOrEqual(after);
    expect(score!.latency_ms).toBeGreaterThanOrEqual(45);
    expect(JSON.stringify(records)).not.toContain('caller-secret');
    expect(account).toMatchObject({ company_id: 'co_002', request_bytes: 123, response_bytes: 7 });
  });

  it('accepts an existing forwarder', async () => {
    const forwarder = track(createForwarder(options()));
    const app = new Koa();
    const middleware = koaMiddleware(forwarder);
    expect(middleware.forwarder).toBe(forwarder);
    app.use(middleware);
    app.use(middleware); // registered twice by mistake: still one record per request
    app.use((ctx) => {
      ctx.body = 'ok';
    });
    const base = await serve(app.listen(0, '127.0.0.1'));
    await (await fetch(`${base}/ping`)).text();
    await forwarder.flush();
    expect(catcher.records()).toMatchObject([
      { method: 'GET', path: '/ping', status: 200, response_bytes: 2 },
    ]);
  });
});

describe('expressMiddleware (real Express app)', () => {
  it('records full paths under mounted routers, chunked bytes, identity, and skips', async () => {
    const app = express();
    const middleware = expressMiddleware(
      options({
        identify: (req) => ({
          user_id: (req as { user?: { id: string } }).user?.id,
          metadata: { plan: 'growth' },
        }),
        skip: (req) => req.url === '/health',
      }),
    );
    track(middleware.forwarder);
    app.use(middleware);
    app.use((req, _res, next) => {
      (req as { user?: { id: string } }).user = { id: 'usr_0001' };
      next();
    });
    app.get('/RetrieveCreditScore', (_req, res) => {
      res.json({ score: 712 });
    });
    app.get('/health', (_req, res) => {
      res.send('ok');
    });
    const router = express.Router();
    router.get('/accounts/:id', (_req, res) => {
      res.write('ab');
      res.end(Buffer.from('cdé'));
    });
    app.use('/v1', router);
    const base = await serve(http.createServer(app));

    await (await fetch(`${base}/RetrieveCreditScore?x=1`, { headers: secretHeaders })).json();
    await (await fetch(`${base}/health`)).text();
    expect(await (await fetch(`${base}/v1/accounts/acc_7`)).text()).toBe('abcdé');
    await middleware.forwarder.flush();

    const records = catcher.records();
    expect(records.map((r) => [r.method, r.path, r.status])).toEqual([
      ['GET', '/RetrieveCreditScore', 200],
      ['GET', '/v1/accounts/acc_7', 200],
    ]);
    expect(records[0]).toMatchObject({
      user_id: 'usr_0001',
      metadata: { plan: 'growth' },
      response_bytes: 13,
    });
    // No Content-Length: body bytes as the connection wrote them, chunked framing included
    // ("2\r\nab\r\n" + "4\r\ncdé\r\n" + "0\r\n\r\n").
    expect(records[1]).toMatchObject({ response_bytes: 7 + 9 + 5 });
    expect(JSON.stringify(records)).not.toContain('caller-secret');
  });
});

describe('wrapHandler (node:http)', () => {
  it('takes Content-Length when the handler sets it', async () => {
    const handler = wrapHandler(
      (_req, res) => {
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '5' });
        res.end('hello');
      },
      options({ responseBytes: 'content-length' }),
    );
    track(handler.forwarder);
    const base = await serve(http.createServer(handler));
    await (await fetch(`${base}/a`)).text();
    await (await fetch(`${base}/b`, { method: 'POST', body: 'xyz' })).text();
    await handler.forwarder.flush();
    expect(catcher.records()).toMatchObject([
      { path: '/a', response_bytes: 5 },
      { path: '/b', response_bytes: 5, request_bytes: 3 },
    ]);
  });

  it("counts exact body bytes of chunked responses with responseBytes: 'exact'", async () => {
    const handler = wrapHandler(
      (_req, res) => {
        res.writeHead(200, { 'content-type': 'text/csv' });
        res.write('id,score\n');
        res.write(Buffer.from('1,742\n'));
        res.end('2,650é\n', 'utf8');
      },
      options({ responseBytes: 'exact' }),
    );
    track(handler.forwarder);
    const base = await serve(http.createServer(handler));
    expect(await (await fetch(`${base}/v1/export`)).text()).toBe('id,score\n1,742\n2,650é\n');
    await (await fetch(`${base}/v1/export`)).text();
    await handler.forwarder.flush();
    const body = Buffer.byteLength('id,score\n1,742\n2,650é\n');
    expect(catcher.records()).toMatchObject([{ response_bytes: body }, { response_bytes: body }]);
  });

  it('records a plain handler', async () => {
    const handler = wrapHandler((_req, res) => {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('nope');
    }, options());
    track(handler.forwarder);
    const base = await serve(http.createServer(handler));
    await (await fetch(`${base}/v1/accounts/acc_1`, { method: 'DELETE' })).text();
    await handler.forwarder.flush();
    // writeHead without Content-Length makes the response chunked: "4\r\nnope\r\n" + "0\r\n\r\n".
    expect(catcher.records()).toMatchObject([
      { method: 'DELETE', path: '/v1/accounts/acc_1', status: 404, response_bytes: 14 },
    ]);
  });

  it('does not delay the API response while the collector never answers', async () => {
    catcher.respond = () => 'hang';
    const handler = wrapHandler(
      (_req, res) => {
        res.setHeader('content-type', 'application/json');
        res.end('{"score":712}');
      },
      options({ batchSize: 1, timeoutMs: 60_000, onError: () => {} }),
    );
    track(handler.forwarder);
    const base = await serve(http.createServer(handler));
    const times: number[] = [];
    for (let i = 0; i < 20; i++) {
      const started = performance.now();
      const res = await fetch(`${base}/RetrieveCreditScore`);
      expect(await res.json()).toEqual({ score: 712 });
      times.push(performance.now() - started);
    }
    await catcher.waitFor(() => catcher.requests.length >= 1);
    expect(handler.forwarder.stats()).toMatchObject({ sent: 0, queued: 20 });
    // Loopback answers take ~1-5 ms (more on a busy machine); one waiting on the collector would take
    // timeoutMs (60 s) or forever.
    expect(Math.max(...times)).toBeLessThan(2000);
  });

  it('keeps answering when hooks and onError throw', async () => {
    const errors: IngestError[] = [];
    const handler = wrapHandler(
      (_req, res) => {
        res.end('ok');
      },
      options({
        identify: () => {
          throw new Error('identify broke');
        },
        skip: () => {
          throw new Error('skip broke');
        },
        onError: (err) => {
          errors.push(err);
          throw new Error('onError broke too');
        },
      }),
    );
    track(handler.forwarder);
    const base = await serve(http.createServer(handler));
    expect(await (await fetch(`${base}/x`)).text()).toBe('ok');
    await handler.forwarder.flush();
    expect(catcher.records()).toMatchObject([{ path: '/x', status: 200 }]);
    expect(catcher.records()[0]).not.toHaveProperty('company_id');
    expect(errors.map((e) => e.code)).toEqual(['capture_failed', 'capture_failed']);
  });
});

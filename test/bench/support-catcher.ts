/**
 * A fast stand-in for both collectors the middleware bench talks to, on 127.0.0.1 (random port):
 * - ours:   POST /v1/logs           → 202 {accepted, rejected: []}
 * - Moesif: GET /v1/config          → {"sample_rate":100} with x-moesif-config-etag
 *           GET /v1/rules           → []
 *           POST /v1/events/batch   → 201 (and /v1/events → 201)
 * Bodies are kept raw while the load runs and decoded only by count(), off the clock.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';

interface Caught {
  path: string;
  gzip: boolean;
  body: Buffer;
}

export interface BenchCatcher {
  port: number;
  /** Events received per endpoint since the last reset. */
  count(): { ours: number; moesif: number };
  reset(): void;
  close(): Promise<void>;
}

const ETAG = 'bench-etag-1';

export async function startBenchCatcher(): Promise<BenchCatcher> {
  let caught: Caught[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const path = (req.url ?? '/').split('?')[0]!;
      if (req.method === 'GET' && path === '/v1/config') {
        res.writeHead(200, { 'content-type': 'application/json', 'x-moesif-config-etag': ETAG });
        res.end('{"sample_rate":100}');
        return;
      }
      if (req.method === 'GET' && path === '/v1/rules') {
        res.writeHead(200, { 'content-type': 'application/json', 'x-moesif-config-etag': ETAG });
        res.end('[]');
        return;
      }
      const body = Buffer.concat(chunks);
      caught.push({ path, gzip: req.headers['content-encoding'] === 'gzip', body });
      if (path === '/v1/logs') {
        // The count is filled in by count(); the forwarder only needs a 2xx here.
        res.writeHead(202, { 'content-type': 'application/json' });
        res.end('{"rejected":[]}');
        return;
      }
      res.writeHead(201, { 'content-type': 'application/json', 'x-moesif-config-etag': ETAG });
      res.end('{}');
    });
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    count() {
      const totals = { ours: 0, moesif: 0 };
      for (const request of caught) {
        const text = (request.gzip ? gunzipSync(request.body) : request.body).toString('utf8');
        let events: unknown;
        try {
          events = JSON.parse(text);
        } catch {
          continue;
        }
        const n = Array.isArray(events) ? events.length : 1;
        if (request.path === '/v1/logs') totals.ours += n;
        else if (request.path.startsWith('/v1/events')) totals.moesif += n;
      }
      return totals;
    },
    reset() {
      caught = [];
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

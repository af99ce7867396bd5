/**
 * A local stand-in for the collector: a node:http server on 127.0.0.1 (random port) that records every
 * request (body gunzipped and parsed) and answers what the test tells it to, including never answering
 * ('hang') or dropping the connection ('destroy').
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';

export interface CaughtRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  /** Raw body as received. */
  raw: Buffer;
  /** Body after Content-Encoding was undone. */
  body: Buffer;
  records: Record<string, unknown>[];
  at: number;
}

export type Answer =
  { status: number; headers?: Record<string, string>; body?: unknown } | 'hang' | 'destroy';

export interface Catcher {
  baseUrl: string;
  requests: CaughtRequest[];
  /** All records of all answered-or-not requests, in arrival order. */
  records(): Record<string, unknown>[];
  /** How the next requests are answered; `n` counts from 1. Default: 202 accepting everything. */
  respond: (request: CaughtRequest, n: number) => Answer;
  waitFor(predicate: () => boolean, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export function acceptAll(request: CaughtRequest): Answer {
  return { status: 202, body: { accepted: request.records.length, rejected: [] } };
}

export async function startCatcher(): Promise<Catcher> {
  const requests: CaughtRequest[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const body = req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw;
      let records: Record<string, unknown>[] = [];
      try {
        const parsed: unknown = JSON.parse(body.toString('utf8'));
        if (Array.isArray(parsed)) records = parsed as Record<string, unknown>[];
      } catch {
        // not JSON; the test looks at body
      }
      const caught: CaughtRequest = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        raw,
        body,
        records,
        at: Date.now(),
      };
      requests.push(caught);
      const answer = catcher.respond(caught, requests.length);
      if (answer === 'hang') return;
      if (answer === 'destroy') {
        req.socket.destroy();
        return;
      }
      const payload = answer.body === undefined ? '' : JSON.stringify(answer.body);
      res.writeHead(answer.status, { 'content-type': 'application/json', ...answer.headers });
      res.end(payload);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const catcher: Catcher = {
    baseUrl: `http://127.0.0.1:${port}`,
    requests,
    records: () => requests.flatMap((r) => r.records),
    respond: acceptAll,
    async waitFor(predicate, timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      while (!predicate()) {
        if (Date.now() > deadline) throw new Error('catcher: condition not met in time');
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return catcher;
}

export const TEST_KEY = 'k'.repeat(60);

// Helpers shared by the end-to-end tests: real HTTP servers on 127.0.0.1:0 and waiting for rows
// that a client sends on its own schedule.
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import type { StoredRow, TestService } from '../support/service.ts';

export interface Listening {
  url: string;
  port: number;
  close(): Promise<void>;
}

/** Serves `handler` on 127.0.0.1 on a free port. close() also drops keep-alive connections. */
export async function listen(handler: http.RequestListener): Promise<Listening> {
  const server = http.createServer(handler);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** A port nothing listens on: bound once by us, then released. */
export async function closedPort(): Promise<number> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * A TCP server that accepts connections and reads but never answers: a collector that hangs.
 * close() destroys the sockets it holds.
 */
export async function hangingServer(): Promise<{
  url: string;
  connections(): number;
  close(): Promise<void>;
}> {
  const sockets = new Set<net.Socket>();
  let accepted = 0;
  const server = net.createServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    socket.resume();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    connections: () => accepted,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/**
 * Polls `read` until `done` holds or the deadline passes, then returns the last value read (the
 * caller's assertions say what was wrong). Never a fixed sleep: returns as soon as the data is there.
 */
export async function waitFor<T>(
  read: () => Promise<T> | T,
  done: (value: T) => boolean,
  { timeoutMs = 10_000, intervalMs = 50 } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value) || Date.now() >= deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** The service's rows that `keep` selects, once there are at least `count` of them (or the deadline passed). */
export function waitForRows(
  svc: TestService,
  keep: (row: StoredRow) => boolean,
  count: number,
  options?: { timeoutMs?: number },
): Promise<StoredRow[]> {
  return waitFor(
    async () => (await svc.rows()).filter(keep),
    (rows) => rows.length >= count,
    options,
  );
}

/** Epoch seconds of `ms`, as request_time is stored. */
export const epochSeconds = (ms: number): number => Math.floor(ms / 1000);

/** The row's metadata as an object (later keys win), for readable assertions on one key. */
export function metaOf(row: StoredRow): Record<string, string> {
  return Object.fromEntries(row.meta_keys.map((key, i) => [key, row.meta_values[i] ?? '']));
}

export { moesifEventId, type MoesifCall } from '../support/moesif-event-id.ts';

/** The request time of a stored row in epoch milliseconds. */
export const requestMsOf = (row: StoredRow): number => row.request_time * 1000 + row.request_time_ms;

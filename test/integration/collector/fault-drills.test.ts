// Fault drills: the durability contract under a ClickHouse outage and under SIGKILL.
// Both run on the ClickHouse server (the one engine that can be stopped from outside).
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { loadConfig } from '../../../src/config.ts';
import { connectClickHouse, type ClickHouse } from '../../../src/storage/clickhouse/clickhouse.ts';
import { migrate } from '../../../src/storage/clickhouse/migrations.ts';
import { managedServer } from '../../support/clickhouse.ts';
import { BIN, runCli } from '../../support/cli.ts';
import { startTestService, testEnv, TEST_ADMIN_KEY } from '../../support/service.ts';

interface LoadResult {
  acked: Set<string>;
  sent: Set<string>;
  statuses: Map<number, number>;
  networkErrors: number;
}

/**
 * Sends batches of unique native events from `clients` concurrent senders until `until()` says stop.
 * An event counts as acknowledged only when its batch got a 2xx.
 */
async function steadyIngest(
  target: () => { url: string; key: string },
  clients: number,
  until: () => boolean,
  tag: string,
): Promise<LoadResult> {
  const result: LoadResult = { acked: new Set(), sent: new Set(), statuses: new Map(), networkErrors: 0 };
  let seq = 0;
  const sender = async (client: number) => {
    while (!until()) {
      const ids = Array.from({ length: 20 }, () => `${tag}-${client}-${seq++}`);
      const body = ids.map((id) => ({
        id,
        timestamp: new Date().toISOString(),
        company_id: `co_${client}`,
        method: 'GET',
        path: '/RetrieveCreditScore',
        status: 200,
      }));
      for (const id of ids) result.sent.add(id);
      const { url, key } = target();
      try {
        const res = await fetch(`${url}/v1/logs`, {
          method: 'POST',
          headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(10_000),
        });
        await res.arrayBuffer();
        result.statuses.set(res.status, (result.statuses.get(res.status) ?? 0) + 1);
        if (res.status >= 200 && res.status < 300) for (const id of ids) result.acked.add(id);
      } catch {
        result.networkErrors += 1;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  };
  await Promise.all(Array.from({ length: clients }, (_, i) => sender(i)));
  return result;
}

/** Each stored event id with its number of physical rows, after the merge ReplacingMergeTree promises. */
/**
 * Copies per event id as the table defines them: ReplacingMergeTree collapses rows with the same
 * sorting key, and FINAL applies that at read time. (OPTIMIZE … FINAL was used before, but 18.16
 * returns from it without merging while a background merge runs, and a replayed segment then showed
 * up as 2 copies in about one run in four.) A replay that changed any key column would still count 2.
 */
async function storedCounts(ch: ClickHouse): Promise<Map<string, number>> {
  const rows = await ch.query(
    `SELECT event_id, count() AS n FROM ${ch.table('request_logs')} FINAL GROUP BY event_id`,
    z.object({ event_id: z.string(), n: z.coerce.number() }),
  );
  return new Map(rows.map((r) => [r.event_id, r.n]));
}

function expectExactlyOnce(load: LoadResult, stored: Map<string, number>) {
  const missing = [...load.acked].filter((id) => !stored.has(id));
  expect(missing, 'acknowledged events missing from ClickHouse').toEqual([]);
  const doubled = [...stored].filter(([, n]) => n !== 1);
  expect(doubled, 'events stored more than once').toEqual([]);
  const unknown = [...stored.keys()].filter((id) => !load.sent.has(id));
  expect(unknown, 'rows nobody sent').toEqual([]);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('fault drill: ClickHouse stops during a steady ingest', () => {
  const server = managedServer();
  afterAll(async () => {
    await server.start();
  });

  it('answers no 5xx while the spool has room, and afterwards holds every acknowledged event exactly once', async () => {
    const svc = await startTestService('server');
    try {
      let phase: 'before' | 'outage' | 'after' | 'done' = 'before';
      const loadDone = steadyIngest(
        () => ({ url: svc.url, key: svc.ingestKey }),
        4,
        () => phase === 'done',
        'outage',
      );
      await sleep(1000);
      await server.stop();
      phase = 'outage';
      const ready = await (await fetch(`${svc.url}/readyz`)).json();
      await sleep(2000);
      const spooledDuringOutage = (await (await fetch(`${svc.url}/readyz`)).json()) as {
        spool: { bytes: number };
      };
      await server.start();
      phase = 'after';
      await sleep(1000);
      phase = 'done';
      const load = await loadDone;

      expect(ready).toMatchObject({ status: 'ready', spool: { has_room: true } });
      expect(spooledDuringOutage.spool.bytes).toBeGreaterThan(0);
      expect(load.networkErrors).toBe(0);
      expect([...load.statuses.keys()]).toEqual([202]);
      expect(load.acked.size).toBeGreaterThan(500);

      await waitFor(
        async () => {
          await svc.service.flush();
          return true;
        },
        60_000,
        'the spool to drain into ClickHouse',
      );
      expectExactlyOnce(load, await storedCounts(svc.service.clickhouse));
    } finally {
      await svc.stop();
    }
  });

  it('answers 503 with Retry-After once the spool is full, and keeps what it acknowledged', async () => {
    const svc = await startTestService('server', { SPOOL_MAX_BYTES: '64kb' });
    try {
      await server.stop();
      let full: Response | undefined;
      const acked: string[] = [];
      for (let i = 0; i < 2000 && !full; i++) {
        const res = await fetch(`${svc.url}/v1/logs`, {
          method: 'POST',
          headers: { authorization: `Bearer ${svc.ingestKey}`, 'content-type': 'application/json' },
          body: JSON.stringify([
            {
              id: `full-${i}`,
              timestamp: new Date().toISOString(),
              company_id: 'co_full',
              method: 'GET',
              path: '/x',
              status: 200,
            },
          ]),
        });
        if (res.status === 202) acked.push(`full-${i}`);
        else full = res;
      }
      expect(full?.status).toBe(503);
      expect(full?.headers.get('retry-after')).toMatch(/^\d+$/);
      expect(full?.headers.get('content-type')).toContain('application/problem+json');
      expect((await fetch(`${svc.url}/readyz`)).status).toBe(503);
      await server.start();
      await waitFor(
        async () => {
          await svc.service.flush();
          return true;
        },
        60_000,
        'the spool to drain',
      );
      const ids = (await svc.rows()).map((r) => r.event_id).sort();
      expect(ids).toEqual(acked.sort());
      expect((await fetch(`${svc.url}/readyz`)).status).toBe(200);
    } finally {
      await svc.stop();
    }
  });
});

async function freePort(): Promise<number> {
  const srv = createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

describe('fault drill: the service is SIGKILLed mid-ingest', () => {
  const children: ChildProcess[] = [];
  const dataDirs: string[] = [];
  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL');
    await Promise.all(dataDirs.map((d) => rm(d, { recursive: true, force: true })));
  });

  it('holds every acknowledged event exactly once after a restart', async () => {
    const port = await freePort();
    const env = await testEnv('server', { PORT: String(port), FLUSH_INTERVAL_MS: '100' });
    dataDirs.push(env.DATA_DIR!);
    const created = await runCli(['keys', 'create', '--name', 'drill'], env);
    expect(created.code, created.stderr).toBe(0);
    const key = created.stdout.trim().split('\n').at(-1)!;
    expect(key).toMatch(/^bmk_\w+$/);
    const url = `http://127.0.0.1:${port}`;

    const start = async () => {
      const child = spawn(process.execPath, [BIN, 'serve'], {
        env: { ...process.env, ...env },
        stdio: 'ignore',
      });
      children.push(child);
      await waitFor(async () => (await fetch(`${url}/readyz`)).ok, 30_000, 'the service to be ready');
      return child;
    };

    let done = false;
    let child = await start();
    const loadDone = steadyIngest(
      () => ({ url, key }),
      4,
      () => done,
      'kill',
    );
    for (let round = 0; round < 3; round++) {
      await sleep(700 + round * 150);
      child.kill('SIGKILL');
      await once(child, 'exit');
      child = await start();
    }
    await sleep(500);
    done = true;
    const load = await loadDone;
    expect(load.acked.size).toBeGreaterThan(300);

    // Let the last incarnation ship its spool, then stop it cleanly.
    const config = loadConfig(env);
    const ch = await connectClickHouse(config.clickhouse);
    try {
      await migrate(ch);
      await waitFor(
        async () => {
          const res = await fetch(`${url}/v1/admin/flush`, {
            method: 'POST',
            headers: { authorization: `Bearer ${TEST_ADMIN_KEY}` },
          });
          return res.status === 204;
        },
        30_000,
        'the spool to drain',
      );
      child.kill('SIGTERM');
      await once(child, 'exit');
      expectExactlyOnce(load, await storedCounts(ch));
    } finally {
      await ch.command(`DROP DATABASE IF EXISTS ${ch.database}`).catch(() => undefined);
      await ch.close();
    }
  });

  it('drains the spool into ClickHouse on SIGTERM: acknowledged events are there without a restart', async () => {
    const port = await freePort();
    // A long flush interval: whatever reaches ClickHouse here is shipped by the shutdown itself.
    const env = await testEnv('server', { PORT: String(port), FLUSH_INTERVAL_MS: '60000' });
    dataDirs.push(env.DATA_DIR!);
    const key = (await runCli(['keys', 'create', '--name', 'sigterm'], env)).stdout
      .trim()
      .split('\n')
      .at(-1)!;
    const url = `http://127.0.0.1:${port}`;
    const child = spawn(process.execPath, [BIN, 'serve'], {
      env: { ...process.env, ...env },
      stdio: 'ignore',
    });
    children.push(child);
    await waitFor(async () => (await fetch(`${url}/readyz`)).ok, 30_000, 'the service to be ready');
    let stop = false;
    const load = steadyIngest(
      () => ({ url, key }),
      2,
      () => stop,
      'term',
    );
    await sleep(800);
    stop = true;
    const result = await load;
    child.kill('SIGTERM');
    const [code] = (await once(child, 'exit')) as [number];
    expect(code).toBe(0);
    expect(result.acked.size).toBeGreaterThan(100);

    const ch = await connectClickHouse(loadConfig(env).clickhouse);
    try {
      expectExactlyOnce(result, await storedCounts(ch));
    } finally {
      await ch.command(`DROP DATABASE IF EXISTS ${ch.database}`).catch(() => undefined);
      await ch.close();
    }
  });
});

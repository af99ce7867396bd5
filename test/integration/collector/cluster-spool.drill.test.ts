// Drill: a replica of the service on the cluster dies (SIGKILL) with acknowledged events in its spool
// while its ClickHouse server is down; when it comes back with the same DATA_DIR it replays them, and the
// cluster holds every acknowledged event once. (A replica that never comes back: README, "Scaling out".)
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { z } from 'zod';
import { connectClickHouse } from '../../../src/storage/clickhouse/clickhouse.ts';
import { freePorts } from '../../support/clickhouse-server.ts';
import { TEST_ADMIN_KEY } from '../../support/service.ts';
import { startServeReplica } from '../../support/serve-replica.ts';
import { startTestCluster, type TestCluster } from '../../support/test-cluster.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const DATABASE = 'drill_spool';

describe('drill: a replica dies with a full spool and comes back (cluster)', () => {
  let cluster: TestCluster;
  const children: ChildProcess[] = [];
  beforeAll(async () => {
    cluster = await startTestCluster();
  }, 120_000);
  afterAll(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await cluster?.stop();
  });

  it('replays its spool on return: every acknowledged event once', async () => {
    const [port] = await freePorts(1);
    const dataDir = await mkdtemp(join(inject('runDir'), 'replica-'));
    const url = `http://127.0.0.1:${port}`;
    const start = async () => {
      const { child } = await startServeReplica(
        { ...cluster.env(2), CLICKHOUSE_DATABASE: DATABASE },
        { port, dataDir, ready: '/healthz' },
      );
      children.push(child);
      return child;
    };
    const child = await start();
    const keyRes = await fetch(`${url}/v1/admin/keys`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TEST_ADMIN_KEY}`, 'content-type': 'application/json' },
      body: '{"name":"drill"}',
    });
    const { key } = (await keyRes.json()) as { key: string };
    const server = cluster.members[2]!.server;
    await server.stop();
    const acknowledged: string[] = [];
    for (let b = 0; b < 5; b++) {
      const batch = Array.from({ length: 100 }, (_, i) => ({
        id: `spool-${b}-${i}`,
        timestamp: Date.now() - 60_000,
        company_id: `co_${i % 9}`,
        method: 'GET',
        path: '/x',
        status: 200,
      }));
      const res = await fetch(`${url}/v1/logs`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify(batch),
      });
      expect(res.status).toBe(202);
      acknowledged.push(...batch.map((e) => e.id));
    }
    child.kill('SIGKILL');
    await once(child, 'exit');
    await server.start();
    await start();
    const ch = await connectClickHouse({
      kind: 'server',
      url: cluster.members[0]!.server.url,
      username: 'default',
      password: '',
      database: DATABASE,
      cluster: cluster.name,
    });
    try {
      const stored = async () =>
        ch.query(
          `SELECT event_id, count() AS n FROM ${ch.table('request_logs')} WHERE event_id LIKE 'spool-%' GROUP BY event_id`,
          z.object({ event_id: z.string(), n: z.coerce.number() }),
        );
      const deadline = Date.now() + 60_000;
      while ((await stored()).length < acknowledged.length && Date.now() < deadline) await sleep(200);
      const rows = await stored();
      expect(rows.map((r) => r.event_id).sort()).toEqual([...acknowledged].sort());
      expect(rows.every((r) => r.n === 1)).toBe(true);
    } finally {
      await ch.close();
    }
  });
});

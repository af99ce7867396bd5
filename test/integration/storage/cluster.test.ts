import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { connectClickHouse, type ClickHouse } from '../../../src/storage/clickhouse/clickhouse.ts';
import { MIGRATIONS, migrate } from '../../../src/storage/clickhouse/migrations.ts';
import { startTestCluster, type TestCluster } from '../../support/test-cluster.ts';
import { startTestService, type TestService } from '../../support/service.ts';

// Cluster mode on Debian's ClickHouse 18.16: three servers (shard 1 with two replicas, shard 2 with one)
// and a ZooKeeper, started for this file. The migrations run ON CLUSTER; two service replicas ingest
// through different servers of it; the meters evaluated there give what one server gives for the same
// logs, to the event, copies included.
const now = new Date('2028-02-29T23:30:00Z');
const hour = Date.parse('2028-02-29T22:00:00Z');

/** 600 calls of 40 companies, every tenth sent twice (a retried batch) and every 25th a failed call. */
function events(from: number, to: number) {
  const out = [];
  for (let i = from; i < to; i++)
    out.push({
      id: `ev-${i}`,
      timestamp: hour + i * 1000,
      company_id: `co_${i % 40}`,
      user_id: `u${i % 13}`,
      method: 'POST',
      path: '/RetrieveCreditScore',
      status: i % 25 === 0 ? 500 : 200,
    });
  return out;
}

async function post(svc: TestService, key: string, body: unknown): Promise<void> {
  const res = await fetch(`${svc.url}/v1/logs`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  expect(res.status).toBe(202);
}

async function usageOf(svc: TestService): Promise<Record<string, string>> {
  const evaluated = await fetch(`${svc.url}/v1/admin/meters/evaluate`, {
    method: 'POST',
    headers: { authorization: `Bearer ${svc.adminKey}`, 'content-type': 'application/json' },
    body: '{}',
  });
  expect(evaluated.status).toBe(200);
  const from = new Date(hour - 3_600_000).toISOString();
  const to = new Date(hour + 3_600_000).toISOString();
  const out: Record<string, string> = {};
  for (const meter of ['retrieve-credit-score', 'monthly-active-users', 'response-bytes']) {
    const res = await fetch(
      `${svc.url}/v1/usage?meter=${meter}&from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}&window=month`,
      { headers: { authorization: `Bearer ${svc.adminKey}` } },
    );
    expect(res.status).toBe(200);
    for (const u of ((await res.json()) as { usage: { customer: string; value: string }[] }).usage)
      out[`${meter}/${u.customer}`] = u.value;
  }
  return out;
}

describe('ClickHouse cluster (2 shards, one with 2 replicas, 18.16)', () => {
  let cluster: TestCluster;
  const clients: ClickHouse[] = [];
  const open = async (member: number, database: string) => {
    const ch = await connectClickHouse({
      kind: 'server',
      url: cluster.members[member]!.server.url,
      username: 'default',
      password: '',
      database,
      cluster: cluster.name,
    });
    clients.push(ch);
    return ch;
  };

  beforeAll(async () => {
    cluster = await startTestCluster();
  });
  afterAll(async () => {
    for (const ch of clients) await ch.close();
    await cluster?.stop();
  });

  it('migrates ON CLUSTER: Replicated tables on every server, Distributed over them, once', async () => {
    const first = await open(0, 'cluster_migrate');
    const last = await open(2, 'cluster_migrate');
    const both = await Promise.all([migrate(first), migrate(last)]);
    // Two replicas booting at once: between them every migration applied, none failed.
    expect([...new Set(both.flat())].sort()).toEqual(MIGRATIONS.map((m) => m.version));
    expect(await migrate(last)).toEqual([]);
    for (const member of cluster.members) {
      const ch = await open(cluster.members.indexOf(member), 'cluster_migrate');
      const tables = await ch.query(
        `SELECT name, engine, engine_full FROM system.tables WHERE database = 'cluster_migrate'`,
        z.object({ name: z.string(), engine: z.string(), engine_full: z.string() }),
      );
      const engines = Object.fromEntries(tables.map((t) => [t.name, t.engine]));
      expect(engines).toMatchObject({
        request_logs: 'Distributed',
        request_logs_local: 'ReplicatedReplacingMergeTree',
        sync_ledger: 'Distributed',
        sync_ledger_local: 'ReplicatedMergeTree',
        request_logs_counted: 'View',
      });
      expect(tables.find((t) => t.name === 'request_logs')!.engine_full).toContain(
        'cityHash64(app, event_id)',
      );
    }
  });

  it('two service replicas on different servers ingest into it, and its meters equal one server’s', async () => {
    const database = 'cluster_ingest';
    const a = await startTestService(
      'server',
      { ...cluster.env(0), CLICKHOUSE_DATABASE: database },
      { now: () => now },
    );
    const b = await startTestService(
      'server',
      { ...cluster.env(2), CLICKHOUSE_DATABASE: database },
      { now: () => now },
    );
    const single = await startTestService('server', {}, { now: () => now });
    try {
      // Replica b accepts the key replica a made: keys are read from ClickHouse by every replica.
      await post(a, a.ingestKey, events(0, 300));
      await post(b, a.ingestKey, events(300, 600));
      // Retried batches, through the other replica: the copies land on the shard of their event.
      await post(
        b,
        a.ingestKey,
        events(0, 600).filter((_, i) => i % 10 === 0),
      );
      await post(single, single.ingestKey, events(0, 600));
      await post(
        single,
        single.ingestKey,
        events(0, 600).filter((_, i) => i % 10 === 0),
      );
      await Promise.all([a.service.flush(), b.service.flush(), single.service.flush()]);

      const perShard = await Promise.all(
        cluster.members.map(async (_, i) => {
          const ch = await open(i, database);
          const [row] = await ch.query(
            `SELECT count() AS n FROM ${database}.request_logs_local`,
            z.object({ n: z.coerce.number() }),
          );
          return row!.n;
        }),
      );
      // Both shards hold rows; the replicas of shard 1 hold the same ones (once replicated).
      expect(perShard[0]).toBeGreaterThan(0);
      expect(perShard[2]).toBeGreaterThan(0);
      expect((await a.rows()).length).toBe(600);

      const clustered = await usageOf(a);
      expect(clustered['retrieve-credit-score/co_1']).toBe('15');
      expect(clustered).toEqual(await usageOf(single));
      expect(await usageOf(b)).toEqual(clustered);
    } finally {
      await Promise.all([a.stop(), b.stop(), single.stop()]);
    }
  });

  it('drill: a replica of shard 1 stops during ingest: no acknowledged event lost, none counted twice', async () => {
    const database = 'cluster_replica_down';
    // The service talks to shard 2's server; shard 1's first replica stops under it and comes back.
    const svc = await startTestService(
      'server',
      { ...cluster.env(2), CLICKHOUSE_DATABASE: database },
      { now: () => now },
    );
    const replica = cluster.members.find((m) => m.shard === 1 && m.replica === 1)!.server;
    try {
      const acknowledged = new Set<string>();
      const send = async (from: number, to: number) => {
        const batch = events(from, to);
        const res = await fetch(`${svc.url}/v1/logs`, {
          method: 'POST',
          headers: { authorization: `Bearer ${svc.ingestKey}`, 'content-type': 'application/json' },
          body: JSON.stringify(batch),
        });
        if (res.status === 202) for (const e of batch) acknowledged.add(e.id);
      };
      let stopping: Promise<void> | undefined;
      for (let i = 0; i < 600; i += 50) {
        if (i === 200) stopping = replica.kill();
        await send(i, i + 50);
        if (i === 400) {
          await stopping;
          // Copies of acknowledged events, retried while the replica is down.
          await send(0, 100);
          await svc.service.flush();
          await replica.start();
        }
      }
      await svc.service.flush();
      const rows = await svc.rows();
      const ids = rows.map((r) => r.event_id);
      expect(new Set(ids).size).toBe(ids.length);
      expect(ids.filter((id) => acknowledged.has(id)).length).toBe(acknowledged.size);
      expect(acknowledged.size).toBe(600);
      expect((await usageOf(svc))['retrieve-credit-score/co_1']).toBe('15');
    } finally {
      await replica.start();
      await svc.stop();
    }
  });
});

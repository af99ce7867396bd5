// npm run bench:cluster — what the cluster costs on one machine: the same events ingested (1) through
// 2 service replicas into the ClickHouse cluster of the tests (2 shards, one with 2 replicas: three
// 18.16 servers and a ZooKeeper) and (2) through 1 replica into one server, in the same run.
//
// Everything shares this machine's cores, so this measures the overhead of the cluster path
// (Distributed tables, synchronous inserts to the shards, replication), not scale-up: it is reported as
// a ratio of the two rates. BENCH_EVENTS events (default 100,000) in 1,000-event batches from 8
// concurrent clients, split across the replicas; the clock stops when every event is stored (the
// replicas' spools flushed and count() over the Distributed table exact). The services run in this
// process (startService), so the load generator shares their event loop. The last line is JSON.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { z } from 'zod';
import { generateSampleLogs } from '../../ingest/sample-logs.ts';
import { loadConfig } from '../../src/config.ts';
import { startService, type RunningService } from '../../src/main.ts';
import { startClickHouseCluster } from '../support/clickhouse-cluster.ts';
import { startClickHouseServer } from '../support/clickhouse-server.ts';
import { startZooKeeper } from '../support/zookeeper-server.ts';

const EVENTS = Number(process.env.BENCH_EVENTS ?? 100_000);
const BATCH = 1000;
const CLIENTS = 8;
const ADMIN_KEY = 'bench-admin-key-0123456789abcdef0123456789';

function batches(prefix: string): string[] {
  const now = Date.now();
  const out: string[] = [];
  let batch: object[] = [];
  for (const record of generateSampleLogs({
    count: EVENTS,
    seed: 11,
    start: new Date(now - 3_600_000),
    end: new Date(now),
    companies: 50,
    users: 500,
  })) {
    batch.push({ ...record, id: `${prefix}-${record.id}` });
    if (batch.length === BATCH) {
      out.push(JSON.stringify(batch));
      batch = [];
    }
  }
  if (batch.length > 0) out.push(JSON.stringify(batch));
  return out;
}

async function replicas(envs: Record<string, string>[], parent: string): Promise<RunningService[]> {
  const out: RunningService[] = [];
  for (const env of envs) {
    const dataDir = await mkdtemp(join(parent, 'replica-'));
    const config = loadConfig({
      PORT: '0',
      HOST: '127.0.0.1',
      DATA_DIR: dataDir,
      ADMIN_API_KEY: ADMIN_KEY,
      LOG_LEVEL: 'error',
      ...env,
    });
    out.push(await startService(config, pino({ level: 'error' })));
  }
  return out;
}

/** Events per second through `services` until all are stored. */
async function ingestRate(services: RunningService[], prefix: string): Promise<number> {
  const { key } = await services[0]!.keys.create('bench');
  // Every replica reads the key from ClickHouse (at most once a second for an unknown key).
  for (const s of services) await s.keys.load();
  const bodies = batches(prefix);
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CLIENTS }, async (_, client) => {
      const svc = services[client % services.length]!;
      while (next < bodies.length) {
        const res = await fetch(`${svc.url}/v1/logs`, {
          method: 'POST',
          headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
          body: bodies[next++]!,
        });
        if (res.status !== 202) throw new Error(`ingest answered ${res.status}: ${await res.text()}`);
      }
    }),
  );
  await Promise.all(services.map((s) => s.flush()));
  const elapsed = (performance.now() - started) / 1000;
  const ch = services[0]!.clickhouse;
  const [row] = await ch.query(
    `SELECT count() AS n FROM ${ch.table('request_logs')} WHERE event_id LIKE '${prefix}-%'`,
    z.object({ n: z.coerce.number() }),
  );
  if (row?.n !== EVENTS) throw new Error(`${prefix}: ClickHouse holds ${row?.n} of the ${EVENTS} events`);
  return EVENTS / elapsed;
}

async function main(): Promise<void> {
  const parent = await mkdtemp(join(tmpdir(), 'bm-bench-cluster-'));
  const zk = await startZooKeeper({ parentDir: parent });
  const cluster = await startClickHouseCluster({ parentDir: parent, zookeeper: zk.connectString });
  const single = await startClickHouseServer({ parentDir: parent });
  const running: RunningService[] = [];
  try {
    const onCluster = await replicas(
      [0, 2].map((m) => ({
        CLICKHOUSE_URL: cluster.members[m]!.server.url,
        CLICKHOUSE_CLUSTER: cluster.name,
        CLICKHOUSE_DATABASE: 'bench_cluster',
        COORDINATION_URL: `zk://${zk.connectString}/bench`,
      })),
      parent,
    );
    running.push(...onCluster);
    const onOne = await replicas(
      [{ CLICKHOUSE_URL: single.url, CLICKHOUSE_DATABASE: 'bench_single' }],
      parent,
    );
    running.push(...onOne);
    // Warm-up of both paths (JIT, connections, first parts), then the measured runs.
    await ingestRate(onOne, 'warm1');
    await ingestRate(onCluster, 'warm2');
    const singleRate = await ingestRate(onOne, 'single');
    const clusterRate = await ingestRate(onCluster, 'cluster');
    console.log(
      `1 replica → 1 server: ${Math.round(singleRate)} events/s; 2 replicas → cluster (2 shards, 3 servers): ${Math.round(clusterRate)} events/s`,
    );
    console.log(
      JSON.stringify({
        bench: 'cluster',
        events: EVENTS,
        single_server_events_per_s: Math.round(singleRate),
        cluster_events_per_s: Math.round(clusterRate),
        // > 1: the cluster path costs more per event on this one machine (overhead, not scale-up).
        overhead_ratio: Number((singleRate / clusterRate).toFixed(2)),
      }),
    );
  } finally {
    for (const s of running) await s.stop().catch(() => undefined);
    await single.stop();
    await cluster.stop();
    await zk.stop();
    await rm(parent, { recursive: true, force: true });
  }
}

await main();

// npm run bench:ingest — collector throughput and ack latency into a real ClickHouse server, and
// ClickHouse's own raw insert rate for the same rows, measured in one run on this machine.
//
//   1. max rate: BENCH_EVENTS events (default 300,000) in 1,000-event native batches from 8 concurrent
//      keep-alive clients; the clock stops when ClickHouse holds every event (not at the last ack).
//   2. raw: the same rows, read back as JSONEachRow, inserted by ClickHouse in ONE insert.
//   3. latency: open-loop batches at half the measured max rate for BENCH_LATENCY_SECONDS (default 10);
//      ack latency p50/p99 (an ack means durable: in the fsynced spool).
// The service runs as a child process (node bin/billing-meter.js serve), like in production; the load
// generator and ClickHouse share the machine's two cores with it. Everything is on 127.0.0.1 and
// bounded in count and time. The last line is JSON.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { createServer } from 'node:net';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateSampleLogs } from '../../ingest/sample-logs.ts';
import { startClickHouseServer } from '../support/clickhouse-server.ts';

const EVENTS = Number(process.env.BENCH_EVENTS ?? 300_000);
const BATCH = 1000;
const CLIENTS = 8;
const LATENCY_SECONDS = Number(process.env.BENCH_LATENCY_SECONDS ?? 10);
const BIN = fileURLToPath(new URL('../../bin/billing-meter.js', import.meta.url));
const ADMIN_KEY = 'bench-admin-key-0123456789abcdef0123456789';
const DB = 'bench_ingest';

const agent = new Agent({ keepAlive: true, maxSockets: 64 });

function post(
  url: string,
  path: string,
  body: Buffer,
  headers: Record<string, string>,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${url}${path}`,
      { method: 'POST', agent, headers: { ...headers, 'content-length': String(body.length) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function chQuery(chUrl: string, sql: string): Promise<string> {
  const res = await post(chUrl, '/', Buffer.from(sql), {});
  if (res.status !== 200) throw new Error(`clickhouse: ${res.text}`);
  return res.text;
}

async function freePort(): Promise<number> {
  const srv = createServer().listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const { port } = srv.address() as { port: number };
  await new Promise((r) => srv.close(r));
  return port;
}

/**
 * The same events in every run (fixed seed), timed in the hour before the run. Not pinned to a fixed
 * date like the other benches: the service runs as a child process on the wall clock, and it takes no
 * event older than 35 days. Nothing here depends on the calendar (it counts stored rows), so the run
 * passes on any date; .ci/pinned-clocks runs it on a year's first hour and a leap day too.
 */
function batches(count: number, seed: number, idPrefix: string): Buffer[] {
  const now = Date.now();
  const out: Buffer[] = [];
  let batch: object[] = [];
  for (const record of generateSampleLogs({
    count,
    seed,
    start: new Date(now - 3_600_000),
    end: new Date(now),
    companies: 50,
    users: 500,
  })) {
    batch.push({ ...record, id: `${idPrefix}-${record.id}` });
    if (batch.length === BATCH) {
      out.push(Buffer.from(JSON.stringify(batch)));
      batch = [];
    }
  }
  if (batch.length > 0) out.push(Buffer.from(JSON.stringify(batch)));
  return out;
}

/** Waits for the service to answer, then creates an ingest key through the admin API. */
async function createKey(url: string): Promise<string> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const res = await post(url, '/v1/admin/keys', Buffer.from('{"name":"bench"}'), {
      authorization: `Bearer ${ADMIN_KEY}`,
      'content-type': 'application/json',
    }).catch(() => undefined);
    if (res?.status === 201) return (JSON.parse(res.text) as { key: string }).key;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('the service did not start within 30 s');
}

/** CPU seconds (user + system, all threads) a process has used so far, from /proc (Linux). */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ 100)
}

const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;

async function main(): Promise<void> {
  const ch = await startClickHouseServer();
  const dataDir = await mkdtemp(join(tmpdir(), 'bm-bench-'));
  const port = await freePort();
  const env = {
    ...process.env,
    CLICKHOUSE_URL: ch.url,
    CLICKHOUSE_DATABASE: DB,
    DATA_DIR: dataDir,
    PORT: String(port),
    HOST: '127.0.0.1',
    ADMIN_API_KEY: ADMIN_KEY,
    LOG_LEVEL: 'warn',
  };
  const url = `http://127.0.0.1:${port}`;
  // The same flags as `npm start`.
  const profile = process.env.BENCH_PROFILE_DIR
    ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE_DIR}`]
    : [];
  const service = spawn(
    process.execPath,
    ['--max-semi-space-size=64', '--initial-old-space-size=256', ...profile, BIN, 'serve'],
    {
      env,
      stdio: ['ignore', 'inherit', 'inherit'],
    },
  );
  try {
    const key = await createKey(url);
    const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };

    // Warm-up: JIT, connections, the table's first parts.
    for (const body of batches(20_000, 99, 'warm')) await post(url, '/v1/logs', body, headers);
    await post(url, '/v1/admin/flush', Buffer.alloc(0), { authorization: `Bearer ${ADMIN_KEY}` });
    const countRows = async () =>
      Number(
        (await chQuery(ch.url, `SELECT count() FROM ${DB}.request_logs WHERE event_id LIKE 'max-%'`)).trim(),
      );
    // Rows in the table's active parts: visible to queries, and read from metadata. Polling this
    // instead of count() … LIKE keeps the wait from scanning the table every 20 ms while ClickHouse
    // is still inserting the last rows (the exact count is checked once, afterwards).
    const partRows = async () =>
      Number(
        (
          await chQuery(
            ch.url,
            `SELECT sum(rows) FROM system.parts WHERE database = '${DB}' AND table = 'request_logs' AND active`,
          )
        ).trim(),
      );
    const rowsBefore = await partRows();

    // 1. Max rate, until ClickHouse holds every event.
    const bodies = batches(EVENTS, 1, 'max');
    let next = 0;
    const chPid = Number(readFileSync(join(ch.dir, 'server.pid'), 'utf8'));
    const cpuBefore = [cpuSeconds(service.pid!), cpuSeconds(chPid), process.cpuUsage()] as const;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: CLIENTS }, async () => {
        while (next < bodies.length) {
          const body = bodies[next++]!;
          const res = await post(url, '/v1/logs', body, headers);
          if (res.status !== 202) throw new Error(`ingest answered ${res.status}: ${res.text}`);
        }
      }),
    );
    const ackedAt = performance.now();
    while ((await partRows()) < rowsBefore + EVENTS) await new Promise((r) => setTimeout(r, 20));
    const storedAt = performance.now();
    const stored = await countRows();
    if (stored !== EVENTS) throw new Error(`ClickHouse holds ${stored} of the ${EVENTS} events`);
    const cpu = {
      service: cpuSeconds(service.pid!) - cpuBefore[0],
      clickhouse: cpuSeconds(chPid) - cpuBefore[1],
      bench: (() => {
        const u = process.cpuUsage(cpuBefore[2]);
        return (u.user + u.system) / 1e6;
      })(),
    };
    const eventsPerS = EVENTS / ((storedAt - started) / 1000);
    const ackedPerS = EVENTS / ((ackedAt - started) / 1000);

    // 2. Raw: ClickHouse inserting the same rows itself, one JSONEachRow insert.
    const rows = await chQuery(
      ch.url,
      `SELECT * FROM ${DB}.request_logs WHERE event_id LIKE 'max-%' FORMAT JSONEachRow`,
    );
    await chQuery(ch.url, `CREATE TABLE ${DB}.raw_copy AS ${DB}.request_logs`);
    const rawBody = Buffer.from(rows);
    const rawStart = performance.now();
    const raw = await post(
      ch.url,
      `/?query=${encodeURIComponent(`INSERT INTO ${DB}.raw_copy FORMAT JSONEachRow`)}`,
      rawBody,
      {},
    );
    if (raw.status !== 200) throw new Error(`raw insert: ${raw.text}`);
    const rawPerS = EVENTS / ((performance.now() - rawStart) / 1000);

    // 3. Ack latency at half the max rate (open loop: a late ack does not slow the schedule).
    const targetBatchesPerS = eventsPerS / 2 / BATCH;
    const latencyBodies = batches(Math.ceil(targetBatchesPerS * LATENCY_SECONDS) * BATCH, 2, 'lat');
    const latencies: number[] = [];
    const t0 = performance.now();
    await Promise.all(
      latencyBodies.map(async (body, i) => {
        const due = t0 + (i / targetBatchesPerS) * 1000;
        await new Promise((r) => setTimeout(r, Math.max(0, due - performance.now())));
        const sent = performance.now();
        const res = await post(url, '/v1/logs', body, headers);
        if (res.status !== 202) throw new Error(`ingest answered ${res.status}`);
        latencies.push(performance.now() - sent);
      }),
    );
    latencies.sort((a, b) => a - b);

    const result = {
      events_per_s: Math.round(eventsPerS),
      raw_events_per_s: Math.round(rawPerS),
      ratio: Number((eventsPerS / rawPerS).toFixed(3)),
      p50_ms: Number(percentile(latencies, 50).toFixed(1)),
      p99_ms: Number(percentile(latencies, 99).toFixed(1)),
    };
    console.log(
      `events                 ${EVENTS} in ${bodies.length} batches of ${BATCH}, ${CLIENTS} clients`,
    );
    console.log(`acked (durable) rate   ${Math.round(ackedPerS)} events/s`);
    console.log(
      `cpu during max rate    service ${cpu.service.toFixed(1)} s, clickhouse ${cpu.clickhouse.toFixed(1)} s, ` +
        `load generator ${cpu.bench.toFixed(1)} s, in ${((storedAt - started) / 1000).toFixed(1)} s on ` +
        `${availableParallelism()} cores (µs per event: service ${((cpu.service / EVENTS) * 1e6).toFixed(1)}, ` +
        `clickhouse ${((cpu.clickhouse / EVENTS) * 1e6).toFixed(1)})`,
    );
    console.log(`into ClickHouse rate   ${result.events_per_s} events/s`);
    console.log(
      `raw ClickHouse insert  ${result.raw_events_per_s} events/s (one JSONEachRow insert, ${(rawBody.length / 1e6).toFixed(1)} MB)`,
    );
    console.log(
      `latency at ${Math.round(targetBatchesPerS * BATCH)} events/s  p50 ${result.p50_ms} ms, p99 ${result.p99_ms} ms over ${latencies.length} batches`,
    );
    console.log(JSON.stringify(result));
  } finally {
    service.kill('SIGTERM');
    await once(service, 'exit');
    agent.destroy();
    await ch.stop();
    await rm(dataDir, { recursive: true, force: true });
    await rm(ch.dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});

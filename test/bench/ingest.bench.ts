// npm run bench:ingest — collector throughput and ack latency into a real ClickHouse server, and
// ClickHouse's own raw insert rate for the same rows, measured in interleaved pairs on this machine.
//
//   Set-up (untimed): 20,000 events through the service (JIT, connections, first parts), then
//   BENCH_EVENTS events (default 300,000) whose stored rows, read back as JSONEachRow, are the raw
//   reference's body.
//   Pairs (support-pairs.ts: BENCH_WARMUP_ROUNDS, default 1, then BENCH_PAIRS, default 3):
//   - reference: ClickHouse inserting that body itself, ONE JSONEachRow insert into a fresh copy of
//     request_logs (dropped afterwards);
//   - ours: BENCH_EVENTS new events (ids of their own) in 1,000-event native batches from BENCH_CLIENTS
//     (default 8) concurrent keep-alive clients; the clock stops when ClickHouse holds every event (not
//     at the last ack). Also each ack's latency at that load and the service's CPU.
//   A pair's ratio is ours events/s over raw events/s (target median >= 0.5).
//   Then latency: open-loop batches at half the median max rate for BENCH_LATENCY_SECONDS (default 10);
//   ack latency p50/p99 (an ack means durable: in the fsynced spool). Last: bytes per event on disk in
//   request_logs after merging it into one part (system.parts), and the service's peak RSS.
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
import { interleavedPairs, median, medianOf, pairsFields, pairsLine } from './support-pairs.ts';

const EVENTS = Number(process.env.BENCH_EVENTS ?? 300_000);
const BATCH = 1000;
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 8);
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

/** Peak resident set of a process so far (VmHWM), in MB, from /proc (Linux). */
function peakRssMb(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmHWM:\s+(\d+) kB/m);
  return line ? Math.round(Number(line[1]) / 1024) : NaN;
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
    const countRows = async (prefix: string) =>
      Number(
        (
          await chQuery(ch.url, `SELECT count() FROM ${DB}.request_logs WHERE event_id LIKE '${prefix}-%'`)
        ).trim(),
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
    const chPid = Number(readFileSync(join(ch.dir, 'server.pid'), 'utf8'));

    // Each side starts once ClickHouse has finished merging the parts the rounds before it left (at
    // most 20 s): a raw insert that ran beside the merges of the previous round's 300,000 rows measured
    // 104k events/s where the same insert without them gave 381k.
    const settle = async () => {
      const until = performance.now() + 20_000;
      while (
        performance.now() < until &&
        Number((await chQuery(ch.url, `SELECT count() FROM system.merges WHERE database = '${DB}'`)).trim()) >
          0
      )
        await new Promise((r) => setTimeout(r, 50));
    };

    /** One max-rate round: BENCH_EVENTS new events, until ClickHouse holds every one. */
    const maxRate = async (prefix: string) => {
      await settle();
      const rowsBefore = await partRows();
      const bodies = batches(EVENTS, 1, prefix);
      let next = 0;
      const acks: number[] = [];
      const cpuBefore = [cpuSeconds(service.pid!), cpuSeconds(chPid), process.cpuUsage()] as const;
      const started = performance.now();
      await Promise.all(
        Array.from({ length: CLIENTS }, async () => {
          while (next < bodies.length) {
            const body = bodies[next++]!;
            const sent = performance.now();
            const res = await post(url, '/v1/logs', body, headers);
            if (res.status !== 202) throw new Error(`ingest answered ${res.status}: ${res.text}`);
            acks.push(performance.now() - sent);
          }
        }),
      );
      const ackedAt = performance.now();
      while ((await partRows()) < rowsBefore + EVENTS) await new Promise((r) => setTimeout(r, 20));
      const storedAt = performance.now();
      const cpu = {
        service: cpuSeconds(service.pid!) - cpuBefore[0],
        clickhouse: cpuSeconds(chPid) - cpuBefore[1],
        bench: (() => {
          const u = process.cpuUsage(cpuBefore[2]);
          return (u.user + u.system) / 1e6;
        })(),
      };
      const stored = await countRows(prefix);
      if (stored !== EVENTS) throw new Error(`ClickHouse holds ${stored} of the ${EVENTS} events`);
      acks.sort((x, y) => x - y);
      return {
        eventsPerS: EVENTS / ((storedAt - started) / 1000),
        ackedPerS: EVENTS / ((ackedAt - started) / 1000),
        seconds: (storedAt - started) / 1000,
        cpu,
        ackP99: percentile(acks, 99),
        batches: bodies.length,
      };
    };

    // The raw reference's body: the stored rows of BENCH_EVENTS events, as ClickHouse gives them back.
    await maxRate('raw');
    const rawBody = Buffer.from(
      await chQuery(
        ch.url,
        `SELECT * FROM ${DB}.request_logs WHERE event_id LIKE 'raw-%' FORMAT JSONEachRow`,
      ),
    );
    const rawInsert = async (round: number) => {
      const table = `${DB}.raw_copy_${round < 1 ? `w${1 - round}` : round}`;
      await chQuery(ch.url, `CREATE TABLE ${table} AS ${DB}.request_logs`);
      await settle();
      const rawStart = performance.now();
      const raw = await post(
        ch.url,
        `/?query=${encodeURIComponent(`INSERT INTO ${table} FORMAT JSONEachRow`)}`,
        rawBody,
        {},
      );
      const seconds = (performance.now() - rawStart) / 1000;
      if (raw.status !== 200) throw new Error(`raw insert: ${raw.text}`);
      await chQuery(ch.url, `DROP TABLE ${table}`);
      return { eventsPerS: EVENTS / seconds };
    };

    type Round = Awaited<ReturnType<typeof maxRate>> | Awaited<ReturnType<typeof rawInsert>>;
    const rounds = await interleavedPairs<Round>({
      names: { reference: 'raw insert', ours: 'service' },
      reference: rawInsert,
      ours: (round) => maxRate(`max${round < 1 ? `w${1 - round}` : round}`),
      ratio: (reference, ours) => ours.eventsPerS / reference.eventsPerS,
      show: (m) =>
        'cpu' in m
          ? `${Math.round(m.eventsPerS)} events/s (${((m.cpu.service / EVENTS) * 1e6).toFixed(1)} µs service CPU per event)`
          : `${Math.round(m.eventsPerS)} events/s`,
    });
    const ours = rounds.pairs.map((p) => p.ours as Awaited<ReturnType<typeof maxRate>>);
    const eventsPerS = median(ours.map((o) => o.eventsPerS));
    const rawPerS = medianOf(rounds.pairs, 'reference', (m) => m.eventsPerS);
    const serviceUsPerEvent = median(ours.map((o) => (o.cpu.service / EVENTS) * 1e6));
    const clickhouseUsPerEvent = median(ours.map((o) => (o.cpu.clickhouse / EVENTS) * 1e6));
    const maxRateRss = peakRssMb(service.pid!);

    // Ack latency at half the max rate (open loop: a late ack does not slow the schedule).
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

    // Bytes per event on disk, once the table is one part (as background merges leave it over time).
    await post(url, '/v1/admin/flush', Buffer.alloc(0), { authorization: `Bearer ${ADMIN_KEY}` });
    await chQuery(ch.url, `OPTIMIZE TABLE ${DB}.request_logs FINAL`);
    const [diskBytes, diskRows] = (
      await chQuery(
        ch.url,
        `SELECT sum(bytes_on_disk), sum(rows) FROM system.parts WHERE database = '${DB}' AND table = 'request_logs' AND active FORMAT TabSeparated`,
      )
    )
      .trim()
      .split('\t')
      .map(Number) as [number, number];

    const result = {
      events_per_s: Math.round(eventsPerS),
      raw_events_per_s: Math.round(rawPerS),
      ratio: rounds.ratio_median,
      ...pairsFields(rounds),
      p50_ms: Number(percentile(latencies, 50).toFixed(1)),
      p99_ms: Number(percentile(latencies, 99).toFixed(1)),
      clients: CLIENTS,
      max_rate_ack_p99_ms: Number(median(ours.map((o) => o.ackP99)).toFixed(1)),
      service_cpu_us_per_event: Number(serviceUsPerEvent.toFixed(2)),
      clickhouse_cpu_us_per_event: Number(clickhouseUsPerEvent.toFixed(2)),
      bytes_per_event: Number((diskBytes / diskRows).toFixed(1)),
      service_peak_rss_mb: maxRateRss,
    };
    const last = ours.at(-1)!;
    console.log(
      `events                 ${EVENTS} in ${last.batches} batches of ${BATCH}, ${CLIENTS} clients, ${rounds.pairs.length} pairs`,
    );
    console.log(
      `acked (durable) rate   ${Math.round(median(ours.map((o) => o.ackedPerS)))} events/s (median)`,
    );
    console.log(
      `cpu during max rate    service ${last.cpu.service.toFixed(1)} s, clickhouse ${last.cpu.clickhouse.toFixed(1)} s, ` +
        `load generator ${last.cpu.bench.toFixed(1)} s, in ${last.seconds.toFixed(1)} s on ` +
        `${availableParallelism()} cores (last pair); µs per event, median: service ${serviceUsPerEvent.toFixed(1)}, ` +
        `clickhouse ${clickhouseUsPerEvent.toFixed(1)}`,
    );
    console.log(
      `into ClickHouse rate   ${result.events_per_s} events/s (median), ack p99 ${result.max_rate_ack_p99_ms} ms at that load`,
    );
    console.log(
      `raw ClickHouse insert  ${result.raw_events_per_s} events/s (median; one JSONEachRow insert, ${(rawBody.length / 1e6).toFixed(1)} MB)`,
    );
    console.log(`ratio                  ${pairsLine(rounds)} (target median >= 0.5)`);
    console.log(
      `latency at ${Math.round(targetBatchesPerS * BATCH)} events/s  p50 ${result.p50_ms} ms, p99 ${result.p99_ms} ms over ${latencies.length} batches`,
    );
    console.log(
      `on disk                ${result.bytes_per_event} bytes per event in request_logs (${diskRows} rows, one part); service peak RSS ${maxRateRss} MB`,
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

// npm run bench:growth — how cost grows as work grows: one table and a JSON line (also written to
// BENCH_GROWTH_OUT, default test/bench/growth/growth.json, which plot-growth.ts renders to a PNG).
//
//   - ingest: events/s into ClickHouse and ack p99 at 1, 2, 4, 8 concurrent senders (GROWTH_SENDERS);
//     bench:ingest with BENCH_CLIENTS = n, BENCH_EVENTS (default 300,000), one pair, the p99 of the
//     acks at that load (closed loop: each sender sends its next batch when the last is acked). The
//     8-sender run also gives the bytes per event on disk in request_logs (system.parts, one part after
//     OPTIMIZE FINAL; the sample logs' typical fields and metadata: `plan`, two headers) and the
//     service's peak RSS during max-rate ingest (VmHWM of the service process).
//   - meters: evaluation time at 1M, 10M, 30M logs (GROWTH_LOGS); bench:meters with BENCH_LOGS = n, a
//     warm-up round, one pair. Its peak RSS is that of the process that ran the evaluation
//     (EvaluationService over the ClickHouse store, as the service's hourly job runs it).
//   - sync: time of one run for 1k and 10k customers (GROWTH_CUSTOMERS), 2 meters × 1 closed hour
//     each, emulator latency fixed at 20 ms, limit 500/s; bench:sync with one pair.
// GROWTH_PARTS (default ingest,meters,sync) runs only those parts and keeps the others from the JSON
// file already at BENCH_GROWTH_OUT (so a failed part can be run again without the long meters runs).
// A bench that fails (e.g. bench:sync's check that no second at Stripe held more calls than the limit)
// is recorded with its error in the part's `failures` and the JSON line still printed; exit status 1.
// Each part is its bench run as a child process (the same code the README's tables come from); sizes
// shrink for a quick check: GROWTH_SENDERS=1,2 GROWTH_LOGS=100000,200000 GROWTH_CUSTOMERS=50,100
// BENCH_EVENTS=20000. The long sizes (10M, 30M) are meant to run once: each takes minutes.
import { spawn } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const list = (name: string, fallback: number[]): number[] => {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const values = raw.split(',').map(Number);
  if (values.some((v) => !Number.isSafeInteger(v) || v < 1))
    throw new Error(`${name} must be a comma-separated list of positive integers, got ${raw}`);
  return values;
};

const SENDERS = list('GROWTH_SENDERS', [1, 2, 4, 8]);
const LOGS = list('GROWTH_LOGS', [1_000_000, 10_000_000, 30_000_000]);
const CUSTOMERS = list('GROWTH_CUSTOMERS', [1_000, 10_000]);
const PARTS = (process.env.GROWTH_PARTS ?? 'ingest,meters,sync').split(',');
const OUT = process.env.BENCH_GROWTH_OUT ?? fileURLToPath(new URL('./growth/growth.json', import.meta.url));

const failures: string[] = [];

/**
 * Runs one bench as a child process with extra env; its last stdout line is its JSON result. A bench
 * that exits non-zero still printed its JSON line (its checks run after measuring): the result is kept
 * and the failure recorded.
 */
async function bench(file: string, env: Record<string, string>): Promise<Record<string, number>> {
  const script = fileURLToPath(new URL(file, import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', script], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let stdout = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  const last = stdout.trim().split('\n').at(-1) ?? '';
  console.error(`  ${file} ${JSON.stringify(env)}: ${last}`);
  if (code !== 0) {
    if (!last.startsWith('{'))
      throw new Error(`${file} ${JSON.stringify(env)} exited with ${code}:\n${stdout}`);
    failures.push(`${file} ${JSON.stringify(env)} exited with ${code}`);
  }
  return JSON.parse(last) as Record<string, number>;
}

const ONE_PAIR = { BENCH_PAIRS: '1' };

interface IngestRow {
  senders: number;
  events_per_s: number;
  ack_p99_ms: number;
  service_cpu_us_per_event: number;
  bytes_per_event: number;
  service_peak_rss_mb: number;
}
interface MetersRow {
  logs: number;
  seconds: number;
  reference_seconds: number;
  seconds_per_million: number;
  evaluation_peak_rss_mb: number;
}
interface SyncRow {
  customers: number;
  events: number;
  run_seconds: number;
  ms_per_customer: number;
  events_per_s: number;
  limit_per_s: number;
  peak_per_1s_window: number;
}
interface Previous {
  ingest?: IngestRow[];
  meters?: MetersRow[];
  sync?: SyncRow[];
}

async function main(): Promise<void> {
  const previous = (await readFile(OUT, 'utf8').then(
    (text) => JSON.parse(text) as Previous,
    () => ({}),
  )) as Previous;
  const ingest: IngestRow[] = [];
  for (const senders of PARTS.includes('ingest') ? SENDERS : []) {
    const r = await bench('./ingest.bench.ts', {
      ...ONE_PAIR,
      BENCH_WARMUP_ROUNDS: '0',
      BENCH_CLIENTS: String(senders),
      BENCH_LATENCY_SECONDS: '2',
    });
    ingest.push({
      senders,
      events_per_s: r.events_per_s!,
      ack_p99_ms: r.max_rate_ack_p99_ms!,
      service_cpu_us_per_event: r.service_cpu_us_per_event!,
      bytes_per_event: r.bytes_per_event!,
      service_peak_rss_mb: r.service_peak_rss_mb!,
    });
  }
  const meters: MetersRow[] = [];
  for (const logs of PARTS.includes('meters') ? LOGS : []) {
    const r = await bench('./meters.bench.ts', { ...ONE_PAIR, BENCH_LOGS: String(logs) });
    meters.push({
      logs,
      seconds: r.seconds!,
      reference_seconds: r.reference_seconds!,
      seconds_per_million: Number((r.seconds! / (logs / 1e6)).toFixed(3)),
      evaluation_peak_rss_mb: r.evaluation_peak_rss_mb!,
    });
  }
  const sync: SyncRow[] = [];
  for (const customers of PARTS.includes('sync') ? CUSTOMERS : []) {
    const r = await bench('./sync.bench.ts', {
      ...ONE_PAIR,
      BENCH_WARMUP_ROUNDS: '0',
      BENCH_CUSTOMERS: String(customers),
      BENCH_HOURS: '1',
      BENCH_LATENCY_MS: '20',
    });
    sync.push({
      customers,
      events: r.events!,
      run_seconds: r.run_seconds!,
      ms_per_customer: Number(((r.run_seconds! * 1000) / customers).toFixed(3)),
      events_per_s: r.events_per_s!,
      limit_per_s: r.limit_per_s!,
      peak_per_1s_window: r.peak_per_1s_window!,
    });
  }
  if (!PARTS.includes('ingest')) ingest.push(...(previous.ingest ?? []));
  if (!PARTS.includes('meters')) meters.push(...(previous.meters ?? []));
  if (!PARTS.includes('sync')) sync.push(...(previous.sync ?? []));

  const widest = ingest.at(-1)!;
  const biggest = meters.at(-1)!;
  // Growth factors: cost per unit of work at the largest size over the smallest (<= 1: linear or better).
  const growth = {
    meters_seconds_per_log: Number((biggest.seconds_per_million / meters[0]!.seconds_per_million).toFixed(3)),
    sync_seconds_per_customer: Number((sync.at(-1)!.ms_per_customer / sync[0]!.ms_per_customer).toFixed(3)),
  };
  const result = {
    ingest,
    meters,
    sync,
    bytes_per_event: widest.bytes_per_event,
    service_peak_rss_mb_ingest: Math.max(...ingest.map((i) => i.service_peak_rss_mb)),
    evaluation_peak_rss_mb: biggest.evaluation_peak_rss_mb,
    growth,
    failures,
  };

  console.log('ingest    senders  events/s  ack p99 ms  service µs/event  service peak RSS MB');
  for (const i of ingest)
    console.log(
      `          ${String(i.senders).padStart(7)}  ${String(i.events_per_s).padStart(8)}  ${i.ack_p99_ms.toFixed(1).padStart(10)}  ${i.service_cpu_us_per_event.toFixed(2).padStart(16)}  ${String(i.service_peak_rss_mb).padStart(19)}`,
    );
  console.log('meters       logs   eval s  reference s  s per 1M logs  peak RSS MB');
  for (const m of meters)
    console.log(
      `       ${String(m.logs).padStart(9)}  ${m.seconds.toFixed(2).padStart(7)}  ${m.reference_seconds.toFixed(2).padStart(11)}  ${m.seconds_per_million.toFixed(3).padStart(13)}  ${String(m.evaluation_peak_rss_mb).padStart(11)}`,
    );
  console.log('sync    customers  events   run s  ms per customer  calls/s (limit)  peak in 1 s');
  for (const s of sync)
    console.log(
      `        ${String(s.customers).padStart(9)}  ${String(s.events).padStart(6)}  ${s.run_seconds.toFixed(2).padStart(6)}  ${s.ms_per_customer.toFixed(3).padStart(15)}  ${s.events_per_s} (${s.limit_per_s})  ${s.peak_per_1s_window}`,
    );
  console.log(
    `disk      ${result.bytes_per_event} bytes per event in request_logs; cost per unit at the largest size over the smallest: ` +
      `meters ${growth.meters_seconds_per_log}, sync ${growth.sync_seconds_per_customer} (<= 1 is linear or better)`,
  );
  await mkdir(dirname(OUT), { recursive: true });
  await writeFile(OUT, `${JSON.stringify(result, null, 2)}\n`);
  for (const f of failures) console.error(`FAIL: ${f}`);
  console.log(JSON.stringify(result));
  if (failures.length > 0) process.exitCode = 1;
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});

// npm run bench:sync — the Stripe sync's throughput against its configured rate limit, in one run.
//
//   1. A throwaway clickhouse-server (Debian's 18.16), database `bench_sync`, migrated.
//   2. The Stripe emulator with BENCH_LATENCY_MS (default 20) of latency on every response. Untimed
//      setup (no latency yet): BENCH_CUSTOMERS customers (default 1000) and two Stripe meters (a count
//      and a sum), created through the real SDK.
//   3. meter_usage rows as the hourly evaluation writes them: every customer × meter × BENCH_HOURS
//      closed hours (default 3) → 6,000 meter events by default, each with a value. The hours are the
//      last ones closed at BENCH_NOW (default 2027-01-01T00:30:00Z, the first half hour of a year), the
//      instant the sync's and the emulator's clocks start at, so every run syncs the same events.
//   4. Timed: one SyncService.run through the real SDK gateway (v1 meter events, one call each) with
//      STRIPE_RATE_LIMIT_PER_SECOND = BENCH_LIMIT (default 500: on a 2-core machine that also runs
//      ClickHouse and the emulator, 1000/s is CPU-bound; BENCH_LIMIT=1000 measures it) and the
//      default SYNC_CONCURRENCY. `events_per_s` is the rate at Stripe, the quantity the limit is about:
//      meter event calls that reached the emulator, over the span from the first arrival to the last
//      (n − 1 intervals). `run_seconds` is the whole run's wall time (reading usage and the ledger
//      first, every intent written before its call, outcomes after) and `run_events_per_s` its rate.
//   Then one more run with nothing new (`idle_run_seconds`): it must look at no key at all.
//   5. Checks, else exit 1: every customer's Stripe total equals its usage; no 1000 ms window of the
//      emulator's arrival times (real clock) holds more than BENCH_LIMIT meter event calls.
// The last line is JSON: {"events_per_s","limit_per_s","ratio",...}. Target: ratio >= 0.9, never over.
import Stripe from 'stripe';
import { createStripeGateway } from '../../src/adapters/stripe/stripe-gateway.ts';
import { SyncService } from '../../src/billing/stripe/sync-service.ts';
import { loadConfig } from '../../src/config.ts';
import { HOUR_MS } from '../../src/time/hours.ts';
import { meterSchema, type MeterDefinition } from '../../src/meters/meter-schema.ts';
import { connectClickHouse } from '../../src/storage/clickhouse/clickhouse.ts';
import { ClickHouseMeterStore } from '../../src/storage/clickhouse/meter-store.ts';
import { migrate } from '../../src/storage/clickhouse/migrations.ts';
import { ClickHouseSyncStore } from '../../src/storage/clickhouse/sync-store.ts';
import { startClickHouseServer } from '../support/clickhouse-server.ts';
import { instantFromEnv, realNowMs, runningClock } from '../support/clock.ts';
import { Worker } from 'node:worker_threads';
import type { EmulatorRequestMessage } from './stripe-emulator-worker-main.ts';

const CUSTOMERS = Number(process.env.BENCH_CUSTOMERS ?? 1000);
const HOURS = Number(process.env.BENCH_HOURS ?? 3);
const LIMIT = Number(process.env.BENCH_LIMIT ?? 500);
const LATENCY_MS = Number(process.env.BENCH_LATENCY_MS ?? 20);
const SECRET = 'sk_test_bench';
/** The clocks of the sync and of the emulator thread: BENCH_NOW, then on with real time. */
const CLOCK_START = instantFromEnv('BENCH_NOW', '2027-01-01T00:30:00Z');
const CLOCK_SINCE = realNowMs();
const clock = runningClock(CLOCK_START, CLOCK_SINCE);

const meters: MeterDefinition[] = [
  meterSchema.parse({
    name: 'bench-calls',
    description: 'calls',
    aggregation: { type: 'count' },
    unit: 'calls',
    stripe: { event_name: 'bench_calls' },
  }),
  meterSchema.parse({
    name: 'bench-bytes',
    description: 'bytes',
    aggregation: { type: 'sum', value: 'response_bytes' },
    unit: 'bytes',
    stripe: { event_name: 'bench_bytes' },
  }),
];

/** The most calls that started inside any 1000 ms window. */
function maxPerWindow(times: number[]): number {
  const sorted = [...times].sort((a, b) => a - b);
  let best = 0;
  for (let lo = 0, hi = 0; hi < sorted.length; hi++) {
    while (sorted[hi]! - sorted[lo]! >= 1000) lo++;
    best = Math.max(best, hi - lo + 1);
  }
  return best;
}

type Question = EmulatorRequestMessage extends infer M
  ? M extends { id: number }
    ? Omit<M, 'id'>
    : never
  : never;

/** The emulator on its own thread (a remote Stripe's CPU is not ours), and a way to ask it things. */
async function startEmulatorThread(): Promise<{
  url: string;
  ask<T>(q: Question): Promise<T>;
  stop(): Promise<void>;
}> {
  const worker = new Worker(new URL('./stripe-emulator-worker.mjs', import.meta.url), {
    workerData: { clockStartMs: CLOCK_START.getTime(), clockSinceMs: CLOCK_SINCE },
  });
  const waiting = new Map<number, (v: unknown) => void>();
  let next = 0;
  const url = await new Promise<string>((resolve, reject) => {
    worker.once('error', reject);
    worker.on('message', (m: { ready?: boolean; url?: string; id?: number; result?: unknown }) => {
      if (m.ready) resolve(m.url!);
      else if (m.id !== undefined) waiting.get(m.id)?.(m.result);
    });
  });
  const ask = <T>(q: Question) =>
    new Promise<T>((resolve) => {
      const id = next++;
      waiting.set(id, (v) => resolve(v as T));
      worker.postMessage({ ...q, id });
    });
  return {
    url,
    ask,
    stop: async () => {
      await ask({ op: 'stop' });
      await worker.terminate();
    },
  };
}

async function main(): Promise<void> {
  const server = await startClickHouseServer();
  const emulator = await startEmulatorThread();
  try {
    const ch = await connectClickHouse({
      kind: 'server',
      url: server.url,
      username: 'default',
      password: '',
      database: 'bench_sync',
    });
    await migrate(ch);

    const api = new URL(emulator.url);
    const admin = new Stripe(SECRET, {
      host: api.hostname,
      port: Number(api.port),
      protocol: 'http',
      maxNetworkRetries: 2,
    });
    for (const m of meters) {
      await admin.billing.meters.create({
        display_name: m.name,
        event_name: m.stripe!.event_name,
        default_aggregation: { formula: 'sum' },
        customer_mapping: { type: 'by_id', event_payload_key: 'stripe_customer_id' },
        value_settings: { event_payload_key: 'value' },
      });
    }
    const customers: string[] = [];
    for (let i = 0; i < CUSTOMERS; i++)
      customers.push((await admin.customers.create({ name: `bench ${i}` })).id);

    const now = clock();
    const lastClosed = Math.floor(now.getTime() / HOUR_MS) * HOUR_MS - HOUR_MS;
    const store = new ClickHouseMeterStore(ch);
    let expectedEvents = 0;
    const expected = new Map<string, bigint>();
    for (const m of meters) {
      const rows = [];
      for (const [i, customer] of customers.entries()) {
        for (let h = 0; h < HOURS; h++) {
          const value = BigInt(1 + ((i * 7 + h * 13) % 997)) * (m.aggregation.type === 'sum' ? 1024n : 1n);
          rows.push({
            meter: m.name,
            version: 'v1',
            customer,
            hour: new Date(lastClosed - h * HOUR_MS),
            value,
            periodValue: value,
          });
          expected.set(
            `${m.stripe!.event_name}/${customer}`,
            (expected.get(`${m.stripe!.event_name}/${customer}`) ?? 0n) + value,
          );
          expectedEvents += 1;
        }
      }
      await store.writeUsage(rows, now, 1n);
    }

    const config = loadConfig({
      STRIPE_SECRET_KEY: SECRET,
      STRIPE_API_BASE: emulator.url,
      STRIPE_RATE_LIMIT_PER_SECOND: String(LIMIT),
      SYNC_CONCURRENCY: process.env.SYNC_CONCURRENCY,
    });
    const gateway = createStripeGateway(
      { ...config.stripe, secretKey: SECRET },
      { now: () => clock().getTime() },
    );
    const sync = new SyncService({
      store: new ClickHouseSyncStore(ch),
      directory: { resolve: async (keys) => new Map(keys.map((k) => [k, k])) },
      sender: gateway,
      concurrency: config.stripe.syncConcurrency,
      logger: { info: () => undefined, warn: (o, m) => console.error(m, o), debug: () => undefined },
      now: clock,
    });

    await emulator.ask({ op: 'setLatency', ms: LATENCY_MS });
    const firstRequest = await emulator.ask<number>({ op: 'requestCount' });
    const started = performance.now();
    const cpuBefore = process.cpuUsage();
    const report = await sync.run(meters);
    const seconds = (performance.now() - started) / 1000;
    const cpu = process.cpuUsage(cpuBefore);
    // The next hourly run with nothing new: what a run costs once everything is in Stripe.
    const idleStarted = performance.now();
    const idle = await sync.run(meters);
    const idleSeconds = (performance.now() - idleStarted) / 1000;
    const idleProblem =
      idle.keysChecked === 0 ? undefined : `a run with nothing new still looked at ${idle.keysChecked} keys`;

    const arrivals = (
      await emulator.ask<number[]>({
        op: 'arrivals',
        path: '/v1/billing/meter_events',
        sinceIndex: firstRequest,
      })
    ).sort((a, b) => a - b);
    const peak = maxPerWindow(arrivals);
    const spanSeconds = (arrivals.at(-1)! - arrivals[0]!) / 1000;
    const totals = await emulator.ask<Record<string, string>>({ op: 'totals' });
    const problems: string[] = idleProblem ? [idleProblem] : [];
    if (report.sent !== expectedEvents)
      problems.push(`sent ${report.sent} of ${expectedEvents} events (${JSON.stringify(report)})`);
    for (const [key, value] of expected) {
      const total = BigInt(totals[key] ?? '0');
      if (total !== value) problems.push(`${key}: Stripe holds ${total}, usage ${value}`);
    }
    if (peak > LIMIT)
      problems.push(`${peak} meter event calls in one 1000 ms window, over the limit of ${LIMIT}`);
    const eventsPerS = (arrivals.length - 1) / spanSeconds;
    console.log(
      `synced ${report.sent} events for ${CUSTOMERS} customers × ${meters.length} meters × ${HOURS} hours in ${seconds.toFixed(2)} s; latency ${LATENCY_MS} ms; peak ${peak} calls in 1 s; this process used ${((cpu.user + cpu.system) / 1e6).toFixed(2)} s of CPU (the emulator thread's included)`,
    );
    for (const p of problems.slice(0, 10)) console.error(`FAIL: ${p}`);
    console.log(
      JSON.stringify({
        events_per_s: Math.round(eventsPerS * 10) / 10,
        limit_per_s: LIMIT,
        ratio: Math.round((eventsPerS / LIMIT) * 1000) / 1000,
        peak_per_1s_window: peak,
        events: report.sent,
        calls: arrivals.length,
        run_seconds: Math.round(seconds * 100) / 100,
        run_events_per_s: Math.round((report.sent / seconds) * 10) / 10,
        idle_run_seconds: Math.round(idleSeconds * 1000) / 1000,
        latency_ms: LATENCY_MS,
      }),
    );
    await ch.close();
    if (problems.length > 0) process.exitCode = 1;
  } finally {
    await emulator.stop();
    await server.stop();
  }
}

await main();

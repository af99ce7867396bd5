// npm run bench:sync — the Stripe sync's throughput against its configured rate limit, in one run.
//
//   1. A throwaway clickhouse-server (Debian's 18.16), database `bench_sync`, migrated.
//   2. The Stripe emulator with BENCH_LATENCY_MS (default 20) of latency on every response. Untimed
//      setup (no latency yet): BENCH_CUSTOMERS customers (default 1000) and, for every round and side, two Stripe
//      meters (a count and a sum), created through the real SDK.
//   3. meter_usage rows as the hourly evaluation writes them, for every round's own two meters:
//      every customer × meter × BENCH_HOURS closed hours (default 3) → 6,000 meter events a round by
//      default, each with a value. The hours are the last ones closed at BENCH_NOW (default
//      2027-01-01T00:30:00Z, the first half hour of a year), the instant the sync's and the emulator's
//      clocks start at, so every run syncs the same events.
//   4. Interleaved pairs (support-pairs.ts: BENCH_WARMUP_ROUNDS, default 1, then BENCH_PAIRS, default 3)
//      with STRIPE_RATE_LIMIT_PER_SECOND = BENCH_LIMIT (default 500: on a 2-core machine that also runs
//      ClickHouse and the emulator, 1000/s is CPU-bound; BENCH_LIMIT=1000 measures it) and the default
//      SYNC_CONCURRENCY:
//      - reference: the same number of meter event calls sent straight through the same SDK gateway
//        (its rate limiter included), SYNC_CONCURRENCY at a time, nothing else;
//      - ours: one SyncService.run over the round's meters (v1 meter events, one call each).
//      A side's rate is the rate at Stripe, the quantity the limit is about: meter event calls that
//      reached the emulator, over the span from the first arrival to the last (n − 1 intervals).
//      `ratio` is the median of the sync's rates over the limit (target >= 0.95, never over), with
//      `limit_ratio_min`/`limit_ratio_max`; `ratio_median`/`ratio_min`/`ratio_max` are the pairs' sync
//      rate over the bare gateway's. `run_seconds` is the sync's whole run (reading usage and the
//      ledger, every intent written before its call, outcomes after), median of the pairs.
//   Then one more run with nothing new (`idle_run_seconds`): it must look at no key at all.
//   5. Checks, else exit 1: every customer's Stripe total equals its usage; no 1000 ms window of the
//      emulator's arrival times (real clock) holds more than BENCH_LIMIT meter event calls, either side.
// The last line is JSON: {"events_per_s","limit_per_s","ratio","ratio_median",...}.
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
import {
  PAIRS,
  WARMUP_ROUNDS,
  interleavedPairs,
  median,
  medianOf,
  pairsFields,
  pairsLine,
} from './support-pairs.ts';

const CUSTOMERS = Number(process.env.BENCH_CUSTOMERS ?? 1000);
const HOURS = Number(process.env.BENCH_HOURS ?? 3);
const LIMIT = Number(process.env.BENCH_LIMIT ?? 500);
const LATENCY_MS = Number(process.env.BENCH_LATENCY_MS ?? 20);
const SECRET = 'sk_test_bench';
/** The clocks of the sync and of the emulator thread: BENCH_NOW, then on with real time. */
const CLOCK_START = instantFromEnv('BENCH_NOW', '2027-01-01T00:30:00Z');
const CLOCK_SINCE = realNowMs();
const clock = runningClock(CLOCK_START, CLOCK_SINCE);

/**
 * The meters of one round (a count and a sum): every round syncs meters of its own, so each round
 * sends the full set of events (a meter already in Stripe would have nothing left to send).
 */
function roundMeters(round: string): MeterDefinition[] {
  return [
    meterSchema.parse({
      name: `bench-calls-${round}`,
      description: 'calls',
      aggregation: { type: 'count' },
      unit: 'calls',
      stripe: { event_name: `bench_calls_${round}` },
    }),
    meterSchema.parse({
      name: `bench-bytes-${round}`,
      description: 'bytes',
      aggregation: { type: 'sum', value: 'response_bytes' },
      unit: 'bytes',
      stripe: { event_name: `bench_bytes_${round}` },
    }),
  ];
}
const roundName = (round: number) => (round < 1 ? `w${1 - round}` : String(round));

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
    const roundNames = [
      ...Array.from({ length: WARMUP_ROUNDS }, (_, w) => roundName(w - WARMUP_ROUNDS + 1)),
      ...Array.from({ length: PAIRS }, (_, i) => roundName(i + 1)),
    ];
    for (const name of roundNames) {
      for (const m of [...roundMeters(name), ...roundMeters(`ref_${name}`)]) {
        await admin.billing.meters.create({
          display_name: m.name,
          event_name: m.stripe!.event_name,
          default_aggregation: { formula: 'sum' },
          customer_mapping: { type: 'by_id', event_payload_key: 'stripe_customer_id' },
          value_settings: { event_payload_key: 'value' },
        });
      }
    }
    const customers: string[] = [];
    for (let i = 0; i < CUSTOMERS; i++)
      customers.push((await admin.customers.create({ name: `bench ${i}` })).id);

    const now = clock();
    const lastClosed = Math.floor(now.getTime() / HOUR_MS) * HOUR_MS - HOUR_MS;
    const store = new ClickHouseMeterStore(ch);
    /** The usage of one round's meters, as the evaluation writes it, and what Stripe must then hold. */
    const usage = (ms: MeterDefinition[]) => {
      const expected = new Map<string, bigint>();
      const rows = [];
      for (const m of ms) {
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
            const key = `${m.stripe!.event_name}/${customer}`;
            expected.set(key, (expected.get(key) ?? 0n) + value);
          }
        }
      }
      return { rows, expected };
    };
    for (const name of roundNames) await store.writeUsage(usage(roundMeters(name)).rows, now, 1n);
    const expectedEvents = roundMeters('x').length * CUSTOMERS * HOURS;

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

    const problems: string[] = [];
    /** Meter event calls that reached the emulator since `firstRequest`: their rate and busiest second. */
    const atStripe = async (firstRequest: number, side: string) => {
      const arrivals = (
        await emulator.ask<number[]>({
          op: 'arrivals',
          path: '/v1/billing/meter_events',
          sinceIndex: firstRequest,
        })
      ).sort((x, y) => x - y);
      const peak = maxPerWindow(arrivals);
      if (peak > LIMIT)
        problems.push(`${side}: ${peak} meter event calls in one 1000 ms window, over the limit of ${LIMIT}`);
      const spanSeconds = (arrivals.at(-1)! - arrivals[0]!) / 1000;
      return { eventsPerS: (arrivals.length - 1) / spanSeconds, peak, calls: arrivals.length };
    };

    // The reference: the same number of meter event calls sent straight through the same gateway (its
    // rate limiter included), SYNC_CONCURRENCY at a time, with nothing around them: no usage read, no
    // ledger, no intent stored before a call. What this machine can do at this limit.
    const reference = async (round: number) => {
      const [m] = roundMeters(`ref_${roundName(round)}`);
      const firstRequest = await emulator.ask<number>({ op: 'requestCount' });
      const started = performance.now();
      let next = 0;
      await Promise.all(
        Array.from({ length: config.stripe.syncConcurrency }, async () => {
          while (next < expectedEvents) {
            const i = next++;
            await gateway.send({
              eventName: m!.stripe!.event_name,
              identifier: `ref-${roundName(round)}-${i}`,
              timestamp: new Date(lastClosed),
              stripeCustomerId: customers[i % customers.length]!,
              value: 1n,
            });
          }
        }),
      );
      const seconds = (performance.now() - started) / 1000;
      return { ...(await atStripe(firstRequest, `reference round ${round}`)), seconds, sent: expectedEvents };
    };
    const ours = async (round: number) => {
      const ms = roundMeters(roundName(round));
      const firstRequest = await emulator.ask<number>({ op: 'requestCount' });
      const started = performance.now();
      const report = await sync.run(ms);
      const seconds = (performance.now() - started) / 1000;
      if (report.sent !== expectedEvents)
        problems.push(
          `round ${round}: sent ${report.sent} of ${expectedEvents} events (${JSON.stringify(report)})`,
        );
      const totals = await emulator.ask<Record<string, string>>({ op: 'totals' });
      for (const [key, value] of usage(ms).expected) {
        const total = BigInt(totals[key] ?? '0');
        if (total !== value) problems.push(`${key}: Stripe holds ${total}, usage ${value}`);
      }
      return { ...(await atStripe(firstRequest, `sync round ${round}`)), seconds, sent: report.sent };
    };

    const cpuBefore = process.cpuUsage();
    const rounds = await interleavedPairs({
      names: { reference: 'bare gateway', ours: 'sync' },
      reference,
      ours,
      // Of the rates at Stripe: the sync's against what the bare calls reach under the same limiter.
      ratio: (ref, our) => our.eventsPerS / ref.eventsPerS,
      show: (m) =>
        `${m.eventsPerS.toFixed(1)} calls/s (${(m.eventsPerS / LIMIT).toFixed(3)} of the limit, peak ${m.peak})`,
    });
    const cpu = process.cpuUsage(cpuBefore);
    // The next hourly run with nothing new: what a run costs once everything is in Stripe.
    const idleStarted = performance.now();
    const idle = await sync.run(roundMeters(roundName(PAIRS)));
    const idleSeconds = (performance.now() - idleStarted) / 1000;
    if (idle.keysChecked !== 0)
      problems.push(`a run with nothing new still looked at ${idle.keysChecked} keys`);

    const ourRounds = rounds.pairs.map((p) => p.ours);
    const eventsPerS = median(ourRounds.map((r) => r.eventsPerS));
    const limitRatios = ourRounds.map((r) => r.eventsPerS / LIMIT);
    const seconds = median(ourRounds.map((r) => r.seconds));
    const peak = Math.max(...rounds.pairs.flatMap((p) => [p.ours.peak, p.reference.peak]));
    console.log(
      `synced ${expectedEvents} events per round for ${CUSTOMERS} customers × 2 meters × ${HOURS} hours in ${seconds.toFixed(2)} s (median); latency ${LATENCY_MS} ms; peak ${peak} calls in 1 s; this process used ${((cpu.user + cpu.system) / 1e6).toFixed(2)} s of CPU over all rounds (the emulator thread's included)`,
    );
    console.log(
      `sync at Stripe, of the limit: median ${median(limitRatios).toFixed(3)} (min ${Math.min(...limitRatios).toFixed(3)}, max ${Math.max(...limitRatios).toFixed(3)}); bare gateway ${(medianOf(rounds.pairs, 'reference', (r) => r.eventsPerS) / LIMIT).toFixed(3)}`,
    );
    console.log(`sync against the bare gateway: ${pairsLine(rounds)}`);
    for (const p of problems.slice(0, 10)) console.error(`FAIL: ${p}`);
    console.log(
      JSON.stringify({
        events_per_s: Math.round(eventsPerS * 10) / 10,
        limit_per_s: LIMIT,
        ratio: Math.round(median(limitRatios) * 1000) / 1000,
        limit_ratio_min: Math.round(Math.min(...limitRatios) * 1000) / 1000,
        limit_ratio_max: Math.round(Math.max(...limitRatios) * 1000) / 1000,
        reference_events_per_s:
          Math.round(medianOf(rounds.pairs, 'reference', (r) => r.eventsPerS) * 10) / 10,
        ...pairsFields(rounds),
        peak_per_1s_window: peak,
        events: expectedEvents,
        calls: ourRounds.at(-1)!.calls,
        customers: CUSTOMERS,
        run_seconds: Math.round(seconds * 100) / 100,
        run_events_per_s: Math.round((expectedEvents / seconds) * 10) / 10,
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

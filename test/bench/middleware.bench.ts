/**
 * What does request logging cost an API? Requests/s of one small Express API (GET /RetrieveCreditScore →
 * small JSON) three ways, in one run: no middleware, our expressMiddleware, and npm moesif-nodejs (batching
 * on, its defaults). Both middlewares send to a local catcher that answers at once, so the difference is
 * the middleware's own cost.
 *
 *   npx tsx test/bench/middleware.bench.ts
 *   env: BENCH_REQUESTS (20000 measured requests per variant), BENCH_BURST (2000), BENCH_WARMUP (3000),
 *        BENCH_CONCURRENCY (50), BENCH_TIMEOUT_MS (300000), BENCH_MOESIF_LOG_BODY=1 (Moesif with bodies),
 *        BENCH_PROFILE_DIR (CPU profiles of the API processes)
 *
 * Layout, chosen for a small shared machine (2 cores, other jobs running):
 * - each variant's API runs in a child process of its own (no JIT or global state shared between
 *   variants); this process runs the load generator (node:http, one keep-alive Agent per variant,
 *   CONCURRENCY requests in flight, a fixed count) and the catcher, which only buffers bodies while
 *   the load runs;
 * - the measured requests come in interleaved pairs (support-pairs.ts, BENCH_PAIRS, default 3): a
 *   reference side measures Moesif's overhead, an ours side ours, each from bursts of BENCH_BURST that
 *   alternate with bursts to the baseline API (BENCH_REQUESTS / BENCH_PAIRS requests per variant and
 *   side), so each overhead is taken against a baseline measured seconds away. A pair's ratio is our
 *   overhead over Moesif's; a variant's req/s in the table is its requests over the time its bursts took;
 * - the API process's CPU time per request (after warm-up, until its middleware delivered everything) is
 *   reported too: it is the steadier number when the machine is busy.
 *
 * Last line of output: {"baseline_rps","ours_rps","moesif_rps","ours_overhead","moesif_overhead",
 * "ratio_median","ratio_min","ratio_max",...}, where overhead = 1 - rps / baseline_rps over all bursts and
 * the ratios are the pairs' (our overhead / Moesif's). Only loopback addresses are used; the run stops by itself.
 */
import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import { startBenchCatcher } from './support-catcher.ts';
import { PAIRS, interleavedPairs, medianOf, pairsFields, pairsLine } from './support-pairs.ts';

type Variant = 'baseline' | 'ours' | 'moesif';
const VARIANTS: readonly Variant[] = ['baseline', 'ours', 'moesif'];

function envInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`${name} must be a positive integer, got ${raw}`);
  return n;
}

const REQUESTS = envInt('BENCH_REQUESTS', 20_000);
const BURST = Math.min(envInt('BENCH_BURST', 2_000), REQUESTS);
const WARMUP = envInt('BENCH_WARMUP', 3_000);
const CONCURRENCY = envInt('BENCH_CONCURRENCY', 50);
const TIMEOUT_MS = envInt('BENCH_TIMEOUT_MS', 300_000);
const SERVER_SCRIPT = fileURLToPath(new URL('./support-express-server.ts', import.meta.url));

interface Server {
  variant: Variant;
  child: ChildProcess;
  port: number;
  agent: http.Agent;
  /** Measured requests so far, their total wall time and latencies. */
  requests: number;
  seconds: number;
  errors: number;
  latencies: number[];
}

/** Sends `count` GETs with CONCURRENCY in flight; a request that takes over 10 s counts as an error. */
async function burst(server: Server, count: number, record: boolean): Promise<void> {
  let issued = 0;
  const one = (i: number): Promise<void> =>
    new Promise((resolve) => {
      const started = performance.now();
      const done = (ok: boolean): void => {
        if (record) {
          server.latencies.push(performance.now() - started);
          if (!ok) server.errors++;
        }
        resolve();
      };
      const req = http.get(
        {
          host: '127.0.0.1',
          port: server.port,
          path: '/RetrieveCreditScore',
          agent: server.agent,
          headers: { 'x-company-id': `co_${String((i % 20) + 1).padStart(3, '0')}`, 'user-agent': 'bench/1' },
        },
        (res) => {
          res.resume();
          res.on('end', () => done(res.statusCode === 200));
          res.on('error', () => done(false));
        },
      );
      req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
      req.on('error', () => done(false));
    });
  const worker = async (): Promise<void> => {
    while (issued < count) await one(issued++);
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, count) }, worker));
  if (record) {
    server.seconds += (performance.now() - started) / 1000;
    server.requests += count;
  }
}

function waitFor<T>(child: ChildProcess, type: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMessage = (message: unknown): void => {
      if (message && typeof message === 'object' && (message as { type?: unknown }).type === type) {
        child.off('message', onMessage);
        child.off('exit', onExit);
        resolve(message as T);
      }
    };
    const onExit = (code: number | null): void =>
      reject(new Error(`bench server exited (${code}) before '${type}'`));
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}

const children = new Set<ChildProcess>();

async function start(variant: Variant, catcherPort: number): Promise<Server> {
  const child = fork(SERVER_SCRIPT, [variant, String(catcherPort)], {
    // BENCH_PROFILE_DIR: CPU profiles of the API processes (one file per variant's process).
    execArgv: [
      '--import',
      'tsx',
      ...(process.env.BENCH_PROFILE_DIR
        ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE_DIR}`]
        : []),
    ],
    stdio: 'inherit',
  });
  children.add(child);
  const { port } = await waitFor<{ port: number }>(child, 'ready');
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  return { variant, child, port, agent, requests: 0, seconds: 0, errors: 0, latencies: [] };
}

async function stop(server: Server): Promise<{ cpuMicros: number; stats: unknown }> {
  server.agent.destroy();
  const stopped = waitFor<{ cpuMicros: number; stats: unknown }>(server.child, 'stopped');
  server.child.send('stop');
  const result = await stopped;
  await new Promise<void>((resolve) =>
    server.child.exitCode === null ? server.child.once('exit', () => resolve()) : resolve(),
  );
  children.delete(server.child);
  return result;
}

function percentile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
}

async function main(): Promise<void> {
  const catcher = await startBenchCatcher();
  try {
    const servers: Server[] = [];
    for (const variant of VARIANTS) servers.push(await start(variant, catcher.port));
    for (const server of servers) {
      await burst(server, WARMUP, false);
      const marked = waitFor(server.child, 'marked');
      server.child.send('mark');
      await marked;
    }

    // Interleaved pairs (support-pairs.ts; the warm-up is the WARMUP requests above): a reference side
    // measures Moesif's overhead, an ours side ours, each against the baseline API in alternating bursts
    // within the side, so every overhead is taken against a baseline measured seconds away from it.
    // A pair's ratio is our overhead over Moesif's (target <= 0.25).
    const [baseline, oursServer, moesifServer] = servers as [Server, Server, Server];
    const perSide = Math.ceil(REQUESTS / PAIRS);
    const overheadAgainstBaseline = async (variant: Server): Promise<number> => {
      let baselineSeconds = 0;
      let variantSeconds = 0;
      for (let sent = 0, k = 0; sent < perSide; sent += BURST, k++) {
        const count = Math.min(BURST, perSide - sent);
        const order = k % 2 === 0 ? [baseline, variant] : [variant, baseline];
        for (const server of order) {
          const before = server.seconds;
          await burst(server, count, true);
          if (server === baseline) baselineSeconds += server.seconds - before;
          else variantSeconds += server.seconds - before;
        }
      }
      return 1 - baselineSeconds / variantSeconds;
    };
    const rounds = await interleavedPairs({
      names: { reference: 'moesif overhead', ours: 'our overhead' },
      reference: () => overheadAgainstBaseline(moesifServer),
      ours: () => overheadAgainstBaseline(oursServer),
      ratio: (moesifOverhead, ourOverhead) => ourOverhead / moesifOverhead,
      show: (overhead) => `${(overhead * 100).toFixed(1)}%`,
      warmupRounds: 0,
    });

    const results = new Map<
      Variant,
      { rps: number; cpu: number; p50: number; p99: number; errors: number; delivered: string }
    >();
    for (const server of servers) {
      const { cpuMicros } = await stop(server);
      const sorted = server.latencies.sort((a, b) => a - b);
      results.set(server.variant, {
        rps: server.requests / server.seconds,
        cpu: cpuMicros / server.requests,
        p50: percentile(sorted, 0.5),
        p99: percentile(sorted, 0.99),
        errors: server.errors,
        delivered: '-',
      });
    }
    const counts = catcher.count();
    results.get('ours')!.delivered = `${counts.ours}/${WARMUP + oursServer.requests}`;
    results.get('moesif')!.delivered = `${counts.moesif}/${WARMUP + moesifServer.requests}`;

    const baselineRps = results.get('baseline')!.rps;
    const overhead = (variant: Variant): number =>
      Number((1 - results.get(variant)!.rps / baselineRps).toFixed(4));
    console.log(
      `Express GET /RetrieveCreditScore: ${perSide} requests per side and pair (${rounds.pairs.length} pairs) in bursts of ${BURST} (after ${WARMUP} warm-up), concurrency ${CONCURRENCY}, Node ${process.version}`,
    );
    console.log('variant     req/s  overhead  API cpu µs/req  p50 ms  p99 ms  errors  events delivered');
    for (const variant of VARIANTS) {
      const r = results.get(variant)!;
      const share = variant === 'baseline' ? '-' : `${(overhead(variant) * 100).toFixed(1)}%`;
      console.log(
        [
          variant.padEnd(8),
          r.rps.toFixed(0).padStart(8),
          share.padStart(8),
          r.cpu.toFixed(0).padStart(14),
          r.p50.toFixed(2).padStart(6),
          r.p99.toFixed(2).padStart(6),
          String(r.errors).padStart(6),
          ` ${r.delivered}`,
        ].join('  '),
      );
    }
    console.log(`our overhead over Moesif's: ${pairsLine(rounds)} (target median <= 0.25)`);
    console.log(
      JSON.stringify({
        baseline_rps: Math.round(baselineRps),
        ours_rps: Math.round(results.get('ours')!.rps),
        moesif_rps: Math.round(results.get('moesif')!.rps),
        ours_overhead: overhead('ours'),
        moesif_overhead: overhead('moesif'),
        ratio: rounds.ratio_median,
        ...pairsFields(rounds),
        ours_overhead_median: Number(medianOf(rounds.pairs, 'ours', (o) => o).toFixed(4)),
        moesif_overhead_median: Number(medianOf(rounds.pairs, 'reference', (o) => o).toFixed(4)),
      }),
    );
  } finally {
    await catcher.close();
  }
}

const deadline = setTimeout(() => {
  console.error(`middleware bench: gave up after ${TIMEOUT_MS} ms`);
  for (const child of children) child.kill('SIGKILL');
  process.exit(1);
}, TIMEOUT_MS);
deadline.unref();

try {
  await main();
} catch (err) {
  console.error(err);
  process.exitCode = 1;
} finally {
  for (const child of children) child.kill('SIGKILL');
}

/**
 * What does request logging cost an API? Requests/s of one small Express API (GET /RetrieveCreditScore →
 * small JSON) three ways, in one run: no middleware, our expressMiddleware, and npm moesif-nodejs. Both
 * middlewares send to a local catcher that answers at once, so the number is the middleware's own cost.
 *
 *   npx tsx test/bench/middleware.bench.ts
 *   env: BENCH_REQUESTS (20000 per measurement), BENCH_WARMUP (3000), BENCH_CONCURRENCY (50),
 *        BENCH_ROUNDS (2), BENCH_TIMEOUT_MS (240000), BENCH_MOESIF_LOG_BODY=1 (Moesif with bodies)
 *
 * Layout (fair on a 2-core machine): the API runs in a child process of its own, a fresh one for every
 * measurement (no JIT or global state carried between variants); this process runs the load generator
 * (node:http, keep-alive Agent, CONCURRENCY requests in flight, a fixed count) and the catcher, which only
 * buffers bodies while the load runs. Variants are measured round-robin, ROUNDS times, and each variant's
 * best round is reported, so a background hiccup does not land on one variant only.
 *
 * Last line of output: {"baseline_rps","ours_rps","moesif_rps","ours_overhead","moesif_overhead"}, where
 * overhead = 1 - rps / baseline_rps. Only loopback addresses are used; the run stops by itself.
 */
import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import { startBenchCatcher } from './support-catcher.ts';

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
const WARMUP = envInt('BENCH_WARMUP', 3_000);
const CONCURRENCY = envInt('BENCH_CONCURRENCY', 50);
const ROUNDS = envInt('BENCH_ROUNDS', 2);
const TIMEOUT_MS = envInt('BENCH_TIMEOUT_MS', 240_000);
const SERVER_SCRIPT = fileURLToPath(new URL('./support-express-server.ts', import.meta.url));

interface LoadResult {
  rps: number;
  ok: number;
  errors: number;
  p50: number;
  p99: number;
}

interface Measurement extends LoadResult {
  variant: Variant;
  round: number;
  /** Events the catcher received for this run (warm-up included). */
  delivered: number;
  /** CPU time (user + system) the API process spent per measured request, background work included. */
  cpuMicrosPerRequest: number;
  childStats: unknown;
}

/** Sends `count` GETs with `concurrency` in flight; a request that takes over 10 s counts as an error. */
async function load(port: number, count: number, concurrency: number): Promise<LoadResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const latencies = new Float64Array(count);
  let issued = 0;
  let ok = 0;
  let errors = 0;
  const one = (i: number): Promise<void> =>
    new Promise((resolve) => {
      const started = performance.now();
      const req = http.get(
        {
          host: '127.0.0.1',
          port,
          path: '/RetrieveCreditScore',
          agent,
          headers: { 'x-company-id': `co_${String((i % 20) + 1).padStart(3, '0')}`, 'user-agent': 'bench/1' },
        },
        (res) => {
          res.resume();
          res.on('end', () => {
            latencies[i] = performance.now() - started;
            if (res.statusCode === 200) ok++;
            else errors++;
            resolve();
          });
          res.on('error', () => {
            errors++;
            resolve();
          });
        },
      );
      req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
      req.on('error', () => {
        errors++;
        resolve();
      });
    });
  const worker = async (): Promise<void> => {
    while (issued < count) await one(issued++);
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  const seconds = (performance.now() - started) / 1000;
  agent.destroy();
  const sorted = Array.from(latencies).sort((a, b) => a - b);
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
  return { rps: count / seconds, ok, errors, p50: at(0.5), p99: at(0.99) };
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
    const onExit = (code: number | null): void => reject(new Error(`bench server exited (${code}) before '${type}'`));
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}

const children = new Set<ChildProcess>();

async function measure(variant: Variant, round: number, catcherPort: number): Promise<Omit<Measurement, 'delivered'>> {
  const child = fork(SERVER_SCRIPT, [variant, String(catcherPort)], { execArgv: ['--import', 'tsx'], stdio: 'inherit' });
  children.add(child);
  try {
    const { port } = await waitFor<{ port: number }>(child, 'ready');
    await load(port, WARMUP, CONCURRENCY);
    const marked = waitFor(child, 'marked');
    child.send('mark');
    await marked;
    const result = await load(port, REQUESTS, CONCURRENCY);
    const measured = waitFor<{ cpuMicros: number }>(child, 'measured');
    child.send('measure');
    const { cpuMicros } = await measured;
    const stopped = waitFor<{ stats: unknown }>(child, 'stopped');
    child.send('stop');
    const { stats } = await stopped;
    await new Promise<void>((resolve) => (child.exitCode === null ? child.once('exit', () => resolve()) : resolve()));
    return { variant, round, ...result, cpuMicrosPerRequest: cpuMicros / REQUESTS, childStats: stats };
  } finally {
    if (child.exitCode === null) child.kill();
    children.delete(child);
  }
}

async function main(): Promise<void> {
  const catcher = await startBenchCatcher();
  const measurements: Measurement[] = [];
  try {
    for (let round = 1; round <= ROUNDS; round++) {
      for (const variant of VARIANTS) {
        catcher.reset();
        const m = await measure(variant, round, catcher.port);
        const counts = catcher.count();
        const delivered = variant === 'moesif' ? counts.moesif : counts.ours;
        measurements.push({ ...m, delivered });
        console.error(
          `round ${round} ${variant.padEnd(8)} ${m.rps.toFixed(0).padStart(7)} req/s  cpu ${m.cpuMicrosPerRequest.toFixed(0)} µs/req  p50 ${m.p50.toFixed(2)} ms  p99 ${m.p99.toFixed(2)} ms  errors ${m.errors}  delivered ${delivered}`,
        );
      }
    }
  } finally {
    await catcher.close();
  }

  const best = new Map<Variant, Measurement>();
  for (const m of measurements) {
    const current = best.get(m.variant);
    if (!current || m.rps > current.rps) best.set(m.variant, m);
  }
  const rps = (variant: Variant): number => best.get(variant)?.rps ?? 0;
  const baseline = rps('baseline');
  const overhead = (variant: Variant): number => Number((1 - rps(variant) / baseline).toFixed(4));

  const expectedEvents = WARMUP + REQUESTS;
  console.log(`\nExpress GET /RetrieveCreditScore, ${REQUESTS} requests (after ${WARMUP} warm-up), concurrency ${CONCURRENCY}, best of ${ROUNDS} rounds, Node ${process.version}`);
  console.log('variant    req/s  overhead  API cpu µs/req  p50 ms  p99 ms  errors  events delivered');
  for (const variant of VARIANTS) {
    const m = best.get(variant)!;
    const delivered = variant === 'baseline' ? '-' : `${m.delivered}/${expectedEvents}`;
    console.log(
      `${variant.padEnd(8)} ${m.rps.toFixed(0).padStart(7)}  ${variant === 'baseline' ? '       -' : `${(overhead(variant) * 100).toFixed(1).padStart(7)}%`}  ${m.cpuMicrosPerRequest.toFixed(0).padStart(14)}  ${m.p50.toFixed(2).padStart(6)}  ${m.p99.toFixed(2).padStart(6)}  ${String(m.errors).padStart(6)}  ${delivered}`,
    );
  }
  console.log(
    JSON.stringify({
      baseline_rps: Math.round(baseline),
      ours_rps: Math.round(rps('ours')),
      moesif_rps: Math.round(rps('moesif')),
      ours_overhead: overhead('ours'),
      moesif_overhead: overhead('moesif'),
    }),
  );
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

/**
 * How fast is the entitlement check? GET /v1/customers/:id/access at a fixed rate (default 5,000
 * requests/s), answered by the service's own app (createApp, its governance decided from memory) with
 * 10,000 customers in the membership snapshot, a third of them blocked by one of three rules. Latency is
 * measured from each request's scheduled send time (so a stall counts against every request it
 * delays), over BENCH_SECONDS after a warm-up (3,000 sequential requests, then BENCH_WARMUP_SECONDS at the rate). Then the ingest middleware's added cost per call: a Koa
 * API with koaMiddleware and one with governedKoaMiddleware (its rules fetched from the same app),
 * called alternately in rounds, mean latency per call each; added = governed − plain.
 *
 *   npm run bench:access
 *   env: BENCH_RATE (5000), BENCH_SECONDS (5), BENCH_WARMUP_SECONDS (1), BENCH_MIDDLEWARE_CALLS (4000)
 *
 * The app runs in a child process of its own (this script, BENCH_ROLE=service), the load generator
 * here, so each has a core; on a shared machine the numbers include what the other jobs take.
 * Last line: {"rate","requests","errors","p50_ms","p99_ms","max_ms","middleware_plain_ms",
 * "middleware_governed_ms","middleware_added_ms"}.
 */
import { fork } from 'node:child_process';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import Koa from 'koa';
import { koaMiddleware, governedKoaMiddleware } from '../../ingest/index.ts';
import { CustomerMappingService } from '../../src/billing/stripe/customer-directory.ts';
import {
  InMemoryBillingStateStore,
  InMemoryCustomerIndex,
  InMemoryCustomerMappingStore,
} from '../../src/billing/stripe/in-memory-billing-stores.ts';
import { CurrentUsage } from '../../src/governance/current-usage.ts';
import { Governance } from '../../src/governance/governance.ts';
import { parseRuleText } from '../../src/governance/load-rules.ts';
import { Membership } from '../../src/governance/membership.ts';
import { createApp } from '../../src/http/app.ts';
import type { MeterDefinition } from '../../src/meters/meter-schema.ts';
import { ADMIN_KEY, inMemoryStripeSide, stubAppDeps } from '../support/webhook-fixtures.ts';

const envInt = (name: string, fallback: number): number => {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`${name} must be a positive integer, got ${raw}`);
  return n;
};
const RATE = envInt('BENCH_RATE', 5000);
const SECONDS = envInt('BENCH_SECONDS', 5);
const WARMUP_SECONDS = envInt('BENCH_WARMUP_SECONDS', 1);
const MIDDLEWARE_CALLS = envInt('BENCH_MIDDLEWARE_CALLS', 4000);
const CUSTOMERS = 10_000;
const INGEST_KEY = 'b'.repeat(50);

const meters = [{ name: 'calls', unit: 'calls', quota: 100 }] as unknown as MeterDefinition[];
const rule = (text: string) => {
  const r = parseRuleText(text, 'bench.yaml', meters);
  if ('errors' in r) throw new Error(r.errors[0]!.message);
  return r.rule;
};

async function governance(): Promise<Governance> {
  const usage = new Map<string, bigint>();
  const customers = new InMemoryCustomerIndex();
  const mappings = new CustomerMappingService(new InMemoryCustomerMappingStore());
  for (let i = 0; i < CUSTOMERS; i++) {
    const key = `co${i}`;
    customers.keys.add(key);
    usage.set(key, BigInt(i % 3 === 0 ? 150 : 5));
    if (i % 3 !== 1) await mappings.map(key, `cus_${i}x`, 'admin');
  }
  const current = new CurrentUsage({ source: { period: async () => usage }, meters: () => meters });
  const membership = new Membership({
    usage: current,
    directory: mappings,
    states: new InMemoryBillingStateStore(),
    customers,
    meters: () => meters,
  });
  const g = new Governance(membership);
  g.replaceRules([
    rule('name: unpaid\napplies_to: {status: unpaid}\n'),
    rule(
      "name: over-quota\napplies_to: {status: over_quota}\nwhen: {routes: ['/v1/**'], methods: [GET, POST]}\nresponse: {body: {error: '{{customer}} used {{usage}} of {{quota}}'}}\n",
    ),
    rule('name: unmapped\napplies_to: {status: unmapped}\nwhen: {methods: [POST]}\n'),
  ]);
  await current.refresh();
  await membership.refresh();
  return g;
}

const listen = async (handler: http.RequestListener) => {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
};

function get(agent: http.Agent, url: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent, headers }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
  });
}

const quantile = (sorted: number[], q: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
const round = (n: number) => Math.round(n * 1000) / 1000;

async function fixedRate(url: string): Promise<{ latencies: number[]; errors: number }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  const headers = { authorization: `Bearer ${ADMIN_KEY}` };
  const latencies: number[] = [];
  let errors = 0;
  // JIT and connections first, one request at a time, so the fixed rate does not start on a cold process.
  for (let i = 0; i < 3000; i++)
    await get(agent, `${url}/v1/customers/co${i}/access?route=/v1/score`, headers);
  const total = RATE * (SECONDS + WARMUP_SECONDS);
  const warmup = RATE * WARMUP_SECONDS;
  const pending: Promise<void>[] = [];
  const start = performance.now();
  for (let i = 0; i < total;) {
    const now = performance.now();
    // Send every request whose time has come; then yield to the event loop to read answers.
    while (i < total && start + (i * 1000) / RATE <= now) {
      const scheduled = start + (i * 1000) / RATE;
      const measured = i >= warmup;
      const path = `/v1/customers/co${i % CUSTOMERS}/access?route=/v1/score&method=GET`;
      pending.push(
        get(agent, `${url}${path}`, headers).then(
          (status) => {
            if (status !== 200) errors++;
            if (measured) latencies.push(performance.now() - scheduled);
          },
          () => void errors++,
        ),
      );
      i++;
    }
    await new Promise((resolve) => setImmediate(resolve));
  }
  await Promise.all(pending);
  agent.destroy();
  return { latencies, errors };
}

async function middlewareCost(serviceUrl: string): Promise<{ plain: number; governed: number }> {
  const sink = await listen((req, res) => {
    req.resume();
    req.on('end', () => {
      res.statusCode = 202;
      res.end('{"accepted":0,"unattributed":0}');
    });
  });
  const forwarderOptions = {
    baseUrl: sink.url,
    apiKey: INGEST_KEY,
    identify: (req: http.IncomingMessage) => ({ company_id: String(req.headers['x-company-id']) }),
  };
  const plainMw = koaMiddleware(forwarderOptions);
  const governedMw = governedKoaMiddleware({
    ...forwarderOptions,
    governance: { baseUrl: serviceUrl, apiKey: INGEST_KEY },
  });
  await governedMw.governor.refresh();
  if (governedMw.governor.lastRefreshAt === 0)
    throw new Error('the governed middleware could not fetch its rules');
  const api = (mw: typeof plainMw | typeof governedMw) => {
    const app = new Koa();
    app.use(mw);
    app.use((ctx) => {
      ctx.body = { score: 742 };
    });
    return listen(app.callback());
  };
  const plain = await api(plainMw);
  const governed = await api(governedMw);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const totals = { plain: 0, governed: 0 };
  const ROUND = 200;
  for (let done = 0; done < MIDDLEWARE_CALLS; done += ROUND) {
    // Alternating which goes first, so a drift in machine load falls on both.
    const order = [
      ['plain', plain],
      ['governed', governed],
    ] as const;
    for (const [name, target] of done % (2 * ROUND) === 0 ? order : [...order].reverse()) {
      const t0 = performance.now();
      // Served companies (co1, co4, …: mapped, under quota), so both APIs do the same work after the decision.
      for (let i = 0; i < ROUND; i++)
        await get(agent, `${target.url}/v1/score`, { 'x-company-id': `co${(3 * i + 1) % CUSTOMERS}` });
      if (done >= ROUND) totals[name] += performance.now() - t0; // first round: warm-up
    }
  }
  agent.destroy();
  governedMw.governor.close();
  await plainMw.forwarder.close();
  await governedMw.forwarder.close();
  for (const s of [plain, governed, sink]) s.server.close();
  const measured = MIDDLEWARE_CALLS - ROUND;
  return { plain: totals.plain / measured, governed: totals.governed / measured };
}

async function serve(): Promise<void> {
  const g = await governance();
  const deps = stubAppDeps(inMemoryStripeSide());
  deps.keys = {
    ...deps.keys,
    authenticate: async (key) => (key === INGEST_KEY ? ({ keyId: 'bench' } as never) : undefined),
  };
  const { url } = await listen(createApp({ ...deps, governance: g }).callback());
  process.send?.({ url });
}

if (process.env.BENCH_ROLE === 'service') {
  await serve();
} else {
  await main();
}

async function main(): Promise<void> {
  const child = fork(fileURLToPath(import.meta.url), [], {
    env: { ...process.env, BENCH_ROLE: 'service' },
    execArgv: ['--import', 'tsx'],
  });
  const service = await new Promise<{ url: string }>((resolve, reject) => {
    child.once('message', (m) => resolve(m as { url: string }));
    child.once('exit', (code) => reject(new Error(`the service process exited (${code})`)));
  });
  console.log(`access: ${RATE} req/s for ${SECONDS}s (+${WARMUP_SECONDS}s warm-up), ${CUSTOMERS} customers`);
  const { latencies, errors } = await fixedRate(service.url);
  latencies.sort((a, b) => a - b);
  console.log(
    `access: p50 ${round(quantile(latencies, 0.5))} ms, p99 ${round(quantile(latencies, 0.99))} ms, errors ${errors}`,
  );
  const mw = await middlewareCost(service.url);
  console.log(`middleware: plain ${round(mw.plain)} ms/call, governed ${round(mw.governed)} ms/call`);
  child.kill();
  console.log(
    JSON.stringify({
      rate: RATE,
      requests: latencies.length,
      errors,
      p50_ms: round(quantile(latencies, 0.5)),
      p99_ms: round(quantile(latencies, 0.99)),
      max_ms: round(latencies[latencies.length - 1] ?? 0),
      middleware_plain_ms: round(mw.plain),
      middleware_governed_ms: round(mw.governed),
      middleware_added_ms: round(mw.governed - mw.plain),
    }),
  );
  process.exit(0);
}

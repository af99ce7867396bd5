/**
 * Deterministic sample request logs of a credit-score API, for the demo and the benchmarks. The same
 * options always give the same records, ids included (a seeded PRNG, no Math.random or clock), so a
 * generated file can be committed, diffed and re-sent without double counting.
 *
 * Shape of the traffic: mostly POST /RetrieveCreditScore, some /RetrieveCreditReport (bigger responses,
 * slower), /v1/accounts/acc_NNNNNN reads and updates; ~88% 200 with 400/401/404/429/500 mixed in;
 * companies `co_001`… with a skewed share of traffic (a few big customers), users `usr_0001`… each
 * belonging to one company, and `metadata.plan` fixed per company.
 */
import type { NativeRecord } from './native-record.ts';

export interface SampleLogOptions {
  count: number;
  /** Default 1. */
  seed?: number;
  /** Timestamps are spread evenly (with jitter) over [start, end), ascending. */
  start: Date;
  end: Date;
  /** Default 20. */
  companies?: number;
  /** Default 200 (at least one per company). */
  users?: number;
}

const PLANS = ['free', 'starter', 'growth', 'enterprise'] as const;
const HOST = 'api.credit-example.com';
const USER_AGENTS = ['credit-client-node/2.3.1', 'credit-client-python/1.9.0', 'curl/8.5.0'];

/** mulberry32: tiny, fast, good enough for sample data; not for anything secret. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** FNV-1a over the options, so different ranges/sizes with the same seed get different ids. */
function hashSeed(parts: readonly (string | number)[]): number {
  let h = 0x811c9dc5;
  for (const ch of parts.join('|')) {
    h ^= ch.charCodeAt(0);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

/** A UUID-shaped (version 4 layout) id drawn from the PRNG. */
function sampleId(random: () => number): string {
  const hex = (n: number): string =>
    Math.floor(random() * 16 ** n)
      .toString(16)
      .padStart(n, '0');
  const variant = (8 + Math.floor(random() * 4)).toString(16);
  return `${hex(8)}-${hex(4)}-4${hex(3)}-${variant}${hex(3)}-${hex(6)}${hex(6)}`;
}

function pick<T>(random: () => number, weighted: readonly (readonly [T, number])[]): T {
  let total = 0;
  for (const [, weight] of weighted) total += weight;
  let r = random() * total;
  for (const [value, weight] of weighted) {
    r -= weight;
    if (r < 0) return value;
  }
  return weighted[weighted.length - 1]![0];
}

/** Roughly log-normal latency around `median` ms. */
function latency(random: () => number, median: number): number {
  const u = random() + random() + random() - 1.5; // ~N(0, 0.5)
  return Math.round(median * Math.exp(u) * 1000) / 1000;
}

interface Route {
  method: string;
  path: (random: () => number) => string;
  /** Has an id in the path, so a 404 makes sense. */
  hasId: boolean;
  medianMs: number;
  requestBytes: [number, number];
  responseBytes: [number, number];
}

const account = (random: () => number): string =>
  `/v1/accounts/acc_${pad(Math.floor(random() * 1_000_000), 6)}`;

const ROUTES: readonly (readonly [Route, number])[] = [
  [
    {
      method: 'POST',
      path: () => '/RetrieveCreditScore',
      hasId: false,
      medianMs: 85,
      requestBytes: [180, 420],
      responseBytes: [120, 220],
    },
    70,
  ],
  [
    {
      method: 'POST',
      path: () => '/RetrieveCreditReport',
      hasId: false,
      medianMs: 260,
      requestBytes: [200, 480],
      responseBytes: [4_000, 16_000],
    },
    15,
  ],
  [
    {
      method: 'GET',
      path: account,
      hasId: true,
      medianMs: 35,
      requestBytes: [0, 0],
      responseBytes: [300, 900],
    },
    10,
  ],
  [
    {
      method: 'PATCH',
      path: account,
      hasId: true,
      medianMs: 60,
      requestBytes: [80, 300],
      responseBytes: [300, 900],
    },
    3,
  ],
  [
    {
      method: 'GET',
      path: () => '/v1/accounts',
      hasId: false,
      medianMs: 120,
      requestBytes: [0, 0],
      responseBytes: [2_000, 30_000],
    },
    2,
  ],
];

const STATUSES: readonly (readonly [number, number])[] = [
  [200, 88],
  [400, 3],
  [401, 2],
  [404, 2],
  [429, 3],
  [500, 2],
];

function between(random: () => number, [low, high]: [number, number]): number {
  return low + Math.floor(random() * (high - low + 1));
}

/** Yields `count` records in timestamp order. */
export function* generateSampleLogs(options: SampleLogOptions): Generator<NativeRecord> {
  const { count, start, end } = options;
  const seed = options.seed ?? 1;
  const companies = Math.max(1, Math.floor(options.companies ?? 20));
  const users = Math.max(companies, Math.floor(options.users ?? 200));
  const from = start.getTime();
  const span = end.getTime() - from;
  if (!Number.isSafeInteger(count) || count < 0)
    throw new RangeError(`count must be a non-negative integer, got ${count}`);
  if (!Number.isFinite(span) || span <= 0) throw new RangeError('end must be after start');

  const random = mulberry32(hashSeed([seed, count, from, span, companies, users]));
  // Company weights ~ 1/rank (Zipf-like): co_001 is the biggest customer.
  const companyWeights: [number, number][] = Array.from({ length: companies }, (_, i) => [i, 1 / (i + 1)]);
  const userWidth = Math.max(4, String(users).length);
  const companyWidth = Math.max(3, String(companies).length);

  for (let i = 0; i < count; i++) {
    const company = pick(random, companyWeights);
    // Users are assigned round-robin to companies: user u belongs to company u % companies.
    const perCompany = Math.ceil((users - company) / companies);
    const user = company + companies * Math.floor(random() * perCompany);
    const route = pick(random, ROUTES);
    let status = pick(random, STATUSES);
    if (status === 404 && !route.hasId) status = 400;
    const ok = status < 400;
    const path = route.path(random);
    const timestamp = from + Math.floor(((i + random()) / count) * span);
    const record: NativeRecord = {
      id: sampleId(random),
      timestamp: new Date(timestamp).toISOString(),
      company_id: `co_${pad(company + 1, companyWidth)}`,
      user_id: `usr_${pad(user + 1, userWidth)}`,
      method: route.method,
      path,
      host: HOST,
      status,
      latency_ms: latency(random, ok ? route.medianMs : route.medianMs / 4),
      request_bytes: between(random, route.requestBytes),
      response_bytes: ok ? between(random, route.responseBytes) : between(random, [90, 180]),
      api_version: random() < 0.8 ? '2025-06-01' : '2024-11-15',
      // Bigger customers are on bigger plans.
      metadata: { plan: PLANS[PLANS.length - 1 - (company % PLANS.length)]! },
      headers: {
        'content-type': 'application/json',
        'user-agent': USER_AGENTS[Math.floor(random() * USER_AGENTS.length)]!,
      },
    };
    yield record;
  }
}

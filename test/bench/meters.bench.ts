// npm run bench:meters — hourly meter evaluation against one hand-written ClickHouse query, on the same
// data, in one run on this machine.
//
//   1. A throwaway clickhouse-server (Debian's 18.16) on 127.0.0.1 and a database `bench_meters`.
//   2. BENCH_LOGS request logs (default 10,000,000) generated inside ClickHouse by INSERT … SELECT FROM
//      numbers(N). Every column is derived from `number` (intHash64/cityHash64, modulo; no rand), so every
//      run gives the same rows, whatever the date. They cover the 24 whole hours of one UTC day
//      (BENCH_DAY=YYYY-MM-DD, default 2028-02-29: a leap day that ends a month, the case where a bench on
//      the wall clock once evaluated nothing), 1,000 companies with a skewed share of the traffic,
//      20,000 users, mostly POST /RetrieveCreditScore, mostly 200. A second INSERT stores 0.5% of the
//      rows again, as a retried batch would, so the dedupe matters. Not timed.
//   3. `seconds`: EvaluationService.evaluateBetween over the 24 hours for every meter in meters/*.yaml
//      (it writes meter_usage), as the CLI's `meters evaluate` does, on a pinned clock: 5 minutes after
//      the day, with the meters registered before it began; the median of the pairs (step 4), with
//      the time split by port call (hourly queries, period queries, reads and writes of meter_usage).
//   4. `reference_seconds`: ONE hand-written query computing the same hourly numbers for all shipped
//      meters, in interleaved pairs with the evaluation (support-pairs.ts: a warm-up round, then
//      BENCH_PAIRS, default 3); `ratio` is the median of the pairs' ratios. Its numbers must equal what the
//      evaluation wrote to meter_usage (hourly values; the period values of non-additive meters have no
//      counterpart in it), else the bench exits with status 1.
// The last line is JSON. Bounded: BENCH_TIMEOUT_SECONDS (default 1800) stops the server and fails.
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { EvaluationService } from '../../src/meters/evaluation.ts';
import { HOUR_MS } from '../../src/time/hours.ts';
import type { UsageSource, UsageStore } from '../../src/meters/evaluation.ts';
import { loadMeters } from '../../src/meters/load-meters.ts';
import type { MeterDefinition } from '../../src/meters/meter-schema.ts';
import type { ClickHouse } from '../../src/storage/clickhouse/clickhouse.ts';
import { literal } from '../../src/sql/escape.ts';
import { ClickHouseMeterStore } from '../../src/storage/clickhouse/meter-store.ts';
import { dayFromEnv, runningClock } from '../support/clock.ts';
import { interleavedPairs, medianOf, pairsFields, pairsLine } from './support-pairs.ts';
import { generateRequestLogs } from './generated-logs.ts';
import { onBenchServer } from './support-bench-server.ts';

const LOGS = Number(process.env.BENCH_LOGS ?? 10_000_000);
const TIMEOUT_SECONDS = Number(process.env.BENCH_TIMEOUT_SECONDS ?? 1800);
const DB = 'bench_meters';
const METERS_DIR = fileURLToPath(new URL('../../meters', import.meta.url));

if (!Number.isSafeInteger(LOGS) || LOGS < 1000)
  throw new Error(`BENCH_LOGS must be an integer >= 1000, got ${process.env.BENCH_LOGS}`);

/**
 * The shipped meters the reference query was written for. If a YAML file changes, the reference must be
 * rewritten by hand: fail loudly rather than compare against the wrong query.
 */
const EXPECTED_METERS: Record<string, unknown> = {
  'monthly-active-users': {
    aggregation: { type: 'unique_count', value: 'user_id' },
    customer: 'company_id',
    filter: undefined,
  },
  'response-bytes': {
    aggregation: { type: 'sum', value: 'response_bytes' },
    customer: 'company_id',
    filter: undefined,
  },
  'retrieve-credit-score': {
    aggregation: { type: 'count', value: undefined },
    customer: 'company_id',
    filter: { routes: ['/RetrieveCreditScore'], status: [200] },
  },
};

function checkMeters(meters: MeterDefinition[]): void {
  const shape = (m: MeterDefinition) =>
    JSON.stringify({
      aggregation: { type: m.aggregation.type, value: m.aggregation.value },
      customer: m.customer,
      filter: m.filter === undefined || Object.keys(m.filter).length === 0 ? undefined : m.filter,
    });
  const names = meters.map((m) => m.name).sort();
  const problems: string[] = [];
  if (JSON.stringify(names) !== JSON.stringify(Object.keys(EXPECTED_METERS).sort())) {
    problems.push(
      `meters/ holds ${names.join(', ')}; the reference query covers ${Object.keys(EXPECTED_METERS).join(', ')}`,
    );
  }
  for (const m of meters) {
    const expected = EXPECTED_METERS[m.name];
    if (expected !== undefined && shape(m) !== JSON.stringify(expected)) {
      problems.push(`${m.name} is now ${shape(m)}; the reference query assumes ${JSON.stringify(expected)}`);
    }
  }
  if (problems.length > 0)
    throw new Error(`the hand-written reference query is out of date:\n  ${problems.join('\n  ')}`);
}

/**
 * The hand-written reference: one scan, one dedupe of (app, event_id) over the range, and the three
 * meters as conditional aggregates of the same GROUP BY. Dedupe by LIMIT 1 BY, like the compiler:
 * on 18.16 it measured faster than GROUP BY app, event_id with any() over the needed columns.
 */
function referenceQuery(from: Date, to: Date): string {
  return `
    SELECT
      company_id AS customer,
      toUInt32(toStartOfHour(request_time)) AS hour,
      toString(sumIf(sample_weight, route = '/RetrieveCreditScore' AND status = 200)) AS calls,
      toString(sum(response_bytes * sample_weight)) AS bytes,
      toString(uniqExactIf(user_id, user_id != '')) AS users
    FROM (
      SELECT company_id, request_time, route, status, response_bytes, sample_weight, user_id
      FROM ${DB}.request_logs
      WHERE request_time >= ${literal(from)} AND request_time < ${literal(to)}
      LIMIT 1 BY app, event_id
    )
    GROUP BY customer, hour`;
}

const referenceRow = z.object({
  customer: z.string(),
  hour: z.coerce.number(),
  calls: z.string(),
  bytes: z.string(),
  users: z.string(),
});
type ReferenceRow = z.infer<typeof referenceRow>;

const REFERENCE_COLUMN: Record<string, 'calls' | 'bytes' | 'users'> = {
  'retrieve-credit-score': 'calls',
  'response-bytes': 'bytes',
  'monthly-active-users': 'users',
};

/** meter \0 customer \0 hour (epoch s) → value, zero values left out (no row and a 0 row mean the same). */
type Values = Map<string, string>;
const valueKey = (meter: string, customer: string, hour: number) => `${meter}\u0000${customer}\u0000${hour}`;

function referenceValues(rows: ReferenceRow[]): Values {
  const out: Values = new Map();
  for (const row of rows) {
    for (const [meter, column] of Object.entries(REFERENCE_COLUMN)) {
      if (row[column] !== '0') out.set(valueKey(meter, row.customer, row.hour), row[column]);
    }
  }
  return out;
}

async function storedValues(ch: ClickHouse, from: Date, to: Date): Promise<Values> {
  const rows = await ch.query(
    `SELECT meter, customer, toUInt32(hour) AS hour, toString(argMax(value, revision)) AS value, uniqExact(version) AS versions
     FROM ${DB}.meter_usage
     WHERE hour >= ${literal(from)} AND hour < ${literal(to)}
     GROUP BY meter, customer, hour`,
    z.object({
      meter: z.string(),
      customer: z.string(),
      hour: z.coerce.number(),
      value: z.string(),
      versions: z.coerce.number(),
    }),
  );
  const out: Values = new Map();
  for (const r of rows) {
    if (r.versions !== 1)
      throw new Error(`meter_usage holds ${r.versions} versions of ${r.meter}; the bench expects one`);
    if (r.value !== '0') out.set(valueKey(r.meter, r.customer, r.hour), r.value);
  }
  return out;
}

/** Differences between the two, described (at most `limit`). */
function compare(evaluation: Values, reference: Values, limit = 10): string[] {
  const out: string[] = [];
  const describe = (key: string) => {
    const [meter, customer, hour] = key.split('\u0000');
    return `${meter} ${customer === '' ? "''" : customer} ${new Date(Number(hour) * 1000).toISOString()}`;
  };
  for (const [key, value] of reference) {
    const got = evaluation.get(key) ?? '0';
    if (got !== value) out.push(`${describe(key)}: evaluation ${got}, reference ${value}`);
  }
  for (const [key, value] of evaluation) {
    if (!reference.has(key)) out.push(`${describe(key)}: evaluation ${value}, reference 0`);
  }
  return out.slice(0, limit).concat(out.length > limit ? [`… and ${out.length - limit} more`] : []);
}

// ---------------------------------------------------------------------------------------------------
// Where the evaluation's time goes: the ports, wrapped with a stopwatch.

type Kind = 'hourly' | 'period' | 'stored' | 'write' | 'bookkeeping';
interface Sample {
  meter: string;
  kind: Kind;
  ms: number;
}

function timedPorts(inner: ClickHouseMeterStore, samples: Sample[]): UsageSource & UsageStore {
  const timed = async <T>(meter: string, kind: Kind, run: () => Promise<T>): Promise<T> => {
    const started = performance.now();
    try {
      return await run();
    } finally {
      samples.push({ meter, kind, ms: performance.now() - started });
    }
  };
  return {
    hourly: (meter, from, to) => timed(meter.name, 'hourly', () => inner.hourly(meter, from, to)),
    period: (meter, from, to) => timed(meter.name, 'period', () => inner.period(meter, from, to)),
    hourlyCombined: (meters, from, to) =>
      timed(meters.map((m) => m.name).join('+'), 'hourly', () => inner.hourlyCombined(meters, from, to)),
    firstSeen: (meter, from, to) => timed(meter.name, 'period', () => inner.firstSeen(meter, from, to)),
    lateEvents: (since, before) => timed('-', 'bookkeeping', () => inner.lateEvents(since, before)),
    versions: () => timed('-', 'bookkeeping', () => inner.versions()),
    recordVersion: (record, at) => timed(record.meter, 'bookkeeping', () => inner.recordVersion(record, at)),
    watermark: (meter, version) => timed(meter, 'bookkeeping', () => inner.watermark(meter, version)),
    setWatermark: (meter, version, through, revision) =>
      timed(meter, 'bookkeeping', () => inner.setWatermark(meter, version, through, revision)),
    stored: (versions, from, to) =>
      timed(versions.map((v) => v.meter).join('+'), 'stored', () => inner.stored(versions, from, to)),
    storedTotals: (versions, from, to) =>
      timed(versions.map((v) => v.meter).join('+'), 'stored', () => inner.storedTotals(versions, from, to)),
    writeUsage: (rows, at, revision) =>
      timed([...new Set(rows.map((r) => r.meter))].join('+') || '-', 'write', () =>
        inner.writeUsage(rows, at, revision),
      ),
    latestRun: () => timed('-', 'bookkeeping', () => inner.latestRun()),
    recordRun: (run) => timed('-', 'bookkeeping', () => inner.recordRun(run)),
  };
}

// ---------------------------------------------------------------------------------------------------

const secondsSince = (started: number) => (performance.now() - started) / 1000;
const fmt = (s: number) => s.toFixed(3).padStart(9);

async function main(): Promise<void> {
  const day = dayFromEnv('BENCH_DAY', '2028-02-29');
  const from = day;
  const to = new Date(day.getTime() + 24 * HOUR_MS);
  const loaded = await loadMeters(METERS_DIR);
  if (loaded.errors.length > 0)
    throw new Error(`meters/ does not validate:\n${loaded.errors.map((e) => e.message).join('\n')}`);
  const meters = loaded.meters.map((m) => m.definition);
  checkMeters(meters);

  await onBenchServer(TIMEOUT_SECONDS, async (open) => {
    const ch = await open(DB);
    // Generation. Merges of request_logs are stopped first: the duplicates stay in their own part, as
    // right after a retried batch (a merge of a ReplacingMergeTree would collapse them, and how much it
    // collapses depends on timing), the layout of parts is the same in every run, and no background
    // merge competes with the timed queries.
    const generated = await generateRequestLogs(ch, DB, LOGS, day, 'unmerged');
    const [stats] = await ch.query(
      `SELECT count() AS n, uniqExact(event_id) AS events, min(request_time) = ${literal(from)} AS starts_ok,
              max(request_time) < ${literal(to)} AS ends_ok, uniqExact(company_id) AS companies, uniqExact(user_id) AS users
       FROM ${DB}.request_logs`,
      z.object({
        n: z.coerce.number(),
        events: z.coerce.number(),
        starts_ok: z.coerce.number(),
        ends_ok: z.coerce.number(),
        companies: z.coerce.number(),
        users: z.coerce.number(),
      }),
    );
    if (!stats || stats.events !== LOGS || stats.n !== generated.rows || !stats.starts_ok || !stats.ends_ok) {
      throw new Error(`generated data is not as intended: ${JSON.stringify(stats)}`);
    }

    // Interleaved pairs (support-pairs.ts): the hand-written reference, then the evaluation, after a
    // warm-up round of each. The warm-up pays what a steady hourly scheduler does not: cold page and
    // mark caches for the day's columns, first connections, the JIT of the compiler, zod and evaluation
    // code, and the copy resolution over the freshly inserted rows (once per new batch of rows, about
    // 2 s at 10M rows; see README). Rounds after it re-evaluate hours that already have stored rows, as
    // the scheduler's lateness window does every hour. A pair's ratio is evaluation over reference.
    const samples: Sample[] = [];
    const store = new ClickHouseMeterStore(ch);
    const ports = timedPorts(store, samples);
    // The service's clock, pinned, never the wall clock. It was running before the day began, so the
    // meters' first versions start with the day's month (a first version starts with the month it is
    // registered in: registered after a day that ends a month, they would leave the whole day out).
    // Then the day is over, as for the scheduler's run just after midnight; the clock advances with
    // real time so each round gets a higher revision.
    await new EvaluationService(store, store, { latenessHours: 48, now: () => from }).registerVersions(
      meters,
    );
    const evaluation = new EvaluationService(ports, ports, {
      latenessHours: 48,
      now: runningClock(new Date(to.getTime() + 5 * 60_000)),
    });

    let ranges: Awaited<ReturnType<typeof evaluation.evaluateBetween>> = [];
    let referenceRows: ReferenceRow[] = [];
    interface Round {
      seconds: number;
      samples: Sample[];
    }
    const rounds = await interleavedPairs<Round>({
      names: { reference: 'reference', ours: 'evaluation' },
      reference: async () => {
        const started = performance.now();
        referenceRows = await ch.query(referenceQuery(from, to), referenceRow);
        return { seconds: secondsSince(started), samples: [] };
      },
      ours: async () => {
        samples.length = 0;
        const started = performance.now();
        ranges = await evaluation.evaluateBetween(meters, from, to);
        return { seconds: secondsSince(started), samples: [...samples] };
      },
      ratio: (reference, ours) => ours.seconds / reference.seconds,
      show: (m) => `${m.seconds.toFixed(3)} s`,
    });
    const seconds = medianOf(rounds.pairs, 'ours', (m) => m.seconds);
    const referenceSeconds = medianOf(rounds.pairs, 'reference', (m) => m.seconds);
    // The breakdown is that of the pair whose ratio is the median (the lower middle one if even).
    const middle = [...rounds.pairs].sort((x, y) => x.ratio - y.ratio)[(rounds.pairs.length - 1) >> 1]!;
    const medianSamples = middle.ours.samples;
    const evaluationPeakRssMb = Math.round(process.resourceUsage().maxRSS / 1024);

    // Same numbers?
    const expected = referenceValues(referenceRows);
    const got = await storedValues(ch, from, to);
    const differences = compare(got, expected);
    if (ranges.length !== meters.length || ranges.some((r) => +r.from !== +from || +r.to !== +to)) {
      differences.unshift(`evaluated ranges are not the 24 hours of every meter: ${JSON.stringify(ranges)}`);
    }
    if (differences.length > 0) {
      console.error(
        `bench: the evaluation's meter_usage differs from the reference query:\n  ${differences.join('\n  ')}`,
      );
      process.exitCode = 1;
      return;
    }

    const sum = (f: (s: Sample) => boolean) => medianSamples.filter(f).reduce((t, s) => t + s.ms, 0) / 1000;
    const count = (f: (s: Sample) => boolean) => medianSamples.filter(f).length;
    console.log(`day                   ${from.toISOString()} .. ${to.toISOString()} (24 h)`);
    console.log(
      `logs                  ${LOGS} events + ${stats.n - LOGS} duplicates in ${generated.parts} parts, ${stats.companies} companies, ` +
        `${stats.users} users; generated in ${generated.seconds.toFixed(1)} s (not timed)`,
    );
    console.log(`meters                ${meters.map((m) => `${m.name} (${m.aggregation.type})`).join(', ')}`);
    console.log(`hourly rows compared  ${expected.size} (meter, company, hour) values, all equal`);
    console.log('');
    console.log('evaluation (median pair)     queries    seconds');
    // Rows under several meters joined by '+' are one query for all of them (count/sum in one scan).
    const names = [
      ...new Set([
        ...meters.map((m) => m.name),
        ...medianSamples.map((s) => s.meter).filter((n) => n.includes('+')),
      ]),
    ];
    for (const m of names.map((name) => ({ name }))) {
      for (const kind of ['hourly', 'period', 'stored', 'write'] as const) {
        const n = count((s) => s.meter === m.name && s.kind === kind);
        if (n > 0)
          console.log(
            `  ${m.name.padEnd(22)} ${kind.padEnd(7)} ${String(n).padStart(4)} ${fmt(sum((s) => s.meter === m.name && s.kind === kind))}`,
          );
      }
    }
    const bookkeeping = sum((s) => s.kind === 'bookkeeping');
    console.log(
      `  ${'versions, watermarks'.padEnd(30)} ${String(count((s) => s.kind === 'bookkeeping')).padStart(4)} ${fmt(bookkeeping)}`,
    );
    // The ranges run a few at a time (evaluation.ts), so the port calls' times overlap and their sum
    // can exceed the wall time; the rest is then not the time in Node.
    const rest = middle.ours.seconds - sum(() => true);
    console.log(
      rest >= 0
        ? `  ${'in Node (sorting, maps)'.padEnd(35)} ${fmt(rest)}`
        : `  (the ranges overlap: port calls sum to ${sum(() => true).toFixed(3)} s of ${middle.ours.seconds.toFixed(3)} s)`,
    );
    console.log('');
    console.log(
      `seconds               ${fmt(seconds)}  evaluateBetween, ${meters.length} meters x 24 h (median)`,
    );
    console.log(`reference_seconds     ${fmt(referenceSeconds)}  one hand-written GROUP BY (median)`);
    console.log(`ratio                 ${pairsLine(rounds)}`);
    console.log(
      `peak RSS              ${evaluationPeakRssMb} MB, this process (the evaluation's client side)`,
    );
    console.log(
      JSON.stringify({
        events: LOGS,
        meters: meters.length,
        seconds: Number(seconds.toFixed(3)),
        reference_seconds: Number(referenceSeconds.toFixed(3)),
        ratio: rounds.ratio_median,
        ...pairsFields(rounds),
        evaluation_peak_rss_mb: evaluationPeakRssMb,
      }),
    );
  });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});

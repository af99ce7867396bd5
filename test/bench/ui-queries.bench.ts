// npm run bench:ui-queries — the explorer's two reads (the histogram and the first page of the newest
// calls, RequestLogExplorer) against hand-written ClickHouse queries over the same rows, in one run.
//
//   1. A throwaway clickhouse-server (Debian's 18.16, support-bench-server.ts) and BENCH_LOGS request
//      logs (default 10,000,000) over one UTC day, made by bench:meters' generator (generated-logs.ts),
//      0.5% stored twice, in two databases, one per layout of the copies (DuplicateLayout):
//      `retried-batches` (the day merged, then 50 retried batches of 1,000 events, an insert each) and
//      `unmerged` (bench:meters' table: never merged, copies of every 200th event in a part spanning
//      the day: the worst case). Not timed. BENCH_LAYOUTS=retried-batches runs one of them.
//   2. Per layout, range (the day: the last 24 h; the week ending with it) and filter (none;
//      /RetrieveCreditScore with status 200), interleaved pairs (support-pairs.ts: a warm-up, then
//      BENCH_PAIRS, default 3): `reference`: count() per bucket and ORDER BY … LIMIT 50 straight on
//      request_logs, both at once, without counting a retried copy once; `explorer`: the histogram
//      (60 buckets) and the first page (50 rows) at once, as the page asks, each one's time kept too.
//   3. Exact: the histogram must equal, bucket by bucket, a hand-written uniqExact per bucket, and the
//      page the newest 50 distinct events by a hand-written GROUP BY; else exit 1.
// The last line is JSON. Bounded: BENCH_TIMEOUT_SECONDS (default 1200) stops the server and fails.
import { z } from 'zod';
import { literal } from '../../src/sql/escape.ts';
import type { ClickHouse } from '../../src/storage/clickhouse/clickhouse.ts';
import {
  RequestLogExplorer,
  explorerWhere,
  type ExplorerFilter,
} from '../../src/storage/clickhouse/request-log-explorer.ts';
import { HOUR_MS } from '../../src/time/hours.ts';
import { dayFromEnv } from '../support/clock.ts';
import { generateRequestLogs, type DuplicateLayout, type GeneratedLogs } from './generated-logs.ts';
import { onBenchServer } from './support-bench-server.ts';
import { interleavedPairs, medianOf, pairsFields, pairsLine } from './support-pairs.ts';

const LOGS = Number(process.env.BENCH_LOGS ?? 10_000_000);
const TIMEOUT_SECONDS = Number(process.env.BENCH_TIMEOUT_SECONDS ?? 1200);
const BUCKETS = 60;
const PAGE = 50;
const ALL_LAYOUTS: DuplicateLayout[] = ['retried-batches', 'unmerged'];
/** BENCH_LAYOUTS=retried-batches (comma-separated) runs only those; default both. */
const LAYOUTS = (process.env.BENCH_LAYOUTS?.split(',') ?? ALL_LAYOUTS) as DuplicateLayout[];
if (LAYOUTS.length === 0 || LAYOUTS.some((l) => !ALL_LAYOUTS.includes(l)))
  throw new Error(
    `BENCH_LAYOUTS must list some of ${ALL_LAYOUTS.join(', ')}, got ${process.env.BENCH_LAYOUTS}`,
  );

if (!Number.isSafeInteger(LOGS) || LOGS < 1000)
  throw new Error(`BENCH_LOGS must be an integer >= 1000, got ${process.env.BENCH_LOGS}`);

const secondsSince = (started: number) => (performance.now() - started) / 1000;
const round3 = (x: number) => Number(x.toFixed(3));

interface Case {
  layout: DuplicateLayout;
  range: 'day' | 'week';
  filter: string;
  explorerFilter: ExplorerFilter;
  bucketSeconds: number;
}

interface Timing {
  seconds: number;
  histogram: number;
  page: number;
}

/** The two answers the explorer gives, checked against hand-written exact queries. */
async function checkExact(
  ch: ClickHouse,
  explorer: RequestLogExplorer,
  c: Case,
): Promise<{ matching: number; problems: string[] }> {
  const table = ch.table('request_logs');
  const where = explorerWhere(c.explorerFilter);
  const step = c.bucketSeconds;
  const [histogram, page] = await Promise.all([
    explorer.histogram(c.explorerFilter, step),
    explorer.page(c.explorerFilter, PAGE),
  ]);
  // Copies share their request time, so a per-bucket uniqExact counts each event once.
  const buckets = await ch.query(
    `SELECT intDiv(toUInt32(request_time), ${step}) * ${step} AS bucket, uniqExact(app, event_id) AS calls
     FROM ${table} WHERE ${where} GROUP BY bucket ORDER BY bucket`,
    z.object({ bucket: z.coerce.number(), calls: z.coerce.number() }),
  );
  const problems: string[] = [];
  const got = histogram.map((b) => `${b.start.getTime() / 1000}:${b.calls}`).join(',');
  if (got !== buckets.map((b) => `${b.bucket}:${b.calls}`).join(','))
    problems.push('the histogram differs from uniqExact per bucket');
  const last = page.rows.at(-1);
  const newest = last
    ? await ch.query(
        `SELECT event_id FROM ${table}
         WHERE ${where} AND request_time >= toDateTime(${literal(last.request_time)}, 'UTC')
         GROUP BY app, event_id ORDER BY max(request_time) DESC, event_id DESC LIMIT ${PAGE}`,
        z.object({ event_id: z.string() }),
      )
    : [];
  if (page.rows.map((r) => r.event_id).join(',') !== newest.map((r) => r.event_id).join(','))
    problems.push('the first page differs from the newest distinct events');
  if (
    page.rows.length !==
    Math.min(
      PAGE,
      buckets.reduce((a, b) => a + b.calls, 0),
    )
  )
    problems.push(`the first page holds ${page.rows.length} rows`);
  return { matching: buckets.reduce((a, b) => a + b.calls, 0), problems };
}

async function main(): Promise<void> {
  const day = dayFromEnv('BENCH_DAY', '2028-02-29');
  const dayEnd = new Date(day.getTime() + 24 * HOUR_MS);
  const ranges = {
    day: { from: day, to: dayEnd },
    week: { from: new Date(dayEnd.getTime() - 7 * 24 * HOUR_MS), to: dayEnd },
  };
  const filters: Record<string, Omit<ExplorerFilter, 'from' | 'to'>> = {
    all: {},
    credit_score_200: { route: '/RetrieveCreditScore', status: 200 },
  };

  await onBenchServer(TIMEOUT_SECONDS, async (open) => {
    const results = [];
    const generated: Record<string, GeneratedLogs> = {};
    for (const layout of LAYOUTS) {
      const ch = await open(`bench_ui_${layout.replace('-', '_')}`);
      generated[layout] = await generateRequestLogs(ch, ch.database, LOGS, day, layout);
      console.error(
        `${layout}: ${generated[layout].rows} rows in ${generated[layout].parts} parts, generated in ${generated[layout].seconds.toFixed(1)} s`,
      );
      const explorer = new RequestLogExplorer(ch);
      const table = ch.table('request_logs');
      for (const [rangeName, range] of Object.entries(ranges) as ['day' | 'week', typeof ranges.day][]) {
        for (const [filterName, filter] of Object.entries(filters)) {
          const c: Case = {
            layout,
            range: rangeName,
            filter: filterName,
            explorerFilter: { ...range, ...filter },
            bucketSeconds: (range.to.getTime() - range.from.getTime()) / 1000 / BUCKETS,
          };
          const where = explorerWhere(c.explorerFilter);
          const step = c.bucketSeconds;
          const exact = await checkExact(ch, explorer, c);
          if (exact.problems.length > 0)
            throw new Error(`${layout} ${rangeName} ${filterName}: ${exact.problems.join('; ')}`);
          console.error(`${layout} ${rangeName} ${filterName}: ${exact.matching} events, answers exact`);
          const timed = async (run: () => Promise<unknown>) => {
            const started = performance.now();
            await run();
            return secondsSince(started);
          };
          const pairs = await interleavedPairs<Timing>({
            names: { reference: 'hand-written', ours: 'explorer' },
            reference: async () => {
              const started = performance.now();
              const [histogram, page] = await Promise.all([
                timed(() =>
                  ch.query(
                    `SELECT intDiv(toUInt32(request_time), ${step}) AS b, count() AS n FROM ${table} WHERE ${where} GROUP BY b ORDER BY b`,
                    z.object({ b: z.coerce.number(), n: z.coerce.number() }),
                  ),
                ),
                timed(() =>
                  ch.query(
                    `SELECT * FROM ${table} WHERE ${where} ORDER BY request_time DESC LIMIT ${PAGE}`,
                    z.looseObject({}),
                  ),
                ),
              ]);
              return { seconds: secondsSince(started), histogram, page };
            },
            ours: async () => {
              const started = performance.now();
              const [histogram, page] = await Promise.all([
                timed(() => explorer.histogram(c.explorerFilter, step)),
                timed(() => explorer.page(c.explorerFilter, PAGE)),
              ]);
              return { seconds: secondsSince(started), histogram, page };
            },
            ratio: (reference, ours) => ours.seconds / reference.seconds,
            show: (m) =>
              `${m.seconds.toFixed(3)} s (histogram ${m.histogram.toFixed(3)}, page ${m.page.toFixed(3)})`,
          });
          const med = (side: 'reference' | 'ours', f: (t: Timing) => number) =>
            round3(medianOf(pairs.pairs, side, f));
          const result = {
            layout,
            range: rangeName,
            filter: filterName,
            matching_events: exact.matching,
            explorer_seconds: med('ours', (t) => t.seconds),
            explorer_histogram_seconds: med('ours', (t) => t.histogram),
            explorer_page_seconds: med('ours', (t) => t.page),
            reference_seconds: med('reference', (t) => t.seconds),
            explorer_seconds_min: round3(Math.min(...pairs.pairs.map((p) => p.ours.seconds))),
            explorer_seconds_max: round3(Math.max(...pairs.pairs.map((p) => p.ours.seconds))),
            ...pairsFields(pairs),
          };
          console.log(
            `${layout.padEnd(16)} ${rangeName.padEnd(5)} ${filterName.padEnd(17)} explorer ${result.explorer_seconds.toFixed(3)} s ` +
              `(histogram ${result.explorer_histogram_seconds.toFixed(3)}, page ${result.explorer_page_seconds.toFixed(3)}; ` +
              `min ${result.explorer_seconds_min.toFixed(3)}, max ${result.explorer_seconds_max.toFixed(3)}), ` +
              `hand-written ${result.reference_seconds.toFixed(3)} s, ratio ${pairsLine(pairs)}`,
          );
          results.push(result);
        }
      }
    }
    console.log(
      JSON.stringify({
        bench: 'ui-queries',
        logs: LOGS,
        generated: Object.fromEntries(
          Object.entries(generated).map(([k, g]) => [
            k,
            { rows: g.rows, parts: g.parts, seconds: round3(g.seconds) },
          ]),
        ),
        results,
      }),
    );
  });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});

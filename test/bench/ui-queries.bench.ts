// npm run bench:ui-queries — the explorer's two reads (the histogram and the first page of the newest
// calls, RequestLogExplorer) against hand-written ClickHouse queries over the same rows, in one run.
//
//   1. A throwaway clickhouse-server (Debian's 18.16) and BENCH_LOGS request logs (default 10,000,000)
//      over one UTC day, made by bench:meters' generator (test/bench/generated-logs.ts), 0.5% stored
//      twice as retried batches leave them. Not timed.
//   2. For two filters (none; /RetrieveCreditScore with status 200), best of 3 rounds, interleaved:
//      `explorer_seconds`: histogram (60 buckets over the day) + first page (50 rows), as the page asks;
//      `reference_seconds`: the same two answers by hand: count() per bucket and ORDER BY … LIMIT 50
//      straight on request_logs, without counting a retried copy once (what the explorer pays for).
//   The explorer's total must equal the number of distinct events matching, else exit 1.
// The last line is JSON. Bounded: BENCH_TIMEOUT_SECONDS (default 900) stops the server and fails.
import { rm } from 'node:fs/promises';
import { z } from 'zod';
import { literal } from '../../src/sql/escape.ts';
import { connectClickHouse, type ClickHouse } from '../../src/storage/clickhouse/clickhouse.ts';
import { migrate } from '../../src/storage/clickhouse/migrations.ts';
import {
  RequestLogExplorer,
  type ExplorerFilter,
} from '../../src/storage/clickhouse/request-log-explorer.ts';
import { HOUR_MS } from '../../src/time/hours.ts';
import { startClickHouseServer, type ClickHouseServer } from '../support/clickhouse-server.ts';
import { dayFromEnv } from '../support/clock.ts';
import { COLUMNS, generatedRows } from './generated-logs.ts';

const LOGS = Number(process.env.BENCH_LOGS ?? 10_000_000);
const TIMEOUT_SECONDS = Number(process.env.BENCH_TIMEOUT_SECONDS ?? 900);
const DB = 'bench_ui';
const ROUNDS = 3;
const BUCKETS = 60;
const PAGE = 50;

const secondsSince = (started: number) => (performance.now() - started) / 1000;

async function main(): Promise<void> {
  const day = dayFromEnv('BENCH_DAY', '2028-02-29');
  const range = { from: day, to: new Date(day.getTime() + 24 * HOUR_MS) };
  const bucketSeconds = (24 * 3600) / BUCKETS;
  let server: ClickHouseServer | undefined;
  let ch: ClickHouse | undefined;
  const watchdog = setTimeout(() => {
    console.error(`bench: still running after ${TIMEOUT_SECONDS} s; stopping the server`);
    void server?.kill();
  }, TIMEOUT_SECONDS * 1000);
  watchdog.unref();
  try {
    server = await startClickHouseServer();
    ch = await connectClickHouse({
      kind: 'server',
      url: server.url,
      username: 'default',
      password: '',
      database: DB,
      requestTimeoutMs: TIMEOUT_SECONDS * 1000,
    });
    await migrate(ch);
    const generationStarted = performance.now();
    await ch.command(`SYSTEM STOP MERGES ${DB}.request_logs`);
    await ch.command(`INSERT INTO ${DB}.request_logs (${COLUMNS}) ${generatedRows(LOGS, day, '')}`);
    await ch.command(
      `INSERT INTO ${DB}.request_logs (${COLUMNS}) ${generatedRows(LOGS, day, 'WHERE number % 200 = 0')}`,
    );
    const generationSeconds = secondsSince(generationStarted);

    const explorer = new RequestLogExplorer(ch);
    const cases: { name: string; filter: ExplorerFilter; where: string }[] = [
      { name: 'all', filter: range, where: '' },
      {
        name: 'credit_score_200',
        filter: { ...range, route: '/RetrieveCreditScore', status: 200 },
        where: ` AND route = '/RetrieveCreditScore' AND status = 200`,
      },
    ];
    const results = [];
    for (const c of cases) {
      const timeWhere = `request_time >= ${literal(range.from)} AND request_time < ${literal(range.to)}${c.where}`;
      let explorerSeconds = Infinity;
      let referenceSeconds = Infinity;
      let total = 0;
      for (let round = 1; round <= ROUNDS; round++) {
        const started = performance.now();
        const [histogram] = await Promise.all([
          explorer.histogram(c.filter, bucketSeconds),
          explorer.page(c.filter, PAGE),
        ]);
        explorerSeconds = Math.min(explorerSeconds, secondsSince(started));
        total = histogram.reduce((a, b) => a + b.calls, 0);

        const refStarted = performance.now();
        await Promise.all([
          ch.query(
            `SELECT intDiv(toUInt32(request_time), ${bucketSeconds}) AS b, count() AS n FROM ${DB}.request_logs WHERE ${timeWhere} GROUP BY b ORDER BY b`,
            z.object({ b: z.coerce.number(), n: z.coerce.number() }),
          ),
          ch.query(
            `SELECT * FROM ${DB}.request_logs WHERE ${timeWhere} ORDER BY request_time DESC LIMIT ${PAGE}`,
            z.looseObject({}),
          ),
        ]);
        referenceSeconds = Math.min(referenceSeconds, secondsSince(refStarted));
        console.error(
          `${c.name} round ${round}: explorer best ${explorerSeconds.toFixed(3)} s, reference best ${referenceSeconds.toFixed(3)} s`,
        );
      }
      const [distinct] = await ch.query(
        `SELECT uniqExact(app, event_id) AS n FROM ${DB}.request_logs WHERE ${timeWhere}`,
        z.object({ n: z.coerce.number() }),
      );
      if (distinct?.n !== total)
        throw new Error(`${c.name}: explorer counted ${total}, distinct events ${distinct?.n}`);
      results.push({
        filter: c.name,
        matching_events: total,
        explorer_seconds: Number(explorerSeconds.toFixed(3)),
        reference_seconds: Number(referenceSeconds.toFixed(3)),
        ratio: Number((explorerSeconds / referenceSeconds).toFixed(2)),
      });
    }
    console.log(
      JSON.stringify({
        bench: 'ui-queries',
        logs: LOGS,
        generation_seconds: Number(generationSeconds.toFixed(1)),
        results,
      }),
    );
  } finally {
    clearTimeout(watchdog);
    await ch?.close().catch(() => undefined);
    if (server) {
      await server.stop().catch((error: unknown) => console.error('bench: stopping ClickHouse:', error));
      await rm(server.dir, { recursive: true, force: true });
    }
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});

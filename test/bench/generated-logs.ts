// The request logs the benches generate inside ClickHouse (bench:meters, bench:ui-queries): the same
// rows in every run, whatever the date.
import { z } from 'zod';
import type { ClickHouse } from '../../src/storage/clickhouse/clickhouse.ts';

/** One event in DUPLICATE_EVERY is stored a second time (0.5%), as retried batches leave them. */
export const DUPLICATE_EVERY = 200;

/**
 * The generated rows, as a SELECT over numbers(n): h1…h6 are independent hashes of `number`.
 * - request_time: spread evenly over the day, in `number` order (as logs arrive).
 * - company: 1 + floor(1000·u³) for u = (h1 mod 10⁶)/10⁶, in integers: co_0001 has ~10% of the calls,
 *   the top 10 ~22%, the top half ~79%, co_1000 ~0.03%.
 * - user: one of the company's 20 users (20,000 in all), none (empty) in 2% of calls.
 * - route: 70% /RetrieveCreditScore, 15% /RetrieveCreditReport, 10% /v1/accounts/<id>, 5% /health.
 * - status: 93% 200, then 400, 401, 404, 429, 500.
 */
export function generatedRows(n: number, day: Date, where: string): string {
  const dayStart = day.getTime() / 1000;
  return `
    SELECT
      toString(number) AS event_id,
      'bench' AS app,
      toDateTime(ts + h5 % 3) AS received_at,
      toDateTime(ts) AS request_time,
      toUInt16(h5 % 1000) AS request_time_ms,
      company AS customer_key,
      company AS company_id,
      if(h2 % 50 = 7, '', concat('u_', toString(company_no * 20 + h2 % 20))) AS user_id,
      if(r < 85, 'POST', 'GET') AS method,
      multiIf(r < 70, '/RetrieveCreditScore', r < 85, '/RetrieveCreditReport', r < 95, concat('/v1/accounts/', toString(h3 % 5000)), '/health') AS route,
      'api.example.com' AS host,
      toUInt16(multiIf(s < 930, 200, s < 955, 400, s < 970, 401, s < 985, 404, s < 995, 429, 500)) AS status,
      toUInt32(20 + h5 % 300) AS latency_ms,
      toUInt64(150 + h6 % 300) AS request_bytes,
      toUInt64(if(s < 930, 120 + h6 % 4000, 90 + h6 % 90)) AS response_bytes,
      '2024-06-01' AS api_version,
      'native' AS source_format,
      toUInt32(1) AS sample_weight,
      ['metadata.plan'] AS meta_keys,
      [arrayElement(['starter', 'growth', 'business', 'enterprise'], 1 + company_no % 4)] AS meta_values
    FROM (
      SELECT *, concat('co_', substring(toString(10000 + company_no), 2)) AS company
      FROM (
        SELECT
          number, h2, h3, h5, h6, r, s, ts,
          1 + intDiv(u * u * u, 1000000000000000) AS company_no
        FROM (
          SELECT
            number,
            toUInt64(intHash64(number) % 1000000) AS u,
            cityHash64(number, 2) AS h2,
            cityHash64(number, 3) AS h3,
            cityHash64(number, 4) % 100 AS r,
            cityHash64(number, 5) % 1000 AS s,
            cityHash64(number, 6) AS h5,
            cityHash64(number, 7) AS h6,
            toUInt32(${dayStart} + intDiv(number * 86400, ${n})) AS ts
          FROM numbers(${n})
          ${where}
        )
      )
    )`;
}

export const COLUMNS =
  'event_id, app, received_at, request_time, request_time_ms, customer_key, company_id, user_id, method, route, host, status, ' +
  'latency_ms, request_bytes, response_bytes, api_version, source_format, sample_weight, meta_keys, meta_values';

/**
 * How the copies of a retried batch sit in request_logs when a bench times its queries:
 * - `unmerged` (bench:meters): merges stopped before anything is inserted, so the day stays in the ten
 *   parts of its insert (a block per 1,048,576 rows, none merged) and every 200th event is stored once
 *   more, all in one more part that spans the day: the same parts in every run, no merge competing with
 *   the timed queries, and copies next to every row. A table that is never merged and copies everywhere:
 *   the worst case for the explorer, which dedupes wherever copies can be.
 * - `retried-batches`: the day merged into one part (OPTIMIZE FINAL: what ClickHouse's merges leave of
 *   an older day), then merges stopped and 50 batches of 1,000 consecutive events stored again, an
 *   insert each, as a sender's retries leave them: copies in ~50 minutes of the day.
 * Either way 0.5% of the events are stored twice.
 */
export type DuplicateLayout = 'unmerged' | 'retried-batches';

export interface GeneratedLogs {
  rows: number;
  parts: number;
  seconds: number;
}

/** Fills `db`.request_logs (migrated, empty) with `logs` generated events over `day` (not timed by the benches). */
export async function generateRequestLogs(
  ch: ClickHouse,
  db: string,
  logs: number,
  day: Date,
  layout: DuplicateLayout,
): Promise<GeneratedLogs> {
  const started = performance.now();
  const table = `${db}.request_logs`;
  const insert = (where: string) =>
    ch.command(`INSERT INTO ${table} (${COLUMNS}) ${generatedRows(logs, day, where)}`);
  let copies = Math.ceil(logs / DUPLICATE_EVERY);
  if (layout === 'unmerged') {
    await ch.command(`SYSTEM STOP MERGES ${table}`);
    await insert('');
    await insert(`WHERE number % ${DUPLICATE_EVERY} = 0`);
  } else {
    await insert('');
    await ch.command(`OPTIMIZE TABLE ${table} FINAL`);
    await ch.command(`SYSTEM STOP MERGES ${table}`);
    const batches = 50;
    const size = Math.ceil(logs / DUPLICATE_EVERY / batches);
    const stride = Math.floor(logs / batches);
    for (let b = 0; b < batches; b++)
      await insert(`WHERE number >= ${b * stride} AND number < ${b * stride + size}`);
    copies = batches * Math.min(size, stride);
  }
  const seconds = (performance.now() - started) / 1000;
  const [stats] = await ch.query(
    `SELECT count() AS n, uniqExact(event_id) AS events FROM ${table}`,
    z.object({ n: z.coerce.number(), events: z.coerce.number() }),
  );
  const [parts] = await ch.query(
    `SELECT count() AS parts FROM system.parts WHERE database = '${db}' AND table = 'request_logs' AND active`,
    z.object({ parts: z.coerce.number() }),
  );
  if (!stats || stats.events !== logs || stats.n !== logs + copies)
    throw new Error(`generated data is not as intended: ${JSON.stringify(stats)}`);
  return { rows: stats.n, parts: parts?.parts ?? 0, seconds };
}

// The request logs the benches generate inside ClickHouse (bench:meters, bench:ui-queries): the same
// rows in every run, whatever the date.

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

// request_logs rows are spooled and inserted as TabSeparated (src/collector/tab-separated.ts). Every
// string a caller can send must come back exactly (lone surrogates as U+FFFD) on ClickHouse 18.16 and
// on 26.x, through the same adapter method the shipper uses; and a segment ClickHouse cannot read must
// fail for good (so the shipper quarantines it) instead of being retried forever.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { REQUEST_LOG_COLUMNS, type RequestLogRow } from '../../../src/collector/request-log.ts';
import { toTabSeparated } from '../../../src/collector/tab-separated.ts';
import type { ClickHouse } from '../../../src/storage/clickhouse/clickhouse.ts';
import { UpstreamError } from '../../../src/errors.ts';
import { storedRow } from '../../../src/storage/clickhouse/request-log-reader.ts';
import { ENGINES, openMigratedDatabase } from '../../support/clickhouse.ts';
import { z } from 'zod';

const NUM_RUNS = 150;

/** What ClickHouse stores for `s`: lone surrogates become U+FFFD (Buffer's rule, used as the oracle). */
const stored = (s: string): string => Buffer.from(s, 'utf8').toString('utf8');

const nasty = fc.constantFrom(
  '\\',
  '\\N',
  'N',
  '\\t',
  '\\n',
  "'",
  "\\'",
  '\t',
  '\n',
  '\r',
  '\r\n',
  '\0',
  '\\0',
  '\x08',
  '\x0c',
  '\x1b',
  '[',
  ']',
  ',',
  "['x']",
  '\ud800',
  '\udfff',
  '\u2028',
  '\ufeff',
  '😀',
  '"',
  '`',
);

const anyString = fc.oneof(
  fc.string({ unit: 'binary' }),
  fc.string({ unit: 'binary-ascii' }),
  fc
    .array(fc.oneof(nasty, fc.string({ unit: 'binary-ascii', maxLength: 3 })), { maxLength: 10 })
    .map((p) => p.join('')),
  fc
    .array(fc.oneof(fc.integer({ min: 0xd800, max: 0xdfff }), fc.integer({ min: 0, max: 0xffff })), {
      maxLength: 16,
    })
    .map((units) => String.fromCharCode(...units)),
);

const SECOND = 1_795_000_000;

const rowOf = (id: string, s: string, keys: string[], values: string[]): RequestLogRow => ({
  event_id: id,
  app: s,
  received_at: SECOND,
  request_time: SECOND - 60,
  request_time_ms: 999,
  customer_key: s,
  company_id: s,
  user_id: s,
  method: s,
  route: s,
  host: s,
  status: 599,
  latency_ms: 4_294_967_295,
  request_bytes: Number.MAX_SAFE_INTEGER,
  response_bytes: 0,
  api_version: s,
  source_format: 'native',
  sample_weight: 1_000_000,
  meta_keys: keys,
  meta_values: values,
});

describe.each(ENGINES)('TabSeparated request_logs rows on the %s engine', (engine) => {
  let ch: ClickHouse;

  beforeAll(async () => {
    ch = await openMigratedDatabase(engine, 'tsv');
  });

  afterAll(async () => {
    await ch?.command(`DROP DATABASE IF EXISTS ${ch.database}`);
    await ch?.close();
  });

  it('reads back every string, in fields and in arrays, exactly', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(anyString, fc.array(anyString, { maxLength: 4 })), { minLength: 1, maxLength: 25 }),
        async (cases) => {
          run += 1;
          const rows = cases.map(([s, list], i) => rowOf(`r${run}-${i}`, s, list, [...list].reverse()));
          await ch.insertTabSeparated('request_logs', REQUEST_LOG_COLUMNS, toTabSeparated(rows));
          const back = await ch.query(
            `SELECT * FROM ${ch.table('request_logs')} WHERE event_id LIKE 'r${run}-%'`,
            storedRow,
          );
          const byId = new Map(back.map((r) => [r.event_id, r]));
          expect(byId.size).toBe(rows.length);
          cases.forEach(([s, list], i) => {
            const got = byId.get(`r${run}-${i}`)!;
            const expected = stored(s);
            expect(got.app).toBe(expected);
            expect(got.customer_key).toBe(expected);
            expect(got.route).toBe(expected);
            expect(got.api_version).toBe(expected);
            expect(got.meta_keys).toEqual(list.map(stored));
            expect(got.meta_values).toEqual([...list].reverse().map(stored));
          });
          // Numbers and epoch-second DateTimes, at the top of their ranges.
          const first = byId.get(`r${run}-0`)!;
          expect(first).toMatchObject({
            received_at: '2026-11-18 11:06:40',
            request_time: '2026-11-18 11:05:40',
            request_time_ms: 999,
            status: 599,
            latency_ms: 4_294_967_295,
            request_bytes: Number.MAX_SAFE_INTEGER,
            sample_weight: 1_000_000,
          });
        },
      ),
      { numRuns: NUM_RUNS },
    );
  });

  it('fills columns a segment does not list with their defaults (a segment spooled before a migration)', async () => {
    const row = rowOf('older', 'a', ['k'], ['v']);
    const body = toTabSeparated([row]).toString().split('\t').slice(0, 2).join('\t');
    await ch.insertTabSeparated('request_logs', ['event_id', 'app'], Buffer.from(`${body}\n`));
    const back = await ch.query(
      `SELECT event_id, status, meta_keys FROM ${ch.table('request_logs')} WHERE event_id = 'older'`,
      z.object({ event_id: z.string(), status: z.coerce.number(), meta_keys: z.array(z.string()) }),
    );
    expect(back).toEqual([{ event_id: 'older', status: 0, meta_keys: [] }]);
  });

  it.each([
    ['a malformed row', REQUEST_LOG_COLUMNS, 'e1\tonly two fields\n'],
    ['a column the table does not have', ['event_id', 'no_such_column'], 'e1\tx\n'],
    ['a column name that is not an identifier', ['event_id', 'x; DROP TABLE request_logs'], 'e1\tx\n'],
  ])('refuses %s for good (not retryable)', async (_what, columns, body) => {
    const err = await ch
      .insertTabSeparated('request_logs', columns, Buffer.from(body))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UpstreamError);
    expect((err as UpstreamError).retryable).toBe(false);
  });
});

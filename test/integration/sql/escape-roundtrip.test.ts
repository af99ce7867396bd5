// Every literal the service writes must mean the same value on ClickHouse 18.16 (server) and on
// 26.x (chdb). Random strings go through quoteString() and back through a real engine, many per
// query so that hundreds of runs take seconds.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { literal, quoteString } from '../../../src/sql/escape.ts';
import { ENGINES, createTestClient } from '../../support/clickhouse.ts';
import type { TestClient } from '../../support/clickhouse.ts';

const NUM_RUNS = 300;

/** What ClickHouse stores for `s`: lone surrogates become U+FFFD (Buffer's rule, used as the oracle). */
const stored = (s: string): string => Buffer.from(s, 'utf8').toString('utf8');

const nasty = fc.constantFrom(
  "'",
  "''",
  '\\',
  "\\'",
  '\\\\',
  '\0',
  '\\0',
  '\n',
  '\r\n',
  '\t',
  '\x01',
  '\x08',
  '\x1b',
  '\x1f',
  '\x7f',
  '\\x41',
  '\\u0041',
  '\ud800',
  '\udbff',
  '\udc00',
  '\udfff',
  '\u0085',
  '\u2028',
  '\ufeff',
  '\ufffd',
  '😀',
  '\u{10ffff}',
  '?',
  '{x:String}',
  '--',
  '/*',
  ';',
  '`',
  '"',
);

/** Any sequence of UTF-16 code units, weighted towards surrogates so lone halves are common. */
const codeUnits = fc
  .array(fc.oneof(fc.integer({ min: 0xd800, max: 0xdfff }), fc.integer({ min: 0, max: 0xffff })), {
    maxLength: 24,
  })
  .map((units) => String.fromCharCode(...units));

const anyString = fc.oneof(
  fc.string({ unit: 'binary' }), // any code point, all of Unicode
  fc.string({ unit: 'grapheme' }),
  fc.string({ unit: 'binary-ascii' }), // controls, DEL, Latin-1
  fc
    .array(fc.oneof(nasty, fc.string({ unit: 'binary-ascii', maxLength: 3 })), { maxLength: 12 })
    .map((p) => p.join('')),
  codeUnits,
);

const batch = fc.array(anyString, { minLength: 1, maxLength: 40 });
// One UNION ALL branch per string costs a few ms on either engine, so lookups use smaller batches.
const lookupBatch = fc.array(anyString, { minLength: 1, maxLength: 12 });

interface Row {
  [column: string]: unknown;
}

async function selectRows(ch: TestClient, query: string): Promise<Row[]> {
  const result = await ch.client.query({ query, format: 'JSONEachRow' });
  return result.json<Row>();
}

describe.each(ENGINES)('escaping on the %s engine', (engine) => {
  let ch: TestClient;

  beforeAll(async () => {
    ch = await createTestClient(engine, 'escape');
    // v is in the sorting key, so the literal is also used for index analysis, not only compared.
    await ch.client.command({
      query:
        'CREATE TABLE strings (run UInt32, id UInt32, v String) ENGINE = MergeTree ORDER BY (run, v, id)',
    });
  });

  afterAll(async () => {
    await ch?.dropDatabase();
  });

  it('runs in its own database', async () => {
    expect(await selectRows(ch, 'SELECT currentDatabase() AS d')).toEqual([{ d: ch.database }]);
  });

  it('reads back every quoted string exactly', async () => {
    await fc.assert(
      fc.asyncProperty(batch, async (strings) => {
        const quoted = strings.map(quoteString);
        const columns = quoted.map((q, i) => `${q} AS v${i}`).join(', ');
        const rows = await selectRows(ch, `SELECT ${columns}, [${quoted.join(', ')}] AS all`);
        expect(rows).toHaveLength(1);
        const row = rows[0] ?? {};
        strings.forEach((s, i) => expect(row[`v${i}`]).toBe(stored(s)));
        expect(row.all).toEqual(strings.map(stored));
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('finds exactly the rows holding a string with WHERE v = quoteString(s)', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(lookupBatch, async (strings) => {
        run += 1;
        const values = strings.map(stored);
        // JSON insert needs well-formed strings: 26.x refuses a lone surrogate escape in JSON input.
        await ch.client.insert({
          table: 'strings',
          values: values.map((v, id) => ({ run, id, v })),
          format: 'JSONEachRow',
        });
        const branches = strings.map(
          (s, k) =>
            `SELECT ${k} AS k, groupArray(id) AS ids FROM strings WHERE run = ${run} AND v = ${quoteString(s)}`,
        );
        const rows = await selectRows(ch, branches.join(' UNION ALL '));
        const found = new Map(
          rows.map((r) => [Number(r.k), (r.ids as number[]).map(Number).sort((a, b) => a - b)]),
        );
        values.forEach((v, k) => {
          const expected = values.flatMap((other, id) => (other === v ? [id] : []));
          expect(found.get(k), `string #${k} ${JSON.stringify(strings[k])}`).toEqual(expected);
        });
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('reads back numbers, booleans and DateTimes exactly', async () => {
    const number = fc.oneof(
      fc.maxSafeInteger(),
      fc.integer(),
      fc
        .double({ noNaN: true, noDefaultInfinity: true, min: -(2 ** 53), max: 2 ** 53 })
        .filter((n) => !Number.isInteger(n) && Math.abs(n) >= 2 ** -1022),
    );
    const date = fc.date({
      min: new Date(0),
      max: new Date('2105-12-31T23:59:59.999Z'),
      noInvalidDate: true,
    });
    // Array elements keep ClickHouse's literal types: 64-bit integers and floats have no common
    // type, so each array holds one kind.
    const arrays = fc.tuple(
      fc.array(fc.integer(), { maxLength: 10 }),
      fc.array(
        fc
          .double({ noNaN: true, noDefaultInfinity: true, min: -1e15, max: 1e15 })
          .filter((n) => !Number.isInteger(n) && Math.abs(n) >= 2 ** -1022),
        { maxLength: 10 },
      ),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.array(number, { minLength: 1, maxLength: 30 }),
        arrays,
        date,
        fc.boolean(),
        async (numbers, [ints, floats], d, b) => {
          const columns = numbers.map((n, i) => `${literal(n)} AS n${i}`);
          const rows = await selectRows(
            ch,
            `SELECT ${columns.join(', ')}, ${literal(ints)} AS ints, ${literal(floats)} AS floats,` +
              ` toUInt32(${literal(d)}) AS d, ${literal(b)} AS b`,
          );
          const row = rows[0] ?? {};
          // 64-bit integers come back as JSON strings on both engines.
          numbers.forEach((n, i) => expect(Number(row[`n${i}`])).toBe(n));
          expect((row.ints as unknown[]).map(Number)).toEqual(ints);
          expect(row.floats).toEqual(floats);
          expect(Number(row.d)).toBe(Math.floor(d.getTime() / 1000));
          expect(row.b).toBe(b ? 1 : 0);
        },
      ),
      { numRuns: 100 },
    );
  });
});

import { describe, expect, it } from 'vitest';
import { ZodError } from 'zod';
import {
  compileMeterFirstSeen,
  compileMeterHourly,
  compileMeterPeriod,
} from '../../../src/meters/compile.ts';
import { meterSchema } from '../../../src/meters/meter-schema.ts';
import type { MeterDefinition, MeterInput } from '../../../src/meters/meter-schema.ts';
import { InvalidIdentifierError } from '../../../src/sql/escape.ts';

// Table-driven: each case is a meter and the exact SQL it compiles to. The same meters run against
// known rows on both ClickHouse engines in test/integration/meters/compile.test.ts.

const WINDOW = {
  table: 'db.request_logs',
  from: new Date('2025-03-01T00:00:00Z'),
  to: new Date('2025-03-02T00:00:00Z'),
};
const RANGE =
  "request_time >= toDateTime('2025-03-01 00:00:00', 'UTC') AND request_time < toDateTime('2025-03-02 00:00:00', 'UTC')";

const COUNT_COLUMNS = 'company_id AS customer, request_time, sample_weight';
const COUNT = 'toString(sum(sample_weight))';

function meter(over: Partial<MeterInput>): MeterDefinition {
  return meterSchema.parse({
    name: 'm',
    description: '',
    unit: 'calls',
    aggregation: { type: 'count' },
    ...over,
  });
}

/**
 * The hourly query's frame around the parts a case varies. Only count and sum (aggregates over
 * `sum(`) dedupe by event id: a copy of an event cannot change a unique count, an extreme or the latest.
 */
function hourly(columns: string, aggregate: string, conditions: readonly string[]): string {
  return [
    `SELECT customer, toStartOfHour(request_time) AS hour, ${aggregate} AS value`,
    'FROM (',
    `  SELECT ${columns}`,
    '  FROM db.request_logs',
    `  WHERE ${[RANGE, ...conditions].join('\n    AND ')}`,
    ...(aggregate.startsWith('toString(sum(') ? ['  LIMIT 1 BY app, event_id'] : []),
    ')',
    'GROUP BY customer, hour',
    'ORDER BY customer, hour',
  ].join('\n');
}

const countWhere = (...conditions: string[]) => hourly(COUNT_COLUMNS, COUNT, conditions);

describe('compileMeterHourly: the worked example, in full', () => {
  it('counts 200 responses on /RetrieveCreditScore per company, per hour, for one app', () => {
    const credit = meter({
      name: 'retrieve-credit-score',
      filter: { routes: ['/RetrieveCreditScore'], status: 200 },
    });
    expect(compileMeterHourly(credit, { ...WINDOW, app: 'app_1' })).toBe(
      [
        'SELECT customer, toStartOfHour(request_time) AS hour, toString(sum(sample_weight)) AS value',
        'FROM (',
        '  SELECT company_id AS customer, request_time, sample_weight',
        '  FROM db.request_logs',
        "  WHERE request_time >= toDateTime('2025-03-01 00:00:00', 'UTC') AND request_time < toDateTime('2025-03-02 00:00:00', 'UTC')",
        "    AND app = 'app_1'",
        "    AND route = '/RetrieveCreditScore'",
        '    AND status = 200',
        '  LIMIT 1 BY app, event_id',
        ')',
        'GROUP BY customer, hour',
        'ORDER BY customer, hour',
      ].join('\n'),
    );
  });
});

describe('compileMeterHourly: filters', () => {
  it.each<[string, MeterInput['filter'], string]>([
    // routes
    ['one exact route', { routes: ['/RetrieveCreditScore'] }, countWhere("route = '/RetrieveCreditScore'")],
    ['exact routes', { routes: ['/a', '/b'] }, countWhere("route IN ('/a', '/b')")],
    ['a template', { routes: ['/users/:id'] }, countWhere("match(route, '^/users/[^/]+$')")],
    ['a one-segment glob', { routes: ['/v1/*'] }, countWhere("match(route, '^/v1/[^/]*$')")],
    ['an any-depth glob', { routes: ['/v1/**'] }, countWhere("match(route, '^/v1(/.*)?$')")],
    [
      'exact routes, a template and a glob',
      { routes: ['/a', '/users/:id', '/b', '/files/*.json'] },
      countWhere(
        String.raw`(route IN ('/a', '/b') OR match(route, '^/users/[^/]+$') OR match(route, '^/files/[^/]*\\.json$'))`,
      ),
    ],
    [
      'regex characters in a template, escaped for the regex and then for SQL',
      { routes: ['/v1/a.b+c/(x)/:id'] },
      countWhere(String.raw`match(route, '^/v1/a\\.b\\+c/\\(x\\)/[^/]+$')`),
    ],
    // methods
    ['one method', { methods: ['get'] }, countWhere("method = 'GET'")],
    ['methods', { methods: ['GET', 'post'] }, countWhere("method IN ('GET', 'POST')")],
    // status
    ['a status code', { status: 200 }, countWhere('status = 200')],
    ['a status class', { status: '2xx' }, countWhere('(status >= 200 AND status <= 299)')],
    ['a status range', { status: '200-204' }, countWhere('(status >= 200 AND status <= 204)')],
    ['status codes', { status: [200, 201] }, countWhere('status IN (200, 201)')],
    [
      'a status list of every form',
      { status: [200, '5xx', 201, '400-404'] },
      countWhere(
        '(status IN (200, 201) OR (status >= 500 AND status <= 599) OR (status >= 400 AND status <= 404))',
      ),
    ],
    [
      'every block together, in a fixed order',
      {
        where: [{ field: 'host', op: 'eq', value: 'api.test' }],
        status: '2xx',
        methods: ['POST'],
        routes: ['/a'],
      },
      countWhere("route = '/a'", "method = 'POST'", '(status >= 200 AND status <= 299)', "host = 'api.test'"),
    ],
  ])('%s', (_label, filter, expected) => {
    expect(compileMeterHourly(meter({ filter }), WINDOW)).toBe(expected);
  });
});

describe('compileMeterHourly: where operators', () => {
  const META_TIER = "meta_values[indexOf(meta_keys, 'metadata.tier')]";
  const HEADER_PLAN = "meta_values[indexOf(meta_keys, 'header.x-plan')]";
  it.each<[string, unknown, string]>([
    ['eq on a text column', { field: 'host', op: 'eq', value: 'api.test' }, "host = 'api.test'"],
    ['eq on an integer column', { field: 'status', op: 'eq', value: 200 }, 'status = 200'],
    [
      'eq on metadata, a number compared as text',
      { field: 'metadata.tier', op: 'eq', value: 2 },
      `${META_TIER} = '2'`,
    ],
    [
      'eq with a boolean, as text',
      { field: 'metadata.beta', op: 'eq', value: true },
      "meta_values[indexOf(meta_keys, 'metadata.beta')] = 'true'",
    ],
    [
      'eq on a header, name lower-cased',
      { field: 'header.X-Plan', op: 'eq', value: 'pro' },
      `${HEADER_PLAN} = 'pro'`,
    ],
    ['ne', { field: 'api_version', op: 'ne', value: 'v1' }, "api_version != 'v1'"],
    ['in on text', { field: 'company_id', op: 'in', value: ['a', 'b'] }, "company_id IN ('a', 'b')"],
    ['in on integers', { field: 'status', op: 'in', value: [200, 204] }, 'status IN (200, 204)'],
    ['in with one value', { field: 'metadata.tier', op: 'in', value: ['gold'] }, `${META_TIER} IN ('gold')`],
    [
      'not_in',
      { field: 'metadata.tier', op: 'not_in', value: ['free', 0] },
      `${META_TIER} NOT IN ('free', '0')`,
    ],
    ['gt on an integer column', { field: 'latency_ms', op: 'gt', value: 500 }, 'latency_ms > 500'],
    [
      'gte on text with a string: as text',
      { field: 'api_version', op: 'gte', value: '2024-01-01' },
      "api_version >= '2024-01-01'",
    ],
    [
      'lt on metadata with an integer: numeric, integers only',
      { field: 'metadata.tier', op: 'lt', value: -3 },
      `(match(${META_TIER}, '^-?[0-9]{1,18}$') AND toInt64OrZero(${META_TIER}) < (-3))`,
    ],
    ['lte', { field: 'response_bytes', op: 'lte', value: 1024 }, 'response_bytes <= 1024'],
    ['exists on metadata', { field: 'metadata.tier', op: 'exists' }, "has(meta_keys, 'metadata.tier')"],
    [
      'exists on a response header',
      { field: 'response_header.Content-Type', op: 'exists' },
      "has(meta_keys, 'response_header.content-type')",
    ],
    ['exists on a text column: not empty', { field: 'user_id', op: 'exists' }, "user_id != ''"],
    ['prefix', { field: 'route', op: 'prefix', value: '/v1/' }, "startsWith(route, '/v1/')"],
    [
      'matches',
      { field: 'user_id', op: 'matches', value: '^u-[0-9]+\\.x$' },
      String.raw`match(user_id, '^u-[0-9]+\\.x$')`,
    ],
  ])('%s', (_label, condition, expected) => {
    expect(compileMeterHourly(meter({ filter: { where: [condition as never] } }), WINDOW)).toBe(
      countWhere(expected),
    );
  });
});

describe('compileMeterHourly: aggregations', () => {
  const TOKENS = "meta_values[indexOf(meta_keys, 'metadata.tokens')]";
  it.each<[string, MeterInput['aggregation'], string]>([
    ['count', { type: 'count' }, hourly(COUNT_COLUMNS, COUNT, [])],
    [
      'sum of a column, weighted',
      { type: 'sum', value: 'response_bytes' },
      hourly(
        'company_id AS customer, request_time, sample_weight, response_bytes AS metered',
        'toString(sum(metered * sample_weight))',
        [],
      ),
    ],
    [
      'sum of integer metadata, weighted, other rows left out',
      { type: 'sum', value: 'metadata.tokens' },
      hourly(
        `company_id AS customer, request_time, sample_weight, toInt64OrZero(${TOKENS}) AS metered`,
        'toString(sum(metered * sample_weight))',
        [`match(${TOKENS}, '^-?[0-9]{1,18}$')`],
      ),
    ],
    [
      'min',
      { type: 'min', value: 'latency_ms' },
      hourly('company_id AS customer, request_time, latency_ms AS metered', 'toString(min(metered))', []),
    ],
    [
      'max',
      { type: 'max', value: 'request_bytes' },
      hourly('company_id AS customer, request_time, request_bytes AS metered', 'toString(max(metered))', []),
    ],
    [
      'max of a header',
      { type: 'max', value: 'header.X-Seats' },
      hourly(
        "company_id AS customer, request_time, toInt64OrZero(meta_values[indexOf(meta_keys, 'header.x-seats')]) AS metered",
        'toString(max(metered))',
        ["match(meta_values[indexOf(meta_keys, 'header.x-seats')], '^-?[0-9]{1,18}$')"],
      ),
    ],
    [
      'unique_count of a text column, empty left out',
      { type: 'unique_count', value: 'user_id' },
      hourly('company_id AS customer, request_time, user_id AS metered', 'toString(uniqExact(metered))', [
        "user_id != ''",
      ]),
    ],
    [
      'unique_count of an integer column',
      { type: 'unique_count', value: 'status' },
      hourly('company_id AS customer, request_time, status AS metered', 'toString(uniqExact(metered))', []),
    ],
    [
      'unique_count of metadata, missing left out',
      { type: 'unique_count', value: 'metadata.session' },
      hourly(
        "company_id AS customer, request_time, meta_values[indexOf(meta_keys, 'metadata.session')] AS metered",
        'toString(uniqExact(metered))',
        ["meta_values[indexOf(meta_keys, 'metadata.session')] != ''"],
      ),
    ],
    [
      'latest, ties broken by event id',
      { type: 'latest', value: 'metadata.tokens' },
      hourly(
        `company_id AS customer, request_time, toInt64OrZero(${TOKENS}) AS metered, request_time_ms, event_id`,
        'toString(argMax(metered, (request_time, request_time_ms, event_id)))',
        [`match(${TOKENS}, '^-?[0-9]{1,18}$')`],
      ),
    ],
  ])('%s', (_label, aggregation, expected) => {
    expect(compileMeterHourly(meter({ aggregation }), WINDOW)).toBe(expected);
  });
});

describe('compileMeterHourly: customers', () => {
  it.each([
    ['company_id', 'company_id'],
    ['user_id', 'user_id'],
    ['customer_key', 'customer_key'],
    ['metadata.org.id', "meta_values[indexOf(meta_keys, 'metadata.org.id')]"],
    ['header.X-Org', "meta_values[indexOf(meta_keys, 'header.x-org')]"],
  ])('%s', (customer, expr) => {
    expect(compileMeterHourly(meter({ customer }), WINDOW)).toBe(
      hourly(`${expr} AS customer, request_time, sample_weight`, COUNT, []),
    );
  });
});

describe('compileMeterHourly: hostile strings are escaped, never spliced', () => {
  const DROP = "'; DROP TABLE x; --";
  it.each<[string, Partial<MeterInput>, string, string]>([
    [
      'in a route',
      { filter: { routes: [`/a${DROP}`] } },
      COUNT_COLUMNS,
      String.raw`route = '/a\'; DROP TABLE x; --'`,
    ],
    [
      'in a template route',
      { filter: { routes: [`/a${DROP}/:id`] } },
      COUNT_COLUMNS,
      String.raw`match(route, '^/a\'; DROP TABLE x; --/[^/]+$')`,
    ],
    [
      'in a value',
      { filter: { where: [{ field: 'host', op: 'eq', value: DROP }] } },
      COUNT_COLUMNS,
      String.raw`host = '\'; DROP TABLE x; --'`,
    ],
    [
      'in a list',
      { filter: { where: [{ field: 'host', op: 'not_in', value: [DROP, 'a\\b'] }] } },
      COUNT_COLUMNS,
      String.raw`host NOT IN ('\'; DROP TABLE x; --', 'a\\b')`,
    ],
    [
      'in a metadata key',
      { filter: { where: [{ field: `metadata.x')] OR 1=1 --`, op: 'exists' }] } },
      COUNT_COLUMNS,
      String.raw`has(meta_keys, 'metadata.x\')] OR 1=1 --')`,
    ],
    [
      'backslashes and controls in a value',
      { filter: { where: [{ field: 'metadata.path', op: 'prefix', value: "C:\\dir\\'\n\0" }] } },
      COUNT_COLUMNS,
      String.raw`startsWith(meta_values[indexOf(meta_keys, 'metadata.path')], 'C:\\dir\\\'\n\0')`,
    ],
    [
      'a backslash at the end of a value',
      { filter: { where: [{ field: 'host', op: 'eq', value: 'x\\' }] } },
      COUNT_COLUMNS,
      String.raw`host = 'x\\'`,
    ],
    [
      'in a regex',
      { filter: { where: [{ field: 'user_id', op: 'matches', value: "\\d+'; --" }] } },
      COUNT_COLUMNS,
      String.raw`match(user_id, '\\d+\'; --')`,
    ],
  ])('%s', (_label, over, columns, condition) => {
    expect(compileMeterHourly(meter(over), WINDOW)).toBe(hourly(columns, COUNT, [condition]));
  });

  it('in a metadata customer key', () => {
    expect(compileMeterHourly(meter({ customer: `metadata.${DROP}` }), WINDOW)).toBe(
      hourly(
        String.raw`meta_values[indexOf(meta_keys, 'metadata.\'; DROP TABLE x; --')] AS customer, request_time, sample_weight`,
        COUNT,
        [],
      ),
    );
  });

  it('in the app', () => {
    expect(compileMeterHourly(meter({}), { ...WINDOW, app: `${DROP}\\` })).toBe(
      countWhere(String.raw`app = '\'; DROP TABLE x; --\\'`),
    );
  });
});

describe('compileMeterPeriod', () => {
  it('one row per customer over the whole range, without the hour', () => {
    const mau = meter({ name: 'mau', aggregation: { type: 'unique_count', value: 'user_id' } });
    expect(
      compileMeterPeriod(mau, {
        table: 'request_logs',
        from: new Date('2025-03-01T00:00:00Z'),
        to: new Date('2025-03-15T13:00:00Z'),
      }),
    ).toBe(
      [
        'SELECT customer, toString(uniqExact(metered)) AS value',
        'FROM (',
        '  SELECT company_id AS customer, user_id AS metered',
        '  FROM request_logs',
        "  WHERE request_time >= toDateTime('2025-03-01 00:00:00', 'UTC') AND request_time < toDateTime('2025-03-15 13:00:00', 'UTC')",
        "    AND user_id != ''",
        ')',
        'GROUP BY customer',
        'ORDER BY customer',
      ].join('\n'),
    );
  });

  it('keeps request_time for latest, which orders by it', () => {
    const latest = meter({ aggregation: { type: 'latest', value: 'latency_ms' }, filter: { status: 200 } });
    expect(compileMeterPeriod(latest, { ...WINDOW, app: 'a' })).toBe(
      [
        'SELECT customer, toString(argMax(metered, (request_time, request_time_ms, event_id))) AS value',
        'FROM (',
        '  SELECT company_id AS customer, request_time, latency_ms AS metered, request_time_ms, event_id',
        '  FROM db.request_logs',
        `  WHERE ${RANGE}`,
        "    AND app = 'a'",
        '    AND status = 200',
        ')',
        'GROUP BY customer',
        'ORDER BY customer',
      ].join('\n'),
    );
  });
});

describe('compile: refused input', () => {
  const m = meter({});
  it.each(['db.request-logs', 'a.b.c', "x'; DROP", '', 'db.'])('table %j', (table) => {
    expect(() => compileMeterHourly(m, { ...WINDOW, table })).toThrow(InvalidIdentifierError);
  });

  it.each<[string, Date, Date]>([
    ['from not on the hour', new Date('2025-03-01T00:00:01Z'), WINDOW.to],
    ['to not on the hour', WINDOW.from, new Date('2025-03-01T10:30:00Z')],
    ['an empty range', WINDOW.from, WINDOW.from],
    ['a backwards range', WINDOW.to, WINDOW.from],
    ['an invalid date', new Date('nope'), WINDOW.to],
  ])('%s', (_label, from, to) => {
    expect(() => compileMeterHourly(m, { ...WINDOW, from, to })).toThrow(RangeError);
    expect(() => compileMeterPeriod(m, { ...WINDOW, from, to })).toThrow(RangeError);
  });

  it('a definition that the schema refuses, even when built in code', () => {
    const forged = { ...m, customer: 'host); DROP TABLE x; --' } as MeterDefinition;
    expect(() => compileMeterHourly(forged, WINDOW)).toThrow(ZodError);
    const badField = {
      ...m,
      filter: { where: [{ field: 'route) OR (1', op: 'exists' }] },
    } as MeterDefinition;
    expect(() => compileMeterPeriod(badField, WINDOW)).toThrow(ZodError);
  });
});

describe('compileMeterFirstSeen', () => {
  it('counts each value once, in the hour it was first seen, for running period-to-date unique counts', () => {
    const mau = meter({ name: 'mau', aggregation: { type: 'unique_count', value: 'user_id' } });
    expect(compileMeterFirstSeen(mau, WINDOW)).toBe(
      [
        'SELECT customer, toStartOfHour(first_seen) AS hour, toString(count()) AS value',
        'FROM (',
        'SELECT customer, metered, min(request_time) AS first_seen',
        'FROM (',
        '  SELECT company_id AS customer, request_time, user_id AS metered',
        '  FROM db.request_logs',
        `  WHERE ${RANGE}`,
        "    AND user_id != ''",
        ')',
        'GROUP BY customer, metered',
        ')',
        'GROUP BY customer, hour',
        'ORDER BY customer, hour',
      ].join('\n'),
    );
    expect(() => compileMeterFirstSeen(meter({}), WINDOW)).toThrow('unique_count');
  });
});

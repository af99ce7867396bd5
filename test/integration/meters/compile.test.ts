// The meter compiler's SQL on both ClickHouse engines (18.16 server, 26.x embedded), against known
// rows with known answers: mixed routes and statuses, a duplicated event id stored twice (merges
// stopped, so the copy is really there), the same event id in another app, events on both sides of
// hour and range boundaries, sample weights, metadata and headers, and hostile strings.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { compileMeterHourly, compileMeterPeriod } from '../../../src/meters/compile.ts';
import type { CompileOptions } from '../../../src/meters/compile.ts';
import { loadMeters } from '../../../src/meters/load-meters.ts';
import { meterSchema } from '../../../src/meters/meter-schema.ts';
import type { MeterDefinition, MeterInput } from '../../../src/meters/meter-schema.ts';
import { MIGRATIONS } from '../../../src/storage/clickhouse/migrations.ts';
import type { RequestLogRow } from '../../../src/collector/request-log.ts';
import { ENGINES, createTestClient } from '../../support/clickhouse.ts';
import type { TestClient } from '../../support/clickhouse.ts';

const DAY = '2025-03-01';
const at = (time: string): Date => new Date(`${DAY}T${time}Z`);

interface Fixture {
  id: string;
  time: string; // hh:mm:ss(.sss) on DAY, UTC
  app?: string;
  company?: string;
  user?: string;
  customerKey?: string;
  method?: string;
  route?: string;
  status?: number;
  weight?: number;
  responseBytes?: number;
  latencyMs?: number;
  host?: string;
  apiVersion?: string;
  meta?: Record<string, string>;
}

function row(f: Fixture): RequestLogRow {
  const ms = at(f.time).getTime();
  const company = f.company ?? '';
  const user = f.user ?? '';
  return {
    event_id: f.id,
    app: f.app ?? 'app_1',
    received_at: Math.floor(ms / 1000),
    request_time: Math.floor(ms / 1000),
    request_time_ms: ms % 1000,
    customer_key: f.customerKey ?? (company || user),
    company_id: company,
    user_id: user,
    method: f.method ?? 'GET',
    route: f.route ?? '/',
    host: f.host ?? 'api.test',
    status: f.status ?? 200,
    latency_ms: f.latencyMs ?? 0,
    request_bytes: 0,
    response_bytes: f.responseBytes ?? 0,
    api_version: f.apiVersion ?? '',
    source_format: 'native',
    sample_weight: f.weight ?? 1,
    meta_keys: Object.keys(f.meta ?? {}),
    meta_values: Object.values(f.meta ?? {}),
  };
}

const CREDIT = { method: 'POST', route: '/RetrieveCreditScore' } as const;
const HOSTILE_HOST = "'; DROP TABLE x; --";
const HOSTILE_PATH = 'C:\\dir\\';
const HOSTILE_ORG = "o'; --";

const DUPLICATED: Fixture = {
  id: 'e05',
  time: '13:00:00',
  company: 'acme',
  user: 'u1',
  ...CREDIT,
  responseBytes: 300,
  latencyMs: 40,
  apiVersion: '2024-06-01',
  meta: { 'metadata.tokens': '1.5' },
};

const FIXTURES: Fixture[] = [
  {
    id: 'e01',
    time: '12:00:00',
    company: 'acme',
    user: 'u1',
    ...CREDIT,
    responseBytes: 100,
    latencyMs: 30,
    apiVersion: '2024-06-01',
    meta: { 'metadata.tokens': '5', 'metadata.plan': 'pro', 'header.x-org': 'org-a' },
  },
  {
    id: 'e02',
    time: '12:59:59.999',
    company: 'acme',
    user: 'u2',
    ...CREDIT,
    responseBytes: 200,
    latencyMs: 50,
    apiVersion: '2024-06-01',
    meta: { 'metadata.tokens': '7', 'metadata.plan': 'pro' },
  },
  {
    id: 'e03',
    time: '12:30:00',
    company: 'acme',
    user: 'u1',
    ...CREDIT,
    status: 500,
    responseBytes: 50,
    latencyMs: 900,
    apiVersion: '2023-01-01',
    meta: { 'metadata.tokens': '100' },
  },
  {
    id: 'e04',
    time: '12:10:00',
    company: 'acme',
    user: 'u3',
    route: '/health',
    responseBytes: 2,
    latencyMs: 1,
  },
  DUPLICATED,
  {
    id: 'e06',
    time: '13:59:59.500',
    company: 'globex',
    user: 'u9',
    ...CREDIT,
    weight: 10,
    responseBytes: 1000,
    latencyMs: 70,
    host: 'eu.api.test',
    apiVersion: '2024-06-01',
    meta: { 'metadata.tokens': '3', 'metadata.plan': 'free', 'header.x-org': 'org-b' },
  },
  {
    id: 'e07',
    time: '13:10:00',
    company: 'globex',
    user: 'u9',
    ...CREDIT,
    status: 201,
    responseBytes: 10,
    latencyMs: 60,
    host: 'eu.api.test',
    meta: { 'metadata.tokens': '-2' },
  },
  { id: 'e08', time: '09:59:59', company: 'acme', user: 'u1', ...CREDIT, responseBytes: 1 }, // before the range
  { id: 'e09', time: '15:00:00', company: 'acme', user: 'u1', ...CREDIT, responseBytes: 1 }, // at its (exclusive) end
  { id: 'e10', time: '14:00:00', customerKey: 'explicit-cust', ...CREDIT, responseBytes: 5 }, // no company, no user
  { id: 'e01', time: '12:00:00', app: 'app_2', company: 'acme', user: 'u1', ...CREDIT, responseBytes: 100 }, // same id, other app
  { id: 'e11', time: '14:10:00', company: 'routes', user: 'u4', route: '/users/42' },
  { id: 'e12', time: '14:11:00', company: 'routes', user: 'u4', route: '/users/42/orders' },
  { id: 'e13', time: '14:12:00', company: 'routes', user: 'u4', route: '/v1', status: 404 },
  { id: 'e14', time: '14:13:00', company: 'routes', user: 'u4', route: '/v1/widgets' },
  { id: 'e15', time: '14:14:00', company: 'routes', user: 'u4', route: '/v1/widgets/7', status: 204 },
  { id: 'e16', time: '14:15:00', company: 'routes', user: 'u4', route: '/files/a.json' },
  { id: 'e17', time: '14:16:00', company: 'routes', user: 'u4', route: '/files/ajson' },
  {
    id: 'e18',
    time: '14:20:00',
    company: 'hostile',
    user: 'u5',
    route: "/q'uote",
    status: 418,
    host: HOSTILE_HOST,
    meta: { 'metadata.path': HOSTILE_PATH, 'header.x-org': HOSTILE_ORG },
  },
  // latest: seats over time for customer 'tie'; e19 and e20 share the same millisecond.
  { id: 'e21', time: '10:30:00', company: 'tie', route: '/seats', meta: { 'metadata.seats': '2' } },
  { id: 'e23', time: '10:30:00.500', company: 'tie', route: '/seats', meta: { 'metadata.seats': '3' } },
  { id: 'e19', time: '11:00:00', company: 'tie', route: '/seats', meta: { 'metadata.seats': '4' } },
  { id: 'e20', time: '11:00:00', company: 'tie', route: '/seats', meta: { 'metadata.seats': '9' } },
  { id: 'e22', time: '11:30:00', company: 'tie', route: '/seats' }, // no seats: not a value
];

const hourlyRow = z.object({ customer: z.string(), hour: z.string(), value: z.string() });
const periodRow = z.object({ customer: z.string(), value: z.string() });

/** [customer, hour of DAY, value] */
type Hourly = [string, number, string];
/** [customer, value] */
type Period = [string, string];

interface Case {
  name: string;
  meter: Partial<MeterInput>;
  opts?: Partial<CompileOptions>;
  hourly: Hourly[];
  period?: Period[];
}

const CREDIT_FILTER = { routes: ['/RetrieveCreditScore'], status: 200 };

const CASES: Case[] = [
  {
    name: 'credit score: only 200s on /RetrieveCreditScore, a duplicate once, weights, boundaries',
    meter: { filter: CREDIT_FILTER },
    hourly: [
      ['', 14, '1'],
      ['acme', 12, '2'],
      ['acme', 13, '1'],
      ['globex', 13, '10'],
    ],
    period: [
      ['', '1'],
      ['acme', '3'],
      ['globex', '10'],
    ],
  },
  {
    name: 'credit score, all apps: the same event id in another app is another event',
    meter: { filter: CREDIT_FILTER },
    opts: { app: undefined },
    hourly: [
      ['', 14, '1'],
      ['acme', 12, '3'],
      ['acme', 13, '1'],
      ['globex', 13, '10'],
    ],
    period: [
      ['', '1'],
      ['acme', '4'],
      ['globex', '10'],
    ],
  },
  {
    name: 'hour 12 only: 12:59:59.999 is in, 13:00:00 is out',
    meter: { filter: CREDIT_FILTER },
    opts: { from: at('12:00:00'), to: at('13:00:00') },
    hourly: [['acme', 12, '2']],
  },
  {
    name: 'hour 13 only: 13:00:00 is in, 12:59:59.999 is out',
    meter: { filter: CREDIT_FILTER },
    opts: { from: at('13:00:00'), to: at('14:00:00') },
    hourly: [
      ['acme', 13, '1'],
      ['globex', 13, '10'],
    ],
  },
  {
    name: 'status class 2xx',
    meter: { filter: { routes: ['/RetrieveCreditScore'], status: '2xx' } },
    hourly: [
      ['', 14, '1'],
      ['acme', 12, '2'],
      ['acme', 13, '1'],
      ['globex', 13, '11'],
    ],
  },
  {
    name: 'status list of a code and a class',
    meter: { filter: { routes: ['/RetrieveCreditScore'], status: [201, '5xx'] } },
    hourly: [
      ['acme', 12, '1'],
      ['globex', 13, '1'],
    ],
  },
  {
    name: 'status range',
    meter: { filter: { status: '400-499' } },
    hourly: [
      ['hostile', 14, '1'],
      ['routes', 14, '1'],
    ],
  },
  {
    name: 'template /users/:id',
    meter: { filter: { routes: ['/users/:id'] } },
    hourly: [['routes', 14, '1']],
  },
  { name: 'glob /v1/*', meter: { filter: { routes: ['/v1/*'] } }, hourly: [['routes', 14, '1']] },
  { name: 'glob /v1/**', meter: { filter: { routes: ['/v1/**'] } }, hourly: [['routes', 14, '3']] },
  {
    name: 'glob /files/*.json: the dot is literal',
    meter: { filter: { routes: ['/files/*.json'] } },
    hourly: [['routes', 14, '1']],
  },
  {
    name: 'exact routes and a template together',
    meter: { filter: { routes: ['/users/:id', '/v1', '/health'] } },
    hourly: [
      ['acme', 12, '1'],
      ['routes', 14, '2'],
    ],
  },
  {
    name: 'methods',
    meter: {
      filter: { methods: ['get'], status: 200, routes: ['/health', '/users/:id', '/v1/**', '/files/*'] },
    },
    hourly: [
      ['acme', 12, '1'],
      ['routes', 14, '4'],
    ],
  },
  // aggregations
  {
    name: 'sum of response_bytes, weighted',
    meter: { aggregation: { type: 'sum', value: 'response_bytes' } },
    hourly: [
      ['', 14, '5'],
      ['acme', 12, '352'],
      ['acme', 13, '300'],
      ['globex', 13, '10010'],
      ['hostile', 14, '0'],
      ['routes', 14, '0'],
      ['tie', 10, '0'],
      ['tie', 11, '0'],
    ],
    period: [
      ['', '5'],
      ['acme', '652'],
      ['globex', '10010'],
      ['hostile', '0'],
      ['routes', '0'],
      ['tie', '0'],
    ],
  },
  {
    name: 'unique_count of user_id: the period is not the sum of the hours',
    meter: { aggregation: { type: 'unique_count', value: 'user_id' } },
    hourly: [
      ['acme', 12, '3'],
      ['acme', 13, '1'],
      ['globex', 13, '1'],
      ['hostile', 14, '1'],
      ['routes', 14, '1'],
    ],
    period: [
      ['acme', '3'],
      ['globex', '1'],
      ['hostile', '1'],
      ['routes', '1'],
    ],
  },
  {
    name: 'min of latency_ms',
    meter: {
      filter: { routes: ['/RetrieveCreditScore'] },
      aggregation: { type: 'min', value: 'latency_ms' },
    },
    hourly: [
      ['', 14, '0'],
      ['acme', 12, '30'],
      ['acme', 13, '40'],
      ['globex', 13, '60'],
    ],
    period: [
      ['', '0'],
      ['acme', '30'],
      ['globex', '60'],
    ],
  },
  {
    name: 'max of latency_ms',
    meter: {
      filter: { routes: ['/RetrieveCreditScore'] },
      aggregation: { type: 'max', value: 'latency_ms' },
    },
    hourly: [
      ['', 14, '0'],
      ['acme', 12, '900'],
      ['acme', 13, '40'],
      ['globex', 13, '70'],
    ],
    period: [
      ['', '0'],
      ['acme', '900'],
      ['globex', '70'],
    ],
  },
  {
    name: 'sum of integer metadata, weighted; 1.5 and missing values left out',
    meter: {
      filter: { routes: ['/RetrieveCreditScore'] },
      aggregation: { type: 'sum', value: 'metadata.tokens' },
    },
    hourly: [
      ['acme', 12, '112'],
      ['globex', 13, '28'],
    ],
    period: [
      ['acme', '112'],
      ['globex', '28'],
    ],
  },
  {
    name: 'latest of metadata: by time, then milliseconds, then event id',
    meter: { aggregation: { type: 'latest', value: 'metadata.seats' } },
    hourly: [
      ['tie', 10, '3'],
      ['tie', 11, '9'],
    ],
    period: [['tie', '9']],
  },
  // where operators on metadata, headers and columns
  {
    name: 'metadata eq',
    meter: { filter: { where: [{ field: 'metadata.plan', op: 'eq', value: 'pro' }] } },
    hourly: [['acme', 12, '2']],
  },
  {
    name: 'header eq, any case',
    meter: { filter: { where: [{ field: 'header.X-Org', op: 'eq', value: 'org-b' }] } },
    hourly: [['globex', 13, '10']],
  },
  {
    name: 'metadata exists',
    meter: { filter: { where: [{ field: 'metadata.plan', op: 'exists' }] } },
    hourly: [
      ['acme', 12, '2'],
      ['globex', 13, '10'],
    ],
  },
  {
    name: 'metadata not_in: a missing key is empty, so not in the list',
    meter: {
      filter: { ...CREDIT_FILTER, where: [{ field: 'metadata.plan', op: 'not_in', value: ['pro'] }] },
    },
    hourly: [
      ['', 14, '1'],
      ['acme', 13, '1'],
      ['globex', 13, '10'],
    ],
  },
  {
    name: 'metadata gt an integer: numeric, not text ("100" > 4)',
    meter: { filter: { where: [{ field: 'metadata.tokens', op: 'gt', value: 4 }] } },
    hourly: [['acme', 12, '3']],
  },
  {
    name: 'metadata lte a negative-friendly integer',
    meter: { filter: { where: [{ field: 'metadata.tokens', op: 'lte', value: 3 }] } },
    hourly: [['globex', 13, '11']],
  },
  {
    name: 'text gte a string: as text',
    meter: { filter: { where: [{ field: 'api_version', op: 'gte', value: '2024-01-01' }] } },
    hourly: [
      ['acme', 12, '2'],
      ['acme', 13, '1'],
      ['globex', 13, '10'],
    ],
  },
  {
    name: 'integer column gt',
    meter: { filter: { where: [{ field: 'latency_ms', op: 'gt', value: 60 }] } },
    hourly: [
      ['acme', 12, '1'],
      ['globex', 13, '10'],
    ],
  },
  {
    name: 'integer column in',
    meter: { filter: { where: [{ field: 'status', op: 'in', value: [201, 404] }] } },
    hourly: [
      ['globex', 13, '1'],
      ['routes', 14, '1'],
    ],
  },
  {
    name: 'ne',
    meter: { filter: { where: [{ field: 'host', op: 'ne', value: 'api.test' }] } },
    hourly: [
      ['globex', 13, '11'],
      ['hostile', 14, '1'],
    ],
  },
  {
    name: 'prefix',
    meter: { filter: { where: [{ field: 'route', op: 'prefix', value: '/v1' }] } },
    hourly: [['routes', 14, '3']],
  },
  {
    name: 'matches',
    meter: { filter: { where: [{ field: 'host', op: 'matches', value: '^eu\\.' }] } },
    hourly: [['globex', 13, '11']],
  },
  {
    name: 'a text column exists: not empty',
    meter: { filter: { ...CREDIT_FILTER, where: [{ field: 'user_id', op: 'exists' }] } },
    hourly: [
      ['acme', 12, '2'],
      ['acme', 13, '1'],
      ['globex', 13, '10'],
    ],
  },
  // customers
  {
    name: 'customer user_id',
    meter: { filter: CREDIT_FILTER, customer: 'user_id' },
    hourly: [
      ['', 14, '1'],
      ['u1', 12, '1'],
      ['u1', 13, '1'],
      ['u2', 12, '1'],
      ['u9', 13, '10'],
    ],
  },
  {
    name: 'customer customer_key',
    meter: { filter: CREDIT_FILTER, customer: 'customer_key' },
    hourly: [
      ['acme', 12, '2'],
      ['acme', 13, '1'],
      ['explicit-cust', 14, '1'],
      ['globex', 13, '10'],
    ],
  },
  {
    name: 'customer metadata',
    meter: { filter: CREDIT_FILTER, customer: 'metadata.plan' },
    hourly: [
      ['', 13, '1'],
      ['', 14, '1'],
      ['free', 13, '10'],
      ['pro', 12, '2'],
    ],
  },
  {
    name: 'customer header',
    meter: { filter: CREDIT_FILTER, customer: 'header.X-Org' },
    hourly: [
      ['', 12, '1'],
      ['', 13, '1'],
      ['', 14, '1'],
      ['org-a', 12, '1'],
      ['org-b', 13, '10'],
    ],
  },
  // hostile strings find exactly the rows holding them
  { name: 'a quote in a route', meter: { filter: { routes: ["/q'uote"] } }, hourly: [['hostile', 14, '1']] },
  {
    name: 'SQL in a value',
    meter: { filter: { where: [{ field: 'host', op: 'eq', value: HOSTILE_HOST }] } },
    hourly: [['hostile', 14, '1']],
  },
  {
    name: 'backslashes in a value',
    meter: { filter: { where: [{ field: 'metadata.path', op: 'eq', value: HOSTILE_PATH }] } },
    hourly: [['hostile', 14, '1']],
  },
  {
    name: 'backslashes in a regex',
    meter: { filter: { where: [{ field: 'metadata.path', op: 'matches', value: '^C:\\\\dir\\\\$' }] } },
    hourly: [['hostile', 14, '1']],
  },
  {
    name: 'a hostile header value as the customer',
    meter: {
      filter: { where: [{ field: 'header.x-org', op: 'in', value: [HOSTILE_ORG] }] },
      customer: 'header.x-org',
    },
    hourly: [[HOSTILE_ORG, 14, '1']],
  },
  {
    name: 'an injection attempt matches nothing',
    meter: { filter: { where: [{ field: 'host', op: 'eq', value: "x' OR '1'='1" }] } },
    hourly: [],
    period: [],
  },
];

const hourText = (hour: number) => `${DAY} ${String(hour).padStart(2, '0')}:00:00`;

describe.each(ENGINES)('meter SQL on the %s engine', (engine) => {
  let ch: TestClient;
  let table: string;
  const defaults = (): CompileOptions => ({ table, app: 'app_1', from: at('10:00:00'), to: at('15:00:00') });

  beforeAll(async () => {
    ch = await createTestClient(engine, 'meters_compile');
    for (const statement of MIGRATIONS[0]!.statements(ch.database))
      await ch.client.command({ query: statement });
    table = `${ch.database}.request_logs`;
    // Keep the duplicate as a second row: with merges stopped, only the query can collapse it.
    await ch.client.command({ query: `SYSTEM STOP MERGES ${table}` });
    await ch.client.insert({ table, values: FIXTURES.map(row), format: 'JSONEachRow' });
    await ch.client.insert({ table, values: [row(DUPLICATED)], format: 'JSONEachRow' });
  });

  afterAll(async () => {
    await ch?.dropDatabase();
  });

  async function select<S extends z.ZodType>(query: string, schema: S): Promise<z.infer<S>[]> {
    const result = await ch.client.query({ query, format: 'JSONEachRow' });
    return z.array(schema).parse(await result.json());
  }

  it('really stores the duplicated event twice', async () => {
    const rows = await select(
      `SELECT toString(count()) AS n FROM ${table} WHERE event_id = 'e05'`,
      z.object({ n: z.string() }),
    );
    expect(rows).toEqual([{ n: '2' }]);
  });

  it.each(CASES)('$name', async (c) => {
    const meter: MeterDefinition = meterSchema.parse({
      name: 'case',
      description: '',
      unit: 'calls',
      aggregation: { type: 'count' },
      ...c.meter,
    });
    const opts = { ...defaults(), ...c.opts };
    const hourly = await select(compileMeterHourly(meter, opts), hourlyRow);
    expect(hourly).toEqual(
      c.hourly.map(([customer, hour, value]) => ({ customer, hour: hourText(hour), value })),
    );
    if (c.period !== undefined) {
      const period = await select(compileMeterPeriod(meter, opts), periodRow);
      expect(period).toEqual(c.period.map(([customer, value]) => ({ customer, value })));
    }
  });

  it('the shipped meters give the known numbers', async () => {
    const { meters, errors } = await loadMeters(new URL('../../../meters', import.meta.url).pathname);
    expect(errors).toEqual([]);
    const byName = new Map(meters.map((m) => [m.definition.name, m.definition]));
    const period = async (name: string) => {
      const meter = byName.get(name);
      if (meter === undefined) throw new Error(`no shipped meter ${name}`);
      return (await select(compileMeterPeriod(meter, defaults()), periodRow)).map((r) => [
        r.customer,
        r.value,
      ]);
    };
    expect(await period('retrieve-credit-score')).toEqual([
      ['', '1'],
      ['acme', '3'],
      ['globex', '10'],
    ]);
    expect(await period('response-bytes')).toEqual([
      ['', '5'],
      ['acme', '652'],
      ['globex', '10010'],
      ['hostile', '0'],
      ['routes', '0'],
      ['tie', '0'],
    ]);
    expect(await period('monthly-active-users')).toEqual([
      ['acme', '3'],
      ['globex', '1'],
      ['hostile', '1'],
      ['routes', '1'],
    ]);
  });

  it('a monthly unique_count is not the sum of its hourly values', async () => {
    const mau = meterSchema.parse({
      name: 'mau',
      description: '',
      unit: 'users',
      aggregation: { type: 'unique_count', value: 'user_id' },
    });
    const hours = await select(compileMeterHourly(mau, defaults()), hourlyRow);
    const acmeHourSum = hours
      .filter((r) => r.customer === 'acme')
      .reduce((sum, r) => sum + BigInt(r.value), 0n);
    const [acmePeriod] = (await select(compileMeterPeriod(mau, defaults()), periodRow)).filter(
      (r) => r.customer === 'acme',
    );
    expect(acmeHourSum).toBe(4n);
    expect(acmePeriod?.value).toBe('3');
  });
});

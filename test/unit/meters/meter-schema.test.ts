import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadMeters, parseMeterText } from '../../../src/meters/load-meters.ts';
import { meterSchema, OPS, parseField, parseRoute, re2Problem } from '../../../src/meters/meter-schema.ts';
import type { MeterInput } from '../../../src/meters/meter-schema.ts';

const base: MeterInput = {
  name: 'm',
  description: 'a meter',
  aggregation: { type: 'count' },
  unit: 'calls',
};

/** The reasons a meter is refused, as `path: message`, or [] when it is valid. */
function problems(meter: unknown): string[] {
  const result = meterSchema.safeParse(meter);
  return result.success ? [] : result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
}

const withWhere = (...where: unknown[]) => ({ ...base, filter: { where } });

describe('meterSchema: valid meters', () => {
  it('applies defaults: customer company_id, empty filter', () => {
    expect(meterSchema.parse(base)).toEqual({ ...base, customer: 'company_id', filter: {} });
  });

  it('accepts every block at once and normalises spellings', () => {
    const parsed = meterSchema.parse({
      ...base,
      filter: {
        routes: ['/RetrieveCreditScore', '/users/:id', '/v1/*', '/v1/**'],
        methods: ['get', 'Post'],
        status: '2xx',
        where: [{ field: 'header.X-Plan', op: 'eq', value: 'pro' }],
      },
      aggregation: { type: 'sum', value: 'metadata.tokens' },
      customer: 'header.X-Org-Id',
      stripe: { event_name: 'tokens_used' },
      pricing: {
        currency: 'usd',
        tiers_mode: 'volume',
        tiers: [{ up_to: 'inf', unit_amount_decimal: '0.5' }],
      },
      quota: 1000,
      effective_from: '2025-03-01T01:00:00+01:00',
    });
    expect(parsed.filter).toEqual({
      routes: ['/RetrieveCreditScore', '/users/:id', '/v1/*', '/v1/**'],
      methods: ['GET', 'POST'],
      status: ['2xx'],
      where: [{ field: 'header.x-plan', op: 'eq', value: 'pro' }],
    });
    expect(parsed.customer).toBe('header.x-org-id');
    expect(parsed.effective_from).toBe('2025-03-01T00:00:00.000Z');
  });

  it.each([[200], ['2xx'], ['200-299'], [[200, '3xx', '400-404']]])('accepts status %j', (status) => {
    expect(problems({ ...base, filter: { status } })).toEqual([]);
  });

  it.each([
    ['count', undefined],
    ['sum', 'response_bytes'],
    ['sum', 'metadata.tokens'],
    ['min', 'latency_ms'],
    ['max', 'request_bytes'],
    ['latest', 'header.x-seats'],
    ['unique_count', 'user_id'],
    ['unique_count', 'status'],
    ['unique_count', 'metadata.session'],
  ])('accepts aggregation %s of %s', (type, value) => {
    expect(problems({ ...base, aggregation: value === undefined ? { type } : { type, value } })).toEqual([]);
  });

  it.each(['company_id', 'user_id', 'customer_key', 'metadata.org', 'header.x-org'])(
    'accepts customer %s',
    (c) => {
      expect(problems({ ...base, customer: c })).toEqual([]);
    },
  );
});

describe('meterSchema: every where operator', () => {
  // [op, field, value, accepted]
  it.each<[string, string, unknown, boolean]>([
    ['eq', 'host', 'api.test', true],
    ['eq', 'metadata.tier', 2, true],
    ['eq', 'metadata.flag', true, true],
    ['eq', 'status', 200, true],
    ['eq', 'status', '200', false],
    ['eq', 'status', -1, false],
    ['eq', 'host', ['a'], false],
    ['ne', 'api_version', 'v1', true],
    ['ne', 'latency_ms', 1.5, false],
    ['in', 'company_id', ['a', 'b'], true],
    ['in', 'status', [200, 201], true],
    ['in', 'status', [200, 'x'], false],
    ['in', 'company_id', 'a', false],
    ['in', 'company_id', [], false],
    ['not_in', 'metadata.plan', ['free'], true],
    ['not_in', 'metadata.plan', 'free', false],
    ['gt', 'latency_ms', 500, true],
    ['gt', 'metadata.tokens', 10, true],
    ['gt', 'metadata.tokens', 1.5, false],
    ['gte', 'api_version', '2024-01-01', true],
    ['gte', 'latency_ms', '500', false],
    ['lt', 'response_bytes', 0, true],
    ['lt', 'host', true, false],
    ['lte', 'header.x-n', 3, true],
    ['exists', 'metadata.plan', undefined, true],
    ['exists', 'company_id', undefined, true],
    ['exists', 'metadata.plan', 'x', false],
    ['exists', 'status', undefined, false],
    ['prefix', 'route', '/v1/', true],
    ['prefix', 'route', '', false],
    ['prefix', 'status', '2', false],
    ['matches', 'user_id', '^u-[0-9]+$', true],
    ['matches', 'user_id', '(?P<n>x)(?i)y\\Q(\\E', true],
    ['matches', 'user_id', 'x'.repeat(257), false],
    ['matches', 'user_id', '(a', false],
    ['matches', 'user_id', '(?=a)', false],
    ['matches', 'user_id', '(a)\\1', false],
    ['matches', 'user_id', '(?<n>a)', false],
    ['matches', 'user_id', 5, false],
    ['eq', 'request_time', 1, false],
    ['eq', 'meta_keys', 'x', false],
    ['eq', 'nope', 'x', false],
    ['eq', 'metadata.', 'x', false],
    ['eq', 'header.bad name', 'x', false],
  ])('%s on %s with %j: accepted %s', (op, field, value, accepted) => {
    const cond = value === undefined ? { field, op } : { field, op, value };
    expect(problems(withWhere(cond)).length === 0).toBe(accepted);
  });

  it('knows the eleven operators of the spec', () => {
    expect(OPS).toEqual([
      'eq',
      'ne',
      'in',
      'not_in',
      'gt',
      'gte',
      'lt',
      'lte',
      'exists',
      'prefix',
      'matches',
    ]);
  });

  it('refuses an unknown operator, naming the operators', () => {
    expect(problems(withWhere({ field: 'host', op: 'like', value: 'x' }))).toEqual([
      'filter.where.0.op: must be one of eq, ne, in, not_in, gt, gte, lt, lte, exists, prefix, matches',
    ]);
  });
});

describe('meterSchema: invalid meters', () => {
  it.each<[string, unknown, string]>([
    ['a name that is not a slug', { ...base, name: 'Credit Score' }, 'name: must be a slug'],
    ['a name of 64 characters', { ...base, name: 'a'.repeat(64) }, 'name: must be a slug'],
    ['no description', { ...base, description: undefined }, 'description: '],
    ['an empty unit', { ...base, unit: '' }, 'unit: must not be empty'],
    [
      'count with a value',
      { ...base, aggregation: { type: 'count', value: 'latency_ms' } },
      'aggregation.value:',
    ],
    [
      'sum without a value',
      { ...base, aggregation: { type: 'sum' } },
      "aggregation: 'sum' needs a value field",
    ],
    [
      'sum of a text column',
      { ...base, aggregation: { type: 'sum', value: 'user_id' } },
      "'sum' needs a numeric field",
    ],
    [
      'max of status',
      { ...base, aggregation: { type: 'max', value: 'status' } },
      "'max' needs a numeric field",
    ],
    [
      'an unknown aggregation',
      { ...base, aggregation: { type: 'avg', value: 'latency_ms' } },
      'aggregation.type: must be one of',
    ],
    ['customer host', { ...base, customer: 'host' }, 'customer: must be company_id'],
    ['customer response header', { ...base, customer: 'response_header.x' }, 'customer: must be company_id'],
    ['a route without /', { ...base, filter: { routes: ['v1'] } }, "must start with '/'"],
    ['a route with a query', { ...base, filter: { routes: ['/v1?a=1'] } }, "must not contain '?'"],
    ['a bad template', { ...base, filter: { routes: ['/users/:'] } }, "template segment ':'"],
    ['a partial **', { ...base, filter: { routes: ['/v1/a**'] } }, "'**' must be a whole segment"],
    ['an empty route list', { ...base, filter: { routes: [] } }, 'routes must list at least one'],
    ['a method with digits', { ...base, filter: { methods: ['G3T'] } }, 'a method is 1 to 16 letters'],
    ['status 99', { ...base, filter: { status: 99 } }, 'status 99 must be an integer from 100 to 599'],
    ['status 6xx', { ...base, filter: { status: '6xx' } }, "got '6xx'"],
    ['a backwards range', { ...base, filter: { status: '299-200' } }, "status range '299-200' must go up"],
    [
      'a bad stripe event name',
      { ...base, stripe: { event_name: 'a b' } },
      'stripe.event_name: must be 1 to 100',
    ],
    [
      'a pricing block without inf',
      {
        ...base,
        pricing: {
          currency: 'usd',
          tiers_mode: 'graduated',
          tiers: [{ up_to: 10, unit_amount_decimal: '1' }],
        },
      },
      "the last tier must have up_to: 'inf'",
    ],
    ['a negative quota', { ...base, quota: -1 }, 'quota:'],
    [
      'effective_from not on the hour',
      { ...base, effective_from: '2025-01-01T00:30:00Z' },
      'must be a whole hour',
    ],
    [
      'effective_from without a zone',
      { ...base, effective_from: '2025-01-01T00:00:00' },
      'must be an ISO time with a zone',
    ],
  ])('refuses %s', (_label, meter, expected) => {
    expect(problems(meter).join('\n')).toContain(expected);
  });

  it('refuses unknown keys at every level, naming the allowed ones', () => {
    expect(problems({ ...base, colour: 'red' })).toEqual([
      ": unknown key(s) 'colour'; allowed: name, description, filter, aggregation, customer, unit, stripe, pricing, quota, alerts, effective_from",
    ]);
    expect(problems({ ...base, filter: { route: ['/x'] } })).toEqual([
      "filter: unknown key(s) 'route'; allowed: routes, methods, status, where",
    ]);
    expect(problems(withWhere({ field: 'host', op: 'eq', value: 'x', values: ['y'] }))).toEqual([
      "filter.where.0: unknown key(s) 'values'; allowed: field, op, value",
    ]);
    expect(problems({ ...base, aggregation: { type: 'count', field: 'x' } })).toEqual([
      "aggregation: unknown key(s) 'field'; allowed: type, value",
    ]);
    expect(problems({ ...base, stripe: { event_name: 'x', meter_id: 'm' } })).toEqual([
      "stripe: unknown key(s) 'meter_id'; allowed: event_name",
    ]);
  });
});

describe('parseField', () => {
  it.each([
    ['company_id', { kind: 'column', type: 'text', column: 'company_id' }],
    ['latency_ms', { kind: 'column', type: 'integer', column: 'latency_ms' }],
    ['metadata.a.b', { kind: 'meta', type: 'text', key: 'metadata.a.b' }],
    ["metadata.it's", { kind: 'meta', type: 'text', key: "metadata.it's" }],
    ['header.X-Plan', { kind: 'meta', type: 'text', key: 'header.x-plan' }],
    ['response_header.Content-Type', { kind: 'meta', type: 'text', key: 'response_header.content-type' }],
  ])('%s', (name, expected) => {
    expect(parseField(name)).toEqual(expected);
  });
});

describe('parseRoute', () => {
  it.each([
    ['/RetrieveCreditScore', { kind: 'exact', path: '/RetrieveCreditScore' }],
    ['/', { kind: 'exact', path: '/' }],
    ['/v1/things:batchGet', { kind: 'exact', path: '/v1/things:batchGet' }],
    ['/users/:id', { kind: 'pattern', regex: '^/users/[^/]+$' }],
    ['/users/:id/orders/:order_id', { kind: 'pattern', regex: '^/users/[^/]+/orders/[^/]+$' }],
    ['/v1/*', { kind: 'pattern', regex: '^/v1/[^/]*$' }],
    ['/v1/**', { kind: 'pattern', regex: '^/v1(/.*)?$' }],
    ['/**/health', { kind: 'pattern', regex: '^(/.*)?/health$' }],
    ['/files/*.json', { kind: 'pattern', regex: '^/files/[^/]*\\.json$' }],
    ['/a+b/(c)/:id', { kind: 'pattern', regex: '^/a\\+b/\\(c\\)/[^/]+$' }],
  ])('%s', (route, expected) => {
    expect(parseRoute(route)).toEqual(expected);
  });

  it.each([
    ['/v1/**', ['/v1', '/v1/', '/v1/a', '/v1/a/b'], ['/v10', '/v2/a']],
    ['/v1/*', ['/v1/', '/v1/a'], ['/v1', '/v1/a/b']],
    ['/users/:id', ['/users/1', '/users/abc'], ['/users/', '/users/1/x', '/users']],
    ['/**/health', ['/health', '/a/health', '/a/b/health'], ['/healthz', '/a/health/x']],
  ])('%s matches what it should (checked with a JS RegExp of the same syntax)', (route, yes, no) => {
    const parsed = parseRoute(route);
    if (!('regex' in parsed)) throw new Error('expected a pattern');
    const re = new RegExp(parsed.regex);
    for (const path of yes) expect(re.test(path), path).toBe(true);
    for (const path of no) expect(re.test(path), path).toBe(false);
  });
});

describe('re2Problem', () => {
  it.each([
    'a|b',
    '^[a-z]+$',
    '[]a]',
    '[^]]',
    '[[:alpha:]]+',
    '(?i)abc',
    '(?i:a)',
    '(?P<x>a)',
    '\\Q(\\E',
    '\\Q((',
    'a{2}',
  ])('accepts %s', (re) => {
    expect(re2Problem(re)).toBeUndefined();
  });
  it.each([
    ['(a', "unbalanced '('"],
    ['a)', "unbalanced ')'"],
    ['[a', "unterminated character class '['"],
    ['a\\', 'ends with a lone backslash'],
    ['(a)\\1', 'backreference \\1 is not supported by RE2'],
    ['(?=a)', 'lookahead and lookbehind are not supported by RE2'],
    ['(?<!a)', 'lookahead and lookbehind are not supported by RE2'],
    ['(?>a)', 'atomic groups (?>…) are not supported by RE2'],
    ['(?<n>a)', 'write named groups as (?P<name>…): ClickHouse 18.16 refuses (?<name>…)'],
    ['a++', 'possessive quantifiers (such as a++) are not supported by RE2'],
    ['a\\Z', '\\Z is not supported by RE2 (use \\z or $)'],
  ])('refuses %s: %s', (re, why) => {
    expect(re2Problem(re)).toBe(why);
  });
});

// ---------------------------------------------------------------------------------------------------
// Files: file:line:col

describe('loadMeters', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'meters-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const write = (name: string, text: string) => writeFile(join(dir, name), text);
  const messages = async () => (await loadMeters(dir)).errors.map((e) => e.message);

  it('loads every *.yaml and *.yml file in name order and skips other files and directories', async () => {
    await write('b.yml', 'name: b\ndescription: B\naggregation: { type: count }\nunit: calls\n');
    await write('a.yaml', 'name: a\ndescription: A\naggregation: { type: count }\nunit: calls\n');
    await write('notes.txt', 'not a meter');
    await mkdir(join(dir, 'sub.yaml'));
    const { meters, errors } = await loadMeters(dir);
    expect(errors).toEqual([]);
    expect(meters.map((m) => [m.definition.name, m.file])).toEqual([
      ['a', join(dir, 'a.yaml')],
      ['b', join(dir, 'b.yml')],
    ]);
    expect(meters[0]!.version).toMatch(/^[0-9a-f]{16}$/);
  });

  it('reports schema errors at the line and column of the offending node', async () => {
    await write(
      'bad.yaml',
      [
        'name: Bad Name', // 1
        'description: x', // 2
        'filter:', // 3
        '  routes: [/ok, "v1/x"]', // 4
        '  status: [200, 7xx]', // 5
        '  where:', // 6
        '    - field: metadata.tier', // 7
        '      op: in', // 8
        '      value: gold', // 9
        '    - { field: bogus, op: eq, value: 1 }', // 10
        'aggregation:', // 11
        '  type: sum', // 12
        '  value: user_id', // 13
        'unit: calls', // 14
        '',
      ].join('\n'),
    );
    const f = join(dir, 'bad.yaml');
    expect(await messages()).toEqual([
      `${f}:1:7: name: must be a slug: a lower-case letter, then up to 62 of a-z 0-9 _ -`,
      `${f}:4:17: filter.routes[1]: route 'v1/x' must start with '/'`,
      `${f}:5:17: filter.status[1]: a status must be a code (200), a class ('2xx') or a range ('200-299'), got '7xx'`,
      `${f}:9:14: filter.where[0].value: op 'in' needs a non-empty list of values`,
      `${f}:10:16: filter.where[1].field: unknown field 'bogus': use a request_logs column (event_id, app, customer_key, company_id, user_id, method, route, host, api_version, source_format, request_time_ms, status, latency_ms, request_bytes, response_bytes, sample_weight), metadata.<key>, header.<name> or response_header.<name>`,
      `${f}:13:10: aggregation.value: 'sum' needs a numeric field: latency_ms, request_bytes, response_bytes, or metadata.<key>/header.<name> holding integers; 'user_id' is not one`,
    ]);
  });

  it('reports an unknown key at the key, and a missing key at the map that lacks it', async () => {
    await write(
      'keys.yaml',
      [
        'name: keys',
        'description: x',
        'filter:',
        '  routes: [/a]',
        '  colour: red',
        'aggregation:',
        '  type: count',
        '',
      ].join('\n'),
    );
    const f = join(dir, 'keys.yaml');
    expect(await messages()).toEqual([
      `${f}:1:1: missing required key 'unit'`,
      `${f}:5:3: filter: unknown key(s) 'colour'; allowed: routes, methods, status, where`,
    ]);
  });

  it('reports a missing nested key at its parent map and a null value at the value', async () => {
    await write('nested.yaml', 'name: nested\ndescription:\naggregation:\n  value: latency_ms\nunit: ms\n');
    const f = join(dir, 'nested.yaml');
    expect(await messages()).toEqual([
      `${f}:2:13: description: has no value (expected string)`,
      `${f}:4:3: aggregation: missing required key 'type'`,
    ]);
  });

  it('reports YAML syntax errors with line and column', async () => {
    await write('syntax.yaml', 'name: s\ndescription: x\naggregation: { type: count\nunit: calls\n');
    await write('dupkey.yaml', 'name: a\nname: b\n');
    await write('tabs.yaml', 'name: t\n\tdescription: x\n');
    expect(await messages()).toEqual([
      `${join(dir, 'dupkey.yaml')}:2:1: YAML: Map keys must be unique`,
      `${join(dir, 'syntax.yaml')}:4:1: YAML: Flow map in block collection must be sufficiently indented and end with a }`,
      `${join(dir, 'tabs.yaml')}:2:1: YAML: Tabs are not allowed as indentation`,
    ]);
  });

  it('refuses a file with several documents and an empty file', async () => {
    await write('two.yaml', 'name: a\n---\nname: b\n');
    await write('empty.yaml', '');
    const errors = (await loadMeters(dir)).errors;
    expect(errors.map((e) => [e.file, e.line, e.col])).toEqual([
      [join(dir, 'empty.yaml'), 1, 1],
      [join(dir, 'two.yaml'), 2, 1],
    ]);
    expect(errors[0]!.reason).toBe(
      'the file is empty: a meter is a map with name, description, aggregation, unit, …',
    );
    expect(errors[1]!.reason).toMatch(/^YAML: .*multiple documents/);
  });

  it('refuses a name used by two files, naming both', async () => {
    const meter = 'description: x\naggregation: { type: count }\nunit: calls\n';
    await write('a.yaml', `name: dup\n${meter}`);
    await write('b.yaml', `# the same name again\n\nname:   dup\n${meter}`);
    const { meters, errors } = await loadMeters(dir);
    expect(meters.map((m) => m.file)).toEqual([join(dir, 'a.yaml')]);
    expect(errors.map((e) => e.message)).toEqual([
      `${join(dir, 'b.yaml')}:3:9: duplicate meter name 'dup': also defined in ${join(dir, 'a.yaml')}:1:7`,
    ]);
  });

  it('refuses an alias bomb instead of expanding it', () => {
    const bomb = [
      'a: &a [x, x, x, x, x, x, x, x, x, x]',
      'b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]',
      'c: [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]',
    ].join('\n');
    const result = parseMeterText(bomb, 'bomb.yaml');
    expect('errors' in result && result.errors[0]!.message).toMatch(/^bomb\.yaml:1:1: YAML: .*alias/i);
  });

  it('loads the shipped meters without errors', async () => {
    const { meters, errors } = await loadMeters(join(import.meta.dirname, '../../../meters'));
    expect(errors).toEqual([]);
    expect(meters.map((m) => [m.definition.name, m.definition.aggregation.type])).toEqual([
      ['monthly-active-users', 'unique_count'],
      ['response-bytes', 'sum'],
      ['retrieve-credit-score', 'count'],
    ]);
  });
});

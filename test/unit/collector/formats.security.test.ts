import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { adapters } from '../../../src/collector/formats/index.ts';
import { contentEventId } from '../../../src/collector/formats/event-id.ts';
import { jsonText } from '../../../src/collector/formats/json-text.ts';
import {
  adaptMoesifAction,
  adaptMoesifCompanies,
  adaptMoesifCompany,
  adaptMoesifUser,
} from '../../../src/collector/formats/moesif.ts';
import { isSensitiveHeader } from '../../../src/collector/formats/header-policy.ts';
import { LIMITS } from '../../../src/collector/formats/limits.ts';
import { isUnreadable, jsonByteLength } from '../../../src/collector/formats/per-event.ts';
import type {
  AdaptContext,
  AdaptResult,
  RequestLogRow,
  SourceFormat,
} from '../../../src/collector/request-log.ts';
import {
  bodyOf,
  context,
  moesifEventId,
  nestedArrays,
  nestedObjects,
  readWire,
  type MoesifCall,
} from './wire-fixtures.ts';

const FORMATS = ['native', 'moesif', 'cloudevents', 'kong'] as const satisfies readonly SourceFormat[];

const SENSITIVE = [
  'authorization',
  'Authorization',
  'proxy-authorization',
  'cookie',
  'set-cookie',
  'x-api-key',
  'apikey',
  'api-key',
  'api_key',
  'x-moesif-application-id',
  'x-auth-token',
  'x-csrf-token',
  'x-amz-security-token',
  'x-session-id',
  'x-client-secret',
  'x-password',
  'passwd',
  'x-goog-api-key',
  'auth',
];

const moesifCaptured = (
  bodyOf(readWire('moesif-nodejs-3.11-batched.json'), '/v1/events/batch') as unknown[]
)[0] as Record<string, Record<string, unknown>>;
const kongCaptured = readWire<Record<string, unknown>>('kong-http-log-3.8.json');
const openmeterCaptured = (readWire('openmeter-sdk-batch.json')[0]!.body as unknown[])[0] as Record<
  string,
  unknown
>;

// The policy itself (which names are credentials) is tested with the ingest package that owns it
// (test/unit/ingest/header-policy.security.test.ts); here, that every format applies it.
describe('credential headers', () => {
  it('are never stored, even when allow-listed, in any format that carries headers', () => {
    const allow = new Set([...SENSITIVE.map((n) => n.toLowerCase()), 'user-agent']);
    const ctx = context('2026-11-21T12:06:30.000Z', { headerAllowList: allow });
    const secretHeaders = Object.fromEntries(SENSITIVE.map((name) => [name, `secret-${name}`]));
    const native = {
      timestamp: '2026-11-21T12:06:20.000Z',
      method: 'GET',
      path: '/',
      status: 200,
      headers: { ...secretHeaders, 'User-Agent': 'ua' },
      response_headers: secretHeaders,
    };
    const moesif = {
      ...moesifCaptured,
      request: {
        ...moesifCaptured.request,
        headers: { ...(moesifCaptured.request!.headers as Record<string, string>), ...secretHeaders },
      },
      response: { ...moesifCaptured.response, headers: secretHeaders },
    };
    const kongCtx = context('2024-09-19T22:10:40.000Z', { headerAllowList: allow });
    const rows = [
      ...adapters.native([native], ctx).rows,
      ...adapters.moesif([moesif], ctx).rows,
      ...adapters.kong([kongCaptured], kongCtx).rows,
    ];
    expect(rows).toHaveLength(3);
    for (const row of rows) {
      const stored = JSON.stringify(row);
      expect(stored).not.toMatch(/secret-|Bearer secret|my-key|REDACTED/);
      expect(row.meta_keys.filter((key) => key.startsWith('header.'))).toEqual(['header.user-agent']);
      expect(row.meta_keys.some((key) => key.startsWith('response_header.'))).toBe(false);
    }
  });
});

describe('personal data and bodies', () => {
  it('never stores bodies, client IPs or Moesif session tokens', () => {
    const ctx = context('2026-11-21T12:06:30.000Z', { headerAllowList: new Set(['user-agent']) });
    const moesif = {
      ...moesifCaptured,
      session_token: 'sess-0123456789',
      request: { ...moesifCaptured.request, ip_address: '203.0.113.9', body: { card: '4242424242424242' } },
      response: { ...moesifCaptured.response, body: { ssn: '078-05-1120' }, ip_address: '198.51.100.7' },
    };
    const native = {
      timestamp: '2026-11-21T12:06:20.000Z',
      method: 'POST',
      path: '/',
      status: 200,
      body: { card: '4242424242424242' },
      request_body: { ssn: '078-05-1120' },
      response_body: 'sess-0123456789',
    };
    const kongCtx = context('2024-09-19T22:10:40.000Z');
    const stored = JSON.stringify([
      adapters.moesif([moesif], ctx).rows,
      adapters.native([native], ctx).rows,
      adapters.kong([kongCaptured], kongCtx).rows,
    ]);
    for (const secret of [
      '4242424242424242',
      '078-05-1120',
      'sess-0123456789',
      '203.0.113.9',
      '198.51.100.7',
      '192.168.65.1',
      '192.0.2.10',
      'gizmo',
      'page=2',
    ]) {
      expect(stored).not.toContain(secret);
    }
  });
});

describe('what the API caller chooses cannot make billed calls disappear', () => {
  const ctx = context('2026-11-21T12:06:30.000Z');
  const T0 = '2026-11-21T12:06:20.048Z';

  /** A Moesif event as the SDK builds it: uri = scheme + the caller's Host header + the original URL. */
  const sdkEvent = (
    o: {
      time?: string;
      company?: string;
      user?: string;
      hostHeader?: string;
      url?: string;
      txId?: string;
    } = {},
  ) => {
    const hostHeader = o.hostHeader ?? '127.0.0.1:3000';
    const txHeaders = o.txId === undefined ? {} : { 'x-moesif-transaction-id': o.txId };
    return {
      request: {
        time: o.time ?? T0,
        uri: `http://${hostHeader}${o.url ?? '/RetrieveCreditScore'}`,
        verb: 'POST',
        headers: { host: hostHeader, ...txHeaders },
      },
      response: { time: '2026-11-21T12:06:20.061Z', status: 200, headers: { ...txHeaders } },
      company_id: o.company ?? 'co_x',
      user_id: o.user ?? 'u1',
      direction: 'Incoming',
    };
  };
  const call = (o: Partial<MoesifCall> = {}): MoesifCall => ({
    requestMs: Date.parse(T0),
    method: 'POST',
    route: '/RetrieveCreditScore',
    host: '127.0.0.1:3000',
    companyId: 'co_x',
    userId: 'u1',
    ...o,
  });

  it('Moesif: calls sharing a forged transaction id stay separate events; an SDK retry of one stays one', () => {
    const first = sdkEvent({ txId: 'free-ride' });
    const events = [
      first,
      sdkEvent({ txId: 'free-ride', time: '2026-11-21T12:06:20.049Z' }),
      sdkEvent({ txId: 'free-ride', time: '2026-11-21T12:06:21.048Z' }),
      sdkEvent({ txId: 'free-ride', company: 'co_y' }),
      sdkEvent({ txId: 'free-ride', user: 'u2' }),
      structuredClone(first), // the SDK retrying the batch
    ];
    const result = adapters.moesif(events, ctx);
    expect(result.rejected).toEqual([]);
    const ids = result.rows.map((row) => row.event_id);
    expect(ids).toEqual([
      moesifEventId('free-ride', call()),
      moesifEventId('free-ride', call({ requestMs: Date.parse('2026-11-21T12:06:20.049Z') })),
      moesifEventId('free-ride', call({ requestMs: Date.parse('2026-11-21T12:06:21.048Z') })),
      moesifEventId('free-ride', call({ companyId: 'co_y' })),
      moesifEventId('free-ride', call({ userId: 'u2' })),
      moesifEventId('free-ride', call()),
    ]);
    expect(new Set(ids).size).toBe(5);
    expect(ids[5]).toBe(ids[0]);
    for (const row of result.rows) {
      expect(row.meta_keys).toEqual(['metadata.moesif.direction', 'metadata.moesif.transaction_id']);
      expect(row.meta_values).toEqual(['Incoming', 'free-ride']);
    }
  });

  it('Moesif: the same forged transaction id in the body field is no different', () => {
    const rows = adapters.moesif(
      [
        { ...sdkEvent(), transaction_id: 'free-ride' },
        { ...sdkEvent({ time: '2026-11-21T12:06:20.049Z' }), transaction_id: 'free-ride' },
        { ...sdkEvent({ company: 'co_y' }), transaction_id: 'free-ride' },
      ],
      ctx,
    ).rows;
    expect(rows.map((row) => row.event_id)).toEqual([
      moesifEventId('free-ride', call()),
      moesifEventId('free-ride', call({ requestMs: Date.parse('2026-11-21T12:06:20.049Z') })),
      moesifEventId('free-ride', call({ companyId: 'co_y' })),
    ]);
    expect(new Set(rows.map((row) => row.event_id)).size).toBe(3);
  });

  it('Moesif: a 300-character transaction id is accepted; metadata keeps no transaction_id', () => {
    const long = 'f'.repeat(300);
    const viaHeader = sdkEvent({ txId: long });
    const viaField = { ...sdkEvent(), transaction_id: long };
    const result = adapters.moesif([viaHeader, viaField], ctx);
    expect(result.rejected).toEqual([]);
    expect(result.rows.map((row) => row.event_id)).toEqual([
      moesifEventId(long, call()),
      moesifEventId(long, call()),
    ]);
    for (const row of result.rows) {
      expect(row.event_id).toMatch(/^m:[0-9a-f]{32}$/);
      expect(row.meta_keys).toEqual(['metadata.moesif.direction']);
      expect(row.meta_values).toEqual(['Incoming']);
    }
    // Nor is one with a NUL character kept (nor a reason to reject the call).
    const nul = adapters.moesif([sdkEvent({ txId: 'a\u0000b' })], ctx);
    expect(nul.rejected).toEqual([]);
    expect(nul.rows[0]).toMatchObject({
      event_id: moesifEventId('a\u0000b', call()),
      meta_keys: ['metadata.moesif.direction'],
    });
  });

  it.each(['free.example/healthz?', 'free.example#', 'free.example?x=', 'FREE.example/healthz#'])(
    'Moesif: Host header %j cannot rename the billed route; the odd host is not stored',
    (hostHeader) => {
      const event = sdkEvent({ hostHeader, txId: 'tx-1' });
      expect(event.request.uri).toBe(`http://${hostHeader}/RetrieveCreditScore`);
      const result = adapters.moesif([event], ctx);
      expect(result.rejected).toEqual([]);
      expect(result.rows[0]).toMatchObject({
        event_id: moesifEventId('tx-1', call({ host: '' })),
        route: '/RetrieveCreditScore',
        host: '',
      });
    },
  );

  it('Moesif: a plain Host header (name, port, IPv6) is still the host, and the query string is still cut', () => {
    const route = (hostHeader: string) =>
      adapters.moesif([sdkEvent({ hostHeader, url: '/RetrieveCreditScore?ssn=1#f' })], ctx).rows[0];
    expect(route('API.Example.com:8443')).toMatchObject({
      route: '/RetrieveCreditScore',
      host: 'api.example.com:8443',
    });
    expect(route('[::1]:8080')).toMatchObject({ route: '/RetrieveCreditScore', host: '[::1]:8080' });
    expect(route('free.example/healthz?')).toMatchObject({ route: '/RetrieveCreditScore', host: '' });
  });

  it('CloudEvents: (gateway/eu, 42) and (gateway, eu/42) are two events; / and % in the source are escaped', () => {
    const cloudEvent = (source: string, id: string) => ({
      specversion: '1.0',
      id,
      source,
      type: 'api-requests',
      subject: 'c1',
    });
    const result = adapters.cloudevents(
      [
        cloudEvent('gateway/eu', '42'),
        cloudEvent('gateway', 'eu/42'),
        cloudEvent('a/b', 'c'),
        cloudEvent('a%2Fb', 'c'),
        cloudEvent('@openmeter/sdk', 'x'),
      ],
      ctx,
    );
    expect(result.rejected).toEqual([]);
    expect(result.rows.map((row) => row.event_id)).toEqual([
      'gateway%2Feu/42',
      'gateway/eu/42',
      'a%2Fb/c',
      'a%252Fb/c',
      '@openmeter%2Fsdk/x',
    ]);
  });

  it('CloudEvents: the query string and fragment of data.route or data.path reach neither route nor metadata', () => {
    const cloudEvent = (data: Record<string, unknown>) => ({
      specversion: '1.0',
      id: 'e1',
      source: 'gateway',
      type: 'api-requests',
      subject: 'c1',
      data,
    });
    const [byRoute, byPath] = adapters.cloudevents(
      [cloudEvent({ route: '/x?ssn=1#f' }), cloudEvent({ path: 'https://api.test/y?ssn=2#g' })],
      ctx,
    ).rows;
    expect(byRoute).toMatchObject({
      route: '/x',
      meta_keys: ['metadata.type', 'metadata.route'],
      meta_values: ['api-requests', '/x'],
    });
    expect(byPath).toMatchObject({
      route: '/y',
      host: 'api.test',
      meta_keys: ['metadata.type', 'metadata.path'],
      meta_values: ['api-requests', '/y'],
    });
    expect(JSON.stringify([byRoute, byPath])).not.toMatch(/ssn|#f|#g/);
  });
});

describe('deep nesting (10,000 levels) and huge values', () => {
  const ctx = context('2026-11-21T12:00:00.000Z');
  const base = { timestamp: ctx.receivedAtMs, method: 'GET', path: '/', status: 200 };

  it('rejects 10,000-level metadata by its too-long JSON text, without a stack overflow', () => {
    expect(adapters.native([{ ...base, metadata: nestedObjects(10_000) }], ctx).rejected).toEqual([
      {
        index: 0,
        field: 'metadata.a.a.a.a.a',
        reason: `must be at most ${LIMITS.metaValueChars} characters, got more than ${2 * LIMITS.metaValueChars} as JSON text`,
      },
    ]);
    expect(
      adapters.native([{ ...base, metadata: { list: nestedArrays(10_000) } }], ctx).rejected[0]?.field,
    ).toBe('metadata.list');
  });

  it('stores nesting just within the limits as JSON text at the fifth level', () => {
    const [row] = adapters.native([{ ...base, metadata: nestedObjects(1000) }], ctx).rows;
    expect(row?.meta_keys).toEqual(['metadata.a.a.a.a.a']);
    expect(row?.meta_values[0]).toBe(JSON.stringify(nestedObjects(995)));
  });

  it('measures a 10,000-level Moesif body and still stores the call', () => {
    const body = nestedObjects(10_000);
    const event = {
      request: { time: '2026-11-21T11:59:59.000Z', uri: '/x', verb: 'POST', body },
      response: { time: '2026-11-21T11:59:59.010Z', status: 200, body: nestedArrays(10_000) },
    };
    const result = adapters.moesif([event], ctx);
    expect(result.rejected).toEqual([]);
    expect(result.rows[0]).toMatchObject({ request_bytes: 6 * 10_000 + 1, response_bytes: 2 * 10_000 });
  });

  it('hashes and sizes a 10,000-level event deterministically', () => {
    const deep = nestedObjects(10_000);
    expect(contentEventId(deep)).toBe(contentEventId(nestedObjects(10_000)));
    expect(contentEventId(deep)).not.toBe(contentEventId(nestedObjects(10_001)));
    expect(jsonByteLength(deep)).toBe(6 * 10_000 + 1);
    expect(jsonText(nestedArrays(200_000))).toHaveLength(400_000);
  });

  it.each(FORMATS)(
    '%s: a 10,000-level event and a 10,000-level data field are rejections, not crashes',
    (format) => {
      const deep = nestedObjects(10_000);
      const result = adapters[format](
        [deep, { ...deep, data: deep, request: deep, response: deep, metadata: deep }],
        ctx,
      );
      expect(result.rows).toEqual([]);
      expect(result.rejected).toHaveLength(2);
      expect(result.rejected.some(isUnreadable)).toBe(false);
    },
  );

  it('skips a 10,000-level header value instead of crashing', () => {
    const allow = context('2026-11-21T12:00:00.000Z', { headerAllowList: new Set(['x-deep']) });
    const [row] = adapters.native([{ ...base, headers: { 'x-deep': nestedArrays(10_000) } }], allow).rows;
    expect(row?.meta_keys).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------------
// Never throw

const ANYTHING = fc.anything({
  maxDepth: 4,
  withBigInt: true,
  withBoxedValues: true,
  withDate: true,
  withMap: true,
  withSet: true,
  withNullPrototype: true,
  withObjectString: true,
  withSparseArray: true,
  withTypedArray: true,
  withUnicodeString: true,
});

const FUZZ_CTX: AdaptContext = context('2026-11-21T12:06:30.000Z', {
  headerAllowList: new Set([
    'user-agent',
    'content-type',
    'host',
    'authorization',
    'x-moesif-transaction-id',
  ]),
  maxPastMs: 3 * 365 * 86_400_000,
});

/** What every adapter promises for any input: one outcome per event, and sane rows. */
function expectWellFormed(result: AdaptResult, inputLength: number, format: SourceFormat): void {
  expect(result.rows.length + result.rejected.length).toBe(inputLength);
  expect(result.rejected.some(isUnreadable)).toBe(false);
  for (const rejection of result.rejected) {
    expect(typeof rejection.field).toBe('string');
    expect(rejection.reason.length).toBeGreaterThan(0);
  }
  for (const row of result.rows) expectSaneRow(row, format);
}

function expectSaneRow(row: RequestLogRow, format: SourceFormat): void {
  expect(row.event_id.length).toBeGreaterThan(0);
  expect(row.source_format).toBe(format);
  expect(
    Number.isInteger(row.request_time) && row.request_time >= 0 && row.request_time <= 4_294_967_295,
  ).toBe(true);
  expect(
    Number.isInteger(row.request_time_ms) && row.request_time_ms >= 0 && row.request_time_ms <= 999,
  ).toBe(true);
  expect(row.status === 0 ? format === 'cloudevents' : row.status >= 100 && row.status <= 599).toBe(true);
  expect(
    Number.isInteger(row.latency_ms) && row.latency_ms >= 0 && row.latency_ms <= LIMITS.latencyMsMax,
  ).toBe(true);
  for (const bytes of [row.request_bytes, row.response_bytes])
    expect(Number.isSafeInteger(bytes) && bytes >= 0).toBe(true);
  expect(Number.isInteger(row.sample_weight) && row.sample_weight >= 1).toBe(true);
  expect(row.method).toMatch(/^[A-Z]{0,16}$/);
  expect(row.route === '' || row.route.startsWith('/')).toBe(true);
  expect(row.meta_keys).toHaveLength(row.meta_values.length);
  for (const key of row.meta_keys) {
    const header = /^(?:header|response_header)\.(.*)$/.exec(key);
    if (header) expect(isSensitiveHeader(header[1]!)).toBe(false);
  }
  for (const value of [...row.meta_keys, ...row.meta_values]) expect(typeof value).toBe('string');
}

/** A valid event of each format, and the fields worth breaking. */
const VALID: Record<SourceFormat, { event: Record<string, unknown>; paths: string[][] }> = {
  native: {
    event: {
      id: 'n1',
      timestamp: '2026-11-21T12:06:20.000Z',
      customer: 'c',
      company_id: 'co',
      user_id: 'u',
      method: 'GET',
      path: '/p',
      url: 'http://h/p',
      host: 'h',
      status: 200,
      latency_ms: 1,
      request_bytes: 1,
      response_bytes: 1,
      api_version: '1',
      metadata: { a: 1 },
      headers: { 'user-agent': 'x' },
      response_headers: { 'content-type': 'x' },
      weight: 1,
    },
    paths: [
      'id',
      'timestamp',
      'customer',
      'company_id',
      'user_id',
      'method',
      'path',
      'url',
      'host',
      'status',
      'latency_ms',
      'request_bytes',
      'response_bytes',
      'api_version',
      'metadata',
      'metadata.a',
      'headers',
      'headers.user-agent',
      'response_headers',
      'weight',
    ].map((p) => p.split('.')),
  },
  moesif: {
    event: moesifCaptured,
    paths: [
      'request',
      'request.time',
      'request.uri',
      'request.verb',
      'request.headers',
      'request.headers.host',
      'request.headers.content-length',
      'request.headers.x-moesif-transaction-id',
      'request.body',
      'request.api_version',
      'request.transfer_encoding',
      'response',
      'response.time',
      'response.status',
      'response.headers',
      'response.body',
      'user_id',
      'company_id',
      'metadata',
      'metadata.plan',
      'direction',
      'weight',
      'transaction_id',
    ].map((p) => p.split('.')),
  },
  cloudevents: {
    event: { ...openmeterCaptured, data: { ...(openmeterCaptured.data as object), host: 'h', user_id: 'u' } },
    paths: [
      'specversion',
      'id',
      'source',
      'type',
      'subject',
      'time',
      'data',
      'data.route',
      'data.path',
      'data.method',
      'data.status',
      'data.status_code',
      'data.duration_ms',
      'data.latency_ms',
      'data.request_bytes',
      'data.response_bytes',
      'data.user_id',
      'data.api_version',
      'data.host',
    ].map((p) => p.split('.')),
  },
  kong: {
    event: { ...kongCaptured, started_at: Date.parse('2026-11-21T12:06:20.000Z') },
    paths: [
      'request',
      'request.id',
      'request.uri',
      'request.url',
      'request.method',
      'request.size',
      'request.headers',
      'request.headers.host',
      'response',
      'response.status',
      'response.size',
      'response.headers',
      'latencies',
      'latencies.request',
      'started_at',
      'consumer',
      'consumer.custom_id',
      'consumer.username',
      'consumer.id',
      'authenticated_entity',
      'authenticated_entity.id',
      'route',
      'route.name',
      'service',
      'service.name',
    ].map((p) => p.split('.')),
  },
};

function withValueAt(
  event: Record<string, unknown>,
  path: string[],
  value: unknown,
): Record<string, unknown> {
  const copy = structuredClone(event);
  let target: Record<string, unknown> = copy;
  for (const segment of path.slice(0, -1)) {
    const next = target[segment];
    target[segment] = typeof next === 'object' && next !== null ? next : {};
    target = target[segment] as Record<string, unknown>;
  }
  target[path[path.length - 1]!] = value;
  return copy;
}

describe('never throws', () => {
  it.each(FORMATS)('%s: the valid fuzz seed is accepted', (format) => {
    const result = adapters[format]([VALID[format].event], FUZZ_CTX);
    expect(result.rejected).toEqual([]);
  });

  it.each(FORMATS)('%s: fc.anything() as events and as the whole body', (format) => {
    fc.assert(
      fc.property(fc.array(ANYTHING, { maxLength: 5 }), (events) => {
        expectWellFormed(adapters[format](events, FUZZ_CTX), events.length, format);
      }),
      { numRuns: 300 },
    );
    fc.assert(
      fc.property(ANYTHING, (body) => {
        const result = adapters[format](body as unknown[], FUZZ_CTX);
        expectWellFormed(result, Array.isArray(body) ? body.length : 1, format);
      }),
      { numRuns: 200 },
    );
  });

  it.each(FORMATS)('%s: fc.jsonValue() events', (format) => {
    fc.assert(
      fc.property(fc.array(fc.jsonValue(), { maxLength: 5 }), (events) => {
        expectWellFormed(adapters[format](events, FUZZ_CTX), events.length, format);
      }),
      { numRuns: 300 },
    );
  });

  it.each(FORMATS)('%s: a valid event with any one field replaced by anything', (format) => {
    const { event, paths } = VALID[format];
    fc.assert(
      fc.property(fc.constantFrom(...paths), fc.oneof(ANYTHING, fc.jsonValue()), (path, value) => {
        expectWellFormed(adapters[format]([withValueAt(event, path, value)], FUZZ_CTX), 1, format);
      }),
      { numRuns: 500 },
    );
  });

  it('Moesif companies, users and actions: anything in, a result out', () => {
    fc.assert(
      fc.property(ANYTHING, fc.oneof(ANYTHING, fc.jsonValue()), (raw, metadata) => {
        for (const outcome of [
          adaptMoesifCompany(raw, FUZZ_CTX),
          adaptMoesifUser(raw, FUZZ_CTX),
          adaptMoesifAction(raw, FUZZ_CTX),
          adaptMoesifCompany({ company_id: 'c', metadata, modified_time: metadata }, FUZZ_CTX),
          adaptMoesifAction({ action_name: 'a', request: { time: metadata }, metadata }, FUZZ_CTX),
        ]) {
          expect(outcome.ok || !isUnreadable(outcome.rejection)).toBe(true);
        }
        const batch = adaptMoesifCompanies(raw as unknown[], FUZZ_CTX);
        expect(batch.values.length + batch.rejected.length).toBe(Array.isArray(raw) ? raw.length : 1);
      }),
      { numRuns: 300 },
    );
  });
});

import { describe, expect, it } from 'vitest';
import { adapters } from '../../../src/collector/formats/index.ts';
import { contentEventId } from '../../../src/collector/formats/event-id.ts';
import { jsonText } from '../../../src/collector/formats/json-text.ts';
import {
  adaptMoesifAction,
  adaptMoesifActions,
  adaptMoesifCompany,
  adaptMoesifUser,
} from '../../../src/collector/formats/moesif.ts';
import { headers } from '../../../src/collector/formats/headers.ts';
import { flattenMetadata } from '../../../src/collector/formats/metadata.ts';
import { parseTarget } from '../../../src/collector/formats/request-target.ts';
import { parseTimestampMs } from '../../../src/collector/formats/time.ts';
import type { RequestLogRow } from '../../../src/collector/request-log.ts';
import { DAY_MS, bodyOf, context, moesifEventId, readWire } from './wire-fixtures.ts';

const moesifBatched = readWire('moesif-nodejs-3.11-batched.json');
const moesifUnbatched = readWire('moesif-nodejs-3.11-unbatched.json');
const openmeter = readWire('openmeter-sdk-batch.json');
const kongEntry = readWire<Record<string, unknown>>('kong-http-log-3.8.json');

const moesifCtx = context('2026-11-21T12:06:30.000Z');
const openmeterCtx = context('2026-11-21T12:03:24.000Z');
const kongCtx = context('2024-09-19T22:10:40.000Z');

describe('moesif fixtures', () => {
  it('turns the batched capture of moesif-nodejs 3.11 into the exact row', () => {
    const events = bodyOf(moesifBatched, '/v1/events/batch') as unknown[];
    const ctx = context('2026-11-21T12:06:30.000Z', {
      headerAllowList: new Set(['user-agent', 'x-company-id', 'content-type', 'etag']),
    });
    expect(adapters.moesif(events, ctx)).toEqual({
      rows: [
        {
          event_id: moesifEventId('b1e92871-f1f0-4b0f-ae06-b94e823e311f', {
            requestMs: Date.parse('2026-11-21T12:06:20.048Z'),
            method: 'POST',
            route: '/widgets',
            host: '127.0.0.1:37785',
            companyId: 'co_7',
            userId: 'user_42',
          }),
          app: 'app_test',
          received_at: 1795262790,
          request_time: 1795262780,
          request_time_ms: 48,
          customer_key: 'co_7',
          company_id: 'co_7',
          user_id: 'user_42',
          method: 'POST',
          route: '/widgets',
          host: '127.0.0.1:37785',
          status: 201,
          latency_ms: 13,
          request_bytes: 16,
          response_bytes: 27,
          api_version: '',
          source_format: 'moesif',
          sample_weight: 1,
          meta_keys: [
            'metadata.plan',
            'metadata.moesif.direction',
            'metadata.moesif.transaction_id',
            'header.content-type',
            'header.x-company-id',
            'header.user-agent',
            'response_header.content-type',
            'response_header.etag',
          ],
          meta_values: [
            'pro',
            'Incoming',
            'b1e92871-f1f0-4b0f-ae06-b94e823e311f',
            'application/json',
            'co_7',
            'node',
            'application/json; charset=utf-8',
            'W/"1b-5bOZuSaRwBJ07e1n85hHPBTAnJI"',
          ],
        },
      ],
      rejected: [],
    });
  });

  it('turns the unbatched capture (base64 body, no content-length) into the exact row', () => {
    const event = bodyOf(moesifUnbatched, '/v1/events');
    expect(adapters.moesif([event], moesifCtx)).toEqual({
      rows: [
        {
          event_id: moesifEventId('5fee27c9-07c9-4609-a211-83a42555da44', {
            requestMs: Date.parse('2026-11-21T12:03:06.611Z'),
            method: 'GET',
            route: '/v1/things',
            host: '127.0.0.1:33081',
            companyId: 'c1',
            userId: 'u1',
          }),
          app: 'app_test',
          received_at: 1795262790,
          request_time: 1795262586,
          request_time_ms: 611,
          customer_key: 'c1',
          company_id: 'c1',
          user_id: 'u1',
          method: 'GET',
          route: '/v1/things',
          host: '127.0.0.1:33081',
          status: 200,
          latency_ms: 1,
          request_bytes: 0,
          response_bytes: 5, // "aGVsbG8=" is "hello"
          api_version: '',
          source_format: 'moesif',
          sample_weight: 1,
          meta_keys: ['metadata.moesif.direction', 'metadata.moesif.transaction_id'],
          meta_values: ['Incoming', '5fee27c9-07c9-4609-a211-83a42555da44'],
        },
      ],
      rejected: [],
    });
  });

  it('turns the captured user, company and action into their records', () => {
    expect(adaptMoesifUser(bodyOf(moesifUnbatched, '/v1/users'), moesifCtx)).toEqual({
      ok: true,
      value: { user_id: 'u1', company_id: 'c1', meta_keys: ['metadata.email'], meta_values: ['a@b.c'] },
    });
    expect(adaptMoesifCompany(bodyOf(moesifUnbatched, '/v1/companies'), moesifCtx)).toEqual({
      ok: true,
      value: { company_id: 'c1', meta_keys: ['metadata.plan'], meta_values: ['pro'], stripe_customer_id: '' },
    });
    const action = bodyOf(moesifUnbatched, '/v1/actions');
    expect(adaptMoesifAction(action, moesifCtx)).toEqual({
      ok: true,
      value: {
        event_id: contentEventId(action),
        action_name: 'Clicked Signup',
        user_id: 'u1',
        company_id: '',
        time: Date.parse('2026-11-21T12:03:06.641Z'),
        meta_keys: [],
        meta_values: [],
      },
    });
  });

  it('takes a company stripe_customer_id and modified_time when given', () => {
    const company = {
      company_id: 12345,
      modified_time: '2026-11-20T10:00:00',
      metadata: { stripe_customer_id: 'cus_123', plan: { name: 'pro', seats: 5 } },
    };
    expect(adaptMoesifCompany(company, moesifCtx)).toEqual({
      ok: true,
      value: {
        company_id: '12345',
        modified_time: Date.parse('2026-11-20T10:00:00Z'),
        meta_keys: ['metadata.stripe_customer_id', 'metadata.plan.name', 'metadata.plan.seats'],
        meta_values: ['cus_123', 'pro', '5'],
        stripe_customer_id: 'cus_123',
      },
    });
  });

  it('uses the action transaction_id, and the receive time when the action has none', () => {
    const result = adaptMoesifActions(
      [
        {
          action_name: 'Signed Up',
          company_id: 'c9',
          transaction_id: 'tx-1',
          request: { uri: 'https://x.test/' },
        },
      ],
      moesifCtx,
    );
    expect(result).toEqual({
      values: [
        {
          event_id: 'tx-1',
          action_name: 'Signed Up',
          user_id: '',
          company_id: 'c9',
          time: moesifCtx.receivedAtMs,
          meta_keys: [],
          meta_values: [],
        },
      ],
      rejected: [],
    });
  });

  it('derives the event id from transaction_id, then the request or response header, else a content hash', () => {
    const base = minimalMoesif();
    // What identifies the call besides its transaction id, as minimalMoesif() has it.
    const call = {
      requestMs: Date.parse('2026-11-21T12:00:00.000Z'),
      method: 'GET',
      route: '/x',
      host: 'api.test',
      companyId: '',
      userId: '',
    };
    const outcome = (event: unknown) => {
      const row = adapters.moesif([event], moesifCtx).rows[0];
      const index = row?.meta_keys.indexOf('metadata.moesif.transaction_id') ?? -1;
      return { eventId: row?.event_id, transactionId: index < 0 ? undefined : row?.meta_values[index] };
    };
    const requestHeader = { 'X-Moesif-Transaction-Id': 'tx-req' };
    const responseHeader = { 'x-moesif-transaction-id': 'tx-res' };
    expect(outcome({ ...base, transaction_id: 'tx-top' })).toEqual({
      eventId: moesifEventId('tx-top', call),
      transactionId: 'tx-top',
    });
    expect(outcome({ ...base, request: { ...base.request, headers: requestHeader } })).toEqual({
      eventId: moesifEventId('tx-req', call),
      transactionId: 'tx-req',
    });
    expect(outcome({ ...base, response: { ...base.response, headers: responseHeader } })).toEqual({
      eventId: moesifEventId('tx-res', call),
      transactionId: 'tx-res',
    });
    // The order: transaction_id, then the request header, then the response header.
    expect(
      outcome({
        ...base,
        transaction_id: 'tx-top',
        request: { ...base.request, headers: requestHeader },
        response: { ...base.response, headers: responseHeader },
      }),
    ).toEqual({ eventId: moesifEventId('tx-top', call), transactionId: 'tx-top' });
    expect(
      outcome({
        ...base,
        request: { ...base.request, headers: requestHeader },
        response: { ...base.response, headers: responseHeader },
      }),
    ).toEqual({ eventId: moesifEventId('tx-req', call), transactionId: 'tx-req' });
    expect(outcome(base)).toEqual({ eventId: contentEventId(base), transactionId: undefined });
  });

  it('reads zone-less Moesif times as UTC, numeric ids as text, and measures bodies without content-length', () => {
    const event = {
      request: {
        time: '2026-11-21T12:00:00.123456',
        uri: '/v1/a',
        verb: 'put',
        headers: { Host: 'API.Example.com' },
        body: { name: 'é' },
        api_version: '2.1',
      },
      response: { time: '2026-11-21T13:00:00.250+01:00', status: 204, body: 'plain text ✓' },
      user_id: 42,
      company_id: 7,
      weight: 10,
    };
    const [row] = adapters.moesif([event], moesifCtx).rows;
    expect(row).toMatchObject({
      request_time: Date.parse('2026-11-21T12:00:00Z') / 1000,
      request_time_ms: 123,
      latency_ms: 127,
      method: 'PUT',
      route: '/v1/a',
      host: 'api.example.com',
      user_id: '42',
      company_id: '7',
      customer_key: '7',
      api_version: '2.1',
      sample_weight: 10,
      request_bytes: Buffer.byteLength('{"name":"é"}'),
      response_bytes: Buffer.byteLength('plain text ✓'),
    });
  });

  it('clamps a response.time before request.time to latency 0', () => {
    const base = minimalMoesif();
    const event = { ...base, response: { ...base.response, time: '2026-11-21T11:59:59.000Z' } };
    expect(adapters.moesif([event], moesifCtx).rows[0]?.latency_ms).toBe(0);
  });
});

describe('cloudevents fixtures', () => {
  const [first, second] = openmeter.map((c) => c.body as unknown[]);

  it('turns the OpenMeter SDK HTTP-call event into the exact row', () => {
    expect(adapters.cloudevents(first!, openmeterCtx)).toEqual({
      rows: [
        {
          event_id: '@openmeter%2Fsdk/020e1b76-3736-4515-8188-c12d1fe2dc1d',
          app: 'app_test',
          received_at: 1795262604,
          request_time: 1795262603,
          request_time_ms: 433,
          customer_key: 'customer-acme',
          company_id: 'customer-acme',
          user_id: '',
          method: 'POST',
          route: '/v1/widgets',
          host: '',
          status: 201,
          latency_ms: 12,
          request_bytes: 0,
          response_bytes: 0,
          api_version: '',
          source_format: 'cloudevents',
          sample_weight: 1,
          meta_keys: [
            'metadata.type',
            'metadata.route',
            'metadata.method',
            'metadata.status',
            'metadata.duration_ms',
          ],
          meta_values: ['api-requests', '/v1/widgets', 'POST', '201', '12'],
        },
      ],
      rejected: [],
    });
  });

  const evt1Row: RequestLogRow = {
    event_id: 'gateway/evt_1',
    app: 'app_test',
    received_at: 1795262604,
    request_time: 1735689600,
    request_time_ms: 0,
    customer_key: 'c1',
    company_id: 'c1',
    user_id: '',
    method: '',
    route: '',
    host: '',
    status: 0,
    latency_ms: 0,
    request_bytes: 0,
    response_bytes: 0,
    api_version: '',
    source_format: 'cloudevents',
    sample_weight: 1,
    meta_keys: ['metadata.type', 'metadata.n'],
    meta_values: ['api-requests', '1'],
  };
  const c2Row: RequestLogRow = {
    ...evt1Row,
    event_id: '@openmeter%2Fsdk/5ac176c3-81af-4150-9a50-e975c81d5819',
    request_time: 1795262603,
    request_time_ms: 478,
    customer_key: 'c2',
    company_id: 'c2',
    meta_values: ['api-requests', '2'],
  };

  it('accepts the 2025-01-01 event of the second batch with a window wide enough', () => {
    const ctx = { ...openmeterCtx, maxPastMs: 3 * 365 * DAY_MS };
    expect(adapters.cloudevents(second!, ctx)).toEqual({ rows: [evt1Row, c2Row], rejected: [] });
  });

  it('rejects only the 2025-01-01 event with the default 35-day window, and keeps the other', () => {
    expect(adapters.cloudevents(second!, openmeterCtx)).toEqual({
      rows: [c2Row],
      rejected: [
        {
          index: 0,
          field: 'time',
          reason:
            'must be from 35 days before to 5 minutes after the time the event was received ' +
            '(2026-10-17T12:03:24.000Z to 2026-11-21T12:08:24.000Z), got 2025-01-01T00:00:00.000Z',
        },
      ],
    });
  });

  it('maps every known data field, takes numbers sent as text, and defaults time to the receive time', () => {
    const event = {
      specversion: '1.0',
      id: 'e-1',
      source: 'svc',
      type: 'request',
      subject: 'acme',
      data: {
        path: 'https://API.test/v2/items?page=3',
        method: 'delete',
        status_code: '404',
        latency_ms: '7.6',
        request_bytes: 10,
        response_bytes: '20',
        user_id: 'u-9',
        api_version: 3,
      },
    };
    const [row] = adapters.cloudevents([event], openmeterCtx).rows;
    expect(row).toMatchObject({
      event_id: 'svc/e-1',
      request_time: 1795262604,
      request_time_ms: 0,
      route: '/v2/items',
      host: 'api.test',
      method: 'DELETE',
      status: 404,
      latency_ms: 8,
      request_bytes: 10,
      response_bytes: 20,
      user_id: 'u-9',
      api_version: '3',
      customer_key: 'acme',
      company_id: 'acme',
    });
    expect(row?.meta_keys).toEqual([
      'metadata.type',
      'metadata.path',
      'metadata.method',
      'metadata.status_code',
      'metadata.latency_ms',
      'metadata.request_bytes',
      'metadata.response_bytes',
      'metadata.user_id',
      'metadata.api_version',
    ]);
    // metadata.path holds the route as stored: without the query string (or host).
    expect(row?.meta_values).toEqual([
      'request',
      '/v2/items',
      'delete',
      '404',
      '7.6',
      '10',
      '20',
      'u-9',
      '3',
    ]);
    expect(
      adapters.cloudevents([{ ...event, data: { route: '/r', host: 'H.test', status: 0 } }], openmeterCtx)
        .rows[0],
    ).toMatchObject({ route: '/r', host: 'h.test', status: 0 });
  });
});

describe('kong fixture', () => {
  it('turns the Kong 3.8 http-log entry into the exact row', () => {
    const ctx = context('2024-09-19T22:10:40.000Z', {
      headerAllowList: new Set(['user-agent', 'accept', 'via', 'x-kong-upstream-latency']),
    });
    expect(adapters.kong([kongEntry], ctx)).toEqual({
      rows: [
        {
          event_id: '2f6946328ffc4946b8c9120704a4a155',
          app: 'app_test',
          received_at: 1726783840,
          request_time: 1726783839,
          request_time_ms: 538,
          customer_key: 'foo',
          company_id: 'foo',
          user_id: 'c62c1455-9b1d-4f2d-8797-509ba83b8ae8',
          method: 'GET',
          route: '/example-route',
          host: 'localhost:8000',
          status: 200,
          latency_ms: 173,
          request_bytes: 139,
          response_bytes: 9982,
          api_version: '',
          source_format: 'kong',
          sample_weight: 1,
          meta_keys: [
            'metadata.kong.route',
            'metadata.kong.service',
            'metadata.kong.consumer_id',
            'header.accept',
            'header.user-agent',
            'response_header.via',
            'response_header.x-kong-upstream-latency',
          ],
          meta_values: [
            'example_route',
            'example_service',
            'ae974d6c-0f8a-4dc5-b701-fa0aa38592bd',
            '*/*',
            'HTTPie/3.2.3',
            '1.1 kong/3.8.0.0-enterprise-edition',
            '171',
          ],
        },
      ],
      rejected: [],
    });
  });

  it('prefers consumer.custom_id, takes numbers sent as text, and falls back to request.url', () => {
    const request = { ...(kongEntry.request as Record<string, unknown>), uri: undefined, headers: {} };
    const entry = {
      ...kongEntry,
      request: { ...request, size: '140' },
      response: { status: '503', size: 0 },
      latencies: { request: '12' },
      consumer: { id: 'cid', username: 'foo', custom_id: 'acct-1' },
      authenticated_entity: null,
    };
    const [row] = adapters.kong([entry], kongCtx).rows;
    expect(row).toMatchObject({
      customer_key: 'acct-1',
      company_id: 'acct-1',
      user_id: '',
      route: '/example-route',
      host: 'localhost:8000',
      status: 503,
      latency_ms: 12,
      request_bytes: 140,
      response_bytes: 0,
    });
  });

  it('leaves the customer empty without a consumer, and hashes an entry without request.id', () => {
    const request = { ...(kongEntry.request as Record<string, unknown>), id: undefined };
    const entry = { ...kongEntry, request, consumer: undefined, route: undefined, service: null };
    const [row] = adapters.kong([entry], kongCtx).rows;
    expect(row).toMatchObject({
      customer_key: '',
      company_id: '',
      event_id: contentEventId(entry),
      meta_keys: [],
    });
  });
});

describe('native records', () => {
  const ctx = context('2026-11-21T12:00:00.000Z', { headerAllowList: new Set(['x-request-id', 'x-cache']) });

  it('turns a full record into the exact row', () => {
    const record = {
      id: 'req-1',
      timestamp: '2026-11-21T13:59:59.5+02:00',
      customer: 'cust-9',
      company_id: 'co-1',
      user_id: 77,
      method: 'post',
      path: '/RetrieveCreditScore?ssn=redacted#frag',
      url: 'https://user:pw@Credit.Example.com:8443/ignored?x=1',
      status: 200,
      latency_ms: 12.5,
      request_bytes: 100,
      response_bytes: 2048,
      api_version: '2026-01-01',
      metadata: { plan: 'gold', flags: { beta: true, tier: 2, off: null }, tags: ['a', 'b'] },
      headers: { 'X-Request-Id': 'r-1', 'X-Cache': ['HIT', 'MISS'] },
      response_headers: { 'x-cache': 'HIT' },
      weight: 3,
      request_body: { ignored: true },
      future_field: 'ignored',
    };
    expect(adapters.native([record], ctx)).toEqual({
      rows: [
        {
          event_id: 'req-1',
          app: 'app_test',
          received_at: 1795262400,
          request_time: 1795262399,
          request_time_ms: 500,
          customer_key: 'cust-9',
          company_id: 'co-1',
          user_id: '77',
          method: 'POST',
          route: '/RetrieveCreditScore',
          host: 'credit.example.com:8443',
          status: 200,
          latency_ms: 13,
          request_bytes: 100,
          response_bytes: 2048,
          api_version: '2026-01-01',
          source_format: 'native',
          sample_weight: 3,
          meta_keys: [
            'metadata.plan',
            'metadata.flags.beta',
            'metadata.flags.tier',
            'metadata.tags',
            'header.x-request-id',
            'header.x-cache',
            'response_header.x-cache',
          ],
          meta_values: ['gold', 'true', '2', '["a","b"]', 'r-1', 'HIT, MISS', 'HIT'],
        },
      ],
      rejected: [],
    });
  });

  it('fills defaults for a minimal record (epoch milliseconds, url only)', () => {
    const record = { timestamp: 1795262399123, method: 'GET', url: 'http://h.test', status: 404 };
    expect(adapters.native([record], ctx).rows).toEqual([
      {
        event_id: contentEventId(record),
        app: 'app_test',
        received_at: 1795262400,
        request_time: 1795262399,
        request_time_ms: 123,
        customer_key: '',
        company_id: '',
        user_id: '',
        method: 'GET',
        route: '/',
        host: 'h.test',
        status: 404,
        latency_ms: 0,
        request_bytes: 0,
        response_bytes: 0,
        api_version: '',
        source_format: 'native',
        sample_weight: 1,
        meta_keys: [],
        meta_values: [],
      },
    ]);
  });

  it('resolves the customer key: customer, else company_id, else user_id, else empty', () => {
    const base = { timestamp: 1795262399000, method: 'GET', path: '/', status: 200 };
    const key = (extra: object): string | undefined =>
      adapters.native([{ ...base, ...extra }], ctx).rows[0]?.customer_key;
    expect(key({ customer: 'a', company_id: 'b', user_id: 'c' })).toBe('a');
    expect(key({ customer: '', company_id: 'b', user_id: 'c' })).toBe('b');
    expect(key({ user_id: 'c' })).toBe('c');
    expect(key({})).toBe('');
  });

  it('passes unicode and SQL metacharacters through unchanged', () => {
    const nasty = `Robert'); DROP TABLE request_logs;-- \\' " \` \t\n ü 😀 مرحبا \u200d %27 ${'${x}'}`;
    const record = {
      id: `id-${nasty}`,
      timestamp: 1795262399000,
      method: 'GET',
      path: `/v1/ünï/😀/'; DROP TABLE x;--/%2F%20`,
      host: 'Bücher.example',
      company_id: nasty,
      user_id: '用户',
      status: 200,
      api_version: "v'1",
      metadata: { [nasty]: nasty, '😀': { ü: 'ß' } },
    };
    const [row] = adapters.native([record], ctx).rows;
    expect(row).toMatchObject({
      event_id: `id-${nasty}`,
      route: `/v1/ünï/😀/'; DROP TABLE x;--/%2F%20`,
      host: 'bücher.example',
      company_id: nasty,
      customer_key: nasty,
      user_id: '用户',
      api_version: "v'1",
      meta_keys: [`metadata.${nasty}`, 'metadata.😀.ü'],
      meta_values: [nasty, 'ß'],
    });
  });

  it('accepts 256-character ids counted in code points, not UTF-16 units', () => {
    const id = '😀'.repeat(256);
    const record = { id, timestamp: 1795262399000, method: 'GET', path: '/', status: 200, user_id: id };
    expect(adapters.native([record], ctx).rows[0]).toMatchObject({ event_id: id, user_id: id });
  });

  it('keeps valid events of a mixed batch and names each bad one by index', () => {
    const good = { timestamp: 1795262399000, method: 'GET', path: '/ok', status: 200 };
    const result = adapters.native([good, { ...good, status: 42 }, { ...good, path: '/ok2' }, 'nope'], ctx);
    expect(result.rows.map((r) => r.route)).toEqual(['/ok', '/ok2']);
    expect(result.rejected).toEqual([
      { index: 1, field: 'status', reason: 'must be an integer from 100 to 599, got 42' },
      { index: 3, field: '', reason: 'must be a JSON object (a request log record), got "nope"' },
    ]);
  });
});

describe('content event ids', () => {
  it('is h: and 32 hex digits, independent of key order, and changes with the content', () => {
    const a = { b: 1, a: { y: [1, { q: 2, p: 3 }], x: 'é' } };
    const reordered = { a: { x: 'é', y: [1, { p: 3, q: 2 }] }, b: 1 };
    expect(contentEventId(a)).toMatch(/^h:[0-9a-f]{32}$/);
    expect(contentEventId(reordered)).toBe(contentEventId(a));
    expect(contentEventId({ ...a, b: 2 })).not.toBe(contentEventId(a));
    expect(contentEventId([1, 2])).not.toBe(contentEventId([2, 1]));
  });

  it('gives a retried batch the same ids', () => {
    const record = { timestamp: 1795262399000, method: 'GET', path: '/', status: 200 };
    const ctx = context('2026-11-21T12:00:00.000Z');
    const first = adapters.native([record, { ...record, status: 201 }], ctx).rows.map((r) => r.event_id);
    const retry = adapters.native(JSON.parse(JSON.stringify([record, { ...record, status: 201 }])), ctx);
    expect(retry.rows.map((r) => r.event_id)).toEqual(first);
    expect(new Set(first).size).toBe(2);
  });

  it('serializes like JSON.stringify', () => {
    const values: unknown[] = [
      { a: [1, 'x', null, true, { b: undefined, c: -0 }], d: '\u0000\u2028"\\', e: 1e21, f: [undefined] },
      'plain',
      [],
      {},
      new Date(0),
    ];
    for (const value of values) expect(jsonText(value)).toBe(JSON.stringify(value));
  });
});

describe('shared rules', () => {
  it('parses ISO-8601 with zones, fractions and epoch milliseconds', () => {
    expect(parseTimestampMs('2026-11-21T12:06:20.048Z', 't')).toBe(Date.UTC(2026, 10, 21, 12, 6, 20, 48));
    expect(parseTimestampMs('2026-11-21T12:06:20Z', 't')).toBe(Date.UTC(2026, 10, 21, 12, 6, 20));
    expect(parseTimestampMs('2026-11-21T12:06Z', 't')).toBe(Date.UTC(2026, 10, 21, 12, 6));
    expect(parseTimestampMs('2026-11-21 14:06:20.048999+0200', 't')).toBe(
      Date.UTC(2026, 10, 21, 12, 6, 20, 48),
    );
    expect(parseTimestampMs('2026-11-21T07:06:20-05:00', 't')).toBe(Date.UTC(2026, 10, 21, 12, 6, 20));
    expect(parseTimestampMs('2024-02-29T00:00:00Z', 't')).toBe(Date.UTC(2024, 1, 29));
    expect(parseTimestampMs(1726783839538.9, 't')).toBe(1726783839538);
  });

  it('takes the route from paths and URLs without decoding anything', () => {
    expect(parseTarget('/a/b?c=d#e', 'p')).toEqual({ route: '/a/b', host: '' });
    expect(parseTarget('a/b', 'p')).toEqual({ route: '/a/b', host: '' });
    expect(parseTarget('//double/slash', 'p')).toEqual({ route: '//double/slash', host: '' });
    expect(parseTarget('HTTPS://u:p@Host.Test:81', 'p')).toEqual({ route: '/', host: 'host.test:81' });
    expect(parseTarget('http://h/%7Euser/a%20b?x', 'p')).toEqual({ route: '/%7Euser/a%20b', host: 'h' });
    expect(parseTarget('http://[::1]:8080/x#y', 'p')).toEqual({ route: '/x', host: '[::1]:8080' });
  });

  it('flattens metadata: objects to dotted keys, arrays and deeper objects to JSON text, null skipped', () => {
    expect(
      flattenMetadata({
        s: 'x',
        n: 1.5,
        b: false,
        z: null,
        empty: {},
        arr: [1, { a: 2 }],
        l1: { l2: { l3: { l4: { l5: { l6: 'deep' }, v: 4 } } } },
      }),
    ).toEqual([
      [
        'metadata.s',
        'metadata.n',
        'metadata.b',
        'metadata.arr',
        'metadata.l1.l2.l3.l4.l5',
        'metadata.l1.l2.l3.l4.v',
      ],
      ['x', '1.5', 'false', '[1,{"a":2}]', '{"l6":"deep"}', '4'],
    ]);
  });

  it('keeps allow-listed headers only, lower-cased, arrays joined', () => {
    const allow = new Set(['accept', 'x-multi']);
    expect(headers({ Accept: 'a/b', 'X-Multi': ['1', 2, true], Other: 'no' }, 'header.', allow)).toEqual([
      ['header.accept', 'header.x-multi'],
      ['a/b', '1, 2, true'],
    ]);
    expect(headers({ accept: 'x' }, 'response_header.', new Set())).toEqual([[], []]);
  });
});

function minimalMoesif() {
  return {
    request: { time: '2026-11-21T12:00:00.000Z', uri: 'https://api.test/x', verb: 'GET' },
    response: { time: '2026-11-21T12:00:00.010Z', status: 200 },
  };
}

import { describe, expect, it } from 'vitest';
import { adapters } from '../../../src/collector/formats/index.ts';
import {
  adaptMoesifAction,
  adaptMoesifCompany,
  adaptMoesifUser,
  adaptMoesifUsers,
} from '../../../src/collector/formats/moesif.ts';
import { isEventTooLarge } from '../../../src/collector/formats/per-event.ts';
import type { SourceFormat } from '../../../src/collector/request-log.ts';
import { context, moesifEventId, nestedObjects, readWire } from './wire-fixtures.ts';

const ctx = context('2026-11-21T12:00:00.000Z');
const NOW = ctx.receivedAtMs;

const native = { timestamp: NOW - 1000, method: 'GET', path: '/v1/x', status: 200 };
const moesif = {
  request: { time: '2026-11-21T11:59:59.000Z', uri: 'https://api.test/v1/x', verb: 'GET', headers: {} },
  response: { time: '2026-11-21T11:59:59.020Z', status: 200, headers: {} },
  company_id: 'c1',
};
const cloudevent = {
  specversion: '1.0',
  id: 'e1',
  source: 's',
  type: 't',
  subject: 'c1',
  data: { status: 200 },
};
const kong: Record<string, unknown> = {
  ...readWire<Record<string, unknown>>('kong-http-log-3.8.json'),
  started_at: NOW - 1000,
};
const kongRequest = kong.request as Record<string, unknown>;

const TIME_EXPECTATION =
  'must be an ISO-8601 date-time with a time zone (e.g. 2026-11-21T12:06:20.048Z) or epoch milliseconds or seconds';
const STATUS = 'must be an integer from 100 to 599';

interface Case {
  name: string;
  format: SourceFormat;
  event: unknown;
  field: string;
  reason: string;
  /** Header allow list, when the case is about headers. */
  allow?: string[];
}

// One line per case reads as a table; prettier would spread each over six.
// prettier-ignore
const cases: Case[] = [
  // shape
  { name: 'native not an object', format: 'native', event: [1], field: '', reason: 'must be a JSON object (a request log record), got an array' },
  { name: 'moesif not an object', format: 'moesif', event: null, field: '', reason: 'is required and must be a JSON object (a Moesif event)' },
  { name: 'cloudevent not an object', format: 'cloudevents', event: 'x', field: '', reason: 'must be a JSON object (a CloudEvent), got "x"' },
  { name: 'kong not an object', format: 'kong', event: 7, field: '', reason: 'must be a JSON object (a Kong http-log entry), got 7' },

  // time
  { name: 'timestamp missing', format: 'native', event: { ...native, timestamp: undefined }, field: 'timestamp', reason: `is required and ${TIME_EXPECTATION}` },
  { name: 'timestamp not a date', format: 'native', event: { ...native, timestamp: 'yesterday' }, field: 'timestamp', reason: `${TIME_EXPECTATION}, got "yesterday"` },
  { name: 'timestamp without zone', format: 'native', event: { ...native, timestamp: '2026-11-21T11:00:00' }, field: 'timestamp', reason: `${TIME_EXPECTATION}, got "2026-11-21T11:00:00"` },
  { name: 'timestamp on Feb 30', format: 'native', event: { ...native, timestamp: '2026-02-30T00:00:00Z' }, field: 'timestamp', reason: `${TIME_EXPECTATION}, got "2026-02-30T00:00:00Z"` },
  { name: 'timestamp at 24:00', format: 'native', event: { ...native, timestamp: '2026-11-21T24:00:00Z' }, field: 'timestamp', reason: `${TIME_EXPECTATION}, got "2026-11-21T24:00:00Z"` },
  { name: 'timestamp as numeric string', format: 'native', event: { ...native, timestamp: '1795262399000' }, field: 'timestamp', reason: `${TIME_EXPECTATION}, got "1795262399000"` },
  { name: 'timestamp Infinity', format: 'native', event: { ...native, timestamp: JSON.parse('1e999') }, field: 'timestamp', reason: `${TIME_EXPECTATION}, got Infinity` },
  { name: 'timestamp 1e30', format: 'native', event: { ...native, timestamp: 1e30 }, field: 'timestamp', reason: 'must be between 1970-01-01T00:00:00.000Z and 2106-02-07T06:28:15.999Z, got 1e+30' },
  { name: 'timestamp before 1970', format: 'native', event: { ...native, timestamp: -1 }, field: 'timestamp', reason: 'must be between 1970-01-01T00:00:00.000Z and 2106-02-07T06:28:15.999Z, got -1' },
  {
    name: 'timestamp too far in the future',
    format: 'native',
    event: { ...native, timestamp: '2026-11-21T12:05:00.001Z' },
    field: 'timestamp',
    reason: 'must be from 35 days before to 5 minutes after the time the event was received (2026-10-17T12:00:00.000Z to 2026-11-21T12:05:00.000Z), got 2026-11-21T12:05:00.001Z',
  },
  {
    // Read as seconds (it once was read as milliseconds: 1970-01-21), and then too old: say how it was read.
    name: 'timestamp in epoch seconds, a year old',
    format: 'kong',
    event: { ...kong, started_at: 1763726400 },
    field: 'started_at',
    reason: 'must be from 35 days before to 5 minutes after the time the event was received (2026-10-17T12:00:00.000Z to 2026-11-21T12:05:00.000Z), got 2025-11-21T12:00:00.000Z (1763726400 read as epoch seconds)',
  },
  {
    name: 'timestamp in epoch microseconds',
    format: 'native',
    event: { ...native, timestamp: 1795262399000000 },
    field: 'timestamp',
    reason: 'must be between 1970-01-01T00:00:00.000Z and 2106-02-07T06:28:15.999Z, got 1795262399000000 (this looks like epoch microseconds: send milliseconds)',
  },
  {
    name: 'timestamp in epoch nanoseconds',
    format: 'native',
    event: { ...native, timestamp: 1795262399000000000 },
    field: 'timestamp',
    reason: 'must be between 1970-01-01T00:00:00.000Z and 2106-02-07T06:28:15.999Z, got 1795262399000000000 (this looks like epoch nanoseconds: send milliseconds)',
  },
  { name: 'moesif request.time missing', format: 'moesif', event: { ...moesif, request: { ...moesif.request, time: undefined } }, field: 'request.time', reason: 'is required and must be an ISO-8601 date-time (UTC unless it names a zone) or epoch milliseconds or seconds' },
  { name: 'moesif response.time garbage', format: 'moesif', event: { ...moesif, response: { ...moesif.response, time: 'soon' } }, field: 'response.time', reason: 'must be an ISO-8601 date-time (UTC unless it names a zone) or epoch milliseconds or seconds, got "soon"' },
  { name: 'moesif response 50 days later', format: 'moesif', event: { ...moesif, response: { ...moesif.response, time: '2027-11-21T00:00:00Z' } }, field: 'response.time', reason: 'must be at most 4294967295 ms after request.time' },
  { name: 'cloudevent time without zone', format: 'cloudevents', event: { ...cloudevent, time: '2026-11-21T11:00:00' }, field: 'time', reason: `${TIME_EXPECTATION}, got "2026-11-21T11:00:00"` },

  // request line
  { name: 'path and url missing', format: 'native', event: { ...native, path: undefined }, field: 'path', reason: 'is required (or url) and must be a path such as /v1/widgets' },
  { name: 'path empty', format: 'native', event: { ...native, path: '' }, field: 'path', reason: 'must be a non-empty path such as /v1/widgets or a full URL, got ""' },
  { name: 'path not a string', format: 'native', event: { ...native, path: ['/a'] }, field: 'path', reason: 'must be a non-empty path such as /v1/widgets or a full URL, got an array' },
  { name: 'route over 2048', format: 'native', event: { ...native, path: `/${'a'.repeat(2048)}?q` }, field: 'path', reason: 'must be at most 2048 characters, got 2049 characters' },
  { name: 'route with NUL', format: 'native', event: { ...native, path: '/a\u0000b' }, field: 'path', reason: 'must not contain the NUL character (U+0000)' },
  { name: 'host not a string', format: 'native', event: { ...native, host: { h: 1 } }, field: 'host', reason: 'must be a string, got an object' },
  { name: 'host over 512', format: 'native', event: { ...native, host: 'h'.repeat(513) }, field: 'host', reason: 'must be at most 512 characters, got 513 characters' },
  { name: 'moesif uri missing', format: 'moesif', event: { ...moesif, request: { ...moesif.request, uri: undefined } }, field: 'request.uri', reason: 'is required and must be a non-empty path such as /v1/widgets or a full URL' },
  { name: 'kong uri and url missing', format: 'kong', event: { ...kong, request: { ...kongRequest, uri: undefined, url: null } }, field: 'request.uri', reason: 'is required (or request.url) and must be a path such as /v1/widgets' },
  { name: 'method missing', format: 'native', event: { ...native, method: undefined }, field: 'method', reason: 'is required and must be an HTTP method of 1 to 16 letters, such as GET' },
  { name: 'method with a space', format: 'native', event: { ...native, method: 'GE T' }, field: 'method', reason: 'must be an HTTP method of 1 to 16 letters, such as GET, got "GE T"' },
  { name: 'method too long', format: 'moesif', event: { ...moesif, request: { ...moesif.request, verb: 'A'.repeat(17) } }, field: 'request.verb', reason: `must be an HTTP method of 1 to 16 letters, such as GET, got "${'A'.repeat(17)}"` },
  { name: 'method a number', format: 'kong', event: { ...kong, request: { ...kongRequest, method: 1 } }, field: 'request.method', reason: 'must be an HTTP method of 1 to 16 letters, such as GET, got 1' },
  { name: 'cloudevent method empty', format: 'cloudevents', event: { ...cloudevent, data: { method: '' } }, field: 'data.method', reason: 'must be an HTTP method of 1 to 16 letters, such as GET, got ""' },

  // numbers
  { name: 'status missing', format: 'native', event: { ...native, status: undefined }, field: 'status', reason: `is required and ${STATUS}` },
  { name: 'status 1e30', format: 'native', event: { ...native, status: 1e30 }, field: 'status', reason: `${STATUS}, got 1e+30` },
  { name: 'status Infinity', format: 'native', event: { ...native, status: JSON.parse('1e999') }, field: 'status', reason: `${STATUS}, got Infinity` },
  { name: 'status -Infinity', format: 'moesif', event: { ...moesif, response: { ...moesif.response, status: JSON.parse('-1e999') } }, field: 'response.status', reason: `${STATUS}, got -Infinity` },
  { name: 'status 99', format: 'native', event: { ...native, status: 99 }, field: 'status', reason: `${STATUS}, got 99` },
  { name: 'status 600', format: 'native', event: { ...native, status: 600 }, field: 'status', reason: `${STATUS}, got 600` },
  { name: 'status 0 outside cloudevents', format: 'native', event: { ...native, status: 0 }, field: 'status', reason: `${STATUS}, got 0` },
  { name: 'status fractional', format: 'native', event: { ...native, status: 200.5 }, field: 'status', reason: `${STATUS}, got 200.5` },
  { name: 'status as text in native', format: 'native', event: { ...native, status: '200' }, field: 'status', reason: `${STATUS}, got "200"` },
  { name: 'kong status text not a number', format: 'kong', event: { ...kong, response: { status: 'OK' } }, field: 'response.status', reason: `${STATUS}, got "OK"` },
  { name: 'kong status text huge', format: 'kong', event: { ...kong, response: { status: '1e999' } }, field: 'response.status', reason: `${STATUS}, got "1e999"` },
  { name: 'cloudevent status 42', format: 'cloudevents', event: { ...cloudevent, data: { status: 42 } }, field: 'data.status', reason: 'must be 0 or an integer from 100 to 599, got 42' },
  { name: 'cloudevent status_code text', format: 'cloudevents', event: { ...cloudevent, data: { status_code: 'fine' } }, field: 'data.status_code', reason: 'must be 0 or an integer from 100 to 599, got "fine"' },
  { name: 'latency negative', format: 'native', event: { ...native, latency_ms: -1 }, field: 'latency_ms', reason: 'must be a number of milliseconds from 0 to 4294967295, got -1' },
  { name: 'latency 1e30', format: 'native', event: { ...native, latency_ms: 1e30 }, field: 'latency_ms', reason: 'must be a number of milliseconds from 0 to 4294967295, got 1e+30' },
  { name: 'latency 2^32', format: 'native', event: { ...native, latency_ms: 2 ** 32 }, field: 'latency_ms', reason: 'must be a number of milliseconds from 0 to 4294967295, got 4294967296' },
  { name: 'latency Infinity', format: 'cloudevents', event: { ...cloudevent, data: { duration_ms: JSON.parse('1e999') } }, field: 'data.duration_ms', reason: 'must be a number of milliseconds from 0 to 4294967295, got Infinity' },
  { name: 'kong latency text', format: 'kong', event: { ...kong, latencies: { request: 'slow' } }, field: 'latencies.request', reason: 'must be a number of milliseconds from 0 to 4294967295, got "slow"' },
  { name: 'bytes fractional', format: 'native', event: { ...native, request_bytes: 1.5 }, field: 'request_bytes', reason: 'must be an integer number of bytes from 0 to 9007199254740991, got 1.5' },
  { name: 'bytes negative', format: 'native', event: { ...native, response_bytes: -5 }, field: 'response_bytes', reason: 'must be an integer number of bytes from 0 to 9007199254740991, got -5' },
  { name: 'bytes 1e30', format: 'kong', event: { ...kong, request: { ...kongRequest, size: 1e30 } }, field: 'request.size', reason: 'must be an integer number of bytes from 0 to 9007199254740991, got 1e+30' },
  { name: 'bytes over 2^53 as text', format: 'cloudevents', event: { ...cloudevent, data: { response_bytes: '9007199254740993' } }, field: 'data.response_bytes', reason: 'must be an integer number of bytes from 0 to 9007199254740991, got "9007199254740993"' },
  { name: 'weight 0', format: 'native', event: { ...native, weight: 0 }, field: 'weight', reason: 'must be an integer from 1 to 1000000, got 0' },
  { name: 'weight fractional', format: 'moesif', event: { ...moesif, weight: 1.5 }, field: 'weight', reason: 'must be an integer from 1 to 1000000, got 1.5' },
  { name: 'weight 1e30', format: 'moesif', event: { ...moesif, weight: 1e30 }, field: 'weight', reason: 'must be an integer from 1 to 1000000, got 1e+30' },
  { name: 'weight as text', format: 'native', event: { ...native, weight: '2' }, field: 'weight', reason: 'must be an integer from 1 to 1000000, got "2"' },

  // strings
  { name: 'id over 256', format: 'native', event: { ...native, id: 'x'.repeat(257) }, field: 'id', reason: 'must be at most 256 characters, got 257 characters' },
  { name: 'id with NUL', format: 'native', event: { ...native, id: 'a\u0000' }, field: 'id', reason: 'must not contain the NUL character (U+0000)' },
  { name: 'company_id an object', format: 'native', event: { ...native, company_id: { id: 1 } }, field: 'company_id', reason: 'must be a string, got an object' },
  { name: 'user_id a boolean', format: 'moesif', event: { ...moesif, user_id: true }, field: 'user_id', reason: 'must be a string, got true' },
  { name: 'user_id beyond 2^53', format: 'moesif', event: { ...moesif, user_id: 2 ** 53 }, field: 'user_id', reason: 'must be a string, or an integer up to 9007199254740991 (send larger ids as strings), got 9007199254740992' },
  { name: 'company_id 1e30', format: 'moesif', event: { ...moesif, company_id: 1e30 }, field: 'company_id', reason: 'must be a string, or an integer up to 9007199254740991 (send larger ids as strings), got 1e+30' },
  { name: 'customer with NUL', format: 'native', event: { ...native, customer: '\u0000' }, field: 'customer', reason: 'must not contain the NUL character (U+0000)' },
  { name: 'api_version over 256', format: 'moesif', event: { ...moesif, request: { ...moesif.request, api_version: 'v'.repeat(300) } }, field: 'request.api_version', reason: 'must be at most 256 characters, got 300 characters' },
  { name: 'kong consumer username an array', format: 'kong', event: { ...kong, consumer: { username: ['a'] } }, field: 'consumer.username', reason: 'must be a string, got an array' },
  { name: 'kong consumer not an object', format: 'kong', event: { ...kong, consumer: 'foo' }, field: 'consumer', reason: 'must be an object, got "foo"' },

  // metadata
  { name: 'metadata not an object', format: 'native', event: { ...native, metadata: 'plan=pro' }, field: 'metadata', reason: 'must be a JSON object, got "plan=pro"' },
  { name: 'metadata an array', format: 'moesif', event: { ...moesif, metadata: [1] }, field: 'metadata', reason: 'must be a JSON object, got an array' },
  {
    name: 'metadata over 100 keys',
    format: 'native',
    event: { ...native, metadata: { a: Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`k${i}`, i])) } },
    field: 'metadata',
    reason: 'has more than 100 keys once nested objects are flattened (at most 100 per event)',
  },
  {
    name: 'data over 99 keys plus metadata.type',
    format: 'cloudevents',
    event: { ...cloudevent, data: Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`k${i}`, i])) },
    field: 'data',
    reason: 'has more than 100 keys once nested objects are flattened (at most 100 per event)',
  },
  {
    name: 'metadata key over 256',
    format: 'native',
    event: { ...native, metadata: { ['k'.repeat(250)]: 1 } },
    field: `metadata.${'k'.repeat(250)}`,
    reason: 'makes a metadata key longer than 256 characters (keys are stored as metadata.<path>)',
  },
  { name: 'metadata value over 8192', format: 'native', event: { ...native, metadata: { note: 'n'.repeat(8193) } }, field: 'metadata.note', reason: 'must be at most 8192 characters, got 8193 characters' },
  { name: 'metadata array over 8192 as JSON', format: 'native', event: { ...native, metadata: { list: Array(5000).fill(1) } }, field: 'metadata.list', reason: 'must be at most 8192 characters, got 10001 characters' },
  { name: 'metadata deep object far over 8192 as JSON', format: 'native', event: { ...native, metadata: { a: { b: { c: { d: { e: { list: Array(9000).fill(1) } } } } } } }, field: 'metadata.a.b.c.d.e', reason: 'must be at most 8192 characters, got more than 16384 as JSON text' },
  { name: 'header value over 8192', format: 'native', event: { ...native, headers: { 'x-long': 'l'.repeat(8193) } }, field: 'headers.x-long', reason: 'must be at most 8192 characters, got 8193 characters', allow: ['x-long'] },
  { name: 'cloudevent data not an object', format: 'cloudevents', event: { ...cloudevent, data: 'hello' }, field: 'data', reason: 'must be a JSON object, got "hello"' },

  // headers
  { name: 'headers not an object', format: 'native', event: { ...native, headers: 'accept: */*' }, field: 'headers', reason: 'must be an object of header names to values, got "accept: */*"' },
  { name: 'moesif response headers an array', format: 'moesif', event: { ...moesif, response: { ...moesif.response, headers: ['a'] } }, field: 'response.headers', reason: 'must be an object of header names to values, got an array' },

  // envelopes
  { name: 'moesif request missing', format: 'moesif', event: { response: moesif.response }, field: 'request', reason: 'is required and must be an object (the request part of the event)' },
  { name: 'moesif response not an object', format: 'moesif', event: { ...moesif, response: 200 }, field: 'response', reason: 'must be an object (the response part of the event), got 200' },
  { name: 'cloudevent specversion 0.3', format: 'cloudevents', event: { ...cloudevent, specversion: '0.3' }, field: 'specversion', reason: 'must be "1.0" (CloudEvents 1.0), got "0.3"' },
  { name: 'cloudevent id missing', format: 'cloudevents', event: { ...cloudevent, id: undefined }, field: 'id', reason: 'is required and must be a non-empty string (the event id)' },
  { name: 'cloudevent source empty', format: 'cloudevents', event: { ...cloudevent, source: '' }, field: 'source', reason: 'must be a non-empty string (who sent the event), got ""' },
  { name: 'cloudevent type a number', format: 'cloudevents', event: { ...cloudevent, type: 5 }, field: 'type', reason: 'must be a non-empty string (the event type), got 5' },
  { name: 'cloudevent subject missing', format: 'cloudevents', event: { ...cloudevent, subject: undefined }, field: 'subject', reason: 'is required and must be a non-empty string (the customer the event is billed to)' },
  { name: 'cloudevent id over 256', format: 'cloudevents', event: { ...cloudevent, id: 'i'.repeat(257) }, field: 'id', reason: 'must be at most 256 characters, got 257 characters' },
  { name: 'kong request missing', format: 'kong', event: { ...kong, request: undefined }, field: 'request', reason: 'is required and must be an object (the request part of the log entry)' },
];

describe('every rejection reason', () => {
  it.each(cases)('$name → $field', ({ format, event, field, reason, allow = [] }) => {
    const caseCtx = { ...ctx, headerAllowList: new Set(allow) };
    expect(adapters[format]([event], caseCtx)).toEqual({ rows: [], rejected: [{ index: 0, field, reason }] });
  });
});

describe('no longer a rejection', () => {
  it('stores a Moesif event whose transaction id header is over 256 characters, without keeping that id', () => {
    const transactionId = 't'.repeat(257);
    const event = {
      ...moesif,
      request: { ...moesif.request, headers: { 'x-moesif-transaction-id': transactionId } },
    };
    const result = adapters.moesif([event], ctx);
    expect(result.rejected).toEqual([]);
    expect(result.rows).toHaveLength(1);
    expect(result.rows[0]!.event_id).toBe(
      moesifEventId(transactionId, {
        requestMs: Date.parse('2026-11-21T11:59:59.000Z'),
        method: 'GET',
        route: '/v1/x',
        host: 'api.test',
        companyId: 'c1',
        userId: '',
      }),
    );
    expect(result.rows[0]!.meta_keys).toEqual([]);
    // 256 characters is still kept as metadata.
    const kept = {
      ...moesif,
      request: { ...moesif.request, headers: { 'x-moesif-transaction-id': 't'.repeat(256) } },
    };
    const [row] = adapters.moesif([kept], ctx).rows;
    expect(row?.meta_keys).toEqual(['metadata.moesif.transaction_id']);
    expect(row?.meta_values).toEqual(['t'.repeat(256)]);
  });
});

describe('batches', () => {
  it('keeps the good events of a batch mixing every format problem', () => {
    const events = [
      native,
      { ...native, status: 1e30 },
      { ...native, path: '/two' },
      undefined,
      { ...native, timestamp: 'x' },
    ];
    const result = adapters.native(events, ctx);
    expect(result.rows.map((row) => row.route)).toEqual(['/v1/x', '/two']);
    expect(result.rejected.map((r) => [r.index, r.field])).toEqual([
      [1, 'status'],
      [3, ''],
      [4, 'timestamp'],
    ]);
  });

  it('reports a body that is not an array as one rejection', () => {
    for (const format of ['native', 'moesif', 'cloudevents', 'kong'] as const) {
      expect(adapters[format](native as unknown as unknown[], ctx)).toEqual({
        rows: [],
        rejected: [{ index: 0, field: '', reason: 'the body must be a JSON array of events' }],
      });
    }
  });

  it('rejects an event over maxEventBytes, measured in UTF-8 bytes, naming the limit', () => {
    const small = context('2026-11-21T12:00:00.000Z', { maxEventBytes: 200 });
    const fits = { ...native, metadata: { n: 'x'.repeat(60) } };
    const multibyte = { ...native, metadata: { n: 'é'.repeat(60) } }; // 60 characters, 120 bytes
    const result = adapters.native([fits, multibyte], small);
    expect(Buffer.byteLength(JSON.stringify(fits))).toBeLessThanOrEqual(200);
    expect(Buffer.byteLength(JSON.stringify(multibyte))).toBeGreaterThan(200);
    expect(result.rows).toHaveLength(1);
    expect(result.rejected).toEqual([
      { index: 1, field: '', reason: 'the event is over the 200-byte limit (MAX_EVENT_BYTES)' },
    ]);
    expect(isEventTooLarge(result.rejected[0]!)).toBe(true);
    expect(
      isEventTooLarge({ index: 0, field: 'status', reason: 'must be an integer from 100 to 599, got 1' }),
    ).toBe(false);
  });

  it('applies the size limit to every format and to Moesif side records', () => {
    const small = context('2026-11-21T12:00:00.000Z', { maxEventBytes: 50 });
    const big = { padding: 'p'.repeat(100) };
    for (const format of ['native', 'moesif', 'cloudevents', 'kong'] as const) {
      expect(adapters[format]([big], small).rejected.every(isEventTooLarge)).toBe(true);
    }
    const user = adaptMoesifUser({ user_id: 'u', ...big }, small);
    expect(user.ok === false && isEventTooLarge(user.rejection)).toBe(true);
  });

  it('measures a deeply nested event without overflowing the stack', () => {
    const small = context('2026-11-21T12:00:00.000Z', { maxEventBytes: 10_000 });
    const result = adapters.native([{ ...native, metadata: nestedObjects(100_000) }], small);
    expect(result.rejected).toEqual([
      { index: 0, field: '', reason: 'the event is over the 10000-byte limit (MAX_EVENT_BYTES)' },
    ]);
  });
});

describe('moesif side records', () => {
  it('rejects a company without company_id, a user without user_id, and an action without a name', () => {
    expect(adaptMoesifCompany({ metadata: {} }, ctx, 4)).toEqual({
      ok: false,
      rejection: { index: 4, field: 'company_id', reason: 'is required and must be a non-empty string' },
    });
    expect(adaptMoesifUser({ user_id: '' }, ctx)).toEqual({
      ok: false,
      rejection: { index: 0, field: 'user_id', reason: 'is required and must be a non-empty string' },
    });
    expect(adaptMoesifAction({ user_id: 'u' }, ctx)).toEqual({
      ok: false,
      rejection: { index: 0, field: 'action_name', reason: 'is required and must be a non-empty string' },
    });
  });

  it('rejects an action outside the time window, and a company with a bad modified_time', () => {
    const action = adaptMoesifAction({ action_name: 'a', request: { time: '2020-01-01T00:00:00Z' } }, ctx);
    expect(action.ok === false && action.rejection.field).toBe('request.time');
    const company = adaptMoesifCompany({ company_id: 'c', modified_time: 'last week' }, ctx);
    expect(company).toEqual({
      ok: false,
      rejection: {
        index: 0,
        field: 'modified_time',
        reason:
          'must be an ISO-8601 date-time (UTC unless it names a zone) or epoch milliseconds or seconds, got "last week"',
      },
    });
  });

  it('keeps the good users of a batch', () => {
    expect(adaptMoesifUsers([{ user_id: 'a' }, { user_id: { x: 1 } }, 'b'], ctx)).toEqual({
      values: [{ user_id: 'a', company_id: '', meta_keys: [], meta_values: [] }],
      rejected: [
        { index: 1, field: 'user_id', reason: 'must be a string, got an object' },
        { index: 2, field: '', reason: 'must be a JSON object (a Moesif user), got "b"' },
      ],
    });
  });
});

// The real `@openmeter/sdk` client pointed at the collector's OpenMeter-compatible endpoint
// (`POST /api/v1/events`, CloudEvents): the SDK call must resolve and the rows must be exact.
import { HTTPError, OpenMeter, type Event } from '@openmeter/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENGINES } from '../support/clickhouse.ts';
import { startTestService, type StoredRow, type TestService } from '../support/service.ts';
import { epochSeconds } from './support.ts';

interface Exchange {
  method: string;
  path: string;
  contentType: string | null;
  body: unknown;
  status: number;
}

/** What the SDK sent as CloudEvents (after it filled in id, source, specversion and time). */
interface SentEvent {
  id: string;
  source: string;
  specversion: string;
  type: string;
  subject: string;
  time: string;
  data?: Record<string, unknown>;
}

/** The row's event id: the source with `%` and `/` escaped (so the first `/` ends it), `/`, the id. */
const cloudEventId = (source: string, id: string): string =>
  `${source.replaceAll('%', '%25').replaceAll('/', '%2F')}/${id}`;

describe.each(ENGINES)('@openmeter/sdk → collector on %s ClickHouse', (engine) => {
  let svc: TestService;
  let openmeter: OpenMeter;
  /** Every request the SDK made and the status it got back, in order. */
  const exchanges: Exchange[] = [];

  beforeAll(async () => {
    svc = await startTestService(engine);
    openmeter = new OpenMeter({
      baseUrl: svc.url,
      apiKey: svc.ingestKey,
      // The SDK's own fetch, watched: what it sent and the status it saw.
      fetch: async (request: Request) => {
        const sent = request.clone();
        const response = await fetch(request);
        const text = await sent.text();
        exchanges.push({
          method: sent.method,
          path: new URL(sent.url).pathname,
          contentType: sent.headers.get('content-type'),
          body: text ? (JSON.parse(text) as unknown) : undefined,
          status: response.status,
        });
        return response;
      },
    });
  });

  afterAll(async () => {
    await svc?.stop();
  });

  const lastSent = (): SentEvent[] => exchanges.at(-1)!.body as SentEvent[];
  const rowsOf = async (subjects: string[]) =>
    (await svc.rows()).filter((r) => r.source_format === 'cloudevents' && subjects.includes(r.customer_key));

  const cloudEventRow = (event: SentEvent, fields: Partial<StoredRow>): StoredRow => {
    const ms = Date.parse(event.time);
    return {
      event_id: cloudEventId(event.source, event.id),
      app: svc.keyId,
      received_at: expect.any(Number),
      request_time: epochSeconds(ms),
      request_time_ms: ms % 1000,
      customer_key: event.subject,
      company_id: event.subject,
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
      meta_keys: [],
      meta_values: [],
      ...fields,
    };
  };

  it('ingests one event (the SDK fills id, source and time); the service answers 204 and stores the exact row', async () => {
    const before = Date.now();
    // The SDK resolves with nothing: what came back is the status the exchange below records.
    await openmeter.events.ingest({
      type: 'api-requests',
      subject: 'Customer-Acme',
      data: { route: '/RetrieveCreditScore?ssn=1', method: 'post', status: 200, duration_ms: 12.6 },
    });
    const after = Date.now();

    expect(exchanges.at(-1)).toMatchObject({
      method: 'POST',
      path: '/api/v1/events',
      contentType: 'application/cloudevents-batch+json',
      status: 204,
    });
    const [sent] = lastSent();
    expect(sent).toMatchObject({ source: '@openmeter/sdk', specversion: '1.0', type: 'api-requests' });
    expect(sent!.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(Date.parse(sent!.time)).toBeGreaterThanOrEqual(before);
    expect(Date.parse(sent!.time)).toBeLessThanOrEqual(after);

    const rows = await rowsOf(['Customer-Acme']);
    expect(rows).toEqual([
      cloudEventRow(sent!, {
        method: 'POST',
        route: '/RetrieveCreditScore',
        status: 200,
        latency_ms: 13,
        meta_keys: [
          'metadata.type',
          'metadata.route',
          'metadata.method',
          'metadata.status',
          'metadata.duration_ms',
        ],
        // The query string (personal data here) is not kept in metadata either.
        meta_values: ['api-requests', '/RetrieveCreditScore', 'post', '200', '12.6'],
      }),
    ]);
    expect(rows[0]!.event_id).toBe(`@openmeter%2Fsdk/${sent!.id}`);
    expect(JSON.stringify(rows)).not.toContain('ssn');
  });

  it('ingests a batch: one row per event, each billed to its subject, with explicit ids, sources and times kept', async () => {
    const t0 = new Date(Date.now() - 90_000 - (Date.now() % 1000) + 123); // ms part 123: checks request_time_ms
    const batch: Event[] = [
      {
        id: 'batch-1',
        source: 'credit-api',
        type: 'api-requests',
        subject: 'Customer-Bravo',
        time: t0,
        data: { route: '/RetrieveCreditScore', method: 'GET', status: 200, duration_ms: 40 },
      },
      {
        id: 'batch-2',
        source: 'credit-api',
        type: 'api-requests',
        subject: 'Customer-Bravo',
        time: new Date(t0.getTime() + 1000),
        data: {
          route: 'https://api.example.com/RetrieveCreditScore#frag',
          method: 'GET',
          status: 503,
          duration_ms: 0,
        },
      },
      {
        type: 'api-requests',
        subject: 'Customer-Charlie',
        data: {
          route: '/v2/reports',
          method: 'DELETE',
          status: 204,
          duration_ms: 7,
          user_id: 'user_9',
          request_bytes: 0,
          response_bytes: '0',
        },
      },
    ];
    await openmeter.events.ingest(batch);
    expect(exchanges.at(-1)!.status).toBe(204);
    const sent = lastSent();
    expect(sent).toHaveLength(3);
    expect(sent[0]!.time).toBe(t0.toISOString());

    const rows = await rowsOf(['Customer-Bravo', 'Customer-Charlie']);
    const expected = [
      cloudEventRow(sent[0]!, {
        method: 'GET',
        route: '/RetrieveCreditScore',
        status: 200,
        latency_ms: 40,
        meta_keys: [
          'metadata.type',
          'metadata.route',
          'metadata.method',
          'metadata.status',
          'metadata.duration_ms',
        ],
        meta_values: ['api-requests', '/RetrieveCreditScore', 'GET', '200', '40'],
      }),
      cloudEventRow(sent[1]!, {
        method: 'GET',
        route: '/RetrieveCreditScore',
        host: 'api.example.com',
        status: 503,
        latency_ms: 0,
        meta_keys: [
          'metadata.type',
          'metadata.route',
          'metadata.method',
          'metadata.status',
          'metadata.duration_ms',
        ],
        meta_values: ['api-requests', '/RetrieveCreditScore', 'GET', '503', '0'],
      }),
      cloudEventRow(sent[2]!, {
        user_id: 'user_9',
        method: 'DELETE',
        route: '/v2/reports',
        status: 204,
        latency_ms: 7,
        meta_keys: [
          'metadata.type',
          'metadata.route',
          'metadata.method',
          'metadata.status',
          'metadata.duration_ms',
          'metadata.user_id',
          'metadata.request_bytes',
          'metadata.response_bytes',
        ],
        meta_values: ['api-requests', '/v2/reports', 'DELETE', '204', '7', 'user_9', '0', '0'],
      }),
    ].sort((a, b) => (a.event_id < b.event_id ? -1 : 1));
    expect(rows).toEqual(expected);
    expect(rows.map((r) => r.event_id)).toEqual([
      `@openmeter%2Fsdk/${sent[2]!.id}`,
      'credit-api/batch-1',
      'credit-api/batch-2',
    ]);
    expect(rows.find((r) => r.event_id === 'credit-api/batch-1')!.request_time_ms).toBe(123);
  });

  it('an event sent twice with the same id (a retry) is one row; the same id from another source is another event', async () => {
    const event: Event = {
      id: 'evt-retry-1',
      source: 'credit-api',
      type: 'api-requests',
      subject: 'Customer-Delta',
      time: new Date(Date.now() - 5_000),
      data: { route: '/RetrieveCreditScore', method: 'POST', status: 200, duration_ms: 5 },
    };
    await openmeter.events.ingest(event);
    // The "retry": the same event again, alone and then inside a batch.
    await openmeter.events.ingest(event);
    await openmeter.events.ingest([event, { ...event, source: 'other-gateway' }]);
    expect(exchanges.slice(-3).map((e) => e.status)).toEqual([204, 204, 204]);

    const rows = await rowsOf(['Customer-Delta']);
    expect(rows.map((r) => r.event_id)).toEqual(['credit-api/evt-retry-1', 'other-gateway/evt-retry-1']);
    const [sent] = lastSent();
    const fields = {
      method: 'POST',
      route: '/RetrieveCreditScore',
      status: 200,
      latency_ms: 5,
      meta_keys: [
        'metadata.type',
        'metadata.route',
        'metadata.method',
        'metadata.status',
        'metadata.duration_ms',
      ],
      meta_values: ['api-requests', '/RetrieveCreditScore', 'POST', '200', '5'],
    };
    expect(rows).toEqual([
      cloudEventRow(sent!, fields),
      cloudEventRow({ ...sent!, source: 'other-gateway' }, fields),
    ]);
  });

  it('rejects a bad event with an HTTPError the SDK can read (400), and still stores the valid events of the batch', async () => {
    const good: Event = {
      id: 'mixed-good',
      source: 'credit-api',
      type: 'api-requests',
      subject: 'Customer-Echo',
      data: { route: '/RetrieveCreditScore', method: 'GET', status: 200, duration_ms: 1 },
    };
    const bad = {
      id: 'mixed-bad',
      source: 'credit-api',
      type: 'api-requests',
      subject: '',
      data: { status: 200 },
    } as Event;
    const error = await openmeter.events.ingest([good, bad]).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(error).toBeInstanceOf(HTTPError);
    expect((error as HTTPError).status).toBe(400);
    // The problem+json detail reaches the SDK's error (it reads it only for that exact content type).
    expect((error as HTTPError).message).toContain('1 event(s) rejected; the other 1 were accepted');
    expect((error as HTTPError).getField('rejected')).toEqual([
      { index: 1, field: 'subject', reason: expect.any(String) },
    ]);
    expect(exchanges.at(-1)!.status).toBe(400);
    expect((await rowsOf(['Customer-Echo', ''])).map((r) => r.event_id)).toEqual(['credit-api/mixed-good']);
  });

  it('refuses a wrong ingest key with 401 and stores nothing', async () => {
    const stranger = new OpenMeter({ baseUrl: svc.url, apiKey: `bmk_${'x'.repeat(64)}` });
    const error = await stranger.events
      .ingest({ id: 'no-key', type: 'api-requests', subject: 'Customer-Foxtrot', data: { status: 200 } })
      .then(
        () => undefined,
        (err: unknown) => err,
      );
    expect(error).toBeInstanceOf(HTTPError);
    expect((error as HTTPError).status).toBe(401);
    expect((await svc.rows()).filter((r) => r.event_id.endsWith('/no-key'))).toEqual([]);
  });
});

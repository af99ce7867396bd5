import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CrossingWithDeliveries } from '../../../src/alerts/alert-delivery.ts';
import type { CrossingFilter } from '../../../src/alerts/alert-engine.ts';
import { createApp } from '../../../src/http/app.ts';
import { ADMIN_KEY, inMemoryStripeSide, stubAppDeps } from '../../support/webhook-fixtures.ts';

const crossing: CrossingWithDeliveries = {
  crossing: {
    id: 'alrt_0123456789abcdef01234567',
    customer: 'acme',
    meter: 'calls',
    periodStart: new Date('2026-11-01T00:00:00Z'),
    threshold: 'quota:80%',
    thresholdValue: 80n,
    label: '80% of the quota of 100 calls',
    quantity: 85n,
    observedAt: new Date('2026-11-10T12:05:00Z'),
    recordedAt: new Date('2026-11-10T12:05:01Z'),
  },
  deliveries: [
    {
      channel: 'webhook',
      state: 'retrying',
      attempts: [
        {
          crossingId: 'alrt_0123456789abcdef01234567',
          channel: 'webhook',
          attempt: 1,
          outcome: 'failed',
          statusCode: 500,
          error: 'the receiver answered 500',
          attemptedAt: new Date('2026-11-10T12:05:02Z'),
          nextAttemptAt: new Date('2026-11-10T12:05:32Z'),
        },
      ],
    },
  ],
};

describe('GET /v1/alerts', () => {
  const filters: CrossingFilter[] = [];
  let url: string;
  let close: () => void;
  beforeAll(async () => {
    const app = createApp({
      ...stubAppDeps(inMemoryStripeSide()),
      alerts: {
        list: async (f) => {
          filters.push(f);
          return [crossing];
        },
      },
    });
    const server = app.listen(0, '127.0.0.1');
    await once(server, 'listening');
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    close = () => server.close();
  });
  afterAll(() => close());
  const get = (path: string, key = ADMIN_KEY) =>
    fetch(`${url}${path}`, { headers: key ? { authorization: `Bearer ${key}` } : {} });

  it('lists crossings with their delivery, filtered as asked', async () => {
    const res = await get('/v1/alerts?customer=acme&period=2026-11&limit=5');
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      data: [
        {
          id: 'alrt_0123456789abcdef01234567',
          customer: 'acme',
          meter: 'calls',
          period: '2026-11',
          threshold: { id: 'quota:80%', label: '80% of the quota of 100 calls', value: '80' },
          quantity: '85',
          observed_at: '2026-11-10T12:05:00.000Z',
          recorded_at: '2026-11-10T12:05:01.000Z',
          deliveries: [
            {
              channel: 'webhook',
              state: 'retrying',
              attempts: 1,
              last_attempt_at: '2026-11-10T12:05:02.000Z',
              last_error: 'the receiver answered 500',
              next_attempt_at: '2026-11-10T12:05:32.000Z',
            },
          ],
        },
      ],
    });
    expect(filters.at(-1)).toEqual({
      customer: 'acme',
      meter: undefined,
      periodStart: new Date('2026-11-01T00:00:00Z'),
      limit: 5,
    });
  });

  it('needs the admin key', async () => {
    expect((await get('/v1/alerts', '')).status).toBe(401);
    expect((await get('/v1/alerts', 'x'.repeat(40))).status).toBe(401);
  });

  it('names the bad field of a bad query', async () => {
    const res = await get('/v1/alerts?period=2026-13');
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toContain('application/problem+json');
    expect(JSON.stringify(await res.json())).toContain('period');
    expect((await get('/v1/alerts?colour=red')).status).toBe(400);
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HOUR_MS } from '../../../src/meters/evaluation.ts';
import { ENGINES } from '../../support/clickhouse.ts';
import { startTestService, type TestService } from '../../support/service.ts';

// The worked example end to end, through the shipped meters/retrieve-credit-score.yaml: logs in through
// the collector, evaluation through the admin API, usage and cost out through the usage API.
// The service's clock is pinned, so the example runs whatever the date: on the last half hour of a leap
// day, the logs in its 22:00 hour (closed, inside February's period). The first hour of a month, where
// no hour of the month has closed yet, is period-boundaries.happy.test.ts.
const now = new Date('2028-02-29T23:30:00Z');
const hour = new Date('2028-02-29T22:00:00Z');

describe.each(ENGINES)('usage API on %s ClickHouse', (engine) => {
  let svc: TestService;
  const admin = (path: string, init: RequestInit = {}) =>
    fetch(`${svc.url}${path}`, {
      ...init,
      headers: { authorization: `Bearer ${svc.adminKey}`, ...(init.headers ?? {}) },
    });

  beforeAll(async () => {
    svc = await startTestService(engine, {}, { now: () => now });
    const events = [];
    for (let i = 0; i < 1500; i++) events.push({ id: `big-${i}`, company_id: 'co_big', status: 200 });
    for (let i = 0; i < 101; i++) events.push({ id: `small-${i}`, company_id: 'co_small', status: 200 });
    for (let i = 0; i < 50; i++) events.push({ id: `fail-${i}`, company_id: 'co_big', status: 500 });
    for (let i = 0; i < 30; i++)
      events.push({ id: `other-${i}`, company_id: 'co_big', status: 200, path: '/RetrieveCreditReport' });
    const body = events.map((e, i) => ({
      id: e.id,
      timestamp: hour.getTime() + (i % 3_600_000),
      company_id: e.company_id,
      user_id: `u${i % 7}`,
      method: 'POST',
      path: e.path ?? '/RetrieveCreditScore',
      status: e.status,
    }));
    const res = await fetch(`${svc.url}/v1/logs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${svc.ingestKey}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    expect(res.status).toBe(202);
    await svc.service.flush();
    const evaluated = await admin('/v1/admin/meters/evaluate', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    expect(evaluated.status).toBe(200);
  });
  afterAll(async () => {
    await svc?.stop();
  });

  it('prices 1,500 calls at $4,200.00 and 101 at $503.00, by tier', async () => {
    const res = await admin('/v1/customers/co_big/usage');
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      meters: {
        meter: string;
        quantity: string;
        cost?: { display: string; amount: string };
        tiers?: unknown[];
      }[];
    };
    const credit = body.meters.find((m) => m.meter === 'retrieve-credit-score')!;
    expect(credit.quantity).toBe('1500');
    expect(credit.cost).toMatchObject({ display: '$4,200.00', amount: '420000' });
    expect(credit.tiers).toEqual([
      expect.objectContaining({ tier: 1, quantity: '100', amount: '50000' }),
      expect.objectContaining({ tier: 2, quantity: '900', amount: '270000' }),
      expect.objectContaining({ tier: 3, quantity: '500', amount: '100000' }),
    ]);
    const small = (await (await admin('/v1/customers/co_small/usage')).json()) as typeof body;
    expect(small.meters.find((m) => m.meter === 'retrieve-credit-score')!.cost!.display).toBe('$503.00');
    const nobody = (await (await admin('/v1/customers/co_nobody/usage')).json()) as typeof body;
    expect(nobody.meters.find((m) => m.meter === 'retrieve-credit-score')).toMatchObject({
      quantity: '0',
      cost: { display: '$0.00' },
    });
  });

  it('answers usage per hour as JSON and as CSV, and per month for a unique count', async () => {
    const from = new Date(hour.getTime() - 24 * HOUR_MS).toISOString();
    const to = new Date(hour.getTime() + HOUR_MS).toISOString();
    const q = `meter=retrieve-credit-score&from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}&window=hour`;
    const json = (await (await admin(`/v1/usage?${q}`)).json()) as {
      usage: { customer: string; value: string; window_start: string }[];
    };
    expect(json.usage).toEqual([
      { meter: 'retrieve-credit-score', customer: 'co_big', window_start: hour.toISOString(), value: '1500' },
      {
        meter: 'retrieve-credit-score',
        customer: 'co_small',
        window_start: hour.toISOString(),
        value: '101',
      },
    ]);
    const csv = await admin(`/v1/usage?${q}`, { headers: { accept: 'text/csv' } });
    expect(csv.headers.get('content-type')).toContain('text/csv');
    expect(await csv.text()).toBe(
      `meter,customer,window_start,value\nretrieve-credit-score,co_big,${hour.toISOString()},1500\nretrieve-credit-score,co_small,${hour.toISOString()},101\n`,
    );
    const users = (await (
      await admin(
        `/v1/usage?meter=monthly-active-users&from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}&window=month`,
      )
    ).json()) as { usage: { customer: string; value: string }[] };
    expect(users.usage.find((u) => u.customer === 'co_big')?.value).toBe('7');
    expect((await admin('/v1/usage?meter=nope&from=x')).status).toBe(400);
    expect(
      (await admin(`/v1/usage?meter=nope&from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`))
        .status,
    ).toBe(404);
    expect(
      (await fetch(`${svc.url}/v1/usage?${q}`, { headers: { authorization: `Bearer ${svc.ingestKey}` } }))
        .status,
    ).toBe(401);
  });

  it('lists the meters and every version of one', async () => {
    const list = (await (await admin('/v1/meters')).json()) as {
      meters: { name: string; versions: unknown[] }[];
    };
    expect(list.meters.map((m) => m.name).sort()).toEqual([
      'monthly-active-users',
      'response-bytes',
      'retrieve-credit-score',
    ]);
    const one = (await (await admin('/v1/meters/retrieve-credit-score')).json()) as {
      version: string;
      versions: { version: string }[];
    };
    expect(one.versions.map((v) => v.version)).toEqual([one.version]);
  });
});

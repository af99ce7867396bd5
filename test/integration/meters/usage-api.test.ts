import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { periodStart } from '../../../src/time/billing-period.ts';
import { HOUR_MS } from '../../../src/time/hours.ts';
import {
  customerUsageSchema,
  evaluationAnswerSchema,
  usageAnswerSchema,
} from '../../../src/http/openapi/schemas.ts';
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
        cost?: { display: string; amount: string; amount_minor: number; currency: string };
        tiers?: unknown[];
      }[];
    };
    const credit = body.meters.find((m) => m.meter === 'retrieve-credit-score')!;
    expect(credit.quantity).toBe('1500');
    // One money shape: a decimal string of dollars, an integer of cents, the currency, for people.
    expect(credit.cost).toEqual({
      currency: 'usd',
      amount: '4200.00',
      amount_minor: 420000,
      display: '$4,200.00',
    });
    expect(credit.tiers).toEqual([
      expect.objectContaining({ tier: 1, quantity: '100', amount: '500.00', amount_minor: 50000 }),
      expect.objectContaining({ tier: 2, quantity: '900', amount: '2700.00', amount_minor: 270000 }),
      expect.objectContaining({ tier: 3, quantity: '500', amount: '1000.00', amount_minor: 100000 }),
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
    const hourCsv =
      `meter,customer,window_start,value,currency,amount,amount_minor\n` +
      `retrieve-credit-score,co_big,${hour.toISOString()},1500,,,\n` +
      `retrieve-credit-score,co_small,${hour.toISOString()},101,,,\n`;
    expect(await csv.text()).toBe(hourCsv);
    // ?format=csv without an Accept header, as a download with a name.
    const download = await admin(`/v1/usage?${q}&format=csv`);
    expect(download.headers.get('content-disposition')).toMatch(
      /^attachment; filename="usage-retrieve-credit-score-hour-\d{8}T\d{6}Z-\d{8}T\d{6}Z\.csv"$/,
    );
    expect(await download.text()).toBe(hourCsv);
    // A month window of a priced meter carries what that month's quantity costs.
    const monthCsv = await (
      await admin(
        `/v1/usage?meter=retrieve-credit-score&customer=co_small&from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}&window=month&format=csv`,
      )
    ).text();
    expect(monthCsv.split('\n').at(-2)).toMatch(
      /^retrieve-credit-score,co_small,[^,]+,101,usd,503.00,50300$/,
    );
    const users = (await (
      await admin(
        `/v1/usage?meter=monthly-active-users&from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}&window=month`,
      )
    ).json()) as { usage: { customer: string; value: string }[] };
    expect(users.usage.find((u) => u.customer === 'co_big')?.value).toBe('7');
    const bad = await admin('/v1/usage?meter=nope&from=x');
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({
      errors: [
        { field: 'from', reason: expect.stringContaining('or a date (2026-12-01, read as 00:00 UTC)') },
      ],
    });
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

  it('takes the time forms of parseInstant, and answers 400 naming the field for the rest (never 500)', async () => {
    const day = hour.toISOString().slice(0, 10);
    const nextDay = new Date(Date.parse(day) + 24 * HOUR_MS).toISOString().slice(0, 10);
    const get = (query: string) => admin(`/v1/usage?meter=retrieve-credit-score&${query}`);
    // A date alone is 00:00 UTC; a + left unencoded in the query string arrives as a space.
    const byDate = (await (await get(`from=${day}&to=${nextDay}`)).json()) as {
      from: string;
      usage: unknown[];
    };
    expect(byDate.from).toBe(`${day}T00:00:00.000Z`);
    expect(byDate.usage).toHaveLength(2);
    const plus = await get(`from=${day}T01:00:00+01:00&to=${nextDay}T01:00:00+01:00`);
    expect(plus.status).toBe(200);
    expect(((await plus.json()) as { from: string }).from).toBe(`${day}T00:00:00.000Z`);
    for (const [query, field, reason] of [
      [`from=${day}T00:00:00&to=${nextDay}`, 'from', 'has no time zone'],
      [`from=${day}&to=1764547200`, 'to', 'looks like epoch seconds'],
      [`from=${nextDay}&to=${day}`, 'to', 'must be after from'],
      [`period=2026-13`, 'period', 'YYYY-MM'],
      [`period=2026-11&from=${day}`, 'period', 'not both'],
      [`window=week`, 'window', ''],
    ] as const) {
      const res = await get(query);
      expect(res.status, query).toBe(400);
      expect(res.headers.get('content-type')).toContain('application/problem+json');
      const problem = (await res.json()) as { errors: { field: string; reason: string }[] };
      expect(problem.errors, query).toContainEqual({ field, reason: expect.stringContaining(reason) });
    }
  });

  it('defaults /v1/usage to the current period, and reads a past one with period=YYYY-MM', async () => {
    const current = (await (await admin('/v1/usage?meter=retrieve-credit-score&window=month')).json()) as {
      from: string;
      to: string;
    };
    expect([current.from, current.to]).toEqual([
      periodStart(now).toISOString(),
      new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1)).toISOString(),
    ]);
    const month = hour.toISOString().slice(0, 7);
    const past = (await (
      await admin(`/v1/usage?meter=retrieve-credit-score&period=${month}&window=month&customer=co_big`)
    ).json()) as { usage: { value: string; cost: { amount: string } }[] };
    expect(past.usage).toEqual([
      expect.objectContaining({ value: '1500', cost: expect.objectContaining({ amount: '4200.00' }) }),
    ]);
    const customer = (await (await admin(`/v1/customers/co_big/usage?period=${month}`)).json()) as {
      period: { id: string };
      meters: { meter: string; quantity: string }[];
    };
    expect(customer.period.id).toBe(month);
    customerUsageSchema.parse(customer);
    usageAnswerSchema.parse(past);
    expect(customer.meters.find((m) => m.meter === 'retrieve-credit-score')!.quantity).toBe('1500');
    const before = (await (
      await admin('/v1/customers/co_big/usage?period=2020-01')
    ).json()) as typeof customer;
    expect(before.meters.find((m) => m.meter === 'retrieve-credit-score')!.quantity).toBe('0');
    for (const bad of ['2026-13', 'november', '2999-01']) {
      const res = await admin(`/v1/customers/co_big/usage?period=${bad}`);
      expect(res.status, bad).toBe(400);
      expect(((await res.json()) as { errors: { field: string }[] }).errors[0]!.field).toBe('period');
    }
  });

  it('answers the scheduled run and a range in one shape, and 422 for a range no version covers', async () => {
    const keys = (o: object) => Object.keys(o).sort();
    const scheduled = (await (
      await admin('/v1/admin/meters/evaluate', { method: 'POST', body: '{}' })
    ).json()) as Record<string, unknown>;
    const range = (await (
      await admin('/v1/admin/meters/evaluate', {
        method: 'POST',
        body: JSON.stringify({
          from: hour.toISOString(),
          to: new Date(hour.getTime() + HOUR_MS).toISOString(),
        }),
      })
    ).json()) as Record<string, unknown>;
    // The answers are what the OpenAPI document says they are.
    evaluationAnswerSchema.parse(scheduled);
    evaluationAnswerSchema.parse(range);
    expect(keys(scheduled)).toEqual(['mode', 'not_covered', 'ranges', 'run']);
    expect(keys(range)).toEqual(keys(scheduled));
    expect([scheduled.mode, range.mode, range.run]).toEqual(['scheduled', 'range', null]);
    const status = (await (await admin('/v1/admin/meters/evaluation')).json()) as { last_run: unknown };
    expect(status.last_run).toEqual(scheduled.run);

    const res = await admin('/v1/admin/meters/evaluate', {
      method: 'POST',
      body: JSON.stringify({ from: '2020-01-01', to: '2020-02-01' }),
    });
    expect(res.status).toBe(422);
    const problem = (await res.json()) as { detail: string; meters: { meter: string }[] };
    expect(problem.meters.map((m) => m.meter).sort()).toEqual([
      'monthly-active-users',
      'response-bytes',
      'retrieve-credit-score',
    ]);
    expect(problem.detail).toContain('set effective_from');
    const unknown = await admin('/v1/admin/meters/evaluate', {
      method: 'POST',
      body: JSON.stringify({ from: '2020-01-01', to: '2020-02-01', meters: ['nope'] }),
    });
    expect(unknown.status).toBe(400);
    expect(await unknown.json()).toMatchObject({
      errors: [{ field: 'meters.0', reason: 'no meter named nope' }],
    });
  });
});

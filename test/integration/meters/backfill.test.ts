import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { shipFile } from '../../../ingest/ship.ts';
import { startService, type RunningService } from '../../../src/main.ts';
import { HOUR_MS } from '../../../src/time/hours.ts';
import { ENGINES } from '../../support/clickhouse.ts';
import { startTestService, type TestService } from '../../support/service.ts';

// The README's backfill, end to end: a service whose meter starts this month (the default), last month's
// logs imported with `ship`, the range refused (422) until the meter's effective_from is moved back,
// then billed. The clock is pinned to the first half hour of a year, where "this month" has no closed
// hour yet and last month is last year's December: the case that billed nothing before.
const NOW = new Date('2026-01-01T00:30:00Z');
const DECEMBER_10 = Date.parse('2025-12-10T00:00:00Z');

describe.each(ENGINES)('a backfill of last month on %s ClickHouse', (engine) => {
  let svc: TestService;
  let service: RunningService;
  let metersDir: string;
  let logFile: string;
  const admin = (path: string, init: RequestInit = {}) =>
    fetch(`${service.url}${path}`, {
      ...init,
      headers: {
        authorization: `Bearer ${svc.adminKey}`,
        'content-type': 'application/json',
        ...(init.headers ?? {}),
      },
    });
  const evaluate = (body: object) =>
    admin('/v1/admin/meters/evaluate', { method: 'POST', body: JSON.stringify(body) });

  beforeAll(async () => {
    metersDir = await mkdtemp(join(tmpdir(), 'bm-backfill-meters-'));
    await copyFile('meters/retrieve-credit-score.yaml', join(metersDir, 'retrieve-credit-score.yaml'));
    // Ingest refuses request times older than INGEST_MAX_PAST_DAYS from its wall clock; last month of
    // the pinned clock is older than that.
    svc = await startTestService(
      engine,
      { METERS_DIR: metersDir, INGEST_MAX_PAST_DAYS: '3650' },
      { now: () => NOW },
    );
    service = svc.service;
    logFile = join(metersDir, 'december.ndjson');
    const lines: string[] = [];
    // 1,500 billed calls of co_big over three December days, 40 failed ones (not billed).
    for (let i = 0; i < 1540; i++) {
      lines.push(
        JSON.stringify({
          id: `dec-${i}`,
          timestamp: new Date(DECEMBER_10 + (i % 72) * HOUR_MS + i).toISOString(),
          company_id: 'co_big',
          method: 'POST',
          path: '/RetrieveCreditScore',
          status: i < 1500 ? 200 : 502,
        }),
      );
    }
    await writeFile(logFile, lines.join('\n') + '\n');
  });
  afterAll(async () => {
    if (service && service !== svc.service) {
      // The restarted service is not the one svc knows: drop the database through it, then stop it.
      await service.clickhouse.command(`DROP DATABASE IF EXISTS ${service.clickhouse.database}`);
      await service.stop();
    }
    await svc?.stop();
    await rm(metersDir, { recursive: true, force: true });
  });

  it('counts what arrives after its lateness window, in the run, the status and /metrics', async () => {
    expect((await evaluate({})).status).toBe(200);
    const report = await shipFile(logFile, { baseUrl: service.url, apiKey: svc.ingestKey });
    expect([report.sent, report.rejectedCount]).toEqual([1540, 0]);
    await service.flush();
    const run = (await (await evaluate({})).json()) as {
      mode: string;
      ranges: unknown[];
      run: Record<string, unknown>;
    };
    expect(run).toMatchObject({
      mode: 'scheduled',
      ranges: [],
      run: {
        run_at: NOW.toISOString(),
        closed_through: '2026-01-01T00:00:00.000Z',
        late_outside_window: 1540,
      },
    });
    expect(await (await admin('/v1/admin/meters/evaluation')).json()).toEqual({
      lateness_hours: 48,
      last_run: run.run,
    });
    const metrics = await (await fetch(`${service.url}/metrics`)).text();
    expect(metrics).toContain('billing_meter_evaluation_late_outside_window_events_total 1540');
    expect(metrics).toContain('billing_meter_evaluation_late_outside_window_events 1540');
  });

  it('refuses to evaluate December (422) while no version of the meter covers it, and says how', async () => {
    const res = await evaluate({ from: '2025-12-01', to: '2026-01-01', meters: ['retrieve-credit-score'] });
    expect(res.status).toBe(422);
    expect(res.headers.get('content-type')).toContain('application/problem+json');
    const problem = (await res.json()) as Record<string, unknown>;
    expect(problem).toMatchObject({
      type: 'https://billing-meter.dev/problems/range-not-covered',
      meters: [{ meter: 'retrieve-credit-score', first_effective_from: '2026-01-01T00:00:00.000Z' }],
      backfill: { effective_from: '2025-12-01T00:00:00.000Z' },
    });
    expect(problem.detail).toContain("set effective_from: '2025-12-01T00:00:00.000Z'");
    const usage = await (await admin('/v1/customers/co_big/usage?period=2025-12')).json();
    expect(usage).toMatchObject({ meters: [{ meter: 'retrieve-credit-score', quantity: '0' }] });
  });

  it("bills December once the meter's effective_from is moved back and the service restarted", async () => {
    const file = join(metersDir, 'retrieve-credit-score.yaml');
    await writeFile(file, `${await readFile(file, 'utf8')}effective_from: '2025-12-01T00:00:00Z'\n`);
    await service.stop();
    service = await startService(svc.config, pino({ level: 'silent' }), { now: () => NOW });
    const meter = (await (await admin('/v1/meters/retrieve-credit-score')).json()) as {
      versions: { version: string; effective_from: string }[];
    };
    // One version, from two starts: the backfill extends it, nothing already billed changes hands.
    expect(new Set(meter.versions.map((v) => v.version)).size).toBe(1);
    expect(meter.versions.map((v) => v.effective_from)).toEqual([
      '2025-12-01T00:00:00.000Z',
      '2026-01-01T00:00:00.000Z',
    ]);

    const res = await evaluate({ from: '2025-12-01', to: '2026-01-01', meters: ['retrieve-credit-score'] });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({
      mode: 'range',
      ranges: [
        {
          meter: 'retrieve-credit-score',
          from: '2025-12-01T00:00:00.000Z',
          to: '2026-01-01T00:00:00.000Z',
          rows: 72,
        },
      ],
      not_covered: [],
      run: null,
    });
    const usage = (await (await admin('/v1/customers/co_big/usage?period=2025-12')).json()) as {
      period: { id: string };
      meters: { meter: string; quantity: string; cost?: unknown }[];
    };
    expect(usage.period.id).toBe('2025-12');
    expect(usage.meters.find((m) => m.meter === 'retrieve-credit-score')).toMatchObject({
      quantity: '1500',
      cost: { currency: 'usd', amount: '4200.00', amount_minor: 420000, display: '$4,200.00' },
    });
    // January, the current period, has nothing of it.
    const january = (await (await admin('/v1/customers/co_big/usage')).json()) as typeof usage;
    expect(january.period.id).toBe('2026-01');
    expect(january.meters.find((m) => m.meter === 'retrieve-credit-score')?.quantity).toBe('0');

    const csv = await admin('/v1/customers/co_big/usage?period=2025-12&format=csv');
    expect(csv.headers.get('content-disposition')).toBe('attachment; filename="usage-co_big-2025-12.csv"');
    expect(await csv.text()).toContain(
      'co_big,2025-12,retrieve-credit-score,calls,1500,usd,4200.00,420000\n',
    );
  });
});

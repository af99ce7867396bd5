// Our own Koa middleware (ingest/, governedKoaMiddleware) enforces the same rules from the same
// /v1/rules + /v1/config contract as the Moesif SDKs: the scenario of moesif-governance.e2e.test.ts.
import Koa from 'koa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { governedKoaMiddleware, type GovernedKoaMiddleware } from '../../ingest/index.ts';
import { ENGINES } from '../support/clickhouse.ts';
import { closedPort, listen, metaOf, waitForRows, type Listening } from './support.ts';
import { callUntil, QUOTA, startGovernanceScenario, type GovernanceScenario } from './governance-scenario.ts';

const koaApi = (middleware: GovernedKoaMiddleware): Koa => {
  const app = new Koa();
  app.use(middleware);
  app.use((ctx) => {
    if (ctx.path === '/score' || ctx.path === '/profile') ctx.body = { score: 742 };
  });
  return app;
};

const companyOf = (req: { headers: Record<string, unknown> }) => {
  const company = req.headers['x-company-id'];
  return typeof company === 'string' ? { company_id: company } : undefined;
};

describe.each(ENGINES)(
  'ingest/ governedKoaMiddleware enforces the governance rules (%s ClickHouse)',
  (engine) => {
    let scenario: GovernanceScenario;
    let api: Listening;
    let middleware: GovernedKoaMiddleware;
    const served: Record<string, number[]> = { good: [], other: [] };

    beforeAll(async () => {
      scenario = await startGovernanceScenario(engine);
      middleware = governedKoaMiddleware({
        baseUrl: scenario.svc.url,
        apiKey: scenario.svc.ingestKey,
        flushIntervalMs: 50,
        identify: companyOf,
        governance: { refreshMs: 200, minRefreshMs: 200 },
      });
      api = await listen(koaApi(middleware).callback());
    }, 60_000);

    afterAll(async () => {
      middleware?.governor.close();
      await middleware?.forwarder.close();
      await api?.close();
      await scenario?.stop();
    });

    // Only `heavy` calls the metered /score; the others call /profile, which no meter counts, so however

    // many calls the waiting loops make, only `heavy` can go over quota.

    const call = async (company: string) => {
      const res = await fetch(`${api.url}/${company === 'heavy' ? 'score' : 'profile'}`, {
        headers: { 'x-company-id': company },
      });
      const answer = {
        status: res.status,
        body: (await res.json()) as unknown,
        meter: res.headers.get('x-quota-meter'),
      };
      if (company in served) served[company]!.push(answer.status);
      return answer;
    };

    it('a company whose invoice payment failed gets 402, and is served again after invoice.paid', async () => {
      expect((await call('late')).status).toBe(200);
      await scenario.invoice(false);
      const blocked = await callUntil(
        () => call('late'),
        (a) => a.status === 402,
      );
      expect(blocked).toEqual({
        status: 402,
        body: { error: 'payment_required', customer: 'late' },
        meter: null,
      });
      expect((await call('good')).status).toBe(200);
      await scenario.invoice(true);
      const servedAgain = await callUntil(
        () => call('late'),
        (a) => a.status === 200,
      );
      expect(servedAgain).toEqual({ status: 200, body: { score: 742 }, meter: null });
    }, 60_000);

    it('an over-quota company gets 429 with the merge tags filled in, still logged as blocked; the others never are blocked', async () => {
      for (let i = 0; i < QUOTA; i++) expect((await call('heavy')).status).toBe(200);
      const blocked = await callUntil(
        async () => {
          await call('other');
          return call('heavy');
        },
        (a) => a.status === 429,
      );
      expect(blocked).toEqual({
        status: 429,
        // Calls made before the block reached the enforcer count too: at least the quota.
        body: {
          error: 'quota_exceeded',
          message: expect.stringMatching(new RegExp(`^heavy used \\d+ of ${QUOTA} score-calls$`)),
        },
        meter: 'score-calls',
      });
      expect((await call('good')).status).toBe(200);
      expect([...served.good!, ...served.other!].every((s) => s === 200)).toBe(true);
      const logged = await waitForRows(scenario.svc, (r) => r.company_id === 'heavy' && r.status === 429, 1);
      expect(logged.length).toBeGreaterThan(0);
      expect(metaOf(logged[0]!)['metadata.governance.blocked_by']).toBe('over-quota');
    }, 60_000);
  },
);

describe('ingest/ governedKoaMiddleware fails open', () => {
  it('serves every call while the collector cannot be reached, and says why', async () => {
    const errors: Error[] = [];
    const port = await closedPort();
    const middleware = governedKoaMiddleware({
      baseUrl: `http://127.0.0.1:${port}`,
      apiKey: 'k'.repeat(50),
      identify: companyOf,
      onError: () => undefined,
      maxRetries: 0,
      governance: { refreshMs: 200, minRefreshMs: 200, onError: (err) => errors.push(err) },
    });
    const api = await listen(koaApi(middleware).callback());
    try {
      await middleware.governor.refresh();
      const res = await fetch(`${api.url}/score`, { headers: { 'x-company-id': 'late' } });
      expect(res.status).toBe(200);
      expect(errors.length).toBeGreaterThan(0);
      expect(middleware.governor.lastRefreshAt).toBe(0);
    } finally {
      middleware.governor.close();
      await middleware.forwarder.close();
      await api.close();
    }
  });
});

// Our own Koa middleware (ingest/, governedKoaMiddleware) enforces the same rules from the same
// /v1/rules + /v1/config contract as the Moesif SDKs: the scenario of moesif-governance.e2e.test.ts.
import Koa from 'koa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { governedKoaMiddleware, type GovernedKoaMiddleware } from '../../ingest/index.ts';
import { ENGINES } from '../support/clickhouse.ts';
import { closedPort, listen, metaOf, waitForRows, type Listening } from './support.ts';
import {
  companyCaller,
  expectPaymentBlockThenRelease,
  expectQuotaBlock,
  startGovernanceScenario,
  type GovernanceScenario,
} from './governance-scenario.ts';

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

    const caller = companyCaller(() => api.url);

    it('a company whose invoice payment failed gets 402, and is served again after invoice.paid', async () => {
      await expectPaymentBlockThenRelease(scenario, caller.call);
    }, 60_000);

    it('an over-quota company gets 429 with the merge tags filled in, still logged as blocked; the others never are blocked', async () => {
      await expectQuotaBlock(caller);
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

// moesif-nodejs (real, unchanged) in an Express API enforces our governance rules: it reads /v1/rules
// and /v1/config from the service and re-reads the config when the etag on its event batches changes.
import type { IncomingMessage } from 'node:http';
import express from 'express';
import moesif from 'moesif-nodejs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { listen, waitFor, type Listening } from './support.ts';
import {
  companyCaller,
  expectPaymentBlockThenRelease,
  expectQuotaBlock,
  QUOTA,
  startGovernanceScenario,
  type GovernanceScenario,
} from './governance-scenario.ts';

// One engine: the SDK keeps its rules and config in module singletons, so a second service in the same
// process would be governed by the first one's config until the SDK's next fetch. The Koa middleware
// test runs the same scenario on the other engine.
describe('moesif-nodejs enforces the governance rules (server ClickHouse)', () => {
  let scenario: GovernanceScenario;
  let api: Listening;

  beforeAll(async () => {
    scenario = await startGovernanceScenario('server');
    const app = express();
    app.use(
      moesif({
        applicationId: scenario.svc.ingestKey,
        baseUri: scenario.svc.url,
        identifyCompany: (req: object) =>
          (req as IncomingMessage).headers['x-company-id'] as string | undefined,
        batchSize: 2, // the SDK refuses 1 (its check is <= 1)
        batchMaxTime: 501, // the SDK refuses 500 ms or less
      }),
    );
    app.get(['/score', '/profile'], (_req, res) => {
      res.json({ score: 742 });
    });
    api = await listen(app);
  }, 60_000);

  afterAll(async () => {
    await api?.close();
    await scenario?.stop();
  });

  const caller = companyCaller(() => api.url);

  it('a company whose invoice payment failed gets 402, and is served again after invoice.paid', async () => {
    await expectPaymentBlockThenRelease(scenario, caller.call);
  }, 60_000);

  it('an over-quota company gets 429 with the merge tags filled in; the others never are blocked', async () => {
    await expectQuotaBlock(caller);
  }, 60_000);

  it('GET /v1/customers/:id/access answers from memory; unknown customers, wrong keys, bad queries and forged webhooks get clear 4xx', async () => {
    const svc = scenario.svc;
    const access = (id: string, query: string, key = svc.adminKey) =>
      fetch(`${svc.url}/v1/customers/${id}/access?${query}`, { headers: { authorization: `Bearer ${key}` } });
    const blocked = await access('heavy', 'route=/score&method=get');
    expect(blocked.status).toBe(200);
    expect(await blocked.json()).toMatchObject({
      customer: 'heavy',
      allowed: false,
      status: 'over_quota',
      rule: { name: 'over-quota', response: { status: 429, headers: { 'X-Quota-Meter': 'score-calls' } } },
      quotas: [{ meter: 'score-calls', quota: QUOTA, remaining: '0' }],
    });
    expect(await (await access('heavy', 'route=/score&method=POST')).json()).toMatchObject({ allowed: true });
    expect(await (await access('good', 'route=/score')).json()).toMatchObject({
      allowed: true,
      quotas: [{ meter: 'score-calls', quota: QUOTA, usage: '0', remaining: String(QUOTA) }],
    });

    const unknown = await access('nobody', 'route=/score');
    expect(unknown.status).toBe(404);
    expect(unknown.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(((await unknown.json()) as { detail: string }).detail).toMatch(/no customer 'nobody' is known/);
    expect((await access('good', 'route=/score', 'wrong-key')).status).toBe(401);
    const bad = await access('good', 'method=GET');
    expect(bad.status).toBe(400);
    expect(JSON.stringify(await bad.json())).toMatch(/route/);

    const forged = await fetch(`${svc.url}/v1/webhooks/stripe`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'stripe-signature': 't=1,v1=00' },
      body: JSON.stringify({ id: 'evt_forged', type: 'invoice.paid', data: { object: {} } }),
    });
    expect(forged.status).toBe(400);
    expect(forged.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  });

  it('a rule file changed while serving: a broken one is refused and the old rules keep serving; a good one is live', async () => {
    const rules = async () =>
      (
        (await (
          await fetch(`${scenario.svc.url}/v1/rules`, {
            headers: { 'x-moesif-application-id': scenario.svc.ingestKey },
          })
        ).json()) as { _id: string }[]
      ).map((r) => r._id);
    expect(await rules()).toEqual(['unpaid', 'over-quota']);
    await writeFile(join(scenario.rulesDir, '30-broken.yaml'), 'name: broken\napplies_to: {status: late}\n');
    await writeFile(join(scenario.rulesDir, '40-new.yaml'), 'name: new-rule\napplies_to: {customers: [x]}\n');
    // The reload runs (file watch) and is refused: nothing changes. SIGHUP reloads the same way.
    process.kill(process.pid, 'SIGHUP');
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(await rules()).toEqual(['unpaid', 'over-quota']);
    await rm(join(scenario.rulesDir, '30-broken.yaml'));
    expect(await waitFor(rules, (ids) => ids.length === 3)).toEqual(['unpaid', 'over-quota', 'new-rule']);
  });
});

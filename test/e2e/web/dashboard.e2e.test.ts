import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyPush, planPush } from '../../../src/billing/stripe/push.ts';
import { buildDashboard, launchBrowser, numberIn, screenshot } from '../../support/browser.ts';
import { startTestService, type TestService } from '../../support/service.ts';
import { startStripeEmulator, type StripeEmulator } from '../../support/stripe-emulator/index.ts';

// The dashboard in a real headless Chromium against the whole service (server ClickHouse: 18.16 is the
// stricter SQL; the explorer's queries run on both engines in test/integration/storage). The service's
// clock is pinned: the calls are in closed hours of the morning, evaluated by the scheduled run. Stripe
// is the emulator on the same clock: the meters are pushed, co_acme is mapped, co_beta is not.
let now = new Date('2026-11-15T12:30:00Z');
const MORNING = Date.parse('2026-11-15T08:00:00Z');
const XSS = '<img src=x onerror="window.__xss=1">';

interface Call {
  company: string;
  status: number;
  path?: string;
  metadata?: Record<string, string>;
}

function calls(): Call[] {
  const out: Call[] = [];
  for (let i = 0; i < 1500; i++)
    out.push({ company: 'co_acme', status: 200, metadata: { plan: i % 2 ? 'pro' : 'free' } });
  for (let i = 0; i < 40; i++) out.push({ company: 'co_acme', status: 201 });
  for (let i = 0; i < 60; i++) out.push({ company: 'co_acme', status: 500 });
  for (let i = 0; i < 120; i++) out.push({ company: 'co_beta', status: 200 });
  for (let i = 0; i < 30; i++) out.push({ company: 'co_beta', status: 200, path: '/RetrieveCreditReport' });
  out.push({ company: 'co_evil', status: 404, path: `/x${XSS}`, metadata: { note: XSS } });
  return out;
}

describe('the dashboard in headless Chromium', () => {
  let svc: TestService;
  let emulator: StripeEmulator;
  let acmeStripeId: string;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  const admin = async <T>(path: string, init: RequestInit = {}): Promise<T> => {
    const res = await fetch(`${svc.url}${path}`, {
      ...init,
      headers: {
        authorization: `Bearer ${svc.adminKey}`,
        'content-type': 'application/json',
        ...(init.headers ?? {}),
      },
    });
    expect(res.ok, `${path}: ${res.status}`).toBe(true);
    return (await res.json()) as T;
  };

  beforeAll(async () => {
    emulator = await startStripeEmulator({ clock: () => now.getTime() });
    [svc] = await Promise.all([
      startTestService(
        'server',
        // The schedule never fires while the test runs: every sync here is one the test asks for.
        {
          STRIPE_SECRET_KEY: 'sk_test_dashboard',
          STRIPE_API_BASE: emulator.url,
          METER_SCHEDULE: '0 0 1 1 *',
          // Governance's view of the customers (what the access API answers) follows within half a second.
          GOVERNANCE_USAGE_REFRESH_MS: '500',
        },
        { now: () => now },
      ),
      buildDashboard(),
    ]);
    // What `billing-meter stripe push --apply` does, then co_acme gets a Stripe customer.
    const gateway = svc.service.stripe.gateway!;
    await applyPush(await planPush(svc.service.meters, gateway), gateway);
    const stripe = new Stripe('sk_test_dashboard', emulator.stripeOptions());
    acmeStripeId = (await stripe.customers.create({ name: 'Acme' })).id;
    const body = calls().map((c, i) => ({
      id: `ui-${i}`,
      timestamp: MORNING + ((i * 7919) % (3 * 3_600_000)),
      company_id: c.company,
      method: 'POST',
      path: c.path ?? '/RetrieveCreditScore',
      status: c.status,
      latency_ms: 20 + (i % 50),
      ...(c.metadata ? { metadata: c.metadata } : {}),
    }));
    const res = await fetch(`${svc.url}/v1/logs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${svc.ingestKey}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    expect(res.status).toBe(202);
    await svc.service.flush();
    await admin('/v1/admin/meters/evaluate', { method: 'POST', body: '{}' });
    await admin('/v1/admin/customers/co_acme/stripe-customer', {
      method: 'PUT',
      body: JSON.stringify({ stripe_customer_id: acmeStripeId }),
    });
    // Governance hears of co_acme at its next refresh of current usage.
    for (let i = 0; ; i++) {
      const res = await fetch(`${svc.url}/v1/customers/co_acme/access?route=%2F`, {
        headers: { authorization: `Bearer ${svc.adminKey}` },
      });
      if (res.status === 200) break;
      expect(i, 'governance never heard of co_acme').toBeLessThan(100);
      await new Promise((r) => setTimeout(r, 100));
    }
    browser = await launchBrowser();
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    page = await context.newPage();
    page.on('pageerror', (err) => console.error('page error:', err.message));
  });
  afterAll(async () => {
    await browser?.close();
    await svc?.stop();
    await emulator?.stop();
  });

  it('logs in with the admin key into an httpOnly, SameSite=Strict session cookie', async () => {
    await page.goto(`${svc.url}/ui/overview`);
    await page.getByLabel('Admin key').fill(svc.adminKey);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('heading', { name: 'Overview' }).waitFor();
    const cookies = await context.cookies();
    const session = cookies.find((c) => c.name === 'bm_session')!;
    expect(session).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/' });
    expect(session.value).not.toContain(svc.adminKey);
    // The key is in no URL and nowhere in the page's storage.
    expect(page.url()).not.toContain(svc.adminKey);
    const stored = await page.evaluate(() => {
      const g = globalThis as unknown as { localStorage: object; sessionStorage: object };
      return JSON.stringify({ ...g.localStorage }) + JSON.stringify({ ...g.sessionStorage });
    });
    expect(stored).not.toContain(svc.adminKey);
    await page.locator('[data-testid=overview-calls]').waitFor();
    // Accepted vs rejected by format: the collector's counters, as the API gives them.
    const formats = await admin<{ formats: { format: string; accepted: number; rejected: number }[] }>(
      '/v1/admin/ingest/formats',
    );
    const native = formats.formats.find((f) => f.format === 'native')!;
    expect(native.accepted).toBe(calls().length);
    const row = page.locator('[data-testid=formats] tr[data-format=native]');
    expect(await numberIn(page, '[data-testid=formats] tr[data-format=native] td.accepted')).toBe(
      native.accepted,
    );
    expect(await row.locator('td.rejected').innerText()).toBe(String(native.rejected));
    await screenshot(page, 'overview');
  });

  it('shows the calls in the explorer and filters them down to /RetrieveCreditScore with status 200', async () => {
    await page.getByRole('link', { name: 'Explorer' }).click();
    await page.locator('[data-testid=explorer-total]').waitFor();
    const all = await admin<{ total: number }>('/v1/admin/request-logs/histogram');
    expect(all.total).toBe(calls().length);
    expect(await numberIn(page, '[data-testid=explorer-total]')).toBe(all.total);

    await page.locator('input[name=route]').fill('/RetrieveCreditScore');
    await page.locator('input[name=status]').fill('200');
    await page.getByRole('button', { name: 'Apply' }).click();
    await page.waitForURL(/status=200/);
    await page.locator('[data-testid=explorer-total]', { hasText: '1,620' }).waitFor();
    const filtered = await admin<{ total: number }>(
      '/v1/admin/request-logs/histogram?route=%2FRetrieveCreditScore&status=200',
    );
    expect(filtered.total).toBe(1620);
    expect(await numberIn(page, '[data-testid=explorer-total]')).toBe(filtered.total);
    // Status 200 exactly: the status column of every row on the page.
    const statuses = await page.locator('[data-testid=explorer-rows] td.status').allInnerTexts();
    expect(statuses.length).toBe(50);
    expect(new Set(statuses)).toEqual(new Set(['200']));
    const routes = await page.locator('[data-testid=explorer-rows] td.route').allInnerTexts();
    expect(new Set(routes)).toEqual(new Set(['/RetrieveCreditScore']));
    await screenshot(page, 'explorer');

    // Paging: older, then the browser's back button returns to the first page, forward again.
    const firstPage = await page.locator('[data-testid=explorer-rows] tbody tr').first().innerText();
    await page.getByRole('button', { name: 'Older' }).click();
    await page.waitForURL(/before=/);
    await page.locator('[data-testid=explorer-rows]').waitFor();
    expect(await page.locator('[data-testid=explorer-rows] tbody tr').first().innerText()).not.toBe(
      firstPage,
    );
    const olderPage = await page.locator('[data-testid=explorer-rows] tbody tr').first().innerText();
    // Back, with the newer page's answer held: the new URL shows "Loading…", never the older rows
    // (a render before the load's effect once showed the last URL's table under the new one).
    let release: () => void = () => undefined;
    const held = new Promise<void>((r) => (release = r));
    const pageUrl = (u: URL) => u.pathname === '/v1/admin/request-logs' && !u.search.includes('before=');
    let continued: Promise<void> = Promise.resolve();
    await page.route(pageUrl, (route) => {
      continued = held.then(() => route.continue());
      return continued;
    });
    // What the first frame after the back button shows (before the load's effect has run).
    await page.evaluate(`addEventListener('popstate', () => requestAnimationFrame(() => {
      window.firstFrame = document.querySelector('[data-testid=explorer-rows]')
        ? 'rows'
        : (document.querySelector('[role=status]')?.textContent ?? 'nothing');
    }), { once: true })`);
    try {
      await page.goBack();
      await page.waitForURL((u) => !u.search.includes('before='));
      // Polled from here: the page's CSP (script-src 'self') refuses the string evaluation that
      // waitForFunction's in-page polling does.
      let firstFrame: unknown;
      for (let i = 0; i < 100 && firstFrame === undefined; i++) {
        firstFrame = await page.evaluate('window.firstFrame');
        if (firstFrame === undefined) await new Promise((r) => setTimeout(r, 50));
      }
      expect(firstFrame).toBe('Loading…');
      await page.getByRole('status').filter({ hasText: 'Loading' }).waitFor();
      expect(await page.locator('[data-testid=explorer-rows]').count()).toBe(0);
      expect(await page.locator('body').innerText()).not.toContain(olderPage);
    } finally {
      release();
      await continued;
      await page.unroute(pageUrl);
    }
    await page.locator('[data-testid=explorer-rows] tbody tr').first().waitFor();
    expect(await page.locator('[data-testid=explorer-rows] tbody tr').first().innerText()).toBe(firstPage);
    await page.goForward();
    await page.waitForURL(/before=/);
  });

  it('shows a route and a metadata value of <img onerror> as text', async () => {
    await page.goto(`${svc.url}/ui/explorer?customer=co_evil`);
    await page.locator('[data-testid=explorer-rows] td.route').first().waitFor();
    expect(await page.locator('[data-testid=explorer-rows] td.route').first().innerText()).toBe(`/x${XSS}`);
    expect(await page.locator('[data-testid=explorer-rows] td.meta').first().innerText()).toBe(
      `metadata.note=${XSS}`,
    );
    expect(await page.locator('[data-testid=explorer-rows] img').count()).toBe(0);
    expect(await page.evaluate(() => (globalThis as unknown as { __xss?: number }).__xss)).toBeUndefined();
  });

  it('opens the credit-score meter: the usage chart total is the API total', async () => {
    await page.getByRole('link', { name: 'Meters' }).click();
    await page.getByRole('link', { name: 'retrieve-credit-score' }).click();
    await page.waitForURL(/\/ui\/meters\/retrieve-credit-score/);
    await page.locator('[data-testid=meter-total]').waitFor();
    const usage = await admin<{ usage: { value: string }[] }>(
      '/v1/usage?meter=retrieve-credit-score&window=day',
    );
    const total = usage.usage.reduce((a, p) => a + Number(p.value), 0);
    expect(total).toBe(1620);
    expect(await numberIn(page, '[data-testid=meter-total]')).toBe(total);
    expect(await page.locator('.chart canvas').count()).toBeGreaterThan(0);
    await screenshot(page, 'meter');
  });

  it('previews the meter edited to status: 2xx and shows different numbers', async () => {
    const yaml = page.locator('form.preview textarea');
    const text = await yaml.inputValue();
    expect(text).toMatch(/status:\n\s+- 200\n/);
    await yaml.fill(text.replace(/status:\n\s+- 200\n/, 'status: "2xx"\n'));
    await page.getByRole('button', { name: 'Preview' }).click();
    await page.locator('[data-testid=preview-total]').waitFor();
    // 1,500 + 40 (the 201s) for co_acme, 120 for co_beta: the 201s now count.
    expect(await numberIn(page, '[data-testid=preview-total]')).toBe(1660);
    expect(await page.locator('[data-testid=preview-customers] tr').first().innerText()).toMatch(
      /co_acme\s+1,540/,
    );
    await screenshot(page, 'meter-preview');
  });

  it('opens the customer with 1,500 calls: $4,200.00 in three tier lines', async () => {
    await page.goto(`${svc.url}/ui/customers/co_acme`);
    const cost = page.locator('[data-testid=cost-retrieve-credit-score]');
    await cost.waitFor();
    const api = await admin<{
      meters: { meter: string; cost: { display: string }; tiers: { display: string }[] }[];
    }>('/v1/customers/co_acme/usage');
    const credit = api.meters.find((m) => m.meter === 'retrieve-credit-score')!;
    expect(credit.cost.display).toBe('$4,200.00');
    expect(await cost.innerText()).toBe(credit.cost.display);
    const lines = await page.locator('[data-testid=tier-retrieve-credit-score]').allInnerTexts();
    expect(lines).toHaveLength(3);
    expect(lines.map((l) => l.split('\t').pop())).toEqual(['$500.00', '$2,700.00', '$1,000.00']);
    expect(lines.map((l) => l.split('\t').pop())).toEqual(credit.tiers.map((t) => t.display));
    // Governance: co_acme is mapped and under no quota, so a call is allowed; as the access API says.
    const access = await admin<{ status: string; allowed: boolean }>(
      '/v1/customers/co_acme/access?route=%2F',
    );
    expect(await page.locator('[data-testid=governance-status]').innerText()).toBe(access.status);
    const decision = await page.locator('[data-testid=governance-decision]').innerText();
    if (access.allowed) expect(decision).toBe('allowed');
    else expect(decision).toMatch(/^blocked by /);
    // Nothing synced yet.
    await page.locator('[data-testid=sync-ledger-empty]').waitFor();
    await screenshot(page, 'customer');
  });

  it('shows a customer the service has never seen as such, not as an error', async () => {
    const res = await fetch(`${svc.url}/v1/customers/co_nobody/access?route=%2F`, {
      headers: { authorization: `Bearer ${svc.adminKey}` },
    });
    expect(res.status).toBe(404);
    await page.goto(`${svc.url}/ui/customers/co_nobody`);
    await page.locator('[data-testid=governance-unknown]').waitFor();
    expect(await page.locator('[data-testid=governance-unknown]').innerText()).toMatch(/Not known/);
    await page.locator('[data-testid=sync-ledger-empty]').waitFor();
    expect(await page.locator('[role=alert]').count()).toBe(0);
  });

  it('runs a sync from the Stripe page, lists the run, and shows the ledger on the customer page', async () => {
    // Loading state: the runs are held back until the page shows that it waits for them.
    let release: () => void = () => undefined;
    const held = new Promise<void>((r) => (release = r));
    const runsUrl = /\/v1\/admin\/sync\/runs/;
    let continued: Promise<void> = Promise.resolve();
    await page.route(runsUrl, (route) => {
      continued = held.then(() => route.continue());
      return continued;
    });
    await page.goto(`${svc.url}/ui/stripe`);
    await page.locator('[data-testid=push-plan]').waitFor();
    const waiting = page.locator('[data-testid=sync-runs-section] [role=status]');
    expect(await waiting.innerText()).toBe('Loading…');
    release();
    await continued;
    await page.unroute(runsUrl);
    await page.locator('[data-testid=sync-runs-empty]').waitFor();
    expect(await waiting.count()).toBe(0);
    const plan = await admin<{ counts: { create: number; unchanged: number } }>('/v1/admin/stripe/push-plan');
    expect(plan.counts.create).toBe(0);
    expect(await page.locator('[data-testid=push-plan-counts]').innerText()).toContain(
      `0 to create, 0 to update, ${plan.counts.unchanged} unchanged`,
    );

    // A pass that fails (another live process holds the sync lock) is listed with its error.
    const lock = join(svc.dataDir, 'stripe-sync.lock');
    await writeFile(lock, String(process.ppid));
    try {
      await page.getByRole('button', { name: 'Run a sync now' }).click();
      await page.locator('[data-testid=sync-runs] td.outcome.failed').waitFor();
    } finally {
      await rm(lock, { force: true });
    }
    const failed = await admin<{ data: { outcome: string; error: string }[] }>('/v1/admin/sync/runs');
    expect(failed.data[0]!.error).toMatch(/another stripe sync is running/);
    expect(
      await page.locator('[data-testid=sync-runs] tbody tr').first().locator('td.error').innerText(),
    ).toBe(failed.data[0]!.error);

    await page.getByRole('button', { name: 'Run a sync now' }).click();
    await page.locator('[data-testid=sync-result]', { hasText: 'sent' }).waitFor();
    await page.locator('[data-testid=sync-runs] tbody tr:nth-child(2) td.outcome.failed').waitFor();
    const runs = await admin<{ data: { trigger: string; outcome: string; report: { sent: number } }[] }>(
      '/v1/admin/sync/runs',
    );
    const last = runs.data[0]!;
    expect(last).toMatchObject({ trigger: 'on_demand', outcome: 'ok' });
    expect(last.report.sent).toBeGreaterThan(0);
    const first = page.locator('[data-testid=sync-runs] tbody tr').first();
    expect(await first.locator('td.outcome').innerText()).toBe('ok');
    expect(Number(await first.locator('td.sent').innerText())).toBe(last.report.sent);
    expect(runs.data.map((r) => r.outcome)).toEqual(['ok', 'failed']);
    await screenshot(page, 'stripe');

    // The customer page: every operation sent for co_acme, and the values add up to its 1,500 calls.
    await page.goto(`${svc.url}/ui/customers/co_acme`);
    await page.locator('[data-testid=sync-ledger] tbody tr').first().waitFor();
    const ledger = await admin<{ data: { meter: string; value: string; state: string; hour: string }[] }>(
      '/v1/admin/customers/co_acme/sync-ledger',
    );
    const credit = ledger.data.filter((o) => o.meter === 'retrieve-credit-score');
    expect(credit.reduce((a, o) => a + Number(o.value), 0)).toBe(1500);
    expect(ledger.data.length).toBe(last.report.sent);
    const rows = page.locator('[data-testid=sync-ledger] tbody tr');
    expect(await rows.count()).toBe(ledger.data.length);
    expect(await rows.locator('td.hour').allInnerTexts()).toEqual(ledger.data.map((o) => o.hour));
    const values = await rows.locator('td.value').allInnerTexts();
    expect(values.map((v) => Number(v.replace(/,/g, '')))).toEqual(ledger.data.map((o) => Number(o.value)));
    expect(new Set(await rows.locator('td.state').allInnerTexts())).toEqual(new Set(['applied']));
    await screenshot(page, 'customer-ledger');
  });

  it('reconciles a chosen period with Stripe: its URL, the lines as the API gives them', async () => {
    await page.goto(`${svc.url}/ui/stripe`);
    await page.locator('form.reconcile input[name=from]').fill('2026-11-15');
    await page.locator('form.reconcile input[name=to]').fill('2026-11-16');
    await page.getByRole('button', { name: 'Reconcile' }).click();
    await page.waitForURL(/from=2026-11-15&to=2026-11-16/);
    await page.locator('[data-testid=reconcile]').waitFor();
    const api = await admin<{
      mismatches: number;
      lines: { meter: string; customer: string; ours: string; stripe: string | null; status: string }[];
    }>('/v1/admin/stripe/reconcile?from=2026-11-15&to=2026-11-16');
    const acme = api.lines.find((l) => l.customer === 'co_acme' && l.meter === 'retrieve-credit-score')!;
    expect(acme).toMatchObject({ ours: '1500', stripe: '1500', status: 'ok' });
    const row = '[data-testid=reconcile] tr[data-customer=co_acme][data-meter=retrieve-credit-score]';
    expect(await numberIn(page, `${row} td.ours`)).toBe(Number(acme.ours));
    expect(await numberIn(page, `${row} td.stripe`)).toBe(Number(acme.stripe));
    expect(await page.locator(`${row} td.status`).innerText()).toBe('ok');
    // co_beta has no Stripe customer: its usage is not in Stripe, and the page says so.
    expect(
      await page.locator('[data-testid=reconcile] tr[data-customer=co_beta] td.status').first().innerText(),
    ).toBe('unmapped');
    expect(await page.locator('[data-testid=reconcile-summary]').innerText()).toContain(
      `${api.mismatches} mismatch(es)`,
    );
    await screenshot(page, 'stripe-reconcile');
    // Back leaves the period; forward brings it again.
    await page.goBack();
    await page.waitForURL((u) => !u.search.includes('from='));
    await page.goForward();
    await page.locator('[data-testid=reconcile]').waitFor();
    // A period too long: the API's problem, shown on the page.
    await page.goto(`${svc.url}/ui/stripe?from=2026-01-01&to=2026-11-16`);
    await page.locator('[role=alert]', { hasText: '93 days' }).waitFor();
  });

  it('shows, on the Stripe page of a service without a Stripe key, the problem the API answers', async () => {
    const bare = await startTestService('server', { METER_SCHEDULE: '0 0 1 1 *' }, { now: () => now });
    const context = await browser.newContext();
    try {
      const p = await context.newPage();
      await p.goto(`${bare.url}/ui/overview`);
      await p.getByLabel('Admin key').fill(bare.adminKey);
      await p.getByRole('button', { name: 'Log in' }).click();
      await p.getByRole('heading', { name: 'Overview' }).waitFor();
      await p.goto(`${bare.url}/ui/stripe?from=2026-11-01&to=2026-11-15`);
      const alerts = p.locator('[role=alert]');
      await alerts.nth(1).waitFor();
      const problem = (await (
        await fetch(`${bare.url}/v1/admin/stripe/push-plan`, {
          headers: { authorization: `Bearer ${bare.adminKey}` },
        })
      ).json()) as { title: string; detail: string };
      expect(problem.title).toContain('STRIPE_SECRET_KEY');
      const texts = await alerts.allInnerTexts();
      expect(texts).toHaveLength(2);
      for (const text of texts) expect(text).toContain(problem.title);
      expect(texts.join('\n')).toContain(problem.detail);
      // What needs no Stripe key still works: the dry-run sync passes are listed.
      await p.locator('[data-testid=sync-runs-empty]').waitFor();
      await screenshot(p, 'stripe-no-key');
    } finally {
      await context.close();
      await bare.stop();
    }
  });

  it('creates a key, shown once, and revokes it', async () => {
    await page.getByRole('link', { name: 'Keys' }).click();
    await page.getByPlaceholder('what the key is for').fill('from the browser');
    await page.getByRole('button', { name: 'Create key' }).click();
    const shown = await page.locator('[data-testid=new-key]').innerText();
    expect(shown.length).toBeGreaterThanOrEqual(50);
    // The key works for ingest: it is the real one.
    const ingest = await fetch(`${svc.url}/v1/logs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${shown}`, 'content-type': 'application/json' },
      body: JSON.stringify([{ timestamp: now.getTime(), method: 'GET', path: '/ping', status: 200 }]),
    });
    expect(ingest.status).toBe(202);
    const listed = await admin<{ keys: { key_id: string; name: string; revoked_at: string | null }[] }>(
      '/v1/admin/keys',
    );
    const created = listed.keys.find((k) => k.name === 'from the browser')!;
    await screenshot(page, 'keys');
    const row = page.locator(`tr[data-key-id="${created.key_id}"]`);
    await row.getByRole('button', { name: 'Revoke' }).click();
    await row.locator('td.state', { hasText: 'revoked' }).waitFor();
    const after = await admin<{ keys: { key_id: string; revoked_at: string | null }[] }>('/v1/admin/keys');
    expect(after.keys.find((k) => k.key_id === created.key_id)!.revoked_at).not.toBeNull();
    // Reloading forgets the key: it was shown once.
    await page.reload();
    await page.locator('[data-testid=keys]').waitFor();
    expect(await page.locator('[data-testid=new-key]').count()).toBe(0);
  });

  it("opens a portal link: that customer only, and editing the token's customer breaks it", async () => {
    const link = await admin<{ url: string; token: string }>('/v1/admin/customers/co_beta/portal-links', {
      method: 'POST',
      body: '{"expires_in_hours": 2}',
    });
    const portal = await context.browser()!.newContext();
    const p = await portal.newPage();
    await p.goto(link.url);
    await p.locator('[data-testid=portal-customer]').waitFor();
    expect(await p.locator('[data-testid=portal-customer]').innerText()).toBe('Usage of co_beta');
    expect(await p.locator('[data-testid=cost-retrieve-credit-score]').innerText()).toBe('$560.00');
    expect(await p.locator('body').innerText()).not.toContain('co_acme');
    expect(await p.locator('[data-testid=next-tier-retrieve-credit-score]').innerText()).toContain(
      '881 more',
    );
    await screenshot(p, 'portal');

    // The customer is inside the signature: another customer's id in the payload does not verify.
    const [payload, mac] = link.token.split('.') as [string, string];
    const decoded = JSON.parse(Buffer.from(payload, 'base64url').toString()) as { c: string; e: number };
    const forged = Buffer.from(JSON.stringify({ ...decoded, c: 'co_acme' })).toString('base64url');
    await p.goto(link.url.replace(link.token, `${forged}.${mac}`));
    await p.reload();
    await p.locator('[data-testid=portal-error]').waitFor();
    expect(await p.locator('[role=alert]').innerText()).toMatch(/not valid/);
    expect(await p.locator('body').innerText()).not.toContain('co_acme');
    await screenshot(p, 'portal-tampered');

    // Expired: the service's clock moves past the link's expiry.
    const saved = now;
    now = new Date(saved.getTime() + 3 * 3_600_000);
    try {
      await p.goto(link.url);
      await p.reload();
      await p.locator('[data-testid=portal-error]').waitFor();
      expect(await p.locator('[role=alert]').innerText()).toMatch(/expired/);
    } finally {
      now = saved;
    }
    await portal.close();
  });

  describe('security', () => {
    it('refuses a write by session cookie without the CSRF token, and with a wrong one', async () => {
      const cookie = (await context.cookies()).find((c) => c.name === 'bm_session')!;
      const headers = { cookie: `bm_session=${cookie.value}`, 'content-type': 'application/json' };
      const none = await fetch(`${svc.url}/v1/admin/keys`, {
        method: 'POST',
        headers,
        body: '{"name":"csrf"}',
      });
      expect(none.status).toBe(403);
      expect(none.headers.get('content-type')).toContain('application/problem+json');
      const wrong = await fetch(`${svc.url}/v1/admin/keys`, {
        method: 'POST',
        headers: { ...headers, 'x-csrf-token': 'x'.repeat(43) },
        body: '{"name":"csrf"}',
      });
      expect(wrong.status).toBe(403);
      // Reads by cookie need no token; the right token makes the write pass.
      const session = await fetch(`${svc.url}/v1/admin/session`, { headers });
      expect(session.status).toBe(200);
      const { csrf_token } = (await session.json()) as { csrf_token: string };
      const right = await fetch(`${svc.url}/v1/admin/keys`, {
        method: 'POST',
        headers: { ...headers, 'x-csrf-token': csrf_token },
        body: '{"name":"csrf"}',
      });
      expect(right.status).toBe(201);
      // A forged cookie is no session.
      const forged = await fetch(`${svc.url}/v1/admin/keys`, {
        headers: { cookie: `bm_session=${cookie.value.slice(0, -2)}AA` },
      });
      expect(forged.status).toBe(401);
    });

    it('reaches no admin endpoint with a portal token', async () => {
      const { token } = await admin<{ token: string }>('/v1/admin/customers/co_acme/portal-links', {
        method: 'POST',
        body: '{}',
      });
      const paths = [
        ['GET', '/v1/admin/keys'],
        ['GET', '/v1/customers/co_acme/usage'],
        ['GET', '/v1/admin/request-logs'],
        ['GET', '/v1/meters'],
        ['GET', '/v1/sync/held'],
        ['POST', '/v1/admin/customers/co_acme/portal-links'],
        ['GET', '/v1/admin/session'],
      ];
      for (const [method, path] of paths) {
        const res = await fetch(`${svc.url}${path}`, {
          method,
          headers: { authorization: `Bearer ${token}` },
        });
        expect(res.status, `${method} ${path}`).toBe(401);
      }
      // The portal answers it, for its own customer.
      const own = await fetch(`${svc.url}/v1/portal/usage`, {
        headers: { authorization: `Bearer ${token}` },
      });
      expect(((await own.json()) as { customer: string }).customer).toBe('co_acme');
      // And the admin key is no portal token.
      const adminAsPortal = await fetch(`${svc.url}/v1/portal/usage`, {
        headers: { authorization: `Bearer ${svc.adminKey}` },
      });
      expect(adminAsPortal.status).toBe(401);
    });

    it('logs out: the cookie is cleared and the pages ask for the key again', async () => {
      await page.goto(`${svc.url}/ui/overview`);
      await page.getByRole('button', { name: 'Log out' }).click();
      await page.getByLabel('Admin key').waitFor();
      expect((await context.cookies()).find((c) => c.name === 'bm_session')).toBeUndefined();
    });
  });
});

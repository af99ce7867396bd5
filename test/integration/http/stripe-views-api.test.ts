import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  customerLedgerSchema,
  ingestFormatsSchema,
  problemSchema,
  pushPlanSchema,
  reconcileSchema,
  syncReportSchema,
  syncRunsSchema,
} from '../../../src/http/openapi/schemas.ts';
import { ENGINES } from '../../support/clickhouse.ts';
import { startTestService, type TestService } from '../../support/service.ts';
import { startStripeEmulator, type StripeEmulator } from '../../support/stripe-emulator/index.ts';

// The admin endpoints behind the dashboard's Stripe views, on both engines, through the shipped meters
// and the Stripe emulator: sync runs, one customer's sync ledger, reconcile for a range, the push plan,
// and the collector's counts by format. Then the same service without a Stripe key.
const now = new Date('2026-11-15T12:30:00Z');
const HOURS = [new Date('2026-11-15T09:00:00Z'), new Date('2026-11-15T10:00:00Z')];
/** Successful /RetrieveCreditScore calls per hour (retrieve-credit-score counts them). */
const CALLS: Record<'co_mapped' | 'co_unmapped', readonly number[]> = {
  co_mapped: [7, 5],
  co_unmapped: [3, 0],
};

async function postLogs(svc: TestService, body: unknown[], expected: number): Promise<void> {
  const res = await fetch(`${svc.url}/v1/logs`, {
    method: 'POST',
    headers: { authorization: `Bearer ${svc.ingestKey}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  expect(res.status, await res.clone().text()).toBe(expected);
  await svc.service.flush();
}

function logs(): object[] {
  const out: object[] = [];
  for (const [company, perHour] of Object.entries(CALLS))
    perHour.forEach((n, h) => {
      for (let i = 0; i < n; i++)
        out.push({
          id: `${company}-${h}-${i}`,
          timestamp: HOURS[h]!.getTime() + i * 1000,
          company_id: company,
          method: 'POST',
          path: '/RetrieveCreditScore',
          status: 200,
        });
    });
  return out;
}

const admin =
  (svc: TestService) =>
  (path: string, init: RequestInit = {}) =>
    fetch(`${svc.url}${path}`, {
      ...init,
      headers: { authorization: `Bearer ${svc.adminKey}`, 'content-type': 'application/json' },
    });

async function expectProblem(res: Response, status: number, pattern: RegExp): Promise<void> {
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toContain('application/problem+json');
  const problem = problemSchema.parse(await res.json());
  expect(JSON.stringify(problem)).toMatch(pattern);
}

describe.each(ENGINES)('the Stripe views of the admin API on %s ClickHouse', (engine) => {
  let emulator: StripeEmulator;
  let svc: TestService;
  let call: ReturnType<typeof admin>;
  let stripeCustomer: string;

  beforeAll(async () => {
    emulator = await startStripeEmulator({ clock: () => now.getTime() });
    svc = await startTestService(
      engine,
      { STRIPE_SECRET_KEY: 'sk_test_views', STRIPE_API_BASE: emulator.url },
      { now: () => now },
    );
    call = admin(svc);
    const stripe = new Stripe('sk_test_views', emulator.stripeOptions());
    stripeCustomer = (await stripe.customers.create({ name: 'Mapped' })).id;
    await postLogs(svc, logs(), 202);
    expect((await call('/v1/admin/meters/evaluate', { method: 'POST', body: '{}' })).status).toBe(200);
  });
  afterAll(async () => {
    await svc?.stop();
    await emulator?.stop();
  });

  it('plans the push read-only: the same plan before and after it is read, unchanged once applied', async () => {
    const before = pushPlanSchema.parse(await (await call('/v1/admin/stripe/push-plan')).json());
    const credit = before.meters.find((m) => m.name === 'retrieve-credit-score')!;
    expect(credit.steps.map((s) => [s.object, s.action])).toEqual([
      ['meter', 'create'],
      ['product', 'create'],
      ['price', 'create'],
    ]);
    expect(credit.steps[0]!.line).toBe('+ create meter retrieve_credit_score (sum)');
    expect(before.has_changes).toBe(true);
    // Reading the plan made nothing in Stripe.
    expect(emulator.state.meters.size).toBe(0);
    const again = pushPlanSchema.parse(await (await call('/v1/admin/stripe/push-plan')).json());
    expect(again).toEqual(before);

    // What the CLI's --apply does (the same planner), then the plan has nothing left to do.
    const { applyPush, planPush } = await import('../../../src/billing/stripe/push.ts');
    const gateway = svc.service.stripe.gateway!;
    await applyPush(await planPush(svc.service.meters, gateway), gateway);
    const after = pushPlanSchema.parse(await (await call('/v1/admin/stripe/push-plan')).json());
    expect(after.has_changes).toBe(false);
    expect(after.counts).toEqual({ create: 0, update: 0, unchanged: before.counts.create, conflict: 0 });
    await expectProblem(await call('/v1/admin/stripe/push-plan?apply=true'), 400, /apply/);
  });

  it('lists sync runs newest first, each with its report', async () => {
    const mapped = await call('/v1/admin/customers/co_mapped/stripe-customer', {
      method: 'PUT',
      body: JSON.stringify({ stripe_customer_id: stripeCustomer }),
    });
    expect(mapped.status).toBe(200);
    const empty = syncRunsSchema.parse(await (await call('/v1/admin/sync/runs')).json());
    expect(empty.data).toEqual([]);
    const first = syncReportSchema.parse(await (await call('/v1/admin/sync/run', { method: 'POST' })).json());
    const second = syncReportSchema.parse(
      await (await call('/v1/admin/sync/run', { method: 'POST' })).json(),
    );
    const runs = syncRunsSchema.parse(await (await call('/v1/admin/sync/runs')).json());
    expect(runs.data.map((r) => [r.trigger, r.outcome])).toEqual([
      ['on_demand', 'ok'],
      ['on_demand', 'ok'],
    ]);
    expect(runs.data[1]!.report).toEqual(first);
    expect(runs.data[0]!.report).toEqual(second);
    // One send per hour with usage of the mapped customer; the second pass finds nothing left.
    expect(first.sent).toBe(CALLS.co_mapped.filter((n) => n > 0).length);
    expect(second.sent).toBe(0);
    expect(first.held.map((h) => h.customer)).toEqual(['co_unmapped']);
    const one = syncRunsSchema.parse(await (await call('/v1/admin/sync/runs?limit=1')).json());
    expect(one.data).toEqual([runs.data[0]]);
    await expectProblem(await call('/v1/admin/sync/runs?limit=0'), 400, /limit/);
    await expectProblem(await call('/v1/admin/sync/runs?since=x'), 400, /since/);
  });

  it("shows one customer's ledger: what was sent, when, the outcome, newest first", async () => {
    const ledger = customerLedgerSchema.parse(
      await (await call('/v1/admin/customers/co_mapped/sync-ledger')).json(),
    );
    expect(ledger.customer).toBe('co_mapped');
    expect(ledger.data.map((o) => [o.meter, o.kind, o.hour, o.value, o.state])).toEqual([
      ['retrieve-credit-score', 'send', HOURS[1]!.toISOString(), String(CALLS.co_mapped[1]), 'applied'],
      ['retrieve-credit-score', 'send', HOURS[0]!.toISOString(), String(CALLS.co_mapped[0]), 'applied'],
    ]);
    expect(new Set(ledger.data.map((o) => o.stripe_customer_id))).toEqual(new Set([stripeCustomer]));
    // What the ledger says was applied is what Stripe holds.
    const events = emulator.state.meterEvents.filter((e) => e.payload.stripe_customer_id === stripeCustomer);
    expect(events.map((e) => e.identifier).sort()).toEqual(ledger.data.map((o) => o.op_id).sort());

    const limited = customerLedgerSchema.parse(
      await (await call('/v1/admin/customers/co_mapped/sync-ledger?limit=1')).json(),
    );
    expect(limited.data).toEqual([ledger.data[0]]);
    const otherMeter = customerLedgerSchema.parse(
      await (await call('/v1/admin/customers/co_mapped/sync-ledger?meter=response-bytes')).json(),
    );
    expect(otherMeter.data).toEqual([]);
    // Held usage sent nothing; a key with quotes and a semicolon is a key like any other.
    for (const key of ['co_unmapped', "x'; DROP TABLE sync_ledger; --"]) {
      const none = customerLedgerSchema.parse(
        await (await call(`/v1/admin/customers/${encodeURIComponent(key)}/sync-ledger`)).json(),
      );
      expect(none).toEqual({ customer: key, data: [] });
    }
    await expectProblem(await call('/v1/admin/customers/co_mapped/sync-ledger?limit=5000'), 400, /limit/);
    expect((await fetch(`${svc.url}/v1/admin/customers/co_mapped/sync-ledger`)).status).toBe(401);
  });

  it('reconciles a chosen period against Stripe, and refuses one too long or upside down', async () => {
    const res = await call('/v1/admin/stripe/reconcile?from=2026-11-15&to=2026-11-16');
    const result = reconcileSchema.parse(await res.json());
    const total = (c: keyof typeof CALLS) => String(CALLS[c].reduce((a, b) => a + b, 0));
    expect(result).toEqual({
      from: '2026-11-15T00:00:00.000Z',
      to: '2026-11-16T00:00:00.000Z',
      mismatches: 1,
      lines: [
        {
          meter: 'retrieve-credit-score',
          customer: 'co_mapped',
          stripe_customer_id: stripeCustomer,
          ours: total('co_mapped'),
          stripe: total('co_mapped'),
          difference: '0',
          status: 'ok',
        },
        {
          meter: 'retrieve-credit-score',
          customer: 'co_unmapped',
          stripe_customer_id: null,
          ours: total('co_unmapped'),
          stripe: null,
          difference: null,
          status: 'unmapped',
        },
      ],
    });
    // One hour only: the later hour's usage.
    const hour = reconcileSchema.parse(
      await (
        await call(`/v1/admin/stripe/reconcile?from=${HOURS[1]!.toISOString()}&to=2026-11-15T11:00:00Z`)
      ).json(),
    );
    expect(hour.lines.map((l) => [l.customer, l.ours, l.stripe])).toEqual([
      ['co_mapped', String(CALLS.co_mapped[1]), String(CALLS.co_mapped[1])],
    ]);
    await expectProblem(
      await call('/v1/admin/stripe/reconcile?from=2026-01-01&to=2026-06-01'),
      400,
      /93 days/,
    );
    await expectProblem(
      await call('/v1/admin/stripe/reconcile?from=2026-11-16&to=2026-11-15'),
      400,
      /after from/,
    );
    await expectProblem(await call('/v1/admin/stripe/reconcile?from=2026-11-15'), 400, /"to"/);
    await expectProblem(await call('/v1/admin/stripe/reconcile?from=yesterday&to=2026-11-15'), 400, /from/);
  });

  it('counts accepted and rejected events by format since the process started', async () => {
    const before = ingestFormatsSchema.parse(await (await call('/v1/admin/ingest/formats')).json());
    const native = before.formats.find((f) => f.format === 'native')!;
    expect(native).toMatchObject({ accepted: logs().length, rejected: 0, unattributed: 0 });
    // One good event, one without a path: the good one is stored, the bad one counted as rejected.
    await postLogs(
      svc,
      [
        { id: 'fmt-ok', timestamp: now.getTime(), method: 'GET', path: '/x', status: 200 },
        { id: 'fmt-bad', timestamp: now.getTime(), method: 'GET', status: 'teapot' },
      ],
      400,
    );
    const after = ingestFormatsSchema.parse(await (await call('/v1/admin/ingest/formats')).json());
    expect(after.formats.find((f) => f.format === 'native')).toEqual({
      format: 'native',
      accepted: native.accepted + 1,
      rejected: 1,
      unattributed: 1,
    });
    await expectProblem(await call('/v1/admin/ingest/formats?x=1'), 400, /x/);
  });
});

describe('the Stripe views without a Stripe key', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService('embedded', {}, { now: () => now });
  });
  afterAll(async () => svc?.stop());

  it('answer a clear problem for what asks Stripe, and keep the dry runs', async () => {
    const call = admin(svc);
    for (const path of [
      '/v1/admin/stripe/reconcile?from=2026-11-01&to=2026-11-15',
      '/v1/admin/stripe/push-plan',
    ])
      await expectProblem(await call(path), 503, /STRIPE_SECRET_KEY/);
    // The range is checked first: a bad query is a 400 whether or not Stripe is configured.
    await expectProblem(
      await call('/v1/admin/stripe/reconcile?from=2026-11-15&to=2026-11-01'),
      400,
      /after from/,
    );
    await call('/v1/admin/sync/run', { method: 'POST' });
    const runs = syncRunsSchema.parse(await (await call('/v1/admin/sync/runs')).json());
    expect(runs.data.map((r) => [r.trigger, r.outcome])).toEqual([['on_demand', 'dry_run']]);
  });

  it('lists a failed pass with its error: another live process holds the sync lock', async () => {
    const call = admin(svc);
    const lock = join(svc.dataDir, 'stripe-sync.lock');
    await writeFile(lock, String(process.ppid));
    try {
      expect((await call('/v1/admin/sync/run', { method: 'POST' })).status).toBe(500);
    } finally {
      await rm(lock, { force: true });
    }
    const runs = syncRunsSchema.parse(await (await call('/v1/admin/sync/runs')).json());
    expect(runs.data[0]).toMatchObject({
      trigger: 'on_demand',
      outcome: 'failed',
      report: null,
      error: `another stripe sync is running (pid ${process.ppid}); try again when it is done`,
    });
    expect(runs.data[1]!.outcome).toBe('dry_run');
  });
});

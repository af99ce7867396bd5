import Router from '@koa/router';
import { z } from 'zod';
import type { PushPlanView } from '../../billing/stripe/push.ts';
import type { ReconcileResult } from '../../billing/stripe/reconcile.ts';
import type { Discrepancy, DiscrepancyFilter, LedgerOp } from '../../billing/stripe/sync-ledger.ts';
import type { SyncRunRecord } from '../../billing/stripe/sync-runs.ts';
import type { HeldUsage, SyncReport } from '../../billing/stripe/sync-service.ts';
import { DomainError } from '../../errors.ts';
import { HOUR_MS } from '../../time/hours.ts';
import { requireAdminKey } from '../auth.ts';
import type {
  customerLedgerSchema,
  discrepanciesSchema,
  heldListSchema,
  pushPlanSchema,
  reconcileSchema,
  syncReportSchema,
  syncRunsSchema,
} from '../openapi/schemas.ts';
import { instantField, invalidRequest, parseOr400 } from '../query-fields.ts';

export interface SyncRouteDeps {
  adminApiKey: string | undefined;
  discrepancies(filter: DiscrepancyFilter): Promise<Discrepancy[]>;
  held(): Promise<HeldUsage[]>;
  /** One sync pass now (after the scheduled one, if it is running). */
  run(): Promise<SyncReport>;
  /** The last sync passes of this process, newest first (SyncRunHistory). */
  runs(limit: number): readonly SyncRunRecord[];
  /** One customer's ledger operations, newest first, at most `limit`. */
  customerLedger(customer: string, limit: number, meter?: string): Promise<LedgerOp[]>;
  /** Our totals against Stripe's summaries over [from, to); undefined without a Stripe key. */
  reconcile: ((range: { from: Date; to: Date }) => Promise<ReconcileResult>) | undefined;
  /** What `stripe push` would change, read-only; undefined without a Stripe key. */
  pushPlan: (() => Promise<PushPlanView>) | undefined;
}

/** Reconciliation asks Stripe one summary per customer and meter: a range of a quarter at most. */
export const MAX_RECONCILE_DAYS = 93;

export const syncRunsQuery = z
  .object({ limit: z.coerce.number().int().min(1).max(200).default(50) })
  .strict();

export const customerLedgerQuery = z
  .object({
    limit: z.coerce.number().int().min(1).max(1000).default(100),
    meter: z.string().min(1).max(64).optional(),
  })
  .strict();

export const reconcileQuery = z
  .object({
    from: instantField('Start, inclusive, floored to the hour.'),
    to: instantField('End, exclusive, floored to the hour.'),
  })
  .strict();

const RECONCILE_HINT = `query: from, to (at most ${MAX_RECONCILE_DAYS} days apart)`;

const stripeOff = (what: string) =>
  new DomainError('stripe_disabled', `${what} asks Stripe: set STRIPE_SECRET_KEY (sk_test_… or sk_live_…)`);

export const ledgerOpView = (op: LedgerOp) => ({
  op_id: op.opId,
  kind: op.kind,
  meter: op.meter,
  version: op.version,
  stripe_customer_id: op.stripeCustomerId,
  event_name: op.eventName,
  hour: op.hour.toISOString(),
  revision: op.revision,
  value: op.value.toString(),
  event_time: op.eventTime.toISOString(),
  target_op_id: op.targetOpId || null,
  state: op.state,
  detail: op.detail,
  intent_at: op.intentAt.toISOString(),
  recorded_at: op.recordedAt.toISOString(),
});

const reconcileView = (r: ReconcileResult) => ({
  from: r.from,
  to: r.to,
  mismatches: r.mismatches,
  lines: r.lines.map((l) => ({
    meter: l.meter,
    customer: l.customer,
    stripe_customer_id: l.stripeCustomerId,
    ours: l.ours,
    stripe: l.stripe,
    difference: l.difference,
    status: l.status,
  })),
});

export const syncRunView = (r: SyncRunRecord) => ({
  trigger: r.trigger,
  started_at: r.startedAt.toISOString(),
  finished_at: r.finishedAt.toISOString(),
  outcome: r.outcome,
  report: r.report ? syncReportView(r.report) : null,
  error: r.error ?? null,
});

export const discrepancyQuery = z
  .object({
    status: z.enum(['open', 'resolved', 'all']).default('open'),
    meter: z.string().min(1).max(64).optional(),
    customer: z.string().min(1).max(1024).optional(),
    limit: z.coerce.number().int().min(1).max(10_000).default(1000),
  })
  .strict();

export const discrepancyView = (d: Discrepancy) => ({
  meter: d.meter,
  version: d.version,
  customer: d.customerKey,
  hour: d.hour.toISOString(),
  kind: d.kind,
  expected: d.expected.toString(),
  sent: d.sent.toString(),
  difference: (d.expected - d.sent).toString(),
  detail: d.detail,
  resolved: d.resolved,
  recorded_at: d.recordedAt.toISOString(),
});

export const syncReportView = (r: SyncReport) => ({
  run_at: r.runAt.toISOString(),
  dry_run: r.dryRun,
  keys_checked: r.keysChecked,
  sent: r.sent,
  duplicates: r.duplicates,
  cancelled: r.cancelled,
  rejected: r.rejected,
  pending: r.pending,
  held: r.held,
  discrepancies: r.discrepancies,
  aborted: r.aborted,
});

/** The Stripe sync's state for operators: discrepancies, usage held for unmapped customers, run now. */
export function syncRoutes(deps: SyncRouteDeps): Router {
  const router = new Router();
  router.use(requireAdminKey(deps.adminApiKey));

  router.get('/v1/sync/discrepancies', async (ctx) => {
    const { status, limit, meter, customer } = parseOr400(
      discrepancyQuery,
      ctx.query,
      'bad query: status=open|resolved|all, meter, customer, limit (1-10000)',
    );
    const resolved = status === 'all' ? undefined : status === 'resolved';
    const rows = await deps.discrepancies({ resolved, meter, customer, limit });
    ctx.body = { data: rows.map(discrepancyView) } satisfies z.input<typeof discrepanciesSchema>;
  });

  router.get('/v1/sync/held', async (ctx) => {
    ctx.body = { data: await deps.held() } satisfies z.input<typeof heldListSchema>;
  });

  router.post('/v1/admin/sync/run', async (ctx) => {
    ctx.body = syncReportView(await deps.run()) satisfies z.input<typeof syncReportSchema>;
  });

  router.get('/v1/admin/sync/runs', (ctx) => {
    const { limit } = parseOr400(syncRunsQuery, ctx.query, 'query: limit (1-200, default 50)');
    ctx.body = { data: deps.runs(limit).map(syncRunView) } satisfies z.input<typeof syncRunsSchema>;
  });

  router.get('/v1/admin/customers/:id/sync-ledger', async (ctx) => {
    const customer = ctx.params.id ?? '';
    const { limit, meter } = parseOr400(
      customerLedgerQuery,
      ctx.query,
      'query: limit (1-1000, default 100), meter',
    );
    const ops = await deps.customerLedger(customer, limit, meter);
    ctx.body = { customer, data: ops.map(ledgerOpView) } satisfies z.input<typeof customerLedgerSchema>;
  });

  router.get('/v1/admin/stripe/reconcile', async (ctx) => {
    const { from, to } = parseOr400(reconcileQuery, ctx.query, RECONCILE_HINT);
    if (from >= to) throw invalidRequest(RECONCILE_HINT, [{ field: 'to', reason: 'must be after from' }]);
    if (to.getTime() - from.getTime() > MAX_RECONCILE_DAYS * 24 * HOUR_MS)
      throw invalidRequest(RECONCILE_HINT, [
        { field: 'to', reason: `at most ${MAX_RECONCILE_DAYS} days after from` },
      ]);
    if (!deps.reconcile) throw stripeOff('reconciliation');
    ctx.body = reconcileView(await deps.reconcile({ from, to })) satisfies z.input<typeof reconcileSchema>;
  });

  router.get('/v1/admin/stripe/push-plan', async (ctx) => {
    parseOr400(z.object({}).strict(), ctx.query, 'this endpoint takes no query');
    if (!deps.pushPlan) throw stripeOff('the push plan');
    ctx.body = (await deps.pushPlan()) satisfies z.input<typeof pushPlanSchema>;
  });

  return router;
}

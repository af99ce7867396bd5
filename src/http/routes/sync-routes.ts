import Router from '@koa/router';
import { z } from 'zod';
import type { Discrepancy, DiscrepancyFilter } from '../../billing/stripe/sync-ledger.ts';
import type { HeldUsage, SyncReport } from '../../billing/stripe/sync-service.ts';
import { requireAdminKey } from '../auth.ts';
import type { discrepanciesSchema, heldListSchema, syncReportSchema } from '../openapi/schemas.ts';
import { parseOr400 } from '../query-fields.ts';

export interface SyncRouteDeps {
  adminApiKey: string | undefined;
  discrepancies(filter: DiscrepancyFilter): Promise<Discrepancy[]>;
  held(): Promise<HeldUsage[]>;
  /** One sync pass now (after the scheduled one, if it is running). */
  run(): Promise<SyncReport>;
}

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

  return router;
}

import Router from '@koa/router';
import { z } from 'zod';
import type { CrossingWithDeliveries } from '../../alerts/alert-delivery.ts';
import type { CrossingFilter } from '../../alerts/alert-engine.ts';
import { ACCEPTED_PERIOD_FORM, parsePeriod } from '../../time/billing-period.ts';
import { requireAdminKey } from '../auth.ts';
import type { alertListSchema } from '../openapi/schemas.ts';
import { parseOr400 } from '../query-fields.ts';

export interface AlertRouteDeps {
  adminApiKey: string | undefined;
  /** Crossings, newest first, with the state of their delivery on each channel. */
  list(filter: CrossingFilter): Promise<CrossingWithDeliveries[]>;
}

export const alertQuery = z
  .object({
    customer: z.string().min(1).max(1024).optional(),
    meter: z.string().min(1).max(64).optional(),
    period: z
      .string()
      .refine((p) => 'start' in parsePeriod(p), ACCEPTED_PERIOD_FORM)
      .optional(),
    limit: z.coerce.number().int().min(1).max(10_000).default(100),
  })
  .strict();

export type AlertQuery = z.output<typeof alertQuery>;

/** The filter an alerts query means (the API's and the CLI's). */
export function alertFilter(q: AlertQuery): CrossingFilter {
  const period = q.period === undefined ? undefined : parsePeriod(q.period);
  return {
    customer: q.customer,
    meter: q.meter,
    periodStart: period && 'start' in period ? period.start : undefined,
    limit: q.limit,
  };
}

export const alertView = ({ crossing: c, deliveries }: CrossingWithDeliveries) => ({
  id: c.id,
  customer: c.customer,
  meter: c.meter,
  period: c.periodStart.toISOString().slice(0, 7),
  threshold: { id: c.threshold, label: c.label, value: c.thresholdValue.toString() },
  quantity: c.quantity.toString(),
  observed_at: c.observedAt.toISOString(),
  recorded_at: c.recordedAt.toISOString(),
  deliveries: deliveries.map((d) => ({
    channel: d.channel,
    state: d.state,
    attempts: d.attempts.length,
    last_attempt_at: d.attempts.at(-1)?.attemptedAt.toISOString() ?? null,
    last_error: d.attempts.at(-1)?.error || null,
    next_attempt_at:
      d.state === 'retrying' ? (d.attempts.at(-1)?.nextAttemptAt?.toISOString() ?? null) : null,
  })),
});

export function alertRoutes(deps: AlertRouteDeps): Router {
  const router = new Router();
  router.get('/v1/alerts', requireAdminKey(deps.adminApiKey), async (ctx) => {
    const q = parseOr400(
      alertQuery,
      ctx.query,
      'bad query: customer, meter, period (YYYY-MM), limit (1-10000)',
    );
    ctx.body = { data: (await deps.list(alertFilter(q))).map(alertView) } satisfies z.input<
      typeof alertListSchema
    >;
  });
  return router;
}

import Router from '@koa/router';
import { z } from 'zod';
import { parseJson } from '../../collector/parse-body.ts';
import { DomainError } from '../../errors.ts';
import { HOUR_MS, type MeterVersionRecord } from '../../meters/evaluation.ts';
import type { MeterDefinition } from '../../meters/meter-schema.ts';
import { meterVersion } from '../../meters/meter-version.ts';
import type { UsageQueryService } from '../../meters/usage-query.ts';
import { requireAdminKey } from '../auth.ts';
import { readBody } from '../body.ts';

export interface MeterRouteDeps {
  adminApiKey: string | undefined;
  meters: readonly MeterDefinition[];
  versions(): Promise<MeterVersionRecord[]>;
  usage: UsageQueryService;
  /** The scheduled run now, or [from, to) again. */
  evaluate(range?: { from: Date; to: Date }): Promise<unknown>;
}

const isoDate = z.iso.datetime({ offset: true }).transform((s) => new Date(s));
const MAX_RANGE_HOURS = 24 * 400;

const usageQuery = z
  .object({
    meter: z.string().min(1),
    customer: z.string().max(256).optional(),
    from: isoDate,
    to: isoDate,
    window: z.enum(['hour', 'day', 'month']).default('hour'),
  })
  .strict()
  .refine((q) => q.from < q.to, { message: 'from must be before to', path: ['to'] })
  .refine((q) => q.to.getTime() - q.from.getTime() <= MAX_RANGE_HOURS * HOUR_MS, {
    message: 'at most 400 days at once',
    path: ['to'],
  });

const evaluateBody = z.object({ from: isoDate, to: isoDate }).strict().partial();

function invalid(error: z.ZodError, hint: string): DomainError {
  return new DomainError('invalid_request', hint, {
    errors: error.issues.map((i) => ({ field: i.path.join('.'), reason: i.message })),
  });
}

const csvCell = (v: string) =>
  /[",\n\r]/.test(v) || /^[=+\-@]/.test(v) ? `"${v.replaceAll('"', '""')}"` : v;

/** Meters, usage and evaluation: the admin key's API. */
export function meterRoutes(deps: MeterRouteDeps): Router {
  const router = new Router();
  router.use(requireAdminKey(deps.adminApiKey));
  const byName = new Map(deps.meters.map((m) => [m.name, m]));
  const meterOr404 = (name: string) => {
    const meter = byName.get(name);
    if (!meter) throw new DomainError('not_found', `no meter named ${name}`);
    return meter;
  };
  const versionView = (v: MeterVersionRecord) => ({
    version: v.version,
    effective_from: v.effectiveFrom.toISOString(),
    definition: v.definition,
  });

  router.get('/v1/meters', async (ctx) => {
    const versions = await deps.versions();
    ctx.body = {
      meters: deps.meters.map((m) => ({
        name: m.name,
        description: m.description,
        unit: m.unit,
        aggregation: m.aggregation,
        version: meterVersion(m),
        versions: versions
          .filter((v) => v.meter === m.name)
          .sort((a, b) => +a.effectiveFrom - +b.effectiveFrom)
          .map((v) => ({ version: v.version, effective_from: v.effectiveFrom.toISOString() })),
      })),
    };
  });

  router.get('/v1/meters/:name', async (ctx) => {
    const meter = meterOr404(ctx.params.name ?? '');
    const versions = (await deps.versions())
      .filter((v) => v.meter === meter.name)
      .sort((a, b) => +a.effectiveFrom - +b.effectiveFrom);
    ctx.body = {
      name: meter.name,
      version: meterVersion(meter),
      definition: meter,
      versions: versions.map(versionView),
    };
  });

  router.get('/v1/usage', async (ctx) => {
    const parsed = usageQuery.safeParse(ctx.query);
    if (!parsed.success)
      throw invalid(
        parsed.error,
        'query: meter, from, to (ISO with zone), window (hour|day|month), customer',
      );
    const q = parsed.data;
    const points = await deps.usage.usage(meterOr404(q.meter), q);
    if (ctx.accepts('application/json', 'text/csv') === 'text/csv') {
      ctx.type = 'text/csv';
      ctx.body =
        [
          'meter,customer,window_start,value',
          ...points.map((p) => [p.meter, p.customer, p.window_start, p.value].map(csvCell).join(',')),
        ].join('\n') + '\n';
      return;
    }
    ctx.body = {
      meter: q.meter,
      window: q.window,
      from: q.from.toISOString(),
      to: q.to.toISOString(),
      usage: points,
    };
  });

  router.get('/v1/customers/:id/usage', async (ctx) => {
    ctx.body = await deps.usage.customerPeriod(ctx.params.id ?? '', deps.meters);
  });

  router.post('/v1/admin/meters/evaluate', async (ctx) => {
    const raw = await readBody(ctx.req, 64 * 1024);
    const parsed = evaluateBody.safeParse(raw.length === 0 ? {} : parseJson(raw));
    if (!parsed.success)
      throw invalid(parsed.error, 'send {} for the scheduled run, or {"from": ISO, "to": ISO}');
    const { from, to } = parsed.data;
    if ((from === undefined) !== (to === undefined))
      throw new DomainError('invalid_request', 'send both from and to, or neither');
    ctx.body = await deps.evaluate(from && to ? { from, to } : undefined);
  });

  return router;
}

import Router from '@koa/router';
import { z } from 'zod';
import { parseJson } from '../../collector/parse-body.ts';
import { DomainError } from '../../errors.ts';
import {
  uncoveredRanges,
  type EvaluatedRange,
  type EvaluationReport,
  type MeterVersionRecord,
  type RecordedRun,
} from '../../meters/evaluation.ts';
import type { MeterDefinition } from '../../meters/meter-schema.ts';
import { meterVersion } from '../../meters/meter-version.ts';
import type { UsagePort } from '../ports.ts';
import { periodId } from '../../time/billing-period.ts';
import { HOUR_MS } from '../../time/hours.ts';
import { requireAdminKey } from '../auth.ts';
import type {
  customerUsageSchema,
  evaluationAnswerSchema,
  evaluationStatusSchema,
  meterListSchema,
  meterSchemaView,
  usageAnswerSchema,
} from '../openapi/schemas.ts';
import { readBody } from '../body.ts';
import {
  compactInstant,
  formatField,
  instantField,
  invalidRequest,
  parseOr400,
  periodField,
  sendCsv,
  wantsCsv,
} from '../query-fields.ts';

export interface MeterRouteDeps {
  adminApiKey: string | undefined;
  meters: readonly MeterDefinition[];
  versions(): Promise<MeterVersionRecord[]>;
  usage: UsagePort;
  /** The scheduled run, now. */
  runScheduled(): Promise<EvaluationReport>;
  /** [from, to) again for these meters, whatever the watermarks. */
  evaluateRange(meters: readonly MeterDefinition[], from: Date, to: Date): Promise<EvaluatedRange[]>;
  latestRun(): Promise<RecordedRun | undefined>;
  /** LATENESS_HOURS: the closed hours every scheduled run evaluates again. */
  latenessHours: number;
}

const MAX_RANGE_DAYS = 400;

export const usageQuery = z
  .object({
    meter: z.string().min(1).meta({ description: 'The meter name.' }),
    customer: z.string().min(1).max(1024).optional().meta({ description: 'One customer key only.' }),
    from: instantField('Start, inclusive; default: the start of the current period.').optional(),
    to: instantField('End, exclusive; default: the end of the current period.').optional(),
    period: periodField('A billing period instead of from and to:').optional(),
    window: z.enum(['hour', 'day', 'month']).default('hour'),
    format: formatField,
  })
  .strict();

export const customerUsageQuery = z
  .object({
    period: periodField('The billing period; default: the current one. Past periods too:').optional(),
    format: formatField,
  })
  .strict();

export const evaluateBody = z
  .object({
    from: instantField('Start of the range to evaluate again, inclusive (floored to the hour).').optional(),
    to: instantField('End of the range, exclusive.').optional(),
    meters: z
      .array(z.string().min(1))
      .min(1)
      .optional()
      .meta({ description: 'Only these meters (with from and to); default: all.' }),
  })
  .strict()
  .meta({
    description: '{} for the scheduled run now, or {from, to[, meters]} to evaluate that range again.',
  });

const USAGE_HINT =
  'query: meter, from and to (ISO-8601 with a zone, or YYYY-MM-DD for 00:00 UTC; default: the current period) ' +
  'or period (YYYY-MM), window (hour|day|month), customer, format (json|csv)';

// In whole seconds, as meter_runs keeps it: the run just made and the last run recorded read the same.
const runView = (r: RecordedRun) => ({
  run_at: new Date(Math.floor(r.runAt.getTime() / 1000) * 1000).toISOString(),
  closed_through: r.closedThrough.toISOString(),
  window_start: r.windowStart.toISOString(),
  late_outside_window: r.lateOutsideWindow,
});

const rangeView = (r: EvaluatedRange) => ({
  meter: r.meter,
  version: r.version,
  from: r.from.toISOString(),
  to: r.to.toISOString(),
  rows: r.rows,
});

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
    } satisfies z.input<typeof meterListSchema>;
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
    } satisfies z.input<typeof meterSchemaView>;
  });

  router.get('/v1/usage', async (ctx) => {
    const q = parseOr400(usageQuery, ctx.query, USAGE_HINT);
    if (q.period && (q.from || q.to))
      throw invalidRequest(USAGE_HINT, [
        { field: 'period', reason: 'send period, or from and to, not both' },
      ]);
    const current = deps.usage.currentPeriod();
    const from = q.from ?? q.period?.start ?? current.start;
    const to = q.to ?? q.period?.end ?? current.end;
    if (from >= to)
      throw invalidRequest(USAGE_HINT, [
        { field: 'to', reason: `must be after from (${from.toISOString()})` },
      ]);
    if (to.getTime() - from.getTime() > MAX_RANGE_DAYS * 24 * HOUR_MS)
      throw invalidRequest(USAGE_HINT, [
        { field: 'to', reason: `at most ${MAX_RANGE_DAYS} days after from` },
      ]);
    const meter = meterOr404(q.meter);
    const points = await deps.usage.usage(meter, {
      from,
      to,
      window: q.window,
      ...(q.customer === undefined ? {} : { customers: [q.customer] }),
    });
    if (wantsCsv(ctx, q.format)) {
      sendCsv(
        ctx,
        `usage-${meter.name}-${q.window}-${compactInstant(from)}-${compactInstant(to)}.csv`,
        ['meter', 'customer', 'window_start', 'value', 'currency', 'amount', 'amount_minor'],
        points.map((p) => [
          p.meter,
          p.customer,
          p.window_start,
          p.value,
          p.cost?.currency ?? '',
          p.cost?.amount ?? '',
          p.cost === undefined ? '' : String(p.cost.amount_minor),
        ]),
      );
      return;
    }
    ctx.body = {
      meter: meter.name,
      window: q.window,
      from: from.toISOString(),
      to: to.toISOString(),
      usage: points,
    } satisfies z.input<typeof usageAnswerSchema>;
  });

  router.get('/v1/customers/:id/usage', async (ctx) => {
    const q = parseOr400(
      customerUsageQuery,
      ctx.query,
      'query: period (YYYY-MM, default the current one), format (json|csv)',
    );
    const current = deps.usage.currentPeriod();
    if (q.period && q.period.start > current.start)
      throw invalidRequest('query: period (YYYY-MM, default the current one), format (json|csv)', [
        { field: 'period', reason: `is in the future: the current period is ${periodId(current.start)}` },
      ]);
    const usage = await deps.usage.customerPeriod(ctx.params.id ?? '', deps.meters, q.period);
    if (wantsCsv(ctx, q.format)) {
      const safeName = usage.customer.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 64);
      sendCsv(
        ctx,
        `usage-${safeName}-${usage.period.id}.csv`,
        ['customer', 'period', 'meter', 'unit', 'quantity', 'currency', 'amount', 'amount_minor'],
        usage.meters.map((m) => [
          usage.customer,
          usage.period.id,
          m.meter,
          m.unit,
          m.quantity,
          m.cost?.currency ?? '',
          m.cost?.amount ?? '',
          m.cost === undefined ? '' : String(m.cost.amount_minor),
        ]),
      );
      return;
    }
    ctx.body = usage satisfies z.input<typeof customerUsageSchema>;
  });

  router.post('/v1/admin/meters/evaluate', async (ctx) => {
    const raw = await readBody(ctx.req, 64 * 1024);
    const hint = 'send {} for the scheduled run, or {"from": ISO, "to": ISO, "meters"?: [names]}';
    const body = parseOr400(evaluateBody, raw.length === 0 ? {} : parseJson(raw), hint);
    if ((body.from === undefined) !== (body.to === undefined))
      throw invalidRequest(hint, [
        { field: body.from === undefined ? 'from' : 'to', reason: 'send both from and to, or neither' },
      ]);
    if (body.from === undefined || body.to === undefined) {
      if (body.meters)
        throw invalidRequest(hint, [{ field: 'meters', reason: 'only with from and to (a range)' }]);
      const report = await deps.runScheduled();
      ctx.body = {
        mode: 'scheduled',
        ranges: report.ranges.map(rangeView),
        not_covered: [],
        run: runView(report),
      } satisfies z.input<typeof evaluationAnswerSchema>;
      return;
    }
    const { from, to } = body;
    if (from >= to) throw invalidRequest(hint, [{ field: 'to', reason: 'must be after from' }]);
    const selected = (body.meters ?? deps.meters.map((m) => m.name)).map((name, i) => {
      const meter = byName.get(name);
      if (!meter) throw invalidRequest(hint, [{ field: `meters.${i}`, reason: `no meter named ${name}` }]);
      return meter;
    });
    const ranges = await deps.evaluateRange(selected, from, to);
    // What of the range no version covers (before a meter's first version): said, not skipped silently.
    const notCovered = uncoveredRanges(
      await deps.versions(),
      selected.map((m) => m.name),
      from,
      to,
    );
    ctx.body = {
      mode: 'range',
      ranges: ranges.map(rangeView),
      not_covered: notCovered.map((u) => ({
        meter: u.meter,
        from: u.from.toISOString(),
        to: u.to.toISOString(),
        first_effective_from: u.firstEffectiveFrom?.toISOString() ?? null,
      })),
      run: null,
    } satisfies z.input<typeof evaluationAnswerSchema>;
  });

  router.get('/v1/admin/meters/evaluation', async (ctx) => {
    const last = await deps.latestRun();
    ctx.body = {
      lateness_hours: deps.latenessHours,
      last_run: last ? runView(last) : null,
    } satisfies z.input<typeof evaluationStatusSchema>;
  });

  return router;
}

import Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import { parseJson } from '../../collector/parse-body.ts';
import { DomainError } from '../../errors.ts';
import { parseMeterText } from '../../meters/load-meters.ts';
import type { MeterDefinition } from '../../meters/meter-schema.ts';
import type { ExplorerCursor, ExplorerFilter } from '../../storage/clickhouse/request-log-explorer.ts';
import type { StoredRequestLog } from '../../storage/clickhouse/request-log-reader.ts';
import { HOUR_MS } from '../../time/hours.ts';
import { isAdminKey, presentedKey, requireAdminKey, sessionSecret, SESSION_COOKIE } from '../auth.ts';
import { readBody } from '../body.ts';
import type { UsagePort } from '../ports.ts';
import { instantField, invalidRequest, parseOr400 } from '../query-fields.ts';
import { issueSession, signPortalToken, verifyPortalToken } from '../web/signed-tokens.ts';

/**
 * The JSON endpoints the dashboard and the customer page need. They are public API like the rest
 * (in the OpenAPI document, problem+json errors): the pages have no endpoint of their own. The admin
 * ones take the admin key or the session cookie (auth.ts); the portal one takes a portal token only.
 */
export interface ExplorerPort {
  histogram(f: ExplorerFilter, bucketSeconds: number): Promise<{ start: Date; calls: number }[]>;
  page(
    f: ExplorerFilter,
    limit: number,
    before?: ExplorerCursor,
  ): Promise<{ rows: StoredRequestLog[]; next?: ExplorerCursor }>;
}

export interface WebRouteDeps {
  adminApiKey: string | undefined;
  /** HMAC key of portal links (PORTAL_LINK_SECRET, else derived from the admin key); none: links are off. */
  portalSecret: Buffer | undefined;
  explorer: ExplorerPort;
  usage: UsagePort;
  meters: readonly MeterDefinition[];
  /** What a meter definition counts per customer over [from, to): its compiled SQL, read-only. */
  previewPeriod(meter: MeterDefinition, from: Date, to: Date): Promise<Map<string, bigint>>;
  now?: () => Date;
}

const floorHour = (d: Date) => new Date(Math.floor(d.getTime() / HOUR_MS) * HOUR_MS);
const ceilHour = (d: Date) => new Date(Math.ceil(d.getTime() / HOUR_MS) * HOUR_MS);

export const SESSION_TTL_SECONDS = 8 * 3600;
const MAX_EXPLORER_DAYS = 31;
const MAX_PREVIEW_DAYS = 92;
const MAX_PORTAL_DAYS = 90;

export const loginBody = z.object({ key: z.string().min(1).max(512) }).strict();

const explorerFields = {
  from: instantField('Start, inclusive; default: 24 hours before to.').optional(),
  to: instantField('End, exclusive; default: now.').optional(),
  customer: z.string().min(1).max(1024).optional(),
  route: z.string().min(1).max(2048).optional(),
  method: z
    .string()
    .regex(/^[A-Za-z]{1,16}$/)
    .optional(),
  status: z.coerce.number().int().min(100).max(599).optional().meta({ description: 'One status code.' }),
  status_class: z.enum(['1xx', '2xx', '3xx', '4xx', '5xx']).optional(),
  meta_key: z.string().min(1).max(256).optional(),
  meta_value: z.string().max(2048).optional(),
};
export const explorerQuery = z
  .object({
    ...explorerFields,
    limit: z.coerce.number().int().min(1).max(200).default(50),
    before: z.string().max(4096).optional().meta({ description: 'The `next` of the previous page.' }),
  })
  .strict();
export const histogramQuery = z
  .object({
    ...explorerFields,
    buckets: z.coerce.number().int().min(1).max(500).default(60),
  })
  .strict();

export const previewBody = z
  .object({
    yaml: z
      .string()
      .min(1)
      .max(64 * 1024)
      .meta({ description: 'A meter definition, as in meters/*.yaml.' }),
    from: instantField(
      'Start, inclusive, floored to the hour; default: the start of the current period.',
    ).optional(),
    to: instantField('End, exclusive, rounded up to the hour; default: now.').optional(),
  })
  .strict();

export const portalLinkBody = z
  .object({
    expires_in_hours: z
      .number()
      .int()
      .min(1)
      .max(MAX_PORTAL_DAYS * 24)
      .default(7 * 24),
  })
  .strict();

const EXPLORER_HINT =
  'query: from, to (at most 31 days apart), customer, route, method, status, status_class (1xx-5xx), meta_key, meta_value';

function explorerFilter(q: z.output<z.ZodObject<typeof explorerFields>>, now: Date): ExplorerFilter {
  const to = q.to ?? now;
  const from = q.from ?? new Date(to.getTime() - 24 * HOUR_MS);
  if (from >= to) throw invalidRequest(EXPLORER_HINT, [{ field: 'to', reason: 'must be after from' }]);
  if (to.getTime() - from.getTime() > MAX_EXPLORER_DAYS * 24 * HOUR_MS)
    throw invalidRequest(EXPLORER_HINT, [
      { field: 'to', reason: `at most ${MAX_EXPLORER_DAYS} days after from` },
    ]);
  if (q.meta_value !== undefined && q.meta_key === undefined)
    throw invalidRequest(EXPLORER_HINT, [{ field: 'meta_value', reason: 'only with meta_key' }]);
  return {
    from,
    to,
    customer: q.customer,
    route: q.route,
    method: q.method,
    status: q.status,
    statusClass: q.status_class === undefined ? undefined : Number(q.status_class[0]),
    metaKey: q.meta_key,
    metaValue: q.meta_value,
  };
}

const encodeCursor = (c: ExplorerCursor) =>
  Buffer.from(JSON.stringify([c.requestTime, c.eventId])).toString('base64url');
function decodeCursor(text: string): ExplorerCursor {
  try {
    const [requestTime, eventId] = JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as unknown[];
    if (
      typeof requestTime === 'string' &&
      /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/.test(requestTime) &&
      typeof eventId === 'string'
    )
      return { requestTime, eventId };
  } catch {
    // answered below
  }
  throw invalidRequest(EXPLORER_HINT, [{ field: 'before', reason: 'is not a cursor this API gave out' }]);
}

const logView = (r: StoredRequestLog) => ({
  event_id: r.event_id,
  app: r.app,
  request_time: r.request_time,
  customer: r.customer_key,
  method: r.method,
  route: r.route,
  status: r.status,
  latency_ms: r.latency_ms,
  metadata: Object.fromEntries(r.meta_keys.map((k, i) => [k, r.meta_values[i] ?? ''])),
});

async function jsonBody(ctx: Context, hint: string): Promise<unknown> {
  const raw = await readBody(ctx.req, 128 * 1024);
  if (raw.length === 0) return {};
  if (!ctx.is('application/json'))
    throw new DomainError('unsupported_media_type', `send application/json: ${hint}`);
  return parseJson(raw);
}

function setSessionCookie(ctx: Context, value: string, expires: Date): void {
  ctx.cookies.set(SESSION_COOKIE, value, {
    httpOnly: true,
    sameSite: 'strict',
    path: '/',
    secure: ctx.secure,
    expires,
    overwrite: true,
  });
}

export function webRoutes(deps: WebRouteDeps): Router {
  const router = new Router();
  const now = deps.now ?? (() => new Date());
  const admin = requireAdminKey(deps.adminApiKey);

  router.post('/v1/admin/session', async (ctx) => {
    // Sessions run on the wall clock (as the browser's cookie expiry does), not the billing clock.
    // JSON only: a cross-site form cannot send it without a preflight this server never grants.
    const body = parseOr400(
      loginBody,
      await jsonBody(ctx, 'send {"key": "<ADMIN_API_KEY>"}'),
      'send {"key": "<ADMIN_API_KEY>"}',
    );
    if (!deps.adminApiKey)
      throw new DomainError('forbidden', 'the admin API is disabled: set ADMIN_API_KEY to enable it');
    if (!isAdminKey(deps.adminApiKey, body.key))
      throw new DomainError('unauthorized', 'that is not the admin key');
    const session = issueSession(sessionSecret(deps.adminApiKey), new Date(), SESSION_TTL_SECONDS);
    setSessionCookie(ctx, session.cookie, session.expiresAt);
    ctx.status = 201;
    ctx.body = { csrf_token: session.csrfToken, expires_at: session.expiresAt.toISOString() };
  });

  router.get('/v1/admin/session', admin, (ctx) => {
    const session = ctx.state.session as { csrfToken: string; expiresAt: Date } | undefined;
    if (!session)
      throw invalidRequest('this endpoint describes the session cookie', [
        { field: 'cookie', reason: `no ${SESSION_COOKIE} cookie sent` },
      ]);
    ctx.body = { csrf_token: session.csrfToken, expires_at: session.expiresAt.toISOString() };
  });

  router.delete('/v1/admin/session', admin, (ctx) => {
    setSessionCookie(ctx, '', new Date(0));
    ctx.status = 204;
  });

  router.get('/v1/admin/request-logs', admin, async (ctx) => {
    const q = parseOr400(explorerQuery, ctx.query, EXPLORER_HINT);
    const filter = explorerFilter(q, now());
    const page = await deps.explorer.page(
      filter,
      q.limit,
      q.before === undefined ? undefined : decodeCursor(q.before),
    );
    ctx.body = {
      from: filter.from.toISOString(),
      to: filter.to.toISOString(),
      logs: page.rows.map(logView),
      next: page.next ? encodeCursor(page.next) : null,
    };
  });

  router.get('/v1/admin/request-logs/histogram', admin, async (ctx) => {
    const q = parseOr400(histogramQuery, ctx.query, `${EXPLORER_HINT}, buckets (1-500)`);
    const filter = explorerFilter(q, now());
    const span = filter.to.getTime() - filter.from.getTime();
    // Whole minutes, at least one: the buckets line up with the clock.
    const bucketSeconds = Math.max(60, Math.ceil(span / q.buckets / 60_000) * 60);
    const buckets = await deps.explorer.histogram(filter, bucketSeconds);
    ctx.body = {
      from: filter.from.toISOString(),
      to: filter.to.toISOString(),
      bucket_seconds: bucketSeconds,
      total: buckets.reduce((a, b) => a + b.calls, 0),
      buckets: buckets.map((b) => ({ start: b.start.toISOString(), calls: b.calls })),
    };
  });

  router.post('/v1/admin/meters/preview', admin, async (ctx) => {
    const hint = 'send {"yaml": "<a meter definition>", "from"?: ISO, "to"?: ISO}';
    const body = parseOr400(previewBody, await jsonBody(ctx, hint), hint);
    const parsed = parseMeterText(body.yaml, 'preview.yaml');
    if ('errors' in parsed)
      throw invalidRequest(
        'the meter definition is invalid',
        parsed.errors.map((e) => ({ field: 'yaml', reason: `line ${e.line}:${e.col}: ${e.reason}` })),
      );
    // Meter SQL runs over whole hours: from is floored, to rounded up (the hour under way counts so far).
    const from = floorHour(body.from ?? deps.usage.currentPeriod().start);
    const to = ceilHour(body.to ?? now());
    if (from >= to) throw invalidRequest(hint, [{ field: 'to', reason: 'must be after from' }]);
    if (to.getTime() - from.getTime() > MAX_PREVIEW_DAYS * 24 * HOUR_MS)
      throw invalidRequest(hint, [{ field: 'to', reason: `at most ${MAX_PREVIEW_DAYS} days after from` }]);
    const values = await deps.previewPeriod(parsed.meter.definition, from, to);
    const customers = [...values].sort((a, b) => (b[1] > a[1] ? 1 : b[1] < a[1] ? -1 : a[0] < b[0] ? -1 : 1));
    ctx.body = {
      meter: parsed.meter.definition.name,
      from: from.toISOString(),
      to: to.toISOString(),
      total: customers.reduce((a, [, v]) => a + v, 0n).toString(),
      customers: customers.slice(0, 1000).map(([customer, value]) => ({ customer, value: value.toString() })),
    };
  });

  router.post('/v1/admin/customers/:id/portal-links', admin, async (ctx) => {
    if (!deps.portalSecret)
      throw new DomainError('forbidden', 'portal links need ADMIN_API_KEY or PORTAL_LINK_SECRET');
    const hint = 'send {"expires_in_hours"?: 1-2160}';
    const body = parseOr400(portalLinkBody, await jsonBody(ctx, hint), hint);
    const customer = ctx.params.id ?? '';
    const expiresAt = new Date(now().getTime() + body.expires_in_hours * HOUR_MS);
    const token = signPortalToken(deps.portalSecret, customer, expiresAt);
    ctx.status = 201;
    // The token rides in the fragment: browsers send it to no server, and it stays out of access logs.
    ctx.body = {
      customer,
      expires_at: expiresAt.toISOString(),
      token,
      url: `${ctx.protocol}://${ctx.host}/ui/portal#${token}`,
    };
  });

  router.get('/v1/portal/usage', async (ctx) => {
    if (!deps.portalSecret) throw new DomainError('forbidden', 'portal links are not enabled');
    const check = verifyPortalToken(deps.portalSecret, presentedKey(ctx), now());
    if (!check.ok)
      throw new DomainError(
        'unauthorized',
        check.reason === 'expired'
          ? 'this link has expired: ask for a new one'
          : 'this link is not valid: it was changed or cut short',
      );
    const usage = await deps.usage.customerPeriod(check.customer, deps.meters);
    const period = deps.usage.currentPeriod();
    const to = now() < period.end ? now() : period.end;
    const daily = await Promise.all(
      deps.meters.map(async (m) => ({
        meter: m.name,
        days: (
          await deps.usage.usage(m, { from: period.start, to, window: 'day', customers: [check.customer] })
        ).map((p) => ({ day: p.window_start.slice(0, 10), value: p.value })),
      })),
    );
    ctx.body = {
      ...usage,
      link_expires_at: check.expiresAt.toISOString(),
      daily,
      next_tier: deps.meters.flatMap((m) => {
        const quantity = BigInt(usage.meters.find((u) => u.meter === m.name)?.quantity ?? '0');
        const next = m.pricing?.tiers.find((t) => t.up_to !== 'inf' && BigInt(t.up_to) >= quantity);
        return next && next.up_to !== 'inf'
          ? [
              {
                meter: m.name,
                at: String(next.up_to + 1),
                to_go: (BigInt(next.up_to) + 1n - quantity).toString(),
              },
            ]
          : [];
      }),
    };
  });

  return router;
}

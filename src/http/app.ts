import { randomUUID } from 'node:crypto';
import Router from '@koa/router';
import Koa from 'koa';
import type { z } from 'zod';
import type { Logger } from 'pino';
import type { Metrics } from './metrics.ts';
import type { IngestKeysPort, IngestPort, MoesifRecordsPort } from './ports.ts';
import { openApiDocument } from './openapi/document.ts';
import type { readinessSchema } from './openapi/schemas.ts';
import { problemMiddleware } from './problem.ts';
import { adminRoutes } from './routes/admin-routes.ts';
import { governanceRoutes, type GovernanceRouteDeps } from './routes/governance-routes.ts';
import { ingestRoutes, type MoesifGovernancePort } from './routes/ingest-routes.ts';
import { alertRoutes, type AlertRouteDeps } from './routes/alert-routes.ts';
import { onboardingRoutes, type OnboardingRouteDeps } from './routes/onboarding-routes.ts';
import { meterRoutes, type MeterRouteDeps } from './routes/meter-routes.ts';
import { stripeRoutes, type StripeRouteDeps } from './routes/stripe-routes.ts';
import { syncRoutes, type SyncRouteDeps } from './routes/sync-routes.ts';
import { webRoutes, type WebRouteDeps } from './routes/web-routes.ts';
import { staticUi } from './web/static-ui.ts';

export interface Readiness {
  clickhouseReachable(): Promise<boolean>;
  spoolHasRoom(): boolean;
  /** Bytes waiting in the spool, by destination table. */
  spoolBytes(): ReadonlyMap<string, number>;
}

export interface AppDeps {
  ingest: IngestPort;
  moesifRecords: MoesifRecordsPort;
  keys: IngestKeysPort;
  readiness: Readiness;
  metrics: Metrics;
  limits: { maxBodyBytes: number; maxEventBytes: number };
  adminApiKey: string | undefined;
  flush(): Promise<void>;
  recentLogs(q: { limit: number; app?: string; customer?: string }): Promise<object[]>;
  meters: Omit<MeterRouteDeps, 'adminApiKey'>;
  logger: Logger;
  trustProxy?: boolean;
  /** Stripe webhooks, customer mappings and billing status; their routes are absent without it. */
  stripe?: Omit<StripeRouteDeps, 'adminApiKey'>;
  sync?: Omit<SyncRouteDeps, 'adminApiKey'>;
  /** Governance rules and decisions; without it, no rules and no access route. */
  governance?: GovernanceRouteDeps['governance'] & MoesifGovernancePort;
  alerts?: Omit<AlertRouteDeps, 'adminApiKey'>;
  /** Customer onboarding to Stripe; absent without a Stripe key. */
  onboarding?: Omit<OnboardingRouteDeps, 'adminApiKey'>;
  /** The dashboard's endpoints (sessions, explorer, preview, portal); absent: the UI has no data. */
  web?: Omit<WebRouteDeps, 'adminApiKey'>;
  /** Where the built dashboard is (default web/dist of this package). */
  uiDir?: string;
}

/** Builds the Koa app from use cases; it constructs no clients of its own. */
export function createApp(deps: AppDeps): Koa {
  const app = new Koa({ proxy: deps.trustProxy ?? false });

  app.use(async (ctx, next) => {
    const started = performance.now();
    const incoming = ctx.get('x-request-id');
    ctx.state.requestId = /^[\w.-]{1,128}$/.test(incoming) ? incoming : randomUUID();
    ctx.set('x-request-id', ctx.state.requestId as string);
    try {
      await next();
    } finally {
      // Never log headers or bodies: they carry keys and customer data.
      deps.logger.debug(
        {
          requestId: ctx.state.requestId,
          method: ctx.method,
          path: ctx.path,
          status: ctx.status,
          ms: Math.round(performance.now() - started),
        },
        'request',
      );
    }
  });
  app.use(problemMiddleware(deps.logger));

  for (const router of apiRouters(deps)) app.use(router.routes()).use(router.allowedMethods());
  app.use(staticUi(deps.uiDir));
  return app;
}

/**
 * Every router of the API, in the order they are mounted: what createApp serves and what the OpenAPI
 * document must describe, route for route (test/unit/http/openapi.test.ts compares the two).
 */
export function apiRouters(deps: AppDeps): Router[] {
  const ops = new Router();
  ops.get('/openapi.json', (ctx) => {
    ctx.body = openApiDocument();
  });
  ops.get('/healthz', (ctx) => {
    ctx.body = { status: 'ok' };
  });
  ops.get('/readyz', async (ctx) => {
    const clickhouse = await deps.readiness.clickhouseReachable();
    const spoolHasRoom = deps.readiness.spoolHasRoom();
    // Ready while events can be made durable: in ClickHouse, or in the spool until it comes back.
    const ready = clickhouse || spoolHasRoom;
    ctx.status = ready ? 200 : 503;
    ctx.body = {
      status: ready ? 'ready' : 'unavailable',
      clickhouse: clickhouse ? 'reachable' : 'unreachable',
      spool: {
        has_room: spoolHasRoom,
        bytes: [...deps.readiness.spoolBytes().values()].reduce((a, b) => a + b, 0),
      },
    } satisfies z.input<typeof readinessSchema>;
  });
  ops.get('/metrics', async (ctx) => {
    for (const [table, bytes] of deps.readiness.spoolBytes()) deps.metrics.spoolBytes.set({ table }, bytes);
    ctx.type = deps.metrics.registry.contentType;
    ctx.body = await deps.metrics.registry.metrics();
  });

  const admin = adminRoutes({
    keys: deps.keys,
    adminApiKey: deps.adminApiKey,
    flush: deps.flush,
    recentLogs: deps.recentLogs,
    ingestFormats: () => deps.metrics.ingestByFormat(),
  });
  const ingest = ingestRoutes({
    ingest: deps.ingest,
    keys: deps.keys,
    limits: deps.limits,
    moesifRecords: deps.moesifRecords,
    ...(deps.governance ? { moesifGovernance: deps.governance } : {}),
  });
  const meters = meterRoutes({ ...deps.meters, adminApiKey: deps.adminApiKey });
  // Stripe's routes come before the others: its webhook must reach its handler with the raw body unread.
  const stripe = deps.stripe ? [stripeRoutes({ ...deps.stripe, adminApiKey: deps.adminApiKey })] : [];
  if (deps.sync) stripe.push(syncRoutes({ ...deps.sync, adminApiKey: deps.adminApiKey }));
  if (deps.governance)
    stripe.push(governanceRoutes({ governance: deps.governance, adminApiKey: deps.adminApiKey }));
  const alerts = deps.alerts ? [alertRoutes({ ...deps.alerts, adminApiKey: deps.adminApiKey })] : [];
  if (deps.onboarding) alerts.push(onboardingRoutes({ ...deps.onboarding, adminApiKey: deps.adminApiKey }));
  const web = deps.web ? [webRoutes({ ...deps.web, adminApiKey: deps.adminApiKey })] : [];
  return [ops, ...stripe, ...web, admin, meters, ...alerts, ingest];
}

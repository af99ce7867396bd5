import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import cron from 'node-cron';
import type { Logger } from 'pino';
import { inlinePreparer, WorkerPoolPreparer } from './collector/body-to-rows-threads.ts';
import { IngestService } from './collector/ingest-service.ts';
import { MoesifRecordService } from './collector/moesif-records.ts';
import { REQUEST_LOG_COLUMNS } from './collector/request-log.ts';
import { JSON_EACH_ROW, tabSeparated } from './collector/row-format.ts';
import { Shipper, type RowSink } from './collector/shipper.ts';
import { Spool } from './collector/spool.ts';
import type { SyncReport } from './billing/stripe/sync-service.ts';
import type { SyncFence } from './billing/stripe/ports.ts';
import { planPush, pushPlanView } from './billing/stripe/push.ts';
import { SyncRunHistory } from './billing/stripe/sync-runs.ts';
import type { Config } from './config.ts';
import { createApp } from './http/app.ts';
import { deriveSecret } from './http/web/signed-tokens.ts';
import { RequestLogExplorer } from './storage/clickhouse/request-log-explorer.ts';
import { createMetrics } from './http/metrics.ts';
import type { IngestKeyService } from './keys/ingest-keys.ts';
import { loadRules } from './governance/load-rules.ts';
import { definitionsReloader } from './lifecycle/definitions-reload.ts';
import { hourlyJob } from './lifecycle/hourly-job.ts';
import { listen } from './lifecycle/listen.ts';
import { readiness } from './lifecycle/readiness.ts';
import { tryMigrateAtStart } from './lifecycle/schema-guard.ts';
import { shutdown } from './lifecycle/shutdown.ts';
import type { EvaluationReport, EvaluationService } from './meters/evaluation.ts';
import { MeterDefinitionError } from './meters/load-meters.ts';
import type { MeterDefinition } from './meters/meter-schema.ts';
import {
  buildServices,
  createLogger,
  type BuildOptions,
  type Services,
  type StripeSide,
  type AlertsSide,
} from './services.ts';
import type { ClickHouse } from './storage/clickhouse/clickhouse.ts';

/**
 * The running service: the parts of buildServices (services.ts), plus what only a server has: the
 * spools and their shipper, the ingest pipeline, the HTTP app, the hourly schedule and the drain.
 */
export interface RunningService {
  url: string;
  port: number;
  clickhouse: ClickHouse;
  keys: IngestKeyService;
  meters: readonly MeterDefinition[];
  evaluation: EvaluationService;
  stripe: StripeSide;
  alerts: AlertsSide;
  /** The scheduled job now: evaluate the meters, then sync Stripe. */
  runHourly(): Promise<{ evaluation: EvaluationReport | undefined; sync: SyncReport }>;
  /** Ships every spooled event to ClickHouse now. */
  flush(): Promise<void>;
  /** Stops taking requests, flushes what it can, closes everything. */
  stop(): Promise<void>;
}

export type ServiceOptions = Pick<BuildOptions, 'now' | 'meters' | 'command'>;

const SPOOLED_TABLES = ['request_logs', 'companies', 'users', 'actions'] as const;
const KEY_REFRESH_MS = 5_000;

export async function startService(
  config: Config,
  logger: Logger = createLogger(config),
  options: ServiceOptions = {},
): Promise<RunningService> {
  const services = await buildServices(config, {
    ...options,
    logger,
    migrate: 'lazy',
    command: options.command ?? 'serve',
  });
  const { clickhouse, schema, meters, evaluation, keys, stripe } = services;
  await tryMigrateAtStart(schema, logger);
  await evaluation
    .registerVersions(meters)
    .catch((err: unknown) =>
      logger.warn({ err: String(err) }, 'could not record meter versions yet; the first evaluation will'),
    );
  if (!stripe.gateway)
    logger.warn(
      'no STRIPE_SECRET_KEY: the Stripe sync runs dry (the ledger and logs show what would be sent)',
    );

  const governance = await startGovernance(services, logger);

  const metrics = createMetrics();
  const lease = stripe.lease;
  const syncRuns = new SyncRunHistory(200, options.now);
  const job = hourlyJob({
    schema,
    evaluation,
    meters,
    runSync: stripe.runSync,
    ...(lease ? { exclusive: <T>(fn: (fence: SyncFence) => Promise<T>) => lease.run(fn) } : {}),
    afterEvaluation: services.alerts.afterEvaluation,
    metrics,
    runs: syncRuns,
    logger,
  });

  const spools = new Map<string, Spool>();
  for (const table of SPOOLED_TABLES) {
    const spool = new Spool({
      dir: join(config.spoolDir, table),
      maxBytes: config.spoolMaxBytes,
      // request_logs rows are TabSeparated (tab-separated.ts); the side tables' records are free-form.
      format: table === 'request_logs' ? tabSeparated(REQUEST_LOG_COLUMNS) : JSON_EACH_ROW,
    });
    await spool.open();
    spools.set(table, spool);
  }
  const sink: RowSink = {
    insertRows: async (table, format, body) => {
      await schema.ensure();
      if (format.kind === 'TabSeparated') await clickhouse.insertTabSeparated(table, format.columns, body);
      else await clickhouse.insertJsonEachRow(table, body);
    },
  };
  const shipper = new Shipper({ spools, sink, intervalMs: config.flushIntervalMs, logger, events: metrics });
  shipper.start();

  await keys
    .load()
    .catch((err: unknown) =>
      logger.error(
        { err: String(err) },
        'no ingest keys could be loaded (ClickHouse down, no local snapshot); ingest answers 401 until they are',
      ),
    );
  keys.startRefreshing(KEY_REFRESH_MS, (err) =>
    logger.warn({ err: String(err) }, 'could not refresh ingest keys; using the last known set'),
  );

  const queue = (table: string) => spools.get(table)!;
  const receivedNow = options.now && (() => options.now!().getTime());
  const preparer = config.ingestWorkers > 0 ? new WorkerPoolPreparer(config.ingestWorkers) : inlinePreparer;
  const ingest = new IngestService({
    queues: {
      request_logs: queue('request_logs'),
      companies: queue('companies'),
      users: queue('users'),
      actions: queue('actions'),
    },
    preparer,
    limits: config.limits,
    headerAllowList: config.headerAllowList,
    requireCustomer: config.requireCustomer,
    metrics: metrics.ingest,
    now: receivedNow,
  });
  const moesifRecords = new MoesifRecordService(ingest, config.limits, config.headerAllowList, receivedNow);

  const app = createApp({
    ingest,
    moesifRecords,
    keys,
    metrics,
    limits: config.limits,
    adminApiKey: config.adminApiKey,
    logger,
    trustProxy: config.trustProxy,
    flush: () => shipper.flush(),
    recentLogs: (q) => services.logReader.recent(q),
    meters: {
      meters,
      versions: () => services.meterStore.versions(),
      usage: services.usage,
      runScheduled: () => job.evaluate(),
      evaluateRange: async (selected, from, to) => {
        await schema.ensure();
        return evaluation.evaluateBetween(selected, from, to);
      },
      latestRun: () => evaluation.latestRun(),
      latenessHours: config.meters.latenessHours,
    },
    stripe: {
      ...stripe.billing,
      webhooks: {
        assertEnabled: () => stripe.billing.webhooks.assertEnabled(),
        receive: async (raw, signature) => {
          const result = await stripe.billing.webhooks.receive(raw, signature);
          // invoice.paid lifts an unpaid block now, not at the next minute's refresh.
          if (result.outcome === 'handled') await services.governance.membership.refresh();
          return result;
        },
      },
    },
    governance: services.governance.governance,
    sync: {
      discrepancies: (filter) => stripe.syncStore.discrepancies(filter),
      held: () => stripe.sync.held(meters),
      run: () => job.sync(),
      runs: (limit) => syncRuns.list(limit),
      customerLedger: (customer, limit, meter) => stripe.syncStore.customerOps(customer, limit, meter),
      reconcile: stripe.reconcile && ((range) => stripe.reconcile!.reconcile(meters, range)),
      pushPlan: stripe.gateway && (async () => pushPlanView(await planPush(meters, stripe.gateway!))),
    },
    readiness: readiness({ ping: () => clickhouse.ping(), spools }),
    alerts: { list: (filter) => services.alerts.list(filter) },
    onboarding: stripe.onboarding && {
      checkout: (key, o) => stripe.onboarding!.checkout(key, o),
    },
    web: {
      portalSecret: portalSecret(config),
      explorer: new RequestLogExplorer(clickhouse),
      usage: services.usage,
      meters,
      previewPeriod: (meter, from, to) => services.meterStore.period(meter, from, to),
      now: options.now,
    },
  });

  const server = await listen(app.callback(), config).catch(async (err: unknown) => {
    // Nothing was acknowledged yet; release the spools and the engine's lock before giving up.
    keys.stopRefreshing();
    await preparer.close();
    await shipper.stop();
    for (const spool of spools.values()) await spool.close();
    await services.close().catch(() => undefined);
    throw err;
  });
  const port = (server.address() as AddressInfo).port;
  const url = `http://${config.host === '0.0.0.0' ? '127.0.0.1' : config.host}:${port}`;
  logger.info(
    { url, clickhouse: clickhouse.engine, database: clickhouse.database, spoolDir: config.spoolDir },
    'billing-meter listening',
  );
  await services.announce(url);

  services.alerts.delivery.onPass((report) => metrics.onAlertPass(report));
  // Alerts recorded and not delivered yet (a crash, a receiver down): sent now and retried on a timer.
  const deliverAlerts = () =>
    services.alerts.delivery
      .deliverDue()
      .catch((err: unknown) => logger.warn({ err: String(err) }, 'alert delivery pass failed; retrying'));
  void deliverAlerts();
  const alertTimer = setInterval(deliverAlerts, config.alerts.deliveryIntervalMs);
  alertTimer.unref();

  const schedule = cron.schedule(
    config.meters.schedule,
    () =>
      job
        .run()
        .catch((err: unknown) =>
          logger.error({ err: String(err) }, 'stripe sync failed; the next run resumes it'),
        ),
    { timezone: 'Etc/UTC', noOverlap: true, name: 'meter-evaluation' },
  );

  const stop = shutdown({
    server,
    timeoutMs: config.shutdownTimeoutMs,
    stopStarting: [
      () => keys.stopRefreshing(),
      () => schedule.stop(),
      () => governance.stop(),
      () => clearInterval(alertTimer),
    ],
    inFlight: async () => {
      await stripe.idle();
      await services.alerts.delivery.idle();
    },
    closeIntake: [
      () => preparer.close(),
      () => shipper.stop(),
      async () => {
        for (const spool of spools.values()) await spool.close();
      },
    ],
    flush: () => shipper.flush(),
    close: () => services.close(),
    logger,
  });

  return {
    url,
    port,
    clickhouse,
    keys,
    meters,
    evaluation,
    stripe,
    alerts: services.alerts,
    runHourly: () => job.run(),
    flush: () => shipper.flush(),
    stop,
  };
}

/**
 * Governance at boot: the rules are loaded like the meters (a bad file stops the boot, with
 * file:line:col), current usage and membership are read once before the first request, then
 * refreshed on a timer; meters and rules reload on SIGHUP or a change of their files.
 */
async function startGovernance(services: Services, logger: Logger): Promise<{ stop(): void }> {
  const { config, governance: side } = services;
  const reloader = definitionsReloader({
    metersDir: config.meters.dir,
    governanceDir: config.governance.dir,
    // The array every part of the service holds: a reload replaces its contents.
    meters: services.meters as MeterDefinition[],
    governance: side.governance,
    onMetersReloaded: async (meters) => {
      await services.evaluation.registerVersions(meters);
      await side.currentUsage.refresh();
    },
    logger,
  });
  const rules = await loadRules(config.governance.dir, services.meters);
  if (rules.errors.length > 0) throw new MeterDefinitionError(rules.errors);
  side.governance.replaceRules(rules.rules);
  await side.currentUsage.refresh();
  await side.membership.refresh();
  // Alerts hear of every snapshot: a threshold is known within a refresh, not at the next evaluation.
  side.currentUsage.onRefresh((snapshot) => {
    services.alerts
      .observeCurrent(snapshot)
      .catch((err: unknown) => logger.warn({ err: String(err) }, 'alert check of current usage failed'));
  });
  side.currentUsage.start(config.governance.usageRefreshMs);
  reloader.start();
  logger.info({ rules: rules.rules.length, dir: config.governance.dir }, 'governance rules loaded');
  return {
    stop: () => {
      side.currentUsage.stop();
      reloader.stop();
    },
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  // `tsx src/main.ts` (npm run dev) is `billing-meter serve`.
  const { runCli } = await import('./cli/index.ts');
  process.exit(await runCli(['serve']));
}

/** Portal links are signed with PORTAL_LINK_SECRET, else a key derived from the admin key; neither: off. */
function portalSecret(config: Config): Buffer | undefined {
  const root = config.portalLinkSecret ?? config.adminApiKey;
  return root === undefined ? undefined : deriveSecret(root, 'portal');
}

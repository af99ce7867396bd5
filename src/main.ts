import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import cron from 'node-cron';
import { pino, type Logger } from 'pino';
import { inlinePreparer, WorkerPoolPreparer } from './collector/batch-preparer.ts';
import { IngestService } from './collector/ingest-service.ts';
import { MoesifRecordService } from './collector/moesif-records.ts';
import { Shipper, type RowSink } from './collector/shipper.ts';
import { Spool } from './collector/spool.ts';
import { JSON_EACH_ROW, tabSeparated } from './collector/row-format.ts';
import { REQUEST_LOG_COLUMNS } from './collector/request-log.ts';
import { ReconcileService } from './billing/stripe/reconcile.ts';
import { createStripeGateway, type StripeGateway } from './billing/stripe/stripe-gateway.ts';
import { withSyncLock } from './billing/stripe/sync-lock.ts';
import { SyncService, type SyncReport } from './billing/stripe/sync-service.ts';
import { ConfigError, loadConfig, type Config } from './config.ts';
import { createApp } from './http/app.ts';
import { createMetrics } from './http/metrics.ts';
import { IngestKeyService } from './keys/ingest-keys.ts';
import { EvaluationService } from './meters/evaluation.ts';
import { UsageQueryService } from './meters/usage-query.ts';
import { loadMeters } from './meters/load-meters.ts';
import type { MeterDefinition } from './meters/meter-schema.ts';
import { connectClickHouse, type ClickHouse } from './storage/clickhouse/clickhouse.ts';
import { ClickHouseIngestKeyRepository } from './storage/clickhouse/ingest-key-repository.ts';
import { ClickHouseMeterStore } from './storage/clickhouse/meter-store.ts';
import { migrate } from './storage/clickhouse/migrations.ts';
import { RequestLogReader } from './storage/clickhouse/request-log-reader.ts';
import { createStripeBilling, type StripeBilling } from './storage/clickhouse/stripe-customer-store.ts';
import { ClickHouseSyncStore } from './storage/clickhouse/sync-store.ts';

/**
 * The composition root: config → ClickHouse → repositories → use cases → HTTP app. The only module
 * that constructs concrete clients.
 */
export interface RunningService {
  url: string;
  port: number;
  clickhouse: ClickHouse;
  keys: IngestKeyService;
  meters: readonly MeterDefinition[];
  evaluation: EvaluationService;
  stripe: StripeSide;
  /** The scheduled job now: evaluate the meters, then sync Stripe. */
  runHourly(): Promise<{ evaluation: unknown; sync: SyncReport }>;
  /** Ships every spooled event to ClickHouse now. */
  flush(): Promise<void>;
  /** Stops taking requests, flushes what it can, closes everything. */
  stop(): Promise<void>;
}

const SPOOLED_TABLES = ['request_logs', 'companies', 'users', 'actions'] as const;
const KEY_REFRESH_MS = 5_000;

/** JSON logs to stdout; `toStderr` for CLI commands whose stdout is their output. */
export function createLogger(config: Pick<Config, 'logLevel'>, toStderr = false): Logger {
  return pino(
    {
      level: config.logLevel,
      base: { service: 'billing-meter' },
      // Defence in depth: whatever a future log line carries, these never reach the output.
      redact: [
        'req.headers.authorization',
        'req.headers.cookie',
        'req.headers["x-api-key"]',
        'req.headers["x-moesif-application-id"]',
        'key',
      ],
    },
    toStderr ? pino.destination(2) : undefined,
  );
}

/** Connects to ClickHouse (server or embedded) and brings its schema up to date. */
export async function openClickHouse(config: Config): Promise<ClickHouse> {
  const ch = await connectClickHouse(config.clickhouse);
  await migrate(ch);
  return ch;
}

export function keyService(config: Config, ch: ClickHouse): IngestKeyService {
  return new IngestKeyService(
    new ClickHouseIngestKeyRepository(ch),
    join(config.dataDir, 'ingest-keys.snapshot.json'),
  );
}

/** The Stripe side: mapping, webhooks, status, the sync and (with a key) the gateway. */
export interface StripeSide {
  billing: StripeBilling;
  syncStore: ClickHouseSyncStore;
  /** Undefined without STRIPE_SECRET_KEY (dry-run). */
  gateway: StripeGateway | undefined;
  sync: SyncService;
  /** One sync pass, at most one at a time per data directory (across processes). */
  runSync(meters: readonly MeterDefinition[]): Promise<SyncReport>;
  /** Resolves when no sync pass of this process is running or queued. */
  idle(): Promise<void>;
  reconcile: ReconcileService | undefined;
}

export function createStripeSide(
  config: Config,
  ch: ClickHouse,
  meters: readonly MeterDefinition[],
  usage: UsageQueryService,
  logger: Logger,
  now?: () => Date,
): StripeSide {
  const billing = createStripeBilling({
    ch,
    meters,
    usage,
    webhookSecret: config.stripe.webhookSecret,
    toleranceSeconds: config.stripe.webhookToleranceSeconds,
    logger,
    now,
  });
  const secretKey = config.stripe.secretKey;
  const gateway = secretKey
    ? createStripeGateway(
        { ...config.stripe, secretKey },
        {
          retry: {
            onRetry: ({ attempt, delayMs, error }) =>
              logger.warn({ attempt, delayMs, err: error.message }, 'stripe call failed; retrying'),
          },
        },
      )
    : undefined;
  const syncStore = new ClickHouseSyncStore(ch);
  const sync = new SyncService({
    store: syncStore,
    directory: billing.mappings,
    sender: gateway,
    stream: gateway && config.stripe.meterEventsApi === 'v2_stream' ? gateway : undefined,
    concurrency: config.stripe.syncConcurrency,
    logger,
    now,
  });
  const lockPath = join(config.dataDir, 'stripe-sync.lock');
  let inProcess: Promise<unknown> = Promise.resolve();
  const runSync = (list: readonly MeterDefinition[]) => {
    // One run at a time in this process (scheduled and on demand queue up), and per data directory.
    const run = inProcess.then(() => withSyncLock(lockPath, () => sync.run(list)));
    inProcess = run.catch(() => undefined);
    return run;
  };
  const reconcile = gateway ? new ReconcileService(syncStore, billing.mappings, gateway) : undefined;
  if (!gateway)
    logger.warn(
      'no STRIPE_SECRET_KEY: the stripe sync runs dry (the ledger and logs show what would be sent)',
    );
  return {
    billing,
    syncStore,
    gateway,
    sync,
    runSync,
    idle: () => inProcess.then(() => undefined),
    reconcile,
  };
}

export interface ServiceOptions {
  /**
   * The service's clock: evaluation, sync, the usage API and ingest's received time (which bounds the
   * accepted request times), so a test pinned to any date sees one consistent time. Default: the wall clock.
   */
  now?: () => Date;
}

export async function startService(
  config: Config,
  logger: Logger = createLogger(config),
  options: ServiceOptions = {},
): Promise<RunningService> {
  const clickhouse = await connectClickHouse(config.clickhouse);
  // A ClickHouse that is down at boot must not stop ingest: the spool takes events until it is back.
  let migrated = false;
  const ensureSchema = async () => {
    if (migrated) return;
    await migrate(clickhouse);
    migrated = true;
  };
  await ensureSchema().catch((err: unknown) =>
    logger.warn(
      { err: String(err) },
      'clickhouse unavailable at start; ingest will spool until it is reachable',
    ),
  );

  const meters = await loadMeterDefinitions(config.meters.dir, logger);
  const meterStore = new ClickHouseMeterStore(clickhouse);
  const evaluation = new EvaluationService(meterStore, meterStore, {
    latenessHours: config.meters.latenessHours,
    now: options.now,
  });
  const usage = new UsageQueryService(meterStore, meterStore, options.now);
  const stripe = createStripeSide(config, clickhouse, meters, usage, logger, options.now);
  await evaluation
    .registerVersions(meters)
    .catch((err: unknown) =>
      logger.warn({ err: String(err) }, 'could not record meter versions yet; the first evaluation will'),
    );

  const metrics = createMetrics();
  const runSync = async () => {
    try {
      const report = await stripe.runSync(meters);
      metrics.onSync(report);
      return report;
    } catch (err) {
      metrics.onSyncFailed();
      throw err;
    }
  };
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
      await ensureSchema();
      if (format.kind === 'TabSeparated') await clickhouse.insertTabSeparated(table, format.columns, body);
      else await clickhouse.insertJsonEachRow(table, body);
    },
  };
  const shipper = new Shipper({ spools, sink, intervalMs: config.flushIntervalMs, logger, events: metrics });
  shipper.start();

  const keys = keyService(config, clickhouse);
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
    metrics: metrics.ingest,
    now: receivedNow,
  });
  const moesifRecords = new MoesifRecordService(ingest, config.limits, config.headerAllowList, receivedNow);

  const logReader = new RequestLogReader(clickhouse);
  let pingCache: { at: number; ok: boolean } | undefined;
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
    recentLogs: (q) => logReader.recent(q),
    meters: {
      meters,
      versions: () => meterStore.versions(),
      usage,
      evaluate: (range) =>
        range ? evaluation.evaluateBetween(meters, range.from, range.to) : runEvaluation(),
    },
    stripe: stripe.billing,
    sync: {
      discrepancies: (filter) => stripe.syncStore.discrepancies(filter),
      held: () => stripe.sync.held(meters),
      run: async () => {
        await ensureSchema();
        return runSync();
      },
    },
    readiness: {
      clickhouseReachable: async () => {
        const now = Date.now();
        if (!pingCache || now - pingCache.at > 1000) pingCache = { at: now, ok: await clickhouse.ping() };
        return pingCache.ok;
      },
      spoolHasRoom: () => [...spools.values()].every((s) => s.hasRoom),
      spoolBytes: () => new Map([...spools].map(([table, spool]) => [table, spool.depthBytes])),
    },
  });

  const server = app.listen(config.port, config.host);
  await once(server, 'listening');
  server.keepAliveTimeout = 65_000;
  server.requestTimeout = 120_000;
  const port = (server.address() as AddressInfo).port;
  const url = `http://${config.host === '0.0.0.0' ? '127.0.0.1' : config.host}:${port}`;
  logger.info(
    { url, clickhouse: clickhouse.engine, database: clickhouse.database, spoolDir: config.spoolDir },
    'billing-meter listening',
  );

  const runEvaluation = async () => {
    await ensureSchema();
    const report = await evaluation.run(meters);
    logger.info(
      {
        ranges: report.ranges.length,
        closedThrough: report.closedThrough.toISOString(),
        lateOutsideWindow: report.lateOutsideWindow,
      },
      'meters evaluated',
    );
    if (report.lateOutsideWindow > 0) {
      logger.warn(
        { events: report.lateOutsideWindow, windowStart: report.windowStart.toISOString() },
        'events arrived after their lateness window and are not billed',
      );
    }
    return report;
  };
  // Every hour: evaluate, then bring Stripe up to date. A failed evaluation still lets the sync send
  // what earlier runs computed; a failed sync is resumed by the next one (the ledger knows where).
  const runHourly = async () => {
    const report = await runEvaluation().catch((err: unknown) => {
      logger.error({ err: String(err) }, 'meter evaluation failed; the next run catches up');
      return undefined;
    });
    const sync = await runSync();
    return { evaluation: report, sync };
  };
  const schedule = cron.schedule(
    config.meters.schedule,
    () =>
      runHourly().catch((err: unknown) =>
        logger.error({ err: String(err) }, 'stripe sync failed; the next run resumes it'),
      ),
    { timezone: 'Etc/UTC', noOverlap: true, name: 'meter-evaluation' },
  );

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      // 1. No new connections; in-flight requests finish (each ends only after its spool append).
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      await Promise.race([closed, delay(config.shutdownTimeoutMs)]);
      server.closeAllConnections();
      keys.stopRefreshing();
      await schedule.stop();
      // A sync pass in flight finishes (or is cut by the timeout: the ledger makes that safe to resume).
      await Promise.race([stripe.idle(), delay(config.shutdownTimeoutMs)]);
      // 2. Everything acknowledged is already durable in the spool; try to hand it to ClickHouse now.
      await preparer.close();
      await shipper.stop();
      for (const spool of spools.values()) await spool.close();
      await shipper
        .flush()
        .catch((err: unknown) =>
          logger.warn(
            { err: String(err) },
            'clickhouse unreachable at shutdown; events stay spooled for the next start',
          ),
        );
      await clickhouse.close().catch(() => undefined);
      logger.info('billing-meter stopped');
    })());

  return {
    url,
    port,
    clickhouse,
    keys,
    meters,
    evaluation,
    stripe,
    runHourly,
    flush: () => shipper.flush(),
    stop,
  };
}

export class MeterDefinitionError extends Error {}

/** The meters of a directory; any invalid file stops the boot with file:line:col and the reason. */
export async function loadMeterDefinitions(
  dir: string,
  logger: Pick<Logger, 'warn'>,
): Promise<MeterDefinition[]> {
  const { meters, errors } = await loadMeters(dir).catch((err: unknown) => {
    if (typeof err === 'object' && err !== null && 'code' in err && err.code === 'ENOENT') {
      logger.warn({ dir }, 'no meters directory; nothing will be metered');
      return { meters: [], errors: [] };
    }
    throw err;
  });
  if (errors.length > 0) throw new MeterDefinitionError(errors.map((e) => e.message).join('\n'));
  return meters.map((m) => m.definition);
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(2);
    }
    throw err;
  }
  const logger = createLogger(config);
  const service = await startService(config, logger).catch((err: unknown) => {
    if (err instanceof MeterDefinitionError) {
      console.error(`invalid meter definitions:\n${err.message}`);
      process.exit(1);
    }
    throw err;
  });
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      logger.info({ signal }, 'shutting down');
      void service.stop().then(() => process.exit(0));
    });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}

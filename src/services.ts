import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import { emailChannel } from './adapters/alerts/email-channel.ts';
import { webhookChannel } from './adapters/alerts/webhook-channel.ts';
import {
  AlertDeliveryService,
  type AlertChannel,
  type CrossingWithDeliveries,
} from './alerts/alert-delivery.ts';
import { AlertEngine, type CrossingFilter, type UsageObservation } from './alerts/alert-engine.ts';
import { observationsAfterEvaluation } from './alerts/evaluation-observations.ts';
import type { EvaluationReport } from './meters/evaluation.ts';
import { ClickHouseCrossingStore, ClickHouseDeliveryStore } from './storage/clickhouse/alert-store.ts';
import { OnboardingService } from './billing/stripe/onboarding.ts';
import { ReconcileService } from './billing/stripe/reconcile.ts';
import { BillingStatusService, type BillingStatusDeps } from './billing/stripe/billing-status.ts';
import { CustomerMappingService } from './billing/stripe/customer-directory.ts';
import { createStripeGateway, type StripeGateway } from './adapters/stripe/stripe-gateway.ts';
import { withSyncLock } from './billing/stripe/sync-lock.ts';
import type { SyncFence } from './billing/stripe/ports.ts';
import { createZooKeeperLease, LeaseHeldElsewhereError, type Lease } from './coordination/zookeeper-lease.ts';
import { SyncService, type SyncReport } from './billing/stripe/sync-service.ts';
import { StripeWebhookService, type BillingLogger } from './billing/stripe/webhooks.ts';
import type { Config } from './config.ts';
import { CurrentUsage, type CurrentUsageSnapshot } from './governance/current-usage.ts';
import { Governance } from './governance/governance.ts';
import { Membership } from './governance/membership.ts';
import { IngestKeyService } from './keys/ingest-keys.ts';
import { schemaGuard, type SchemaGuard } from './lifecycle/schema-guard.ts';
import { EvaluationService } from './meters/evaluation.ts';
import { loadMeterDefinitions } from './meters/load-meters.ts';
import type { MeterDefinition } from './meters/meter-schema.ts';
import { UsageQueryService } from './meters/usage-query.ts';
import { connectClickHouse, type ClickHouse } from './storage/clickhouse/clickhouse.ts';
import {
  EmbeddedEngineBusyError,
  embeddedOwner,
  recordEmbeddedOwner,
  releaseEmbeddedOwner,
} from './storage/clickhouse/embedded-owner.ts';
import { ClickHouseCustomerIndex } from './storage/clickhouse/customer-index.ts';
import { ClickHouseIngestKeyRepository } from './storage/clickhouse/ingest-key-repository.ts';
import { ClickHouseMeterStore } from './storage/clickhouse/meter-store.ts';
import { migrate } from './storage/clickhouse/migrations.ts';
import { RequestLogReader } from './storage/clickhouse/request-log-reader.ts';
import {
  ClickHouseBillingStateStore,
  ClickHouseCustomerMappingStore,
  ClickHouseWebhookEventStore,
} from './storage/clickhouse/stripe-customer-store.ts';
import { ClickHouseSyncStore } from './storage/clickhouse/sync-store.ts';

/**
 * The one wiring site: config → ClickHouse → repositories → use cases. `startService` (main.ts) and
 * every CLI command build their parts here, so a command runs exactly what the service runs. Nothing
 * else constructs a client.
 */
export interface Services {
  config: Config;
  logger: Logger;
  clickhouse: ClickHouse;
  schema: SchemaGuard;
  meters: readonly MeterDefinition[];
  meterStore: ClickHouseMeterStore;
  evaluation: EvaluationService;
  usage: UsageQueryService;
  keys: IngestKeyService;
  logReader: RequestLogReader;
  stripe: StripeSide;
  governance: GovernanceSide;
  alerts: AlertsSide;
  /** Tells the next process that tries the embedded engine where this one serves. */
  announce(url: string): Promise<void>;
  /** Closes the leases (no session opens after), then the ClickHouse connection (and the embedded engine's lock). */
  close(): Promise<void>;
}

export interface BuildOptions {
  logger?: Logger;
  /** The clock of evaluation, sync and the usage API (tests and the demo drive it). */
  now?: () => Date;
  /**
   * `eager` (CLI commands): migrate before anything else, and fail if ClickHouse cannot be reached.
   * `lazy` (the service): the caller tries at start and every write tries again (SchemaGuard).
   */
  migrate?: 'eager' | 'lazy';
  /** The meter definitions, when the caller has them already (the demo adjusts them). */
  meters?: readonly MeterDefinition[];
  /** Who opens the embedded engine (`serve`, `keys list`…): named to the next process that tries. */
  command?: string;
}

/** Connects to ClickHouse; for the embedded engine, first checks that no live process holds it. */
async function openEngine(config: Config, command: string): Promise<ClickHouse> {
  const target = config.clickhouse;
  if (target.kind !== 'embedded') return connectClickHouse(target);
  const owner = embeddedOwner(target.path);
  if (owner) throw new EmbeddedEngineBusyError(target.path, owner);
  let ch: ClickHouse;
  try {
    ch = await connectClickHouse(target);
  } catch (err) {
    if ((err as { code?: unknown }).code === 'CHDB_CONNECTION')
      throw new EmbeddedEngineBusyError(target.path, undefined, { cause: err });
    throw err;
  }
  await recordEmbeddedOwner(target.path, { command });
  return ch;
}

export async function buildServices(config: Config, options: BuildOptions = {}): Promise<Services> {
  const logger = options.logger ?? createLogger(config);
  const meters =
    options.meters ??
    (await loadMeterDefinitions(config.meters.dir, {
      onMissing: (dir) => logger.warn({ dir }, 'no meters directory; nothing will be metered'),
    }));
  const clickhouse = await openEngine(config, options.command ?? 'command');
  const schema = schemaGuard(async () => {
    await migrate(clickhouse);
  });
  if (options.migrate === 'eager') {
    try {
      await schema.ensure();
    } catch (err) {
      await clickhouse.close().catch(() => undefined);
      throw err;
    }
  }
  const meterStore = new ClickHouseMeterStore(clickhouse);
  const evaluation = new EvaluationService(meterStore, meterStore, {
    latenessHours: config.meters.latenessHours,
    now: options.now,
  });
  const usage = new UsageQueryService(meterStore, meterStore, options.now);
  const keys = new IngestKeyService(
    new ClickHouseIngestKeyRepository(clickhouse),
    join(config.dataDir, 'ingest-keys.snapshot.json'),
  );
  const stripe = createStripeSide(config, clickhouse, meters, usage, logger, options.now);
  const governance = createGovernanceSide(meters, meterStore, stripe.billing, logger, {
    now: options.now,
    settledAfterHours: config.meters.latenessHours,
  });
  const alerts = createAlerts(config, clickhouse, meters, usage, logger, options.now);
  return {
    config,
    logger,
    clickhouse,
    schema,
    meters,
    meterStore,
    evaluation,
    usage,
    keys,
    logReader: new RequestLogReader(clickhouse),
    stripe,
    governance,
    alerts,
    announce: async (url) => {
      if (config.clickhouse.kind === 'embedded')
        await recordEmbeddedOwner(config.clickhouse.path, { command: options.command ?? 'serve', url });
    },
    close: async () => {
      await stripe.lease?.close();
      await alerts.lease?.close();
      await clickhouse.close();
      if (config.clickhouse.kind === 'embedded') await releaseEmbeddedOwner(config.clickhouse.path);
    },
  };
}

/**
 * JSON logs to stdout (what log pipelines read); on a terminal, the same lines made readable by
 * pino-pretty. `toStderr` for CLI commands whose stdout is their output.
 */
export function createLogger(
  config: Pick<Config, 'logLevel'>,
  options: { toStderr?: boolean; pretty?: boolean } = {},
): Logger {
  const fd = options.toStderr ? 2 : 1;
  const pretty = options.pretty ?? (fd === 1 ? process.stdout.isTTY : process.stderr.isTTY) === true;
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
    pretty
      ? pino.transport({ target: 'pino-pretty', options: { destination: fd, translateTime: 'SYS:HH:MM:ss' } })
      : pino.destination(fd),
  );
}

/**
 * How long a replica's sync waits for another's to end: replicas fire at the same minute, and the one
 * that waited then runs a pass of its own (finding nothing left, or resuming what a dead holder left).
 */
const LEASE_WAIT_MS = 5 * 60_000;

/** The Stripe side: mapping, webhooks, status, the sync and (with a key) the gateway. */
export interface StripeSide {
  billing: StripeBilling;
  syncStore: ClickHouseSyncStore;
  /** Undefined without STRIPE_SECRET_KEY (dry-run). */
  gateway: StripeGateway | undefined;
  sync: SyncService;
  /** One sync pass, at most one at a time per data directory (across processes). */
  runSync(meters: readonly MeterDefinition[], fence?: SyncFence): Promise<SyncReport>;
  /** Resolves when no sync pass of this process is running or queued. */
  idle(): Promise<void>;
  /** COORDINATION_URL's lease, which the sync runs under instead of the file lock. */
  lease: Lease | undefined;
  reconcile: ReconcileService | undefined;
  /** Customers subscribed to the pushed prices (`customers subscribe`); undefined without a key. */
  onboarding: OnboardingService | undefined;
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
  const lease =
    config.coordination &&
    createZooKeeperLease({ ...config.coordination, name: 'stripe-sync', waitMs: LEASE_WAIT_MS });
  let inProcess: Promise<unknown> = Promise.resolve();
  const runSync = (list: readonly MeterDefinition[], held?: SyncFence) => {
    // One run at a time in this process (scheduled and on demand queue up), and per data directory, or
    // with COORDINATION_URL among all replicas, fenced (coordination/zookeeper-lease.ts); `held`: under
    // the lease the caller holds (the hourly job's).
    const run = inProcess.then(() =>
      held
        ? sync.run(list, held)
        : lease
          ? lease.run((fence) => sync.run(list, fence))
          : withSyncLock(lockPath, () => sync.run(list)),
    );
    inProcess = run.catch(() => undefined);
    return run;
  };
  const reconcile = gateway ? new ReconcileService(syncStore, billing.mappings, gateway) : undefined;
  const onboarding = gateway
    ? new OnboardingService({
        stripe: gateway,
        mappings: billing.mappings,
        meters,
        now: now ?? (() => new Date()),
      })
    : undefined;
  return {
    billing,
    syncStore,
    gateway,
    sync,
    runSync,
    idle: () => inProcess.then(() => undefined),
    lease,
    reconcile,
    onboarding,
  };
}

export interface StripeBillingOptions {
  ch: ClickHouse;
  meters: readonly MeterDefinition[];
  /** The usage port of billing status (UsageQueryService's customersPeriod). */
  usage: BillingStatusDeps['usage'];
  /** config.stripe.webhookSecret; undefined: the webhook endpoint answers 503 webhooks_disabled. */
  webhookSecret: string | undefined;
  /** config.stripe.webhookToleranceSeconds. */
  toleranceSeconds: number;
  logger: BillingLogger;
  now?: () => Date;
}

export interface StripeBilling {
  mappings: CustomerMappingService;
  webhooks: StripeWebhookService;
  status: BillingStatusService;
  states: ClickHouseBillingStateStore;
  customers: ClickHouseCustomerIndex;
}

/** Governance: current-period usage from the logs, membership from it and billing, the rules. */
export interface GovernanceSide {
  currentUsage: CurrentUsage;
  membership: Membership;
  governance: Governance;
}

export function createGovernanceSide(
  meters: readonly MeterDefinition[],
  source: ClickHouseMeterStore,
  billing: StripeBilling,
  logger: Logger,
  /** settledAfterHours: LATENESS_HOURS (older hours are read once, see CurrentUsage). */
  options: { now?: () => Date; settledAfterHours?: number } = {},
): GovernanceSide {
  const currentUsage = new CurrentUsage({
    source,
    meters: () => meters,
    now: options.now,
    settledAfterHours: options.settledAfterHours,
    onError: (err) => logger.warn({ err: String(err) }, 'current usage not refreshed; the last one stays'),
  });
  const membership = new Membership({
    usage: currentUsage,
    directory: billing.mappings,
    states: billing.states,
    customers: billing.customers,
    meters: () => meters,
    onError: (err) => logger.warn({ err: String(err) }, 'membership not refreshed; the last one stays'),
  });
  currentUsage.onRefresh(() => void membership.refresh());
  return { currentUsage, membership, governance: new Governance(membership) };
}

/** The Stripe customer mapping, webhooks and billing status over ClickHouse. */
export function createStripeBilling(o: StripeBillingOptions): StripeBilling {
  const now = o.now ?? (() => new Date());
  const mappings = new CustomerMappingService(new ClickHouseCustomerMappingStore(o.ch), now);
  const states = new ClickHouseBillingStateStore(o.ch);
  const webhooks = new StripeWebhookService({
    events: new ClickHouseWebhookEventStore(o.ch),
    states,
    mappings,
    secret: o.webhookSecret,
    toleranceSeconds: o.toleranceSeconds,
    logger: o.logger,
    now,
  });
  const customers = new ClickHouseCustomerIndex(o.ch);
  const status = new BillingStatusService({
    directory: mappings,
    states,
    usage: o.usage,
    meters: o.meters,
    customers,
  });
  return { mappings, webhooks, status, states, customers };
}

/** Alerts: thresholds of the meters, the crossings outbox in ClickHouse, and the configured channels. */
export interface AlertsSide {
  engine: AlertEngine;
  crossings: ClickHouseCrossingStore;
  delivery: AlertDeliveryService;
  /** COORDINATION_URL's lease `alert-delivery`, which delivery runs under; undefined: one process. */
  lease: Lease | undefined;
  /** Records the crossings an evaluation made (the observation source until a per-minute one), then starts sending them. */
  afterEvaluation(report: EvaluationReport): Promise<void>;
  /**
   * Records the crossings in a current-period usage snapshot (governance's per-minute read of the
   * logs), so a threshold is known within a minute of the usage that crossed it, not at the next
   * evaluation; then starts sending them. A crossing is recorded once per period whichever source saw
   * it first.
   */
  observeCurrent(snapshot: CurrentUsageSnapshot): Promise<void>;
  /** Crossings, newest first, with their delivery (GET /v1/alerts, `alerts list`). */
  list(filter: CrossingFilter): Promise<CrossingWithDeliveries[]>;
}

export function createAlerts(
  config: Config,
  ch: ClickHouse,
  meters: readonly MeterDefinition[],
  usage: UsageQueryService,
  logger: Logger,
  now?: () => Date,
): AlertsSide {
  const crossings = new ClickHouseCrossingStore(ch);
  const engine = new AlertEngine(crossings, meters, now);
  const channels: AlertChannel[] = [];
  if (config.alerts.webhook) channels.push(webhookChannel({ ...config.alerts.webhook, now }));
  if (config.alerts.email) channels.push(emailChannel(config.alerts.email));
  // Among replicas, one delivers at a time; one that finds the lease held skips the tick (the holder is
  // delivering), so the wait is none: a dead holder's node goes with its session, and a later tick takes it.
  const lease =
    config.coordination &&
    createZooKeeperLease({ ...config.coordination, name: 'alert-delivery', waitMs: 0 });
  const delivery = new AlertDeliveryService({
    crossings,
    deliveries: new ClickHouseDeliveryStore(ch),
    channels,
    units: new Map(meters.map((m) => [m.name, m.unit])),
    maxAttempts: config.alerts.maxAttempts,
    backoffBaseMs: config.alerts.retryBaseMs,
    backoffMaxMs: config.alerts.retryMaxMs,
    lookbackMs: 35 * 86_400_000,
    lease: lease && {
      runIfFree: async (pass) => {
        try {
          return await lease.run(pass);
        } catch (err) {
          if (!(err instanceof LeaseHeldElsewhereError)) throw err;
          logger.debug({ holder: err.holder }, 'alerts due, another replica is delivering them');
          return undefined;
        }
      },
    },
    now,
    logger,
  });
  const watched = meters.filter((m) => engine.meters.includes(m.name));
  return {
    engine,
    crossings,
    delivery,
    lease,
    list: async (filter) => delivery.describe(await crossings.list(filter)),
    afterEvaluation: async (report) => {
      if (watched.length === 0) return;
      await observe(await observationsAfterEvaluation(usage, watched, report));
    },
    observeCurrent: async (snapshot) => {
      if (watched.length === 0) return;
      const observations: UsageObservation[] = [];
      for (const meter of watched)
        for (const [customer, quantity] of snapshot.usage.get(meter.name) ?? [])
          observations.push({
            customer,
            meter: meter.name,
            periodStart: snapshot.period.start,
            quantity,
            observedAt: snapshot.asOf,
          });
      await observe(observations);
    },
  };

  async function observe(observations: UsageObservation[]): Promise<void> {
    const fresh = await engine.observe(observations);
    if (fresh.length === 0) return;
    logger.info({ alerts: fresh.map((c) => c.id) }, 'alert thresholds crossed');
    // Recorded: sent now, without holding up the evaluation on a slow receiver (what this pass does
    // not send, the service's delivery timer does).
    void delivery
      .deliverDue()
      .catch((err: unknown) => logger.warn({ err: String(err) }, 'alert delivery pass failed; retrying'));
  }
}

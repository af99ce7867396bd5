import { resolve } from 'node:path';
import { z } from 'zod';
import { defaultWorkerCount } from './collector/body-to-rows-threads.ts';
import { isSensitiveHeader } from './collector/formats/header-policy.ts';

/**
 * The only place that reads process.env. Every variable is validated at once, so a bad deployment
 * hears about all of its mistakes in one message instead of one per restart.
 */

const DEFAULT_HEADER_ALLOW_LIST = ['content-type', 'user-agent', 'accept', 'x-api-version', 'x-request-id'];

const booleanString = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'], { message: 'must be true or false' })
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

const positiveInt = (def: number) => z.coerce.number().int().positive().default(def);

const byteSize = (def: string) =>
  z
    .string()
    .default(def)
    .transform((v, ctx) => {
      const m = /^(\d+)\s*(b|kb|kib|mb|mib|gb|gib)?$/i.exec(v.trim());
      if (!m) {
        ctx.addIssue({ code: 'custom', message: 'must be a size like 1048576, 512kb or 50mb' });
        return z.NEVER;
      }
      const unit = (m[2] ?? 'b').toLowerCase();
      const factor =
        unit === 'b' ? 1 : unit.startsWith('k') ? 1024 : unit.startsWith('m') ? 1024 ** 2 : 1024 ** 3;
      return Number(m[1]) * factor;
    });

const envSchema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  HOST: z.string().default('0.0.0.0'),
  CLICKHOUSE_URL: z.url({ protocol: /^https?$/, message: 'must be an http(s) URL' }).optional(),
  CLICKHOUSE_USER: z.string().default('default'),
  CLICKHOUSE_PASSWORD: z.string().default(''),
  CLICKHOUSE_DATABASE: z
    .string()
    .regex(/^[a-zA-Z_][a-zA-Z0-9_]{0,62}$/, 'must be a plain identifier (letters, digits, _)')
    .default('billing_meter'),
  /** A <remote_servers> cluster of CLICKHOUSE_URL's server: tables are Replicated and Distributed over it. */
  CLICKHOUSE_CLUSTER: z
    .string()
    .regex(/^[a-zA-Z_][a-zA-Z0-9_]{0,62}$/, 'must be a plain identifier (letters, digits, _)')
    .optional(),
  /**
   * Cluster mode: every insert waits for this many replicas of its shard (insert_quorum), and reads see
   * every quorum insert (select_sequential_consistency). At most the replicas of the smallest shard.
   */
  CLICKHOUSE_INSERT_QUORUM: z.coerce.number().int().min(2).max(16).optional(),
  /**
   * ZooKeeper (or ClickHouse Keeper) for what must run once among replicas: zk://host:port[,…]/root.
   * Unset: a file lock in DATA_DIR, which only keeps the processes of one machine apart.
   */
  COORDINATION_URL: z
    .string()
    .regex(
      /^zk:\/\/[\w.-]+:\d+(,[\w.-]+:\d+)*(\/[\w.-]+)*\/?$/,
      'must be zk://host:port[,host:port…][/root], e.g. zk://127.0.0.1:2181/billing-meter',
    )
    .optional(),
  /** The ZooKeeper session timeout: how long a replica that went silent holds the lease. */
  COORDINATION_SESSION_TIMEOUT_MS: z.coerce.number().int().min(1000).max(60_000).default(10_000),
  DATA_DIR: z.string().min(1).default('./data'),
  SPOOL_DIR: z.string().min(1).optional(),
  /** Largest the spool may grow before ingest answers 503. */
  SPOOL_MAX_BYTES: byteSize('1gb'),
  ADMIN_API_KEY: z.string().min(32, 'must be at least 32 characters (use `openssl rand -hex 32`)').optional(),
  /** Signs customer portal links; default: a key derived from ADMIN_API_KEY. */
  PORTAL_LINK_SECRET: z
    .string()
    .min(32, 'must be at least 32 characters (use `openssl rand -hex 32`)')
    .optional(),
  MAX_BODY_BYTES: byteSize('50mb'),
  MAX_EVENT_BYTES: byteSize('1mb'),
  MAX_EVENTS_PER_REQUEST: positiveInt(100_000),
  /** Accepted request times: at most this far in the past (Stripe accepts meter events up to 35 days old). */
  INGEST_MAX_PAST_DAYS: z.coerce.number().positive().max(3650).default(35),
  /** ... and at most this far in the future (clock skew; Stripe allows 5 minutes). */
  INGEST_MAX_FUTURE_SECONDS: z.coerce.number().int().min(0).max(86_400).default(300),
  HEADER_ALLOW_LIST: z
    .string()
    .default(DEFAULT_HEADER_ALLOW_LIST.join(','))
    .transform((v, ctx) => {
      const names = v
        .split(',')
        .map((s) => s.trim().toLowerCase())
        .filter((s) => s.length > 0);
      const bad = names.filter((n) => !/^[a-z0-9!#$%&'*+.^_`|~-]+$/.test(n));
      if (bad.length > 0) ctx.addIssue({ code: 'custom', message: `not header names: ${bad.join(', ')}` });
      const sensitive = names.filter(isSensitiveHeader);
      if (sensitive.length > 0)
        ctx.addIssue({
          code: 'custom',
          message: `credential headers are never stored and may not be allow-listed: ${sensitive.join(', ')}`,
        });
      return new Set(names) as ReadonlySet<string>;
    }),
  /**
   * Refuse (400 for that event, naming the field) an event that names no customer. Off: it is stored,
   * billed by no meter, and counted (`unattributed` in the answer, billing_meter_events_unattributed_total).
   */
  REQUIRE_CUSTOMER: booleanString.default(false),
  /** How often spooled events are shipped to ClickHouse. */
  FLUSH_INTERVAL_MS: z.coerce.number().int().min(10).max(60_000).default(250),
  /** Worker threads that parse and check large batches; 0 keeps all of it on the event loop. */
  INGEST_WORKERS: z.coerce.number().int().min(0).max(32).default(defaultWorkerCount()),
  /** Where the meter definitions are (one YAML file each). */
  METERS_DIR: z.string().min(1).default('./meters'),
  /** Where the governance rules are (one YAML file each); a missing directory is no rules. */
  GOVERNANCE_DIR: z.string().min(1).default('./governance'),
  /** How often current-period usage is read from the logs for over-quota membership (ms). */
  GOVERNANCE_USAGE_REFRESH_MS: z.coerce.number().int().min(100).max(3_600_000).default(60_000),
  /** When meters are evaluated (cron, UTC): by default at minute 5 of every hour. */
  METER_SCHEDULE: z
    .string()
    .default('5 * * * *')
    // The shape only: node-cron (main.ts) checks the fields themselves when it schedules.
    .refine(
      (v) => /^[\d*,/-]+( [\d*,/-]+){4}$/.test(v.trim()),
      'must be a 5-field cron expression such as "5 * * * *"',
    ),
  /** Closed hours re-evaluated on every run, so late events are billed; at most Stripe's 35 days. */
  LATENESS_HOURS: z.coerce
    .number()
    .int()
    .min(0)
    .max(35 * 24)
    .default(48),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Trust X-Forwarded-* from a proxy in front. */
  TRUST_PROXY: booleanString.default(false),
  SHUTDOWN_TIMEOUT_MS: z.coerce.number().int().min(0).default(25_000),
  /** Unset: dry-run (the ledger and logs show what would have been sent; nothing reaches Stripe). */
  STRIPE_SECRET_KEY: z
    .string()
    .regex(
      /^(sk|rk)_(test|live)_[A-Za-z0-9]+$/,
      'must be a Stripe secret or restricted key (sk_test_…, sk_live_…, rk_…)',
    )
    .optional(),
  /** Another Stripe API origin (an emulator, a proxy): http(s)://host[:port], no path. */
  STRIPE_API_BASE: z
    .url({ protocol: /^https?$/, message: 'must be an http(s) URL such as http://127.0.0.1:12111' })
    .refine((v) => ['', '/'].includes(new URL(v).pathname), 'must be an origin without a path')
    .optional(),
  STRIPE_WEBHOOK_SECRET: z
    .string()
    .regex(/^whsec_\S+$/, 'must be a webhook signing secret (whsec_…)')
    .optional(),
  /** Webhooks signed longer ago than this are refused (replay protection); Stripe's libraries use 300. */
  STRIPE_WEBHOOK_TOLERANCE_SECONDS: z.coerce.number().int().min(1).max(86_400).default(300),
  /** Calls per second to Stripe. Default: 1000 with a live key, 25 with a test key (Stripe's own limits). */
  STRIPE_RATE_LIMIT_PER_SECOND: z.coerce.number().positive().max(10_000).optional(),
  /** `v1`: one meter event per call. `v2_stream`: the high-throughput v2 meter event stream (100 per call). */
  STRIPE_METER_EVENTS_API: z.enum(['v1', 'v2_stream'], { message: 'must be v1 or v2_stream' }).default('v1'),
  /** Attempts per call on 429, 5xx and network errors (exponential backoff with jitter between them). */
  STRIPE_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(20).default(6),
  STRIPE_TIMEOUT_MS: z.coerce.number().int().min(100).max(120_000).default(20_000),
  /** Calls in flight at once across customers (one per customer and meter at most). */
  SYNC_CONCURRENCY: z.coerce.number().int().min(1).max(1000).default(128),
  /** Where alerts are POSTed (signed like Stripe's webhooks with ALERT_WEBHOOK_SECRET); unset: no webhook. */
  ALERT_WEBHOOK_URL: z.url({ protocol: /^https?$/, message: 'must be an http(s) URL' }).optional(),
  ALERT_WEBHOOK_SECRET: z
    .string()
    .min(24, 'must be at least 24 characters (use `openssl rand -hex 32`)')
    .optional(),
  ALERT_WEBHOOK_TIMEOUT_MS: z.coerce.number().int().min(100).max(120_000).default(10_000),
  /** smtp(s)://user:pass@host:port for alert emails; with ALERT_EMAIL_TO and ALERT_EMAIL_FROM. */
  SMTP_URL: z.url({ protocol: /^smtps?$/, message: 'must be an smtp:// or smtps:// URL' }).optional(),
  ALERT_EMAIL_TO: z.string().min(3).optional(),
  ALERT_EMAIL_FROM: z.string().min(3).optional(),
  /** Attempts per alert and channel; between them 2^n × ALERT_RETRY_BASE_MS, at most ALERT_RETRY_MAX_MS. */
  ALERT_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(50).default(10),
  ALERT_RETRY_BASE_MS: z.coerce.number().int().min(10).max(86_400_000).default(30_000),
  ALERT_RETRY_MAX_MS: z.coerce.number().int().min(10).max(86_400_000).default(3_600_000),
  /** How often recorded alerts that are due are sent (new ones go out at once). */
  ALERT_DELIVERY_INTERVAL_MS: z.coerce.number().int().min(50).max(3_600_000).default(5_000),
});

/** What no single variable can say: the alert channels need their companions. */
const checkedEnvSchema = envSchema.superRefine((e, ctx) => {
  // Without the secret a receiver could not tell our alerts from anyone's.
  if (e.ALERT_WEBHOOK_URL && !e.ALERT_WEBHOOK_SECRET)
    ctx.addIssue({
      code: 'custom',
      path: ['ALERT_WEBHOOK_SECRET'],
      message: 'is required with ALERT_WEBHOOK_URL',
    });
  if (e.SMTP_URL && (!e.ALERT_EMAIL_TO || !e.ALERT_EMAIL_FROM))
    ctx.addIssue({
      code: 'custom',
      path: ['ALERT_EMAIL_TO'],
      message: 'ALERT_EMAIL_TO and ALERT_EMAIL_FROM are required with SMTP_URL',
    });
});

export type Config = {
  port: number;
  host: string;
  clickhouse:
    | {
        kind: 'server';
        url: string;
        username: string;
        password: string;
        database: string;
        /** CLICKHOUSE_CLUSTER */
        cluster?: string;
        /** CLICKHOUSE_INSERT_QUORUM */
        insertQuorum?: number;
      }
    | { kind: 'embedded'; path: string; database: string };
  /** COORDINATION_URL split; undefined: the file lock. */
  coordination: { hosts: string; root: string; sessionTimeoutMs: number } | undefined;
  dataDir: string;
  spoolDir: string;
  spoolMaxBytes: number;
  flushIntervalMs: number;
  adminApiKey: string | undefined;
  portalLinkSecret: string | undefined;
  limits: {
    maxBodyBytes: number;
    maxEventBytes: number;
    maxEventsPerRequest: number;
    maxPastMs: number;
    maxFutureMs: number;
  };
  headerAllowList: ReadonlySet<string>;
  /** REQUIRE_CUSTOMER: an event without a customer is rejected instead of stored unattributed. */
  requireCustomer: boolean;
  ingestWorkers: number;
  meters: { dir: string; schedule: string; latenessHours: number };
  governance: { dir: string; usageRefreshMs: number };
  logLevel: z.infer<typeof envSchema>['LOG_LEVEL'];
  trustProxy: boolean;
  shutdownTimeoutMs: number;
  stripe: {
    /** Undefined: dry-run. */
    secretKey: string | undefined;
    mode: 'test' | 'live';
    api: { protocol: 'http' | 'https'; host: string; port: number } | undefined;
    webhookSecret: string | undefined;
    webhookToleranceSeconds: number;
    rateLimitPerSecond: number;
    meterEventsApi: 'v1' | 'v2_stream';
    maxAttempts: number;
    timeoutMs: number;
    syncConcurrency: number;
  };
  alerts: {
    webhook: { url: string; secret: string; timeoutMs: number } | undefined;
    email: { smtpUrl: string; to: string; from: string } | undefined;
    maxAttempts: number;
    retryBaseMs: number;
    retryMaxMs: number;
    deliveryIntervalMs: number;
  };
};

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Parses an environment (process.env by default) into a Config, or throws a ConfigError naming every bad variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  // An empty variable means "unset": `FOO=` in a compose file should not be a validation error.
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = checkedEnvSchema.safeParse(present);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => `${i.path.join('.') || '(env)'}: ${i.message}`));
  }
  const e = parsed.data;
  if (e.CLICKHOUSE_CLUSTER && !e.CLICKHOUSE_URL)
    throw new ConfigError(['CLICKHOUSE_CLUSTER: needs CLICKHOUSE_URL (a server of that cluster)']);
  if (e.CLICKHOUSE_INSERT_QUORUM && !e.CLICKHOUSE_CLUSTER)
    throw new ConfigError(['CLICKHOUSE_INSERT_QUORUM: needs CLICKHOUSE_CLUSTER']);
  const dataDir = resolve(e.DATA_DIR);
  return {
    port: e.PORT,
    host: e.HOST,
    clickhouse: e.CLICKHOUSE_URL
      ? {
          kind: 'server',
          url: e.CLICKHOUSE_URL,
          username: e.CLICKHOUSE_USER,
          password: e.CLICKHOUSE_PASSWORD,
          database: e.CLICKHOUSE_DATABASE,
          ...(e.CLICKHOUSE_CLUSTER ? { cluster: e.CLICKHOUSE_CLUSTER } : {}),
          ...(e.CLICKHOUSE_INSERT_QUORUM ? { insertQuorum: e.CLICKHOUSE_INSERT_QUORUM } : {}),
        }
      : { kind: 'embedded', path: resolve(dataDir, 'clickhouse'), database: e.CLICKHOUSE_DATABASE },
    coordination: e.COORDINATION_URL ? coordinationConfig(e.COORDINATION_URL, e) : undefined,
    dataDir,
    spoolDir: resolve(e.SPOOL_DIR ?? resolve(dataDir, 'spool')),
    spoolMaxBytes: e.SPOOL_MAX_BYTES,
    flushIntervalMs: e.FLUSH_INTERVAL_MS,
    adminApiKey: e.ADMIN_API_KEY,
    portalLinkSecret: e.PORTAL_LINK_SECRET,
    limits: {
      maxBodyBytes: e.MAX_BODY_BYTES,
      maxEventBytes: e.MAX_EVENT_BYTES,
      maxEventsPerRequest: e.MAX_EVENTS_PER_REQUEST,
      maxPastMs: e.INGEST_MAX_PAST_DAYS * 86_400_000,
      maxFutureMs: e.INGEST_MAX_FUTURE_SECONDS * 1000,
    },
    headerAllowList: e.HEADER_ALLOW_LIST,
    requireCustomer: e.REQUIRE_CUSTOMER,
    ingestWorkers: e.INGEST_WORKERS,
    meters: { dir: resolve(e.METERS_DIR), schedule: e.METER_SCHEDULE, latenessHours: e.LATENESS_HOURS },
    governance: { dir: resolve(e.GOVERNANCE_DIR), usageRefreshMs: e.GOVERNANCE_USAGE_REFRESH_MS },
    logLevel: e.LOG_LEVEL,
    trustProxy: e.TRUST_PROXY,
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    stripe: stripeConfig(e),
    alerts: {
      webhook:
        e.ALERT_WEBHOOK_URL && e.ALERT_WEBHOOK_SECRET
          ? {
              url: e.ALERT_WEBHOOK_URL,
              secret: e.ALERT_WEBHOOK_SECRET,
              timeoutMs: e.ALERT_WEBHOOK_TIMEOUT_MS,
            }
          : undefined,
      email:
        e.SMTP_URL && e.ALERT_EMAIL_TO && e.ALERT_EMAIL_FROM
          ? { smtpUrl: e.SMTP_URL, to: e.ALERT_EMAIL_TO, from: e.ALERT_EMAIL_FROM }
          : undefined,
      maxAttempts: e.ALERT_MAX_ATTEMPTS,
      retryBaseMs: e.ALERT_RETRY_BASE_MS,
      retryMaxMs: e.ALERT_RETRY_MAX_MS,
      deliveryIntervalMs: e.ALERT_DELIVERY_INTERVAL_MS,
    },
  };
}

function coordinationConfig(url: string, e: z.infer<typeof envSchema>): NonNullable<Config['coordination']> {
  const rest = url.slice('zk://'.length);
  const slash = rest.indexOf('/');
  const root = slash < 0 ? '' : rest.slice(slash).replace(/\/+$/, '');
  return {
    hosts: slash < 0 ? rest : rest.slice(0, slash),
    root: root || '/billing-meter',
    sessionTimeoutMs: e.COORDINATION_SESSION_TIMEOUT_MS,
  };
}

/** Stripe's documented limits: meter events take 1000 calls/s in live mode; test mode allows 25
 * operations/s. Defaulting to them keeps a default configuration from earning 429s. */
const STRIPE_DEFAULT_RATE = { live: 1000, test: 25 } as const;

function stripeConfig(e: z.infer<typeof envSchema>): Config['stripe'] {
  const mode = e.STRIPE_SECRET_KEY?.includes('_live_') ? 'live' : 'test';
  let api: Config['stripe']['api'];
  if (e.STRIPE_API_BASE) {
    const url = new URL(e.STRIPE_API_BASE);
    const protocol = url.protocol === 'http:' ? 'http' : 'https';
    api = {
      protocol,
      host: url.hostname,
      port: url.port ? Number(url.port) : protocol === 'http' ? 80 : 443,
    };
  }
  return {
    secretKey: e.STRIPE_SECRET_KEY,
    mode,
    api,
    webhookSecret: e.STRIPE_WEBHOOK_SECRET,
    webhookToleranceSeconds: e.STRIPE_WEBHOOK_TOLERANCE_SECONDS,
    rateLimitPerSecond: e.STRIPE_RATE_LIMIT_PER_SECOND ?? STRIPE_DEFAULT_RATE[mode],
    meterEventsApi: e.STRIPE_METER_EVENTS_API,
    maxAttempts: e.STRIPE_MAX_ATTEMPTS,
    timeoutMs: e.STRIPE_TIMEOUT_MS,
    syncConcurrency: e.SYNC_CONCURRENCY,
  };
}

/** What the CLI reads beyond the service's configuration. */
export interface CliEnv {
  /** BILLING_METER_URL: the collector `ship` sends to (default: this machine's PORT). */
  url: string | undefined;
  /** BILLING_METER_INGEST_KEY: the key `ship` sends with. */
  ingestKey: string | undefined;
  /** DEBUG: print the stack of an unexpected error (any value but empty, 0, false, no). */
  debug: boolean;
}

export function loadCliEnv(env: Record<string, string | undefined> = process.env): CliEnv {
  const debug = (env.DEBUG ?? '').trim().toLowerCase();
  return {
    url: env.BILLING_METER_URL || undefined,
    ingestKey: env.BILLING_METER_INGEST_KEY || undefined,
    debug: debug !== '' && !['0', 'false', 'no'].includes(debug),
  };
}

import { resolve } from 'node:path';
import { z } from 'zod';
import { defaultWorkerCount } from './collector/batch-preparer.ts';
import { isSensitiveHeader } from './collector/formats/normalize.ts';

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
  DATA_DIR: z.string().min(1).default('./data'),
  SPOOL_DIR: z.string().min(1).optional(),
  /** Largest the spool may grow before ingest answers 503. */
  SPOOL_MAX_BYTES: byteSize('1gb'),
  ADMIN_API_KEY: z
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
  /** How often spooled events are shipped to ClickHouse. */
  FLUSH_INTERVAL_MS: z.coerce.number().int().min(10).max(60_000).default(250),
  /** Worker threads that parse and check large batches; 0 keeps all of it on the event loop. */
  INGEST_WORKERS: z.coerce.number().int().min(0).max(32).default(defaultWorkerCount()),
  /** Where the meter definitions are (one YAML file each). */
  METERS_DIR: z.string().min(1).default('./meters'),
  /** When meters are evaluated (cron, UTC): by default at minute 5 of every hour. */
  METER_SCHEDULE: z
    .string()
    .default('5 * * * *')
    // The shape only: node-cron (main.ts) checks the fields themselves when it schedules.
    .refine((v) => /^[\d*,/-]+( [\d*,/-]+){4}$/.test(v.trim()), 'must be a 5-field cron expression such as "5 * * * *"'),
  /** Closed hours re-evaluated on every run, so late events are billed; at most Stripe's 35 days. */
  LATENESS_HOURS: z.coerce.number().int().min(0).max(35 * 24).default(48),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Trust X-Forwarded-* from a proxy in front. */
  TRUST_PROXY: booleanString.default(false),
  SHUTDOWN_TIMEOUT_MS: z.coerce.number().int().min(0).default(25_000),
});

export type Config = {
  port: number;
  host: string;
  clickhouse:
    | { kind: 'server'; url: string; username: string; password: string; database: string }
    | { kind: 'embedded'; path: string; database: string };
  dataDir: string;
  spoolDir: string;
  spoolMaxBytes: number;
  flushIntervalMs: number;
  adminApiKey: string | undefined;
  limits: {
    maxBodyBytes: number;
    maxEventBytes: number;
    maxEventsPerRequest: number;
    maxPastMs: number;
    maxFutureMs: number;
  };
  headerAllowList: ReadonlySet<string>;
  ingestWorkers: number;
  meters: { dir: string; schedule: string; latenessHours: number };
  logLevel: z.infer<typeof envSchema>['LOG_LEVEL'];
  trustProxy: boolean;
  shutdownTimeoutMs: number;
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
  const parsed = envSchema.safeParse(present);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((i) => `${i.path.join('.') || '(env)'}: ${i.message}`),
    );
  }
  const e = parsed.data;
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
        }
      : { kind: 'embedded', path: resolve(dataDir, 'clickhouse'), database: e.CLICKHOUSE_DATABASE },
    dataDir,
    spoolDir: resolve(e.SPOOL_DIR ?? resolve(dataDir, 'spool')),
    spoolMaxBytes: e.SPOOL_MAX_BYTES,
    flushIntervalMs: e.FLUSH_INTERVAL_MS,
    adminApiKey: e.ADMIN_API_KEY,
    limits: {
      maxBodyBytes: e.MAX_BODY_BYTES,
      maxEventBytes: e.MAX_EVENT_BYTES,
      maxEventsPerRequest: e.MAX_EVENTS_PER_REQUEST,
      maxPastMs: e.INGEST_MAX_PAST_DAYS * 86_400_000,
      maxFutureMs: e.INGEST_MAX_FUTURE_SECONDS * 1000,
    },
    headerAllowList: e.HEADER_ALLOW_LIST,
    ingestWorkers: e.INGEST_WORKERS,
    meters: { dir: resolve(e.METERS_DIR), schedule: e.METER_SCHEDULE, latenessHours: e.LATENESS_HOURS },
    logLevel: e.LOG_LEVEL,
    trustProxy: e.TRUST_PROXY,
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
  };
}

// The whole service, started in-process on a free port against either ClickHouse engine, with its own
// database, data dir and spool, plus an admin key and one ingest key. For integration and e2e tests.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { z } from 'zod';
import { REQUEST_LOG_COLUMNS, requestLogRowSchema } from '../../src/collector/request-log.ts';
import { loadConfig, type Config } from '../../src/config.ts';
import { startService, type RunningService, type ServiceOptions } from '../../src/main.ts';
import { CopyResolution } from '../../src/storage/clickhouse/copy-resolution.ts';
import { chdbPath, serverUrl, type Engine } from './clickhouse.ts';

export interface TestService {
  service: RunningService;
  config: Config;
  url: string;
  adminKey: string;
  ingestKey: string;
  keyId: string;
  dataDir: string;
  /** Every request log row in the database, one per (app, event_id) (the copy that counts), by event_id. */
  rows(): Promise<StoredRow[]>;
  stop(): Promise<void>;
}

export const TEST_ADMIN_KEY = 'test-admin-key-0123456789abcdef0123456789';

/** The environment a test service runs with (also used to start it as a child process). */
export async function testEnv(
  engine: Engine,
  extra: Record<string, string> = {},
): Promise<Record<string, string>> {
  const dataDir = await mkdtemp(join(tmpdir(), 'bm-service-'));
  const database = `svc_${process.pid}_${randomBytes(4).toString('hex')}`;
  return {
    PORT: '0',
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    CLICKHOUSE_DATABASE: database,
    ADMIN_API_KEY: TEST_ADMIN_KEY,
    LOG_LEVEL: 'silent',
    FLUSH_INTERVAL_MS: '50',
    ...(engine === 'server' ? { CLICKHOUSE_URL: serverUrl() } : {}),
    ...extra,
  };
}

/** `options.now` pins the service's clock (evaluation, sync, usage and ingest); default the wall clock. */
export async function startTestService(
  engine: Engine,
  extra: Record<string, string> = {},
  options: ServiceOptions = {},
): Promise<TestService> {
  const env = await testEnv(engine, extra);
  const config = loadConfig(env);
  if (config.clickhouse.kind === 'embedded') {
    // chdb binds one data directory per process: share the one the test clients use.
    config.clickhouse = { ...config.clickhouse, path: chdbPath() };
  }
  const service = await startService(config, pino({ level: 'silent' }), options);
  const { record, key } = await service.keys.create('test');
  const rows = async () => {
    await service.flush();
    const { table, settings } = await new CopyResolution(service.clickhouse).counted();
    return service.clickhouse.query(
      `SELECT ${REQUEST_LOG_COLUMNS.join(', ')} FROM ${table} ORDER BY event_id LIMIT 1 BY app, event_id`,
      requestLogRowSchema,
      settings,
    );
  };
  return {
    service,
    config,
    url: service.url,
    adminKey: TEST_ADMIN_KEY,
    ingestKey: key,
    keyId: record.keyId,
    dataDir: env.DATA_DIR!,
    rows,
    async stop() {
      await service.flush().catch(() => undefined);
      await service.clickhouse
        .command(`DROP DATABASE IF EXISTS ${service.clickhouse.database}`)
        .catch(() => undefined);
      await service.stop();
      await rm(env.DATA_DIR!, { recursive: true, force: true });
    },
  };
}

/** A stored row as tests compare it: source_format as plain text, so expected rows need no casts. */
export type StoredRow = Omit<z.infer<typeof requestLogRowSchema>, 'source_format'> & {
  source_format: string;
};

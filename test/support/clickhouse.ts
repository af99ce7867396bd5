// ClickHouse clients for integration tests, on either engine the service supports:
//   'server'   the run's ClickHouse server over HTTP (test/support/global-setup.ts), and
//   'embedded' chdb (ClickHouse 26.x in-process) through the same @clickhouse/client API.
// Each createTestClient() makes a fresh database with a unique name, selected as the current
// database for that client, so tests never see each other's tables:
//
//   describe.each(ENGINES)('%s', (engine) => {
//     let ch: TestClient;
//     beforeEach(async () => { ch = await createTestClient(engine, 'meters'); });
//     afterEach(async () => { await ch.dropDatabase(); });
//     it('…', async () => { await ch.client.command({ query: 'CREATE TABLE t …' }); });
//   });

import { createClient } from '@clickhouse/client';
import type { ClickHouseClient } from '@clickhouse/client';
import { createChdbConnection } from 'chdb/connection';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { inject } from 'vitest';
import { connectClickHouse, type ClickHouse } from '../../src/storage/clickhouse/clickhouse.ts';
import { identifier } from '../../src/sql/escape.ts';
import { migrate } from '../../src/storage/clickhouse/migrations.ts';
import { controlServer } from './clickhouse-server.ts';
import type { ClickHouseServer } from './clickhouse-server.ts';

export type Engine = 'server' | 'embedded';
export const ENGINES: readonly Engine[] = ['server', 'embedded'];

export interface TestClient {
  readonly engine: Engine;
  /** The fresh database, already current for `client`; qualify names with it when in doubt. */
  readonly database: string;
  readonly client: ClickHouseClient;
  /** Drops the database and closes the client. */
  dropDatabase(): Promise<void>;
}

let databaseCounter = 0;

/**
 * A client on `engine` whose current database is a new one named `<prefix>_<unique suffix>`.
 * The prefix must be an identifier of at most 40 characters.
 */
export async function createTestClient(engine: Engine, prefix = 'test'): Promise<TestClient> {
  if (prefix.length > 40)
    throw new Error(`database prefix ${JSON.stringify(prefix)} is longer than 40 characters`);
  databaseCounter += 1;
  const database = identifier(
    `${prefix}_${process.pid}_${databaseCounter}_${randomBytes(4).toString('hex')}`,
  );
  const client = engine === 'server' ? await serverClient(database) : await embeddedClient(database);
  return {
    engine,
    database,
    client,
    async dropDatabase() {
      try {
        await client.command({ query: `DROP DATABASE IF EXISTS ${database}` });
      } finally {
        await client.close();
      }
    },
  };
}

/** URL of the run's ClickHouse server (the managed one, or CLICKHOUSE_TEST_URL). */
export function serverUrl(): string {
  return inject('clickhouseUrl');
}

/**
 * Stop/start/kill for the run's ClickHouse server, for fault drills. Works from a test worker:
 * the server's pid and config live in its dir. Throws when the run uses CLICKHOUSE_TEST_URL,
 * since a server we did not start is not ours to stop.
 */
export function managedServer(): ClickHouseServer {
  const dir = inject('clickhouseDir');
  if (dir === null) {
    throw new Error(
      'this test stops and starts ClickHouse: unset CLICKHOUSE_TEST_URL so the run manages its own server',
    );
  }
  return controlServer(dir);
}

async function serverClient(database: string): Promise<ClickHouseClient> {
  const url = serverUrl();
  const admin = createClient({ url });
  try {
    await admin.command({ query: `CREATE DATABASE ${database}` });
  } finally {
    await admin.close();
  }
  return createClient({ url, database });
}

// chdb binds one data directory per process. Every embedded client in this process uses the same
// one (connections to the same path coexist), inside the run's dir that the global setup deletes.
// It is kept on globalThis because vitest may evaluate this module again for each test file in
// the same worker.
const CHDB_PATH_KEY = Symbol.for('billing-meter.test.chdbPath');

/** The chdb data dir of this test process: anything opening chdb in a test (a service too) must use it. */
export function chdbPath(): string {
  const holder = globalThis as { [CHDB_PATH_KEY]?: string };
  holder[CHDB_PATH_KEY] ??= mkdtempSync(join(inject('chdbParentDir'), `worker-${process.pid}-`));
  return holder[CHDB_PATH_KEY];
}

type ClientConnection = NonNullable<NonNullable<Parameters<typeof createClient>[0]>['connection']>;

async function embeddedClient(database: string): Promise<ClickHouseClient> {
  // chdb's connection ignores the client's `database` setting; `USE` holds per connection.
  // chdb declares its Connection against @clickhouse/client-common 1.23.0 while the client bundles
  // its own copy of those types: the same shape, but distinct declarations, hence the cast.
  const connection = createChdbConnection({ path: chdbPath() }) as unknown as ClientConnection;
  const client = createClient({ connection });
  try {
    await client.command({ query: `CREATE DATABASE ${database}` });
    await client.command({ query: `USE ${database}` });
  } catch (error) {
    await client.close();
    throw error;
  }
  return client;
}

/**
 * The service's own ClickHouse adapter on a fresh database of this engine, migrated: for tests of
 * repositories and services. Drop it with `ch.command(\`DROP DATABASE …\`)` and close it after.
 */
export async function openMigratedDatabase(engine: Engine, prefix: string): Promise<ClickHouse> {
  const database = `${prefix}_${process.pid}_${randomBytes(4).toString('hex')}`;
  const ch = await connectClickHouse(
    engine === 'server'
      ? { kind: 'server', url: serverUrl(), username: 'default', password: '', database }
      : { kind: 'embedded', path: chdbPath(), database },
  );
  await migrate(ch);
  return ch;
}

// vitest globalSetup of the `integration` project: one ClickHouse server for the whole run.
//
// By default it starts Debian's clickhouse-server 18.16 in a temp dir on free ports (see
// clickhouse-server.ts) and stops it and deletes its dir at the end. The embedded engine's data
// (chdb, one dir per test worker) goes in the same temp dir. Tests read where it is with
// inject('clickhouseUrl') etc., or better through test/support/clickhouse.ts.
//
// CLICKHOUSE_TEST_URL=http://user:password@host:8123 uses that server instead and starts nothing
// (for example a current ClickHouse from docker-compose). Tests then get clickhouseDir = null,
// and fault drills, which must stop and restart the server, fail with an explanation.

import type { TestProject } from 'vitest/node';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startClickHouseServer } from './clickhouse-server.ts';
import type { ClickHouseServer } from './clickhouse-server.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Base URL of the ClickHouse HTTP interface, possibly with credentials. */
    clickhouseUrl: string;
    clickhouseHttpPort: number;
    /** Native protocol port; null for a CLICKHOUSE_TEST_URL server. */
    clickhouseTcpPort: number | null;
    /** The managed server's dir, for controlServer(dir); null for a CLICKHOUSE_TEST_URL server. */
    clickhouseDir: string | null;
    /** Where test workers put their chdb data dirs; deleted with the run. */
    chdbParentDir: string;
    /** The run's temp dir (deleted with the run): where a test file starts its own servers (a cluster). */
    runDir: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // Everything the run writes lives here, so the teardown leaves nothing behind even when a test
  // worker was killed before it could clean up.
  const runDir = await mkdtemp(join(tmpdir(), 'billing-meter-test-'));
  const chdbParentDir = join(runDir, 'chdb');
  await mkdir(chdbParentDir);
  project.provide('chdbParentDir', chdbParentDir);
  project.provide('runDir', runDir);
  // KEEP_RUN_DIR=1 keeps it, with every server's logs, for a post-mortem of a failed drill.
  const removeRunDir = async () => {
    if (process.env.KEEP_RUN_DIR) console.log(`kept the run's dir: ${runDir}`);
    else await rm(runDir, { recursive: true, force: true });
  };

  const external = process.env.CLICKHOUSE_TEST_URL;
  if (external !== undefined && external !== '') {
    const url = new URL(external);
    try {
      await checkReachable(url);
    } catch (error) {
      await removeRunDir();
      throw error;
    }
    project.provide('clickhouseUrl', external.replace(/\/+$/, ''));
    project.provide('clickhouseHttpPort', Number(url.port || (url.protocol === 'https:' ? 443 : 80)));
    project.provide('clickhouseTcpPort', null);
    project.provide('clickhouseDir', null);
    return removeRunDir;
  }

  let server: ClickHouseServer;
  try {
    server = await startClickHouseServer({ parentDir: runDir });
  } catch (error) {
    await removeRunDir();
    throw error;
  }
  project.provide('clickhouseUrl', server.url);
  project.provide('clickhouseHttpPort', server.httpPort);
  project.provide('clickhouseTcpPort', server.tcpPort);
  project.provide('clickhouseDir', server.dir);
  // A drill may have restarted the server from a test worker: stop() acts on the pid recorded in
  // the server's dir, whoever started it.
  return async () => {
    await server.stop();
    await removeRunDir();
  };
}

async function checkReachable(url: URL): Promise<void> {
  const ping = new URL('/ping', url);
  ping.username = '';
  ping.password = '';
  try {
    const response = await fetch(ping, { signal: AbortSignal.timeout(5_000) });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
  } catch (error) {
    throw new Error(`CLICKHOUSE_TEST_URL=${url.origin} is not reachable: ${(error as Error).message}`);
  }
}

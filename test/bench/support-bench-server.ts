// The ClickHouse the benches over generated logs run on (bench:meters, bench:ui-queries): a throwaway
// clickhouse-server (Debian's 18.16) on 127.0.0.1, migrated databases in it, and a watchdog that stops
// the server after `timeoutSeconds` so a stuck query fails the bench instead of hanging it.
import { rm } from 'node:fs/promises';
import { connectClickHouse, type ClickHouse } from '../../src/storage/clickhouse/clickhouse.ts';
import { migrate } from '../../src/storage/clickhouse/migrations.ts';
import { startClickHouseServer, type ClickHouseServer } from '../support/clickhouse-server.ts';

/** A migrated database of the bench's server, by name (an identifier); closed when the run ends. */
export type OpenDatabase = (db: string) => Promise<ClickHouse>;

export async function onBenchServer<T>(
  timeoutSeconds: number,
  run: (open: OpenDatabase) => Promise<T>,
): Promise<T> {
  let server: ClickHouseServer | undefined;
  const clients: ClickHouse[] = [];
  let timedOut = false;
  const watchdog = setTimeout(() => {
    timedOut = true;
    console.error(
      `bench: still running after ${timeoutSeconds} s (BENCH_TIMEOUT_SECONDS); stopping the server`,
    );
    // In-flight queries fail, run() unwinds through the finally below.
    void server?.kill();
  }, timeoutSeconds * 1000);
  watchdog.unref();
  try {
    server = await startClickHouseServer();
    const url = server.url;
    return await run(async (db) => {
      const ch = await connectClickHouse({
        kind: 'server',
        url,
        username: 'default',
        password: '',
        database: db,
        requestTimeoutMs: timeoutSeconds * 1000,
      });
      clients.push(ch);
      await migrate(ch);
      return ch;
    });
  } catch (error) {
    if (timedOut) throw new Error(`timed out after ${timeoutSeconds} s`, { cause: error });
    throw error;
  } finally {
    clearTimeout(watchdog);
    for (const ch of clients) await ch.close().catch(() => undefined);
    if (server) {
      await server.stop().catch((error: unknown) => console.error('bench: stopping ClickHouse:', error));
      await rm(server.dir, { recursive: true, force: true });
    }
  }
}

import type { Server } from 'node:http';
import type { Logger } from 'pino';

export interface ShutdownParts {
  server: Server;
  timeoutMs: number;
  /** Timers and schedules that start new work (key refresh, the hourly cron). */
  stopStarting: Array<() => unknown>;
  /** Resolves when the work already started (a sync pass) has finished. */
  inFlight(): Promise<void>;
  /** Stop taking events in: the parse workers, the shipper's timer, the spools' files. */
  closeIntake: Array<() => Promise<void>>;
  /** Hand what is spooled to ClickHouse one last time. */
  flush(): Promise<void>;
  close(): Promise<void>;
  logger: Pick<Logger, 'info' | 'warn'>;
}

/**
 * The order of a drain, as one function that runs once however often it is called:
 * 1. no new connections; in-flight requests finish (each ends only after its spool append);
 * 2. nothing new starts; a sync pass in flight finishes (or is cut by the timeout: the ledger makes
 *    that safe to resume);
 * 3. everything acknowledged is already durable in the spool; hand it to ClickHouse now if it is up.
 */
export function shutdown(parts: ShutdownParts): () => Promise<void> {
  let stopping: Promise<void> | undefined;
  return () =>
    (stopping ??= (async () => {
      const closed = new Promise<void>((resolve) => parts.server.close(() => resolve()));
      parts.server.closeIdleConnections();
      await Promise.race([closed, delay(parts.timeoutMs)]);
      parts.server.closeAllConnections();
      for (const stop of parts.stopStarting) await stop();
      await Promise.race([parts.inFlight(), delay(parts.timeoutMs)]);
      for (const close of parts.closeIntake) await close();
      await parts
        .flush()
        .catch((err: unknown) =>
          parts.logger.warn(
            { err: String(err) },
            'clickhouse unreachable at shutdown; events stay spooled for the next start',
          ),
        );
      await parts.close().catch(() => undefined);
      parts.logger.info('billing-meter stopped');
    })());
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

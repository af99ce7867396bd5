import type { Logger } from 'pino';

/**
 * The schema, brought up to date once, lazily: a ClickHouse that is down at boot must not stop ingest
 * (the spool takes events until it is back), so the service tries at start, and every ClickHouse write
 * or job tries again until one migration has succeeded.
 */
export interface SchemaGuard {
  /** Resolves once the schema is migrated (at most one migration runs at a time). */
  ensure(): Promise<void>;
  readonly migrated: boolean;
}

export function schemaGuard(migrate: () => Promise<void>): SchemaGuard {
  let done = false;
  let running: Promise<void> | undefined;
  return {
    get migrated() {
      return done;
    },
    ensure() {
      if (done) return Promise.resolve();
      running ??= migrate().then(
        () => {
          done = true;
        },
        (err: unknown) => {
          running = undefined;
          throw err;
        },
      );
      return running;
    },
  };
}

/** The start-up attempt: a failure is a warning, not a stop. */
export async function tryMigrateAtStart(guard: SchemaGuard, logger: Pick<Logger, 'warn'>): Promise<void> {
  await guard
    .ensure()
    .catch((err: unknown) =>
      logger.warn(
        { err: String(err) },
        'clickhouse unavailable at start; ingest will spool until it is reachable',
      ),
    );
}

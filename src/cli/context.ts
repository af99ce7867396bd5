import { loadConfig, type Config } from '../config.ts';
import { buildServices, createLogger, type Services } from '../services.ts';

/**
 * How a command opens what it needs: the service's own wiring (buildServices), its schema migrated,
 * logs on stderr at `warn` unless LOG_LEVEL asks for more, and everything closed afterwards, also on
 * failure (the embedded engine's lock must not outlive the command).
 */
export async function withServices<T>(
  command: string,
  run: (services: Services) => Promise<T>,
  config: Config = loadConfig(),
): Promise<T> {
  const logger = createLogger(
    { logLevel: config.logLevel === 'info' ? 'warn' : config.logLevel },
    { toStderr: true },
  );
  const services = await buildServices(config, { logger, migrate: 'eager', command });
  try {
    return await run(services);
  } finally {
    await services.close().catch(() => undefined);
    logger.flush?.();
  }
}

/** A command-line time: the API's forms (ISO-8601 with a zone, or a date meaning 00:00 UTC). */
export function parseTimeOption(value: string | boolean | undefined, flag: string): Date | undefined {
  if (value === undefined || typeof value === 'boolean') return undefined;
  const date = /^\d{4}-\d{2}-\d{2}$/.test(value) ? new Date(`${value}T00:00:00Z`) : new Date(value);
  const zoned = /^\d{4}-\d{2}-\d{2}$/.test(value) || /(Z|[+-]\d{2}:?\d{2})$/i.test(value);
  if (!zoned || Number.isNaN(date.getTime()))
    throw new TimeOptionError(
      `${flag} must be an ISO-8601 time with a zone (2026-11-01T00:00:00Z) or a date (2026-11-01, 00:00 UTC), got '${value}'`,
    );
  return date;
}

export class TimeOptionError extends Error {}

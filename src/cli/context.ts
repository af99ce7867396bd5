import { loadConfig, type Config } from '../config.ts';
import { isInvalidInstant, parseInstant } from '../time/parse-instant.ts';
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

/** A command-line time: the API's forms, through the API's own parser, refused with the API's words. */
export function parseTimeOption(value: string | boolean | undefined, flag: string): Date | undefined {
  if (value === undefined || typeof value === 'boolean') return undefined;
  const parsed = parseInstant(value);
  if (isInvalidInstant(parsed)) throw new TimeOptionError(`${flag}: ${parsed.message}`);
  return parsed;
}

export class TimeOptionError extends Error {}

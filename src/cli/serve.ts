import { loadConfig } from '../config.ts';
import { startService, type RunningService } from '../main.ts';
import { createLogger } from '../services.ts';
import type { Command } from './command.ts';

/** Resolves on the first SIGTERM or SIGINT, after the service has drained. */
export function stopOnSignal(service: RunningService, onSignal?: (signal: string) => void): Promise<void> {
  return new Promise<void>((resolve) => {
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      process.once(signal, () => {
        onSignal?.(signal);
        void service.stop().then(resolve);
      });
    }
  });
}

export const serveCommand: Command = {
  path: ['serve'],
  summary: 'run the service (what npm start runs)',
  details:
    'Listens on PORT (default 8080); SIGTERM or Ctrl-C drains: in-flight requests finish and the spool is shipped.',
  async run() {
    const config = loadConfig();
    const logger = createLogger(config);
    const service = await startService(config, logger);
    await stopOnSignal(service, (signal) => logger.info({ signal }, 'shutting down'));
    return 0;
  },
};

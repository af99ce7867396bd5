import { once } from 'node:events';
import { createServer, type RequestListener, type Server } from 'node:http';

/** A port that is taken is the user's to fix: say which, and how. */
export class PortInUseError extends Error {
  constructor(readonly port: number) {
    super(`port ${port} is in use; set PORT to another port (PORT=0 picks a free one)`);
    this.name = 'PortInUseError';
  }
}

/** An HTTP server listening on the configured port, with keep-alive longer than a load balancer's. */
export async function listen(
  handler: RequestListener,
  config: { port: number; host: string },
): Promise<Server> {
  const server = createServer(handler);
  server.keepAliveTimeout = 65_000;
  server.requestTimeout = 120_000;
  server.listen(config.port, config.host);
  try {
    await once(server, 'listening');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') throw new PortInUseError(config.port);
    throw err;
  }
  return server;
}

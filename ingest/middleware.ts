/**
 * Thin framework integrations over the forwarder. Each one only calls `forwarder.observe(req, res)` at the
 * start of a request; the record is built when node:http emits 'finish' on the response, so status,
 * latency and bytes are the final ones whatever the framework does after the middleware returns.
 *
 * No koa or express types are imported (the folder stays dependency-free): the structural types below are
 * the parts of them we use. Register the middleware first so latency covers the whole stack.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createForwarder } from './forwarder.ts';
import type { Forwarder, ForwarderOptions } from './forwarder.ts';

/** The part of a Koa context we use. */
export interface KoaContextLike {
  req: IncomingMessage;
  res: ServerResponse;
}

export type KoaMiddleware = ((ctx: KoaContextLike, next: () => Promise<unknown>) => Promise<void>) & {
  readonly forwarder: Forwarder;
};

export type ExpressMiddleware = ((
  req: IncomingMessage,
  res: ServerResponse,
  next: (err?: unknown) => void,
) => void) & {
  readonly forwarder: Forwarder;
};

export type WrappedHandler<R> = ((req: IncomingMessage, res: ServerResponse) => R) & {
  readonly forwarder: Forwarder;
};

function isForwarder(value: Forwarder | ForwarderOptions): value is Forwarder {
  return (
    typeof (value as Forwarder).observe === 'function' && typeof (value as Forwarder).record === 'function'
  );
}

/** Uses the given forwarder, or creates one from options (close it with `middleware.forwarder.close()`). */
function forwarderOf(value: Forwarder | ForwarderOptions): Forwarder {
  return isForwarder(value) ? value : createForwarder(value);
}

/** `app.use(koaMiddleware(opts))`; hooks get `(ctx.req, ctx.res, ctx)`. */
export function koaMiddleware(forwarderOrOptions: Forwarder | ForwarderOptions): KoaMiddleware {
  const forwarder = forwarderOf(forwarderOrOptions);
  const middleware = async function billingMeter(
    ctx: KoaContextLike,
    next: () => Promise<unknown>,
  ): Promise<void> {
    forwarder.observe(ctx.req, ctx.res, ctx);
    await next();
  };
  return Object.assign(middleware, { forwarder });
}

/** `app.use(expressMiddleware(opts))`; hooks get Express's `(req, res)`. */
export function expressMiddleware(forwarderOrOptions: Forwarder | ForwarderOptions): ExpressMiddleware {
  const forwarder = forwarderOf(forwarderOrOptions);
  const middleware = function billingMeter(
    req: IncomingMessage,
    res: ServerResponse,
    next: (err?: unknown) => void,
  ): void {
    forwarder.observe(req, res);
    next();
  };
  return Object.assign(middleware, { forwarder });
}

/** `http.createServer(wrapHandler(handler, opts))` for a plain node:http request listener. */
export function wrapHandler<R>(
  handler: (req: IncomingMessage, res: ServerResponse) => R,
  forwarderOrOptions: Forwarder | ForwarderOptions,
): WrappedHandler<R> {
  const forwarder = forwarderOf(forwarderOrOptions);
  const wrapped = function billingMeter(this: unknown, req: IncomingMessage, res: ServerResponse): R {
    forwarder.observe(req, res);
    return handler.call(this, req, res);
  };
  return Object.assign(wrapped, { forwarder });
}

import { createHash, timingSafeEqual } from 'node:crypto';
import type { Context, Next } from 'koa';
import { DomainError } from '../errors.ts';
import type { IngestKeysPort } from './ports.ts';

/** The key a client presents: `Authorization: Bearer`, `X-Api-Key`, or Moesif's `X-Moesif-Application-Id`. */
export function presentedKey(ctx: Context): string | undefined {
  const auth = ctx.get('authorization');
  if (auth) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    return m ? m[1] : undefined;
  }
  return ctx.get('x-api-key') || ctx.get('x-moesif-application-id') || undefined;
}

/** Ingest endpoints: sets ctx.state.app to the key's id, or answers 401. */
export function requireIngestKey(keys: Pick<IngestKeysPort, 'authenticate'>) {
  return async function ingestAuth(ctx: Context, next: Next): Promise<void> {
    const record = await keys.authenticate(presentedKey(ctx));
    if (!record) {
      throw new DomainError(
        'unauthorized',
        'send a valid ingest key as Authorization: Bearer <key>, X-Api-Key or X-Moesif-Application-Id',
      );
    }
    ctx.state.app = record.keyId;
    await next();
  };
}

/** Admin endpoints: a separate key (ADMIN_API_KEY), compared in constant time. */
export function requireAdminKey(adminApiKey: string | undefined) {
  const expected = adminApiKey ? sha256(adminApiKey) : undefined;
  return async function adminAuth(ctx: Context, next: Next): Promise<void> {
    if (!expected)
      throw new DomainError('forbidden', 'the admin API is disabled: set ADMIN_API_KEY to enable it');
    const presented = sha256(presentedKey(ctx) ?? '');
    if (!timingSafeEqual(presented, expected))
      throw new DomainError('unauthorized', 'send the admin key as Authorization: Bearer <ADMIN_API_KEY>');
    await next();
  };
}

function sha256(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

import { createHash, timingSafeEqual } from 'node:crypto';
import type { Context, Next } from 'koa';
import { DomainError } from '../errors.ts';
import type { IngestKeysPort } from './ports.ts';
import { csrfMatches, deriveSecret, verifySession } from './web/signed-tokens.ts';

/** The dashboard's session cookie (httpOnly, SameSite=Strict) and the header its CSRF token comes in. */
export const SESSION_COOKIE = 'bm_session';
export const CSRF_HEADER = 'x-csrf-token';
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

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
    const key = presentedKey(ctx);
    // The dashboard's session is another way to present the admin key, to the same endpoints; a
    // state-changing call by cookie must also carry the session's CSRF token (a cross-site page
    // cannot read it: no CORS here, and the token is not in a cookie).
    if (key === undefined && adminApiKey && ctx.cookies.get(SESSION_COOKIE) !== undefined) {
      const session = verifySession(sessionSecret(adminApiKey), ctx.cookies.get(SESSION_COOKIE), new Date());
      if (!session) throw new DomainError('unauthorized', 'the session has expired: log in again');
      if (!SAFE_METHODS.has(ctx.method) && !csrfMatches(session.csrfToken, ctx.get(CSRF_HEADER) || undefined))
        throw new DomainError(
          'forbidden',
          `a call made with the session cookie must send its ${CSRF_HEADER} header`,
        );
      ctx.state.session = session;
      await next();
      return;
    }
    const presented = sha256(key ?? '');
    if (!timingSafeEqual(presented, expected))
      throw new DomainError('unauthorized', 'send the admin key as Authorization: Bearer <ADMIN_API_KEY>');
    await next();
  };
}

function sha256(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

/** Sessions are signed with a key derived from the admin key: changing the admin key ends them all. */
export function sessionSecret(adminApiKey: string): Buffer {
  return deriveSecret(adminApiKey, 'session');
}

/** The admin key, compared in constant time (the dashboard's login). */
export function isAdminKey(adminApiKey: string | undefined, presented: string): boolean {
  return adminApiKey !== undefined && timingSafeEqual(sha256(presented), sha256(adminApiKey));
}

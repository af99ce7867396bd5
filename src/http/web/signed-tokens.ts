import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * The dashboard's two signed tokens, both stateless (no store to lose or share between replicas):
 * - the admin session cookie: `<expiry seconds>.<nonce>.<mac>`, its CSRF token a MAC of the nonce, so
 *   the token is bound to one session and checked server side on every state-changing call;
 * - the customer portal token: `<base64url {"c": customer, "e": expiry seconds}>.<mac>`: the customer
 *   and the expiry are inside the signature, so editing either breaks it.
 * Secrets are separate HMAC keys derived per purpose: a portal token never verifies as a session.
 */

const b64 = (buf: Buffer) => buf.toString('base64url');

export function deriveSecret(root: string, purpose: 'session' | 'portal'): Buffer {
  return createHmac('sha256', root).update(`billing-meter ${purpose} v1`).digest();
}

function mac(secret: Buffer, text: string): string {
  return b64(createHmac('sha256', secret).update(text).digest());
}

function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export interface Session {
  cookie: string;
  csrfToken: string;
  expiresAt: Date;
}

export function issueSession(secret: Buffer, now: Date, ttlSeconds: number): Session {
  const exp = Math.floor(now.getTime() / 1000) + ttlSeconds;
  const nonce = b64(randomBytes(18));
  const body = `${exp}.${nonce}`;
  return {
    cookie: `${body}.${mac(secret, body)}`,
    csrfToken: csrfFor(secret, nonce),
    expiresAt: new Date(exp * 1000),
  };
}

const csrfFor = (secret: Buffer, nonce: string) => mac(secret, `csrf ${nonce}`);

/** The session's CSRF token and expiry, or undefined for a cookie that is forged, garbled or expired. */
export function verifySession(
  secret: Buffer,
  cookie: string | undefined,
  now: Date,
): { csrfToken: string; expiresAt: Date } | undefined {
  const m = /^(\d{1,12})\.([\w-]{1,64})\.([\w-]{43})$/.exec(cookie ?? '');
  if (!m) return undefined;
  const [, exp, nonce, sig] = m as unknown as [string, string, string, string];
  if (!sameText(sig, mac(secret, `${exp}.${nonce}`))) return undefined;
  const expiresAt = new Date(Number(exp) * 1000);
  if (expiresAt <= now) return undefined;
  return { csrfToken: csrfFor(secret, nonce), expiresAt };
}

export function csrfMatches(expected: string, presented: string | undefined): boolean {
  return presented !== undefined && sameText(expected, presented);
}

export function signPortalToken(secret: Buffer, customer: string, expiresAt: Date): string {
  const payload = b64(
    Buffer.from(JSON.stringify({ c: customer, e: Math.floor(expiresAt.getTime() / 1000) })),
  );
  return `${payload}.${mac(secret, `portal ${payload}`)}`;
}

export type PortalTokenCheck =
  { ok: true; customer: string; expiresAt: Date } | { ok: false; reason: 'tampered' | 'expired' };

export function verifyPortalToken(secret: Buffer, token: string | undefined, now: Date): PortalTokenCheck {
  const m = /^([\w-]{1,2800})\.([\w-]{43})$/.exec(token ?? '');
  if (!m || !sameText(m[2]!, mac(secret, `portal ${m[1]}`))) return { ok: false, reason: 'tampered' };
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(m[1]!, 'base64url').toString('utf8'));
  } catch {
    return { ok: false, reason: 'tampered' };
  }
  const { c, e } = (parsed ?? {}) as { c?: unknown; e?: unknown };
  if (typeof c !== 'string' || typeof e !== 'number') return { ok: false, reason: 'tampered' };
  const expiresAt = new Date(e * 1000);
  if (expiresAt <= now) return { ok: false, reason: 'expired' };
  return { ok: true, customer: c, expiresAt };
}

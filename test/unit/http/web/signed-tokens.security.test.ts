import { describe, expect, it } from 'vitest';
import {
  csrfMatches,
  deriveSecret,
  issueSession,
  signPortalToken,
  verifyPortalToken,
  verifySession,
} from '../../../../src/http/web/signed-tokens.ts';

const ROOT = 'a-root-secret-of-at-least-32-characters-x';
const session = deriveSecret(ROOT, 'session');
const portal = deriveSecret(ROOT, 'portal');
const now = new Date('2026-11-15T12:00:00Z');

describe('admin session cookies', () => {
  it('verify until they expire, with a CSRF token bound to the session', () => {
    const s = issueSession(session, now, 3600);
    const ok = verifySession(session, s.cookie, new Date(now.getTime() + 3599_000));
    expect(ok?.csrfToken).toBe(s.csrfToken);
    expect(verifySession(session, s.cookie, new Date(now.getTime() + 3600_000))).toBeUndefined();
    expect(issueSession(session, now, 3600).csrfToken).not.toBe(s.csrfToken);
    expect(csrfMatches(s.csrfToken, s.csrfToken)).toBe(true);
    expect(csrfMatches(s.csrfToken, undefined)).toBe(false);
    expect(csrfMatches(s.csrfToken, s.csrfToken.slice(1))).toBe(false);
  });

  it('refuse a longer expiry, another secret, and garbage', () => {
    const s = issueSession(session, now, 3600);
    const [exp, nonce, mac] = s.cookie.split('.');
    expect(verifySession(session, `${Number(exp) + 999999}.${nonce}.${mac}`, now)).toBeUndefined();
    expect(verifySession(deriveSecret(`${ROOT}y`, 'session'), s.cookie, now)).toBeUndefined();
    expect(verifySession(portal, s.cookie, now)).toBeUndefined();
    for (const bad of ['', '1.2.3', `${s.cookie}x`, 'a'.repeat(5000)])
      expect(verifySession(session, bad, now)).toBeUndefined();
  });
});

describe('portal tokens', () => {
  const expires = new Date(now.getTime() + 3600_000);
  it('carry their customer and expiry inside the signature', () => {
    const token = signPortalToken(portal, 'co_a', expires);
    expect(verifyPortalToken(portal, token, now)).toEqual({ ok: true, customer: 'co_a', expiresAt: expires });
    expect(verifyPortalToken(portal, token, expires)).toEqual({ ok: false, reason: 'expired' });
    const [payload, mac] = token.split('.') as [string, string];
    const edit = (o: object) => `${Buffer.from(JSON.stringify(o)).toString('base64url')}.${mac}`;
    const decoded = JSON.parse(Buffer.from(payload, 'base64url').toString()) as { e: number };
    expect(verifyPortalToken(portal, edit({ c: 'co_b', e: decoded.e }), now)).toEqual({
      ok: false,
      reason: 'tampered',
    });
    expect(verifyPortalToken(portal, edit({ c: 'co_a', e: decoded.e + 86400 }), now)).toEqual({
      ok: false,
      reason: 'tampered',
    });
  });

  it('are not sessions, and sessions are not portal tokens', () => {
    const token = signPortalToken(portal, 'co_a', expires);
    expect(verifyPortalToken(session, token, now)).toEqual({ ok: false, reason: 'tampered' });
    expect(verifyPortalToken(portal, issueSession(session, now, 60).cookie, now).ok).toBe(false);
    expect(verifyPortalToken(portal, undefined, now).ok).toBe(false);
  });
});

import { createHash } from 'node:crypto';
import { jsonText } from './json-text.ts';

/**
 * Event id for events whose sender gives none: `h:` + the first 32 hex digits (128 bits) of the
 * SHA-256 of the event's canonical JSON (object keys sorted at every level, so key order does not
 * matter). A retried batch hashes the same and is deduplicated; two byte-for-byte identical events
 * (same time to the millisecond, same everything) count once, which is why senders should send ids.
 */
export function contentEventId(raw: unknown): string {
  const canonical = jsonText(raw, { sortKeys: true }) ?? 'null';
  return `h:${createHash('sha256').update(canonical, 'utf8').digest('hex').slice(0, 32)}`;
}

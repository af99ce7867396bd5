import crypto from 'node:crypto';
import { jsonText } from './json-text.ts';

/**
 * Event id for events whose sender gives none: `h:` + the first 32 hex digits (128 bits) of the
 * SHA-256 of the event's canonical JSON (object keys sorted at every level, so key order does not
 * matter). A retried batch hashes the same and is deduplicated; two byte-for-byte identical events
 * (same time to the millisecond, same everything) count once, which is why senders should send ids.
 */
export function contentEventId(raw: unknown): string {
  const canonical = jsonText(raw, { sortKeys: true }) ?? 'null';
  return `h:${sha256Hex(canonical).slice(0, 32)}`;
}

/**
 * SHA-256 of the text's UTF-8 bytes, in hex. crypto.hash, the one-shot form, takes half the time of
 * a Hash object for a text this short (about 1 µs less per event); it came in Node 20.12 and the
 * engines field allows 20.9, hence the fallback (and the default import: a named import of an
 * export Node lacks would fail to load).
 */
const sha256Hex: (text: string) => string =
  typeof crypto.hash === 'function'
    ? (text) => crypto.hash('sha256', text, 'hex')
    : (text) => crypto.createHash('sha256').update(text, 'utf8').digest('hex');

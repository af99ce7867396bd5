/**
 * Which request and response headers carry credentials: the one policy of the project. The forwarder
 * refuses to forward them (an allow list naming one is an error at creation), and the collector never
 * stores them, whatever its allow list says (naming one in HEADER_ALLOW_LIST stops the boot). The service
 * imports this file; it imports nothing, so `ingest/` stays free of the service's code.
 *
 * Limits: it judges a header by its name only. A credential in a header with an ordinary name
 * (`x-customer: sk_live_…`) is not recognised; that is what the allow list is for.
 */

/** Never stored or forwarded, whatever an allow list says; the pattern below misses some of them. */
export const NEVER_STORED_HEADERS: ReadonlySet<string> = new Set([
  'authorization',
  'proxy-authorization',
  'cookie',
  'set-cookie',
  'x-api-key',
  'apikey',
  'x-moesif-application-id',
]);

/**
 * Names that look like credentials: a credential word as a whole dash- or underscore-separated part of the
 * name (x-auth-token, x-csrf-token, x-session-id, stripe-signature, x-hub-signature-256), so that
 * `x-author` or `x-tokenizer` stay ordinary headers. A signature is a credential: whoever holds one of a
 * request can replay that request.
 */
export const SENSITIVE_HEADER_PATTERN =
  /(^|[-_])(auth|authorization|cookie|token|secret|password|passwd|api[-_]?key|apikey|session|signature)([-_]|$)/i;

/** True for a header name (any case, surrounding spaces ignored) that is never stored nor forwarded. */
export function isSensitiveHeader(name: string): boolean {
  const lower = name.trim().toLowerCase();
  return NEVER_STORED_HEADERS.has(lower) || SENSITIVE_HEADER_PATTERN.test(lower);
}

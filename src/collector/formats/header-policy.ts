// Which headers are secret: never stored, whatever the allow list says (config.ts refuses to allow-list
// them, headers.ts drops them).

/** Never stored, whatever the allow list says. */
export const NEVER_STORED_HEADERS: ReadonlySet<string> = new Set([
  'authorization',
  'proxy-authorization',
  'cookie',
  'set-cookie',
  'x-api-key',
  'apikey',
  'x-moesif-application-id',
]);

/** Header names that look like credentials (x-auth-token, x-csrf-token, x-session-id, …): never stored. */
export const SENSITIVE_HEADER_PATTERN =
  /(^|[-_])(auth|authorization|cookie|token|secret|password|passwd|api[-_]?key|apikey|session)([-_]|$)/i;

/** Config validation uses this to refuse an allow list that names a credential header. */
export function isSensitiveHeader(name: string): boolean {
  const lower = name.trim().toLowerCase();
  return NEVER_STORED_HEADERS.has(lower) || SENSITIVE_HEADER_PATTERN.test(lower);
}

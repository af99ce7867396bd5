// The request line: route and host from a path or a URL, and the method.
import { LIMITS } from './limits.ts';
import { invalid } from './rejection.ts';
import { checkText, parseText } from './scalars.ts';

const ABSOLUTE_URL = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/([^/?#]*)(.*)$/s;

export interface RequestTarget {
  /** Path without query string or fragment, starting with '/', not percent-decoded. */
  route: string;
  /** Lower-cased host (with port) when the value was a full URL, else ''. */
  host: string;
}

/**
 * A path (`/v1/widgets?x=1`) or a full URL (`https://api.test:8443/v1/widgets?x=1#top`). The query
 * string and fragment are cut off, nothing is decoded or re-encoded, user info in a URL is dropped,
 * and a relative path gets a leading '/'. `//x` without a scheme is a path, not a URL.
 */
export function parseTarget(value: unknown, field: string): RequestTarget {
  if (typeof value !== 'string' || value === '') {
    invalid(field, value, 'must be a non-empty path such as /v1/widgets or a full URL');
  }
  let host = '';
  let path = value;
  // Only a value starting with a letter can be a URL; most values are paths, which skip the pattern.
  const url = isAsciiLetter(value.charCodeAt(0)) ? ABSOLUTE_URL.exec(value) : null;
  if (url !== null) {
    const authority = url[1] ?? '';
    host = authority.slice(authority.lastIndexOf('@') + 1).toLowerCase();
    path = url[2] ?? '';
  }
  const end = indexOfQueryOrFragment(path);
  if (end >= 0) path = path.slice(0, end);
  if (!path.startsWith('/')) path = `/${path}`;
  return { route: checkText(path, field, LIMITS.routeChars), host: checkText(host, field, LIMITS.hostChars) };
}

function isAsciiLetter(code: number): boolean {
  return (code >= 0x41 && code <= 0x5a) || (code >= 0x61 && code <= 0x7a);
}

/** Where the first '?' or '#' is, or -1: path.search(/[?#]/), in half the time. */
function indexOfQueryOrFragment(path: string): number {
  const query = path.indexOf('?');
  const fragment = path.indexOf('#');
  return query < 0 ? fragment : fragment < 0 ? query : Math.min(query, fragment);
}

export function parseHost(value: unknown, field: string): string {
  return parseText(value, field, LIMITS.hostChars).toLowerCase();
}

export function parseMethod(value: unknown, field: string, options: { optional?: boolean } = {}): string {
  if (options.optional === true && value == null) return '';
  const expectation = 'must be an HTTP method of 1 to 16 letters, such as GET';
  if (typeof value !== 'string' || value.length > 64) invalid(field, value, expectation);
  // Upper-cased first, so non-ASCII letters that upper-case to A-Z (ſ → S) count as they always have.
  const method = value.toUpperCase();
  if (!isMethodName(method)) invalid(field, value, expectation);
  return method;
}

/** /^[A-Z]{1,16}$/ without the regex. */
function isMethodName(text: string): boolean {
  if (text.length < 1 || text.length > 16) return false;
  for (let i = 0; i < text.length; i += 1) {
    const code = text.charCodeAt(i);
    if (code < 0x41 || code > 0x5a) return false;
  }
  return true;
}

import { parseRoute } from '../meters/meter-schema.ts';
import type { RuleDefinition } from './rule-schema.ts';

/**
 * A rule's `when` as Moesif's `regex_config`: a list of groups (OR) of conditions (AND), each a
 * regex over a request field (`request.route`, `request.verb`, `request.headers.<name>`). This one
 * form is what the Moesif SDKs match (governanceRulesManager.js: `new RegExp(value).test(field)`),
 * what our ingest middleware matches, and what the access endpoint matches, so the three agree.
 *
 * Routes come from the meters' parseRoute; the SDK's `request.route` is the URL with its query
 * string, so a route regex allows one. A rule without `when` has no conditions (matches any call).
 */
export interface RegexCondition {
  path: string;
  value: string;
}
export interface RegexGroup {
  conditions: RegexCondition[];
}

const escapeRegex = (text: string): string => text.replace(/[\\.+*?()|[\]{}^$/-]/g, '\\$&');
const QUERY = '(\\?.*)?$';

export function routeRegex(route: string): string {
  const parsed = parseRoute(route);
  if ('error' in parsed) throw new Error(parsed.error); // validated by the schema before
  if (parsed.kind === 'exact') return `^${escapeRegex(parsed.path)}${QUERY}`;
  return parsed.regex.replace(/\$$/, QUERY);
}

export function regexConfig(rule: RuleDefinition): RegexGroup[] {
  const when = rule.when;
  if (!when) return [];
  const conditions: RegexCondition[] = [];
  if (when.routes) conditions.push({ path: 'request.route', value: when.routes.map(routeRegex).join('|') });
  if (when.methods) conditions.push({ path: 'request.verb', value: `^(${when.methods.join('|')})$` });
  for (const cond of when.where ?? []) {
    const header = cond.field.slice('header.'.length);
    const values = (Array.isArray(cond.value) ? cond.value : [cond.value]).map((v) => String(v));
    const value =
      cond.op === 'matches'
        ? values[0]!
        : cond.op === 'prefix'
          ? `^${escapeRegex(values[0]!)}`
          : `^(${values.map(escapeRegex).join('|')})$`;
    conditions.push({ path: `request.headers.${header}`, value });
  }
  return conditions.length === 0 ? [] : [{ conditions }];
}

export interface RequestFacts {
  /** The path, with or without its query string. */
  route: string;
  method: string;
  /** Lower-cased names. */
  headers: Readonly<Record<string, string | undefined>>;
}

const compiled = new Map<string, RegExp | null>();
/** Rules' regexes, compiled once (a bounded set: the loaded rules'); null: invalid. */
function regexOf(source: string): RegExp | null {
  let re = compiled.get(source);
  if (re === undefined) {
    try {
      re = new RegExp(source);
    } catch {
      re = null;
    }
    if (compiled.size > 10_000) compiled.clear();
    compiled.set(source, re);
  }
  return re;
}

/** Whether a request meets the groups, as the Moesif SDK decides it (an invalid regex never matches). */
export function matchesRegexConfig(groups: readonly RegexGroup[], request: RequestFacts): boolean {
  if (groups.length === 0) return true;
  return groups.some((group) =>
    group.conditions.every((c) => {
      const field =
        c.path === 'request.route'
          ? request.route
          : c.path === 'request.verb'
            ? request.method.toUpperCase()
            : c.path.startsWith('request.headers.')
              ? (request.headers[c.path.slice('request.headers.'.length).toLowerCase()] ?? '')
              : '';
      return regexOf(c.value)?.test(field) ?? false;
    }),
  );
}

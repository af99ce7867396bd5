/**
 * Enforcing billing-meter's governance rules in the API itself, from the same contract the Moesif SDKs
 * read: `GET /v1/rules` (the rules, each with its request conditions as regexes and its response) and
 * `GET /v1/config` (which companies each rule applies to now, with the merge-tag values). Both are
 * fetched in the background, every `refreshMs` (bounded: at least 1 s), and again sooner when the etag
 * changes; while the collector is down the wait doubles up to `maxBackoffMs`, and the last good rules
 * keep being enforced. Deciding is a map lookup and a few regex tests: no I/O on the request path.
 *
 * It fails open: before the first fetch, and on any error of its own (a fetch, a bad answer, a throwing
 * identify hook, an invalid regex), the call is served. A blocked call gets the rule's status, headers and
 * JSON body and is still recorded by the forwarder, with metadata `governance.blocked_by` naming the rule.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { koaMiddleware, type KoaContextLike } from './middleware.ts';
import { createForwarder, type Forwarder, type ForwarderOptions } from './forwarder.ts';
import type { Identity } from './native-record.ts';

export interface GovernorOptions {
  /** Collector base URL (as for the forwarder). */
  baseUrl: string;
  /** Ingest key. */
  apiKey: string;
  /** How often rules and membership are fetched. Default 10 000 ms; at least 1000 (200 in tests via `minRefreshMs`). */
  refreshMs?: number;
  /** Longest wait between fetches while the collector fails. Default 300 000 ms. */
  maxBackoffMs?: number;
  /** Limit for one fetch. Default 2000 ms. */
  timeoutMs?: number;
  /** Called on each failed fetch; default: console.warn once per kind of failure. */
  onError?: (err: Error) => void;
  /** @internal for tests: the floor of refreshMs. */
  minRefreshMs?: number;
}

export interface Block {
  rule: string;
  status: number;
  headers: Record<string, string>;
  body: unknown;
}

interface Rule {
  id: string;
  block: boolean;
  groups: { path: string; regex: RegExp }[][];
  response: { status: number; headers: Record<string, string>; body: unknown };
}

interface Snapshot {
  rules: Map<string, Rule>;
  companies: Record<string, { rules: string; values?: Record<string, string> }[]>;
}

export interface Governor {
  /** The block for this call of this company, or undefined to serve it (also on any error). */
  decide(companyId: string | undefined, req: IncomingMessage): Block | undefined;
  /** Fetches now; resolves once tried (never rejects). */
  refresh(): Promise<void>;
  /** Stops the background fetches. */
  close(): void;
  /** When the rules were last fetched successfully (ms), or 0. */
  readonly lastRefreshAt: number;
}

const TAG = /\{\{([^{}|]+)(\|([^}]+))?\}\}/g;

/** Merge tags filled as the Moesif SDKs fill them: `{{tag|default}}`, UNKNOWN without value or default. */
function fill(value: unknown, values: Record<string, string>): unknown {
  if (typeof value === 'string')
    return value.replace(TAG, (_m, name: string, _d, fallback: string | undefined) =>
      values[name] ? values[name] : (fallback ?? 'UNKNOWN'),
    );
  if (Array.isArray(value)) return value.map((v) => fill(v, values));
  if (value !== null && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, fill(v, values)]));
  return value;
}

function field(path: string, req: IncomingMessage): string {
  if (path === 'request.route') return req.url ?? '';
  if (path === 'request.verb') return req.method ?? '';
  if (path.startsWith('request.headers.')) {
    const value = req.headers[path.slice('request.headers.'.length).toLowerCase()];
    return Array.isArray(value) ? value.join(', ') : (value ?? '');
  }
  return '';
}

function parseRules(body: unknown): Map<string, Rule> {
  if (!Array.isArray(body)) throw new Error('GET /v1/rules did not answer a list');
  const rules = new Map<string, Rule>();
  for (const r of body as Record<string, unknown>[]) {
    if (r.type !== 'company' || typeof r._id !== 'string') continue;
    const groups = ((r.regex_config as { conditions?: { path: string; value: string }[] }[]) ?? []).map((g) =>
      (g.conditions ?? []).map((c) => ({ path: c.path, regex: new RegExp(c.value) })),
    );
    const response = (r.response ?? {}) as Rule['response'];
    rules.set(r._id, {
      id: r._id,
      block: r.block === true,
      groups,
      response: { status: response.status, headers: response.headers ?? {}, body: response.body },
    });
  }
  return rules;
}

export function createGovernor(options: GovernorOptions): Governor {
  const base = options.baseUrl.replace(/\/+$/, '');
  const refreshMs = Math.max(options.refreshMs ?? 10_000, options.minRefreshMs ?? 1000);
  const maxBackoffMs = options.maxBackoffMs ?? 300_000;
  const timeoutMs = options.timeoutMs ?? 2000;
  const warned = new Set<string>();
  const onError =
    options.onError ??
    ((err: Error) => {
      if (warned.has(err.message)) return;
      warned.add(err.message);
      console.warn(
        `billing-meter governance: ${err.message}; the last rules stay (calls are served if none)`,
      );
    });
  let snapshot: Snapshot | undefined;
  let failures = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let closed = false;
  let lastRefreshAt = 0;
  let running: Promise<void> | undefined;

  const get = async (path: string): Promise<unknown> => {
    const res = await fetch(`${base}${path}`, {
      headers: { authorization: `Bearer ${options.apiKey}` },
      signal: AbortSignal.timeout(timeoutMs),
    });
    if (res.status !== 200) throw new Error(`GET ${path} answered ${res.status}`);
    return res.json();
  };

  const fetchOnce = async () => {
    try {
      const [rules, config] = await Promise.all([get('/v1/rules'), get('/v1/config')]);
      const companies = (config as { company_rules?: Snapshot['companies'] }).company_rules ?? {};
      snapshot = { rules: parseRules(rules), companies };
      failures = 0;
      lastRefreshAt = Date.now();
    } catch (err) {
      failures++;
      onError(err instanceof Error ? err : new Error(String(err)));
    }
  };

  const schedule = () => {
    if (closed) return;
    const wait = failures === 0 ? refreshMs : Math.min(refreshMs * 2 ** Math.min(failures, 20), maxBackoffMs);
    timer = setTimeout(() => void refresh().then(schedule), wait);
    timer.unref();
  };

  const refresh = () => {
    running ??= fetchOnce().finally(() => {
      running = undefined;
    });
    return running;
  };

  void refresh().then(schedule);

  return {
    decide(companyId, req) {
      try {
        if (!snapshot || companyId === undefined) return undefined;
        let block: Block | undefined;
        const headers: Record<string, string> = {};
        // As the SDK: every applicable rule in the listed order; headers add up, the last block wins.
        for (const entry of snapshot.companies[companyId] ?? []) {
          const rule = snapshot.rules.get(entry.rules);
          if (!rule) continue;
          const matches =
            rule.groups.length === 0 ||
            rule.groups.some((g) => g.every((c) => c.regex.test(field(c.path, req))));
          if (!matches) continue;
          const values = entry.values ?? {};
          Object.assign(headers, fill(rule.response.headers, values));
          if (rule.block)
            block = {
              rule: rule.id,
              status: rule.response.status,
              headers,
              body: fill(rule.response.body, values),
            };
        }
        return block;
      } catch (err) {
        onError(err instanceof Error ? err : new Error(String(err)));
        return undefined;
      }
    },
    refresh,
    close() {
      closed = true;
      if (timer) clearTimeout(timer);
    },
    get lastRefreshAt() {
      return lastRefreshAt;
    },
  };
}

const blockedBy = new WeakMap<ServerResponse, string>();

/** Sends the rule's response; the forwarder records it (finish) with the rule named. */
function sendBlock(res: ServerResponse, block: Block): void {
  blockedBy.set(res, block.rule);
  const body = JSON.stringify(block.body ?? {});
  res.statusCode = block.status;
  for (const [name, value] of Object.entries(block.headers)) res.setHeader(name, value);
  res.setHeader('content-type', 'application/json');
  res.setHeader('content-length', Buffer.byteLength(body));
  res.end(body);
}

/** The forwarder's identify, with `governance.blocked_by` added to the record of a blocked call. */
function markingBlocked(identify: ForwarderOptions['identify']): NonNullable<ForwarderOptions['identify']> {
  return (req, res, context) => {
    const who = identify?.(req, res, context);
    const rule = blockedBy.get(res);
    if (rule === undefined) return who;
    const identity: Identity = { ...(who ?? {}) };
    identity.metadata = { ...(who?.metadata ?? {}), 'governance.blocked_by': rule };
    return identity;
  };
}

export interface GovernedOptions extends ForwarderOptions {
  /** Governance settings; baseUrl and apiKey default to the forwarder's. */
  governance?: Partial<GovernorOptions>;
}

export type GovernedKoaMiddleware = ((ctx: KoaContextLike, next: () => Promise<unknown>) => Promise<void>) & {
  readonly forwarder: Forwarder;
  readonly governor: Governor;
};

/**
 * `app.use(governedKoaMiddleware(opts))`: records every call like koaMiddleware, and answers a call the
 * rules block with the rule's response instead of running the rest of the stack. The company is the
 * `company_id` (else `customer`) of the `identify` hook, asked when the request arrives.
 */
export function governedKoaMiddleware(options: GovernedOptions): GovernedKoaMiddleware {
  const forwarder = createForwarder({ ...options, identify: markingBlocked(options.identify) });
  const governor = createGovernor({
    baseUrl: options.baseUrl,
    apiKey: options.apiKey,
    ...options.governance,
  });
  const record = koaMiddleware(forwarder);
  const middleware = async function billingMeterGoverned(
    ctx: KoaContextLike,
    next: () => Promise<unknown>,
  ): Promise<void> {
    let block: Block | undefined;
    try {
      const who = options.identify?.(ctx.req, ctx.res, ctx);
      const company = who?.company_id ?? who?.customer;
      block = governor.decide(company == null ? undefined : String(company), ctx.req);
    } catch {
      block = undefined; // fail open: an error of ours never blocks a call
    }
    if (!block) return record(ctx, next);
    await record(ctx, async () => {
      // Koa must not write a response of its own after ours.
      (ctx as { respond?: boolean }).respond = false;
      sendBlock(ctx.res, block);
    });
  };
  return Object.assign(middleware, { forwarder, governor });
}

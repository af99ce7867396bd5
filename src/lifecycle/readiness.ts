import type { Readiness } from '../http/app.ts';

/** What /readyz asks: is ClickHouse reachable (asked at most once a second), does the spool have room. */
export function readiness(deps: {
  ping(): Promise<boolean>;
  spools: ReadonlyMap<string, { readonly hasRoom: boolean; readonly depthBytes: number }>;
  nowMs?: () => number;
}): Readiness {
  const nowMs = deps.nowMs ?? Date.now;
  let cache: { at: number; ok: boolean } | undefined;
  return {
    clickhouseReachable: async () => {
      const now = nowMs();
      if (!cache || now - cache.at > 1000) cache = { at: now, ok: await deps.ping() };
      return cache.ok;
    },
    spoolHasRoom: () => [...deps.spools.values()].every((s) => s.hasRoom),
    spoolBytes: () => new Map([...deps.spools].map(([table, spool]) => [table, spool.depthBytes])),
  };
}

import { watch, type FSWatcher } from 'node:fs';
import type { Logger } from 'pino';
import type { Governance } from '../governance/governance.ts';
import { loadRules } from '../governance/load-rules.ts';
import { loadMeters, type MeterError } from '../meters/load-meters.ts';
import type { MeterDefinition } from '../meters/meter-schema.ts';

/**
 * Hot reload of meters and governance rules, on SIGHUP and on a change in either directory (a
 * file watch, debounced). The same loaders and validation as at boot; a directory with any bad file
 * is refused whole, each error logged as file:line:col, and the definitions already loaded keep
 * serving. Meters are replaced in the array every part of the service holds (services.meters), so
 * the next evaluation, status or usage read sees them without a restart. The limit: a run already
 * iterating the list while it is replaced sees the new list from then on (each meter is evaluated
 * whole by its own definition and version, so no meter is ever computed half old, half new).
 */
export interface ReloadOutcome {
  meters: 'unchanged' | 'reloaded' | 'refused';
  rules: 'reloaded' | 'refused';
  errors: MeterError[];
}

export interface DefinitionsReloader {
  reload(): Promise<ReloadOutcome>;
  /** Watches the directories and listens for SIGHUP. */
  start(): void;
  stop(): void;
}

export function definitionsReloader(deps: {
  metersDir: string;
  governanceDir: string;
  /** The service's live list, replaced in place on a good reload. */
  meters: MeterDefinition[];
  governance: Governance;
  /** After meters changed (record the new versions). */
  onMetersReloaded?: (meters: readonly MeterDefinition[]) => Promise<void>;
  logger: Pick<Logger, 'info' | 'warn' | 'error'>;
  debounceMs?: number;
}): DefinitionsReloader {
  const { logger } = deps;
  const watchers: FSWatcher[] = [];
  let timer: ReturnType<typeof setTimeout> | undefined;
  let queue: Promise<unknown> = Promise.resolve();

  const readMeters = async () => {
    try {
      return await loadMeters(deps.metersDir);
    } catch (err) {
      if ((err as { code?: unknown }).code === 'ENOENT') return { meters: [], errors: [] };
      throw err;
    }
  };

  const reloadOnce = async (): Promise<ReloadOutcome> => {
    const errors: MeterError[] = [];
    let meters: ReloadOutcome['meters'] = 'unchanged';
    const loaded = await readMeters();
    if (loaded.errors.length > 0) {
      errors.push(...loaded.errors);
      meters = 'refused';
    } else {
      const next = loaded.meters.map((m) => m.definition);
      if (JSON.stringify(next) !== JSON.stringify(deps.meters)) {
        deps.meters.splice(0, deps.meters.length, ...next);
        meters = 'reloaded';
        await deps.onMetersReloaded?.(deps.meters);
      }
    }
    const rules = await loadRules(deps.governanceDir, deps.meters);
    if (rules.errors.length === 0) deps.governance.replaceRules(rules.rules);
    errors.push(...rules.errors);
    for (const e of errors) logger.error({ file: e.file, line: e.line, col: e.col }, `refused: ${e.message}`);
    const outcome: ReloadOutcome = {
      meters,
      rules: rules.errors.length === 0 ? 'reloaded' : 'refused',
      errors,
    };
    logger.info(
      { meters: outcome.meters, rules: outcome.rules, ruleCount: deps.governance.rules().length },
      'definitions reloaded',
    );
    return outcome;
  };

  const reload = () => {
    const run = queue.then(reloadOnce);
    queue = run.catch(() => undefined);
    return run;
  };
  const soon = () => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      reload().catch((err: unknown) =>
        logger.error({ err: String(err) }, 'reload failed; old definitions kept'),
      );
    }, deps.debounceMs ?? 150);
  };
  const onSighup = () => soon();

  return {
    reload,
    start() {
      process.on('SIGHUP', onSighup);
      for (const dir of [deps.metersDir, deps.governanceDir]) {
        try {
          watchers.push(watch(dir, soon));
        } catch (err) {
          // A directory created later is picked up on SIGHUP.
          logger.warn({ dir, err: String(err) }, 'not watching for changes (SIGHUP still reloads)');
        }
      }
    },
    stop() {
      process.off('SIGHUP', onSighup);
      for (const w of watchers.splice(0)) w.close();
      if (timer) clearTimeout(timer);
    },
  };
}

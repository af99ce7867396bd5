import type { Logger } from 'pino';
import type { SyncFence } from '../billing/stripe/ports.ts';
import type { SyncReport } from '../billing/stripe/sync-service.ts';
import type { SyncRunHistory, SyncTrigger } from '../billing/stripe/sync-runs.ts';
import type { EvaluationReport, EvaluationService } from '../meters/evaluation.ts';
import type { MeterDefinition } from '../meters/meter-schema.ts';
import type { SchemaGuard } from './schema-guard.ts';

export interface JobMetrics {
  onEvaluation(report: EvaluationReport): void;
  onSync(report: SyncReport): void;
  onSyncFailed(): void;
}

export interface HourlyJob {
  /** The scheduled evaluation now: every closed hour since the watermarks, plus the lateness window. */
  evaluate(): Promise<EvaluationReport>;
  /** One Stripe sync pass (queued behind one already running). */
  sync(): Promise<SyncReport>;
  /**
   * Evaluate, then bring Stripe up to date. A failed evaluation still lets the sync send what earlier
   * runs computed; a failed sync is resumed by the next one (the ledger knows where).
   */
  run(): Promise<{ evaluation: EvaluationReport | undefined; sync: SyncReport }>;
}

/** What the scheduler runs every hour, and what `meters evaluate` / `sync run` run on demand. */
export function hourlyJob(deps: {
  schema: SchemaGuard;
  evaluation: EvaluationService;
  meters: readonly MeterDefinition[];
  /** `fence`: run under that lease, already held (the job's); absent: the sync takes its own lock. */
  runSync(meters: readonly MeterDefinition[], fence?: SyncFence): Promise<SyncReport>;
  /**
   * Among several replicas (COORDINATION_URL): runs the whole job (evaluation and sync) under the lease,
   * so one replica's job runs at a time; absent: one process, the sync's file lock.
   */
  exclusive?: <T>(fn: (fence: SyncFence) => Promise<T>) => Promise<T>;
  /**
   * What hears of each evaluation (alerts). Its failure is logged, not thrown: the evaluation stands,
   * and the next one observes the same period-to-date usage again.
   */
  afterEvaluation?(report: EvaluationReport): Promise<void>;
  metrics?: JobMetrics;
  /** Where each sync pass's result or error is kept (the dashboard's sync runs). */
  runs?: SyncRunHistory;
  logger: Pick<Logger, 'info' | 'warn' | 'error'>;
}): HourlyJob {
  const { logger } = deps;
  const evaluate = async () => {
    await deps.schema.ensure();
    const report = await deps.evaluation.run(deps.meters);
    deps.metrics?.onEvaluation(report);
    logger.info(
      {
        ranges: report.ranges.length,
        closedThrough: report.closedThrough.toISOString(),
        lateOutsideWindow: report.lateOutsideWindow,
      },
      'meters evaluated',
    );
    if (report.lateOutsideWindow > 0) {
      logger.warn(
        { events: report.lateOutsideWindow, windowStart: report.windowStart.toISOString() },
        'events arrived after their lateness window and are not billed',
      );
    }
    await deps
      .afterEvaluation?.(report)
      .catch((err: unknown) =>
        logger.error({ err: String(err) }, 'alerts could not be checked; the next evaluation checks again'),
      );
    return report;
  };
  const sync = async (trigger: SyncTrigger, fence?: SyncFence) => {
    const pass = async () => {
      await deps.schema.ensure();
      return deps.runSync(deps.meters, fence);
    };
    try {
      const report = await (deps.runs ? deps.runs.track(trigger, pass) : pass());
      deps.metrics?.onSync(report);
      return report;
    } catch (err) {
      deps.metrics?.onSyncFailed();
      throw err;
    }
  };
  const run = async (fence?: SyncFence) => {
    const evaluation = await evaluate().catch((err: unknown) => {
      logger.error({ err: String(err) }, 'meter evaluation failed; the next run catches up');
      return undefined;
    });
    return { evaluation, sync: await sync('scheduled', fence) };
  };
  return {
    evaluate,
    sync: () => sync('on_demand'),
    run: () => (deps.exclusive ? deps.exclusive((fence) => run(fence)) : run()),
  };
}

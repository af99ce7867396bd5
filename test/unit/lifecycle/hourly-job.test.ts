import { describe, expect, it } from 'vitest';
import type { SyncFence } from '../../../src/billing/stripe/ports.ts';
import type { SyncReport } from '../../../src/billing/stripe/sync-service.ts';
import { SyncRunHistory } from '../../../src/billing/stripe/sync-runs.ts';
import { hourlyJob } from '../../../src/lifecycle/hourly-job.ts';
import { schemaGuard } from '../../../src/lifecycle/schema-guard.ts';
import type { EvaluationReport, EvaluationService } from '../../../src/meters/evaluation.ts';

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
const report = {
  ranges: [],
  closedThrough: new Date(0),
  windowStart: new Date(0),
  lateOutsideWindow: 0,
} as unknown as EvaluationReport;

describe('the hourly job among replicas', () => {
  it('runs evaluation and sync inside the lease, handing the sync the lease it holds', async () => {
    const steps: string[] = [];
    const fence: SyncFence = { token: 9n, assertHeld: () => undefined };
    const job = hourlyJob({
      schema: schemaGuard(async () => undefined),
      evaluation: {
        run: async () => {
          steps.push('evaluate');
          return report;
        },
      } as unknown as EvaluationService,
      meters: [],
      runSync: async (_meters, held) => {
        steps.push(`sync under ${held?.token ?? 'its own lock'}`);
        return {} as SyncReport;
      },
      exclusive: async (fn) => {
        steps.push('lease taken');
        try {
          return await fn(fence);
        } finally {
          steps.push('lease released');
        }
      },
      logger: quiet,
    });
    await job.run();
    expect(steps).toEqual(['lease taken', 'evaluate', 'sync under 9', 'lease released']);
    // On demand, the sync alone takes its own (runSync's) lock or lease.
    steps.length = 0;
    await job.sync();
    expect(steps).toEqual(['sync under its own lock']);
  });
});

describe('the sync runs the hourly job keeps', () => {
  const ok = (sent: number): SyncReport =>
    ({ runAt: new Date(0), dryRun: false, aborted: false, sent, held: [] }) as unknown as SyncReport;

  it('records scheduled and on-demand passes, newest first, a failure with its error', async () => {
    let clock = Date.parse('2026-11-15T12:00:00Z');
    const runs = new SyncRunHistory(200, () => new Date((clock += 1000)));
    const results: (() => Promise<SyncReport>)[] = [
      async () => ok(3),
      async () => {
        throw new Error('stripe: connection refused');
      },
      async () => ({ ...ok(0), aborted: true }),
    ];
    const job = hourlyJob({
      schema: schemaGuard(async () => undefined),
      evaluation: { run: async () => report } as unknown as EvaluationService,
      meters: [],
      runSync: () => results.shift()!(),
      runs,
      logger: quiet,
    });
    await job.run();
    await expect(job.sync()).rejects.toThrow('connection refused');
    await job.sync();
    const listed = runs.list();
    expect(listed.map((r) => [r.trigger, r.outcome, r.error])).toEqual([
      ['on_demand', 'aborted', undefined],
      ['on_demand', 'failed', 'stripe: connection refused'],
      ['scheduled', 'ok', undefined],
    ]);
    expect(listed[2]!.report?.sent).toBe(3);
    expect(listed[1]!.report).toBeUndefined();
    expect(listed[0]!.finishedAt.getTime()).toBeGreaterThan(listed[0]!.startedAt.getTime());
    expect(runs.list(1)).toEqual([listed[0]]);
  });

  it('keeps the last `capacity` runs only', async () => {
    const runs = new SyncRunHistory(3);
    for (let i = 0; i < 10; i++) await runs.track('scheduled', async () => ok(i));
    expect(runs.list().map((r) => r.report?.sent)).toEqual([9, 8, 7]);
  });
});

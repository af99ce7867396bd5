import { describe, expect, it } from 'vitest';
import type { SyncFence } from '../../../src/billing/stripe/ports.ts';
import type { SyncReport } from '../../../src/billing/stripe/sync-service.ts';
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

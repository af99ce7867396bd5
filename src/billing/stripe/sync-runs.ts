import type { SyncReport } from './sync-service.ts';

/** How a sync pass came to run: the hourly schedule, or on demand (POST /v1/admin/sync/run, `sync run`). */
export type SyncTrigger = 'scheduled' | 'on_demand';

export interface SyncRunRecord {
  trigger: SyncTrigger;
  startedAt: Date;
  finishedAt: Date;
  /** ok, dry_run, aborted (Stripe kept failing; the next run resumes), failed (an error: `error`). */
  outcome: 'ok' | 'dry_run' | 'aborted' | 'failed';
  report?: SyncReport;
  error?: string;
}

/**
 * The last sync passes of this process, newest first, with their result or error: what the dashboard's
 * Stripe page lists. In memory and bounded (a restart forgets them; the ledger in ClickHouse is the
 * record of what was sent), so a service running for months holds `capacity` runs, not every hour's.
 */
export class SyncRunHistory {
  private readonly runs: SyncRunRecord[] = [];

  constructor(
    readonly capacity = 200,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** Runs `pass` and records how it ended; its result or error passes through unchanged. */
  async track(trigger: SyncTrigger, pass: () => Promise<SyncReport>): Promise<SyncReport> {
    const startedAt = this.now();
    try {
      const report = await pass();
      const outcome = report.aborted ? 'aborted' : report.dryRun ? 'dry_run' : 'ok';
      this.push({ trigger, startedAt, finishedAt: this.now(), outcome, report });
      return report;
    } catch (err) {
      const error = err instanceof Error ? err.message : String(err);
      this.push({ trigger, startedAt, finishedAt: this.now(), outcome: 'failed', error });
      throw err;
    }
  }

  /** Newest first, at most `limit`. */
  list(limit = this.capacity): SyncRunRecord[] {
    return this.runs.slice(-limit).reverse();
  }

  private push(run: SyncRunRecord): void {
    this.runs.push(run);
    if (this.runs.length > this.capacity) this.runs.splice(0, this.runs.length - this.capacity);
  }
}

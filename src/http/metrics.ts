import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { IngestMetrics } from '../collector/ingest-service.ts';

/** Prometheus metrics of the service; one registry per app instance so tests don't share counters. */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const accepted = new Counter({
    name: 'billing_meter_events_accepted_total',
    help: 'Events accepted (durable) by source format',
    labelNames: ['format'],
    registers: [registry],
  });
  const rejected = new Counter({
    name: 'billing_meter_events_rejected_total',
    help: 'Events rejected by source format',
    labelNames: ['format'],
    registers: [registry],
  });
  const unattributed = new Counter({
    name: 'billing_meter_events_unattributed_total',
    help: 'Events accepted (durable) without a customer, by source format: stored, but no meter bills them',
    labelNames: ['format'],
    registers: [registry],
  });
  const spoolBytes = new Gauge({
    name: 'billing_meter_spool_bytes',
    help: 'Bytes in the local spool not yet in ClickHouse',
    labelNames: ['table'],
    registers: [registry],
  });
  const insertSeconds = new Histogram({
    name: 'billing_meter_clickhouse_insert_seconds',
    help: 'Latency of ClickHouse inserts from the spool',
    labelNames: ['table', 'outcome'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const insertBytes = new Counter({
    name: 'billing_meter_clickhouse_inserted_bytes_total',
    help: 'Bytes inserted into ClickHouse from the spool',
    labelNames: ['table'],
    registers: [registry],
  });
  const syncOperations = new Counter({
    name: 'billing_meter_stripe_sync_operations_total',
    help: 'Calls of the Stripe sync by outcome (sent, duplicate, cancelled, rejected)',
    labelNames: ['outcome'],
    registers: [registry],
  });
  const syncRuns = new Counter({
    name: 'billing_meter_stripe_sync_runs_total',
    help: 'Stripe sync runs by result (ok, aborted: Stripe kept failing, failed: an error, dry_run)',
    labelNames: ['result'],
    registers: [registry],
  });
  const syncHeld = new Gauge({
    name: 'billing_meter_stripe_sync_held_customers',
    help: 'Customer and meter pairs whose usage waits for a Stripe customer, at the last run',
    registers: [registry],
  });
  const syncDiscrepancies = new Counter({
    name: 'billing_meter_stripe_sync_discrepancies_recorded_total',
    help: 'Discrepancies the Stripe sync recorded (see GET /v1/sync/discrepancies)',
    registers: [registry],
  });
  const syncLastSuccess = new Gauge({
    name: 'billing_meter_stripe_sync_last_success_timestamp_seconds',
    help: 'When a Stripe sync run last completed without stopping early',
    registers: [registry],
  });
  const lateOutsideWindow = new Counter({
    name: 'billing_meter_evaluation_late_outside_window_events_total',
    help: 'Events that arrived after their hour left the lateness window (LATENESS_HOURS): stored, not billed',
    registers: [registry],
  });
  const lateOutsideWindowLastRun = new Gauge({
    name: 'billing_meter_evaluation_late_outside_window_events',
    help: 'Events that arrived after their lateness window, counted by the last scheduled evaluation',
    registers: [registry],
  });
  const evaluationLastRun = new Gauge({
    name: 'billing_meter_evaluation_last_run_timestamp_seconds',
    help: 'When the scheduled meter evaluation last completed',
    registers: [registry],
  });
  const alertDeliveries = new Counter({
    name: 'billing_meter_alert_deliveries_total',
    help: 'Alert delivery attempts by outcome (delivered, failed: retried later or given up)',
    labelNames: ['outcome'],
    registers: [registry],
  });
  const alertPassesSkipped = new Counter({
    name: 'billing_meter_alert_delivery_passes_skipped_total',
    help: 'Alert delivery passes that found alerts due while another replica held the lease (it sends them)',
    registers: [registry],
  });
  const ingest: IngestMetrics = {
    accepted: (format, n) => accepted.inc({ format }, n),
    rejected: (format, n) => rejected.inc({ format }, n),
    unattributed: (format, n) => unattributed.inc({ format }, n),
  };
  const since = new Date();
  return {
    registry,
    ingest,
    spoolBytes,
    /** Events accepted, rejected and unattributed per source format since this process started. */
    async ingestByFormat() {
      const byFormat = new Map<string, { accepted: number; rejected: number; unattributed: number }>();
      for (const [field, counter] of [
        ['accepted', accepted],
        ['rejected', rejected],
        ['unattributed', unattributed],
      ] as const) {
        for (const { value, labels } of (await counter.get()).values) {
          const format = String(labels.format ?? '');
          const row = byFormat.get(format) ?? { accepted: 0, rejected: 0, unattributed: 0 };
          row[field] += value;
          byFormat.set(format, row);
        }
      }
      return {
        since,
        formats: [...byFormat]
          .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
          .map(([format, counts]) => ({ format, ...counts })),
      };
    },
    onSync(report: {
      dryRun: boolean;
      aborted: boolean;
      sent: number;
      duplicates: number;
      cancelled: number;
      rejected: number;
      held: unknown[];
      discrepancies: number;
      runAt: Date;
    }) {
      for (const [outcome, n] of [
        ['sent', report.sent],
        ['duplicate', report.duplicates],
        ['cancelled', report.cancelled],
        ['rejected', report.rejected],
      ] as const) {
        if (n > 0) syncOperations.inc({ outcome }, n);
      }
      syncRuns.inc({ result: report.aborted ? 'aborted' : report.dryRun ? 'dry_run' : 'ok' });
      syncHeld.set(report.held.length);
      if (report.discrepancies > 0) syncDiscrepancies.inc(report.discrepancies);
      if (!report.aborted) syncLastSuccess.set(Date.now() / 1000);
    },
    onEvaluation(report: { lateOutsideWindow: number }) {
      if (report.lateOutsideWindow > 0) lateOutsideWindow.inc(report.lateOutsideWindow);
      lateOutsideWindowLastRun.set(report.lateOutsideWindow);
      evaluationLastRun.set(Date.now() / 1000);
    },
    onSyncFailed() {
      syncRuns.inc({ result: 'failed' });
    },
    onAlertPass(report: { delivered: number; failed: number; skipped?: number }) {
      if (report.delivered > 0) alertDeliveries.inc({ outcome: 'delivered' }, report.delivered);
      if (report.failed > 0) alertDeliveries.inc({ outcome: 'failed' }, report.failed);
      if (report.skipped) alertPassesSkipped.inc(report.skipped);
    },
    onInsert(table: string, bytes: number, seconds: number, ok: boolean) {
      insertSeconds.observe({ table, outcome: ok ? 'ok' : 'error' }, seconds);
      if (ok) insertBytes.inc({ table }, bytes);
    },
  };
}

export type Metrics = ReturnType<typeof createMetrics>;

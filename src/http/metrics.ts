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
  const ingest: IngestMetrics = {
    accepted: (format, n) => accepted.inc({ format }, n),
    rejected: (format, n) => rejected.inc({ format }, n),
  };
  return {
    registry,
    ingest,
    spoolBytes,
    onInsert(table: string, bytes: number, seconds: number, ok: boolean) {
      insertSeconds.observe({ table, outcome: ok ? 'ok' : 'error' }, seconds);
      if (ok) insertBytes.inc({ table }, bytes);
    },
  };
}

export type Metrics = ReturnType<typeof createMetrics>;

import { createHash } from 'node:crypto';
import { alertThresholds, type AlertThreshold } from '../meters/alert-thresholds.ts';
import type { MeterDefinition } from '../meters/meter-schema.ts';

/**
 * Crossing detection: turns observations of period-to-date usage into crossings, each recorded once
 * per (customer, meter, threshold, period) and never again, whatever the usage does afterwards.
 *
 * - The crossing store is the outbox: a crossing is recorded (durably) before anything is sent, and
 *   delivery (alert-delivery.ts) reads what is recorded and not delivered yet. A crash between the two
 *   leaves a recorded crossing that the next delivery pass sends.
 * - Re-evaluations: a lower observation records nothing and deletes nothing, so usage that falls below
 *   a threshold and rises again in the same period does not alert twice.
 * - Restarts and repeated observations: what is already recorded is read back before recording, and the
 *   crossing id is deterministic, so two writes of one crossing are one crossing (the store collapses
 *   them by id).
 * - Limits: one writer at a time. Two processes observing at once may both record one crossing; that
 *   is still one id, and delivery sends per id. Running delivery in one replica is the coordination
 *   lease's job (see DESIGN).
 */

/** Period-to-date usage of one customer on one meter, as some usage source saw it. */
export interface UsageObservation {
  customer: string;
  meter: string;
  /** Start of the billing period the quantity belongs to. */
  periodStart: Date;
  quantity: bigint;
  observedAt: Date;
}

/** Where observations come from: today the hourly evaluation's stored usage; later a per-minute one. */
export interface ObservationSource {
  observations(): Promise<UsageObservation[]>;
}

export interface AlertCrossing {
  id: string;
  customer: string;
  meter: string;
  periodStart: Date;
  threshold: string;
  thresholdValue: bigint;
  label: string;
  /** The observed quantity that crossed the threshold. */
  quantity: bigint;
  observedAt: Date;
  recordedAt: Date;
}

export interface CrossingFilter {
  customer?: string;
  meter?: string;
  periodStart?: Date;
  limit: number;
}

/** Port: the crossings outbox. */
export interface CrossingStore {
  /** `${customer}\0${threshold}` of every crossing recorded for the meter in the period. */
  recorded(meter: string, periodStart: Date, customers: readonly string[]): Promise<Set<string>>;
  record(crossings: readonly AlertCrossing[]): Promise<void>;
  /** Newest first. */
  list(filter: CrossingFilter): Promise<AlertCrossing[]>;
  /** Crossings recorded at or after `since`, oldest first (what delivery may still owe). */
  recordedSince(since: Date): Promise<AlertCrossing[]>;
}

export const crossingKey = (customer: string, threshold: string): string => `${customer}\u0000${threshold}`;

/** `alrt_` + 24 hex digits of SHA-256 over what makes a crossing one. */
export function crossingId(meter: string, customer: string, threshold: string, periodStart: Date): string {
  const digest = createHash('sha256')
    .update([meter, customer, threshold, periodStart.toISOString()].join('\u0000'), 'utf8')
    .digest('hex');
  return `alrt_${digest.slice(0, 24)}`;
}

export class AlertEngine {
  private readonly thresholds: Map<string, AlertThreshold[]>;
  /** One observe at a time: two overlapping passes would both see a crossing as new. */
  private running: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly store: CrossingStore,
    meters: readonly MeterDefinition[],
    private readonly now: () => Date = () => new Date(),
  ) {
    this.thresholds = new Map(
      meters.filter((m) => (m.alerts ?? []).length > 0).map((m) => [m.name, alertThresholds(m)]),
    );
  }

  /** Meters that have thresholds: the only ones worth observing. */
  get meters(): string[] {
    return [...this.thresholds.keys()];
  }

  /** Records the crossings these observations make that were not recorded before; returns them. */
  observe(observations: readonly UsageObservation[]): Promise<AlertCrossing[]> {
    const run = this.running.then(() => this.observeNow(observations));
    this.running = run.catch(() => undefined);
    return run;
  }

  private async observeNow(observations: readonly UsageObservation[]): Promise<AlertCrossing[]> {
    const groups = new Map<string, UsageObservation[]>();
    for (const o of observations) {
      if (!this.thresholds.has(o.meter)) continue;
      const key = `${o.meter}\u0000${o.periodStart.getTime()}`;
      groups.set(key, [...(groups.get(key) ?? []), o]);
    }
    const fresh: AlertCrossing[] = [];
    for (const group of groups.values()) {
      const { meter, periodStart } = group[0]!;
      const thresholds = this.thresholds.get(meter)!;
      const lowest = thresholds[0]!.value;
      const crossing = group.filter((o) => o.quantity >= lowest);
      if (crossing.length === 0) continue;
      const done = await this.store.recorded(meter, periodStart, [
        ...new Set(crossing.map((o) => o.customer)),
      ]);
      for (const o of crossing) {
        for (const t of thresholds) {
          if (o.quantity < t.value) break;
          const key = crossingKey(o.customer, t.id);
          if (done.has(key)) continue;
          done.add(key);
          fresh.push({
            id: crossingId(meter, o.customer, t.id, periodStart),
            customer: o.customer,
            meter,
            periodStart,
            threshold: t.id,
            thresholdValue: t.value,
            label: t.label,
            quantity: o.quantity,
            observedAt: o.observedAt,
            recordedAt: this.now(),
          });
        }
      }
    }
    if (fresh.length > 0) await this.store.record(fresh);
    return fresh;
  }
}

import type { DeliveryAttempt, DeliveryStore } from './alert-delivery.ts';
import { crossingKey, type AlertCrossing, type CrossingFilter, type CrossingStore } from './alert-engine.ts';

/** The fakes beside the ports, for unit tests: the crossings outbox (first copy of an id wins) and its attempts. */
export class InMemoryCrossingStore implements CrossingStore {
  readonly crossings: AlertCrossing[] = [];

  async recorded(meter: string, periodStart: Date, customers: readonly string[]): Promise<Set<string>> {
    return new Set(
      this.crossings
        .filter(
          (c) =>
            c.meter === meter &&
            c.periodStart.getTime() === periodStart.getTime() &&
            customers.includes(c.customer),
        )
        .map((c) => crossingKey(c.customer, c.threshold)),
    );
  }

  async record(crossings: readonly AlertCrossing[]): Promise<void> {
    for (const c of crossings) if (!this.crossings.some((k) => k.id === c.id)) this.crossings.push({ ...c });
  }

  async list(filter: CrossingFilter): Promise<AlertCrossing[]> {
    return this.crossings
      .filter(
        (c) =>
          (filter.meter === undefined || c.meter === filter.meter) &&
          (filter.customer === undefined || c.customer === filter.customer) &&
          (filter.periodStart === undefined || c.periodStart.getTime() === filter.periodStart.getTime()),
      )
      .sort((a, b) => b.recordedAt.getTime() - a.recordedAt.getTime())
      .slice(0, filter.limit);
  }

  async recordedSince(since: Date): Promise<AlertCrossing[]> {
    return this.crossings
      .filter((c) => c.recordedAt >= since)
      .sort((a, b) => a.recordedAt.getTime() - b.recordedAt.getTime());
  }
}

export class InMemoryDeliveryStore implements DeliveryStore {
  readonly attempts: DeliveryAttempt[] = [];
  /** Calls of attemptsSince: how many times a pass read what is due. */
  reads = 0;

  async record(attempt: DeliveryAttempt): Promise<void> {
    this.attempts.push({ ...attempt });
  }

  async attemptsSince(since: Date): Promise<DeliveryAttempt[]> {
    this.reads += 1;
    return this.attempts.filter((a) => a.attemptedAt >= since);
  }

  async attemptsOf(crossingIds: readonly string[]): Promise<DeliveryAttempt[]> {
    return this.attempts.filter((a) => crossingIds.includes(a.crossingId));
  }
}

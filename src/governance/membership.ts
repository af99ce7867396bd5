import { createHash } from 'node:crypto';
import {
  customerStatus,
  type BillingStateStore,
  type CustomerIndex,
  type CustomerStatus,
} from '../billing/stripe/billing-status.ts';
import type { ResolvedCustomer } from '../billing/stripe/customer-directory.ts';
import type { MeterDefinition } from '../meters/meter-schema.ts';
import { periodId } from '../time/billing-period.ts';
import type { CurrentUsage } from './current-usage.ts';

/**
 * Who is unpaid, over quota or unmapped now: an in-memory snapshot of every known customer's
 * billing status, decided by the billing status's own rules (customerStatus) but with usage from
 * CurrentUsage (the logs, within a minute) instead of the hourly evaluation. Refreshed when usage
 * is refreshed and right after a Stripe webhook (so `invoice.paid` lifts an unpaid block within
 * seconds). Requests are answered from the snapshot only; a failed refresh keeps the old one.
 */
export interface MembershipDeps {
  usage: CurrentUsage;
  directory: { getMany(customerKeys: readonly string[]): Promise<Map<string, ResolvedCustomer>> };
  states: BillingStateStore;
  customers: CustomerIndex;
  meters: () => readonly MeterDefinition[];
  onError?: (err: unknown) => void;
}

const PAGE = 1000;

export class Membership {
  private statuses = new Map<string, CustomerStatus>();
  private digest = '';
  private running: Promise<void> | undefined;
  private again = false;
  private readonly listeners: (() => void)[] = [];

  constructor(private readonly deps: MembershipDeps) {}

  status(customer: string): CustomerStatus | undefined {
    return this.statuses.get(customer);
  }

  all(): ReadonlyMap<string, CustomerStatus> {
    return this.statuses;
  }

  /** Changes whenever someone's reasons change (what x-moesif-config-etag follows). */
  version(): string {
    return this.digest;
  }

  onChange(listener: () => void): void {
    this.listeners.push(listener);
  }

  /** Re-reads the billing side; a call during a refresh runs one more after it (never lost). */
  refresh(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      do {
        this.again = false;
        await this.read().catch((err: unknown) => this.deps.onError?.(err));
      } while (this.again);
    })().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async read(): Promise<void> {
    const snapshot = this.deps.usage.snapshot();
    const keys = new Set<string>();
    for (let after: string | undefined; ;) {
      const page = await this.deps.customers.list({ limit: PAGE, ...(after ? { after } : {}) });
      for (const k of page) keys.add(k);
      if (page.length < PAGE) break;
      after = page[page.length - 1];
    }
    for (const byCustomer of snapshot?.usage.values() ?? []) for (const k of byCustomer.keys()) keys.add(k);
    const list = [...keys].filter((k) => k !== '');
    const mappings = await this.deps.directory.getMany(list);
    const states = await this.deps.states.get([
      ...new Set([...mappings.values()].map((m) => m.stripeCustomerId)),
    ]);
    const meters = this.deps.meters();
    const period = snapshot?.period;
    const periodView = period
      ? { id: periodId(period.start), start: period.start.toISOString(), end: period.end.toISOString() }
      : { id: '', start: '', end: '' };
    const next = new Map<string, CustomerStatus>();
    for (const customer of list) {
      const mapping = mappings.get(customer);
      const usage = {
        customer,
        period: periodView,
        meters: meters.map((m) => ({
          meter: m.name,
          unit: m.unit,
          quantity: (snapshot?.usage.get(m.name)?.get(customer) ?? 0n).toString(),
        })),
      };
      next.set(
        customer,
        customerStatus(usage, mapping, mapping && states.get(mapping.stripeCustomerId), meters),
      );
    }
    const digest = createHash('sha256')
      .update(JSON.stringify([...next].map(([k, s]) => [k, s.reasons])))
      .digest('hex')
      .slice(0, 16);
    this.statuses = next;
    if (digest !== this.digest) {
      this.digest = digest;
      for (const listener of this.listeners) listener();
    }
  }
}

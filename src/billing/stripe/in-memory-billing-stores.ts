import type { BillingState, BillingStateStore, CustomerIndex, CustomerListQuery } from './billing-status.ts';
import type { CustomerMappingStore, ExplicitMapping } from './customer-directory.ts';
import type { WebhookEventStore } from './webhooks.ts';

/**
 * Fakes beside the ports of customer mapping, webhook ids, billing state and the customer index, for
 * unit tests. They keep ClickHouse's semantics: the highest version of a key wins, whatever the order
 * of the writes.
 */
export class InMemoryCustomerMappingStore implements CustomerMappingStore {
  readonly explicit = new Map<string, ExplicitMapping>();
  /** Moesif company metadata: company id → stripe_customer_id, as the companies table would give it. */
  readonly moesif = new Map<string, string>();
  writes = 0;

  async lookup(customerKeys: readonly string[]) {
    const explicit = new Map<string, ExplicitMapping>();
    const moesif = new Map<string, string>();
    for (const key of customerKeys) {
      const e = this.explicit.get(key);
      if (e) explicit.set(key, { ...e });
      const m = this.moesif.get(key);
      if (m !== undefined && m !== '') moesif.set(key, m);
    }
    return { explicit, moesif };
  }

  async write(mapping: ExplicitMapping): Promise<void> {
    this.writes += 1;
    const old = this.explicit.get(mapping.customerKey);
    if (!old || mapping.version >= old.version) this.explicit.set(mapping.customerKey, { ...mapping });
  }

  async list(q: { limit: number; after?: string }): Promise<ExplicitMapping[]> {
    const after = q.after;
    return [...this.explicit.values()]
      .filter(
        (m) =>
          m.stripeCustomerId !== '' &&
          (after === undefined || Buffer.compare(Buffer.from(m.customerKey), Buffer.from(after)) > 0),
      )
      .sort((a, b) => Buffer.compare(Buffer.from(a.customerKey), Buffer.from(b.customerKey)))
      .slice(0, q.limit)
      .map((m) => ({ ...m }));
  }
}

export class InMemoryWebhookEventStore implements WebhookEventStore {
  readonly events = new Map<string, { id: string; type: string; created: Date; receivedAt: Date }>();

  async seen(eventId: string): Promise<boolean> {
    return this.events.has(eventId);
  }

  async record(event: { id: string; type: string; created: Date; receivedAt: Date }): Promise<void> {
    this.events.set(event.id, { ...event });
  }
}

export class InMemoryBillingStateStore implements BillingStateStore {
  readonly states = new Map<string, BillingState>();
  /** Set to make the next put() fail once, as a ClickHouse outage would. */
  failNextPut: Error | undefined;

  async get(stripeCustomerIds: readonly string[]): Promise<Map<string, BillingState>> {
    const out = new Map<string, BillingState>();
    for (const id of stripeCustomerIds) {
      const s = this.states.get(id);
      if (s) out.set(id, { ...s });
    }
    return out;
  }

  async put(state: BillingState): Promise<void> {
    if (this.failNextPut) {
      const err = this.failNextPut;
      this.failNextPut = undefined;
      throw err;
    }
    const old = this.states.get(state.stripeCustomerId);
    if (!old || state.version >= old.version) this.states.set(state.stripeCustomerId, { ...state });
  }
}

/** The known customer keys, as a set; ordered by UTF-8 bytes, as ClickHouse orders strings. */
export class InMemoryCustomerIndex implements CustomerIndex {
  readonly keys = new Set<string>();

  async list(q: CustomerListQuery): Promise<string[]> {
    const bytes = (s: string) => Buffer.from(s, 'utf8');
    return [...this.keys]
      .filter(
        (k) =>
          (q.after === undefined || Buffer.compare(bytes(k), bytes(q.after)) > 0) &&
          k.startsWith(q.prefix ?? ''),
      )
      .sort((a, b) => Buffer.compare(bytes(a), bytes(b)))
      .slice(0, q.limit);
  }

  async seen(customerKey: string): Promise<boolean> {
    return this.keys.has(customerKey);
  }
}

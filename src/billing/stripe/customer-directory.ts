import { DomainError } from '../../errors.ts';
import type { CustomerDirectory } from './ports.ts';

/**
 * Customer key (what the meters bill, e.g. a company id) → Stripe customer id.
 *
 * Four ways a key reaches a Stripe customer, in this order of precedence:
 * 1. an explicit mapping, from the admin API/CLI or from a Stripe webhook (`customer.created` /
 *    `customer.updated` whose `metadata.billing_meter_customer` names the key): the most recent wins;
 * 2. Moesif company metadata `stripe_customer_id` (the `companies` table), the latest profile of the key;
 * 3. the key itself, when it already is a Stripe customer id (`cus_…`).
 * Removing an explicit mapping (admin) falls back to 2 and 3: those are facts about the key that an
 * operator overrides by mapping the key to another customer, not by deleting.
 */
export type ExplicitSource = 'admin' | 'webhook';
export type MappingSource = ExplicitSource | 'moesif' | 'customer_id';

export const STRIPE_CUSTOMER_ID = /^cus_[A-Za-z0-9]{1,250}$/;
export const MAX_CUSTOMER_KEY_LENGTH = 1024;

/** One change to an explicit mapping. An empty stripeCustomerId is a removal. */
export interface ExplicitMapping {
  customerKey: string;
  stripeCustomerId: string;
  source: ExplicitSource;
  updatedAt: Date;
  /** The highest wins (ReplacingMergeTree(version)): milliseconds, see nextVersion. */
  version: bigint;
}

export interface ResolvedCustomer {
  stripeCustomerId: string;
  source: MappingSource;
}

/** Port: where explicit mappings are kept, and where Moesif company metadata is read. */
export interface CustomerMappingStore {
  /**
   * For each key: its latest explicit mapping row (removals included), and the Stripe customer id of
   * the latest Moesif company profile that has one. Keys with neither are absent.
   */
  lookup(
    customerKeys: readonly string[],
  ): Promise<{ explicit: Map<string, ExplicitMapping>; moesif: Map<string, string> }>;
  write(mapping: ExplicitMapping): Promise<void>;
  /** Current (not removed) explicit mappings with customerKey > after, ordered by key (bytewise). */
  list(q: { limit: number; after?: string }): Promise<ExplicitMapping[]>;
}

/** The precedence above, as a pure function. */
export function chooseMapping(
  customerKey: string,
  explicit: ExplicitMapping | undefined,
  moesif: string | undefined,
): ResolvedCustomer | undefined {
  if (explicit && explicit.stripeCustomerId !== '')
    return { stripeCustomerId: explicit.stripeCustomerId, source: explicit.source };
  // Moesif metadata is free text sent by the API owner's SDK: only a well-formed id counts.
  if (moesif !== undefined && STRIPE_CUSTOMER_ID.test(moesif))
    return { stripeCustomerId: moesif, source: 'moesif' };
  if (STRIPE_CUSTOMER_ID.test(customerKey)) return { stripeCustomerId: customerKey, source: 'customer_id' };
  return undefined;
}

/**
 * The version of a change made at `at` (a Stripe event's `created`, whole seconds) over a current
 * version: `at` in milliseconds; within the same second as the current version, arrival order
 * (current + 1); older than the current version's second: 'stale', the change must not be written.
 * A change made now by an operator (`at` undefined) always wins: max(now, current + 1).
 */
export function nextVersion(
  current: bigint | undefined,
  at: { eventCreatedSeconds: number } | { nowMs: number },
): bigint | 'stale' {
  if ('nowMs' in at) {
    const now = BigInt(at.nowMs);
    return current === undefined || current < now ? now : current + 1n;
  }
  const base = BigInt(at.eventCreatedSeconds) * 1000n;
  if (current === undefined || current < base) return base;
  if (current < base + 1000n) return current + 1n;
  return 'stale';
}

export function checkCustomerKey(key: string): void {
  if (key.length === 0 || key.length > MAX_CUSTOMER_KEY_LENGTH) {
    throw new DomainError('invalid_request', `a customer key is 1 to ${MAX_CUSTOMER_KEY_LENGTH} characters`, {
      errors: [{ field: 'customer_key', reason: key.length === 0 ? 'empty' : 'too long' }],
    });
  }
}

export function checkStripeCustomerId(id: string): void {
  if (!STRIPE_CUSTOMER_ID.test(id)) {
    throw new DomainError(
      'invalid_request',
      'a Stripe customer id is cus_ followed by 1 to 250 letters and digits',
      {
        errors: [{ field: 'stripe_customer_id', reason: 'not a Stripe customer id (cus_…)' }],
      },
    );
  }
}

/**
 * Runs read-modify-write steps one at a time per key within this process. Across replicas two writes
 * of one key can still interleave; the later version wins, as for any concurrent change.
 */
export class KeyedSerializer {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, step: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const result = previous.then(step, step);
    const tail = result.catch(() => undefined);
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
  }
}

export type MapOutcome = 'mapped' | 'unchanged' | 'stale';

export interface MappingView {
  customerKey: string;
  stripeCustomerId: string;
  source: ExplicitSource;
  updatedAt: Date;
}

/** Resolves customer keys to Stripe customers, and keeps the explicit mappings. */
export class CustomerMappingService implements CustomerDirectory {
  private readonly serializer = new KeyedSerializer();

  constructor(
    private readonly store: CustomerMappingStore,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** The Stripe customer of each key that has one; keys without one are absent. */
  async resolve(customerKeys: readonly string[]): Promise<Map<string, string>> {
    const resolved = await this.getMany(customerKeys);
    return new Map([...resolved].map(([key, r]) => [key, r.stripeCustomerId]));
  }

  /** The Stripe customer of one key and where the mapping comes from. */
  async get(customerKey: string): Promise<ResolvedCustomer | undefined> {
    checkCustomerKey(customerKey);
    return (await this.getMany([customerKey])).get(customerKey);
  }

  /** get() for many keys in one lookup; keys without a Stripe customer (or not valid keys) are absent. */
  async getMany(customerKeys: readonly string[]): Promise<Map<string, ResolvedCustomer>> {
    const keys = [...new Set(customerKeys)].filter(
      (k) => k.length > 0 && k.length <= MAX_CUSTOMER_KEY_LENGTH,
    );
    const out = new Map<string, ResolvedCustomer>();
    if (keys.length === 0) return out;
    const { explicit, moesif } = await this.store.lookup(keys);
    for (const key of keys) {
      const chosen = chooseMapping(key, explicit.get(key), moesif.get(key));
      if (chosen) out.set(key, chosen);
    }
    return out;
  }

  /**
   * Maps a key to a Stripe customer. `eventCreatedSeconds` is the Stripe event's time for a webhook
   * mapping: an event older than the current explicit mapping changes nothing ('stale'). An admin
   * mapping is made now and always wins.
   */
  async map(
    customerKey: string,
    stripeCustomerId: string,
    source: ExplicitSource,
    eventCreatedSeconds?: number,
  ): Promise<MapOutcome> {
    checkCustomerKey(customerKey);
    checkStripeCustomerId(stripeCustomerId);
    return this.serializer.run(customerKey, async () => {
      const current = (await this.store.lookup([customerKey])).explicit.get(customerKey);
      const now = this.now();
      const version = nextVersion(
        current?.version,
        eventCreatedSeconds === undefined ? { nowMs: now.getTime() } : { eventCreatedSeconds },
      );
      if (version === 'stale') return 'stale';
      // A repeat (a webhook redelivered after a crash, the same admin call twice) writes nothing new.
      if (current && current.stripeCustomerId === stripeCustomerId && current.source === source)
        return 'unchanged';
      await this.store.write({ customerKey, stripeCustomerId, source, updatedAt: now, version });
      return 'mapped';
    });
  }

  /** Removes the explicit mapping of a key. False when it had none. */
  async unmap(customerKey: string): Promise<boolean> {
    checkCustomerKey(customerKey);
    return this.serializer.run(customerKey, async () => {
      const current = (await this.store.lookup([customerKey])).explicit.get(customerKey);
      if (!current || current.stripeCustomerId === '') return false;
      const now = this.now();
      const version = nextVersion(current.version, { nowMs: now.getTime() }) as bigint;
      await this.store.write({ customerKey, stripeCustomerId: '', source: 'admin', updatedAt: now, version });
      return true;
    });
  }

  /** Explicit mappings, by key; `after` is the last key of the previous page. */
  async list(q: { limit: number; after?: string } = { limit: 100 }): Promise<MappingView[]> {
    const rows = await this.store.list(q);
    return rows.map((r) => ({
      customerKey: r.customerKey,
      stripeCustomerId: r.stripeCustomerId,
      source: r.source,
      updatedAt: r.updatedAt,
    }));
  }
}

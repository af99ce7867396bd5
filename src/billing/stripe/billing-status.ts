import type { MeterDefinition } from '../../meters/meter-schema.ts';
import type { CustomerPeriodUsage, MeterPeriodUsage } from '../../meters/usage-query.ts';
import { checkCustomerKey, type ResolvedCustomer } from './customer-directory.ts';

/**
 * A customer's billing status, for a gateway deciding whether to serve it:
 * - `unpaid`: the latest invoice event of its Stripe customer was `invoice.payment_failed` (no later `invoice.paid`);
 * - `over_quota`: some meter with a `quota` has current-period usage ≥ quota (a quota of 0 allows nothing);
 * - `unmapped`: the key reaches no Stripe customer, so nothing it uses can be billed;
 * - `ok`: none of these.
 * Every reason that applies is listed; `status` is the first of them in the order
 * unpaid > over_quota > unmapped (money owed first, then limits, then the billing setup).
 * A failure to read any of it is an error (503), never `ok`.
 */
export type BillingStatus = 'ok' | 'unpaid' | 'over_quota' | 'unmapped';
export type PaymentStatus = '' | 'paid' | 'failed';

/** What Stripe's webhooks told us about one Stripe customer (one row per customer). */
export interface BillingState {
  stripeCustomerId: string;
  /** '' until a subscription event arrives. One subscription per customer: the latest event's. */
  subscriptionId: string;
  subscriptionStatus: string;
  currentPeriodStart: Date | undefined;
  currentPeriodEnd: Date | undefined;
  /** '' until an invoice event arrives. */
  paymentStatus: PaymentStatus;
  lastInvoiceId: string;
  updatedAt: Date;
  /** The subscription fields' version: their event's `created` in ms, then arrival order (see nextVersion); 0n: never set. */
  subscriptionVersion: bigint;
  /** The payment fields' version, likewise. */
  paymentVersion: bigint;
  /** The row's version: the highest wins; greater than every version written before for the customer. */
  version: bigint;
}

/** Port: billing state per Stripe customer (stripe_billing_state). */
export interface BillingStateStore {
  get(stripeCustomerIds: readonly string[]): Promise<Map<string, BillingState>>;
  put(state: BillingState): Promise<void>;
}

export interface StatusReason {
  code: Exclude<BillingStatus, 'ok'>;
  detail: string;
  meter?: string;
  usage?: string;
  quota?: number;
  invoice?: string;
}

/** A meter's usage this period as the status shows it; `cost` as the usage API's (priced meters only). */
export interface StatusMeter {
  meter: string;
  usage: string;
  quota?: number;
  cost?: MeterPeriodUsage['cost'];
}

export interface CustomerStatus {
  customer: string;
  /**
   * Whether billing-meter has ever heard of the key: metered usage in any period, a mapping, or a
   * Moesif company with a Stripe id. A key never seen still gets a status (a gateway asks before the
   * first call is metered): `unmapped`, or `ok` for a `cus_…` key, with zero usage.
   */
  seen: boolean;
  status: BillingStatus;
  stripe_customer_id?: string;
  mapping_source?: ResolvedCustomer['source'];
  reasons: StatusReason[];
  meters: StatusMeter[];
  subscription?: { id: string; status: string; current_period_start?: string; current_period_end?: string };
  period: { id: string; start: string; end: string };
}

export interface CustomerListQuery {
  limit: number;
  /** The last key of the previous page. */
  after?: string;
  /** Only keys that start with it (bytewise). */
  prefix?: string;
}

/** Port: the customer keys billing-meter knows (see CustomerStatus.seen). */
export interface CustomerIndex {
  /** Keys in byte order, after `after`, with the prefix, at most `limit`. */
  list(q: CustomerListQuery): Promise<string[]>;
  seen(customerKey: string): Promise<boolean>;
}

export interface CustomerPage {
  customers: CustomerStatus[];
  /** The cursor of the next page (the last key of this one), null on the last page. */
  next_after: string | null;
}

const PRECEDENCE: readonly Exclude<BillingStatus, 'ok'>[] = ['unpaid', 'over_quota', 'unmapped'];

export interface BillingStatusDeps {
  directory: { getMany(customerKeys: readonly string[]): Promise<Map<string, ResolvedCustomer>> };
  states: BillingStateStore;
  /** UsageQueryService.customersPeriod: each meter's usage in the current billing period. */
  usage: {
    customersPeriod(
      customers: readonly string[],
      meters: readonly MeterDefinition[],
    ): Promise<Pick<CustomerPeriodUsage, 'customer' | 'period' | 'meters'>[]>;
  };
  meters: readonly MeterDefinition[];
  customers: CustomerIndex;
}

export class BillingStatusService {
  constructor(private readonly deps: BillingStatusDeps) {}

  async status(customerKey: string): Promise<CustomerStatus> {
    checkCustomerKey(customerKey);
    const [seen, statuses] = await Promise.all([
      this.deps.customers.seen(customerKey),
      this.statuses([customerKey]),
    ]);
    return { ...statuses[0]!, seen };
  }

  /** A page of the known customers, each with its mapping, status and this period's usage. */
  async list(q: CustomerListQuery): Promise<CustomerPage> {
    const keys = await this.deps.customers.list(q);
    return {
      customers: await this.statuses(keys),
      next_after: keys.length === q.limit ? keys[keys.length - 1]! : null,
    };
  }

  /** The statuses of known keys (seen: true), in their order: one lookup of each kind for all of them. */
  private async statuses(keys: readonly string[]): Promise<CustomerStatus[]> {
    if (keys.length === 0) return [];
    const [mappings, usage] = await Promise.all([
      this.deps.directory.getMany(keys),
      this.deps.usage.customersPeriod(keys, this.deps.meters),
    ]);
    const states = await this.deps.states.get([
      ...new Set([...mappings.values()].map((m) => m.stripeCustomerId)),
    ]);
    return usage.map((u) => {
      const mapping = mappings.get(u.customer);
      return customerStatus(u, mapping, mapping && states.get(mapping.stripeCustomerId), this.deps.meters);
    });
  }
}

/** The status of one customer from what was read about it (pure: the rules of the file comment). */
export function customerStatus(
  usage: Pick<CustomerPeriodUsage, 'customer' | 'period' | 'meters'>,
  mapping: ResolvedCustomer | undefined,
  state: BillingState | undefined,
  meterDefinitions: readonly MeterDefinition[],
): CustomerStatus {
  const reasons: StatusReason[] = [];
  if (state?.paymentStatus === 'failed') {
    reasons.push({
      code: 'unpaid',
      detail: `the latest payment of invoice ${state.lastInvoiceId} failed`,
      invoice: state.lastInvoiceId,
    });
  }
  const quotas = new Map(
    meterDefinitions.filter((m) => m.quota !== undefined).map((m) => [m.name, m.quota!]),
  );
  const meters: StatusMeter[] = usage.meters.map((m) => {
    const quota = quotas.get(m.meter);
    return {
      meter: m.meter,
      usage: m.quantity,
      ...(quota === undefined ? {} : { quota }),
      ...(m.cost ? { cost: m.cost } : {}),
    };
  });
  for (const m of meters) {
    if (m.quota !== undefined && BigInt(m.usage) >= BigInt(m.quota)) {
      reasons.push({
        code: 'over_quota',
        detail: `${m.meter}: ${m.usage} used of a quota of ${m.quota} this period`,
        meter: m.meter,
        usage: m.usage,
        quota: m.quota,
      });
    }
  }
  if (!mapping)
    reasons.push({
      code: 'unmapped',
      detail:
        'no Stripe customer for this key: map one (admin API), or set stripe_customer_id in its Moesif company metadata',
    });
  reasons.sort((a, b) => PRECEDENCE.indexOf(a.code) - PRECEDENCE.indexOf(b.code));

  return {
    customer: usage.customer,
    seen: true,
    status: reasons[0]?.code ?? 'ok',
    ...(mapping ? { stripe_customer_id: mapping.stripeCustomerId, mapping_source: mapping.source } : {}),
    reasons,
    meters,
    ...(state && state.subscriptionId !== ''
      ? {
          subscription: {
            id: state.subscriptionId,
            status: state.subscriptionStatus,
            ...(state.currentPeriodStart
              ? { current_period_start: state.currentPeriodStart.toISOString() }
              : {}),
            ...(state.currentPeriodEnd ? { current_period_end: state.currentPeriodEnd.toISOString() } : {}),
          },
        }
      : {}),
    period: usage.period,
  };
}

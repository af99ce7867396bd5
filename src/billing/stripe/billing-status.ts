import type { MeterDefinition } from '../../meters/meter-schema.ts';
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

export interface CustomerStatus {
  customer: string;
  status: BillingStatus;
  stripe_customer_id?: string;
  mapping_source?: ResolvedCustomer['source'];
  reasons: StatusReason[];
  meters: { meter: string; usage: string; quota?: number }[];
  subscription?: { id: string; status: string; current_period_start?: string; current_period_end?: string };
  period: { start: string; end: string };
}

const PRECEDENCE: readonly Exclude<BillingStatus, 'ok'>[] = ['unpaid', 'over_quota', 'unmapped'];

export interface BillingStatusDeps {
  directory: { get(customerKey: string): Promise<ResolvedCustomer | undefined> };
  states: BillingStateStore;
  /** UsageQueryService.customerPeriod: each meter's usage in the current billing period. */
  usage: {
    customerPeriod(
      customer: string,
      meters: readonly MeterDefinition[],
    ): Promise<{ period: { start: string; end: string }; meters: { meter: string; quantity: string }[] }>;
  };
  meters: readonly MeterDefinition[];
}

export class BillingStatusService {
  constructor(private readonly deps: BillingStatusDeps) {}

  async status(customerKey: string): Promise<CustomerStatus> {
    checkCustomerKey(customerKey);
    const [mapping, usage] = await Promise.all([
      this.deps.directory.get(customerKey),
      this.deps.usage.customerPeriod(customerKey, this.deps.meters),
    ]);
    const state = mapping
      ? (await this.deps.states.get([mapping.stripeCustomerId])).get(mapping.stripeCustomerId)
      : undefined;

    const reasons: StatusReason[] = [];
    if (state?.paymentStatus === 'failed') {
      reasons.push({
        code: 'unpaid',
        detail: `the latest payment of invoice ${state.lastInvoiceId} failed`,
        invoice: state.lastInvoiceId,
      });
    }
    const quotas = new Map(
      this.deps.meters.filter((m) => m.quota !== undefined).map((m) => [m.name, m.quota!]),
    );
    const meters = usage.meters.map((m) => {
      const quota = quotas.get(m.meter);
      return quota === undefined
        ? { meter: m.meter, usage: m.quantity }
        : { meter: m.meter, usage: m.quantity, quota };
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
      customer: customerKey,
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
}

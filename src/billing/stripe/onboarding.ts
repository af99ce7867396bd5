import { DomainError } from '../../errors.ts';
import { periodEnd } from '../../time/billing-period.ts';
import type { MeterDefinition } from '../../meters/meter-schema.ts';
import type { CustomerMappingService } from './customer-directory.ts';
import type { StripeCatalog, StripeOnboarding } from './ports.ts';
import { lookupKeyFor } from './push.ts';

/**
 * Onboarding a customer key to Stripe: a Stripe customer (given, or created from an email), one
 * subscription to every pushed metered price (`stripe push --apply`), and the mapping, so the sync bills
 * the key's usage there.
 *
 * - The billing cycle is anchored on the 1st of the next month, 00:00 UTC: Stripe's billing periods are
 *   then our calendar months (the first one is prorated by Stripe up to the anchor; with metered prices
 *   only, that is the usage of those days).
 * - Idempotent: run again, it finds the subscription that already bills the prices and creates nothing;
 *   a price pushed later is added as a subscription of its own. Creates carry idempotency keys derived
 *   from the customer key, so a retry after a crash does not create a second customer.
 */
export interface SubscribeResult {
  customerKey: string;
  stripeCustomerId: string;
  createdCustomer: boolean;
  subscriptionId: string | undefined;
  subscribedPrices: string[];
  alreadySubscribed: string[];
  billingCycleAnchor: string;
}

export class OnboardingService {
  constructor(
    private readonly deps: {
      stripe: StripeOnboarding & Pick<StripeCatalog, 'pricesByLookupKey'>;
      mappings: CustomerMappingService;
      meters: readonly MeterDefinition[];
      now: () => Date;
    },
  ) {}

  /**
   * A Checkout session (mode subscription) for the key: the customer pays on Stripe's page, and
   * `checkout.session.completed` (webhooks.ts) then maps the key to the customer Stripe made or used.
   */
  async checkout(
    customerKey: string,
    o: { email?: string; successUrl: string; cancelUrl?: string },
  ): Promise<{ id: string; url: string; billingCycleAnchor: string }> {
    const prices = await this.pushedPrices();
    const mapped = await this.deps.mappings.get(customerKey);
    const anchor = periodEnd(this.deps.now());
    const session = await this.deps.stripe.createCheckoutSession({
      customerKey,
      stripeCustomerId: mapped?.stripeCustomerId,
      email: o.email,
      priceIds: prices.map((p) => p.id),
      billingCycleAnchor: Math.floor(anchor.getTime() / 1000),
      successUrl: o.successUrl,
      cancelUrl: o.cancelUrl,
    });
    return { ...session, billingCycleAnchor: anchor.toISOString() };
  }

  private async pushedPrices() {
    const priced = this.deps.meters.filter((m) => m.pricing && m.stripe);
    const prices = priced.length
      ? (await this.deps.stripe.pricesByLookupKey(priced.map((m) => lookupKeyFor(m.name)))).filter(
          (p) => p.active,
        )
      : [];
    if (prices.length === 0)
      throw new DomainError(
        'invalid_request',
        'no metered price is pushed to Stripe yet: run billing-meter stripe push --apply first',
      );
    return prices;
  }

  async subscribe(
    customerKey: string,
    who: { stripeCustomerId: string } | { email: string },
  ): Promise<SubscribeResult> {
    const prices = await this.pushedPrices();
    let stripeCustomerId: string;
    let createdCustomer = false;
    if ('stripeCustomerId' in who) stripeCustomerId = who.stripeCustomerId;
    else {
      const existing = await this.deps.mappings.get(customerKey);
      if (existing) stripeCustomerId = existing.stripeCustomerId;
      else {
        stripeCustomerId = (
          await this.deps.stripe.createCustomer({
            email: who.email,
            customerKey,
            idempotencyKey: `billing-meter-customer-${customerKey}`,
          })
        ).id;
        createdCustomer = true;
      }
    }
    const anchor = periodEnd(this.deps.now());
    const billed = new Set(
      (await this.deps.stripe.subscriptionsOf(stripeCustomerId)).flatMap((s) => s.priceIds),
    );
    const missing = prices.filter((p) => !billed.has(p.id)).map((p) => p.id);
    const subscription =
      missing.length > 0
        ? await this.deps.stripe.createSubscription({
            stripeCustomerId,
            priceIds: missing,
            billingCycleAnchor: Math.floor(anchor.getTime() / 1000),
            customerKey,
            idempotencyKey: `billing-meter-subscription-${customerKey}-${missing.join('-')}`,
          })
        : undefined;
    await this.deps.mappings.map(customerKey, stripeCustomerId, 'admin');
    return {
      customerKey,
      stripeCustomerId,
      createdCustomer,
      subscriptionId: subscription?.id,
      subscribedPrices: missing,
      alreadySubscribed: prices.filter((p) => billed.has(p.id)).map((p) => p.id),
      billingCycleAnchor: anchor.toISOString(),
    };
  }
}

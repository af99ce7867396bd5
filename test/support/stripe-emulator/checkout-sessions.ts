// Checkout Sessions, mode `subscription` only (what onboarding uses): create, retrieve, and a test-side
// `complete` that plays the customer paying on the hosted page: the customer is created when the session
// named none, the subscription is created (through the subscriptions route, so its rules apply), the
// session becomes `complete`, and `checkout.session.completed` is emitted. Payment methods, taxes,
// quantities of licensed prices and expiry are not modelled.
import { applyMetadata, arrayParam, objectParam, ok, route, stringParam, type Route } from './routing.ts';
import type { EmulatorState } from './state.ts';
import { invalidParam, missingParam, resourceMissing, unknownParams } from './stripe-error.ts';

export interface CheckoutSessionState {
  id: string;
  created: number;
  mode: 'subscription';
  status: 'open' | 'complete';
  customer: string | null;
  customerEmail: string | null;
  clientReferenceId: string | null;
  successUrl: string;
  cancelUrl: string | null;
  priceIds: string[];
  billingCycleAnchor: number | null;
  metadata: Record<string, string>;
  subscriptionMetadata: Record<string, string>;
  subscription: string | null;
}

const sessionsOf = new WeakMap<EmulatorState, Map<string, CheckoutSessionState>>();
export function checkoutSessions(state: EmulatorState): Map<string, CheckoutSessionState> {
  let sessions = sessionsOf.get(state);
  if (!sessions) sessionsOf.set(state, (sessions = new Map()));
  return sessions;
}

export function renderCheckoutSession(s: CheckoutSessionState): Record<string, unknown> {
  return {
    id: s.id,
    object: 'checkout.session',
    created: s.created,
    livemode: false,
    mode: s.mode,
    status: s.status,
    payment_status: s.status === 'complete' ? 'paid' : 'unpaid',
    customer: s.customer,
    customer_email: s.customerEmail,
    customer_details: s.customerEmail ? { email: s.customerEmail } : null,
    client_reference_id: s.clientReferenceId,
    success_url: s.successUrl,
    cancel_url: s.cancelUrl,
    metadata: s.metadata,
    subscription: s.subscription,
    url: s.status === 'open' ? `https://checkout.stripe.com/c/pay/${s.id}` : null,
  };
}

export const checkoutSessionRoutes: Route[] = [
  route('POST', '/v1/checkout/sessions', (req) => {
    const { state, body } = req;
    unknownParams(body, [
      'mode',
      'customer',
      'customer_email',
      'client_reference_id',
      'line_items',
      'success_url',
      'cancel_url',
      'metadata',
      'subscription_data',
    ]);
    const mode = stringParam(body, 'mode');
    if (mode === undefined) throw missingParam('mode');
    if (mode !== 'subscription') throw invalidParam('The emulator models mode=subscription only.', 'mode');
    const successUrl = stringParam(body, 'success_url');
    if (successUrl === undefined) throw missingParam('success_url');
    const customer = stringParam(body, 'customer') ?? null;
    if (customer !== null && !state.customers.has(customer))
      throw resourceMissing('customer', customer, 'customer');
    const customerEmail = stringParam(body, 'customer_email') ?? null;
    if (customer !== null && customerEmail !== null)
      throw invalidParam(
        'You may only specify one of these parameters: customer, customer_email.',
        'customer_email',
      );
    const items = arrayParam(body, 'line_items');
    if (items === undefined || items.length === 0) throw missingParam('line_items');
    const priceIds = items.map((raw, i) => {
      const item = raw as Record<string, unknown>;
      const price = stringParam(item, 'price');
      if (price === undefined) throw missingParam(`line_items[${i}][price]`);
      if (!state.prices.has(price)) throw resourceMissing('price', price, `line_items[${i}][price]`);
      return price;
    });
    const subscriptionData = objectParam(body, 'subscription_data') ?? {};
    const anchorText = stringParam(subscriptionData, 'billing_cycle_anchor');
    const anchor = anchorText === undefined ? null : Number(anchorText);
    if (anchor !== null && (!Number.isInteger(anchor) || anchor < state.nowSeconds()))
      throw invalidParam(
        'billing_cycle_anchor must be a future unix timestamp.',
        'subscription_data[billing_cycle_anchor]',
      );
    const metadata: Record<string, string> = {};
    applyMetadata(metadata, body.metadata);
    const subscriptionMetadata: Record<string, string> = {};
    applyMetadata(subscriptionMetadata, subscriptionData.metadata, 'subscription_data[metadata]');
    const session: CheckoutSessionState = {
      id: `cs_test_${state.newId('x').slice(2)}`,
      created: state.nowSeconds(),
      mode: 'subscription',
      status: 'open',
      customer,
      customerEmail,
      clientReferenceId: stringParam(body, 'client_reference_id') ?? null,
      successUrl,
      cancelUrl: stringParam(body, 'cancel_url') ?? null,
      priceIds,
      billingCycleAnchor: anchor,
      metadata,
      subscriptionMetadata,
      subscription: null,
    };
    checkoutSessions(state).set(session.id, session);
    return ok(renderCheckoutSession(session));
  }),
  route('GET', '/v1/checkout/sessions/:id', (req) => {
    const session = checkoutSessions(req.state).get(req.params.id!);
    if (!session) throw resourceMissing('checkout.session', req.params.id!);
    return ok(renderCheckoutSession(session));
  }),
];

import { JSON_OPTION, type Command, type CommandGroup } from './command.ts';
import { withServices } from './context.ts';
import { CommandFailed } from './errors.ts';

const map: Command = {
  path: ['customers', 'map'],
  summary: 'bill customer key KEY to a Stripe customer',
  args: 'KEY cus_…',
  positionals: { min: 2, max: 2 },
  async run({ positionals, out }) {
    const [key, stripeId] = positionals as [string, string];
    if (!/^cus_\w+$/.test(stripeId))
      throw new CommandFailed(`'${stripeId}' is not a Stripe customer id (cus_…)`, 2);
    return withServices('customers map', async (s) => {
      const outcome = await s.stripe.billing.mappings.map(key, stripeId, 'admin');
      out.line(`${key} → ${stripeId} (${outcome})`);
      return 0;
    });
  },
};

const unmap: Command = {
  path: ['customers', 'unmap'],
  summary: 'remove the mapping of customer key KEY (made by customers map or a webhook)',
  args: 'KEY',
  positionals: { min: 1, max: 1 },
  async run({ positionals, out }) {
    const key = positionals[0]!;
    return withServices('customers unmap', async (s) => {
      if (!(await s.stripe.billing.mappings.unmap(key)))
        throw new CommandFailed(`${key}: no mapping to remove`);
      out.line(`${key}: mapping removed`);
      return 0;
    });
  },
};

const subscribe: Command = {
  path: ['customers', 'subscribe'],
  summary: 'subscribe customer key KEY to every pushed metered price, the cycle anchored on the 1st (UTC)',
  args: 'KEY',
  positionals: { min: 1, max: 1 },
  options: {
    'stripe-customer': { type: 'string', value: 'cus_…', help: 'the Stripe customer to bill' },
    email: {
      type: 'string',
      value: 'ADDRESS',
      help: 'create the Stripe customer with this email (unless KEY is mapped)',
    },
    json: JSON_OPTION,
  },
  details:
    'Needs STRIPE_SECRET_KEY and the prices pushed (billing-meter stripe push --apply). Anchors the billing\n' +
    "cycle on the 1st of next month, 00:00 UTC, so Stripe's periods are calendar months, and maps KEY.\n" +
    'Run again: it creates nothing that exists.',
  async run({ positionals, values, out }) {
    const key = positionals[0]!;
    const stripeCustomer = values['stripe-customer'] as string | undefined;
    const email = values.email as string | undefined;
    if ((stripeCustomer === undefined) === (email === undefined))
      throw new CommandFailed('give exactly one of --stripe-customer cus_… and --email ADDRESS', 2);
    if (stripeCustomer !== undefined && !/^cus_\w+$/.test(stripeCustomer))
      throw new CommandFailed(`'${stripeCustomer}' is not a Stripe customer id (cus_…)`, 2);
    if (email !== undefined && !/^[^\s@]+@[^\s@]+$/.test(email))
      throw new CommandFailed(`'${email}' is not an email address`, 2);
    return withServices('customers subscribe', async (s) => {
      if (!s.stripe.onboarding)
        throw new CommandFailed(
          'customers subscribe needs STRIPE_SECRET_KEY (nothing to subscribe to without it)',
        );
      const r = await s.stripe.onboarding.subscribe(
        key,
        stripeCustomer !== undefined ? { stripeCustomerId: stripeCustomer } : { email: email! },
      );
      if (out.json) {
        out.data({
          customer: r.customerKey,
          stripe_customer: r.stripeCustomerId,
          created_customer: r.createdCustomer,
          subscription: r.subscriptionId ?? null,
          subscribed_prices: r.subscribedPrices,
          already_subscribed: r.alreadySubscribed,
          billing_cycle_anchor: r.billingCycleAnchor,
        });
        return 0;
      }
      out.line(`${key} → ${r.stripeCustomerId}${r.createdCustomer ? ' (created)' : ''}`);
      out.line(
        r.subscriptionId
          ? `subscribed (${r.subscriptionId}) to ${r.subscribedPrices.join(', ')}, cycle anchored on ${r.billingCycleAnchor} (the first invoice covers the days until then)`
          : `already subscribed to every pushed price (${r.alreadySubscribed.join(', ')})`,
      );
      return 0;
    });
  },
};

const list: Command = {
  path: ['customers', 'list'],
  summary: 'the customer mappings made by the admin API, the CLI and webhooks',
  options: { json: JSON_OPTION },
  async run({ out }) {
    return withServices('customers list', async (s) => {
      const all = [];
      for (let after: string | undefined; ;) {
        const page = await s.stripe.billing.mappings.list({ limit: 1000, after });
        all.push(...page);
        if (page.length < 1000) break;
        after = page.at(-1)!.customerKey;
      }
      if (out.json) out.data(all);
      else if (all.length === 0)
        out.line('no customer is mapped to Stripe yet: billing-meter customers map KEY cus_…');
      else
        out.table(
          all.map((m) => ({
            customer: m.customerKey,
            stripe_customer: m.stripeCustomerId,
            source: m.source,
            updated: m.updatedAt.toISOString(),
          })),
        );
      return 0;
    });
  },
};

export const customersCommands: CommandGroup = {
  name: 'customers',
  summary: 'which Stripe customer each customer key is billed to',
  commands: [map, unmap, subscribe, list],
};

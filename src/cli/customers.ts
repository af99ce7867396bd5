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
  commands: [map, unmap, list],
};

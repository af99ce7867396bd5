import {
  applyPush,
  formatPlan,
  planHasChanges,
  planPush,
  PushConflictError,
} from '../billing/stripe/push.ts';
import { formatReconcile } from '../billing/stripe/reconcile.ts';
import { JSON_OPTION, type Command, type CommandGroup } from './command.ts';
import { parseTimeOption, withServices } from './context.ts';
import { CommandFailed } from './errors.ts';
import type { Services } from '../services.ts';

function gatewayOf(s: Services, command: string) {
  const { gateway, reconcile } = s.stripe;
  if (!gateway || !reconcile)
    throw new CommandFailed(
      `stripe ${command} talks to Stripe: set STRIPE_SECRET_KEY (sk_test_… or sk_live_…)`,
      2,
    );
  return { gateway, reconcile };
}

const push: Command = {
  path: ['stripe', 'push'],
  summary: 'plan (default) or make the Stripe meters, products and tiered prices of the meter files',
  options: { apply: { type: 'boolean', help: 'make the changes (without it: print the plan only)' } },
  details: 'Running it twice changes nothing the second time.',
  async run({ values, out }) {
    return withServices('stripe push', async (s) => {
      const { gateway } = gatewayOf(s, 'push');
      const plan = await planPush(s.meters, gateway);
      out.line(formatPlan(plan));
      if (!values.apply) {
        out.line(
          planHasChanges(plan)
            ? '\nplan only: run with --apply to make these changes'
            : '\nnothing to change',
        );
        return 0;
      }
      try {
        const result = await applyPush(plan, gateway);
        out.line(
          result.applied.length === 0
            ? '\nnothing changed'
            : `\napplied:\n${result.applied.map((l) => `  ${l}`).join('\n')}`,
        );
        return 0;
      } catch (err) {
        if (err instanceof PushConflictError) throw new CommandFailed(err.message);
        throw err;
      }
    });
  },
};

const reconcile: Command = {
  path: ['stripe', 'reconcile'],
  summary: "our totals against Stripe's meter event summaries; exit 1 on a mismatch",
  options: {
    from: { type: 'string', value: 'TIME', help: 'start (ISO-8601 or a date; required)' },
    to: { type: 'string', value: 'TIME', help: 'end, exclusive (required)' },
    json: JSON_OPTION,
  },
  async run({ values, out }) {
    const from = parseTimeOption(values.from, '--from');
    const to = parseTimeOption(values.to, '--to');
    if (!from || !to) throw new CommandFailed('stripe reconcile needs --from TIME and --to TIME', 2);
    return withServices('stripe reconcile', async (s) => {
      const { reconcile: service } = gatewayOf(s, 'reconcile');
      const progress = out.progress('asking Stripe for its summaries');
      const result = await service.reconcile(s.meters, { from, to });
      progress.done();
      if (out.json) out.data(result);
      else out.line(formatReconcile(result));
      return result.mismatches === 0 ? 0 : 1;
    });
  },
};

export const stripeCommands: CommandGroup = {
  name: 'stripe',
  summary: 'the Stripe account: meters and prices, and reconciliation',
  commands: [push, reconcile],
};

import { discrepancyView, syncReportView } from '../http/routes/sync-routes.ts';
import { hourlyJob } from '../lifecycle/hourly-job.ts';
import { JSON_OPTION, type Command, type CommandGroup } from './command.ts';
import { withServices } from './context.ts';

const run: Command = {
  path: ['sync', 'run'],
  summary: 'bring Stripe up to date now with the usage last evaluated (--evaluate: evaluate first)',
  options: {
    evaluate: { type: 'boolean', help: 'evaluate the meters first, as the hourly job does' },
    json: JSON_OPTION,
  },
  details:
    'Without --evaluate it sends what the last evaluation computed, and says when that was.\n' +
    'Without STRIPE_SECRET_KEY it is a dry run: the ledger shows what would be sent. Exit 1 if Stripe kept failing.',
  async run({ values, out }) {
    return withServices('sync run', async (s) => {
      const job = hourlyJob({
        schema: s.schema,
        evaluation: s.evaluation,
        meters: s.meters,
        runSync: s.stripe.runSync,
        afterEvaluation: s.alerts.afterEvaluation,
        logger: s.logger,
      });
      const progress = out.progress('syncing');
      const evaluation = values.evaluate ? await job.evaluate() : undefined;
      const lastRun = evaluation ?? (await s.evaluation.latestRun());
      const lastEvaluation = lastRun?.runAt;
      const report = await job.sync();
      progress.done();
      if (out.json) {
        out.data({
          ...syncReportView(report),
          last_evaluation: lastEvaluation?.toISOString() ?? null,
          late_outside_window: lastRun?.lateOutsideWindow ?? 0,
        });
        return report.aborted ? 1 : 0;
      }
      out.line(
        lastEvaluation
          ? `usage as evaluated at ${lastEvaluation.toISOString()}${evaluation ? ' (just now)' : ' (run with --evaluate to evaluate first)'}`
          : 'the meters were never evaluated: nothing to send (run with --evaluate, or billing-meter meters evaluate)',
      );
      if (lastRun && lastRun.lateOutsideWindow > 0)
        out.line(
          `${lastRun.lateOutsideWindow} event(s) arrived after their lateness window (hours before ${lastRun.windowStart.toISOString()}) and are not billed: billing-meter meters evaluate --from/--to bills them`,
        );
      if (report.dryRun)
        out.line(
          'dry run: no STRIPE_SECRET_KEY, so nothing was sent; the ledger records what would have been',
        );
      out.line(
        `${report.keysChecked} customer × meter pair(s) checked: ${report.sent} sent, ${report.duplicates} already in Stripe, ` +
          `${report.cancelled} cancelled, ${report.rejected} refused by Stripe, ${report.pending} pending`,
      );
      const heldCustomers = new Set(report.held.map((h) => h.customer)).size;
      if (heldCustomers > 0)
        out.line(
          `${heldCustomers} customer(s) have usage but no Stripe customer yet: billing-meter sync held lists them`,
        );
      if (report.discrepancies > 0)
        out.line(`${report.discrepancies} discrepancy(ies) recorded: billing-meter sync discrepancies`);
      if (report.aborted)
        out.line('stopped early: Stripe kept failing; the next run resumes where this one stopped');
      return report.aborted ? 1 : 0;
    });
  },
};

const discrepancies: Command = {
  path: ['sync', 'discrepancies'],
  summary: 'what could not be made right in Stripe (open ones; --all: resolved too)',
  options: { all: { type: 'boolean', help: 'resolved ones too' }, json: JSON_OPTION },
  async run({ values, out }) {
    return withServices('sync discrepancies', async (s) => {
      const rows = (
        await s.stripe.syncStore.discrepancies({ resolved: values.all ? undefined : false, limit: 100_000 })
      ).map(discrepancyView);
      if (out.json) out.data(rows);
      else if (rows.length === 0) out.line('no discrepancies');
      else
        out.table(
          rows.map((d) => ({
            hour: d.hour,
            meter: d.meter,
            customer: d.customer,
            kind: d.kind,
            expected: d.expected,
            sent: d.sent,
            state: d.resolved ? 'resolved' : 'open',
            detail: d.detail,
          })),
        );
      return 0;
    });
  },
};

const held: Command = {
  path: ['sync', 'held'],
  summary: 'usage waiting for a Stripe customer (customer keys with no mapping)',
  options: { json: JSON_OPTION },
  async run({ out }) {
    return withServices('sync held', async (s) => {
      const list = await s.stripe.sync.held(s.meters);
      if (out.json) out.data(list);
      else if (list.length === 0) out.line('no usage is waiting for a Stripe customer');
      else
        out.table(
          list.map((h) => ({
            customer: h.customer,
            meter: h.meter,
            value: String(h.value),
            hours: h.hours,
            since: String(h.oldestHour),
            sendable_until: String(h.sendableUntil),
          })),
        );
      return 0;
    });
  },
};

export const syncCommands: CommandGroup = {
  name: 'sync',
  summary: 'the Stripe sync: usage sent as Billing Meter events, exactly once',
  commands: [run, discrepancies, held],
};

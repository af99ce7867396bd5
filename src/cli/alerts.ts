import { alertFilter, alertQuery, alertView } from '../http/routes/alert-routes.ts';
import { JSON_OPTION, type Command, type CommandGroup } from './command.ts';
import { withServices } from './context.ts';
import { CommandFailed } from './errors.ts';

const list: Command = {
  path: ['alerts', 'list'],
  summary: 'threshold crossings (newest first) and whether their webhook and email went out',
  options: {
    customer: { type: 'string', value: 'KEY', help: 'only this customer' },
    meter: { type: 'string', value: 'NAME', help: 'only this meter' },
    period: { type: 'string', value: 'YYYY-MM', help: 'only this billing period' },
    limit: { type: 'string', value: 'N', help: 'at most N crossings (default 100)' },
    json: JSON_OPTION,
  },
  details:
    'Crossings are recorded once per customer, meter, threshold and period when an evaluation finds them;\n' +
    'delivery states: pending, delivered, retrying (with the next attempt), failed (attempts used up).',
  async run({ values, out }) {
    const parsed = alertQuery.safeParse({
      customer: values.customer,
      meter: values.meter,
      period: values.period,
      limit: values.limit,
    });
    if (!parsed.success)
      throw new CommandFailed(
        parsed.error.issues.map((i) => `--${i.path.join('.')}: ${i.message}`).join('\n'),
        2,
      );
    return withServices('alerts list', async (s) => {
      const rows = (await s.alerts.list(alertFilter(parsed.data))).map(alertView);
      if (out.json) out.data(rows);
      else if (rows.length === 0) out.line('no alerts');
      else
        out.table(
          rows.map((a) => ({
            recorded_at: a.recorded_at,
            customer: a.customer,
            meter: a.meter,
            period: a.period,
            threshold: a.threshold.label,
            quantity: a.quantity,
            delivery: a.deliveries.map((d) => `${d.channel}: ${d.state}`).join(', ') || 'no channel',
          })),
        );
      return 0;
    });
  },
};

export const alertsCommands: CommandGroup = {
  name: 'alerts',
  summary: 'alerts sent when usage crosses a threshold of a meter',
  commands: [list],
};

import { loadConfig } from '../config.ts';
import type { EvaluatedRange } from '../meters/evaluation.ts';
import { loadMeters } from '../meters/load-meters.ts';
import { JSON_OPTION, type Command, type CommandGroup } from './command.ts';
import { parseTimeOption, withServices } from './context.ts';
import { CommandFailed } from './errors.ts';
import type { Output } from './output.ts';

const validate: Command = {
  path: ['meters', 'validate'],
  summary: 'check the meter definitions; every error as file:line:col: reason (exit 1 on any)',
  args: '[DIR]',
  positionals: { min: 0, max: 1 },
  details: 'DIR defaults to METERS_DIR (./meters). Nothing is opened but the YAML files.',
  async run({ positionals, out }) {
    const dir = positionals[0] ?? loadConfig().meters.dir;
    const { meters, errors } = await loadMeters(dir);
    for (const e of errors) out.note(e.message);
    for (const m of meters) out.line(`ok  ${m.definition.name}  version ${m.version}  (${m.file})`);
    if (errors.length > 0) return 1;
    if (meters.length === 0)
      throw new CommandFailed(`no meters found in ${dir} (one YAML file per meter: *.yaml or *.yml)`);
    return 0;
  },
};

const evaluate: Command = {
  path: ['meters', 'evaluate'],
  summary: 'evaluate the meters now: the scheduled run, or the hours of --from..--to again',
  options: {
    from: {
      type: 'string',
      value: 'TIME',
      help: 'start of the hours to evaluate again (ISO-8601 or a date)',
    },
    to: { type: 'string', value: 'TIME', help: 'end (exclusive); both or neither' },
    json: JSON_OPTION,
  },
  async run({ values, out }) {
    const from = parseTimeOption(values.from, '--from');
    const to = parseTimeOption(values.to, '--to');
    if ((from === undefined) !== (to === undefined))
      throw new CommandFailed('meters evaluate takes both --from and --to, or neither', 2);
    return withServices('meters evaluate', async (s) => {
      const progress = out.progress('evaluating');
      const started = Date.now();
      const timer = setInterval(
        () => progress.update(Math.round((Date.now() - started) / 1000), undefined, 's'),
        500,
      );
      try {
        if (from && to) {
          const ranges = await s.evaluation.evaluateBetween(s.meters, from, to);
          progress.done();
          if (out.json) out.data({ ranges });
          else printRanges(out, ranges, `evaluated ${from.toISOString()} to ${to.toISOString()} again`);
          return 0;
        }
        const report = await s.evaluation.run(s.meters);
        progress.done();
        if (out.json) out.data(report);
        else {
          printRanges(
            out,
            report.ranges,
            `evaluated every closed hour through ${report.closedThrough.toISOString()}`,
          );
          out.line(
            report.lateOutsideWindow > 0
              ? `${report.lateOutsideWindow} event(s) arrived after their lateness window (hours before ${report.windowStart.toISOString()}) and are not billed; evaluate those hours again with --from/--to to bill them`
              : 'no event arrived after its lateness window',
          );
        }
        return 0;
      } finally {
        clearInterval(timer);
        progress.done();
      }
    });
  },
};

function printRanges(out: Output, ranges: readonly EvaluatedRange[], heading: string) {
  const rows = ranges.reduce((n, r) => n + r.rows, 0);
  out.line(`${heading}: ${ranges.length} meter version range(s), ${rows} usage row(s)`);
  if (ranges.length > 0)
    out.table(
      ranges.map((r) => ({
        meter: r.meter,
        version: r.version,
        from: r.from.toISOString(),
        to: r.to.toISOString(),
        rows: r.rows,
      })),
    );
}

export const metersCommands: CommandGroup = {
  name: 'meters',
  summary: 'meter definitions (meters/*.yaml) and their evaluation',
  commands: [validate, evaluate],
};

import { MIN_API_KEY_LENGTH } from '../../ingest/post-batch.ts';
import { shipFile, type ShipReport } from '../../ingest/ship.ts';
import { loadConfig } from '../config.ts';
import { JSON_OPTION, type Command } from './command.ts';
import { CommandFailed } from './errors.ts';

export const shipCommand: Command = {
  path: ['ship'],
  summary: "send an NDJSON log file (or - for stdin) to a collector's /v1/logs",
  args: 'FILE|-',
  positionals: { min: 1, max: 1 },
  options: {
    url: {
      type: 'string',
      value: 'URL',
      help: 'collector (default: $BILLING_METER_URL, else http://127.0.0.1:$PORT)',
    },
    key: { type: 'string', value: 'KEY', help: 'ingest key (default: $BILLING_METER_INGEST_KEY)' },
    'batch-size': { type: 'string', value: 'N', help: 'records per request (default 1000)' },
    'shift-to-now': {
      type: 'boolean',
      help: "move a sample file's times so its newest call is now (never for real logs: their times are billed)",
    },
    json: JSON_OPTION,
  },
  details: 'Exit status 1 when any line was bad, refused or not delivered; the summary says which.',
  async run({ values, positionals, env, out }) {
    const file = positionals[0]!;
    const baseUrl =
      (typeof values.url === 'string' ? values.url : undefined) ??
      env.url ??
      `http://127.0.0.1:${loadConfig().port}`;
    const apiKey = (typeof values.key === 'string' ? values.key : undefined) ?? env.ingestKey;
    if (!apiKey)
      throw new CommandFailed('ship needs an ingest key: --key KEY or BILLING_METER_INGEST_KEY', 2);
    if (apiKey.length < MIN_API_KEY_LENGTH)
      throw new CommandFailed(
        `that is not an ingest key: they are at least ${MIN_API_KEY_LENGTH} characters (billing-meter keys create makes one)`,
        2,
      );
    const batchSize = values['batch-size'] === undefined ? undefined : Number(values['batch-size']);
    if (batchSize !== undefined && (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 100_000))
      throw new CommandFailed(
        `--batch-size must be a whole number from 1 to 100000, got '${String(values['batch-size'])}'`,
        2,
      );
    const progress = out.progress(`shipping ${file} to ${baseUrl}`);
    let warned = false;
    const report = await shipFile(file, {
      baseUrl,
      apiKey,
      ...(batchSize ? { batchSize } : {}),
      ...(values['shift-to-now'] ? { shiftTo: new Date() } : {}),
      onProgress: (r) => progress.update(r.sent + r.rejectedCount + r.failed, undefined, 'records'),
      onRetry: ({ attempt, delayMs, reason }) => {
        // Say at once what is happening, instead of retrying in silence for a minute.
        if (warned && !out.interactive) return;
        warned = true;
        out.note(
          `${baseUrl}: ${reason}; retrying in ${(delayMs / 1000).toFixed(1)} s (attempt ${attempt + 1})`,
        );
      },
    });
    progress.done();
    if (out.json) out.data(report);
    else out.line(summary(report));
    return report.failed > 0 || report.badLineCount > 0 || report.rejectedCount > 0 || report.aborted ? 1 : 0;
  },
};

function summary(r: ShipReport): string {
  const lines = [
    `${r.sent} accepted, ${r.rejectedCount} refused, ${r.badLineCount} not JSON, ${r.failed} not delivered`,
  ];
  for (const b of r.badLines.slice(0, 5)) lines.push(`  line ${b.line}: ${b.reason}`);
  for (const x of r.rejected.slice(0, 5))
    lines.push(`  line ${x.line}: ${x.field ? `${x.field}: ` : ''}${x.reason}`);
  for (const e of r.errors.slice(0, 5)) lines.push(`  lines ${e.lines[0]}-${e.lines[1]}: ${e.message}`);
  const listed =
    Math.min(5, r.badLines.length) + Math.min(5, r.rejected.length) + Math.min(5, r.errors.length);
  const all = r.badLineCount + r.rejectedCount + r.errors.length;
  if (all > listed) lines.push(`  … and ${all - listed} more (--json lists them)`);
  if (r.aborted) lines.push('stopped early: the collector refused the ingest key');
  return lines.join('\n');
}

/**
 * Writes deterministic sample request logs as NDJSON.
 *
 *   tsx ingest/generate-samples.ts --count 200 --out ingest/samples/credit-score-sample.ndjson \
 *     [--seed 1] [--start 2026-11-01T00:00:00Z] [--end 2026-11-08T00:00:00Z] [--companies 20] [--users 200]
 *
 * Without --out (or with `--out -`) it writes to stdout. Without --start/--end the range is the 7 days
 * before the start of the current UTC hour, so the records fall in the collector's accepted time window;
 * pass both for a reproducible file.
 */
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { parseArgs } from 'node:util';
import { generateSampleLogs } from './sample-logs.ts';

const HOUR_MS = 3_600_000;

function usage(message: string): never {
  console.error(`generate-samples: ${message}`);
  console.error(
    'usage: tsx ingest/generate-samples.ts --count N [--out FILE|-] [--seed N] [--start ISO] [--end ISO] [--companies N] [--users N]',
  );
  process.exit(2);
}

function integer(name: string, value: string | undefined, fallback?: number): number {
  if (value === undefined) {
    if (fallback === undefined) usage(`--${name} is required`);
    return fallback;
  }
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) usage(`--${name} must be a non-negative integer, got ${value}`);
  return n;
}

function date(name: string, value: string): Date {
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) usage(`--${name} is not a date: ${value}`);
  return d;
}

async function main(): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        count: { type: 'string' },
        out: { type: 'string' },
        seed: { type: 'string' },
        start: { type: 'string' },
        end: { type: 'string' },
        companies: { type: 'string' },
        users: { type: 'string' },
      },
      strict: true,
    }));
  } catch (err) {
    usage(err instanceof Error ? err.message : String(err));
  }
  const count = integer('count', values.count);
  const end = values.end ? date('end', values.end) : new Date(Math.floor(Date.now() / HOUR_MS) * HOUR_MS);
  const start = values.start ? date('start', values.start) : new Date(end.getTime() - 7 * 24 * HOUR_MS);
  if (end <= start) usage('--end must be after --start');

  const out: Writable = values.out && values.out !== '-' ? createWriteStream(values.out) : process.stdout;
  const records = generateSampleLogs({
    count,
    seed: integer('seed', values.seed, 1),
    start,
    end,
    companies: integer('companies', values.companies, 20),
    users: integer('users', values.users, 200),
  });
  let chunk = '';
  for (const record of records) {
    chunk += `${JSON.stringify(record)}\n`;
    if (chunk.length >= 64 * 1024) {
      if (!out.write(chunk)) await once(out, 'drain');
      chunk = '';
    }
  }
  if (out === process.stdout) {
    if (chunk) out.write(chunk);
  } else {
    out.end(chunk);
    await once(out, 'finish');
  }
}

await main();

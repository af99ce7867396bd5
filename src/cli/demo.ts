import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { generateSampleLogs } from '../../ingest/sample-logs.ts';
import { shipFile } from '../../ingest/ship.ts';
import { loadConfig } from '../config.ts';
import { startService } from '../main.ts';
import { periodStart } from '../time/billing-period.ts';
import { floorHour, HOUR_MS } from '../time/hours.ts';
import { loadMeterDefinitions } from '../meters/load-meters.ts';
import { createLogger } from '../services.ts';
import type { Command } from './command.ts';
import { formatTable } from './output.ts';
import { stopOnSignal } from './serve.ts';

const SAMPLE_COUNT = 3000;
const SAMPLE_HOURS = 3;
const BILLED_METER = 'retrieve-credit-score';

/**
 * The quick start: the service on the embedded engine, a credit-score API's traffic of the last closed
 * hours sent through the collector, the meters evaluated over those hours, and one customer's bill,
 * read back through the same API a user would call next. Then it keeps serving.
 */
export const demoCommand: Command = {
  path: ['demo'],
  summary: 'run the service with sample traffic, evaluate the meters and show one customer’s bill',
  details:
    'Uses the embedded engine in DATA_DIR (./data) unless CLICKHOUSE_URL is set. Without ADMIN_API_KEY it\n' +
    'generates a demo admin key and keeps it in DATA_DIR/demo-admin-key (for this demo only).\n' +
    'Ctrl-C stops it; the data stays, and the next run adds to it.',
  async run({ out }) {
    const config = loadConfig();
    const keyFile = join(config.dataDir, 'demo-admin-key');
    const generatedKey = config.adminApiKey === undefined;
    config.adminApiKey ??= await demoAdminKey(keyFile);

    // The traffic: the last closed hours, so the evaluation can bill them now. A meter's first version
    // starts at the start of the current month; in the first hours of a month those hours are last
    // month's, so a demo database's meters start at the month of its traffic instead.
    const end = floorHour(new Date());
    const start = new Date(end.getTime() - SAMPLE_HOURS * HOUR_MS);
    const meters = (await loadMeterDefinitions(config.meters.dir)).map((m) =>
      m.effective_from ? m : { ...m, effective_from: periodStart(start).toISOString() },
    );
    // The demo speaks for itself on stdout; only errors are logged.
    const service = await startService(config, createLogger({ logLevel: 'error' }), {
      meters,
      command: 'demo',
    });
    const stopped = stopOnSignal(service);
    const admin = { authorization: `Bearer ${config.adminApiKey}` };
    const where =
      service.clickhouse.engine === 'embedded'
        ? `data in ${relativeDir(config.dataDir)}`
        : 'ClickHouse server';
    out.line(
      `billing-meter demo is running at ${service.url} (${service.clickhouse.engine} ClickHouse, ${where})`,
    );
    out.line();
    out.line(
      generatedKey
        ? `admin key (generated for this demo, kept in ${relativeDir(keyFile)}): ${config.adminApiKey}`
        : 'admin key: the one in ADMIN_API_KEY',
    );

    const { record, key } = await service.keys.create(`demo ${new Date().toISOString()}`);
    out.line(`ingest key ${record.keyId} (shown once): ${key}`);
    const samples = [
      ...generateSampleLogs({ count: SAMPLE_COUNT, seed: end.getTime() / HOUR_MS, start, end }),
    ];
    const dir = await mkdtemp(join(tmpdir(), 'billing-meter-demo-'));
    const file = join(dir, 'sample.ndjson');
    try {
      await writeFile(file, samples.map((r) => JSON.stringify(r)).join('\n') + '\n');
      const shipped = await shipFile(file, { baseUrl: service.url, apiKey: key });
      out.line(
        `\nshipped ${samples.length} sample request logs of a credit-score API (${start.toISOString()} to ${end.toISOString()}): ` +
          `${shipped.sent} accepted, ${shipped.rejectedCount} refused`,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    await service.flush();
    const ranges = await service.evaluation.evaluateBetween(service.meters, start, end);
    out.line(
      `evaluated ${service.meters.length} meters over those hours: ${ranges.reduce((n, r) => n + r.rows, 0)} usage rows`,
    );

    // The customer with the most billed calls, and their bill as the usage API answers it.
    const billed = new Map<string, number>();
    for (const s of samples)
      if (s.path === '/RetrieveCreditScore' && s.status === 200 && typeof s.company_id === 'string')
        billed.set(s.company_id, (billed.get(s.company_id) ?? 0) + 1);
    const customer = [...billed].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))[0]?.[0];
    const period = periodStart(new Date(end.getTime() - 1))
      .toISOString()
      .slice(0, 7);
    const usageUrl = customer
      ? `${service.url}/v1/customers/${encodeURIComponent(customer)}/usage?period=${period}`
      : undefined;
    if (customer && usageUrl) {
      const answer = await fetch(usageUrl, { headers: admin });
      if (!answer.ok) throw new Error(`the usage API answered ${answer.status}: ${await answer.text()}`);
      const bill = (await answer.json()) as CustomerUsage;
      out.line(`\n${customer}, billing period ${period}:`);
      for (const m of bill.meters) out.line(meterLines(m));
    }

    out.line(`\nthe dashboard: ${service.url}/ui (log in with the admin key below)`);
    out.line('\nnext steps (copy and paste):');
    out.line(`  export ADMIN=${config.adminApiKey} KEY=${key}`);
    if (usageUrl) out.line(`  curl -s '${usageUrl}' -H "Authorization: Bearer $ADMIN"`);
    out.line(
      `  curl -s '${service.url}/v1/usage?meter=${BILLED_METER}&window=day&format=csv' -H "Authorization: Bearer $ADMIN"`,
    );
    out.line(
      `  curl -X POST ${service.url}/v1/logs -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \\\n` +
        `    -d '[{"timestamp":"'$(date -u +%FT%TZ)'","company_id":"${customer ?? 'co_001'}","method":"GET","path":"/RetrieveCreditScore","status":200}]'`,
    );
    out.line(
      `\nthe hourly job bills new calls at minute 5 of the next hour. Ctrl-C stops the demo; the data stays in ${relativeDir(config.dataDir)}.`,
    );
    if (!service.stripe.gateway)
      out.line(
        'no STRIPE_SECRET_KEY: the hourly Stripe sync runs dry (the ledger shows what it would send).',
      );
    out.line(
      'while it runs, the CLI cannot open the embedded engine: use the admin API above (or set CLICKHOUSE_URL).',
    );
    await stopped;
    return 0;
  },
};

/** The demo's admin key: made once, kept beside the demo's data, readable by its owner only. */
async function demoAdminKey(file: string): Promise<string> {
  const existing = await readFile(file, 'utf8').then(
    (s) => s.trim(),
    () => '',
  );
  if (existing.length >= 32) return existing;
  const key = `demo_admin_${randomBytes(24).toString('hex')}`;
  await mkdir(join(file, '..'), { recursive: true });
  await writeFile(file, `${key}\n`, { mode: 0o600 });
  return key;
}

const relativeDir = (path: string) => {
  const rel = relative(process.cwd(), path);
  return rel === '' ? '.' : rel.startsWith('..') ? path : `./${rel}`;
};

interface CustomerUsage {
  meters: {
    meter: string;
    unit?: string;
    quantity: string;
    cost?: { display: string };
    tiers?: { tier: number; from: string; up_to: string; quantity: string; display: string }[];
  }[];
}

function meterLines(m: CustomerUsage['meters'][number]): string {
  const head = `  ${m.meter}: ${m.quantity} ${m.unit ?? ''}`.trimEnd();
  if (!m.cost || !m.tiers) return `${head} (not priced)`;
  const tiers = formatTable(
    m.tiers
      .filter((t) => t.quantity !== '0')
      .map((t) => ({
        tier: `tier ${t.tier}`,
        range: `${t.from}–${t.up_to === 'inf' ? '∞' : t.up_to}`,
        quantity: t.quantity,
        amount: t.display,
      })),
  );
  const indented = tiers
    .trimEnd()
    .split('\n')
    .map((l) => `    ${l}`)
    .join('\n');
  return `${head}\n${indented}\n    cost: ${m.cost.display}`;
}

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { generateSampleLogs } from '../ingest/sample-logs.ts';
import { shipFile } from '../ingest/ship.ts';
import { ConfigError, loadConfig, type Config } from './config.ts';
import { applyPush, formatPlan, planHasChanges, planPush, PushConflictError } from './billing/stripe/push.ts';
import { formatReconcile } from './billing/stripe/reconcile.ts';
import { SyncLockedError } from './billing/stripe/sync-lock.ts';
import { DomainError } from './errors.ts';
import { keyView } from './http/routes/admin-routes.ts';
import { discrepancyView, syncReportView } from './http/routes/sync-routes.ts';
import {
  createLogger,
  createStripeSide,
  keyService,
  loadMeterDefinitions,
  MeterDefinitionError,
  openClickHouse,
  startService,
  type StripeSide,
} from './main.ts';
import { EvaluationService } from './meters/evaluation.ts';
import { loadMeters } from './meters/load-meters.ts';
import type { MeterDefinition } from './meters/meter-schema.ts';
import { UsageQueryService } from './meters/usage-query.ts';
import { ClickHouseMeterStore } from './storage/clickhouse/meter-store.ts';
import { RequestLogReader } from './storage/clickhouse/request-log-reader.ts';

/**
 * `billing-meter <command>`. Commands that touch storage open ClickHouse themselves. With the
 * embedded engine the data directory belongs to one process at a time: stop the service first, or use
 * the admin API (`POST /v1/admin/keys`) while it runs.
 */
const USAGE = `usage: billing-meter <command>

  serve                         run the service (same as npm start)
  demo                          run the service on the embedded engine, send it sample logs,
                                show them stored, and keep serving (Ctrl-C stops)
  migrate                       create or upgrade the ClickHouse schema
  meters validate [DIR]         check the meter definitions (default: METERS_DIR); every error as
                                file:line:col: reason; exit status 1 on any
  meters evaluate [--from ISO --to ISO]
                                evaluate the meters now: the scheduled run, or the given hours again
  keys create --name NAME       create an ingest key; prints the key alone on the last line
  keys list [--json]            list ingest keys (never the keys themselves)
  keys revoke KEY_ID            revoke an ingest key
  sync run                      bring Stripe up to date now (what the hourly job does after evaluating);
                                without STRIPE_SECRET_KEY a dry run. Exit 1 if Stripe kept failing
  sync discrepancies [--all] [--json]
                                what could not be made right in Stripe (open ones; --all: resolved too)
  sync held [--json]            usage waiting for a Stripe customer (unmapped customer keys)
  stripe push [--apply]         plan (default) or make the Stripe meters, products and tiered prices of
                                meters/*.yaml; running it twice changes nothing the second time
  stripe reconcile --from ISO --to ISO [--json]
                                our totals against Stripe's meter event summaries; exit 1 on a mismatch
  customers map KEY cus_…       bill customer key KEY to that Stripe customer
  customers unmap KEY           remove the mapping made by \`customers map\` (or a webhook)
  customers list [--json]       the mappings made by the admin API, the CLI and webhooks
  ship FILE|- [--url URL] [--key KEY] [--batch-size N] [--shift-to-now]
                                send an NDJSON log file (or stdin) to a collector's /v1/logs
                                (defaults: --url $BILLING_METER_URL or http://127.0.0.1:$PORT,
                                 --key $BILLING_METER_INGEST_KEY); --shift-to-now moves a sample
                                file's times so its newest call is now (never for real logs)

Configuration comes from the environment: see README.md.`;

export async function runCli(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve':
    case undefined:
      return serve();
    case 'demo':
      return demo();
    case 'migrate':
      return withClickHouse(async (config) => {
        const ch = await openClickHouse(config);
        await ch.close();
        console.log(`schema of ${config.clickhouse.database} is up to date`);
      });
    case 'keys':
      return keys(rest);
    case 'meters':
      return metersCommand(rest);
    case 'ship':
      return ship(rest);
    case 'sync':
      return syncCommand(rest);
    case 'stripe':
      return stripeCommand(rest);
    case 'customers':
      return customersCommand(rest);
    case 'help':
    case '--help':
    case '-h':
      console.log(USAGE);
      return 0;
    default:
      console.error(`unknown command: ${command}\n\n${USAGE}`);
      return 2;
  }
}

async function serve(): Promise<number> {
  const config = readConfig();
  if (!config) return 2;
  const logger = createLogger(config);
  let service: Awaited<ReturnType<typeof startService>>;
  try {
    service = await startService(config, logger);
  } catch (err) {
    if (err instanceof MeterDefinitionError) {
      console.error(`invalid meter definitions:\n${err.message}`);
      return 1;
    }
    throw err;
  }
  await new Promise<void>((resolve) => {
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      process.once(signal, () => {
        logger.info({ signal }, 'shutting down');
        void service.stop().then(resolve);
      });
    }
  });
  return 0;
}

/** The quick start: everything in one process, nothing to configure. */
async function demo(): Promise<number> {
  const config = readConfig();
  if (!config) return 2;
  const logger = createLogger({ logLevel: 'warn' });
  const service = await startService(config, logger);
  const { record, key } = await service.keys.create(`demo ${new Date().toISOString()}`);
  const dir = await mkdtemp(join(tmpdir(), 'billing-meter-demo-'));
  const file = join(dir, 'sample.ndjson');
  const now = Date.now();
  const samples = [
    ...generateSampleLogs({
      count: 500,
      seed: now % 1000,
      start: new Date(now - 3_600_000),
      end: new Date(now),
    }),
  ];
  await writeFile(file, samples.map((r) => JSON.stringify(r)).join('\n') + '\n');
  console.log(
    `billing-meter is running at ${service.url} (ClickHouse: ${service.clickhouse.engine}, data in ${config.dataDir})`,
  );
  console.log(
    `created ingest key ${record.keyId}; shipping ${samples.length} sample request logs of the last hour...`,
  );
  const report = await shipFile(file, { baseUrl: service.url, apiKey: key });
  await service.flush();
  console.log(`shipped: ${report.sent} accepted, ${report.rejectedCount} rejected`);
  const reader = new RequestLogReader(service.clickhouse);
  const rows = await reader.recent({ limit: 5, app: record.keyId });
  console.log('\nthe five latest calls, as stored in ClickHouse:');
  console.table(
    rows.map((r) => ({
      request_time: r.request_time,
      customer: r.customer_key,
      method: r.method,
      route: r.route,
      status: r.status,
      latency_ms: r.latency_ms,
    })),
  );
  console.log(
    `\nsend your own (Ctrl-C stops the service):\n  curl -X POST ${service.url}/v1/logs -H 'Authorization: Bearer ${key}' \\\n    -H 'Content-Type: application/json' \\\n    -d '[{"timestamp":"'$(date -u +%FT%TZ)'","company_id":"co_001","method":"GET","path":"/RetrieveCreditScore","status":200}]'`,
  );
  await rm(dir, { recursive: true, force: true });
  await new Promise<void>((resolve) => {
    for (const signal of ['SIGTERM', 'SIGINT'] as const)
      process.once(signal, () => void service.stop().then(resolve));
  });
  return 0;
}

async function keys(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  const { values, positionals } = parseArgs({
    args: rest,
    options: { name: { type: 'string' }, json: { type: 'boolean', default: false } },
    allowPositionals: true,
  });
  return withClickHouse(async (config) => {
    const ch = await openClickHouse(config);
    try {
      const service = keyService(config, ch);
      await service.refresh();
      if (sub === 'create') {
        const name = values.name?.trim();
        if (!name) throw new UsageError('keys create needs --name NAME');
        const { record, key } = await service.create(name);
        console.log(`created ingest key ${record.keyId} (${record.name}); it is shown once, store it now:`);
        console.log(key);
      } else if (sub === 'list') {
        const list = service.list().map(keyView);
        if (values.json) console.log(JSON.stringify(list, null, 2));
        else
          for (const k of list)
            console.log(`${k.key_id}  ${k.revoked_at ? 'revoked' : 'active '}  ${k.created_at}  ${k.name}`);
      } else if (sub === 'revoke') {
        const id = positionals[0];
        if (!id) throw new UsageError('keys revoke needs KEY_ID');
        if (!(await service.revoke(id))) throw new UsageError(`no key ${id}`);
        console.log(`revoked ${id}; running services stop accepting it within 5 seconds`);
      } else {
        throw new UsageError('keys create --name NAME | keys list | keys revoke KEY_ID');
      }
    } finally {
      await ch.close();
    }
  });
}

async function ship(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      url: { type: 'string' },
      key: { type: 'string' },
      'batch-size': { type: 'string' },
      'shift-to-now': { type: 'boolean', default: false },
    },
    allowPositionals: true,
  });
  const file = positionals[0];
  const config = readConfig();
  if (!config) return 2;
  const baseUrl = values.url ?? process.env.BILLING_METER_URL ?? `http://127.0.0.1:${config.port}`;
  const apiKey = values.key ?? process.env.BILLING_METER_INGEST_KEY;
  if (!file || !apiKey) {
    console.error('usage: billing-meter ship FILE|- --key KEY (or BILLING_METER_INGEST_KEY) [--url URL]');
    return 2;
  }
  const batchSize = values['batch-size'] ? Number(values['batch-size']) : undefined;
  const report = await shipFile(file, {
    baseUrl,
    apiKey,
    ...(batchSize ? { batchSize } : {}),
    ...(values['shift-to-now'] ? { shiftTo: new Date() } : {}),
  });
  console.log(JSON.stringify(report));
  return report.failed > 0 || report.badLineCount > 0 || report.rejectedCount > 0 || report.aborted ? 1 : 0;
}

async function metersCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  const { values, positionals } = parseArgs({
    args: rest,
    options: { from: { type: 'string' }, to: { type: 'string' } },
    allowPositionals: true,
  });
  if (sub === 'validate') {
    const config = readConfig();
    if (!config) return 2;
    const dir = positionals[0] ?? config.meters.dir;
    const { meters, errors } = await loadMeters(dir);
    for (const e of errors) console.error(e.message);
    for (const m of meters) console.log(`ok  ${m.definition.name}  version ${m.version}  (${m.file})`);
    return errors.length > 0 ? 1 : 0;
  }
  if (sub === 'evaluate') {
    return withClickHouse(async (config) => {
      const ch = await openClickHouse(config);
      try {
        const meters = await loadMeterDefinitions(config.meters.dir, { warn: () => undefined });
        const store = new ClickHouseMeterStore(ch);
        const evaluation = new EvaluationService(store, store, {
          latenessHours: config.meters.latenessHours,
        });
        if (values.from !== undefined || values.to !== undefined) {
          const from = parseIso(values.from, '--from');
          const to = parseIso(values.to, '--to');
          const ranges = await evaluation.evaluateBetween(meters, from, to);
          console.log(JSON.stringify({ ranges }, null, 2));
        } else {
          console.log(JSON.stringify(await evaluation.run(meters), null, 2));
        }
      } finally {
        await ch.close();
      }
    });
  }
  console.error('usage: billing-meter meters validate [DIR] | meters evaluate [--from ISO --to ISO]');
  return 2;
}

function parseIso(value: string | undefined, flag: string): Date {
  const d = value === undefined ? undefined : new Date(value);
  if (!d || Number.isNaN(d.getTime()))
    throw new UsageError(`${flag} needs an ISO time, e.g. 2026-11-01T00:00:00Z`);
  return d;
}

class UsageError extends Error {}

function readConfig(): Config | undefined {
  try {
    return loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      return undefined;
    }
    throw err;
  }
}

async function withClickHouse(run: (config: Config) => Promise<void | number>): Promise<number> {
  const config = readConfig();
  if (!config) return 2;
  try {
    return (await run(config)) ?? 0;
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(err.message);
      return 2;
    }
    if (err instanceof SyncLockedError || err instanceof DomainError) {
      console.error(`error: ${err.message}`);
      return 1;
    }
    const message = err instanceof Error ? err.message : String(err);
    console.error(`error: ${message}`);
    if (config.clickhouse.kind === 'embedded') {
      console.error(
        '(with the embedded engine, stop the running service first, or use the admin API while it runs)',
      );
    }
    return 1;
  }
}

/** Opens ClickHouse and the Stripe side as the service composes them, for one command. */
async function withStripe(
  run: (side: StripeSide, meters: MeterDefinition[], config: Config) => Promise<void | number>,
): Promise<number> {
  return withClickHouse(async (config) => {
    const ch = await openClickHouse(config);
    try {
      const meters = await loadMeterDefinitions(config.meters.dir, { warn: () => undefined });
      const store = new ClickHouseMeterStore(ch);
      const logger = createLogger({ logLevel: config.logLevel === 'info' ? 'warn' : config.logLevel }, true);
      return await run(
        createStripeSide(config, ch, meters, new UsageQueryService(store, store), logger),
        meters,
        config,
      );
    } finally {
      await ch.close();
    }
  });
}

async function syncCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  const { values } = parseArgs({
    args: rest,
    options: { json: { type: 'boolean' }, all: { type: 'boolean' } },
  });
  if (sub === 'run') {
    return withStripe(async (side, meters) => {
      const report = await side.runSync(meters);
      console.log(JSON.stringify(syncReportView(report), null, 2));
      return report.aborted ? 1 : 0;
    });
  }
  if (sub === 'discrepancies') {
    return withStripe(async (side) => {
      const rows = (
        await side.syncStore.discrepancies({ resolved: values.all ? undefined : false, limit: 100_000 })
      ).map(discrepancyView);
      if (values.json) console.log(JSON.stringify(rows, null, 2));
      else if (rows.length === 0) console.log('no discrepancies');
      else
        for (const d of rows)
          console.log(
            `${d.hour}  ${d.meter}  ${d.customer}  ${d.kind}  expected ${d.expected}  sent ${d.sent}${d.resolved ? '  (resolved)' : ''}  ${d.detail}`,
          );
    });
  }
  if (sub === 'held') {
    return withStripe(async (side, meters) => {
      const held = await side.sync.held(meters);
      if (values.json) console.log(JSON.stringify(held, null, 2));
      else if (held.length === 0) console.log('no usage is waiting for a Stripe customer');
      else
        for (const h of held)
          console.log(
            `${h.customer}  ${h.meter}  ${h.value} over ${h.hours} hour(s) since ${h.oldestHour}; sendable until ${h.sendableUntil}`,
          );
    });
  }
  console.error('usage: billing-meter sync run | sync discrepancies [--all] [--json] | sync held [--json]');
  return 2;
}

async function stripeCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  const { values } = parseArgs({
    args: rest,
    options: {
      apply: { type: 'boolean' },
      json: { type: 'boolean' },
      from: { type: 'string' },
      to: { type: 'string' },
    },
  });
  if (sub !== 'push' && sub !== 'reconcile') {
    console.error(
      'usage: billing-meter stripe push [--apply] | stripe reconcile --from ISO --to ISO [--json]',
    );
    return 2;
  }
  const range =
    sub === 'reconcile'
      ? { from: parseIsoOrUsage(values.from, '--from'), to: parseIsoOrUsage(values.to, '--to') }
      : undefined;
  if (range instanceof Error || (range && (range.from instanceof Error || range.to instanceof Error)))
    return 2;
  return withStripe(async (side, meters) => {
    if (!side.gateway || !side.reconcile) {
      console.error(`error: stripe ${sub} needs STRIPE_SECRET_KEY`);
      return 2;
    }
    if (sub === 'push') {
      const plan = await planPush(meters, side.gateway);
      console.log(formatPlan(plan));
      if (!values.apply) {
        console.log(
          planHasChanges(plan)
            ? '\nplan only: run with --apply to make these changes'
            : '\nnothing to change',
        );
        return 0;
      }
      try {
        const result = await applyPush(plan, side.gateway);
        console.log(
          result.applied.length === 0
            ? '\nnothing changed'
            : `\napplied:\n${result.applied.map((l) => `  ${l}`).join('\n')}`,
        );
        return 0;
      } catch (err) {
        if (err instanceof PushConflictError) {
          console.error(err.message);
          return 1;
        }
        throw err;
      }
    }
    const result = await side.reconcile.reconcile(meters, range as { from: Date; to: Date });
    console.log(values.json ? JSON.stringify(result, null, 2) : formatReconcile(result));
    return result.mismatches === 0 ? 0 : 1;
  });
}

function parseIsoOrUsage(value: string | undefined, flag: string): Date | Error {
  try {
    return parseIso(value, flag);
  } catch (err) {
    console.error((err as Error).message);
    return err as Error;
  }
}

async function customersCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  const { values, positionals } = parseArgs({
    args: rest,
    options: { json: { type: 'boolean' } },
    allowPositionals: true,
  });
  if (sub === 'map' && positionals.length === 2) {
    return withStripe(async (side) => {
      const outcome = await side.billing.mappings.map(positionals[0]!, positionals[1]!, 'admin');
      console.log(`${positionals[0]} → ${positionals[1]} (${outcome})`);
    });
  }
  if (sub === 'unmap' && positionals.length === 1) {
    return withStripe(async (side) => {
      const removed = await side.billing.mappings.unmap(positionals[0]!);
      console.log(removed ? `${positionals[0]}: mapping removed` : `${positionals[0]}: no mapping to remove`);
      return removed ? 0 : 1;
    });
  }
  if (sub === 'list') {
    return withStripe(async (side) => {
      const all = [];
      for (let after: string | undefined; ;) {
        const page = await side.billing.mappings.list({ limit: 1000, after });
        all.push(...page);
        if (page.length < 1000) break;
        after = page.at(-1)!.customerKey;
      }
      if (values.json) console.log(JSON.stringify(all, null, 2));
      else
        for (const m of all)
          console.log(`${m.customerKey}  ${m.stripeCustomerId}  ${m.source}  ${m.updatedAt.toISOString()}`);
    });
  }
  console.error(
    'usage: billing-meter customers map KEY cus_… | customers unmap KEY | customers list [--json]',
  );
  return 2;
}

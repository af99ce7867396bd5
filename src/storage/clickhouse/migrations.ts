import { z } from 'zod';
import { REQUEST_LOG_COLUMNS } from '../../collector/request-log.ts';
import type { ClickHouse } from './clickhouse.ts';
import { quoteString } from '../../sql/escape.ts';
import { clusterStatements, localTable } from './cluster-ddl.ts';
import {
  createArrivalsTable,
  createArrivalsView,
  createCopyDecisionsTable,
  createCountedView,
  createRequestLogsTable,
  createResolutionsTable,
  RECEIVED_RANK_COLUMN,
  seedArrivals,
} from './request-logs-table.ts';

/**
 * Versioned, idempotent migrations. Each one is plain DDL that runs on ClickHouse 18.16 and on the
 * current engine alike (MergeTree family, no Map/JSON/DateTime64/LowCardinality). Every statement is
 * `IF NOT EXISTS`, so a crash between a statement and the bookkeeping row just re-runs it.
 * Several replicas booting at once are safe for the same reason. Migration 7 also rebuilds a table
 * (`run`): of replicas booting at once, all but one may fail that migration, and apply it again at their
 * next try (the service retries before its next insert or evaluation); no row is lost either way.
 *
 * On a cluster (CLICKHOUSE_CLUSTER) the same list runs, each statement said for the cluster by
 * cluster-ddl.ts (Replicated tables, Distributed tables over them, ON CLUSTER); the bookkeeping table
 * is a Distributed one too, so any replica of the service sees what another applied.
 */
export interface Migration {
  version: number;
  name: string;
  statements: (db: string) => string[];
  /** What a cluster runs instead of `statements` (then said for the cluster like them), where it differs. */
  clusterStatements?: (db: string) => string[];
  /**
   * Columns added to an existing table, each only when `system.columns` does not list it yet:
   * 18.16 has no `ADD COLUMN IF NOT EXISTS`, and a migration must stay safe to run again.
   */
  addColumns?: { table: string; column: string; type: string }[];
  /**
   * What plain statements cannot say (it depends on what the database holds), run last. It must
   * leave the database as it found it or finished, and be safe to run again after a crash.
   */
  run?: (ch: ClickHouse, ddl: (statement: string) => Promise<void>) => Promise<void>;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'request_logs',
    statements: (db) => [
      // ReplacingMergeTree on a key that ends in event_id: a retried or replayed event collapses into one
      // row when parts merge; readers that need exactness before a merge dedupe on (app, event_id).
      // Ordered for per-customer time-range scans; partitioned by month (the billing period).
      `CREATE TABLE IF NOT EXISTS ${db}.request_logs (
        event_id String,
        app String,
        received_at DateTime('UTC'),
        request_time DateTime('UTC'),
        request_time_ms UInt16,
        customer_key String,
        company_id String,
        user_id String,
        method String,
        route String,
        host String,
        status UInt16,
        latency_ms UInt32,
        request_bytes UInt64,
        response_bytes UInt64,
        api_version String,
        source_format String,
        sample_weight UInt32,
        meta_keys Array(String),
        meta_values Array(String)
      ) ENGINE = ReplacingMergeTree()
      PARTITION BY toYYYYMM(request_time)
      ORDER BY (app, customer_key, request_time, event_id)`,
    ],
    // Cluster mode came after migration 7: no cluster holds a request_logs of the first shape, so a
    // cluster creates the table as migration 7 left it, and migration 7 has nothing to rebuild there.
    clusterStatements: (db) => [createRequestLogsTable(`${db}.request_logs`)],
  },
  {
    version: 2,
    name: 'ingest_keys',
    statements: (db) => [
      // One row per change; the highest `version` wins (read with FINAL or argMax).
      `CREATE TABLE IF NOT EXISTS ${db}.ingest_keys (
        key_id String,
        name String,
        key_hash String,
        created_at DateTime('UTC'),
        revoked_at DateTime('UTC'),
        version UInt64
      ) ENGINE = ReplacingMergeTree(version)
      ORDER BY key_id`,
    ],
  },
  {
    version: 3,
    name: 'companies_users_actions',
    statements: (db) => [
      `CREATE TABLE IF NOT EXISTS ${db}.companies (
        app String,
        company_id String,
        stripe_customer_id String,
        meta_keys Array(String),
        meta_values Array(String),
        received_at DateTime('UTC'),
        version UInt64
      ) ENGINE = ReplacingMergeTree(version)
      ORDER BY (app, company_id)`,
      `CREATE TABLE IF NOT EXISTS ${db}.users (
        app String,
        user_id String,
        company_id String,
        meta_keys Array(String),
        meta_values Array(String),
        received_at DateTime('UTC'),
        version UInt64
      ) ENGINE = ReplacingMergeTree(version)
      ORDER BY (app, user_id)`,
      `CREATE TABLE IF NOT EXISTS ${db}.actions (
        event_id String,
        app String,
        action_name String,
        user_id String,
        company_id String,
        action_time DateTime('UTC'),
        received_at DateTime('UTC'),
        meta_keys Array(String),
        meta_values Array(String)
      ) ENGINE = ReplacingMergeTree()
      PARTITION BY toYYYYMM(action_time)
      ORDER BY (app, action_time, event_id)`,
    ],
  },
  {
    version: 4,
    name: 'meter_usage',
    statements: (db) => [
      // Every version of every meter, with when it starts to apply.
      `CREATE TABLE IF NOT EXISTS ${db}.meter_versions (
        meter String,
        version String,
        definition String,
        effective_from DateTime('UTC'),
        recorded_at DateTime('UTC')
      ) ENGINE = ReplacingMergeTree()
      ORDER BY (meter, version, effective_from)`,
      // One row per (meter, version, customer, hour); a re-evaluation writes a higher revision and the
      // highest wins (readers use argMax, exact before merges). value: the hour's aggregate;
      // period_value: the billing-period-to-date value through the end of the hour (not a sum of hours
      // for unique_count, min, max, latest).
      `CREATE TABLE IF NOT EXISTS ${db}.meter_usage (
        meter String,
        version String,
        customer String,
        hour DateTime('UTC'),
        value Int64,
        period_value Int64,
        computed_at DateTime('UTC'),
        revision UInt64
      ) ENGINE = ReplacingMergeTree(revision)
      PARTITION BY toYYYYMM(hour)
      ORDER BY (meter, version, customer, hour)`,
      `CREATE TABLE IF NOT EXISTS ${db}.meter_watermarks (
        meter String,
        version String,
        evaluated_through DateTime('UTC'),
        revision UInt64
      ) ENGINE = ReplacingMergeTree(revision)
      ORDER BY (meter, version)`,
      // One row per evaluation run, with what arrived too late for its lateness window.
      `CREATE TABLE IF NOT EXISTS ${db}.meter_runs (
        run_at DateTime('UTC'),
        closed_through DateTime('UTC'),
        window_start DateTime('UTC'),
        late_outside_window UInt64,
        revision UInt64
      ) ENGINE = ReplacingMergeTree(revision)
      ORDER BY run_at`,
    ],
  },
  {
    version: 5,
    name: 'stripe_sync',
    statements: (db) => [
      // Customer key → Stripe customer id, from the admin API/CLI, webhooks or Moesif company metadata.
      // One row per change; the highest version wins. An empty stripe_customer_id removes a mapping.
      `CREATE TABLE IF NOT EXISTS ${db}.customer_mappings (
        customer_key String,
        stripe_customer_id String,
        source String,
        updated_at DateTime('UTC'),
        version UInt64
      ) ENGINE = ReplacingMergeTree(version)
      ORDER BY customer_key`,
      // Stripe webhook event ids already handled (idempotency), with what they were.
      `CREATE TABLE IF NOT EXISTS ${db}.stripe_webhook_events (
        event_id String,
        type String,
        stripe_created DateTime('UTC'),
        received_at DateTime('UTC')
      ) ENGINE = ReplacingMergeTree()
      ORDER BY event_id`,
      // Subscription and payment state per Stripe customer, from webhooks. version = the Stripe event's
      // created time in ms (then arrival order), so an older event delivered late never wins.
      `CREATE TABLE IF NOT EXISTS ${db}.stripe_billing_state (
        stripe_customer_id String,
        subscription_id String,
        subscription_status String,
        current_period_start DateTime('UTC'),
        current_period_end DateTime('UTC'),
        payment_status String,
        last_invoice_id String,
        updated_at DateTime('UTC'),
        version UInt64
      ) ENGINE = ReplacingMergeTree(version)
      ORDER BY stripe_customer_id`,
      // The sync ledger: append-only, one row per state change of one call to Stripe. An operation's
      // intent is written (and acknowledged by ClickHouse) before its call; its result after. The
      // latest row of an op_id (highest seq) is its state.
      `CREATE TABLE IF NOT EXISTS ${db}.sync_ledger (
        op_id String,
        kind String,
        meter String,
        version String,
        customer_key String,
        stripe_customer_id String,
        event_name String,
        hour DateTime('UTC'),
        revision UInt32,
        value Int64,
        event_time DateTime('UTC'),
        target_op_id String,
        state String,
        detail String,
        intent_at DateTime('UTC'),
        recorded_at DateTime('UTC'),
        seq UInt64
      ) ENGINE = MergeTree()
      PARTITION BY toYYYYMM(hour)
      ORDER BY (meter, customer_key, hour, op_id, seq)`,
      // What could not be made right in Stripe, for an operator: never dropped. resolved = 1 once the
      // difference is gone. The highest version of (meter, version, customer, hour, kind) wins.
      `CREATE TABLE IF NOT EXISTS ${db}.sync_discrepancies (
        meter String,
        version String,
        customer_key String,
        hour DateTime('UTC'),
        kind String,
        expected Int64,
        sent Int64,
        detail String,
        resolved UInt8,
        recorded_at DateTime('UTC'),
        revision UInt64
      ) ENGINE = ReplacingMergeTree(revision)
      ORDER BY (meter, version, customer_key, hour, kind)`,
    ],
  },
  {
    version: 6,
    name: 'billing_state_versions_per_kind',
    // The subscription and the payment state of a customer come from different events, which Stripe
    // delivers in any order: each kind is ordered by its own events (its own version); `version` stays
    // the row's, only ever increasing, so the latest write is the row ReplacingMergeTree keeps.
    statements: () => [],
    addColumns: [
      { table: 'stripe_billing_state', column: 'subscription_version', type: 'UInt64 DEFAULT 0' },
      { table: 'stripe_billing_state', column: 'payment_version', type: 'UInt64 DEFAULT 0' },
    ],
  },
  {
    version: 7,
    name: 'request_logs_first_received_copy_counts',
    // The same event id sent twice with different timestamps (or customers) was two rows, and which one
    // a meter counted, so which hour it billed, was arbitrary. Decision: the copy received first counts;
    // a copy within 24 hours (DEDUPE_HORIZON_SECONDS) of a copy received before it does not (README,
    // "Each event once", which also says what happens to copies further apart). How:
    // - request_logs is rebuilt as ReplacingMergeTree(received_rank), so that a merge keeps the first
    //   received of the copies it collapses (until now: the last inserted) and the first received time of
    //   a copy never changes. Its columns and sorting key stay; the DDL is generated from the schema of
    //   record (collector/request-log.ts). Existing rows are copied into the new table, then the tables
    //   are swapped; rows that reached the old table during the copy are copied after the swap. The old
    //   table stays as request_logs_before_v7 unless it is empty (drop it once every replica runs this
    //   version: one still running the old code may have written to it in the instant of the swap).
    // - request_log_arrivals (filled by a materialized view) lists the hours that got rows; the copy
    //   resolution (copy-resolution.ts) decides the events near them and records which copies count in
    //   request_log_copy_decisions; readers of a range holding a copy that does not count read
    //   request_logs_counted, which leaves it out. Readers keep `LIMIT 1 BY app, event_id` for the
    //   copies that share a sorting key.
    statements: () => [],
    run: async (ch, ddl) => {
      await rebuildRequestLogs(ch);
      const db = ch.database;
      for (const statement of [
        createArrivalsTable(db),
        createArrivalsView(db),
        // After the view exists: every hour present is listed, whether or not the view saw it arrive.
        seedArrivals(db),
        createCopyDecisionsTable(db),
        createResolutionsTable(db),
        createCountedView(db, ch.cluster !== undefined),
      ])
        await ddl(statement);
    },
  },
  {
    version: 8,
    name: 'sync_ledger_fencing_token',
    // Several replicas of the service sync under a lease (src/coordination): each intent carries the
    // fencing token of the lease it was written under, which only grows from one holder to the next
    // (0: no lease, one process with the file lock).
    statements: () => [],
    addColumns: [{ table: 'sync_ledger', column: 'fencing_token', type: 'UInt64 DEFAULT 0' }],
  },
  {
    version: 9,
    name: 'alert_crossings_and_deliveries',
    statements: (db) => [
      // The alerts outbox (alerts/alert-engine.ts): one row per crossing of a threshold by a customer in a
      // period, recorded before anything is sent. crossing_id is a hash of (meter, customer, threshold,
      // period), so a crossing written twice (a crash, two writers) is one crossing: ReplacingMergeTree
      // collapses the copies on merge and readers group by crossing_id until then. Times are epoch
      // milliseconds: backoff and ordering need better than seconds, and 18.16 has no DateTime64.
      `CREATE TABLE IF NOT EXISTS ${db}.alert_crossings (
        crossing_id String,
        meter String,
        customer String,
        threshold String,
        period_start DateTime('UTC'),
        threshold_value UInt64,
        label String,
        quantity UInt64,
        observed_at_ms UInt64,
        recorded_at_ms UInt64
      ) ENGINE = ReplacingMergeTree()
      PARTITION BY toYYYYMM(period_start)
      ORDER BY (meter, period_start, customer, threshold, crossing_id)`,
      // One row per attempt to deliver a crossing on a channel, with its outcome. (crossing_id, channel,
      // attempt) is the key: an attempt is written once, and readers keep one row per key.
      `CREATE TABLE IF NOT EXISTS ${db}.alert_deliveries (
        crossing_id String,
        channel String,
        attempt UInt32,
        outcome String,
        status_code UInt16,
        error String,
        attempted_at_ms UInt64,
        next_attempt_at_ms UInt64
      ) ENGINE = ReplacingMergeTree()
      ORDER BY (crossing_id, channel, attempt)`,
    ],
  },
];

const REBUILD_TABLE = 'request_logs_v7_build';
const BEFORE_V7_TABLE = 'request_logs_before_v7';

async function columnsOf(ch: ClickHouse, table: string): Promise<string[]> {
  const rows = await ch.query(
    `SELECT name FROM system.columns WHERE database = ${quoteString(ch.database)} AND table = ${quoteString(table)}`,
    z.object({ name: z.string() }),
  );
  return rows.map((r) => r.name);
}

/** request_logs with the v7 engine, holding every row the old one held. See migration 7. */
async function rebuildRequestLogs(ch: ClickHouse): Promise<void> {
  const db = ch.database;
  const table = (name: string) => `${db}.${name}`;
  if (ch.cluster !== undefined) {
    // Migration 1 made it in this shape on a cluster (see there): there is nothing to copy.
    if (!(await columnsOf(ch, localTable('request_logs'))).includes(RECEIVED_RANK_COLUMN))
      throw new Error('request_logs on the cluster predates migration 7: cluster mode cannot rebuild it');
    return;
  }
  const oldColumns = await columnsOf(ch, 'request_logs');
  // The columns both tables have (a later migration may have added some to the schema of record).
  const shared = REQUEST_LOG_COLUMNS.filter((c) => oldColumns.includes(c)).join(', ');
  const copy = (from: string, where: string) =>
    ch.command(
      `INSERT INTO ${table('request_logs')} (${shared}) SELECT ${shared} FROM ${table(from)} WHERE ${where}`,
    );
  if (!oldColumns.includes(RECEIVED_RANK_COLUMN)) {
    // A build table left by a crash may hold part of a copy: start again.
    await ch.command(`DROP TABLE IF EXISTS ${table(REBUILD_TABLE)}`);
    await ch.command(createRequestLogsTable(table(REBUILD_TABLE)));
    // Merges would rename the parts being copied; stopped, the parts not copied are exactly the new ones.
    await ch.command(`SYSTEM STOP MERGES ${table('request_logs')}`);
    try {
      const parts = (
        await ch.query(
          `SELECT name FROM system.parts WHERE database = ${quoteString(db)} AND table = 'request_logs' AND active`,
          z.object({ name: z.string() }),
        )
      ).map((p) => quoteString(p.name));
      const copiedParts = parts.length > 0 ? `_part IN (${parts.join(', ')})` : '0';
      await ch.command(
        `INSERT INTO ${table(REBUILD_TABLE)} (${shared}) SELECT ${shared} FROM ${table('request_logs')} WHERE ${copiedParts}`,
      );
      await ch.command(
        `RENAME TABLE ${table('request_logs')} TO ${table(BEFORE_V7_TABLE)}, ${table(REBUILD_TABLE)} TO ${table('request_logs')}`,
      );
      // Rows another process inserted into the old table during the copy.
      await copy(BEFORE_V7_TABLE, parts.length > 0 ? `_part NOT IN (${parts.join(', ')})` : '1');
    } catch (err) {
      await ch.command(`SYSTEM START MERGES ${table('request_logs')}`).catch(() => undefined);
      throw err;
    }
  } else {
    // A replica that lost the race to swap the tables left its build table behind.
    await ch.command(`DROP TABLE IF EXISTS ${table(REBUILD_TABLE)}`);
    if ((await columnsOf(ch, BEFORE_V7_TABLE)).length > 0) {
      // An earlier run swapped the tables and stopped before it was recorded: it may not have copied
      // the rows that arrived during its copy. Copy them all again; a copy of a row is the same row once
      // merged.
      await copy(BEFORE_V7_TABLE, '1');
    }
  }
  const [left] = await ch.query(
    `SELECT count() AS n FROM system.tables WHERE database = ${quoteString(db)} AND name = ${quoteString(BEFORE_V7_TABLE)}`,
    z.object({ n: z.coerce.number() }),
  );
  if (left?.n) {
    const [rows] = await ch.query(
      `SELECT count() AS n FROM ${table(BEFORE_V7_TABLE)}`,
      z.object({ n: z.coerce.number() }),
    );
    if (rows?.n === 0) await ch.command(`DROP TABLE ${table(BEFORE_V7_TABLE)}`);
  }
}

const appliedRow = z.object({ version: z.coerce.number() });

/** Applies every migration not yet recorded. Returns the versions it applied. */
export async function migrate(
  ch: ClickHouse,
  migrations: readonly Migration[] = MIGRATIONS,
): Promise<number[]> {
  const db = ch.database;
  const cluster = ch.cluster;
  const ddl = async (statement: string) => {
    for (const s of cluster === undefined ? [statement] : clusterStatements(statement, cluster))
      await ch.command(s);
  };
  await ddl(`CREATE DATABASE IF NOT EXISTS ${db}`);
  await ddl(
    `CREATE TABLE IF NOT EXISTS ${db}.schema_migrations (
      version UInt32,
      name String,
      applied_at DateTime('UTC')
    ) ENGINE = ReplacingMergeTree() ORDER BY version`,
  );
  const done = new Set(
    (await ch.query(`SELECT DISTINCT version FROM ${db}.schema_migrations`, appliedRow)).map(
      (r) => r.version,
    ),
  );
  const applied: number[] = [];
  for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
    if (done.has(m.version)) continue;
    const statements = (cluster !== undefined && m.clusterStatements) || m.statements;
    for (const statement of statements(db)) await ddl(statement);
    for (const add of m.addColumns ?? []) {
      const existing = await ch.query(
        `SELECT name FROM system.columns WHERE database = ${quoteString(db)} AND table = ${quoteString(add.table)}`,
        z.object({ name: z.string() }),
      );
      if (existing.some((c) => c.name === add.column)) continue;
      const addColumn = `ALTER TABLE ${db}.${add.table} ADD COLUMN ${add.column} ${add.type}`;
      if (cluster === undefined) {
        await ch.command(addColumn);
        continue;
      }
      const [alterLocal, ...remakeDistributed] = clusterStatements(addColumn, cluster);
      await ch.command(alterLocal!).catch((err: unknown) => {
        // Another replica of the service may have added it since the check above (its ON CLUSTER
        // task reached the servers first): ILLEGAL_COLUMN, "already exists", is done.
        if (!/Code: 44\b[\s\S]*already exists/.test(String(err))) throw err;
      });
      for (const statement of remakeDistributed) await ch.command(statement);
    }
    await m.run?.(ch, ddl);
    await ch.command(
      `INSERT INTO ${db}.schema_migrations (version, name, applied_at) VALUES (${m.version}, ${quoteString(m.name)}, now())`,
    );
    applied.push(m.version);
  }
  return applied;
}

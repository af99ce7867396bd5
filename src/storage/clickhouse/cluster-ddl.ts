/**
 * Cluster mode (CLICKHOUSE_CLUSTER): the single-node DDL of the migration list, said for a cluster.
 * The migrations stay written once, as single-node statements; each is turned here into what a cluster
 * runs, so one versioned list serves both (migrations.ts):
 *
 * - `CREATE TABLE db.t (…) ENGINE = XMergeTree(args) …` becomes the shard-local table
 *   `db.t_local ON CLUSTER c … ENGINE = ReplicatedXMergeTree('/clickhouse/tables/{shard}/db/t_local',
 *   '{replica}', args)`, and `db.t` becomes a Distributed table over it, sharded by the key below.
 *   Every reader and writer keeps naming `db.t`: reads fan out to one replica of every shard, writes
 *   go to the shard the key picks (the connection inserts synchronously: clickhouse.ts).
 * - `CREATE DATABASE`, `CREATE VIEW`, `CREATE MATERIALIZED VIEW` and `DROP TABLE` gain `ON CLUSTER c`;
 *   `ALTER TABLE db.t ADD COLUMN` alters the local table and makes the Distributed one again over it.
 * - Anything else (an INSERT … SELECT) runs as it is, once, through the Distributed tables.
 *
 * `{shard}` and `{replica}` are the servers' <macros>. A statement this file cannot say for a cluster
 * is an error, never run as it is: a new migration that creates a table must give it a sharding key.
 *
 * 18.16 limits met here: a Distributed table cannot take MATERIALIZED columns from an insert, so its
 * column list leaves them out (the local table computes them); `CREATE TABLE … AS` would copy them.
 */

/**
 * Which shard a row goes to, per table. Reads group by their keys (argMax, LIMIT 1 BY), so any key
 * gives exact answers; these keep the rows that a ReplacingMergeTree collapses on one shard, so merges
 * reclaim them. request_logs: every copy of an event (app, event_id) lands on one shard, so `LIMIT 1 BY
 * app, event_id`, which each shard applies to its own rows, still leaves one row per event, and the
 * copy resolution (copy-resolution.ts) sees all copies of an event in one place.
 */
export const SHARDING_KEYS: Readonly<Record<string, string>> = {
  schema_migrations: 'version',
  request_logs: 'cityHash64(app, event_id)',
  ingest_keys: 'cityHash64(key_id)',
  companies: 'cityHash64(app, company_id)',
  users: 'cityHash64(app, user_id)',
  actions: 'cityHash64(app, event_id)',
  meter_versions: 'cityHash64(meter, version)',
  meter_usage: 'cityHash64(meter, version, customer)',
  meter_watermarks: 'cityHash64(meter, version)',
  meter_runs: 'toUInt32(run_at)',
  customer_mappings: 'cityHash64(customer_key)',
  stripe_webhook_events: 'cityHash64(event_id)',
  stripe_billing_state: 'cityHash64(stripe_customer_id)',
  // Every row of one operation on one shard: its state is the latest of them.
  sync_ledger: 'cityHash64(op_id)',
  sync_discrepancies: 'cityHash64(meter, version, customer_key, hour, kind)',
  request_log_arrivals: 'toUInt32(hour)',
  request_log_copy_decisions: 'cityHash64(app, event_id)',
  request_log_resolutions: 'cityHash64(scope)',
  // A crossing and its delivery attempts on one shard: readers group both by crossing_id.
  alert_crossings: 'cityHash64(crossing_id)',
  alert_deliveries: 'cityHash64(crossing_id)',
};

/** The shard-local table's name behind the Distributed `table`. */
export function localTable(table: string): string {
  return `${table}_local`;
}

const CREATE_TABLE =
  /^\s*CREATE TABLE IF NOT EXISTS (\w+)\.(\w+) \(([\s\S]*)\)\s*ENGINE = (\w*MergeTree)\(([^)]*)\)([\s\S]*)$/;
const CREATE_DATABASE = /^\s*CREATE DATABASE IF NOT EXISTS (\w+)\s*$/;
const CREATE_VIEW = /^\s*CREATE (MATERIALIZED VIEW|VIEW) IF NOT EXISTS (\w+\.\w+)( [\s\S]*)$/;
const DROP_TABLE = /^\s*DROP TABLE IF EXISTS (\w+)\.(\w+)\s*$/;
const ADD_COLUMN = /^\s*ALTER TABLE (\w+)\.(\w+) (ADD COLUMN [\s\S]*)$/;
const DDL = /^\s*(CREATE|ALTER|DROP|RENAME|ATTACH|DETACH|TRUNCATE|OPTIMIZE|SYSTEM)\b/i;

/** What a cluster named `cluster` runs for one single-node statement (in order). */
export function clusterStatements(statement: string, cluster: string): string[] {
  const on = `ON CLUSTER ${cluster}`;
  let m = CREATE_TABLE.exec(statement);
  if (m) {
    const [, db, table, columns, engine, args, tail] = m as unknown as string[];
    const key = SHARDING_KEYS[table!];
    if (key === undefined) throw new Error(`no sharding key for table ${table} (cluster-ddl.ts)`);
    const local = localTable(table!);
    const replicated = [`'/clickhouse/tables/{shard}/${db}/${local}'`, `'{replica}'`, args!.trim()]
      .filter(Boolean)
      .join(', ');
    const distributedColumns = splitColumns(columns!).filter((c) => !/\bMATERIALIZED\b/i.test(c));
    return [
      `CREATE TABLE IF NOT EXISTS ${db}.${local} ${on} (${columns}) ENGINE = Replicated${engine}(${replicated})${tail}`,
      `CREATE TABLE IF NOT EXISTS ${db}.${table} ${on} (\n        ${distributedColumns.join(',\n        ')}\n      ) ENGINE = Distributed(${cluster}, ${db}, ${local}, ${key})`,
    ];
  }
  if ((m = CREATE_DATABASE.exec(statement))) return [`CREATE DATABASE IF NOT EXISTS ${m[1]} ${on}`];
  if ((m = CREATE_VIEW.exec(statement))) return [`CREATE ${m[1]} IF NOT EXISTS ${m[2]} ${on}${m[3]}`];
  if ((m = DROP_TABLE.exec(statement))) return [`DROP TABLE IF EXISTS ${m[1]}.${m[2]} ${on}`];
  if ((m = ADD_COLUMN.exec(statement))) {
    const [, db, table, add] = m as unknown as string[];
    const key = SHARDING_KEYS[table!];
    // 18.16 alters a Distributed table only on one server (ON CLUSTER refuses a table that is not
    // replicated), so it is made again over the altered local table. `AS` copies MATERIALIZED columns,
    // which a Distributed table must not have (request_logs has one: give it a column list instead).
    if (key === undefined || table === 'request_logs')
      throw new Error(`cannot add a column to ${table} on a cluster (cluster-ddl.ts)`);
    return [
      `ALTER TABLE ${db}.${localTable(table!)} ${on} ${add}`,
      `DROP TABLE IF EXISTS ${db}.${table} ${on}`,
      `CREATE TABLE IF NOT EXISTS ${db}.${table} ${on} AS ${db}.${localTable(table!)} ENGINE = Distributed(${cluster}, ${db}, ${localTable(table!)}, ${key})`,
    ];
  }
  if (DDL.test(statement)) throw new Error(`cannot run on a cluster: ${statement.trim().slice(0, 120)}`);
  return [statement];
}

/** A column list split at its top-level commas (types such as Decimal(18, 4) hold commas too). */
function splitColumns(list: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let quoted = false;
  let current = '';
  for (const ch of list) {
    if (ch === "'") quoted = !quoted;
    if (!quoted && ch === '(') depth += 1;
    if (!quoted && ch === ')') depth -= 1;
    if (!quoted && depth === 0 && ch === ',') {
      out.push(current.trim());
      current = '';
    } else current += ch;
  }
  if (current.trim()) out.push(current.trim());
  return out;
}

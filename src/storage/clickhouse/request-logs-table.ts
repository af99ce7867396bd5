import { REQUEST_LOG_SCHEMA } from '../../collector/request-log.ts';

/**
 * The DDL of `request_logs` and of the small tables that decide which copy of an event counts,
 * generated from the schema of record (collector/request-log.ts). Plain SQL that runs on ClickHouse
 * 18.16 and on 26.x alike. `db` is an identifier checked by the caller (ClickHouse.database).
 *
 * Which copy of an event counts (README, "Each event once"): when copies of one (app, event_id) differ
 * in their customer or their request time (second), the first received counts, and a copy within
 * DEDUPE_HORIZON_SECONDS of a copy received before it does not (first-received.ts, which also says what
 * happens to copies further apart). Copies that agree on both share a sorting key: one row to ClickHouse once
 * merged, and its merges keep the first received of them (`received_rank`).
 */

/** How far apart in request time copies of an event id are compared (first-received.ts). */
export const DEDUPE_HORIZON_SECONDS = 24 * 3600;

/** request_logs' sorting key: the identity of a copy. Copies with the same key are one row once merged. */
export const COPY_KEY = ['app', 'customer_key', 'request_time', 'event_id'] as const;

/**
 * ReplacingMergeTree keeps the row with the highest version: with the received time reversed, the first
 * received copy of a sorting key (ties: the one inserted last). Computed by ClickHouse on insert, so no
 * writer sends it and `SELECT *` does not return it.
 */
export const RECEIVED_RANK_COLUMN = 'received_rank';

/** `CREATE TABLE` of request_logs as it is since migration 7, under the given (qualified) name. */
export function createRequestLogsTable(qualifiedName: string): string {
  const columns = REQUEST_LOG_SCHEMA.map((c) => `${c.name} ${c.type}`);
  return `CREATE TABLE IF NOT EXISTS ${qualifiedName} (
        ${[...columns, `${RECEIVED_RANK_COLUMN} UInt32 MATERIALIZED 4294967295 - toUInt32(received_at)`].join(',\n        ')}
      ) ENGINE = ReplacingMergeTree(${RECEIVED_RANK_COLUMN})
      PARTITION BY toYYYYMM(request_time)
      ORDER BY (${COPY_KEY.join(', ')})`;
}

/**
 * The hours that received rows, and when: the work list of the copy resolution (copy-resolution.ts).
 * One row per hour once merged (the latest arrival wins); the view below fills it on every insert.
 */
export function createArrivalsTable(db: string): string {
  return `CREATE TABLE IF NOT EXISTS ${db}.request_log_arrivals (
        hour DateTime('UTC'),
        stored_at DateTime('UTC')
      ) ENGINE = ReplacingMergeTree(stored_at)
      ORDER BY hour`;
}

export function createArrivalsView(db: string): string {
  return `CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.request_log_arrivals_mv TO ${db}.request_log_arrivals
      AS SELECT toStartOfHour(request_time) AS hour, now() AS stored_at
      FROM ${db}.request_logs GROUP BY hour`;
}

/** Every hour present now, as if it had just arrived: what the view cannot know about (rows copied in). */
export function seedArrivals(db: string): string {
  return `INSERT INTO ${db}.request_log_arrivals (hour, stored_at)
      SELECT toStartOfHour(request_time) AS hour, now() FROM ${db}.request_logs GROUP BY hour`;
}

/**
 * Whether each copy of an event with several copies counts. `basis` measures what a decision was made
 * from (decisionBasis in first-received.ts): it only grows as rows arrive, so the decision with the
 * highest basis is the one made from the most, and the one that holds.
 */
export function createCopyDecisionsTable(db: string): string {
  return `CREATE TABLE IF NOT EXISTS ${db}.request_log_copy_decisions (
        ${COPY_KEY.map((c) => `${c} ${REQUEST_LOG_SCHEMA.find((s) => s.name === c)!.type}`).join(',\n        ')},
        counted UInt8,
        basis UInt64
      ) ENGINE = ReplacingMergeTree(basis)
      ORDER BY (${COPY_KEY.join(', ')})`;
}

/** The sorting keys of the copies that do not count, as a subquery. */
export function supersededKeys(db: string, where = ''): string {
  const key = COPY_KEY.join(', ');
  return `SELECT ${key} FROM ${db}.request_log_copy_decisions ${where}
      GROUP BY ${key} HAVING argMax(counted, basis) = 0`;
}

/** How far the copy resolution got: arrivals stored before `resolved_through` were decided. One row once merged. */
export function createResolutionsTable(db: string): string {
  return `CREATE TABLE IF NOT EXISTS ${db}.request_log_resolutions (
        scope String,
        resolved_through DateTime('UTC')
      ) ENGINE = ReplacingMergeTree(resolved_through)
      ORDER BY scope`;
}

/** request_logs without the copies that do not count: what readers use when a range holds any. */
export const COUNTED_VIEW = 'request_logs_counted';

/**
 * `distributed`: on a cluster, where both tables are Distributed ones, the subquery is GLOBAL (read
 * once over all shards): each server checks the view when ON CLUSTER creates it, with its own settings.
 */
export function createCountedView(db: string, distributed = false): string {
  return `CREATE VIEW IF NOT EXISTS ${db}.${COUNTED_VIEW} AS
      SELECT * FROM ${db}.request_logs
      WHERE (${COPY_KEY.join(', ')}) ${distributed ? 'GLOBAL ' : ''}NOT IN (${supersededKeys(db)})`;
}

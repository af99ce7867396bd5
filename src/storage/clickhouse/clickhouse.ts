import { Readable } from 'node:stream';
import {
  ClickHouseLogLevel,
  createClient,
  type ClickHouseClient,
  type ClickHouseClientConfigOptions as ClickHouseClientConfig,
} from '@clickhouse/client';

import { z } from 'zod';
import { UpstreamError } from '../../errors.ts';
import { identifier, IDENTIFIER_PATTERN } from '../../sql/escape.ts';

/**
 * The one adapter around `@clickhouse/client`. Both engines (a server over HTTP, or chdb in-process)
 * sit behind the same client API, so everything above this file is engine-agnostic.
 * Every failure leaves here as an UpstreamError; every row read back is checked by a zod schema.
 */
export type EngineKind = 'server' | 'embedded';

export interface ClickHouse {
  readonly engine: EngineKind;
  readonly database: string;
  /**
   * The <remote_servers> cluster the tables live on (CLICKHOUSE_CLUSTER), or undefined for one server
   * or the embedded engine. Only the migrations need to know (cluster-ddl.ts): the Distributed tables
   * keep every other query the same.
   */
  readonly cluster: string | undefined;
  /** `database.table`, both parts checked. */
  table(name: string): string;
  command(sql: string): Promise<void>;
  /** `settings`: ClickHouse settings for this query only (names and values are ours, never a caller's input). */
  query<S extends z.ZodType>(sql: string, row: S, settings?: QuerySettings): Promise<z.infer<S>[]>;
  /** Inserts ready-made JSONEachRow text (one JSON object a line) into a table of this database. */
  insertJsonEachRow(table: string, body: Buffer | string): Promise<void>;
  /** Inserts ready-made TabSeparated text whose fields are `columns`, in order (the rest get defaults). */
  insertTabSeparated(table: string, columns: readonly string[], body: Buffer): Promise<void>;
  ping(): Promise<boolean>;
  close(): Promise<void>;
}

export type QuerySettings = Readonly<Record<string, string | number>>;

export type ClickHouseOptions =
  | {
      kind: 'server';
      url: string;
      username: string;
      password: string;
      database: string;
      requestTimeoutMs?: number;
      cluster?: string;
      /** With `cluster`: insert_quorum, and select_sequential_consistency for reads. */
      insertQuorum?: number;
    }
  | { kind: 'embedded'; path: string; database: string };

/**
 * Every query of a connection to a cluster (18.16 knows all of these):
 * - insert_distributed_sync: an insert into a Distributed table returns once its rows are on their
 *   shards (the default queues them on the receiving server first, and its acknowledgement would not
 *   mean the rows are stored: the ingest contract needs that).
 * - load_balancing in_order: reads and writes go to the first live replica of each shard, so what a
 *   process wrote it reads back at once (another replica may not have fetched it yet); when that replica
 *   is down, both move to the next. The limit: rows the down replica had not yet handed on are missing
 *   from reads until it returns (README, "Scaling out").
 * - distributed_product_mode global: `x IN (SELECT … FROM a Distributed table)` inside a query of a
 *   Distributed table reads the subquery once, over all shards, instead of refusing.
 * With CLICKHOUSE_INSERT_QUORUM also insert_quorum (an insert returns once that many replicas of its
 * shard hold it) and select_sequential_consistency (a read sees every quorum insert, or fails): reads
 * stay exact when the first replica of a shard stops. 18.16 takes one quorum for every shard, and
 * refuses an insert on a shard with fewer live replicas (ingest then spools; the sync waits).
 */
const CLUSTER_SETTINGS = {
  insert_distributed_sync: 1,
  load_balancing: 'in_order',
  distributed_product_mode: 'global',
} as const;

const INSERT_SETTINGS = {
  // Spooled rows written by an older version of the service may lack newer columns or carry
  // dropped ones; the defaults fill in rather than failing the replay.
  input_format_skip_unknown_fields: 1,
} as const;

export async function connectClickHouse(options: ClickHouseOptions): Promise<ClickHouse> {
  const database = identifier(options.database);
  let client: ClickHouseClient;
  if (options.kind === 'server') {
    client = createClient({
      url: options.url,
      username: options.username,
      password: options.password,
      request_timeout: options.requestTimeoutMs ?? 30_000,
      // 18.16 knows none of the newer settings the client could send; keep the request plain.
      compression: { request: false, response: false },
      keep_alive: { enabled: true },
      // Failures leave this adapter as UpstreamErrors and are logged (once) by whoever handles them;
      // the client's own console logging would print each one again, outside our JSON logs.
      log: { level: ClickHouseLogLevel.OFF },
      ...(options.cluster
        ? {
            clickhouse_settings: {
              ...CLUSTER_SETTINGS,
              ...(options.insertQuorum
                ? { insert_quorum: String(options.insertQuorum), select_sequential_consistency: '1' }
                : {}),
            },
          }
        : {}),
    });
  } else {
    const { createChdbConnection } = await importChdb();
    // chdb implements the client's Connection contract, but declares it against @clickhouse/client-common's
    // copy of the types, which TypeScript sees as distinct from the client's bundled copy.
    const connection = createChdbConnection({
      path: options.path,
    }) as unknown as ClickHouseClientConfig['connection'];
    client = createClient({ connection });
  }
  const cluster = options.kind === 'server' && options.cluster ? identifier(options.cluster) : undefined;
  return new ClickHouseAdapter(client, options.kind, database, cluster);
}

/**
 * chdb/connection, imported lazily: deployments on a server never load the embedded engine's native
 * library, and may not have it at all (the Docker image installs with --omit=optional, which leaves out
 * chdb's 543 MB @chdb/lib-* package). Its absence is then a configuration problem, said as one.
 */
async function importChdb(): Promise<typeof import('chdb/connection')> {
  try {
    return await import('chdb/connection');
  } catch (err) {
    const code = (err as { code?: unknown } | null)?.code;
    if (code !== 'CHDB_PLATFORM' && code !== 'ERR_MODULE_NOT_FOUND' && code !== 'MODULE_NOT_FOUND') throw err;
    throw new UpstreamError(
      'embedded ClickHouse',
      'CLICKHOUSE_URL is not set and the embedded engine (chdb) is not installed here. ' +
        'Set CLICKHOUSE_URL to a ClickHouse server, or install with optional packages (plain `npm ci`)',
      false,
      { cause: err },
    );
  }
}

class ClickHouseAdapter implements ClickHouse {
  constructor(
    private readonly client: ClickHouseClient,
    readonly engine: EngineKind,
    readonly database: string,
    readonly cluster: string | undefined,
  ) {}

  table(name: string): string {
    return `${this.database}.${identifier(name)}`;
  }

  async command(sql: string): Promise<void> {
    await this.guard('command', () => this.client.command({ query: sql }));
  }

  async query<S extends z.ZodType>(sql: string, row: S, settings?: QuerySettings): Promise<z.infer<S>[]> {
    const raw = await this.guard('query', async () => {
      const result = await this.client.query({
        query: sql,
        format: 'JSONEachRow',
        ...(settings ? { clickhouse_settings: settings } : {}),
      });
      return result.json<unknown>();
    });
    const parsed = z.array(row).safeParse(raw);
    if (!parsed.success) {
      // A row of an unexpected shape is a bug or a schema drift: fail loudly, never guess.
      throw new UpstreamError('clickhouse', `unexpected result shape: ${parsed.error.message}`, false);
    }
    return parsed.data;
  }

  async insertJsonEachRow(table: string, body: Buffer | string): Promise<void> {
    await this.insert(
      `INSERT INTO ${this.table(table)} FORMAT JSONEachRow`,
      typeof body === 'string' ? Buffer.from(body) : body,
    );
  }

  async insertTabSeparated(table: string, columns: readonly string[], body: Buffer): Promise<void> {
    // The columns come from a spool segment's header line: a bad one is a bad segment, never retried.
    const bad = columns.find((c) => !IDENTIFIER_PATTERN.test(c));
    if (bad !== undefined || columns.length === 0) {
      throw new UpstreamError('clickhouse', `insert failed: bad column name ${JSON.stringify(bad)}`, false);
    }
    await this.insert(`INSERT INTO ${this.table(table)} (${columns.join(', ')}) FORMAT TabSeparated`, body);
  }

  private async insert(query: string, body: Buffer): Promise<void> {
    if (body.length === 0) return;
    await this.guard('insert', async () => {
      const result = await this.client.exec({
        query,
        values: Readable.from([body]),
        clickhouse_settings: INSERT_SETTINGS,
      });
      // The response stream must be drained or the socket is never released.
      result.stream.resume();
      await new Promise<void>((resolve, reject) => {
        result.stream.on('end', resolve).on('close', resolve).on('error', reject);
      });
    });
  }

  async ping(): Promise<boolean> {
    try {
      const r = await this.client.ping();
      return r.success;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    await this.client.close();
  }

  private async guard<T>(operation: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (err) {
      throw toUpstreamError(operation, err);
    }
  }
}

/** Server-side errors with these codes are about the statement, not the server's health: retrying won't help. */
const NON_RETRYABLE_CLICKHOUSE_CODES = new Set([
  '6', // CANNOT_PARSE_TEXT
  '16', // NO_SUCH_COLUMN_IN_TABLE
  '25', // CANNOT_PARSE_ESCAPE_SEQUENCE
  '26', // CANNOT_PARSE_QUOTED_STRING
  '27', // CANNOT_PARSE_INPUT_ASSERTION_FAILED
  '36', // BAD_ARGUMENTS
  '38', // CANNOT_PARSE_DATE
  '41', // CANNOT_PARSE_DATETIME
  '43', // ILLEGAL_TYPE_OF_ARGUMENT
  '47', // UNKNOWN_IDENTIFIER
  '53', // TYPE_MISMATCH
  '60', // UNKNOWN_TABLE
  '62', // SYNTAX_ERROR
  '72', // CANNOT_PARSE_NUMBER
  '81', // UNKNOWN_DATABASE
  '117', // INCORRECT_DATA
  '130', // CANNOT_READ_ARRAY_FROM_TEXT
]);

function toUpstreamError(operation: string, err: unknown): UpstreamError {
  const message = err instanceof Error ? err.message : String(err);
  // The client sets `code` from the error format of recent servers; 18.16 answers `Code: 27, e.displayText() = …`.
  const code =
    typeof err === 'object' && err !== null && 'code' in err && err.code !== undefined
      ? String(err.code)
      : (/^Code: (\d+)[.,]/.exec(message)?.[1] ?? '');
  const retryable = !NON_RETRYABLE_CLICKHOUSE_CODES.has(code);
  return new UpstreamError('clickhouse', `${operation} failed: ${message.slice(0, 500)}`, retryable, {
    cause: err,
  });
}

import type { EventRejection } from '../errors.ts';
import { z } from 'zod';

/**
 * The canonical request log row: one per API call, whatever wire format it arrived in.
 * Column names match `request_logs` in ClickHouse one to one (see storage/clickhouse/migrations.ts),
 * so a row serialises straight to a JSONEachRow line.
 */
export type SourceFormat = 'native' | 'moesif' | 'cloudevents' | 'kong';

export interface RequestLogRow {
  /** Sender's id where it has one, else a content hash (see event-id.ts). Dedupe key with `app`. */
  event_id: string;
  /** Id of the ingest key the event came in with. */
  app: string;
  /** Seconds since the epoch, UTC. */
  received_at: number;
  /** Seconds since the epoch, UTC, of the API call itself. */
  request_time: number;
  /** Milliseconds within `request_time` (0–999). */
  request_time_ms: number;
  /** The customer the call is billed to: company_id, else user_id, else ''. */
  customer_key: string;
  company_id: string;
  user_id: string;
  method: string;
  /** Path without query string or fragment. */
  route: string;
  host: string;
  status: number;
  latency_ms: number;
  request_bytes: number;
  response_bytes: number;
  api_version: string;
  source_format: SourceFormat;
  /** How many real calls this row stands for (Moesif sampling `weight`), at least 1. */
  sample_weight: number;
  /** Flattened metadata (`metadata.<path>`) and allow-listed headers (`header.<name>`), parallel arrays. */
  meta_keys: string[];
  meta_values: string[];
}

// Defined beside the error that carries it (errors.ts sits below every domain room).
export type { EventRejection } from '../errors.ts';

/** What an adapter makes of one request body. */
export interface AdaptResult {
  rows: RequestLogRow[];
  rejected: EventRejection[];
}

/** What an adapter needs besides the body. */
export interface AdaptContext {
  app: string;
  /** Milliseconds since the epoch when the request arrived. */
  receivedAtMs: number;
  /** Lower-case header names that may be stored (on top of nothing: every other header is dropped). */
  headerAllowList: ReadonlySet<string>;
  /** Accepted range of request times, as offsets from receivedAtMs. */
  maxPastMs: number;
  maxFutureMs: number;
  /** Largest serialized event, in bytes. */
  maxEventBytes: number;
  /**
   * REQUIRE_CUSTOMER: refuse an event that names no customer (its field named), instead of storing a
   * row with customer_key '' that no meter bills. Unset: such events are stored and counted.
   */
  requireCustomer?: boolean;
}

// ---------------------------------------------------------------------------------------------------
// The schema of record of `request_logs`: one list, in column order, from which everything else is
// taken: the table's DDL since migration 7 (storage/clickhouse/request-logs-table.ts), the TabSeparated
// column order of the spool and the inserts (tab-separated.ts writes it by hand, for speed; its test
// compares it with this list), the fields a meter may name (meter-schema.ts) and the zod schemas of
// rows read back. Migration 1 created these columns (a unit test holds the two together). Adding a
// column: append it here and add a migration that adds it to existing tables (`addColumns`; a fresh
// database gets it from migration 7's generated CREATE TABLE).

/** How a value is written in a TabSeparated line (tab-separated.ts writes them by hand, in this order). */
export type TsvEncoding = 'escaped-string' | 'integer' | 'string-array';

/**
 * What a meter may do with a column (meter-schema.ts): filter on it and name it as a customer or a
 * unique-count value (`text`); filter on it (`integer`); also aggregate it with sum, min, max or latest
 * (`integer-value`); nothing (`none`: the time range is the evaluation's, and metadata is reached
 * through `metadata.<key>` and `header.<name>`).
 */
export type MeterExposure = 'text' | 'integer' | 'integer-value' | 'none';

/** ClickHouse text of `DateTime('UTC')` ('YYYY-MM-DD hh:mm:ss') as epoch seconds, as RequestLogRow holds it. */
const epochSecondsText = z
  .string()
  .regex(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/)
  .transform((text) => Date.parse(`${text.replace(' ', 'T')}Z`) / 1000);

/**
 * The ClickHouse types request_logs uses, each with its TabSeparated encoding and how both engines
 * return it in JSONEachRow (64-bit integers quoted by 18.16, bare by 26.x). Only types that run the
 * same on 18.16 and 26.x (so: no Map, JSON, DateTime64 or LowCardinality).
 */
const CLICKHOUSE_TYPES = {
  String: { tsv: 'escaped-string', read: z.string() },
  UInt16: { tsv: 'integer', read: z.coerce.number() },
  UInt32: { tsv: 'integer', read: z.coerce.number() },
  UInt64: { tsv: 'integer', read: z.coerce.number() },
  "DateTime('UTC')": { tsv: 'integer', read: epochSecondsText },
  'Array(String)': { tsv: 'string-array', read: z.array(z.string()) },
} as const satisfies Record<string, { tsv: TsvEncoding; read: z.ZodType }>;

export type ClickHouseColumnType = keyof typeof CLICKHOUSE_TYPES;

export const SOURCE_FORMATS = [
  'native',
  'moesif',
  'cloudevents',
  'kong',
] as const satisfies readonly SourceFormat[];

interface ColumnSpec {
  name: keyof RequestLogRow;
  type: ClickHouseColumnType;
  meter: MeterExposure;
  /** Read back as something narrower than the type says. */
  read?: z.ZodType;
}

const COLUMN_SPECS = [
  { name: 'event_id', type: 'String', meter: 'text' },
  { name: 'app', type: 'String', meter: 'text' },
  { name: 'received_at', type: "DateTime('UTC')", meter: 'none' },
  { name: 'request_time', type: "DateTime('UTC')", meter: 'none' },
  { name: 'request_time_ms', type: 'UInt16', meter: 'integer' },
  { name: 'customer_key', type: 'String', meter: 'text' },
  { name: 'company_id', type: 'String', meter: 'text' },
  { name: 'user_id', type: 'String', meter: 'text' },
  { name: 'method', type: 'String', meter: 'text' },
  { name: 'route', type: 'String', meter: 'text' },
  { name: 'host', type: 'String', meter: 'text' },
  { name: 'status', type: 'UInt16', meter: 'integer' },
  { name: 'latency_ms', type: 'UInt32', meter: 'integer-value' },
  { name: 'request_bytes', type: 'UInt64', meter: 'integer-value' },
  { name: 'response_bytes', type: 'UInt64', meter: 'integer-value' },
  { name: 'api_version', type: 'String', meter: 'text' },
  { name: 'source_format', type: 'String', meter: 'text', read: z.enum(SOURCE_FORMATS) },
  { name: 'sample_weight', type: 'UInt32', meter: 'integer' },
  { name: 'meta_keys', type: 'Array(String)', meter: 'none' },
  { name: 'meta_values', type: 'Array(String)', meter: 'none' },
] as const satisfies readonly ColumnSpec[];

type Spec = (typeof COLUMN_SPECS)[number];
type ReadOf<C extends Spec> = C extends { read: infer R } ? R : (typeof CLICKHOUSE_TYPES)[C['type']]['read'];

export interface RequestLogColumn<C extends Spec = Spec> {
  readonly name: C['name'];
  readonly type: C['type'];
  readonly tsv: TsvEncoding;
  readonly meter: C['meter'];
  /** How the value comes back in JSONEachRow, converted to RequestLogRow's type. */
  readonly read: ReadOf<C>;
}

/** Every column of request_logs, in table (and TabSeparated) order. */
export const REQUEST_LOG_SCHEMA: readonly RequestLogColumn[] = COLUMN_SPECS.map((c: Spec) => {
  const type = CLICKHOUSE_TYPES[c.type];
  return { ...c, tsv: type.tsv, read: 'read' in c ? c.read : type.read } as RequestLogColumn;
});

/** The column names, in order: the header line of a TabSeparated spool segment and the insert's list. */
export const REQUEST_LOG_COLUMNS = COLUMN_SPECS.map((c) => c.name) as readonly Spec['name'][];

/** Names of the columns of this ClickHouse type. */
export type ColumnsOfType<T extends ClickHouseColumnType> = Extract<Spec, { type: T }>['name'];

/** Names of the columns with this meter exposure, in column order. */
export type ColumnsExposedAs<E extends MeterExposure> = Extract<Spec, { meter: E }>['name'];

export function columnsExposedAs<E extends MeterExposure>(...exposures: E[]): ColumnsExposedAs<E>[] {
  return REQUEST_LOG_SCHEMA.filter((c) => (exposures as MeterExposure[]).includes(c.meter)).map(
    (c) => c.name as ColumnsExposedAs<E>,
  );
}

type RowShape = { [C in Spec as C['name']]: ReadOf<C> };

/** A request_logs row read back (`SELECT <REQUEST_LOG_COLUMNS>`, JSONEachRow) as a RequestLogRow. */
export const requestLogRowSchema = z.object(
  Object.fromEntries(REQUEST_LOG_SCHEMA.map((c) => [c.name, c.read])) as RowShape,
);

// The row interface above and the schema of record describe the same row: a column added to one and
// not the other, or typed differently, fails to compile here.
type Same<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
const rowTypesAgree: Same<z.output<typeof requestLogRowSchema>, RequestLogRow> = true;
void rowTypesAgree;

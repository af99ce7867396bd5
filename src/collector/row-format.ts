/**
 * How spooled rows are written, and so how ClickHouse is told to read them. Each spool segment carries
 * its format in its own file (extension, plus a header line for TabSeparated), so segments written by
 * an older version of the service are still shipped correctly after an upgrade.
 *
 * - JSONEachRow (`.ndjson`): self-describing rows; used for the side tables (Moesif companies, users,
 *   actions) whose records are free-form objects.
 * - TabSeparated (`.tsv`): request_logs, the hot path. Half the bytes of JSONEachRow for the same row,
 *   cheaper to write than JSON.stringify and cheaper for ClickHouse to parse (see tab-separated.ts).
 *   The first line of a segment names the columns in order (ClickHouse's TabSeparatedWithNames
 *   layout), and the insert lists those columns, so a segment spooled before a later migration
 *   added a column still inserts, with that column's default.
 */
export type RowFormat = { kind: 'JSONEachRow' } | { kind: 'TabSeparated'; columns: readonly string[] };

export const JSON_EACH_ROW: RowFormat = { kind: 'JSONEachRow' };

export function tabSeparated(columns: readonly string[]): RowFormat {
  return { kind: 'TabSeparated', columns };
}

export function sameRowFormat(a: RowFormat, b: RowFormat): boolean {
  if (a.kind !== b.kind) return false;
  if (a.kind === 'JSONEachRow' || b.kind === 'JSONEachRow') return true;
  return a.columns.length === b.columns.length && a.columns.every((c, i) => c === b.columns[i]);
}

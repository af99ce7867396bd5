import { literal } from '../../sql/escape.ts';

/**
 * 18.16 refuses a query over max_query_size (256 KiB by default): long key lists are split so each
 * IN list stays well under it, even where a query repeats the list.
 */
const MAX_IN_LIST_BYTES = 48 * 1024;

export function chunkKeys(keys: readonly string[], maxBytes = MAX_IN_LIST_BYTES): string[][] {
  const chunks: string[][] = [];
  let current: string[] = [];
  let size = 0;
  for (const key of keys) {
    const bytes = Buffer.byteLength(literal(key)) + 2;
    if (current.length > 0 && size + bytes > maxBytes) {
      chunks.push(current);
      current = [];
      size = 0;
    }
    current.push(key);
    size += bytes;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

/** `(a, b, …)`, each value escaped. */
export const inList = (values: readonly string[]) => `(${values.map((v) => literal(v)).join(', ')})`;

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  REQUEST_LOG_SCHEMA,
  type RequestLogRow,
  type TsvEncoding,
} from '../../../src/collector/request-log.ts';
import { array, field, toTabSeparated } from '../../../src/collector/tab-separated.ts';

const row = (s: string, meta: string[]): RequestLogRow => ({
  event_id: `e-${s}`,
  app: 'app',
  received_at: 1_795_000_000,
  request_time: 1_794_999_940,
  request_time_ms: 7,
  customer_key: s,
  company_id: s,
  user_id: '',
  method: 'GET',
  route: `/${s}`,
  host: 'h',
  status: 200,
  latency_ms: 3,
  request_bytes: 1,
  response_bytes: 2,
  api_version: '',
  source_format: 'native',
  sample_weight: 1,
  meta_keys: meta,
  meta_values: [...meta].reverse(),
});

/**
 * The obvious version, driven by the schema of record (its column order and each column's encoding):
 * one string for the batch, encoded at the end. toTabSeparated writing its columns by hand in another
 * order, or one of them the wrong way, differs from it.
 */
const encoders: Record<TsvEncoding, (value: never) => string> = {
  'escaped-string': (v: string) => field(v),
  integer: (v: number) => String(v),
  'string-array': (v: string[]) => array(v),
};
const reference = (rows: RequestLogRow[]): Buffer =>
  Buffer.from(
    rows
      .map((r) => REQUEST_LOG_SCHEMA.map((c) => encoders[c.tsv](r[c.name] as never)).join('\t') + '\n')
      .join(''),
    'utf8',
  );

describe('toTabSeparated', () => {
  it('escapes fields and array elements the way ClickHouse reads them', () => {
    expect(field('a\\b\tc\nd\re')).toBe('a\\\\b\\tc\\nd\\re');
    expect(field("it's")).toBe("it's");
    expect(array(["it's", 'a\\b', '\t\n\r', ''])).toBe("['it\\'s','a\\\\b','\\t\\n\\r','']");
    expect(array([])).toBe('[]');
  });

  it('gives the same bytes as encoding the whole batch at once, also when lines outgrow the buffer', () => {
    const text = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 40 }),
      fc.string({ unit: 'grapheme', maxLength: 40 }),
      // Multi-byte and lone surrogates, long enough to outgrow the first buffer (512 bytes a row).
      fc.constantFrom('€'.repeat(3_000), '\ud800x'.repeat(500), '😀'.repeat(1_000), "\\'\t".repeat(700)),
    );
    fc.assert(
      fc.property(fc.array(fc.tuple(text, fc.array(text, { maxLength: 3 })), { maxLength: 30 }), (cases) => {
        const rows = cases.map(([s, meta]) => row(s, meta));
        expect(toTabSeparated(rows).equals(reference(rows))).toBe(true);
      }),
      { numRuns: 300 },
    );
  });
});

/**
 * JSONEachRow text for ClickHouse. JSON.stringify writes a lone UTF-16 surrogate as a `\udXXX` escape,
 * which ClickHouse 26 refuses (and which is no character at all): such strings are made well-formed
 * (U+FFFD), as any UTF-8 encoder would. The check is on the output, so the common case costs one regex.
 * (A field-by-field serializer for the fixed row shape was measured slower than V8's JSON.stringify.)
 */
export function toJsonEachRow(rows: readonly object[]): Buffer {
  let text = '';
  for (const row of rows) {
    let line = JSON.stringify(row);
    if (LONE_SURROGATE_ESCAPE.test(line)) line = JSON.stringify(row, wellFormedStrings);
    text += `${line}\n`;
  }
  return Buffer.from(text, 'utf8');
}

const LONE_SURROGATE_ESCAPE = /\\ud[89a-f][0-9a-f]{2}/i;

function wellFormedStrings(_key: string, value: unknown): unknown {
  return typeof value === 'string' ? value.toWellFormed() : value;
}

// Writes a meter definition (plain JSON data) as YAML for reading and editing. Every string is a
// JSON double-quoted scalar, which YAML reads back unchanged; numbers and booleans stay bare.

export function toYaml(value: unknown, indent = ''): string {
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]';
    return value
      .map((v) => {
        const inner = toYaml(v, `${indent}  `);
        return isBlock(v) ? `${indent}- ${inner.trimStart()}` : `${indent}- ${inner}`;
      })
      .join('\n');
  }
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value).filter(([, v]) => v !== undefined);
    if (entries.length === 0) return '{}';
    return entries
      .map(([k, v]) =>
        isBlock(v) ? `${indent}${k}:\n${toYaml(v, `${indent}  `)}` : `${indent}${k}: ${toYaml(v, indent)}`,
      )
      .join('\n');
  }
  if (typeof value === 'string') return JSON.stringify(value);
  return String(value);
}

const isBlock = (v: unknown) =>
  v !== null && typeof v === 'object' && (Array.isArray(v) ? v.length > 0 : Object.keys(v).length > 0);

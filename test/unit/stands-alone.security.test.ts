// The repository stands alone: a fresh clone, with nothing beside it, must build and test green. So no
// file may reach outside the clone for data (the wire captures once came from a folder beside it), and
// the README may not send a user to a document the clone does not have. Nothing may name the folder
// beside the clone (`..` then `shared`), or its absolute path on the machine this was made on.
//
// Limits: this reads the text of the files, so it sees relative paths written out in full and
// the machine's absolute path, not a path assembled at run time from pieces.
import { readdirSync, readFileSync, statSync, existsSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(fileURLToPath(new URL('../../', import.meta.url)));
const SCANNED = ['src', 'test', 'ingest', 'bin'];
const TEXT = /\.(ts|mts|cts|js|mjs|cjs|json|md|ya?ml|sh|txt|ndjson)$/;
/** A run of `../` ending in `shared`, wherever it is written (an import, a URL, a comment). */
const RELATIVE_SHARED = /((?:\.\.[\\/])+)shared\b/g;
/** The absolute path of the folder beside the clone on the machine this was made on. */
const ABSOLUTE_SHARED = /\/work\/shared\b/;

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === 'node_modules' || entry.name.startsWith('.')) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...filesUnder(path));
    else if (TEXT.test(entry.name) && statSync(path).size < 4 * 1024 * 1024) out.push(path);
  }
  return out;
}

/** Every place in `file` that names the shared folder outside the clone, as `path: text`. */
export function outsideReferences(file: string, text: string): string[] {
  const found: string[] = [];
  const where = relative(ROOT, file);
  if (ABSOLUTE_SHARED.test(text)) found.push(`${where}: an absolute path to the shared folder`);
  for (const match of text.matchAll(RELATIVE_SHARED)) {
    const target = resolve(dirname(file), `${match[1]}shared`);
    if (target !== ROOT && !target.startsWith(ROOT + sep)) found.push(`${where}: ${match[0]}`);
  }
  return found;
}

describe('the repository stands alone', () => {
  const files = SCANNED.flatMap((dir) => filesUnder(join(ROOT, dir)));

  it('scans the source and test files (the scan itself works)', () => {
    expect(files.length).toBeGreaterThan(100);
    expect(files).toContain(join(ROOT, 'test', 'fixtures', 'wire', 'wire-capture.ts'));
  });

  it('finds a path to the shared folder when one is written (the check can fail)', () => {
    // Spelled in pieces, so that this file does not trip its own check.
    const up = (levels: number) => '../'.repeat(levels);
    const inTest = join(ROOT, 'test', 'unit', 'collector', 'x.ts');
    expect(outsideReferences(inTest, `new URL('${up(4)}shared/wire/a.json', import.meta.url)`)).toEqual([
      `test/unit/collector/x.ts: ${up(4)}shared`,
    ]);
    expect(outsideReferences(inTest, `readFileSync('${'/work'}/shared/wire/a.json')`)).toHaveLength(1);
    // A folder named shared inside the repository is not outside it.
    expect(outsideReferences(inTest, `import '${up(1)}shared/helpers.ts'`)).toEqual([]);
  });

  it('no file under src/, test/, ingest/ or bin/ reads the shared folder beside the clone', () => {
    expect(files.flatMap((file) => outsideReferences(file, readFileSync(file, 'utf8')))).toEqual([]);
  });

  it('the README names no document that is not in the repository', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const named = [...readme.matchAll(/[\w./-]*\w\.md\b/g)].map((m) => m[0]);
    expect(named.filter((name) => !existsSync(join(ROOT, name)))).toEqual([]);
    expect(outsideReferences(join(ROOT, 'README.md'), readme)).toEqual([]);
  });
});

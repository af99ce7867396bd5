// ingest/ is a package of its own (@billing-meter/ingest): it may import Node's built-ins and its own
// files, nothing else (the service imports from it, never the reverse), and its package.json describes
// what its build emits. The packed tarball itself is tried in test/e2e/ingest-package.e2e.test.ts.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ingest = fileURLToPath(new URL('../../../ingest/', import.meta.url));
const readJson = (path: string): Record<string, unknown> => JSON.parse(readFileSync(path, 'utf8'));
const pkg = readJson(join(ingest, 'package.json'));
const rootPkg = readJson(join(ingest, '..', 'package.json'));

/** Every module specifier of a TypeScript file: static imports and re-exports, and import(). */
function specifiers(source: string): string[] {
  const found = [...source.matchAll(/^\s*(?:import|export)\b[^'"]*?\bfrom\s+'([^']+)'/gm)].map((m) => m[1]!);
  found.push(...[...source.matchAll(/^\s*import\s+'([^']+)'/gm)].map((m) => m[1]!));
  found.push(...[...source.matchAll(/\bimport\(\s*'([^']+)'\s*\)/g)].map((m) => m[1]!));
  return found;
}

const sources = readdirSync(ingest).filter((file) => file.endsWith('.ts'));

describe('ingest/ depends on nothing but Node', () => {
  it('finds the imports it checks', () => {
    expect(sources).toContain('index.ts');
    expect(specifiers(readFileSync(join(ingest, 'forwarder.ts'), 'utf8'))).toEqual(
      expect.arrayContaining(['node:http', './header-policy.ts', './post-batch.ts']),
    );
  });

  it.each(sources)('%s imports node:* and files of ingest/ only', (file) => {
    for (const specifier of specifiers(readFileSync(join(ingest, file), 'utf8'))) {
      if (specifier.startsWith('node:')) continue;
      expect(specifier, `${file} imports ${specifier}`).toMatch(/^\.\//);
      const target = relative(ingest, resolve(dirname(join(ingest, file)), specifier));
      expect(target.startsWith('..'), `${file} imports ${specifier}`).toBe(false);
    }
  });

  it('declares no dependencies', () => {
    for (const field of ['dependencies', 'peerDependencies', 'optionalDependencies'])
      expect(pkg[field], field).toBeUndefined();
  });
});

describe('ingest/package.json', () => {
  it('exports the built entry and its declarations, as ESM', () => {
    expect(pkg.name).toBe('@billing-meter/ingest');
    expect(pkg.type).toBe('module');
    expect(pkg.exports).toEqual({
      '.': { types: './dist/index.d.ts', default: './dist/index.js' },
      './package.json': './package.json',
    });
    expect(pkg.main).toBe('./dist/index.js');
    expect(pkg.types).toBe('./dist/index.d.ts');
    expect(pkg.files).toEqual(['dist/']);
  });

  it('builds index.ts (and what it imports) into dist/ with declarations', () => {
    const build = readJson(join(ingest, 'tsconfig.build.json')) as {
      compilerOptions: Record<string, unknown>;
      files: string[];
    };
    expect(build.files).toEqual(['index.ts']);
    expect(build.compilerOptions).toMatchObject({
      outDir: 'dist',
      rootDir: '.',
      declaration: true,
      noEmit: false,
      rewriteRelativeImportExtensions: true,
    });
    expect((pkg.scripts as Record<string, string>).prepack).toMatch(/npm run build/);
  });

  it('has the license and the Node versions of the service', () => {
    expect(pkg.license).toBe(rootPkg.license);
    expect(pkg.engines).toEqual(rootPkg.engines);
  });
});

// The repository's LICENSE is the license package.json names (Apache-2.0), as its canonical text: the
// file apache.org serves as LICENSE-2.0.txt, byte for byte. The ingest package ships the same file.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const read = (path: string) => readFileSync(new URL(`../../../${path}`, import.meta.url), 'utf8');
const license = read('LICENSE');

describe('LICENSE', () => {
  it('is the Apache License 2.0 that package.json and ingest/package.json name', () => {
    expect(JSON.parse(read('package.json')).license).toBe('Apache-2.0');
    expect(JSON.parse(read('ingest/package.json')).license).toBe('Apache-2.0');
    expect(license).toMatch(/^\s+Apache License\n\s+Version 2\.0, January 2004\n/);
    expect(license).toContain('TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION');
  });

  it('is the canonical text, unaltered', () => {
    // md5 3b83ef96387f14655fc854ddc3c6bd57, the well-known digest of apache.org's LICENSE-2.0.txt.
    expect(createHash('md5').update(license).digest('hex')).toBe('3b83ef96387f14655fc854ddc3c6bd57');
  });

  it('goes into the ingest tarball', () => {
    expect(JSON.parse(read('ingest/package.json')).scripts.prepack).toContain('cp ../LICENSE LICENSE');
  });
});

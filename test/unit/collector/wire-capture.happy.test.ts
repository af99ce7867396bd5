// The capture script (test/fixtures/wire/capture.ts) run for real against the installed clients: it must
// write every capture file, and each must have the shape of the committed one (the same requests, header
// names and body fields, with their types), so the fixtures the adapters are tested on are still what
// these client versions send. Only values differ between runs: ports, times, generated ids.
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLIENTS, captureFileName } from '../../fixtures/wire/capture.ts';
import { readWire } from '../../fixtures/wire/wire-capture.ts';

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const SCRIPT = fileURLToPath(new URL('../../fixtures/wire/capture.ts', import.meta.url));

/** The value with every leaf replaced by its type and object keys sorted: what a capture promises. */
function shapeOf(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(shapeOf);
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((key) => [key, shapeOf((value as Record<string, unknown>)[key])]),
    );
  }
  return value === null ? 'null' : typeof value;
}

function runCapture(outDir: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', SCRIPT, '--out', outDir], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, output }));
  });
}

describe('npm run capture:wire', () => {
  let outDir: string;
  let run: { code: number | null; output: string };

  beforeAll(async () => {
    outDir = await mkdtemp(join(tmpdir(), 'bm-wire-'));
    run = await runCapture(outDir);
  }, 90_000);

  afterAll(async () => {
    await rm(outDir, { recursive: true, force: true });
  });

  it('captures every client, and says that Kong is not captured', async () => {
    expect(run.code, run.output).toBe(0);
    expect((await readdir(outDir)).sort()).toEqual(CLIENTS.map(captureFileName).sort());
    expect(run.output).toContain('not captured: Kong');
  });

  it.each(CLIENTS)('writes %s in the shape of the committed capture', (client) => {
    const file = captureFileName(client);
    const fresh = readWire(file, pathToFileURL(`${outDir}/`));
    const committed = readWire(file);
    expect(fresh.map((c) => `${c.method} ${c.path}`)).toEqual(committed.map((c) => `${c.method} ${c.path}`));
    expect(shapeOf(fresh)).toEqual(shapeOf(committed));
  });
});

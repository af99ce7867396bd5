// The README's quick start, run as written in a fresh clone of the repository (what is committed,
// nothing beside it): the commands are read from the README, so the README cannot drift from what works.
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanEnv, REPO_ROOT } from '../support/cli.ts';

const exec = promisify(execFile);

/** The shell blocks of the README's "Quick start" section, in order. */
function quickStartCommands(readme: string): string[] {
  const section = /^## Quick start\n([\s\S]*?)^## /m.exec(readme)?.[1] ?? '';
  const before = section.split(/^### /m)[0]!;
  return [...before.matchAll(/^```sh\n([\s\S]*?)```$/gm)].map((m) => m[1]!.trim());
}

const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
const [runIt, testIt] = quickStartCommands(readme);
let clone: string;

beforeAll(async () => {
  clone = await mkdtemp(join(tmpdir(), 'bm-quickstart-'));
  await exec('git', ['clone', '--quiet', '--no-hardlinks', REPO_ROOT, clone]);
});

afterAll(async () => {
  await rm(clone, { recursive: true, force: true });
});

describe('README quick start', () => {
  it('has the two commands: run it, test it', () => {
    expect(runIt).toBe('npm ci && npm run demo');
    expect(testIt).toBe('bash .ci/run');
    // The test command is the CI entry point, and it runs the suite with npm test.
    expect(readFileSync(join(REPO_ROOT, '.ci/run'), 'utf8')).toMatch(/^npm test$/m);
  });

  it(
    '"run it" in a fresh clone installs, shows the bill, and leaves git status clean',
    { timeout: 600_000 },
    async () => {
      const child = spawn('bash', ['-c', runIt!], {
        cwd: clone,
        // PORT=0: a free port instead of 8080, which a developer's own service may hold.
        env: cleanEnv({ PORT: '0' }),
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
      });
      let output = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (output += d));
      child.stderr.setEncoding('utf8').on('data', (d: string) => (output += d));
      try {
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`no bill after 9 minutes:\n${output}`)), 540_000);
          child.stdout.on('data', () => {
            if (/while it runs, the CLI/.test(output)) {
              clearTimeout(timer);
              resolve();
            }
          });
          child.on('exit', (code) => reject(new Error(`exited ${code} before the bill:\n${output}`)));
        });
        expect(output).toMatch(/retrieve-credit-score: \d+ calls\n(?:\s+tier.*\n)+\s+cost: \$[\d,.]+\n/);
        expect(output).toMatch(/kept in \.\/data\/demo-admin-key/);
      } finally {
        const exited = once(child, 'exit');
        try {
          process.kill(-child.pid!, 'SIGINT');
        } catch {
          // already gone
        }
        await exited;
      }
      const { stdout: status } = await exec('git', ['status', '--porcelain'], { cwd: clone });
      expect(status).toBe('');
    },
  );
});

// `npm run demo`, as the README's quick start runs it: it must end by showing the bill, with an admin
// key and next steps that work as printed.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanEnv, REPO_ROOT } from '../support/cli.ts';

const run = promisify(execFile);
let dir: string;
let demo: ChildProcess;
let output = '';

/** Resolves with everything printed once `pattern` has appeared. */
function until(pattern: RegExp, timeoutMs = 120_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`the demo never printed ${pattern}:\n${output}`)),
      timeoutMs,
    );
    const check = () => {
      if (pattern.test(output)) {
        clearTimeout(timer);
        resolve(output);
      }
    };
    demo.stdout!.on('data', check);
    demo.on('exit', (code) => reject(new Error(`the demo exited (${code}) early:\n${output}`)));
    check();
  });
}

/** What Ctrl-C does in a terminal: SIGINT to the whole foreground process group. */
const ctrlC = () => {
  try {
    process.kill(-demo.pid!, 'SIGINT');
  } catch {
    // already gone
  }
};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bm-demo-'));
  demo = spawn('npm', ['run', '--silent', 'demo'], {
    cwd: REPO_ROOT,
    env: cleanEnv({ PORT: '0', DATA_DIR: join(dir, 'data') }),
    stdio: ['ignore', 'pipe', 'pipe'],
    // Its own process group, so that a signal reaches npm, sh and node alike, as Ctrl-C does.
    detached: true,
  });
  demo.stdout!.setEncoding('utf8').on('data', (d: string) => (output += d));
  demo.stderr!.setEncoding('utf8').on('data', (d: string) => (output += d));
  await until(/while it runs, the CLI/);
});

afterAll(async () => {
  if (demo.exitCode === null && demo.signalCode === null) {
    ctrlC();
    await once(demo, 'exit');
  }
  await rm(dir, { recursive: true, force: true });
});

describe('npm run demo', () => {
  it('prints a demo admin key kept in the data directory', () => {
    expect(output).toMatch(
      /admin key \(generated for this demo, kept in .*demo-admin-key\): demo_admin_[0-9a-f]{48}\n/,
    );
  });

  it("shows one customer's usage and cost by tier, and the printed usage curl gives the same cost", async () => {
    const cost = /retrieve-credit-score: (\d+) calls\n(?:\s+tier.*\n)+\s+cost: (\$[\d,.]+)\n/.exec(output);
    expect(cost, output).not.toBeNull();
    const [, calls, display] = cost!;
    // Graduated: 1–100 at $5.00, 101–1000 at $3.00, beyond at $2.00 (the shipped meter's plan).
    const n = Number(calls);
    const cents =
      Math.min(n, 100) * 500 + Math.max(0, Math.min(n, 1000) - 100) * 300 + Math.max(0, n - 1000) * 200;
    expect(display).toBe(`$${(cents / 100).toLocaleString('en-US', { minimumFractionDigits: 2 })}`);

    const exportLine = /^ {2}export (ADMIN=\S+ KEY=\S+)$/m.exec(output)![1]!;
    const curl = /^ {2}(curl -s '\S+\/usage\?period=\S+' .*)$/m.exec(output)![1]!;
    const { stdout } = await run('bash', ['-c', `export ${exportLine}; ${curl}`]);
    const answer = JSON.parse(stdout) as {
      meters: { meter: string; quantity: string; cost?: { display: string } }[];
    };
    const meter = answer.meters.find((m) => m.meter === 'retrieve-credit-score')!;
    expect(meter.quantity).toBe(calls);
    expect(meter.cost?.display).toBe(display);
  });

  it('prints next steps that work as printed: send a call', async () => {
    const exportLine = /^ {2}export (ADMIN=\S+ KEY=\S+)$/m.exec(output)![1]!;
    const send = /^ {2}(curl -X POST \S+\/v1\/logs .*\\\n.*)$/m.exec(output)![1]!;
    // Under .ci/pinned-clocks the shell's `date` reads the real clock while the service reads the
    // pinned one; `date` then answers the pinned clock (a Node process inherits the pin).
    const pinned = (process.env.BILLING_METER_PINNED_NOW ?? 'now') !== 'now';
    const pinnedDate = pinned
      ? `date() { node -e 'process.stdout.write(new Date().toISOString().slice(0, 19) + "Z")'; }; `
      : '';
    const { stdout } = await run('bash', [
      '-c',
      `${pinnedDate}export ${exportLine}; ${send} -w ' %{http_code}'`,
    ]);
    expect(stdout).toMatch(/"accepted":1.* 202$/);
  });

  it('stops on Ctrl-C: drains, frees the port and the embedded engine', async () => {
    const url = /is running at (http:\/\/\S+) /.exec(output)![1]!;
    const exited = once(demo, 'exit') as Promise<[number | null, string | null]>;
    ctrlC();
    const [code, signal] = await exited;
    // npm itself ends by the SIGINT it was sent; the demo below it drains and exits 0.
    expect(code === 0 || signal === 'SIGINT').toBe(true);
    await expect(fetch(`${url}/healthz`)).rejects.toThrow();
    expect(existsSync(join(dir, 'data', 'clickhouse', 'owner.json'))).toBe(false);
  });
});

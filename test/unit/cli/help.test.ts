// Every command and subcommand answers --help and -h with its usage, exit 0, and touches nothing:
// no port is listened on, no file is written in DATA_DIR, no ClickHouse is asked. The list comes from
// the CLI's own command table, so a new command cannot forget it.
import { once } from 'node:events';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allCommands, COMMANDS } from '../../../src/cli/index.ts';
import { cleanEnv, hasStackTrace, runBin } from '../../support/cli.ts';

let dataDir: string;
let trap: net.Server;
let trapPort: number;
let connections = 0;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'bm-cli-help-'));
  // Stands in for ClickHouse, Stripe and the collector: any command that reaches out connects here.
  trap = net.createServer((socket) => {
    connections++;
    socket.destroy();
  });
  trap.listen(0, '127.0.0.1');
  await once(trap, 'listening');
  trapPort = (trap.address() as AddressInfo).port;
});

afterAll(async () => {
  trap.close();
  await rm(dataDir, { recursive: true, force: true });
});

const env = () =>
  cleanEnv({
    DATA_DIR: dataDir,
    // Taken by the trap: a command that tried to serve would fail with "port in use" (exit 1).
    PORT: String(trapPort),
    CLICKHOUSE_URL: `http://127.0.0.1:${trapPort}`,
    STRIPE_SECRET_KEY: 'sk_test_help',
    STRIPE_API_BASE: `http://127.0.0.1:${trapPort}`,
    BILLING_METER_URL: `http://127.0.0.1:${trapPort}`,
  });

const paths = [
  ...allCommands().map((c) => c.path),
  ...COMMANDS.filter((c) => 'commands' in c).map((g) => [(g as { name: string }).name]),
];

describe('--help and -h', () => {
  it.each(paths.flatMap((p) => [[p.join(' '), '--help'] as const, [p.join(' '), '-h'] as const]))(
    '%s %s prints its usage and exits 0 without touching anything',
    { timeout: 60_000 },
    async (path, flag) => {
      const run = await runBin([...path.split(' '), flag], { env: env() });
      expect(run.code).toBe(0);
      expect(run.stdout).toContain(`usage: billing-meter ${path}`);
      expect(run.stderr).toBe('');
      expect(await readdir(dataDir)).toEqual([]);
      expect(connections).toBe(0);
    },
  );

  it('the top level lists every command', async () => {
    const run = await runBin(['--help'], { env: env() });
    expect(run.code).toBe(0);
    for (const c of allCommands()) expect(run.stdout).toContain(c.path.join(' '));
  });
});

describe('bad arguments', () => {
  it.each(allCommands().map((c) => c.path.join(' ')))(
    '%s --no-such-option prints one line and the usage, exit 2',
    { timeout: 60_000 },
    async (path) => {
      const run = await runBin([...path.split(' '), '--no-such-option'], { env: env() });
      expect(run.code).toBe(2);
      const [first, second] = run.stderr.split('\n');
      expect(first).toBe(`billing-meter ${path}: unknown option '--no-such-option'`);
      expect(second).toBe('');
      expect(run.stderr).toContain(`usage: billing-meter ${path}`);
      expect(hasStackTrace(run.stderr)).toBe(false);
      expect(await readdir(dataDir)).toEqual([]);
      expect(connections).toBe(0);
    },
  );

  it('an unknown command or subcommand is exit 2 with the usage', async () => {
    const top = await runBin(['frobnicate'], { env: env() });
    expect(top.code).toBe(2);
    expect(top.stderr).toMatch(/^billing-meter: unknown command 'frobnicate'\n/);
    const sub = await runBin(['keys', 'frobnicate'], { env: env() });
    expect(sub.code).toBe(2);
    expect(sub.stderr).toMatch(/^billing-meter keys: unknown command 'frobnicate'\n/);
    expect(sub.stderr).toContain('usage: billing-meter keys <command>');
  });
});

// Runs the real CLI (bin/billing-meter.js) as a child process, as a user's shell would.
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serverUrl } from './clickhouse.ts';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const BIN = fileURLToPath(new URL('../../bin/billing-meter.js', import.meta.url));

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * The pinned wall clock of .ci/pinned-clocks (NODE_OPTIONS and BILLING_METER_PINNED_*), for a child
 * process that must agree with the test on the date; empty outside that run.
 */
export function pinnedClockEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env))
    if (v !== undefined && /^(NODE_OPTIONS|BILLING_METER_PINNED_NOW|BILLING_METER_PINNED_AT)$/.test(k))
      env[k] = v;
  return env;
}

/** The environment of a user with nothing configured: no ClickHouse, Stripe or admin key of ours. */
export function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env))
    if (
      v !== undefined &&
      !/^(CLICKHOUSE_|STRIPE_|ADMIN_API_KEY|BILLING_METER_|DEBUG$|PORT$|DATA_DIR$)/.test(k)
    )
      env[k] = v;
  return { ...env, ...pinnedClockEnv(), ...extra };
}

export function runBin(
  args: readonly string[],
  options: { env?: Record<string, string>; cwd?: string; timeoutMs?: number } = {},
): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: options.cwd ?? REPO_ROOT,
      env: options.env ?? cleanEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** No stack trace: no "    at fn (file:line)" frames and no "Error:" dumps of an object. */
export function hasStackTrace(text: string): boolean {
  return /^\s+at .+[:(]/m.test(text) || /\{\s*\n\s+code:/m.test(text);
}

/** `billing-meter <args>` with `env` over this process's environment; a killed process exits -1. */
export async function runCli(
  args: string[],
  env: Record<string, string>,
): Promise<CliRun & { code: number }> {
  const run = await runBin(args, { env: { ...(process.env as Record<string, string>), ...env } });
  return { ...run, code: run.code ?? -1 };
}

/**
 * `billing-meter keys create` in its own process, against `database` on the run's ClickHouse server and
 * with a data dir of its own: a key that a service using that database has not read yet.
 */
export async function createKeyWithCli(
  database: string,
  name: string,
): Promise<{ key: string; keyId: string }> {
  const dataDir = await mkdtemp(join(tmpdir(), 'bm-cli-'));
  try {
    const created = await runCli(['keys', 'create', '--name', name], {
      CLICKHOUSE_URL: serverUrl(),
      CLICKHOUSE_DATABASE: database,
      DATA_DIR: dataDir,
      LOG_LEVEL: 'silent',
    });
    if (created.code !== 0) throw new Error(`keys create exited ${created.code}: ${created.stderr}`);
    const key = created.stdout.trim().split('\n').at(-1) ?? '';
    const match = /^bmk_(\w{16})_\w{48}$/.exec(key);
    if (!match) throw new Error(`keys create printed no key: ${created.stdout}`);
    return { key, keyId: match[1]! };
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
}

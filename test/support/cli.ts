// Runs `billing-meter <args>` as its own process (as an operator types it), for tests of what one
// process does to another: a key created by the CLI, a service killed and restarted.
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serverUrl } from './clickhouse.ts';

export const BIN = fileURLToPath(new URL('../../bin/billing-meter.js', import.meta.url));

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function runCli(args: string[], env: Record<string, string>): Promise<CliResult> {
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code: code ?? -1, stdout, stderr })));
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

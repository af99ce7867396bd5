// The CLI's everyday commands against a real ClickHouse server, as an operator types them: short human
// summaries by default, JSON with --json, and the facts they must not leave out.
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBin, cleanEnv, BIN, REPO_ROOT } from '../support/cli.ts';
import { serverUrl } from '../support/clickhouse.ts';
import { spawn } from 'node:child_process';

let dir: string;
let env: Record<string, string>;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bm-cli-commands-'));
  env = cleanEnv({
    CLICKHOUSE_URL: serverUrl(),
    CLICKHOUSE_DATABASE: `cli_${process.pid}_${Date.now()}`,
    DATA_DIR: join(dir, 'data'),
    LOG_LEVEL: 'silent',
  });
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('billing-meter commands on a ClickHouse server', () => {
  it('keys create prints the key alone on the last line; keys list shows it as a table', async () => {
    const created = await runBin(['keys', 'create', '--name', 'cli test'], { env });
    expect(created.stderr).toBe('');
    expect(created.code).toBe(0);
    const key = created.stdout.trim().split('\n').at(-1)!;
    expect(key).toMatch(/^bmk_\w{16}_\w{48}$/);
    const listed = await runBin(['keys', 'list'], { env });
    expect(listed.code).toBe(0);
    expect(listed.stdout.split('\n')[0]).toMatch(/^key_id\s+state\s+created\s+name$/);
    expect(listed.stdout).toMatch(/active .* cli test/);
    const json = JSON.parse((await runBin(['keys', 'list', '--json'], { env })).stdout) as { name: string }[];
    expect(json.map((k) => k.name)).toEqual(['cli test']);
  });

  it('meters evaluate says through when it evaluated and whether late events were left unbilled', async () => {
    const run = await runBin(['meters', 'evaluate'], { env });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^evaluated every closed hour through \d{4}-\d\d-\d\dT\d\d:00:00\.000Z: /m);
    expect(run.stdout).toContain('no event arrived after its lateness window');
  });

  it('sync run says which evaluation it sends, that it is a dry run, and how to evaluate first', async () => {
    const run = await runBin(['sync', 'run'], { env });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^usage as evaluated at \S+ \(run with --evaluate to evaluate first\)$/m);
    expect(run.stdout).toContain('dry run: no STRIPE_SECRET_KEY');
    const json = JSON.parse(
      (await runBin(['sync', 'run', '--evaluate', '--json'], { env })).stdout,
    ) as Record<string, unknown>;
    expect(json).toMatchObject({ dry_run: true, late_outside_window: 0, aborted: false });
    expect(typeof json.last_evaluation).toBe('string');
  });

  it('meters evaluate refuses a time without a zone with the API’s words, exit 2', async () => {
    const run = await runBin(['meters', 'evaluate', '--from', '2026-12-01T00:00', '--to', '2026-12-02'], {
      env,
    });
    expect(run.code).toBe(2);
    expect(run.stderr.split('\n')[0]).toMatch(/^--from: .*send an ISO-8601 time with a zone/);
  });

  it('ship to a collector that is down says so after the first failure instead of waiting in silence', async () => {
    const probe = net.createServer().listen(0, '127.0.0.1');
    await once(probe, 'listening');
    const port = (probe.address() as AddressInfo).port;
    probe.close();
    const file = join(dir, 'one.ndjson');
    await writeFile(
      file,
      `${JSON.stringify({ timestamp: new Date().toISOString(), method: 'GET', path: '/x', status: 200 })}\n`,
    );
    const child = spawn(
      process.execPath,
      [BIN, 'ship', file, '--url', `http://127.0.0.1:${port}`, '--key', 'k'.repeat(60)],
      {
        cwd: REPO_ROOT,
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.setEncoding('utf8');
    const noted = new Promise<void>((resolve) =>
      child.stderr.on('data', (d: string) => {
        stderr += d;
        if (stderr.includes('retrying in')) resolve();
      }),
    );
    // The note names the first failure and the wait before the second attempt (not the last one).
    await noted;
    child.kill('SIGTERM');
    expect(stderr).toMatch(
      new RegExp(
        `^http://127\\.0\\.0\\.1:${port}: .*ECONNREFUSED.*; retrying in \\d+\\.\\d s \\(attempt 2\\)$`,
        'm',
      ),
    );
  });
});

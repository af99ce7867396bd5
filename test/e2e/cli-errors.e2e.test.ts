// The failures a new user meets first each get one line, exit 1, and no stack trace (unless DEBUG).
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, cleanEnv, hasStackTrace, REPO_ROOT, runBin } from '../support/cli.ts';

const INGEST_KEY = 'x'.repeat(60);
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bm-cli-errors-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const oneLine = (text: string) => text.trimEnd().split('\n');

describe('expected failures are one line, exit 1, no stack', () => {
  it('serve on a port in use says which port and what to set', async () => {
    const holder = net.createServer().listen(0, '127.0.0.1');
    await once(holder, 'listening');
    const port = (holder.address() as AddressInfo).port;
    try {
      const run = await runBin(['serve'], {
        env: cleanEnv({
          PORT: String(port),
          HOST: '127.0.0.1',
          DATA_DIR: join(dir, 'port'),
          LOG_LEVEL: 'silent',
        }),
      });
      expect(run.code).toBe(1);
      expect(oneLine(run.stderr)).toEqual([
        `port ${port} is in use; set PORT to another port (PORT=0 picks a free one)`,
      ]);
    } finally {
      holder.close();
    }
  });

  it('ship of a missing file names the file', async () => {
    const run = await runBin([
      'ship',
      join(dir, 'nope.ndjson'),
      '--key',
      INGEST_KEY,
      '--url',
      'http://127.0.0.1:9',
    ]);
    expect(run.code).toBe(1);
    expect(oneLine(run.stderr)).toEqual([`${join(dir, 'nope.ndjson')}: no such file or directory`]);
  });

  it('meters validate of a missing folder names the folder', async () => {
    const run = await runBin(['meters', 'validate', join(dir, 'no-meters')]);
    expect(run.code).toBe(1);
    expect(oneLine(run.stderr)).toEqual([`${join(dir, 'no-meters')}: no such file or directory`]);
  });

  it('meters validate of an empty folder says it found no meters, exit 1', async () => {
    await mkdir(join(dir, 'empty'));
    const run = await runBin(['meters', 'validate', join(dir, 'empty')]);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(oneLine(run.stderr)).toEqual([
      `no meters found in ${join(dir, 'empty')} (one YAML file per meter: *.yaml or *.yml)`,
    ]);
  });

  it('ClickHouse down: says where it tried and what to check, no stack', async () => {
    // A ClickHouse URL whose port nothing listens on: the connection error is explained in words.
    const probe = net.createServer().listen(0, '127.0.0.1');
    await once(probe, 'listening');
    const port = (probe.address() as AddressInfo).port;
    probe.close();
    const env = cleanEnv({ CLICKHOUSE_URL: `http://127.0.0.1:${port}`, DATA_DIR: join(dir, 'down') });
    const run = await runBin(['keys', 'list'], { env });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(
      `cannot connect to ClickHouse at 127.0.0.1:${port}: connection refused (is it running? CLICKHOUSE_URL says where it is)`,
    );
    expect(hasStackTrace(run.stderr)).toBe(false);
    expect(run.stderr).not.toContain('stop the running service');
  });

  it('a command beside a running service on the embedded engine says who holds it, no native error', async () => {
    const dataDir = join(dir, 'busy');
    const service = spawn(process.execPath, [BIN, 'serve'], {
      cwd: REPO_ROOT,
      env: cleanEnv({ PORT: '0', HOST: '127.0.0.1', DATA_DIR: dataDir, LOG_LEVEL: 'silent' }),
      stdio: 'ignore',
    });
    try {
      const owner = join(dataDir, 'clickhouse', 'owner.json');
      const deadline = Date.now() + 60_000;
      while (!(existsSync(owner) && readFileSync(owner, 'utf8').includes('"url"'))) {
        if (Date.now() > deadline) throw new Error('the service did not start');
        await new Promise((r) => setTimeout(r, 100));
      }
      const url = (JSON.parse(readFileSync(owner, 'utf8')) as { url: string }).url;
      const run = await runBin(['keys', 'list'], { env: cleanEnv({ DATA_DIR: dataDir }) });
      expect(run.code).toBe(1);
      expect(oneLine(run.stderr)).toEqual([
        `the embedded ClickHouse in ${join(dataDir, 'clickhouse')} is in use by billing-meter serve (pid ${service.pid}, ${url}): stop it first, or use its admin API while it runs`,
      ]);
    } finally {
      service.kill('SIGTERM');
      await once(service, 'exit');
    }
    // Stopped, the engine is free again for the CLI.
    const after = await runBin(['keys', 'list'], { env: cleanEnv({ DATA_DIR: dataDir }) });
    expect(after.stderr).toBe('');
    expect(after.code).toBe(0);
  });
});

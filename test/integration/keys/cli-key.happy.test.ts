// A key made with `billing-meter keys create` (another process) is accepted by a running service on
// its first request, not after the service's next periodic refresh of the key table (every 5 s).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serverUrl } from '../../support/clickhouse.ts';
import { runCli } from '../../support/cli.ts';
import { startTestService, type TestService } from '../../support/service.ts';

describe('a key created by the CLI while the service runs', () => {
  let svc: TestService;
  let cliDataDir: string;

  beforeAll(async () => {
    svc = await startTestService('server');
    cliDataDir = await mkdtemp(join(tmpdir(), 'bm-cli-'));
  });

  afterAll(async () => {
    await svc?.stop();
    await rm(cliDataDir, { recursive: true, force: true });
  });

  it('is accepted on its first request', async () => {
    const created = await runCli(['keys', 'create', '--name', 'made by the cli'], {
      CLICKHOUSE_URL: serverUrl(),
      CLICKHOUSE_DATABASE: svc.config.clickhouse.database,
      DATA_DIR: cliDataDir,
      LOG_LEVEL: 'silent',
    });
    expect(created.code, created.stderr).toBe(0);
    const key = created.stdout.trim().split('\n').at(-1)!;
    expect(key).toMatch(/^bmk_\w{16}_\w{48}$/);

    const res = await fetch(`${svc.url}/v1/logs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify([
        { id: 'cli-key-1', timestamp: new Date().toISOString(), method: 'GET', path: '/x', status: 200 },
      ]),
    });
    expect(res.status, await res.text()).toBe(202);
    const [row] = (await svc.rows()).filter((r) => r.event_id === 'cli-key-1');
    expect(row?.app).toBe(key.slice(4, 20));
  });
});

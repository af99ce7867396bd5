// A key made with `billing-meter keys create` (another process) is accepted by a running service on
// its first request, not after the service's next periodic refresh of the key table (every 5 s).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKeyWithCli } from '../../support/cli.ts';
import { startTestService, type TestService } from '../../support/service.ts';

describe('a key created by the CLI while the service runs', () => {
  let svc: TestService;

  beforeAll(async () => {
    svc = await startTestService('server');
  });

  afterAll(async () => {
    await svc?.stop();
  });

  it('is accepted on its first request', async () => {
    const { key, keyId } = await createKeyWithCli(svc.config.clickhouse.database, 'made by the cli');
    const res = await fetch(`${svc.url}/v1/logs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify([
        { id: 'cli-key-1', timestamp: new Date().toISOString(), method: 'GET', path: '/x', status: 200 },
      ]),
    });
    expect(res.status, await res.text()).toBe(202);
    const [row] = (await svc.rows()).filter((r) => r.event_id === 'cli-key-1');
    expect(row?.app).toBe(keyId);
  });
});

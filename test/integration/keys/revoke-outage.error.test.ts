// A revoke while ClickHouse is down cannot know whether the key exists (another process may have made
// it since the service last read the key table): it answers 503, never 404 "no such key", and revokes
// nothing until ClickHouse is back. Runs on the ClickHouse server, the one engine that can be stopped
// from outside.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { managedServer } from '../../support/clickhouse.ts';
import { createKeyWithCli } from '../../support/cli.ts';
import { startTestService, type TestService } from '../../support/service.ts';

describe('DELETE /v1/admin/keys/:id during a ClickHouse outage', () => {
  const server = managedServer();
  let svc: TestService;

  beforeAll(async () => {
    svc = await startTestService('server');
  });

  afterAll(async () => {
    await server.start();
    await svc?.stop();
  });

  const revoke = (keyId: string) =>
    fetch(`${svc.url}/v1/admin/keys/${keyId}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${svc.adminKey}` },
    });
  const ingest = (key: string, id: string) =>
    fetch(`${svc.url}/v1/logs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify([
        { id, timestamp: new Date().toISOString(), method: 'GET', path: '/x', status: 200 },
      ]),
    });

  it('answers 503 problem+json, then revokes once ClickHouse is back', async () => {
    // Made by the CLI: this service has not read it yet.
    const { key, keyId } = await createKeyWithCli(svc.config.clickhouse.database, 'made by the cli');

    await server.stop();
    const during = await revoke(keyId);
    expect(during.status).toBe(503);
    expect(during.headers.get('content-type')).toContain('application/problem+json');
    const problem = (await during.json()) as { type: string; status: number; title: string };
    expect(problem).toMatchObject({
      type: 'https://billing-meter.dev/problems/upstream-unavailable',
      status: 503,
    });
    expect(JSON.stringify(problem)).not.toMatch(/no key|not found/i);
    // The service's own key still sends, into the spool while ClickHouse is down.
    expect((await ingest(svc.ingestKey, 'during-outage')).status).toBe(202);

    await server.start();
    expect((await ingest(key, 'before-revoke')).status).toBe(202);
    expect((await revoke(keyId)).status).toBe(204);
    expect((await ingest(key, 'after-revoke')).status).toBe(401);
    expect((await revoke('NoSuchKeyId00000')).status).toBe(404);
  });
});

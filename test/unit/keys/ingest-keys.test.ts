import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InMemoryIngestKeyRepository } from '../../../src/keys/in-memory-ingest-key-repository.ts';
import {
  generateIngestKey,
  hashIngestKey,
  IngestKeyService,
  randomBase62,
} from '../../../src/keys/ingest-keys.ts';

describe('ingest keys', () => {
  it('are at least 50 random base62 characters with a public key id', () => {
    const { keyId, key } = generateIngestKey();
    expect(key.length).toBeGreaterThanOrEqual(50);
    expect(key).toMatch(/^bmk_[0-9A-Za-z]{16}_[0-9A-Za-z]{48}$/);
    expect(key.startsWith(`bmk_${keyId}_`)).toBe(true);
    expect(new Set(Array.from({ length: 200 }, () => generateIngestKey().key)).size).toBe(200);
  });

  it('draws base62 characters without modulo bias', () => {
    const counts = new Map<string, number>();
    for (const ch of randomBase62(62 * 2000)) counts.set(ch, (counts.get(ch) ?? 0) + 1);
    expect(counts.size).toBe(62);
    for (const n of counts.values()) expect(n).toBeGreaterThan(1600);
  });

  it('stores only the hash, and authenticates the key it created', async () => {
    const repo = new InMemoryIngestKeyRepository();
    const keys = new IngestKeyService(repo);
    const { record, key } = await keys.create('acme gateway');
    const stored = repo.records.get(record.keyId)!;
    expect(stored.keyHash).toBe(hashIngestKey(key));
    expect(JSON.stringify(stored)).not.toContain(key);
    expect((await keys.authenticate(key))?.keyId).toBe(record.keyId);
  });

  it('refuses missing, malformed, unknown, tampered and revoked keys', async () => {
    const keys = new IngestKeyService(new InMemoryIngestKeyRepository());
    const { record, key } = await keys.create('a');
    const tampered = key.slice(0, -1) + (key.endsWith('A') ? 'B' : 'A');
    for (const bad of [undefined, '', 'short', generateIngestKey().key, tampered, `${key} `]) {
      expect(await keys.authenticate(bad)).toBeUndefined();
    }
    expect(await keys.revoke(record.keyId)).toBe(true);
    expect(await keys.authenticate(key)).toBeUndefined();
    expect(await keys.revoke('nope')).toBe(false);
  });

  it('sees a key revoked by another process after a refresh', async () => {
    const repo = new InMemoryIngestKeyRepository();
    const service = new IngestKeyService(repo);
    const cli = new IngestKeyService(repo);
    const { key, record } = await cli.create('from the cli');
    await service.refresh();
    expect(await service.authenticate(key)).toMatchObject({ keyId: record.keyId, name: 'from the cli' });
    await cli.revoke(record.keyId);
    expect((await service.authenticate(key))?.keyId).toBe(record.keyId);
    await service.refresh();
    expect(await service.authenticate(key)).toBeUndefined();
  });

  it('authenticates from its local snapshot when the repository is down at start', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'bm-keys-'));
    const repo = new InMemoryIngestKeyRepository();
    const { key, record } = await new IngestKeyService(repo, join(dir, 'snap.json')).create('a');
    repo.failing = true;
    const restarted = new IngestKeyService(repo, join(dir, 'snap.json'));
    await restarted.load();
    expect(await restarted.authenticate(key)).toEqual(record);
    await expect(new IngestKeyService(repo, join(dir, 'missing.json')).load()).rejects.toThrow('unavailable');
    await rm(dir, { recursive: true, force: true });
  });

  it('refreshes at the same moment all succeed and leave a snapshot of the keys (they shared its temporary file)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'bm-keys-'));
    const repo = new InMemoryIngestKeyRepository();
    const service = new IngestKeyService(repo, join(dir, 'snap.json'));
    const { key, record } = await service.create('a');
    const results = await Promise.allSettled(Array.from({ length: 20 }, () => service.refresh()));
    expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
    repo.failing = true;
    const restarted = new IngestKeyService(repo, join(dir, 'snap.json'));
    await restarted.load();
    expect(await restarted.authenticate(key)).toEqual(record);
    await rm(dir, { recursive: true, force: true });
  });
});

import { describe, expect, it } from 'vitest';
import { UpstreamError } from '../../../src/errors.ts';
import { InMemoryIngestKeyRepository } from '../../../src/keys/in-memory-ingest-key-repository.ts';
import { IngestKeyService } from '../../../src/keys/ingest-keys.ts';

describe('revoking while the key table cannot be read', () => {
  it('fails with a retryable UpstreamError instead of answering "no such key"', async () => {
    const repo = new InMemoryIngestKeyRepository();
    const { record, key } = await new IngestKeyService(repo).create('made elsewhere');
    const service = new IngestKeyService(repo);
    repo.failing = true;
    const error = await service.revoke(record.keyId).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(UpstreamError);
    expect(error).toMatchObject({ retryable: true, service: 'ingest keys' });
    expect((error as Error).message).toContain(record.keyId);
    expect(repo.records.get(record.keyId)?.revokedAt).toBeUndefined();

    repo.failing = false;
    expect(await service.revoke(record.keyId)).toBe(true);
    expect(repo.records.get(record.keyId)?.revokedAt).toBeInstanceOf(Date);
    expect(await service.authenticate(key)).toBeUndefined();
    expect(await service.revoke('no-such-key')).toBe(false);
  });

  it('keeps a failure that retrying cannot fix as it is', async () => {
    const repo = new InMemoryIngestKeyRepository();
    const service = new IngestKeyService({
      listAll: () => Promise.reject(new UpstreamError('clickhouse', 'unexpected result shape', false)),
      save: (r) => repo.save(r),
    });
    await expect(service.revoke('any')).rejects.toMatchObject({ retryable: false });
  });
});

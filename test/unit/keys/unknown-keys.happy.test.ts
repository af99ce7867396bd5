import { describe, expect, it } from 'vitest';
import { InMemoryIngestKeyRepository } from '../../../src/keys/in-memory-ingest-key-repository.ts';
import { IngestKeyService, type IngestKeyRepository } from '../../../src/keys/ingest-keys.ts';
import { fakeTime } from '../../support/fake-time.ts';

// A key made by another process (`billing-meter keys create`) is accepted by a running service on its
// first use, not after the next periodic refresh.
describe('a key created by another process', () => {
  it('is accepted on its first use', async () => {
    const repo = new InMemoryIngestKeyRepository();
    const service = new IngestKeyService(repo);
    await service.load();
    const { key, record } = await new IngestKeyService(repo).create('from the cli');
    expect((await service.authenticate(key))?.keyId).toBe(record.keyId);
    expect(repo.reads).toBe(2);
    // Known from then on: no further reads.
    expect((await service.authenticate(key))?.keyId).toBe(record.keyId);
    expect(repo.reads).toBe(2);
  });

  it('is accepted even when a refresh was already under way when it was created', async () => {
    const repo = new InMemoryIngestKeyRepository();
    let release: () => void = () => undefined;
    let held = false;
    // The first read waits until released; it took its copy of the table before the key existed.
    const slow: IngestKeyRepository = {
      listAll: async () => {
        const snapshot = await repo.listAll();
        if (!held) {
          held = true;
          await new Promise<void>((resolve) => (release = resolve));
        }
        return snapshot;
      },
      save: (r) => repo.save(r),
    };
    const time = fakeTime();
    const service = new IngestKeyService(slow, undefined, undefined, { minIntervalMs: 1000, clock: time });
    const before = service.authenticate(`bmk_${'A'.repeat(16)}_${'b'.repeat(48)}`);
    await time.settle();
    const { key, record } = await new IngestKeyService(repo).create('made during the read');
    const after = service.authenticate(key);
    release();
    expect(await before).toBeUndefined();
    // The read under way cannot have seen the key: the lookup waits for the next one, a second later.
    await time.advance(1000);
    expect((await after)?.keyId).toBe(record.keyId);
  });
});

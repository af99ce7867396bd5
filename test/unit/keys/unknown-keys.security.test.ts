import { describe, expect, it } from 'vitest';
import { InMemoryIngestKeyRepository } from '../../../src/keys/in-memory-ingest-key-repository.ts';
import { generateIngestKey, IngestKeyService } from '../../../src/keys/ingest-keys.ts';
import { fakeTime } from '../../support/fake-time.ts';

// Refusing an unknown key reads the key table first (it may have just been created elsewhere). A flood
// of made-up keys must not turn into a flood of reads.
describe('a flood of unknown keys', () => {
  const setup = async () => {
    const repo = new InMemoryIngestKeyRepository();
    const time = fakeTime();
    const service = new IngestKeyService(repo, undefined, undefined, { minIntervalMs: 1000, clock: time });
    const { key } = await service.create('real');
    return { repo, time, service, key };
  };

  it('1,000 at once cost one read, and every one is refused', async () => {
    const { repo, time, service } = await setup();
    const lookups = Array.from({ length: 1000 }, () => service.authenticate(generateIngestKey().key));
    await time.run();
    expect(await Promise.all(lookups)).toEqual(Array(1000).fill(undefined));
    expect(repo.reads).toBe(1);
  });

  it('1,000 spread over 10 seconds cost at most one read a second', async () => {
    const { repo, time, service, key } = await setup();
    const lookups: Promise<unknown>[] = [];
    for (let i = 0; i < 1000; i++) {
      lookups.push(service.authenticate(generateIngestKey().key));
      await time.advance(10);
    }
    await time.run();
    expect(await Promise.all(lookups)).toEqual(Array(1000).fill(undefined));
    // Reads start at 0, 1000, …, 10000 ms at the most.
    expect(repo.reads).toBeGreaterThanOrEqual(10);
    expect(repo.reads).toBeLessThanOrEqual(11);
    // A known key never waits and never reads.
    const before = repo.reads;
    expect((await service.authenticate(key))?.name).toBe('real');
    expect(repo.reads).toBe(before);
  });

  it('malformed keys are refused without a read', async () => {
    const { repo, service, key } = await setup();
    for (const bad of [undefined, '', 'short', `${key} `, key.replace('bmk_', 'bmx_'), `${key}x`]) {
      expect(await service.authenticate(bad)).toBeUndefined();
    }
    expect(repo.reads).toBe(0);
  });

  it('a read that fails refuses the key and still counts against the interval', async () => {
    const { repo, time, service, key } = await setup();
    repo.failing = true;
    const first = service.authenticate(generateIngestKey().key);
    await time.run();
    expect(await first).toBeUndefined();
    const more = Array.from({ length: 100 }, () => service.authenticate(generateIngestKey().key));
    await time.advance(999);
    expect(repo.reads).toBe(1);
    await time.run();
    expect(await Promise.all(more)).toEqual(Array(100).fill(undefined));
    expect(repo.reads).toBe(2);
    // Keys known before the outage still work.
    expect((await service.authenticate(key))?.name).toBe('real');
  });
});

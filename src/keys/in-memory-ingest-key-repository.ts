import { UpstreamError } from '../errors.ts';
import type { IngestKeyRecord, IngestKeyRepository } from './ingest-keys.ts';

/**
 * The fake beside the port, for unit tests: last save of a key id wins, as in ClickHouse. `failing`
 * makes every call fail as an unreachable ClickHouse does; `reads` counts the calls of listAll.
 */
export class InMemoryIngestKeyRepository implements IngestKeyRepository {
  readonly records = new Map<string, IngestKeyRecord>();
  failing = false;
  reads = 0;

  async listAll(): Promise<IngestKeyRecord[]> {
    this.reads += 1;
    this.failIfDown();
    return [...this.records.values()].map((r) => ({ ...r }));
  }

  async save(record: IngestKeyRecord): Promise<void> {
    this.failIfDown();
    this.records.set(record.keyId, { ...record });
  }

  private failIfDown(): void {
    if (this.failing) throw new UpstreamError('in-memory keys', 'repository unavailable', true);
  }
}

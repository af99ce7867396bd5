import type { IngestKeyRecord, IngestKeyRepository } from './ingest-keys.ts';

/** The fake beside the port, for unit tests: last save of a key id wins, as in ClickHouse. */
export class InMemoryIngestKeyRepository implements IngestKeyRepository {
  readonly records = new Map<string, IngestKeyRecord>();
  failing = false;

  async listAll(): Promise<IngestKeyRecord[]> {
    if (this.failing) throw new Error('repository unavailable');
    return [...this.records.values()];
  }

  async save(record: IngestKeyRecord): Promise<void> {
    if (this.failing) throw new Error('repository unavailable');
    this.records.set(record.keyId, { ...record });
  }
}

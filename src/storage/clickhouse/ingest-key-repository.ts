import { z } from 'zod';
import type { IngestKeyRecord, IngestKeyRepository } from '../../keys/ingest-keys.ts';
import type { ClickHouse } from './clickhouse.ts';

const keyRow = z.object({
  key_id: z.string(),
  name: z.string(),
  key_hash: z.string(),
  created_at: z.coerce.number(),
  revoked_at: z.coerce.number(),
});

export class ClickHouseIngestKeyRepository implements IngestKeyRepository {
  constructor(private readonly ch: ClickHouse) {}

  async listAll(): Promise<IngestKeyRecord[]> {
    // argMax over `version` rather than FINAL: exact before merges, on both engines.
    const rows = await this.ch.query(
      `SELECT key_id,
              argMax(name, version) AS name,
              argMax(key_hash, version) AS key_hash,
              toUInt32(argMax(created_at, version)) AS created_at,
              toUInt32(argMax(revoked_at, version)) AS revoked_at
       FROM ${this.ch.table('ingest_keys')}
       GROUP BY key_id`,
      keyRow,
    );
    return rows.map((r) => ({
      keyId: r.key_id,
      name: r.name,
      keyHash: r.key_hash,
      createdAt: new Date(r.created_at * 1000),
      revokedAt: r.revoked_at === 0 ? undefined : new Date(r.revoked_at * 1000),
    }));
  }

  async save(record: IngestKeyRecord): Promise<void> {
    const row = {
      key_id: record.keyId,
      name: record.name,
      key_hash: record.keyHash,
      created_at: Math.floor(record.createdAt.getTime() / 1000),
      revoked_at: record.revokedAt ? Math.floor(record.revokedAt.getTime() / 1000) : 0,
      // Microseconds since the epoch: later changes win even within one second.
      version: Math.round(performance.timeOrigin * 1000 + performance.now() * 1000),
    };
    await this.ch.insertJsonEachRow('ingest_keys', Buffer.from(`${JSON.stringify(row)}\n`));
  }
}

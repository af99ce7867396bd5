import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { UpstreamError } from '../../../src/errors.ts';
import { connectClickHouse, type ClickHouse } from '../../../src/storage/clickhouse/clickhouse.ts';
import { migrate } from '../../../src/storage/clickhouse/migrations.ts';
import { startTestCluster, type TestCluster } from '../../support/test-cluster.ts';

// CLICKHOUSE_INSERT_QUORUM on 18.16, on a shard of two replicas: an acknowledged insert is on both, so a
// read still sees it when the replica it was written to stops at once; with one replica down, an insert
// is refused (retryable: ingest spools, the sync waits) rather than acknowledged on one.
describe('insert quorum on a cluster of one shard with two replicas (18.16)', () => {
  let cluster: TestCluster;
  const clients: ClickHouse[] = [];
  const open = async (member: number) => {
    const ch = await connectClickHouse({
      kind: 'server',
      url: cluster.members[member]!.server.url,
      username: 'default',
      password: '',
      database: 'quorum',
      cluster: cluster.name,
      insertQuorum: 2,
    });
    clients.push(ch);
    return ch;
  };
  beforeAll(async () => {
    cluster = await startTestCluster([2]);
  });
  afterAll(async () => {
    for (const ch of clients) await ch.close();
    await cluster?.stop();
  });

  const row = (opId: string) =>
    `${JSON.stringify({ op_id: opId, kind: 'send', meter: 'm', customer_key: 'c', hour: 3600, value: '5', state: 'intent', seq: '1', fencing_token: '3' })}\n`;
  const count = (ch: ClickHouse) =>
    ch.query(`SELECT count() AS n FROM ${ch.table('sync_ledger')}`, z.object({ n: z.coerce.number() }));

  it('reads every acknowledged ledger row after the replica it went to stops; refuses one it cannot place twice', async () => {
    const second = await open(1);
    expect(await migrate(second)).toContain(8);
    // Through either server, the insert goes to the first replica (in order) and waits for the second.
    await second.insertJsonEachRow('sync_ledger', row('op-1'));
    const first = cluster.members[0]!.server;
    await first.kill();
    expect(await count(second)).toEqual([{ n: 1 }]);
    await first.start();
    await cluster.members[1]!.server.stop();
    const viaFirst = await open(0);
    const refused = await viaFirst.insertJsonEachRow('sync_ledger', row('op-2')).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(UpstreamError);
    expect((refused as UpstreamError).retryable).toBe(true);
    expect(String(refused)).toMatch(/quorum/);
    await cluster.members[1]!.server.start();
  });
});

// A ZooKeeper and a ClickHouse cluster for one test file (clickhouse-cluster.ts, zookeeper-server.ts).
import { inject } from 'vitest';
import { startClickHouseCluster, type ClickHouseCluster } from './clickhouse-cluster.ts';
import { startZooKeeper, type ZooKeeperServer } from './zookeeper-server.ts';

export interface TestCluster extends ClickHouseCluster {
  readonly zookeeper: ZooKeeperServer;
  /** COORDINATION_URL for a service on this cluster's ZooKeeper, under `root`. */
  coordinationUrl(root: string): string;
  /** The service's environment for CLICKHOUSE_URL on `member` (default the first). */
  env(member?: number): Record<string, string>;
}

/**
 * ZooKeeper and a cluster for one test file (beforeAll), in the run's dir: about a second to start, so
 * only the cluster tests pay for it, and a drill that stops a server disturbs no other file.
 */
/** `layout`: replicas per shard (default [2, 1]: clickhouse-cluster.ts). */
export async function startTestCluster(layout?: readonly number[]): Promise<TestCluster> {
  const parentDir = inject('runDir');
  const zookeeper = await startZooKeeper({ parentDir });
  let cluster: ClickHouseCluster;
  try {
    cluster = await startClickHouseCluster({
      parentDir,
      zookeeper: zookeeper.connectString,
      ...(layout ? { layout } : {}),
    });
  } catch (error) {
    await zookeeper.stop();
    throw error;
  }
  return {
    ...cluster,
    zookeeper,
    coordinationUrl: (root) => `zk://${zookeeper.connectString}/${root}`,
    env: (member = 0) => ({
      CLICKHOUSE_URL: cluster.members[member]!.server.url,
      CLICKHOUSE_CLUSTER: cluster.name,
    }),
    async stop() {
      await cluster.stop();
      await zookeeper.stop();
    },
  };
}

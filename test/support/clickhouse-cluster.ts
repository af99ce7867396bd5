// A ClickHouse cluster on loopback, for the cluster tests and drills: Debian's clickhouse-server 18.16,
// each server started by startClickHouseServer (clickhouse-server.ts) on its own ports and dir, with
// the cluster's part of the config: remote_servers (the layout), zookeeper, macros (which shard and
// replica a server is, for Replicated* paths), distributed_ddl (ON CLUSTER) and an interserver port.
//
// Layout: shard 1 with two replicas, shard 2 with one. The smallest one that has both a shard split
// (sharding, distributed reads) and a replica to stop (replication, failover), on three servers.
// Every server's control stays in its dir (controlServer), so a test worker can stop one.

import { freePorts, startClickHouseServer, xml, type ClickHouseServer } from './clickhouse-server.ts';

export interface ClusterMember {
  /** 1-based, as in <macros>. */
  shard: number;
  replica: number;
  server: ClickHouseServer;
}

export interface ClickHouseCluster {
  /** The <remote_servers> name: CLICKHOUSE_CLUSTER. */
  readonly name: string;
  readonly members: readonly ClusterMember[];
  stop(): Promise<void>;
}

export interface StartClickHouseClusterOptions {
  parentDir?: string;
  /** host:port of the ZooKeeper every server uses. */
  zookeeper: string;
  name?: string;
  /** Replicas per shard; default [2, 1]. */
  layout?: readonly number[];
}

export async function startClickHouseCluster(
  opts: StartClickHouseClusterOptions,
): Promise<ClickHouseCluster> {
  const name = opts.name ?? 'billing';
  const layout = opts.layout ?? [2, 1];
  const places = layout.flatMap((replicas, s) =>
    Array.from({ length: replicas }, (_, r) => ({ shard: s + 1, replica: r + 1 })),
  );
  const ports = await freePorts(places.length * 3);
  const planned = places.map((p, i) => ({
    ...p,
    http: ports[i * 3]!,
    tcp: ports[i * 3 + 1]!,
    interserver: ports[i * 3 + 2]!,
  }));
  const remoteServers = `  <remote_servers>
    <${name}>
${layout
  .map(
    (_, s) => `      <shard>
        <internal_replication>true</internal_replication>
${planned
  .filter((p) => p.shard === s + 1)
  .map((p) => `        <replica><host>127.0.0.1</host><port>${p.tcp}</port></replica>`)
  .join('\n')}
      </shard>`,
  )
  .join('\n')}
    </${name}>
  </remote_servers>
`;
  const [zkHost, zkPort] = opts.zookeeper.split(':');
  const zookeeper = `  <zookeeper>
    <node><host>${xml(zkHost ?? '127.0.0.1')}</host><port>${Number(zkPort)}</port></node>
    <session_timeout_ms>10000</session_timeout_ms>
  </zookeeper>
  <distributed_ddl><path>/clickhouse/task_queue/ddl</path></distributed_ddl>
`;
  const members: ClusterMember[] = [];
  const stop = async () => {
    await Promise.all(members.map((m) => m.server.stop()));
  };
  try {
    // One at a time: three servers booting at once on two shared cores time each other out.
    for (const p of planned) {
      const server = await startClickHouseServer({
        parentDir: opts.parentDir,
        dirPrefix: `billing-meter-clickhouse-s${p.shard}r${p.replica}-`,
        ports: { http: p.http, tcp: p.tcp, interserver: p.interserver },
        extraConfig: `${remoteServers}${zookeeper}  <macros><shard>${p.shard}</shard><replica>r${p.replica}</replica></macros>
`,
      });
      members.push({ shard: p.shard, replica: p.replica, server });
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return { name, members, stop };
}

// A throwaway ZooKeeper (Debian's `zookeeper` package, 3.8) in a temp dir on a free port: what a
// replicated ClickHouse and the service's lease (src/coordination) both need. One standalone server:
// the tests drill replicas of ClickHouse and of the service, not a ZooKeeper ensemble.
//
// Started as `java … ZooKeeperServerMain zoo.cfg`, without Debian's init scripts, so nothing outside
// the temp dir is read or written. Small heap and the client JIT only: it shares two cores with the
// ClickHouse servers and the tests.

import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePorts, sleep } from './clickhouse-server.ts';

export interface ZooKeeperServer {
  readonly port: number;
  /** host:port, as ClickHouse's <zookeeper> and the service's COORDINATION_URL name it. */
  readonly connectString: string;
  readonly dir: string;
  /** Client connections open now, as `srvr` counts them (less the one asking). */
  connections(): Promise<number>;
  /** Resolves once connections() is `count` (sessions closing take a moment); throws after `timeoutMs`. */
  waitForConnections(count: number, timeoutMs?: number): Promise<void>;
  /** SIGTERM and wait for exit (SIGKILL after 10 s), then delete the dir unless keepDir. */
  stop(options?: { keepDir?: boolean }): Promise<void>;
}

export interface StartZooKeeperOptions {
  parentDir?: string;
  /** How long start waits for it to take sessions; default 60 s (a JVM on two busy cores). */
  readyTimeoutMs?: number;
}

/** Debian's jars: zookeeper.jar's manifest names the rest (jute, netty, slf4j). */
const ZOOKEEPER_JAR = '/usr/share/java/zookeeper.jar';

export function findZooKeeper(): string {
  if (existsSync(ZOOKEEPER_JAR)) return ZOOKEEPER_JAR;
  throw new Error(
    'ZooKeeper is not installed, and the cluster tests need one. Run `.ci/run` (installs it), ' +
      'or `sudo apt-get install -y zookeeper`.',
  );
}

export async function startZooKeeper(opts: StartZooKeeperOptions = {}): Promise<ZooKeeperServer> {
  const jar = findZooKeeper();
  const dir = await mkdtemp(join(opts.parentDir ?? tmpdir(), 'billing-meter-zookeeper-'));
  await mkdir(join(dir, 'data'));
  const [port] = await freePorts(1);
  if (port === undefined) throw new Error('could not reserve a free port');
  const config = join(dir, 'zoo.cfg');
  // tickTime 500 ms: session timeouts may be as short as 2 ticks, so the lease drills can use 1-3 s
  // leases. The admin server (Jetty on 8080) is off: it would collide between runs.
  await writeFile(
    config,
    [
      'tickTime=500',
      `dataDir=${join(dir, 'data')}`,
      `clientPort=${port}`,
      'clientPortAddress=127.0.0.1',
      'admin.enableServer=false',
      'minSessionTimeout=1000',
      'maxSessionTimeout=60000',
      '4lw.commands.whitelist=ruok,srvr',
      'forceSync=no',
      '',
    ].join('\n'),
  );
  const log = openSync(join(dir, 'zookeeper.log'), 'a');
  let child: ChildProcess;
  try {
    child = spawn(
      'java',
      [
        '-Xmx128m',
        '-XX:+UseSerialGC',
        '-XX:TieredStopAtLevel=1',
        `-Dzookeeper.log.dir=${dir}`,
        '-cp',
        jar,
        'org.apache.zookeeper.server.ZooKeeperServerMain',
        config,
      ],
      { cwd: dir, stdio: ['ignore', log, log] },
    );
  } finally {
    closeSync(log);
  }
  child.unref();
  let exited = false;
  child.on('exit', () => (exited = true));
  child.on('error', () => (exited = true));

  const stop = async (options: { keepDir?: boolean } = {}) => {
    if (!exited) {
      child.kill('SIGTERM');
      const deadline = Date.now() + 10_000;
      while (!exited && Date.now() < deadline) await sleep(50);
      if (!exited) child.kill('SIGKILL');
      while (!exited) await sleep(50);
    }
    if (!options.keepDir) await rm(dir, { recursive: true, force: true });
  };

  const deadline = Date.now() + (opts.readyTimeoutMs ?? 60_000);
  for (;;) {
    if (exited) {
      const text = await readFile(join(dir, 'zookeeper.log'), 'utf8').catch(() => '');
      await rm(dir, { recursive: true, force: true });
      throw new Error(`ZooKeeper exited before it was ready:\n${text.split('\n').slice(-20).join('\n')}`);
    }
    // `srvr` reports a Mode only once the server takes sessions (`ruok` answers imok before that).
    // ClickHouse 18.16 must not start before: its DDL worker crashes (SIGSEGV) when its first
    // connection to ZooKeeper fails.
    if (/^Mode: /m.test(await fourLetterWord(port, 'srvr').catch(() => ''))) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`ZooKeeper on port ${port} was not ready in time`);
    }
    await sleep(100);
  }
  const connections = async () => {
    const count = /^Connections: (\d+)$/m.exec(await fourLetterWord(port, 'srvr'))?.[1];
    if (count === undefined) throw new Error('ZooKeeper did not say how many connections it has');
    return Number(count) - 1;
  };
  const waitForConnections = async (count: number, timeoutMs = 10_000) => {
    const deadline = Date.now() + timeoutMs;
    let now = await connections();
    while (now !== count) {
      if (Date.now() > deadline) throw new Error(`ZooKeeper has ${now} connections, not ${count}`);
      await sleep(50);
      now = await connections();
    }
  };
  return { port, connectString: `127.0.0.1:${port}`, dir, connections, waitForConnections, stop };
}

/** ZooKeeper's four-letter commands (srvr: its state). */
function fourLetterWord(port: number, word: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let answer = '';
    const socket = connect({ host: '127.0.0.1', port }, () => socket.write(word));
    socket.setTimeout(2_000, () => socket.destroy(new Error('timed out')));
    socket.on('data', (chunk) => (answer += String(chunk)));
    socket.on('end', () => resolve(answer.trim()));
    socket.on('error', reject);
  });
}

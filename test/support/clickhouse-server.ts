// A throwaway ClickHouse server (Debian's clickhouse-server 18.16) in a temp dir, for integration
// tests and fault drills.
//
// Everything needed to control the server lives in its directory: `server.json` (ports, config
// path) and `server.pid` (the current process). So any process can stop, kill or restart it with
// controlServer(dir): the vitest global setup that started it, or a test worker running a drill.
// The process is checked against /proc before any signal is sent, so a stale or reused pid is
// never signalled.

import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { get } from 'node:http';
import { connect, createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { delimiter, join } from 'node:path';
import { tmpdir } from 'node:os';

export interface ClickHouseServer {
  readonly url: string;
  readonly httpPort: number;
  readonly tcpPort: number;
  /** Temp dir holding config.xml, data/, log/, server.json and server.pid. */
  readonly dir: string;
  /** SIGTERM, wait for exit and for both ports to close; SIGKILL after stopTimeoutMs. No-op if not running. */
  stop(): Promise<void>;
  /** Start again on the same ports and data dir and wait until it answers. No-op if running. */
  start(): Promise<void>;
  /** SIGKILL (a crash, not a shutdown) and wait for exit. No-op if not running. */
  kill(): Promise<void>;
  /** Whether the recorded server process is alive. */
  isRunning(): boolean;
}

export interface StartClickHouseServerOptions {
  /** Path of the clickhouse-server binary; default: found on PATH, /usr/sbin or /usr/bin. */
  binary?: string;
  /** Parent of the server's temp dir; default os.tmpdir(). */
  parentDir?: string;
  /** How long start() waits for `SELECT 1`; default 30 s. */
  readyTimeoutMs?: number;
  /** How long stop() waits after SIGTERM before SIGKILL; default 10 s. */
  stopTimeoutMs?: number;
  /**
   * Ports decided by the caller (a cluster's servers must know each other's before any starts);
   * default: free ones. interserverPort: the replication port (a replicated table's server needs one).
   */
  ports?: { http: number; tcp: number; interserver?: number };
  /** XML placed inside <yandex>, after the base config (remote_servers, zookeeper, macros...). */
  extraConfig?: string;
  /** Prefix of the temp dir's name; default billing-meter-clickhouse-. */
  dirPrefix?: string;
}

interface ServerState {
  binary: string;
  configPath: string;
  httpPort: number;
  tcpPort: number;
  readyTimeoutMs: number;
  stopTimeoutMs: number;
}

const STATE_FILE = 'server.json';
const PID_FILE = 'server.pid';
const ERR_LOG = join('log', 'clickhouse-server.err.log');
const STDERR_LOG = join('log', 'stderr.log');

/** Creates a temp dir with a config on two free ports, starts the server and waits until it answers. */
export async function startClickHouseServer(
  opts: StartClickHouseServerOptions = {},
): Promise<ClickHouseServer> {
  const binary = opts.binary ?? findClickHouseServer();
  const dir = await mkdtemp(join(opts.parentDir ?? tmpdir(), opts.dirPrefix ?? 'billing-meter-clickhouse-'));
  const [httpPort, tcpPort] = opts.ports ? [opts.ports.http, opts.ports.tcp] : await freePorts(2);
  if (httpPort === undefined || tcpPort === undefined) throw new Error('could not reserve two free ports');
  for (const sub of ['data', 'tmp', 'user_files', 'format_schemas', 'log']) await mkdir(join(dir, sub));
  const configPath = join(dir, 'config.xml');
  const interserver =
    opts.ports?.interserver === undefined
      ? ''
      : `  <interserver_http_port>${opts.ports.interserver}</interserver_http_port>
  <interserver_http_host>127.0.0.1</interserver_http_host>\n`;
  await writeFile(configPath, configXml(dir, httpPort, tcpPort, interserver + (opts.extraConfig ?? '')));
  const state: ServerState = {
    binary,
    configPath,
    httpPort,
    tcpPort,
    readyTimeoutMs: opts.readyTimeoutMs ?? 30_000,
    stopTimeoutMs: opts.stopTimeoutMs ?? 10_000,
  };
  await writeFile(join(dir, STATE_FILE), JSON.stringify(state, null, 2));
  const server = controlServer(dir);
  try {
    await server.start();
  } catch (error) {
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    throw error;
  }
  return server;
}

/** Control of a server started by startClickHouseServer, from any process, through its directory. */
export function controlServer(dir: string): ClickHouseServer {
  const statePath = join(dir, STATE_FILE);
  if (!existsSync(statePath)) {
    throw new Error(`${dir} is not a directory made by startClickHouseServer (no ${STATE_FILE})`);
  }
  const state = JSON.parse(readFileSync(statePath, 'utf8')) as ServerState;
  const pidPath = join(dir, PID_FILE);
  const url = `http://127.0.0.1:${state.httpPort}`;

  const currentPid = (): number | undefined => {
    if (!existsSync(pidPath)) return undefined;
    const pid = Number(readFileSync(pidPath, 'utf8').trim());
    return Number.isSafeInteger(pid) && pid > 0 && isOurServer(pid, state.configPath) ? pid : undefined;
  };

  const waitForExit = async (pid: number, timeoutMs: number): Promise<boolean> => {
    const deadline = Date.now() + timeoutMs;
    while (isOurServer(pid, state.configPath)) {
      if (Date.now() > deadline) return false;
      await sleep(50);
    }
    return true;
  };

  const waitForPortsClosed = async (): Promise<void> => {
    const deadline = Date.now() + 10_000;
    for (const port of [state.httpPort, state.tcpPort]) {
      while (await isPortOpen(port)) {
        if (Date.now() > deadline)
          throw new Error(`ClickHouse exited but port ${port} still accepts connections`);
        await sleep(50);
      }
    }
  };

  const signalAndWait = async (signal: NodeJS.Signals): Promise<void> => {
    const pid = currentPid();
    if (pid === undefined) return;
    sendSignal(pid, signal);
    if (!(await waitForExit(pid, signal === 'SIGKILL' ? 10_000 : state.stopTimeoutMs))) {
      if (signal === 'SIGKILL') throw new Error(`ClickHouse (pid ${pid}) survived SIGKILL`);
      sendSignal(pid, 'SIGKILL');
      if (!(await waitForExit(pid, 10_000))) throw new Error(`ClickHouse (pid ${pid}) survived SIGKILL`);
    }
    await rm(pidPath, { force: true });
    await waitForPortsClosed();
  };

  const start = async (): Promise<void> => {
    if (currentPid() !== undefined) {
      await waitUntilReady(url, state.readyTimeoutMs, dir, () => currentPid() !== undefined);
      return;
    }
    const stderr = openSync(join(dir, STDERR_LOG), 'a');
    let exited = false;
    try {
      // Not detached: it stays in the test run's process group, so Ctrl-C reaches it too.
      const child = spawn(state.binary, [`--config-file=${state.configPath}`], {
        cwd: dir,
        stdio: ['ignore', stderr, stderr],
      });
      child.on('exit', () => {
        exited = true;
      });
      child.on('error', () => {
        exited = true;
      });
      child.unref();
      if (child.pid === undefined) throw new Error(`could not spawn ${state.binary}`);
      await writeFile(pidPath, `${child.pid}\n`);
    } finally {
      closeSync(stderr);
    }
    try {
      await waitUntilReady(url, state.readyTimeoutMs, dir, () => !exited && currentPid() !== undefined);
    } catch (error) {
      await signalAndWait('SIGKILL').catch(() => undefined);
      throw error;
    }
  };

  return {
    url,
    httpPort: state.httpPort,
    tcpPort: state.tcpPort,
    dir,
    stop: () => signalAndWait('SIGTERM'),
    kill: () => signalAndWait('SIGKILL'),
    start,
    isRunning: () => currentPid() !== undefined,
  };
}

/** The clickhouse-server binary, or an error saying how to install it. */
export function findClickHouseServer(): string {
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), '/usr/sbin', '/usr/bin'];
  for (const d of dirs) {
    const candidate = join(d, 'clickhouse-server');
    if (existsSync(candidate)) return candidate;
  }
  throw new Error(
    'clickhouse-server is not installed, and the integration tests need a real ClickHouse server. ' +
      'Run `.ci/run` (installs it), or `sudo apt-get install -y clickhouse-server`, ' +
      'or point CLICKHOUSE_TEST_URL at a running server.',
  );
}

function sendSignal(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error; // it exited meanwhile
  }
}

/** True while `pid` is a live (not zombie) clickhouse-server started with `configPath`. */
function isOurServer(pid: number, configPath: string): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (!existsSync('/proc/self/stat')) return true; // no procfs: trust the pid file
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const processState = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    // A server started by a test worker that has exited may wait unreaped as a zombie.
    if (processState === 'Z' || processState === 'X') return false;
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(`--config-file=${configPath}`);
  } catch {
    return false;
  }
}

async function waitUntilReady(
  url: string,
  timeoutMs: number,
  dir: string,
  alive: () => boolean,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError = 'no answer yet';
  for (;;) {
    if (!alive()) {
      throw new Error(`clickhouse-server exited before it was ready.\n${await logTails(dir)}`);
    }
    try {
      const { status, body } = await httpGet(`${url}/?query=SELECT%201`);
      if (status === 200 && body.trim() === '1') return;
      lastError = `HTTP ${status}: ${body.slice(0, 200)}`;
    } catch (error) {
      lastError = (error as Error).message;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `clickhouse-server at ${url} was not ready after ${timeoutMs} ms (${lastError}).\n${await logTails(dir)}`,
      );
    }
    await sleep(100);
  }
}

// A probe on a fresh connection that is closed afterwards: an idle keep-alive socket would make the
// server's graceful stop wait for it.
function httpGet(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = get(url, { agent: false, timeout: 2_000 }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
      response.on('error', reject);
    });
    request.on('timeout', () => request.destroy(new Error('timed out')));
    request.on('error', reject);
  });
}

async function logTails(dir: string): Promise<string> {
  const parts: string[] = [];
  for (const file of [ERR_LOG, STDERR_LOG]) {
    const text = await readFile(join(dir, file), 'utf8').catch(() => '');
    const tail = text.trimEnd().split('\n').slice(-30).join('\n');
    parts.push(`--- ${join(dir, file)} (last lines) ---\n${tail || '(empty)'}`);
  }
  return parts.join('\n');
}

function isPortOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Ports the kernel hands out for port 0, all held at once so they differ. */
export async function freePorts(count: number): Promise<number[]> {
  const servers = Array.from({ length: count }, () => createServer());
  try {
    return await Promise.all(
      servers.map(
        (server) =>
          new Promise<number>((resolve, reject) => {
            server.once('error', reject);
            server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
          }),
      ),
    );
  } finally {
    await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function xml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

// Minimal config for 18.16 (the root element is still <yandex>); also read by newer servers.
// No interserver port unless asked: a single server needs none, and a fixed one would collide between
// runs. `extra`: more elements (a cluster's, see clickhouse-cluster.ts).
function configXml(dir: string, httpPort: number, tcpPort: number, extra: string): string {
  const d = xml(dir);
  return `<?xml version="1.0"?>
<yandex>
  <logger>
    <level>warning</level>
    <log>${d}/log/clickhouse-server.log</log>
    <errorlog>${d}/log/clickhouse-server.err.log</errorlog>
    <console>0</console>
  </logger>
  <http_port>${httpPort}</http_port>
  <tcp_port>${tcpPort}</tcp_port>
  <listen_host>127.0.0.1</listen_host>
  <path>${d}/data/</path>
  <tmp_path>${d}/tmp/</tmp_path>
  <user_files_path>${d}/user_files/</user_files_path>
  <format_schema_path>${d}/format_schemas/</format_schema_path>
  <mark_cache_size>536870912</mark_cache_size>
  <max_concurrent_queries>100</max_concurrent_queries>
  <!-- As in Debian's packaged config. A graceful stop waits for idle keep-alive connections, and
       clients must drop idle sockets sooner (@clickhouse/client: idle_socket_ttl 2.5 s). -->
  <keep_alive_timeout>3</keep_alive_timeout>
  <users>
    <default>
      <password></password>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </default>
  </users>
  <profiles><default></default></profiles>
  <quotas><default></default></quotas>
${extra}</yandex>
`;
}

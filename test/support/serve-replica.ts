// A replica of the service as a real process (`billing-meter serve`), for the drills that stop or kill
// one (SIGSTOP, SIGKILL): its own data dir in the run's dir, a free port, the test admin key, silent
// logs; resolved once /readyz answers. `env` adds the drill's (ClickHouse, COORDINATION_URL, Stripe…).
// `port` and `dataDir` bring a replica back where it was (a replica that died with its spool).
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import { inject } from 'vitest';
import { freePorts, sleep } from './clickhouse-server.ts';
import { BIN, cleanEnv } from './cli.ts';
import { TEST_ADMIN_KEY } from './service.ts';

export interface ServeReplica {
  child: ChildProcess;
  url: string;
  /** POST to an admin endpoint with the admin key (JSON `body`, default `{}`). */
  admin(path: string, body?: string): Promise<Response>;
  /** POSTs request logs (native format) with an ingest key made through this replica, then flushes. */
  ingest(events: readonly object[]): Promise<void>;
  /** The scheduled evaluation now (POST /v1/admin/meters/evaluate); throws unless it answers 200. */
  evaluate(): Promise<void>;
}

export interface ServeReplicaOptions {
  port?: number;
  dataDir?: string;
  /** What answering means started: /readyz (default; ClickHouse reached) or /healthz (the process up). */
  ready?: '/readyz' | '/healthz';
}

export async function startServeReplica(
  env: Record<string, string>,
  options: ServeReplicaOptions = {},
): Promise<ServeReplica> {
  const port = options.port ?? (await freePorts(1))[0]!;
  const dataDir = options.dataDir ?? (await mkdtemp(join(inject('runDir'), 'replica-')));
  const child = spawn(process.execPath, [BIN, 'serve'], {
    env: cleanEnv({
      ADMIN_API_KEY: TEST_ADMIN_KEY,
      DATA_DIR: dataDir,
      PORT: String(port),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'silent',
      FLUSH_INTERVAL_MS: '50',
      ...env,
    }),
    stdio: 'ignore',
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  while (
    !(await fetch(`${url}${options.ready ?? '/readyz'}`).then(
      (r) => r.ok,
      () => false,
    ))
  ) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`replica not ready (exit ${child.exitCode})`);
    }
    await sleep(100);
  }
  const admin = (path: string, body = '{}') =>
    fetch(`${url}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TEST_ADMIN_KEY}`, 'content-type': 'application/json' },
      body,
    });
  let ingestKey: string | undefined;
  const ok = async (res: Response, what: string) => {
    if (!res.ok) throw new Error(`${what}: ${res.status} ${await res.text()}`);
  };
  return {
    child,
    url,
    admin,
    async ingest(events) {
      ingestKey ??= ((await (await admin('/v1/admin/keys', '{"name":"drill"}')).json()) as { key: string })
        .key;
      const res = await fetch(`${url}/v1/logs`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ingestKey}`, 'content-type': 'application/json' },
        body: JSON.stringify(events),
      });
      await ok(res, 'ingest');
      await ok(await admin('/v1/admin/flush'), 'flush');
    },
    evaluate: async () => ok(await admin('/v1/admin/meters/evaluate'), 'evaluate'),
  };
}

/** Ends the replicas a drill started that still run (paused ones are woken first, so they can die). */
export async function stopReplicas(children: readonly ChildProcess[]): Promise<void> {
  for (const c of children) {
    if (c.exitCode !== null || c.signalCode !== null) continue;
    c.kill('SIGCONT');
    c.kill('SIGKILL');
    await once(c, 'exit');
  }
}

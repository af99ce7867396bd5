// docker-compose.yml, read with the yaml package and a small zod schema of the parts we rely on (no
// Docker engine runs here): the service is built from the Dockerfile (nothing installed at `up`, no bind
// mount of the repository), runs under an init so SIGTERM drains, and its environment, filled from
// .env.example plus the admin key the README's one-liner generates, is a configuration the service accepts.
import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { z } from 'zod';
import { loadConfig } from '../../../src/config.ts';

const root = new URL('../../../', import.meta.url);
const text = (path: string) => readFileSync(new URL(path, root), 'utf8');

const duration = z.string().regex(/^\d+(ms|s|m)$/);
/** `name:/path`: a named volume, not a bind mount of a host path such as `.:/app`. */
const NAMED_VOLUME = /^[a-z0-9][a-z0-9_-]*:\/[^:]*$/;
const service = z
  .object({
    image: z.string().optional(),
    build: z
      .union([z.literal('.'), z.object({ context: z.literal('.'), dockerfile: z.literal('Dockerfile') })])
      .optional(),
    init: z.boolean().optional(),
    command: z.never().optional(),
    entrypoint: z.never().optional(),
    working_dir: z.never().optional(),
    env_file: z.array(z.object({ path: z.string(), required: z.boolean() })).optional(),
    environment: z.record(z.string(), z.string()).optional(),
    volumes: z.array(z.string()).optional(),
    ports: z.array(z.string()).optional(),
    ulimits: z.record(z.string(), z.unknown()).optional(),
    healthcheck: z
      .object({ test: z.array(z.string()), interval: duration, retries: z.number().int() })
      .optional(),
    depends_on: z
      .record(z.string(), z.object({ condition: z.enum(['service_started', 'service_healthy']) }))
      .optional(),
    stop_grace_period: duration.optional(),
    /** Services of the `cluster` profile only start with `--profile cluster`. */
    profiles: z.array(z.literal('cluster')).optional(),
    configs: z.array(z.object({ source: z.string(), target: z.string() })).optional(),
  })
  .strict();
const CLUSTER_SERVERS = ['ch-s1r1', 'ch-s1r2', 'ch-s2r1', 'ch-s2r2'] as const;
const SERVICE_REPLICAS = ['billing-meter-1', 'billing-meter-2'] as const;
const composeSchema = z
  .object({
    services: z
      .object({
        clickhouse: service,
        'billing-meter': service,
        keeper: service,
        ...Object.fromEntries([...CLUSTER_SERVERS, ...SERVICE_REPLICAS, 'proxy'].map((n) => [n, service])),
      })
      .strict(),
    configs: z.record(z.string(), z.object({ content: z.string() }).strict()),
    volumes: z.record(z.string(), z.null()),
  })
  .strict();

// Merge keys (`<<: *anchor`), as compose reads them.
const compose = composeSchema.parse(parse(text('docker-compose.yml'), { merge: true }));
const app = compose.services['billing-meter'];
const envExample = dotenv(text('.env.example'));

/** KEY=value lines; comments and blank lines skipped (all .env.example uses). */
function dotenv(source: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of source.split('\n')) {
    const match = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (match) env[match[1]!] = match[2]!;
  }
  return env;
}

const INTERPOLATION = /\$\{([A-Z_][A-Z0-9_]*)(?:(:-|:\?)([^}]*))?\}/g;

/** Compose's `${VAR}`, `${VAR:-default}` and `${VAR:?error}`, with an empty value as unset (the `:` forms). */
function interpolate(value: string, env: Record<string, string>): string {
  return value.replace(INTERPOLATION, (_all, name: string, operator: string | undefined, word: string) => {
    const set = env[name];
    if (set !== undefined && set !== '') return set;
    if (operator === ':?') throw new Error(`${name}: ${word}`);
    return operator === ':-' ? word : '';
  });
}

const ms = (d: string) => Number(/^\d+/.exec(d)![0]) * { ms: 1, s: 1000, m: 60_000 }[/[a-z]+$/.exec(d)![0]]!;

/** The shell block of the README's "With Docker" section. */
function readmeDockerLines(): string[] {
  const readme = text('README.md');
  const section = readme.slice(readme.indexOf('### With Docker'));
  const block = /```sh\n([\s\S]*?)```/.exec(section);
  if (!block) throw new Error('README: no sh block under "### With Docker"');
  return block[1]!.trim().split('\n');
}

describe('docker-compose.yml', () => {
  it('builds the service from the Dockerfile: nothing installed at up, no bind mount of the repository', () => {
    expect(app.build).toBe('.');
    expect(app.command).toBeUndefined();
    for (const volume of app.volumes ?? []) {
      expect(volume).toMatch(NAMED_VOLUME);
      expect(Object.keys(compose.volumes)).toContain(volume.split(':')[0]);
    }
  });

  it('runs the service under an init, with a grace period longer than its own shutdown timeout', () => {
    expect(app.init).toBe(true);
    const { shutdownTimeoutMs } = loadConfig({});
    expect(ms(app.stop_grace_period!)).toBeGreaterThan(shutdownTimeoutMs);
  });

  it('starts the service once ClickHouse answers, and points it there', () => {
    expect(app.depends_on).toEqual({ clickhouse: { condition: 'service_healthy' } });
    expect(compose.services.clickhouse.healthcheck?.test.join(' ')).toMatch(/8123\/ping/);
    expect(app.environment?.CLICKHOUSE_URL).toBe('http://clickhouse:8123');
  });

  it('refuses to start without an admin key, and names every variable it reads in .env.example', () => {
    expect(app.environment?.ADMIN_API_KEY).toMatch(/^\$\{ADMIN_API_KEY:\?.+\}$/);
    const raw = text('docker-compose.yml');
    const names = [...raw.matchAll(INTERPOLATION)].map((m) => m[1]!);
    expect(names.length).toBeGreaterThan(0);
    for (const name of names) expect(text('.env.example'), name).toMatch(new RegExp(`^#? ?${name}=`, 'm'));
    expect(() => interpolate(app.environment!.ADMIN_API_KEY!, envExample)).toThrow(/ADMIN_API_KEY/);
  });

  it('gives the service a configuration it accepts, from .env.example and a generated admin key', () => {
    const dotEnv = { ...envExample, ADMIN_API_KEY: 'a'.repeat(64) };
    // env_file first, then `environment` over it, as compose does.
    const env: Record<string, string> = { ...dotEnv };
    for (const [name, value] of Object.entries(app.environment!)) env[name] = interpolate(value, dotEnv);
    const config = loadConfig(env);
    expect(config.clickhouse).toMatchObject({ kind: 'server', url: 'http://clickhouse:8123' });
    expect(config.dataDir).toBe('/data');
    expect(app.volumes).toContain('billing-meter-data:/data');
    const [published] = app.ports!;
    expect(interpolate(published!, dotEnv)).toBe(`8080:${config.port}`);
    expect(app.env_file).toEqual([{ path: '.env', required: false }]);
  });
});

describe('docker-compose.yml, cluster profile', () => {
  const services = compose.services as Record<string, z.infer<typeof service>>;
  const config = (name: string) => compose.configs[name]!.content;
  const env = (name: string) => {
    const dotEnv = { ...envExample, ADMIN_API_KEY: 'a'.repeat(64) };
    const out: Record<string, string> = { ...dotEnv };
    for (const [k, v] of Object.entries(services[name]!.environment!)) out[k] = interpolate(v, dotEnv);
    return out;
  };

  it('keeps the default `up` as it was: only the cluster profile starts the cluster', () => {
    for (const name of ['keeper', ...CLUSTER_SERVERS, ...SERVICE_REPLICAS, 'proxy'])
      expect(services[name]!.profiles, name).toEqual(['cluster']);
    expect(services.clickhouse!.profiles).toBeUndefined();
    expect(services['billing-meter']!.profiles).toBeUndefined();
  });

  it('lays out 2 shards x 2 replicas, each server its own shard/replica macros, data volume and Keeper', () => {
    const xml = config('clickhouse-cluster');
    const shards = [...xml.matchAll(/<shard>([\s\S]*?)<\/shard>/g)].map((m) =>
      [...m[1]!.matchAll(/<host>([^<]+)<\/host>/g)].map((h) => h[1]),
    );
    expect(shards).toEqual([
      ['ch-s1r1', 'ch-s1r2'],
      ['ch-s2r1', 'ch-s2r2'],
    ]);
    expect(xml).toContain('<internal_replication>true</internal_replication>');
    expect(xml).toMatch(/<zookeeper><node><host>keeper<\/host><port>9181<\/port>/);
    expect(config('keeper')).toContain('<tcp_port>9181</tcp_port>');
    const seen = new Set<string>();
    for (const name of CLUSTER_SERVERS) {
      const s = services[name]!;
      const [, shard, replica] = /^ch-s(\d)(r\d)$/.exec(name)!;
      expect(s.environment).toMatchObject({ SHARD: shard, REPLICA: replica, REPLICA_HOST: name });
      expect(s.configs).toEqual([
        { source: 'clickhouse-cluster', target: '/etc/clickhouse-server/config.d/cluster.xml' },
      ]);
      for (const v of s.volumes!) {
        expect(v).toMatch(NAMED_VOLUME);
        expect(seen.has(v)).toBe(false);
        seen.add(v);
      }
    }
  });

  it('runs two service replicas the service accepts: on the cluster, under the lease, each its own spool', () => {
    const dirs = new Set<string>();
    for (const name of SERVICE_REPLICAS) {
      const c = loadConfig(env(name));
      expect(c.clickhouse).toMatchObject({ kind: 'server', cluster: 'billing' });
      expect(c.coordination).toEqual({
        hosts: 'keeper:9181',
        root: '/billing-meter',
        sessionTimeoutMs: 10_000,
      });
      expect(services[name]!.build).toBe('.');
      expect(services[name]!.init).toBe(true);
      const [volume] = services[name]!.volumes!;
      expect(volume).toMatch(NAMED_VOLUME);
      dirs.add(volume!.split(':')[0]!);
    }
    expect(dirs.size).toBe(2);
    expect(Object.keys(compose.volumes)).toEqual(expect.arrayContaining([...dirs]));
  });

  it('puts the proxy in front of both replicas, the one published port of the profile', () => {
    const nginx = config('proxy');
    expect([...nginx.matchAll(/server (billing-meter-\d):8080;/g)].map((m) => m[1])).toEqual([
      ...SERVICE_REPLICAS,
    ]);
    expect(services.proxy!.ports).toEqual(['8081:8080']);
    for (const name of SERVICE_REPLICAS) expect(services[name]!.ports).toBeUndefined();
    // `$$` is compose's escape of `$`: nginx sees its own variables.
    expect(nginx).toContain('$$proxy_add_x_forwarded_for');
  });
});

describe("the README's Docker lines", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'bm-compose-'));
    await copyFile(new URL('.env.example', root), join(dir, '.env.example'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('are the ones docker-compose.yml gives', () => {
    const header = text('docker-compose.yml')
      .split('\n')
      .filter((line) => line.startsWith('#   '))
      .map((line) => line.slice(4));
    expect(header).toEqual(readmeDockerLines());
  });

  it('keep the generated admin key in .env, and never replace it', async () => {
    const lines = readmeDockerLines();
    expect(lines.at(-1)).toBe('docker compose up --build');
    const setup = lines.slice(0, -1).join('\n');
    await promisify(execFile)('bash', ['-euc', setup], { cwd: dir });
    const first = dotenv(await readFile(join(dir, '.env'), 'utf8'));
    expect(first.ADMIN_API_KEY).toMatch(/^[0-9a-f]{64}$/);
    expect(interpolate(app.environment!.ADMIN_API_KEY!, first)).toBe(first.ADMIN_API_KEY);

    await promisify(execFile)('bash', ['-euc', setup], { cwd: dir });
    expect(dotenv(await readFile(join(dir, '.env'), 'utf8'))).toEqual(first);
  });
});

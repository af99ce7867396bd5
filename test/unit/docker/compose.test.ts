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
  })
  .strict();
const composeSchema = z
  .object({
    services: z.object({ clickhouse: service, 'billing-meter': service }).strict(),
    volumes: z.record(z.string(), z.null()),
  })
  .strict();

const compose = composeSchema.parse(parse(text('docker-compose.yml')));
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

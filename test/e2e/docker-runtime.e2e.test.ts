// The Docker image's runtime, performed without Docker (no engine runs here): the Dockerfile is read, and
// its stages are carried out in temp dirs that stand for each stage's /app. The deps stage runs its own
// `npm ci` (production only, no optional packages, no scripts); the build stage runs its own
// `npm run build`, on the repository's node_modules instead of its `npm ci` of every dependency; the
// runtime stage's COPY lines assemble the image's /app, the dashboard that vite built there included.
// Then its CMD and its HEALTHCHECK command run as they are, against a real ClickHouse server: the
// compiled service on plain node, no tsx, no chdb, serving /ui.
// What this cannot show: the image's Node 26 (this is Node 20), its Debian, its user, Docker itself.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { cp, mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestClient, serverUrl, type TestClient } from '../support/clickhouse.ts';
import {
  execForm,
  instructionsOf,
  parseCopy,
  parseEnv,
  parseHealthcheck,
  readDockerfile,
  type Stage,
} from '../support/dockerfile.ts';
import { pinnedClockEnv } from '../support/cli.ts';
import { TEST_ADMIN_KEY } from '../support/service.ts';
import { closedPort, waitFor } from './support.ts';

const run = promisify(execFile);
const repo = fileURLToPath(new URL('../../', import.meta.url));
const dockerfile = readDockerfile(join(repo, 'Dockerfile'));
const stageNamed = (name: string): Stage => dockerfile.stages.find((s) => s.name === name)!;
const runtimeStage = dockerfile.stages.at(-1)!;

/** What .dockerignore leaves out of the allowed folders (its lines after the `!` ones). */
const ignored = [
  /(^|\/)node_modules(\/|$)/,
  /^ingest\/dist(\/|$)/,
  /^ingest\/samples(\/|$)/,
  /^web\/dist(\/|$)/,
  /^web\/screenshots(\/|$)/,
];
const inContext = (path: string) => !ignored.some((pattern) => pattern.test(path));

let base: string;
/** Stage name → the directory that stands for its /app. */
const app: Record<string, string> = {};
let dataDir: string;
let ch: TestClient;

/** Carries out a stage's WORKDIR, COPY and RUN lines in its directory; `runOverride` may replace a RUN. */
async function perform(stage: Stage, runOverride: (command: string) => string | null): Promise<void> {
  const dir = join(base, stage.name!);
  app[stage.name!] = dir;
  await mkdir(dir, { recursive: true });
  for (const instruction of stage.instructions) {
    if (instruction.keyword === 'WORKDIR') expect(instruction.args).toBe('/app');
    if (instruction.keyword === 'COPY') {
      const copy = parseCopy(instruction.args);
      for (const source of copy.sources) {
        const from = copy.from ? join(app[copy.from]!, relative('/app', source)) : join(repo, source);
        const to = copy.destination.endsWith('/')
          ? join(dir, copy.destination, source)
          : join(dir, copy.destination);
        await cp(from, to, {
          recursive: true,
          filter: (path) => copy.from !== undefined || inContext(relative(repo, path)),
        });
      }
    }
    if (instruction.keyword === 'RUN') {
      const command = runOverride(instruction.args);
      if (command !== null) await run('bash', ['-euc', command], { cwd: dir, maxBuffer: 16 * 1024 * 1024 });
    }
  }
}

/** The runtime stage's environment, with the image's absolute paths mapped into the temp dirs. */
function imageEnv(extra: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = Object.assign(
    {},
    ...instructionsOf(runtimeStage, 'ENV').map((i) => parseEnv(i.args)),
  );
  const mapped = Object.fromEntries(
    Object.entries(env).map(([name, value]) => [
      name,
      value.replace(/^\/app(?=\/|$)/, app.runtime!).replace(/^\/data(?=\/|$)/, dataDir),
    ]),
  );
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: base, ...pinnedClockEnv(), ...mapped, ...extra };
}

const cmd = execForm(instructionsOf(runtimeStage, 'CMD').at(-1)!.args)!;
const healthcheck = execForm(parseHealthcheck(instructionsOf(runtimeStage, 'HEALTHCHECK')[0]!.args).command)!;

/** Runs the image's HEALTHCHECK command; its exit code. */
async function healthy(env: Record<string, string>): Promise<number> {
  const [program, ...args] = healthcheck;
  expect(program).toBe('node');
  const inImage = args.map((arg) => arg.replace(/^\/app(?=\/)/, app.runtime!));
  return run(process.execPath, inImage, { cwd: base, env }).then(
    () => 0,
    (err: { code?: number }) => err.code ?? -1,
  );
}

function start(env: Record<string, string>): { child: ChildProcess; stderr: () => string } {
  const [program, ...args] = cmd;
  expect(program).toBe('node');
  const child = spawn(process.execPath, args, { cwd: app.runtime, env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return { child, stderr: () => stderr };
}

beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'bm-image-'));
  dataDir = join(base, 'data');
  await mkdir(dataDir);
  // deps: its npm ci as written, from the local cache when it can (the registry is only asked for a miss).
  await perform(stageNamed('deps'), (command) => {
    expect(command).toMatch(/^npm ci /);
    return `${command} --prefer-offline`;
  });
  // build: the repository's node_modules stand in for its npm ci (all but the optional packages).
  await perform(stageNamed('build'), (command) => {
    if (!/^npm ci /.test(command)) return command;
    return `ln -s ${JSON.stringify(join(repo, 'node_modules'))} node_modules`;
  });
  // runtime: /data is a temp dir here, owned by whoever runs the test.
  await perform(runtimeStage, (command) => {
    expect(command).toBe('mkdir -p /data && chown node:node /data');
    return null;
  });
  ch = await createTestClient('server', 'image');
}, 300_000);

afterAll(async () => {
  await ch?.dropDatabase();
  if (base) await rm(base, { recursive: true, force: true });
});

describe("the image's runtime, run from its layout on plain node", () => {
  it("holds the compiled service and production packages, without chdb's library, esbuild's binary or sources", async () => {
    const root = app.runtime!;
    expect(existsSync(join(root, 'dist/src/cli/index.js'))).toBe(true);
    expect(existsSync(join(root, 'dist/src/collector/body-to-rows-worker.js'))).toBe(true);
    expect(existsSync(join(root, 'src'))).toBe(false);
    // The dashboard as the build stage's vite made it (not a local build: .dockerignore leaves web/dist
    // out), without its sources.
    expect(existsSync(join(root, 'web/dist/index.html'))).toBe(true);
    expect((await readdir(join(root, 'web/dist/assets'))).some((f) => f.endsWith('.js'))).toBe(true);
    expect(existsSync(join(root, 'web/src'))).toBe(false);
    expect(existsSync(join(root, 'meters'))).toBe(true);
    const modules = await readdir(join(root, 'node_modules'));
    expect(modules).toEqual(expect.arrayContaining(['koa', '@clickhouse', 'stripe', 'chdb']));
    expect(modules).not.toContain('@chdb');
    expect(modules).not.toContain('@esbuild');
    for (const dev of ['typescript', 'vitest', 'eslint', 'express']) expect(modules).not.toContain(dev);
  });

  it('runs the CLI from dist/ (keys create), serves, passes its healthcheck, ingests through a worker, drains on SIGTERM', async () => {
    const port = await closedPort();
    const env = imageEnv({
      PORT: String(port),
      CLICKHOUSE_URL: serverUrl(),
      CLICKHOUSE_DATABASE: ch.database,
      ADMIN_API_KEY: TEST_ADMIN_KEY,
      LOG_LEVEL: 'warn',
      FLUSH_INTERVAL_MS: '50',
      // One worker thread, so that a large body is prepared by the compiled worker entry.
      INGEST_WORKERS: '1',
    });
    expect(env.METERS_DIR).toBe(join(app.runtime!, 'meters'));

    // As the README's `docker compose exec billing-meter node bin/billing-meter.js keys create`.
    const created = await run(
      process.execPath,
      ['bin/billing-meter.js', 'keys', 'create', '--name', 'image'],
      {
        cwd: app.runtime,
        env,
      },
    );
    const key = created.stdout.trim().split('\n').at(-1)!;
    expect(key).toMatch(/^bmk_/);

    expect(await healthy(env)).toBe(1); // nothing listens yet
    const service = start(env);
    try {
      const up = await waitFor(
        () => healthy(env),
        (code) => code === 0 || service.child.exitCode !== null,
        { timeoutMs: 60_000, intervalMs: 200 },
      );
      expect(up, service.stderr()).toBe(0);

      // /ui serves the built dashboard: a page's URL answers index.html, whose script is served too.
      const page = await fetch(`http://127.0.0.1:${port}/ui/explorer`);
      const html = await page.text();
      expect(page.status, html).toBe(200);
      expect(page.headers.get('content-type')).toMatch(/^text\/html/);
      const script = /<script[^>]+src="(\/ui\/assets\/[^"]+\.js)"/.exec(html)?.[1];
      expect(script, html).toBeDefined();
      const asset = await fetch(`http://127.0.0.1:${port}${script}`);
      expect(asset.status).toBe(200);
      expect(asset.headers.get('content-type')).toMatch(/^text\/javascript/);
      expect((await asset.text()).length).toBeGreaterThan(1000);

      const now = Date.now();
      const records = Array.from({ length: 600 }, (_, i) => ({
        id: `image-${i}`,
        timestamp: new Date(now - i * 1000).toISOString(),
        company_id: 'co_image',
        method: 'POST',
        path: '/RetrieveCreditScore',
        status: 200,
        metadata: { note: 'x'.repeat(100) },
      }));
      const body = records.map((r) => JSON.stringify(r)).join('\n');
      expect(body.length).toBeGreaterThan(64 * 1024); // prepared off the event loop, by the worker
      const answer = await fetch(`http://127.0.0.1:${port}/v1/logs`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/x-ndjson' },
        body,
      });
      expect(answer.status, await answer.clone().text()).toBe(202);
      expect(await answer.json()).toMatchObject({ accepted: 600 });

      const count = async () => {
        const result = await ch.client.query({
          query: `SELECT count() AS n FROM ${ch.database}.request_logs WHERE company_id = 'co_image'`,
          format: 'JSONEachRow',
        });
        return Number(((await result.json()) as { n: string | number }[])[0]!.n);
      };
      expect(await waitFor(count, (n) => n >= 600)).toBe(600);

      const exited = once(service.child, 'exit');
      const stopping = Date.now();
      service.child.kill('SIGTERM');
      expect(await exited, service.stderr()).toEqual([0, null]);
      expect(Date.now() - stopping).toBeLessThan(10_000);
      expect(await healthy(env)).toBe(1);
    } finally {
      if (service.child.exitCode === null) service.child.kill('SIGKILL');
    }
  });

  it('says, without CLICKHOUSE_URL, that the image has no embedded engine', async () => {
    const env = imageEnv({ PORT: String(await closedPort()), ADMIN_API_KEY: TEST_ADMIN_KEY });
    const service = start(env);
    const [code] = await once(service.child, 'exit');
    expect(code).not.toBe(0);
    expect(service.stderr()).toContain(
      'CLICKHOUSE_URL is not set and the embedded engine (chdb) is not installed here. ' +
        'Set CLICKHOUSE_URL to a ClickHouse server',
    );
  });
});

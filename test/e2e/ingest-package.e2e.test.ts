// ingest/ as API owners get it: `npm pack` of its package.json, the tarball installed (offline; it has no
// dependencies) into scratch apps in a temp dir outside the repository, a real Express and a real Koa app
// run there by plain node, and their calls arriving in a real collector. Also type-checks a consumer
// against the installed .d.ts files, so "types" in package.json is known to work.
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { copyFile, mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestService, type TestService } from '../support/service.ts';
import { metaOf, waitForRows } from './support.ts';

const run = promisify(execFile);
const repo = fileURLToPath(new URL('../../', import.meta.url));
const fixtures = fileURLToPath(new URL('./fixtures/ingest-package/', import.meta.url));
// npm must neither ask the registry nor print update notices: the test stays hermetic.
const npmEnv = { ...process.env, npm_config_update_notifier: 'false', npm_config_fund: 'false' };

/** The frameworks (and the type packages the typed consumer needs), taken from the repo's node_modules. */
const LINKED = ['express', 'koa', '@types/node', '@types/express', '@types/koa'];

let scratch: string;
let tarball: string;
let svc: TestService;

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'bm-ingest-package-'));
  const packed = await run('npm', ['pack', '--json', '--pack-destination', scratch], {
    cwd: join(repo, 'ingest'),
    env: npmEnv,
  });
  const [info] = JSON.parse(packed.stdout) as [{ filename: string; files: { path: string }[] }];
  tarball = join(scratch, info.filename);
  await writeFile(
    join(scratch, 'package.json'),
    JSON.stringify({ name: 'scratch-api', private: true, type: 'module' }),
  );
  await run('npm', ['install', '--offline', '--no-audit', tarball], { cwd: scratch, env: npmEnv });
  // After the install, which would prune packages its package.json does not name.
  for (const name of LINKED) {
    await mkdir(join(scratch, 'node_modules', name, '..'), { recursive: true });
    await symlink(join(repo, 'node_modules', name), join(scratch, 'node_modules', name), 'dir');
  }
  for (const file of await readdir(fixtures)) await copyFile(join(fixtures, file), join(scratch, file));
  svc = await startTestService('server'); // the package does not care which engine the collector runs on
});

afterAll(async () => {
  await svc?.stop();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

describe('the packed ingest package', () => {
  it('holds the built JavaScript, its declarations and the license, and no sources or samples', async () => {
    const listing = await run('tar', ['-tzf', tarball]);
    const files = listing.stdout.trim().split('\n').sort();
    expect(files).toContain('package/package.json');
    expect(files).toContain('package/LICENSE');
    expect(files).toContain('package/README.md');
    expect(files).toContain('package/dist/index.js');
    expect(files).toContain('package/dist/index.d.ts');
    expect(files).toContain('package/dist/header-policy.js');
    for (const file of files)
      expect(file).toMatch(/^package\/(package\.json|LICENSE|README\.md|dist\/[a-z-]+\.(js|d\.ts))$/);
  });

  it('type-checks a consumer against the installed declarations, with real Express and Koa types', async () => {
    await writeFile(
      join(scratch, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          module: 'nodenext',
          moduleResolution: 'nodenext',
          target: 'es2022',
          strict: true,
          noEmit: true,
          // As most consumers compile (and 6 s faster). Were the package's declarations unresolvable,
          // its types would be \`any\` and the consumer's @ts-expect-error would fail the check.
          skipLibCheck: true,
          types: ['node'],
        },
        files: ['typed-consumer.ts'],
      }),
    );
    const tsc = join(repo, 'node_modules', 'typescript', 'bin', 'tsc');
    const result = await run(process.execPath, [tsc, '-p', scratch]).catch((err: { stdout: string }) => err);
    expect(result.stdout).toBe('');
  });

  it.each(['express', 'koa'])(
    'forwards every call of a %s app run by plain node to the collector',
    async (framework) => {
      const company = `${framework}-${Date.now()}`;
      const app = spawn(process.execPath, [`${framework}-app.mjs`], {
        cwd: scratch,
        env: { ...process.env, COLLECTOR_URL: svc.url, INGEST_KEY: svc.ingestKey },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      const lines = createInterface({ input: app.stdout! })[Symbol.asyncIterator]();
      const { port } = JSON.parse((await lines.next()).value as string) as { port: number };
      const base = `http://127.0.0.1:${port}`;
      const headers = { 'x-company-id': company, 'content-type': 'application/json' };
      const answers = [
        await fetch(`${base}/RetrieveCreditScore`, { headers }),
        await fetch(`${base}/RetrieveCreditScore?ssn=redacted`, { headers }),
        await fetch(`${base}/RetrieveCreditScore`, { method: 'POST', headers, body: '{"ssn":"x"}' }),
        await fetch(`${base}/nothing-here`, { headers }),
      ];
      expect(answers.map((a) => a.status)).toEqual([200, 200, 201, 404]);

      const exited = once(app, 'exit');
      app.kill('SIGTERM');
      const stats = JSON.parse((await lines.next()).value as string) as Record<string, number>;
      expect(await exited).toEqual([0, null]);
      expect(stats).toMatchObject({ sent: 4, rejected: 0, dropped: 0, failed: 0 });

      const rows = await waitForRows(svc, (row) => row.company_id === company, 4);
      expect(rows.map((r) => `${r.method} ${r.route} ${r.status}`).sort()).toEqual([
        'GET /RetrieveCreditScore 200',
        'GET /RetrieveCreditScore 200',
        'GET /nothing-here 404',
        'POST /RetrieveCreditScore 201',
      ]);
      for (const row of rows) {
        expect(row.app).toBe(svc.keyId);
        expect(row.customer_key).toBe(company);
        expect(metaOf(row)['metadata.framework']).toBe(framework);
      }
    },
  );
});

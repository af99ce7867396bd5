// No Docker engine runs here, so the Dockerfile is read by a parser and held to what the image must be:
// multi-stage, current Node LTS slim, production dependencies without the embedded engine, the compiled
// JavaScript, a non-root user, a HEALTHCHECK on /healthz, and an exec-form CMD so node gets SIGTERM.
// test/e2e/docker-runtime.e2e.test.ts then runs the runtime stage's layout for real, on this machine's Node.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  execForm,
  instructionsOf,
  parseCopy,
  parseDockerfile,
  parseEnv,
  parseHealthcheck,
  readDockerfile,
  type Stage,
} from '../../support/dockerfile.ts';

const root = new URL('../../../', import.meta.url);
const dockerfile = readDockerfile(new URL('Dockerfile', root));
const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as {
  scripts: Record<string, string>;
};
const lock = JSON.parse(readFileSync(new URL('package-lock.json', root), 'utf8')) as {
  packages: Record<string, { optional?: boolean; dev?: boolean }>;
};

const stage = (name: string): Stage => {
  const found = dockerfile.stages.find((s) => s.name === name);
  if (!found) throw new Error(`no stage ${name}`);
  return found;
};
const runtime = dockerfile.stages.at(-1)!;
const npmCi = (s: Stage) => instructionsOf(s, 'RUN').filter((i) => /\bnpm ci\b/.test(i.args));

describe('the Dockerfile', () => {
  it('builds in stages, the last of which is the runtime', () => {
    expect(dockerfile.stages.map((s) => s.name)).toEqual(['build', 'deps', 'runtime']);
    expect(runtime.name).toBe('runtime');
  });

  it('is based on the current Node LTS line, slim, in every stage', () => {
    // Node 26 has been the Active LTS since 2026-10-27 (24 is in maintenance, 20 past its end of life).
    for (const s of dockerfile.stages) expect(s.image).toBe('node:26-trixie-slim');
  });

  it('installs the production dependencies only, without the optional ones, for the runtime', () => {
    const [install, ...more] = npmCi(stage('deps'));
    expect(more).toEqual([]);
    expect(install!.args).toMatch(/--omit=dev\b/);
    expect(install!.args).toMatch(/--omit=optional\b/);
    expect(install!.args).toMatch(/--ignore-scripts\b/);
  });

  it("keeps the optional packages, where chdb keeps its 543 MB native library, out of the image's node_modules", () => {
    for (const run of npmCi(stage('deps'))) expect(run.args).toMatch(/--omit=optional\b/);
    const chdbLibraries = Object.entries(lock.packages).filter(([path]) =>
      path.startsWith('node_modules/@chdb/lib-'),
    );
    expect(chdbLibraries.length).toBeGreaterThan(0);
    for (const [path, entry] of chdbLibraries) expect(entry.optional, path).toBe(true);
    // chdb itself, small, stays: the service imports it only for the embedded engine.
    expect(lock.packages['node_modules/chdb']?.optional).toBeUndefined();
    // The runtime's node_modules come from the deps stage alone.
    const modules = instructionsOf(runtime, 'COPY')
      .map((i) => parseCopy(i.args))
      .filter((c) => c.sources.some((source) => /node_modules/.test(source)));
    expect(modules.map((c) => c.from)).toEqual(['deps']);
  });

  it('installs the optional packages in the build stage: vite bundles with native ones', () => {
    // Vite's bundler and CSS minifier are per-platform optional packages; without them no web/dist.
    const native = Object.entries(lock.packages).filter(([path]) =>
      /^node_modules\/(@rolldown\/binding-|lightningcss-linux-)/.test(path),
    );
    expect(native.length).toBeGreaterThan(0);
    for (const [path, entry] of native) expect(entry.optional, path).toBe(true);
    const [install, ...more] = npmCi(stage('build'));
    expect(more).toEqual([]);
    expect(install!.args).not.toMatch(/--omit=optional\b/);
    expect(install!.args).not.toMatch(/--omit=dev\b/);
    const fromContext = instructionsOf(stage('build'), 'COPY')
      .map((i) => parseCopy(i.args))
      .flatMap((c) => c.sources);
    expect(fromContext).toContain('web');
  });

  it('compiles dist/ and web/dist in the build stage and gives the runtime those, not the sources', () => {
    expect(instructionsOf(stage('build'), 'RUN').map((i) => i.args)).toContain('npm run build');
    const copies = instructionsOf(runtime, 'COPY').map((i) => parseCopy(i.args));
    expect(copies).toContainEqual({
      from: 'build',
      sources: ['/app/dist'],
      destination: './dist',
      chown: undefined,
    });
    // The dashboard, where the compiled service serves /ui from (src/http/web/static-ui.ts).
    expect(copies).toContainEqual({
      from: 'build',
      sources: ['/app/web/dist'],
      destination: './web/dist',
      chown: undefined,
    });
    expect(copies).toContainEqual({
      from: 'deps',
      sources: ['/app/node_modules'],
      destination: './node_modules',
      chown: undefined,
    });
    const fromContext = copies.filter((c) => c.from === undefined).flatMap((c) => c.sources);
    expect(fromContext).not.toContain('src');
    expect(fromContext).toEqual(expect.arrayContaining(['package.json', 'bin', 'meters']));
  });

  it('runs as a non-root user, set before the command', () => {
    const users = instructionsOf(runtime, 'USER');
    expect(users.length).toBeGreaterThan(0);
    const user = users.at(-1)!;
    expect(user.args).not.toMatch(/^(root|0)(:|$)/);
    expect(user.args).toBe('node');
    const cmd = instructionsOf(runtime, 'CMD').at(-1)!;
    expect(user.line).toBeLessThan(cmd.line);
  });

  it('checks its health on /healthz, in exec form', () => {
    const [healthcheck, ...more] = instructionsOf(runtime, 'HEALTHCHECK');
    expect(more).toEqual([]);
    const { options, command } = parseHealthcheck(healthcheck!.args);
    // An absolute path, so that the check does not depend on the directory Docker runs it from.
    expect(execForm(command)).toEqual(['node', '/app/bin/healthcheck.js']);
    expect(readFileSync(new URL('bin/healthcheck.js', root), 'utf8')).toMatch(/\/healthz/);
    expect(Object.keys(options).sort()).toEqual(['interval', 'retries', 'start-period', 'timeout']);
  });

  it('starts node itself (exec form, no shell, no npm) with the flags of npm start', () => {
    expect(instructionsOf(runtime, 'ENTRYPOINT')).toEqual([]);
    const cmd = execForm(instructionsOf(runtime, 'CMD').at(-1)!.args);
    expect(cmd).toBeDefined();
    expect(cmd![0]).toBe('node');
    expect(cmd!.slice(-2)).toEqual(['bin/billing-meter.js', 'serve']);
    // The V8 flags measured for ingest (README, Benchmarks) are the same as `npm start`'s.
    expect(['node', ...cmd!.slice(1)].join(' ')).toBe(pkg.scripts.start);
  });

  it('listens where the environment and the healthcheck say', () => {
    const env = Object.assign({}, ...instructionsOf(runtime, 'ENV').map((i) => parseEnv(i.args)));
    expect(env).toMatchObject({ PORT: '8080', DATA_DIR: '/data', NODE_ENV: 'production' });
    expect(instructionsOf(runtime, 'EXPOSE').map((i) => i.args)).toEqual([env.PORT]);
    // The named volume on /data starts with the image's owner of /data: the user must own it.
    expect(instructionsOf(runtime, 'RUN').map((i) => i.args)).toContain(
      'mkdir -p /data && chown node:node /data',
    );
  });

  it('sends the build only what it copies (.dockerignore is an allow list that leaves out node_modules, .env, data)', () => {
    const ignore = readFileSync(new URL('.dockerignore', root), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('#'));
    expect(ignore[0]).toBe('*');
    const allowed = new Set(
      ignore.filter((l) => l.startsWith('!')).map((l) => l.slice(1).replace(/\/$/, '')),
    );
    const copied = dockerfile.stages
      .flatMap((s) => instructionsOf(s, 'COPY'))
      .map((i) => parseCopy(i.args))
      .filter((c) => c.from === undefined)
      .flatMap((c) => c.sources);
    for (const source of copied) expect(allowed, source).toContain(source);
    for (const never of ['node_modules', '.env', 'data', '.git', 'dist', 'web/dist'])
      expect(allowed).not.toContain(never);
    expect(ignore).toContain('**/node_modules');
    // A local build of the dashboard is not sent: the image builds its own.
    expect(ignore).toContain('web/dist');
  });
});

describe('the Dockerfile reader', () => {
  it('joins continuation lines, drops comments, and keeps the syntax directive', () => {
    const parsed = parseDockerfile(
      '# syntax=docker/dockerfile:1\n# about\nFROM node:26-trixie-slim AS a\nRUN one \\\n  # note\n  && two\nCMD ["node"]\n',
    );
    expect(parsed.directives).toEqual({ syntax: 'docker/dockerfile:1' });
    expect(parsed.stages).toEqual([
      {
        image: 'node:26-trixie-slim',
        name: 'a',
        instructions: [
          { keyword: 'RUN', args: 'one && two', line: 4 },
          { keyword: 'CMD', args: '["node"]', line: 7 },
        ],
      },
    ]);
  });

  it('tells the shell form from the exec form', () => {
    expect(execForm('["node", "x.js"]')).toEqual(['node', 'x.js']);
    expect(execForm('node x.js')).toBeUndefined();
    expect(execForm('sh -c "npm ci && node x.js"')).toBeUndefined();
  });

  it('refuses what it cannot read instead of guessing', () => {
    expect(() => parseDockerfile('RUN true\n')).toThrow(/before any FROM/);
    expect(() => parseDockerfile('FROM x\nRUN <<EOF\ntrue\nEOF\n')).toThrow(/heredocs/);
    expect(() => parseDockerfile('# escape=`\nFROM x\n')).toThrow(/escape/);
    expect(() => parseEnv('PORT 8080')).toThrow(/KEY=value/);
  });
});

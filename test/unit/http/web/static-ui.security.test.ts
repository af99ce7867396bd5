import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Koa from 'koa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { staticUi } from '../../../../src/http/web/static-ui.ts';

describe('the /ui files', () => {
  let dir: string;
  let server: http.Server;
  let url: string;
  beforeAll(async () => {
    const root = await mkdtemp(join(tmpdir(), 'bm-ui-'));
    dir = join(root, 'dist');
    await mkdir(join(dir, 'assets'), { recursive: true });
    await writeFile(join(dir, 'index.html'), '<!doctype html><p>index');
    await writeFile(join(dir, 'assets', 'app.js'), 'console.log(1)');
    await writeFile(join(root, 'secret.txt'), 'outside');
    const app = new Koa();
    app.use(staticUi(dir));
    server = http.createServer(app.callback()).listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.close();
    await rm(join(dir, '..'), { recursive: true, force: true });
  });

  it('serves a built file, and index.html for a page path, under a strict CSP', async () => {
    const js = await fetch(`${url}/ui/assets/app.js`);
    expect(js.headers.get('content-type')).toContain('text/javascript');
    expect(await js.text()).toBe('console.log(1)');
    const page = await fetch(`${url}/ui/explorer?route=/x`);
    expect(await page.text()).toContain('index');
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(page.headers.get('referrer-policy')).toBe('no-referrer');
  });

  it('serves nothing outside its folder, whatever the escapes', async () => {
    for (const path of [
      '/ui/%2e%2e/secret.txt',
      '/ui/..%2fsecret.txt',
      '/ui/%2e%2e%2f%2e%2e%2fsecret.txt',
      '/ui/%E0%A4%A',
    ]) {
      const res = await fetch(`${url}${path}`);
      expect(await res.text(), path).not.toContain('outside');
    }
  });

  it('says how to build when there is no build', async () => {
    const app = new Koa();
    app.use(staticUi(join(dir, 'missing')));
    const s = http.createServer(app.callback()).listen(0, '127.0.0.1');
    await new Promise((r) => s.once('listening', r));
    const res = await fetch(`http://127.0.0.1:${(s.address() as AddressInfo).port}/ui`);
    s.close();
    expect(res.status).toBe(503);
    expect(await res.text()).toContain('npm run build');
  });
});

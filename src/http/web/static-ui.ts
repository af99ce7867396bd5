import { readFile, stat } from 'node:fs/promises';
import { extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Context, Next } from 'koa';

/**
 * The dashboard's built files: web/dist of this package, made by `npm run build` (vite), seen from
 * src/http/web/ (tsx) or from dist/src/http/web/ (the compiled service).
 */
const HERE = import.meta.url;
export const DEFAULT_UI_DIR = fileURLToPath(
  new URL(HERE.includes('/dist/src/') ? '../../../../web/dist' : '../../../web/dist', HERE),
);

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
};

// The pages talk to this server only; uPlot writes style attributes, hence style-src 'unsafe-inline'.
const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
  "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/**
 * Serves /ui: a file of the build when the path names one, else index.html (the pages route on the
 * client, so /ui/explorer?route=… reloads into the same page). Nothing outside the folder is served.
 */
export function staticUi(dir: string = DEFAULT_UI_DIR) {
  const root = normalize(dir);
  return async function ui(ctx: Context, next: Next): Promise<void> {
    if (ctx.path !== '/ui' && !ctx.path.startsWith('/ui/')) return next();
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') return next();
    let relative: string;
    try {
      relative = decodeURIComponent(ctx.path.slice('/ui'.length)).replace(/^\/+/, '');
    } catch {
      relative = ''; // a malformed escape names no file: the page answers
    }
    const candidate = normalize(join(root, relative));
    const inside = candidate.startsWith(root + sep);
    const file =
      inside && extname(candidate) !== '' && (await isFile(candidate)) ? candidate : join(root, 'index.html');
    let body: Buffer;
    try {
      body = await readFile(file);
    } catch {
      ctx.status = 503;
      ctx.type = 'text/plain; charset=utf-8';
      ctx.body = 'The dashboard is not built: run `npm run build` (or `npm run build:web`) and reload.';
      return;
    }
    ctx.set('content-security-policy', CSP);
    ctx.set('x-content-type-options', 'nosniff');
    ctx.set('referrer-policy', 'no-referrer');
    // Hashed asset names never change content; index.html must be read fresh after a deploy.
    ctx.set(
      'cache-control',
      file.includes(`${sep}assets${sep}`) ? 'public, max-age=31536000, immutable' : 'no-cache',
    );
    ctx.type = TYPES[extname(file)] ?? 'application/octet-stream';
    ctx.body = body;
  };
}

async function isFile(path: string): Promise<boolean> {
  return stat(path).then(
    (s) => s.isFile(),
    () => false,
  );
}

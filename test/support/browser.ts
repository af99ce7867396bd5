// Headless Chromium for the dashboard's tests: Debian's `chromium` (installed by .ci/run), driven by
// playwright-core, which downloads nothing. The dashboard is built once per test process into web/dist,
// where the service serves it from. Screenshots go to .tmp/screenshots (git-ignored).
import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const SCREENSHOT_DIR = fileURLToPath(new URL('../../.tmp/screenshots/', import.meta.url));
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

const LAUNCH_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

let built: Promise<void> | undefined;

/** `vite build` of web/ (what `npm run build` does), once per process. */
export function buildDashboard(): Promise<void> {
  built ??= (async () => {
    const { build } = await import('vite');
    await build({ configFile: `${ROOT}web/vite.config.ts`, logLevel: 'error' });
  })();
  return built;
}

export async function launchBrowser(): Promise<Browser> {
  // headless: false, because --headless is among the flags already (the new headless mode).
  return chromium.launch({ executablePath: CHROMIUM, headless: false, args: LAUNCH_FLAGS });
}

export async function screenshot(page: Page, name: string): Promise<void> {
  await mkdir(SCREENSHOT_DIR, { recursive: true });
  await page.screenshot({ path: `${SCREENSHOT_DIR}${name}.png`, fullPage: true });
}

/** The page's text of a selector as a number: '1,500' -> 1500. */
export async function numberIn(page: Page, selector: string): Promise<number> {
  const text = (await page.locator(selector).first().innerText()).replace(/[,\s]/g, '');
  const n = Number(text);
  if (!Number.isFinite(n)) throw new Error(`${selector} shows ${JSON.stringify(text)}, not a number`);
  return n;
}

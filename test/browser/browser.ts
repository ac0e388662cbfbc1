import { existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

/**
 * The little of the DOM the in-page callbacks below touch. The repository typechecks as Node code
 * (no DOM lib), and these functions run in the page, so they reach the page's globals through this.
 */
interface PageGlobals {
  document: {
    querySelector(selector: string): { textContent: string | null } | null;
    addEventListener(type: 'securitypolicyviolation', fn: (e: { violatedDirective: string; blockedURI: string }) => void): void;
  };
  __cspViolations?: string[];
}

/** Debian's chromium (scripts/ensure-chromium.sh installs it); FLOTILLA_CHROMIUM points elsewhere. */
export const CHROMIUM = process.env.FLOTILLA_CHROMIUM ?? '/usr/bin/chromium';

/** Screenshots the browser tests take, kept as test artifacts (test-results/ at the repository root). */
export const SCREENSHOT_DIR = fileURLToPath(new URL('../../test-results/screenshots/', import.meta.url));

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`no Chromium at ${CHROMIUM}: run scripts/ensure-chromium.sh (as root it installs Debian's chromium), or set FLOTILLA_CHROMIUM`);
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
}

export interface ConsolePage {
  context: BrowserContext;
  page: Page;
  /** Uncaught page errors and CSP violations seen so far. */
  problems: string[];
}

/**
 * A fresh browser context (own sessionStorage) on the console, signed in through its sign-in
 * screen with `token`. Every page error and CSP violation is collected so tests can assert none.
 */
export async function openConsole(browser: Browser, baseUrl: string, token: string): Promise<ConsolePage> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
  page.on('dialog', (d) => {
    problems.push(`dialog: ${d.message()}`);
    void d.dismiss();
  });
  await page.addInitScript(() => {
    const g = globalThis as unknown as PageGlobals;
    g.document.addEventListener('securitypolicyviolation', (e) => {
      (g.__cspViolations ??= []).push(`${e.violatedDirective} ${e.blockedURI}`);
    });
  });
  await page.goto(`${baseUrl}/`);
  await page.locator('#token').fill(token);
  await page.locator('#signin-submit').click();
  await page.locator('#who-role').filter({ hasText: /\S/ }).waitFor();
  return { context, page, problems };
}

export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  await page.screenshot({ path: `${SCREENSHOT_DIR}${name}.png`, fullPage: true });
}

/** Waits until the text of `selector` matches `want` (the page updates on its own; nothing reloads). */
export async function waitForText(page: Page, selector: string, want: string | RegExp, timeoutMs = 20_000): Promise<string> {
  const source = typeof want === 'string' ? { s: want } : { re: want.source, flags: want.flags };
  await page.waitForFunction(
    ([sel, w]) => {
      const t = (globalThis as unknown as PageGlobals).document.querySelector(sel as string)?.textContent ?? '';
      const m = w as { s?: string; re?: string; flags?: string };
      return m.s !== undefined ? t.trim() === m.s : new RegExp(m.re!, m.flags).test(t);
    },
    [selector, source] as const,
    { timeout: timeoutMs },
  );
  return (await page.locator(selector).first().textContent()) ?? '';
}

export async function cspViolations(page: Page): Promise<string[]> {
  return page.evaluate(() => (globalThis as unknown as PageGlobals).__cspViolations ?? []);
}

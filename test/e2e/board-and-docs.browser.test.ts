/**
 * The two pages people open in a browser, in a real headless Chromium
 * (Debian's /usr/bin/chromium driven by playwright-core): the BullMQ board
 * behind its Basic challenge, and /docs with nothing loaded from elsewhere.
 * The board's screenshot is kept in test-artifacts/board.png.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack } from '../helpers/stack.ts';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/', import.meta.url));
const USER = 'ops';
const PASSWORD = 'board-password-for-tests';

describe('board and docs in Chromium', () => {
  let s: Stack;
  let browser: Browser;

  beforeAll(async () => {
    s = await startStack({ env: { EVALGATE_BOARD_USER: USER, EVALGATE_BOARD_PASSWORD: PASSWORD } });
    // launch() gives Chromium a fresh temporary user-data-dir of its own and deletes it on close.
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
  });
  afterAll(async () => {
    await browser?.close();
    await s?.close();
  });

  /** A context that records every request and lets none leave this machine. */
  async function isolatedContext(opts: Parameters<Browser['newContext']>[0] = {}): Promise<{ context: BrowserContext; external: string[] }> {
    const context = await browser.newContext(opts);
    const external: string[] = [];
    await context.route(
      (url) => url.origin !== new URL(s.baseUrl).origin && url.protocol !== 'data:',
      async (route) => {
        external.push(route.request().url());
        await route.abort();
      },
    );
    return { context, external };
  }

  it('shows every evalgate queue after the Basic challenge, and keeps a screenshot', async () => {
    // httpCredentials are only sent after a 401 with WWW-Authenticate: Basic, as a person's browser would.
    const { context } = await isolatedContext({ httpCredentials: { username: USER, password: PASSWORD } });
    const page = await context.newPage();
    const res = await page.goto(`${s.baseUrl}/admin/queues`);
    expect(res?.status()).toBe(200);
    const names = s.container.queues.all().map((q) => q.name);
    expect(names).toEqual(expect.arrayContaining(['run-start', 'run-chunk', 'reconcile']));
    for (const name of names) {
      await page.getByText(name, { exact: true }).first().waitFor({ state: 'visible', timeout: 20_000 });
    }
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'board.png'), fullPage: true });
    await context.close();
  });

  it('refuses the board without credentials', async () => {
    const { context } = await isolatedContext();
    const page = await context.newPage();
    const answered = page.waitForResponse(`${s.baseUrl}/admin/queues`);
    // Headless Chromium has nobody to ask for a password, so it abandons the navigation after the challenge.
    const navigation = await page.goto(`${s.baseUrl}/admin/queues`).catch((err: Error) => err);
    const res = await answered;
    expect(res.status()).toBe(401);
    expect(res.headers()['www-authenticate']).toMatch(/^Basic /);
    expect(navigation instanceof Error ? navigation.message : 'navigated').toMatch(/ERR_INVALID_AUTH_CREDENTIALS/);
    expect(await page.getByText('run-chunk').count()).toBe(0);
    await context.close();
  });

  it('refuses the board with a wrong password', async () => {
    const { context } = await isolatedContext({ httpCredentials: { username: USER, password: 'not-it' } });
    const page = await context.newPage();
    const res = await page.goto(`${s.baseUrl}/admin/queues`);
    expect(res?.status()).toBe(401);
    await context.close();
  });

  it('renders /docs from this server only', async () => {
    const { context, external } = await isolatedContext();
    const page = await context.newPage();
    const violations: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') violations.push(m.text());
    });
    const res = await page.goto(`${s.baseUrl}/docs`);
    expect(res?.status()).toBe(200);
    await page.getByText('/v1/datasets/{id}/runs', { exact: true }).first().waitFor({ state: 'visible', timeout: 20_000 });
    expect(await page.locator('.opblock').count()).toBeGreaterThan(10);
    expect(external).toEqual([]);
    expect(violations).toEqual([]);
    // The page reads the same document as SDK generators do.
    const [shown, served] = await Promise.all(['/docs/json', '/openapi.json'].map(async (p) => (await fetch(`${s.baseUrl}${p}`)).json()));
    expect(shown).toEqual(served);
    await context.close();
  });
});

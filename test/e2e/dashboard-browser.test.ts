/**
 * The `sluice_dashboard` page in a real browser: Debian's headless Chromium (/usr/bin/chromium,
 * installed by .ci/run) driven by playwright-core; an end-to-end test (`npm run test:e2e`). The page loads, lists the upstreams and their
 * servers, and its open-tunnel counts follow tunnels the test opens and closes, without a
 * reload. A screenshot is saved in the test's temp folder (kept when SLUICE_KEEP_SCREENSHOT is
 * set, and its path printed). A missing browser fails the test; it is never skipped.
 */
import assert from 'node:assert/strict';
import { copyFileSync, statSync } from 'node:fs';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { chromium } from 'playwright-core';
import type { BrowserContext, Page } from 'playwright-core';
import { startHttpBackend } from '../helpers/backends.js';
import { requireProgram } from '../helpers/programs.js';
import { startTestProxy } from '../helpers/proxy.js';
import { startRedis } from '../helpers/redis.js';
import { rawWebSocket, type RawWebSocket } from '../helpers/raw-client.js';
import { tempDir } from '../helpers/temp.js';
import { withTimeout } from '../helpers/wait.js';

/** What the page functions below use of the browser's globals (the project compiles without the DOM lib). */
interface PageGlobals {
  document: { querySelector(selector: string): { textContent: string | null } | null };
  sluiceMark?: number;
}
const FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync',
];
/** Long enough for a cold browser start on a busy two-core machine; every wait below is bounded. */
const BROWSER_WAIT_MS = 30_000;
const UPDATE_WAIT_MS = 15_000;

async function text(page: Page, selector: string): Promise<string> {
  return (await page.locator(selector).first().textContent({ timeout: UPDATE_WAIT_MS }))?.trim() ?? '';
}

/** Waits until the element's text is `want` (the page redraws from each pushed snapshot). */
async function waitForText(page: Page, selector: string, want: string): Promise<void> {
  try {
    await page.waitForFunction(
      ([sel, value]) => (globalThis as unknown as PageGlobals).document.querySelector(sel)?.textContent?.trim() === value,
      [selector, want] as const,
      { timeout: UPDATE_WAIT_MS, polling: 100 },
    );
  } catch (error) {
    throw new Error(`${selector} did not become "${want}" (it shows "${await text(page, selector).catch(() => '?')}"): ${(error as Error).message}`);
  }
}

/**
 * Opens `url` in a headless Chromium closed by `t.after`, once the page is live; `problems`
 * collects script errors and blocked requests (CSP).
 */
async function openDashboard(t: TestContext, url: string): Promise<{ page: Page; problems: string[] }> {
  const chromiumPath = requireProgram('chromium', 'chromium');
  // The profile is removed in the same hook that closes Chromium, after it: never under a running browser.
  const profile = tempDir();
  let context: BrowserContext;
  try {
    context = await withTimeout(chromium.launchPersistentContext(profile.join('profile'), {
      executablePath: chromiumPath, headless: true, args: FLAGS, viewport: { width: 1280, height: 900 }, timeout: BROWSER_WAIT_MS,
    }), BROWSER_WAIT_MS + 5000, 'Chromium to start');
  } catch (err) {
    profile.cleanup();
    throw err;
  }
  t.after(async () => {
    await withTimeout(context.close(), 10_000, 'Chromium to close').catch(() => undefined);
    profile.cleanup();
  });
  const page = context.pages()[0] ?? await context.newPage();
  page.setDefaultTimeout(UPDATE_WAIT_MS);
  const problems: string[] = [];
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.push(`console error: ${msg.text()}`);
  });
  const response = await page.goto(url, { timeout: BROWSER_WAIT_MS });
  assert.equal(response?.status(), 200);
  assert.equal(await page.title(), 'Sluice dashboard');
  await page.locator('#live[data-state="live"]').waitFor({ timeout: UPDATE_WAIT_MS });
  return { page, problems };
}

test('dashboard in headless Chromium: loads, shows the upstreams, open tunnels change live', async (t) => {
  const dir = tempDir(t);
  const backend = await startHttpBackend(undefined, { id: 'chat-1' });
  t.after(() => backend.close());
  const proxy = await startTestProxy(`events {}
http {
  upstream chat { server ${backend.addr}; server 127.0.0.1:9 down; }
  upstream api { least_conn; server ${backend.addr} weight=2; }
  server {
    listen 127.0.0.1:0;
    server_name dashboard.test;
    location /chat { proxy_pass http://chat; }
    location /api { proxy_pass http://api; }
    location = /dashboard { allow 127.0.0.1; deny all; sluice_dashboard; }
  }
}`, { t });

  const { page, problems } = await openDashboard(t, proxy.url('/dashboard'));
  assert.equal(await page.locator('#fleet-section').isHidden(), true, 'no fleet section without `fleet`');
  await page.locator('[data-upstream="chat"]').waitFor();
  await page.locator('[data-upstream="api"]').waitFor();
  assert.equal(await text(page, `[data-upstream="chat"] [data-peer="${backend.addr}"] [data-state]`), 'up');
  assert.equal(await text(page, '[data-upstream="chat"] [data-peer="127.0.0.1:9"] [data-state]'), 'down');
  assert.match(await text(page, '[data-upstream="api"] h3'), /least conn/);
  await waitForText(page, '#open-tunnels', '0');
  // Marks this document: a reload would lose it.
  await page.evaluate(() => { (globalThis as unknown as PageGlobals).sluiceMark = 42; });

  const tunnels: RawWebSocket[] = [];
  t.after(() => { for (const ws of tunnels) ws.socket.destroy(); });
  for (let i = 0; i < 3; i++) tunnels.push(await rawWebSocket(proxy.port, { path: '/chat' }));
  tunnels.push(await rawWebSocket(proxy.port, { path: '/api' }));
  for (const ws of tunnels) assert.equal(ws.head.statusCode, 101);
  await waitForText(page, '#open-tunnels', '4');
  await waitForText(page, '[data-upstream="chat"] .upstream-tunnels', '3');
  await waitForText(page, '[data-upstream="api"] .upstream-tunnels', '1');
  await waitForText(page, `[data-upstream="chat"] [data-peer="${backend.addr}"] .peer-tunnels`, '3');

  const shot = dir.join('dashboard.png');
  await page.screenshot({ path: shot, fullPage: true, timeout: UPDATE_WAIT_MS });
  assert.ok(statSync(shot).size > 10_000, 'the screenshot has content');
  const keep = process.env['SLUICE_KEEP_SCREENSHOT'];
  if (keep) {
    copyFileSync(shot, keep);
    t.diagnostic(`screenshot copied to ${keep}`);
  }
  t.diagnostic(`screenshot: ${shot}`);

  tunnels[0]!.socket.destroy();
  tunnels[3]!.socket.destroy();
  await waitForText(page, '#open-tunnels', '2');
  await waitForText(page, '[data-upstream="chat"] .upstream-tunnels', '2');
  await waitForText(page, '[data-upstream="api"] .upstream-tunnels', '0');
  assert.equal(await page.evaluate(() => (globalThis as unknown as PageGlobals).sluiceMark), 42, 'updated in place, not reloaded');
  assert.deepEqual(problems, [], 'no script errors or blocked requests (CSP) in the page');
});

test('dashboard with `fleet`: the members with their tunnels, Redis going down and coming back', async (t) => {
  const redis = await startRedis(t);
  const backend = await startHttpBackend(undefined, { id: 'chat-1' });
  t.after(() => backend.close());
  const config = (name: string): string => `fleet ${redis.url} name=${name} heartbeat=200ms ttl=1s counts_cache=50ms timeout=500ms;
events {}
http {
  upstream chat { least_conn fleet; server ${backend.addr}; }
  server {
    listen 127.0.0.1:0;
    location /chat { proxy_pass http://chat; }
    location = /dashboard { sluice_dashboard; }
  }
}`;
  const proxy = await startTestProxy(config('edge-a'), { t });
  const other = await startTestProxy(config('edge-b'), { t });
  const { page, problems } = await openDashboard(t, proxy.url('/dashboard'));
  await waitForText(page, '#fleet-state', 'redis up');
  const tunnels: RawWebSocket[] = [];
  t.after(() => { for (const ws of tunnels) ws.socket.destroy(); });
  for (let i = 0; i < 2; i++) tunnels.push(await rawWebSocket(other.port, { path: '/chat' }));
  tunnels.push(await rawWebSocket(proxy.port, { path: '/chat' }));
  await waitForText(page, `[data-member="edge-b/${process.pid}"] .member-tunnels`, '2');
  await waitForText(page, `[data-member="edge-a/${process.pid}"] .member-tunnels`, '1');
  assert.match(await text(page, `[data-member="edge-b/${process.pid}"]`), new RegExp(`chat: ${backend.addr.replace(/\./g, '\\.')} 2`));
  assert.match(await text(page, '[data-upstream="chat"] h3'), /least conn fleet/);
  await redis.stop();
  await waitForText(page, '#fleet-state', 'redis down');
  assert.match(await text(page, '#fleet-meta'), /balancing on local counts/);
  await redis.start();
  await waitForText(page, '#fleet-state', 'redis up');
  await waitForText(page, `[data-member="edge-b/${process.pid}"] .member-tunnels`, '2');
  assert.deepEqual(problems, [], 'no script errors or blocked requests (CSP) in the page');
});

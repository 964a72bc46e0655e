// End to end in a real browser: headless Chromium (Debian's `chromium`, driven by playwright-core)
// loads a page through Sluice over HTTPS; the page opens wss:// through Sluice to an echo backend and
// exchanges messages. Once over HTTP/1.1 and once on an `ssl http2` listener, where the page and
// the WebSocket (RFC 8441) must both have used HTTP/2. The browser trusts the test certificate by
// its key (--ignore-certificate-errors-spki-list), so nothing runs in a certificate-error state.
// An end-to-end test (`npm run test:e2e`): a missing browser fails it; .ci/run installs it
// (apt-get install -y chromium). The last test loads a page from one origin that opens WebSockets
// to another, where websocket_allowed_origins lets one in and refuses the other with 403.
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { test } from 'node:test';
import { chromium, type BrowserContext } from 'playwright-core';
import { startHttpBackend } from '../helpers/backends.js';
import { spkiHash, testCerts } from '../helpers/certs.js';
import { waitForFileLine } from '../helpers/log-files.js';
import { requireProgram } from '../helpers/programs.js';
import { startTestProxy } from '../helpers/proxy.js';
import { tempDir } from '../helpers/temp.js';
import { withTimeout } from '../helpers/wait.js';

/** A browser start and a page load on a busy 2-core machine. */
const BROWSER_MS = 60_000;

/** The page: opens wss://<its own host>/ws, sends three messages, records what comes back. */
const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>sluice browser test</title></head>
<body><pre id="out">waiting</pre>
<script>
  const out = document.getElementById('out');
  window.__result = new Promise((resolve, reject) => {
    const ws = new WebSocket('wss://' + location.host + '/ws');
    ws.binaryType = 'arraybuffer';
    const got = [];
    const big = new Uint8Array(49 * 1024).map((_, i) => i % 251);
    ws.onopen = () => { ws.send('hello'); ws.send('héllo wörld ✓'); ws.send(big); };
    ws.onmessage = (e) => {
      if (typeof e.data === 'string') got.push(e.data);
      else {
        const b = new Uint8Array(e.data);
        got.push('binary:' + b.length + ':' + b.every((v, i) => v === i % 251));
      }
      if (got.length === 3) { ws.close(1000, 'done'); }
    };
    ws.onclose = (e) => resolve({ got, code: e.code, protocol: performance.getEntriesByType('navigation')[0].nextHopProtocol });
    ws.onerror = () => reject(new Error('websocket error'));
  });
  window.__result.then((r) => { out.textContent = JSON.stringify(r); }, (e) => { out.textContent = 'error: ' + e.message; });
</script></body></html>`;

/**
 * Chromium on a profile of its own, closed by `t.after` before the profile is removed (in one
 * hook, so the order of hooks cannot remove the profile under a running browser).
 */
async function launch(t: import('node:test').TestContext, spki: string): Promise<BrowserContext> {
  const profile = tempDir();
  let context: BrowserContext;
  try {
    context = await withTimeout(chromium.launchPersistentContext(profile.join('profile'), {
      executablePath: requireProgram('chromium', 'chromium'),
      headless: true,
      args: [
        '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage',
        `--ignore-certificate-errors-spki-list=${spki}`,
      ],
    }), BROWSER_MS, 'Chromium to start');
  } catch (err) {
    profile.cleanup();
    throw err;
  }
  t.after(async () => {
    await withTimeout(context.close(), 10_000, 'Chromium to close').catch(() => undefined);
    profile.cleanup();
  });
  return context;
}

interface PageResult {
  got: string[];
  code: number;
  protocol: string;
}

async function runPage(t: import('node:test').TestContext, http2: boolean): Promise<{ result: PageResult; accessLog: string[] }> {
  requireProgram('chromium', 'chromium');
  const certs = await testCerts();
  const dir = tempDir(t);
  const backend = await startHttpBackend((_req: IncomingMessage, res: ServerResponse) => {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Content-Length': Buffer.byteLength(PAGE), 'Cache-Control': 'no-store' });
    res.end(PAGE);
  }, { id: 'browser-echo' });
  t.after(() => backend.close());
  const log = dir.join('access.log');
  const proxy = await startTestProxy(`
events {}
http {
  map $http_upgrade $connection_upgrade { default upgrade; '' close; }
  log_format t '$request_method $uri $server_protocol $status $ssl_alpn_protocol';
  access_log ${log} t;
  server {
    listen 127.0.0.1:0 ssl${http2 ? ' http2' : ''};
    server_name localhost;
    ssl_certificate ${certs.localhost.certFile};
    ssl_certificate_key ${certs.localhost.keyFile};
    location / {
      proxy_pass http://${backend.addr};
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header Host $host;
      proxy_read_timeout 7200s;
    }
  }
}`, { t });
  const context = await launch(t, spkiHash(certs.localhost.cert));
  const page = await context.newPage();
  const response = await page.goto(`https://localhost:${proxy.port}/`, { timeout: BROWSER_MS });
  assert.equal(response?.status(), 200);
  const result = await page.evaluate('window.__result', undefined) as PageResult;
  const accessLog = await waitForFileLine(log, ' /ws ', { timeoutMs: 10_000 });
  return { result, accessLog };
}

test('a real browser loads a page over HTTPS (HTTP/1.1) through Sluice and talks wss:// to an echo backend', async (t) => {
  const { result, accessLog } = await runPage(t, false);
  assert.deepEqual(result.got, ['hello', 'héllo wörld ✓', 'binary:50176:true']);
  assert.equal(result.code, 1000);
  assert.equal(result.protocol, 'http/1.1');
  assert.ok(accessLog.includes('GET / HTTP/1.1 200 http/1.1'), accessLog.join('\n'));
  assert.ok(accessLog.includes('GET /ws HTTP/1.1 101 http/1.1'), accessLog.join('\n'));
});

test('on an ssl http2 listener the browser uses HTTP/2 for the page and for the WebSocket (RFC 8441)', async (t) => {
  const { result, accessLog } = await runPage(t, true);
  assert.deepEqual(result.got, ['hello', 'héllo wörld ✓', 'binary:50176:true']);
  assert.equal(result.code, 1000);
  assert.equal(result.protocol, 'h2');
  assert.ok(accessLog.includes('GET / HTTP/2.0 200 h2'), accessLog.join('\n'));
  // The WebSocket went over the page's HTTP/2 connection: an extended CONNECT answered with 200.
  assert.ok(accessLog.includes('GET /ws HTTP/2.0 200 h2'), accessLog.join('\n'));
});

/** A page that opens two WebSockets to another origin (given as ?to=HOST:PORT) and reports how each went. */
const CROSS_PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>cross-origin</title></head><body><script>
  const to = new URLSearchParams(location.search).get('to');
  const open = (path) => new Promise((resolve) => {
    const ws = new WebSocket('ws://' + to + path);
    ws.onopen = () => { ws.close(1000); resolve('open'); };
    ws.onerror = () => resolve('error');
  });
  window.__result = Promise.all([open('/ok'), open('/no')]);
</script></body></html>`;

test('a page on another origin: Chromium\'s new WebSocket() is refused with 403 where websocket_allowed_origins does not list the page', async (t) => {
  requireProgram('chromium', 'chromium');
  const dir = tempDir(t);
  const backend = await startHttpBackend((_req: IncomingMessage, res: ServerResponse) => {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Content-Length': Buffer.byteLength(CROSS_PAGE), 'Cache-Control': 'no-store' });
    res.end(CROSS_PAGE);
  });
  t.after(() => backend.close());
  const site = await startTestProxy(`events {}\nhttp { server { listen 127.0.0.1:0; location / { proxy_pass http://${backend.addr}; } } }`, { t });
  const log = dir.join('access.log');
  const pageOrigin = `http://127.0.0.1:${site.port}`;
  const ws = await startTestProxy(`events {}
http {
  log_format o '$uri $status $http_origin';
  access_log ${log} o;
  server {
    listen 127.0.0.2:0;
    location /ok { websocket_allowed_origins ${pageOrigin}; proxy_pass http://${backend.addr}; }
    location /no { websocket_allowed_origins https://app.example.com; proxy_pass http://${backend.addr}; }
  }
}`, { t });
  const context = await launch(t, spkiHash((await testCerts()).localhost.cert));
  const page = await context.newPage();
  const response = await page.goto(`${pageOrigin}/?to=127.0.0.2:${ws.port}`, { timeout: BROWSER_MS });
  assert.equal(response?.status(), 200);
  assert.deepEqual(await page.evaluate('window.__result', undefined), ['open', 'error']);
  // A tunnel's line is written when it ends: the /ok one may end after /no was refused.
  await waitForFileLine(log, '/ok ', { timeoutMs: 10_000 });
  const lines = await waitForFileLine(log, '/no ', { timeoutMs: 10_000 });
  assert.ok(lines.includes(`/ok 101 ${pageOrigin}`), lines.join('\n'));
  assert.ok(lines.includes(`/no 403 ${pageOrigin}`), lines.join('\n'));
});

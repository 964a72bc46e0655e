// forward_proxy end to end with the clients people point at a proxy: curl -x (absolute-form
// http://, CONNECT for https://, --proxy-user against a bcrypt htpasswd, the allowlist's 403) and
// headless Chromium with --proxy-server loading an https:// page and opening wss:// through
// CONNECT tunnels. `--proxy-bypass-list=<-loopback>` makes Chromium send loopback through the
// proxy too; the proxy allows 127.0.0.1 explicitly (its default refuses loopback). nginx has no
// forward proxy, so there is nothing to compare with. Fails when curl or chromium is missing.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { test } from 'node:test';
import bcrypt from 'bcryptjs';
import { chromium } from 'playwright-core';
import { startHttpBackend } from '../helpers/backends.js';
import { spkiHash, testCerts } from '../helpers/certs.js';
import { conf } from '../helpers/config-text.js';
import { fileLines, waitForFileLine } from '../helpers/log-files.js';
import { requireProgram } from '../helpers/programs.js';
import { startTestProxy } from '../helpers/proxy.js';
import { tempDir } from '../helpers/temp.js';
import { startHttpsBackend } from '../helpers/tls-backends.js';
import { waitFor, withTimeout } from '../helpers/wait.js';

const BROWSER_MS = 60_000;

/** curl, run asynchronously (the proxy serves from this process): its stdout and exit code. */
function curl(args: readonly string[]): Promise<{ out: string; code: number }> {
  return new Promise((resolve) => {
    execFile(requireProgram('curl', 'curl'), ['-s', '--max-time', '20', ...args], (err, stdout) => {
      resolve({ out: stdout, code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1 });
    });
  });
}

test('curl -x: http:// in absolute form, https:// through CONNECT, --proxy-user with bcrypt, 403 outside the allowlist', async (t) => {
  const certs = await testCerts();
  const plain = await startHttpBackend();
  t.after(() => plain.close());
  const tls = await startHttpsBackend({ cert: certs.localhost.cert, key: certs.localhost.key });
  t.after(() => tls.server.closeAllConnections());
  t.after(() => new Promise<void>((r) => tls.server.close(() => r())));
  const dir = tempDir(t);
  const users = dir.write('htpasswd', `curl:${bcrypt.hashSync('curl-secret', 5)}\n`);
  const log = dir.join('access.log');
  const proxy = await startTestProxy(conf(`
    access_log ${log};
    server {
      listen 127.0.0.1:0;
      forward_proxy on;
      forward_proxy_allow 127.0.0.1:${plain.port} 127.0.0.1:${tls.port};
      forward_proxy_auth_basic "curl test";
      forward_proxy_auth_basic_user_file ${users};
    }`), { t });
  const via = ['-x', `http://127.0.0.1:${proxy.port}`];
  const auth = ['--proxy-user', 'curl:curl-secret'];

  const http = await curl([...via, ...auth, '-o', '/dev/null', '-w', '%{http_code}', `http://127.0.0.1:${plain.port}/from-curl`]);
  assert.equal(http.out, '200');
  assert.equal(plain.requests.at(-1)?.url, '/from-curl');
  assert.equal(plain.requests.at(-1)?.headers['proxy-authorization'], undefined);

  const https = await curl([...via, ...auth, '--cacert', certs.ca.certFile, '-o', '/dev/null', '-w', '%{http_connect} %{http_code}', `https://localhost:${tls.port}/over-connect`]);
  assert.equal(https.out, '200 200');
  assert.equal(tls.requests.at(-1)?.url, '/over-connect');
  await waitForFileLine(log, `"CONNECT localhost:${tls.port} HTTP/1.1" 200`);

  const noAuth = await curl([...via, '-o', '/dev/null', '-w', '%{http_code}', `http://127.0.0.1:${plain.port}/`]);
  assert.equal(noAuth.out, '407');
  const wrong = await curl([...via, '--proxy-user', 'curl:nope', '--cacert', certs.ca.certFile, '-o', '/dev/null', '-w', '%{http_connect}', `https://localhost:${tls.port}/`]);
  assert.equal(wrong.out, '407');
  assert.notEqual(wrong.code, 0);
  // Allowed users still reach only the allowlist: another loopback port is refused.
  const other = await startHttpBackend();
  t.after(() => other.close());
  const refused = await curl([...via, ...auth, '-o', '/dev/null', '-w', '%{http_code}', `http://127.0.0.1:${other.port}/`]);
  assert.equal(refused.out, '403');
  assert.equal(other.requests.length, 0);
});

/** The page: opens wss://<its own host>/ws, sends two messages, records what comes back. */
const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>forward proxy</title></head><body>
<script>
  window.__result = new Promise((resolve, reject) => {
    const ws = new WebSocket('wss://' + location.host + '/ws');
    const got = [];
    ws.onopen = () => { ws.send('through'); ws.send('the forward proxy'); };
    ws.onmessage = (e) => { got.push(e.data); if (got.length === 2) ws.close(1000, 'done'); };
    ws.onclose = (e) => resolve({ got, code: e.code });
    ws.onerror = () => reject(new Error('websocket error'));
  });
</script></body></html>`;

test('Chromium with --proxy-server loads an https:// page and talks wss:// through CONNECT tunnels', async (t) => {
  const certs = await testCerts();
  const backend = await startHttpsBackend({
    cert: certs.localhost.cert, key: certs.localhost.key,
    handler: (_req: IncomingMessage, res: ServerResponse) => {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Content-Length': Buffer.byteLength(PAGE), 'Cache-Control': 'no-store' });
      res.end(PAGE);
    },
  });
  t.after(() => backend.server.closeAllConnections());
  t.after(() => new Promise<void>((r) => backend.server.close(() => r())));
  const dir = tempDir(t);
  const log = dir.join('access.log');
  const proxy = await startTestProxy(conf(`
    access_log ${log};
    server { listen 127.0.0.1:0; forward_proxy on; forward_proxy_allow 127.0.0.1:${backend.port}; }`), { t });
  const profile = tempDir();
  const context = await withTimeout(chromium.launchPersistentContext(profile.join('profile'), {
    executablePath: requireProgram('chromium', 'chromium'),
    headless: true,
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage',
      `--proxy-server=http://127.0.0.1:${proxy.port}`, '--proxy-bypass-list=<-loopback>',
      `--ignore-certificate-errors-spki-list=${spkiHash(certs.localhost.cert)}`,
    ],
  }), BROWSER_MS, 'Chromium to start').catch((err: unknown) => {
    profile.cleanup();
    throw err;
  });
  t.after(async () => {
    await withTimeout(context.close(), 10_000, 'Chromium to close').catch(() => undefined);
    profile.cleanup();
  });
  const page = await context.newPage();
  const response = await page.goto(`https://localhost:${backend.port}/`, { timeout: BROWSER_MS });
  assert.equal(response?.status(), 200);
  const result = await page.evaluate('window.__result', undefined) as { got: string[]; code: number };
  assert.deepEqual(result.got, ['through', 'the forward proxy']);
  assert.equal(result.code, 1000);
  assert.ok(backend.requests.some((r) => r.url === '/ws'));
  // Both the page and the WebSocket came through the proxy: Chromium never pools a WebSocket's
  // connection, so two tunnels (each logged when it ends, the page's when the browser closes).
  await withTimeout(context.close(), 10_000, 'Chromium to close');
  const connects = `"CONNECT localhost:${backend.port} HTTP/1.1" 200`;
  await waitFor(() => (fileLines(log).filter((l) => l.includes(connects)).length >= 2 ? true : null), { what: 'two CONNECT lines', timeoutMs: 10_000 });
});

/**
 * nginx's access module end to end: `allow` / `deny` in http, server and location, first match
 * wins, CIDR networks of both families, a level with rules of its own inherits none, nginx's 403
 * page and error-log line, WebSocket upgrades refused before anything reaches the backend, and
 * nginx's phase order (`return` is answered before the access phase).
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { test } from 'node:test';
import { startHttpBackend, type HttpBackend } from '../helpers/backends.js';
import { conf } from '../helpers/config-text.js';
import { errorPage } from '../helpers/pages.js';
import { startTestProxy, type TestProxy } from '../helpers/proxy.js';
import { headerValue, rawRequest, rawWebSocket } from '../helpers/raw-client.js';
import type { AfterHook } from '../helpers/temp.js';
import { withTimeout } from '../helpers/wait.js';

const FORBIDDEN_PAGE = errorPage('403 Forbidden');

async function backend(t: AfterHook): Promise<HttpBackend> {
  const b = await startHttpBackend(undefined, { id: 'app' });
  t.after(() => b.close());
  return b;
}

async function status(proxy: TestProxy, path: string, host = 'access.test'): Promise<number> {
  const r = await rawRequest(proxy.port, `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
  assert.ok(r.head, `a response to ${path}`);
  return r.head.statusCode;
}

test('first matching rule wins; CIDR networks; no match allows; nginx\'s 403 page and log line', async (t) => {
  const app = await backend(t);
  const proxy = await startTestProxy(conf(`
    server {
      listen 127.0.0.1:0;
      server_name access.test;
      location /deny-first { deny 127.0.0.1; allow all; proxy_pass http://${app.addr}; }
      location /allow-first { allow 127.0.0.1; deny all; proxy_pass http://${app.addr}; }
      location /net-denied { allow 10.0.0.0/8; deny 127.0.0.0/8; allow all; proxy_pass http://${app.addr}; }
      location /net-allowed { deny 127.0.0.2; allow 127.0.0.0/24; deny all; proxy_pass http://${app.addr}; }
      location /low-bits { deny 127.0.0.99/8; proxy_pass http://${app.addr}; }
      location /no-match { deny 192.168.0.0/16; deny 2001:db8::/32; proxy_pass http://${app.addr}; }
      location /v6-only { deny ::/0; proxy_pass http://${app.addr}; }
      location /nothing { deny all; }
    }`), { t });
  const cases: [string, number][] = [
    ['/deny-first', 403], ['/allow-first', 200], ['/net-denied', 403], ['/net-allowed', 200], ['/low-bits', 403],
    ['/no-match', 200], ['/v6-only', 200], ['/nothing', 403],
  ];
  for (const [path, want] of cases) assert.equal(await status(proxy, path), want, path);
  assert.deepEqual(app.requests.map((r) => r.url), ['/allow-first', '/net-allowed', '/no-match', '/v6-only'], 'denied requests never reach the backend');

  const r = await rawRequest(proxy.port, 'GET /deny-first?x=1 HTTP/1.1\r\nHost: access.test\r\nConnection: close\r\n\r\n');
  assert.equal(r.head?.statusCode, 403);
  assert.equal(r.head?.reason, 'Forbidden');
  assert.equal(headerValue(r.head!, 'content-type'), 'text/html');
  assert.equal(r.body.toString(), FORBIDDEN_PAGE);
  const line = await proxy.waitForErrorLine('GET /deny-first?x=1');
  assert.match(line, /\[error\] \d+#0: \*\d+ access forbidden by rule, client: 127\.0\.0\.1, server: access\.test, request: "GET \/deny-first\?x=1 HTTP\/1\.1", host: "access\.test"$/);
});

test('inheritance: a level with rules of its own inherits none; levels without rules inherit', async (t) => {
  const app = await backend(t);
  const proxy = await startTestProxy(conf(`
    deny all;
    server {
      listen 127.0.0.1:0;
      location /inherits { proxy_pass http://${app.addr}; }
      location /own {
        allow 127.0.0.1;
        proxy_pass http://${app.addr};
        location /own/nested { proxy_pass http://${app.addr}; }
        location /own/stricter { deny 127.0.0.1; proxy_pass http://${app.addr}; }
      }
    }
    server {
      listen 127.0.0.1:0;
      server_name two.test;
      allow 127.0.0.0/8;
      location / { proxy_pass http://${app.addr}; }
      location /back-to-deny { deny all; proxy_pass http://${app.addr}; }
    }`), { t });
  assert.equal(await status(proxy, '/inherits'), 403, 'http-level deny all');
  assert.equal(await status(proxy, '/unmatched'), 403, 'no location: the server level (inherited) rules');
  assert.equal(await status(proxy, '/own'), 200, 'its own allow, and no inherited deny');
  assert.equal(await status(proxy, '/own/nested'), 200, 'inherits the enclosing location\'s rules');
  assert.equal(await status(proxy, '/own/stricter'), 403);
  assert.equal(await status(proxy, '/x', 'two.test'), 200, 'the server\'s allow replaces http\'s deny all');
  assert.equal(await status(proxy, '/back-to-deny', 'two.test'), 403);
});

test('WebSocket upgrades are checked before proxying; `return` runs before the access phase, as in nginx', async (t) => {
  const app = await backend(t);
  const proxy = await startTestProxy(conf(`
    server {
      listen 127.0.0.1:0;
      location /ws-open { proxy_pass http://${app.addr}; }
      location /ws-closed { deny 127.0.0.1; proxy_pass http://${app.addr}; }
      location /early-return { deny all; return 200 "rewrite phase first"; }
      location = /status { allow 10.0.0.0/8; deny all; stub_status; }
    }`), { t });
  const open = await rawWebSocket(proxy.port, { path: '/ws-open' });
  open.socket.destroy();
  assert.equal(open.head.statusCode, 101);
  const closed = await rawWebSocket(proxy.port, { path: '/ws-closed' });
  t.after(() => closed.socket.destroy());
  assert.equal(closed.head.statusCode, 403);
  assert.equal(headerValue(closed.head, 'connection'), 'close');
  assert.deepEqual(app.requests.map((r) => r.url), ['/ws-open']);
  await proxy.waitForErrorLine(/access forbidden by rule, client: 127\.0\.0\.1, .*request: "GET \/ws-closed HTTP\/1\.1"/);

  const early = await rawRequest(proxy.port, 'GET /early-return HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
  assert.equal(early.head?.statusCode, 200);
  assert.equal(early.body.toString(), 'rewrite phase first');
  assert.equal(await status(proxy, '/status'), 403, 'status pages are protected like any content');
});

test('IPv6 clients match IPv6 rules; IPv4 rules never match them', async (t) => {
  const app = await backend(t);
  const proxy = await startTestProxy(conf(`
    server {
      listen [::1]:0;
      location /v4-rule { deny 127.0.0.1; deny 0.0.0.0/0; proxy_pass http://${app.addr}; }
      location /v6-exact { allow ::1; deny all; proxy_pass http://${app.addr}; }
      location /v6-net { deny ::/64; allow all; proxy_pass http://${app.addr}; }
      location /v6-other { deny 2001:db8::/32; proxy_pass http://${app.addr}; }
    }`), { t });
  const get6 = (path: string): Promise<number> => withTimeout(new Promise<number>((resolve, reject) => {
    const req = request({ host: '::1', family: 6, port: proxy.port, path, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  }), 5000, `GET ${path} over IPv6`);
  assert.equal(await get6('/v4-rule'), 200);
  assert.equal(await get6('/v6-exact'), 200);
  assert.equal(await get6('/v6-net'), 403);
  assert.equal(await get6('/v6-other'), 200);
});

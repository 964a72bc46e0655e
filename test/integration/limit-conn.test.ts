/**
 * limit_conn_zone / limit_conn: a tunnel counts for its whole life (native relay, TypeScript relay,
 * HTTP/2 stream: per stream, as nginx), the next one over the limit gets 503 (or
 * limit_conn_status) with nginx's page and error-log line at limit_conn_log_level, closing a
 * tunnel frees its place; dry run logs and passes; $limit_conn_status; an empty key is not
 * counted; a level with limit_conn of its own inherits none; a client that leaves frees its count.
 */
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { Agent, request as httpRequest } from 'node:http';
import { test } from 'node:test';
import { startHttpBackend } from '../helpers/backends.js';
import { testCerts } from '../helpers/certs.js';
import { conf } from '../helpers/config-text.js';
import { h2Connect, h2WebSocket } from '../helpers/h2-client.js';
import { errorPage } from '../helpers/pages.js';
import { startTestProxy } from '../helpers/proxy.js';
import { headerValue, rawRequest, rawWebSocket, waitForClose, wsHandshakeRequest } from '../helpers/raw-client.js';
import { waitFor } from '../helpers/wait.js';

async function handshake(port: number, path: string, extra: [string, string][] = []): Promise<{ status: number; socket: Socket; body: string }> {
  const r = await rawRequest(port, wsHandshakeRequest({ path, extraHeaders: extra }), { until: 'response' });
  return { status: r.head!.statusCode, socket: r.socket, body: r.body.toString() };
}

for (const relay of ['native', 'typescript'] as const) {
  test(`limit_conn perip 50: the 51st tunnel from one address gets 503 (${relay} relay); closing one frees its place`, async (t) => {
    const backend = await startHttpBackend();
    t.after(() => backend.close());
    const proxy = await startTestProxy(conf(`
      limit_conn_zone $binary_remote_addr zone=perip:10m;
      server {
        listen 127.0.0.1:0;
        ${relay === 'typescript' ? 'native_tunnels off;' : ''}
        location /ws { limit_conn perip 50; proxy_pass http://${backend.addr}; }
      }`), { t });
    const open: Socket[] = [];
    t.after(() => { for (const s of open) s.destroy(); });
    for (let i = 0; i < 50; i++) {
      const ws = await rawWebSocket(proxy.port, { path: '/ws' });
      open.push(ws.socket);
      assert.equal(ws.head.statusCode, 101, `tunnel ${i + 1}`);
    }
    const before = backend.requests.length;
    const refused = await handshake(proxy.port, '/ws');
    refused.socket.destroy();
    assert.equal(refused.status, 503);
    assert.equal(refused.body, errorPage('503 Service Temporarily Unavailable'));
    assert.equal(backend.requests.length, before, 'the refused handshake never reaches the backend');
    await proxy.waitForErrorLine(/\[error\] \d+#0: \*\d+ limiting connections by zone "perip", client: 127\.0\.0\.1, server: , request: "GET \/ws HTTP\/1\.1", host: "127\.0\.0\.1"$/);
    // A tunnel that ends gives its place back.
    const gone = open.shift()!;
    gone.destroy();
    await waitFor(async () => {
      const again = await handshake(proxy.port, '/ws');
      if (again.status === 101) open.push(again.socket);
      else again.socket.destroy();
      return again.status === 101;
    }, { what: 'a tunnel after one closed' });
  });
}

test('limit_conn over HTTP/2 counts each WebSocket stream; a closed stream frees its place', async (t) => {
  const certs = await testCerts();
  const backend = await startHttpBackend();
  t.after(() => backend.close());
  const proxy = await startTestProxy(conf(`
    limit_conn_zone $binary_remote_addr zone=perip:1m;
    server {
      listen 127.0.0.1:0 ssl;
      http2 on;
      ssl_certificate ${certs.localhost.certFile};
      ssl_certificate_key ${certs.localhost.keyFile};
      location /ws { limit_conn perip 2; proxy_pass http://${backend.addr}; }
    }`), { t });
  const client = await h2Connect(proxy.port);
  t.after(() => client.close());
  const a = await h2WebSocket(client, '/ws');
  const b = await h2WebSocket(client, '/ws');
  assert.equal(Number(a.headers[':status']), 200);
  assert.equal(Number(b.headers[':status']), 200);
  const c = await h2WebSocket(client, '/ws');
  assert.equal(Number(c.headers[':status']), 503);
  c.stream.close();
  await proxy.waitForErrorLine('limiting connections by zone "perip"');
  a.stream.close();
  await waitFor(async () => {
    const d = await h2WebSocket(client, '/ws');
    const ok = Number(d.headers[':status']) === 200;
    if (!ok) d.stream.close();
    return ok;
  }, { what: 'a stream after one closed' });
});

test('limit_conn_status, limit_conn_log_level, dry run, $limit_conn_status, empty keys, inheritance', async (t) => {
  const backend = await startHttpBackend();
  t.after(() => backend.close());
  const proxy = await startTestProxy(conf(`
    limit_conn_zone $binary_remote_addr zone=perip:1m;
    limit_conn_zone $http_x_user zone=peruser:1m;
    server {
      listen 127.0.0.1:0;
      limit_conn perip 1;
      limit_conn_status 429;
      limit_conn_log_level warn;
      add_header X-Limit-Conn $limit_conn_status always;
      location /ws { proxy_pass http://${backend.addr}; }
      location /dry { limit_conn_dry_run on; proxy_pass http://${backend.addr}; }
      location /user { limit_conn peruser 1; proxy_pass http://${backend.addr}; }
    }`, 'error_log stderr info;'), { t });
  const first = await rawWebSocket(proxy.port, { path: '/ws' });
  t.after(() => first.socket.destroy());
  assert.equal(first.head.statusCode, 101);
  const second = await handshake(proxy.port, '/ws');
  second.socket.destroy();
  assert.equal(second.status, 429);
  assert.match(second.body, /429 Too Many Requests/);
  await proxy.waitForErrorLine(/\[warn\] .*limiting connections by zone "perip"/);

  // Dry run: logged, passed, and $limit_conn_status says so.
  const dry = await rawRequest(proxy.port, 'GET /dry HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
  assert.equal(dry.head?.statusCode, 200);
  assert.equal(headerValue(dry.head!, 'x-limit-conn'), 'REJECTED_DRY_RUN');
  await proxy.waitForErrorLine(/\[warn\] .*limiting connections, dry run, by zone "perip", client: 127\.0\.0\.1, server: , request: "GET \/dry HTTP\/1\.1"/);

  // /user has a limit_conn of its own: the server's perip is not inherited, so the open tunnel
  // does not count; requests without X-User have an empty key and are not limited at all.
  const noKey = await rawRequest(proxy.port, 'GET /user HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
  assert.equal(noKey.head?.statusCode, 200);
  assert.equal(headerValue(noKey.head!, 'x-limit-conn'), undefined, 'no key, no status');
  const u1 = await rawWebSocket(proxy.port, { path: '/user', extraHeaders: [['X-User', 'ann']] });
  t.after(() => u1.socket.destroy());
  assert.equal(u1.head.statusCode, 101);
  const u2 = await handshake(proxy.port, '/user', [['X-User', 'ann']]);
  u2.socket.destroy();
  assert.equal(u2.status, 429);
  const u3 = await rawWebSocket(proxy.port, { path: '/user', extraHeaders: [['X-User', 'bob']] });
  u3.socket.destroy();
  assert.equal(u3.head.statusCode, 101);
  // Plain requests count while they run: the first tunnel's place is taken, a plain request to /ws is refused too.
  const plain = await rawRequest(proxy.port, 'GET /ws HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
  assert.equal(plain.head?.statusCode, 429);
  assert.equal(headerValue(plain.head!, 'x-limit-conn'), 'REJECTED');
  first.socket.destroy();
  await waitForClose(first.socket);
  await waitFor(async () => {
    const r = await rawRequest(proxy.port, 'GET /ws HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
    return r.head?.statusCode === 200 && headerValue(r.head, 'x-limit-conn') === 'PASSED';
  }, { what: 'PASSED once the tunnel closed' });
});

test('a zone survives a reload while its name, size and key stay the same; a resized zone starts empty', async (t) => {
  const backend = await startHttpBackend();
  t.after(() => backend.close());
  const text = (size: string, marker: string): string => conf(`
    limit_conn_zone $binary_remote_addr zone=perip:${size};
    server {
      listen 127.0.0.1:0;
      location /ws { limit_conn perip 1; add_header X-Generation ${marker} always; proxy_pass http://${backend.addr}; }
    }`);
  const proxy = await startTestProxy(text('1m', 'one'), { t });
  const first = await rawWebSocket(proxy.port, { path: '/ws' });
  t.after(() => first.socket.destroy());
  assert.equal(first.head.statusCode, 101);
  await proxy.handle.reload({ text: text('1m', 'two') });
  const kept = await handshake(proxy.port, '/ws');
  kept.socket.destroy();
  assert.equal(kept.status, 503, 'the tunnel opened before the reload still counts');
  await proxy.handle.reload({ text: text('2m', 'three') });
  const fresh = await rawWebSocket(proxy.port, { path: '/ws' });
  t.after(() => fresh.socket.destroy());
  assert.equal(fresh.head.statusCode, 101, 'a zone of another size is a new zone');
  assert.equal(headerValue(fresh.head, 'x-generation'), 'three');
  // The old tunnel ends in the zone it was counted in; the new zone is not touched.
  first.socket.destroy();
  await waitForClose(first.socket);
  const still = await handshake(proxy.port, '/ws');
  still.socket.destroy();
  assert.equal(still.status, 503);
});

test('requests on one keep-alive connection each count only while they run', async (t) => {
  const backend = await startHttpBackend();
  t.after(() => backend.close());
  const proxy = await startTestProxy(conf(`
    limit_conn_zone $binary_remote_addr zone=perip:1m;
    server {
      listen 127.0.0.1:0;
      location / { limit_conn perip 1; proxy_pass http://${backend.addr}; }
    }`), { t });
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => agent.destroy());
  const statuses: number[] = [];
  const sockets = new Set<unknown>();
  for (let i = 0; i < 5; i++) {
    statuses.push(await new Promise<number>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port: proxy.port, path: `/${i}`, agent }, (res) => {
        sockets.add(res.socket);
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.end();
    }));
  }
  assert.deepEqual(statuses, [200, 200, 200, 200, 200]);
  assert.equal(sockets.size, 1, 'one connection');
});

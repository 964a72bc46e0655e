/**
 * `websocket_allowed_origins`: a WebSocket handshake (HTTP/1.1 Upgrade or HTTP/2 extended CONNECT)
 * whose Origin the list does not allow gets 403 before any upstream connection is made, logged
 * with the Origin; exact origins (default ports folded), `*.` subdomains, scheme-less hosts,
 * `none` for clients that send no Origin, `null`, `*`, and variables (`$scheme://$host`: the page
 * must come from the host it connects to). Plain requests are not checked; without the directive
 * every Origin passes (the default).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startHttpBackend } from '../helpers/backends.js';
import { testCerts } from '../helpers/certs.js';
import { conf } from '../helpers/config-text.js';
import { h2Connect, h2WebSocket } from '../helpers/h2-client.js';
import { startTestProxy } from '../helpers/proxy.js';
import { rawRequest, wsHandshakeRequest } from '../helpers/raw-client.js';

async function handshake(port: number, path: string, origin: string | null, host = 'app.example.com'): Promise<number> {
  const extra: [string, string][] = origin === null ? [] : [['Origin', origin]];
  const r = await rawRequest(port, wsHandshakeRequest({ path, host, extraHeaders: extra }), { until: 'response' });
  r.socket.destroy();
  return r.head!.statusCode;
}

test('websocket_allowed_origins: exact, wildcard, scheme-less, none, null, *, variables; 403 before the upstream, logged', async (t) => {
  const backend = await startHttpBackend();
  t.after(() => backend.close());
  const proxy = await startTestProxy(conf(`
    server {
      listen 127.0.0.1:0;
      websocket_allowed_origins https://app.example.com http://localhost:3000 *.trusted.example;
      location /ws { proxy_pass http://${backend.addr}; }
      location /cli { websocket_allowed_origins https://app.example.com none; proxy_pass http://${backend.addr}; }
      location /sandbox { websocket_allowed_origins null; proxy_pass http://${backend.addr}; }
      location /same { websocket_allowed_origins $scheme://$host; proxy_pass http://${backend.addr}; }
      location /open { websocket_allowed_origins *; proxy_pass http://${backend.addr}; }
    }
    server { listen 127.0.0.2:0; location / { proxy_pass http://${backend.addr}; } }`, 'error_log stderr info;'), { t });
  const port = proxy.port;
  const rows: [string, string | null, number][] = [
    ['/ws', 'https://app.example.com', 101],
    ['/ws', 'HTTPS://App.Example.com:443', 101],
    ['/ws', 'https://app.example.com:8443', 403],
    ['/ws', 'http://app.example.com', 403],
    ['/ws', 'http://localhost:3000', 101],
    ['/ws', 'http://localhost', 403],
    ['/ws', 'https://a.trusted.example', 101],
    ['/ws', 'http://b.c.trusted.example', 101],
    ['/ws', 'https://trusted.example', 403],
    ['/ws', 'https://eviltrusted.example', 403],
    ['/ws', 'https://a.trusted.example:8443', 403],
    ['/ws', 'https://evil.example', 403],
    ['/ws', 'null', 403],
    ['/ws', 'not an origin', 403],
    ['/ws', null, 403],
    ['/cli', null, 101],
    ['/cli', 'https://evil.example', 403],
    ['/sandbox', 'null', 101],
    ['/same', 'http://app.example.com', 101],
    ['/same', 'https://app.example.com', 403],
    ['/same', 'http://other.example.com', 403],
    ['/open', 'https://anything.example', 101],
    ['/open', null, 101],
  ];
  for (const [path, origin, status] of rows) {
    const before = backend.requests.length;
    assert.equal(await handshake(port, path, origin), status, `${path} with Origin ${String(origin)}`);
    assert.equal(backend.requests.length - before, status === 101 ? 1 : 0, `${path} with Origin ${String(origin)}: upstream requests`);
  }
  await proxy.waitForErrorLine(/\[error\] .*WebSocket handshake from origin "https:\/\/evil\.example" is not allowed by websocket_allowed_origins, client: 127\.0\.0\.1, server: , request: "GET \/ws HTTP\/1\.1", host: "app\.example\.com"/);
  await proxy.waitForErrorLine(/\[error\] .*WebSocket handshake without "Origin" is not allowed by websocket_allowed_origins/);
  // Plain requests are not handshakes: not checked.
  const plain = await rawRequest(port, 'GET /ws HTTP/1.1\r\nHost: a\r\nOrigin: https://evil.example\r\nConnection: close\r\n\r\n');
  assert.equal(plain.head?.statusCode, 200);
  // Without the directive, any Origin passes (the default, as every proxy's).
  const other = proxy.listeners[1]!;
  const r = await rawRequest(other.port, wsHandshakeRequest({ path: '/', extraHeaders: [['Origin', 'https://evil.example']] }), { host: other.host, until: 'response' });
  r.socket.destroy();
  assert.equal(r.head?.statusCode, 101);
});

test('websocket_allowed_origins over HTTP/2 (RFC 8441 extended CONNECT): refused with 403, allowed ones open', async (t) => {
  const certs = await testCerts();
  const backend = await startHttpBackend();
  t.after(() => backend.close());
  const proxy = await startTestProxy(conf(`
    server {
      listen 127.0.0.1:0 ssl http2;
      ssl_certificate ${certs.localhost.certFile}; ssl_certificate_key ${certs.localhost.keyFile};
      websocket_allowed_origins https://localhost;
      location / { proxy_pass http://${backend.addr}; }
    }`), { t });
  const client = await h2Connect(proxy.port, { ca: certs.ca.cert });
  t.after(() => client.close());
  const before = backend.requests.length;
  const bad = await h2WebSocket(client, '/ws', { origin: 'https://evil.example' });
  assert.equal(bad.headers[':status'], 403);
  bad.stream.close();
  assert.equal(backend.requests.length, before, 'no upstream request for the refused handshake');
  const good = await h2WebSocket(client, '/ws', { origin: 'https://localhost' });
  assert.equal(good.headers[':status'], 200);
  good.stream.close();
});

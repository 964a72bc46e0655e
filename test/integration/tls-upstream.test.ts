// TLS to upstream servers (BEHAVIOURS.md 36): proxy_pass https:// with verification on (a trusted
// CA works; an untrusted certificate or a wrong name gives 502 with the reason in the error log)
// and off, SNI only with proxy_ssl_server_name, ALPN http/1.1 (WebSocket upgrades included), a
// client certificate to the upstream, proxy_ssl_protocols, keepalive connections over TLS, TLS
// session reuse (nginx's proxy_ssl_session_reuse on) per server and TLS identity, and the
// handshake counted in the connect time and under proxy_connect_timeout.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import WebSocket from 'ws';
import { startHttpBackend, startRawBackend } from '../helpers/backends.js';
import { testCerts, type TestCerts } from '../helpers/certs.js';
import { startTestProxy } from '../helpers/proxy.js';
import { startHttpsBackend, type HttpsBackend } from '../helpers/tls-backends.js';
import { once, waitFor, withTimeout } from '../helpers/wait.js';

const WAIT_MS = 10_000;

/** A server with these locations. */
function serverConfig(locations: string): string {
  return `
events {}
http {
  server {
    listen 127.0.0.1:0;
    ${locations}
  }
}`;
}

function config(location: string, http = ''): string {
  return `
events {}
http {
  ${http}
  server {
    listen 127.0.0.1:0;
    location / {
      ${location}
    }
  }
}`;
}

test('proxy_ssl_verify off (the default): any certificate is accepted, no SNI is sent, ALPN offers http/1.1', async (t) => {
  const certs = await testCerts();
  const backend = await startHttpsBackend({ cert: certs.untrustedLocalhost.cert, key: certs.untrustedLocalhost.key });
  t.after(() => backend.close());
  const proxy = await startTestProxy(config(`proxy_pass https://${backend.addr};`), { t });
  const res = await fetch(proxy.url('/path?q=1'));
  assert.equal(res.status, 200);
  const report = await res.json() as { url: string; headers: Record<string, string> };
  assert.equal(report.url, '/path?q=1');
  // $proxy_host keeps the port when it is not 443.
  assert.equal(report.headers['host'], backend.addr);
  assert.equal(backend.handshakes.length, 1);
  assert.deepEqual(backend.handshakes[0], { servername: null, alpn: 'http/1.1', protocol: 'TLSv1.3', clientCN: null, clientAuthorized: false, resumed: false });
});

test('proxy_ssl_verify on with the trusted CA and proxy_ssl_name: SNI carries the name and the request goes through', async (t) => {
  const certs = await testCerts();
  const backend = await startHttpsBackend({ cert: certs.localhost.cert, key: certs.localhost.key });
  t.after(() => backend.close());
  const proxy = await startTestProxy(config(`
      proxy_pass https://${backend.addr};
      proxy_ssl_verify on;
      proxy_ssl_trusted_certificate ${certs.ca.certFile};
      proxy_ssl_server_name on;
      proxy_ssl_name localhost;
      proxy_set_header X-Up "$proxy_host $proxy_port";`), { t });
  const res = await fetch(proxy.url('/verified'));
  assert.equal(res.status, 200);
  assert.equal(backend.handshakes[0]?.servername, 'localhost');
  assert.equal(backend.requests[0]?.headers['x-up'], `${backend.addr} ${backend.port}`);
});

test('proxy_ssl_verify on: an untrusted certificate gives 502 and the reason in the error log', async (t) => {
  const certs = await testCerts();
  const backend = await startHttpsBackend({ cert: certs.untrustedLocalhost.cert, key: certs.untrustedLocalhost.key });
  t.after(() => backend.close());
  const proxy = await startTestProxy(config(`
      proxy_pass https://${backend.addr};
      proxy_ssl_verify on;
      proxy_ssl_trusted_certificate ${certs.ca.certFile};`), { t });
  const res = await fetch(proxy.url('/untrusted'));
  assert.equal(res.status, 502);
  await res.text();
  const line = await proxy.waitForErrorLine('upstream SSL certificate verify error');
  assert.match(line, /\[error\] \d+#0: \*\d+ upstream SSL certificate verify error: \(21:unable to verify the first certificate\) while SSL handshaking to upstream, client: 127\.0\.0\.1, server: , request: "GET \/untrusted HTTP\/1\.1", upstream: "/);
  assert.equal(backend.requests.length, 0, 'nothing is sent over an unverified connection');
});

test('proxy_ssl_verify on: a certificate for another name gives 502 (checked against proxy_ssl_name)', async (t) => {
  const certs = await testCerts();
  const backend = await startHttpsBackend({ cert: certs.a.cert, key: certs.a.key });
  t.after(() => backend.close());
  const proxy = await startTestProxy(config(`
      proxy_pass https://${backend.addr};
      proxy_ssl_verify on;
      proxy_ssl_trusted_certificate ${certs.ca.certFile};
      proxy_ssl_name b.test;`), { t });
  const res = await fetch(proxy.url('/'));
  assert.equal(res.status, 502);
  await res.text();
  await proxy.waitForErrorLine('upstream SSL certificate verify error: (certificate does not match "b.test") while SSL handshaking to upstream');

  // The same server verifies under its own name.
  const ok = await startTestProxy(config(`
      proxy_pass https://${backend.addr};
      proxy_ssl_verify on;
      proxy_ssl_trusted_certificate ${certs.ca.certFile};
      proxy_ssl_name a.test;`), { t });
  assert.equal((await fetch(ok.url('/'))).status, 200);
});

test('36: a WebSocket upgrade goes to an https upstream with ALPN http/1.1 and echoes both ways', async (t) => {
  const certs = await testCerts();
  const backend = await startHttpsBackend({ cert: certs.localhost.cert, key: certs.localhost.key, alpn: ['h2', 'http/1.1'] });
  t.after(() => backend.close());
  const proxy = await startTestProxy(config(`
      proxy_pass https://localhost:${backend.port};
      proxy_ssl_verify on;
      proxy_ssl_trusted_certificate ${certs.ca.certFile};
      proxy_ssl_server_name on;`), { t });
  const ws = new WebSocket(proxy.wsUrl('/ws'), { perMessageDeflate: false });
  t.after(() => ws.terminate());
  await once(ws, 'open', WAIT_MS);
  const reply = once(ws, 'message', WAIT_MS);
  ws.send('over tls');
  const [data] = await reply;
  assert.equal(String(data), 'over tls');
  const big = Buffer.alloc(49 * 1024, 7);
  const bigReply = once(ws, 'message', WAIT_MS);
  ws.send(big);
  assert.ok(Buffer.from((await bigReply)[0] as Buffer).equals(big));
  ws.close(1000, 'bye');
  const [code] = await once(ws, 'close', WAIT_MS);
  assert.equal(code, 1000);
  const upgrade = backend.requests.find((r) => r.upgrade);
  assert.ok(upgrade, 'the backend saw an upgrade');
  // The backend also offers h2: the proxy's ALPN offer of http/1.1 alone keeps the upgrade on HTTP/1.1.
  assert.equal(upgrade.tls.alpn, 'http/1.1');
  assert.equal(upgrade.tls.servername, 'localhost');
});

test('proxy_ssl_certificate presents a client certificate; proxy_ssl_protocols limits the version', async (t) => {
  const certs = await testCerts();
  const backend = await startHttpsBackend({ cert: certs.localhost.cert, key: certs.localhost.key, ca: certs.ca.cert });
  t.after(() => backend.close());
  const proxy = await startTestProxy(config(`
      proxy_pass https://${backend.addr};
      proxy_ssl_certificate ${certs.client.certFile};
      proxy_ssl_certificate_key ${certs.client.keyFile};
      proxy_ssl_protocols TLSv1.2;`), { t });
  assert.equal((await fetch(proxy.url('/'))).status, 200);
  assert.equal(backend.handshakes[0]?.clientCN, 'test-client');
  assert.equal(backend.handshakes[0]?.clientAuthorized, true);
  assert.equal(backend.handshakes[0]?.protocol, 'TLSv1.2');
});

test('an upstream that does not speak TLS gives 502 with SSL_do_handshake() failed in the error log', async (t) => {
  const plain = await startHttpBackend();
  t.after(() => plain.close());
  const proxy = await startTestProxy(config(`proxy_pass https://${plain.addr};`), { t });
  const res = await fetch(proxy.url('/'));
  assert.equal(res.status, 502);
  await res.text();
  await proxy.waitForErrorLine(/SSL_do_handshake\(\) failed \(SSL: .+\) while SSL handshaking to upstream/);
});

test('keepalive to an https upstream reuses one TLS connection', async (t) => {
  const certs = await testCerts();
  const backend = await startHttpsBackend({ cert: certs.localhost.cert, key: certs.localhost.key });
  t.after(() => backend.close());
  const proxy = await startTestProxy(config(`
      proxy_pass https://tls_backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";`, `upstream tls_backend { server ${backend.addr}; keepalive 4; }`), { t });
  for (let i = 0; i < 3; i++) {
    const res = await withTimeout(fetch(proxy.url(`/k${i}`)), WAIT_MS, `request ${i}`);
    assert.equal(res.status, 200);
    await res.text();
  }
  assert.equal(backend.requests.length, 3);
  assert.equal(backend.handshakes.length, 1, 'one TLS connection for three requests');
  // $proxy_host of an upstream block is its name; proxy_ssl_name defaults to it.
  assert.equal(backend.requests[0]?.headers['host'], 'tls_backend');
});

/** An HTTPS echo backend with the `localhost` certificate (signed by the test CA), closed after the test. */
async function localhostBackend(t: { after(fn: () => unknown): void }): Promise<{ certs: TestCerts; backend: HttpsBackend }> {
  const certs = await testCerts();
  const backend = await startHttpsBackend({ cert: certs.localhost.cert, key: certs.localhost.key });
  t.after(() => backend.close());
  return { certs, backend };
}

/** GETs `path` and reads the body; the status and the response headers. */
async function get(proxy: { url(path: string): string }, path: string): Promise<{ status: number; headers: Headers }> {
  const res = await withTimeout(fetch(proxy.url(path)), WAIT_MS, `GET ${path}`);
  await res.text();
  return { status: res.status, headers: res.headers };
}

test('TLS sessions are resumed on the next connection to the same server, only under the same settings and name', async (t) => {
  const { backend } = await localhostBackend(t);
  // No keepalive: every request makes a connection of its own.
  const proxy = await startTestProxy(serverConfig(`
      location /a { proxy_pass https://${backend.addr}; proxy_ssl_server_name on; proxy_ssl_name a.test; }
      location /b { proxy_pass https://${backend.addr}; proxy_ssl_server_name on; proxy_ssl_name b.test; }`), { t });
  for (const path of ['/a/1', '/a/2', '/b/1', '/a/3', '/b/2']) assert.equal((await get(proxy, path)).status, 200, path);
  assert.deepEqual(backend.handshakes.map((h) => [h.servername, h.resumed]), [
    ['a.test', false], ['a.test', true], ['b.test', false], ['a.test', true], ['b.test', true],
  ], 'a session made under one proxy_ssl_name is never offered under another');
});

test('TLS 1.2 with proxy_ssl_verify on: a verified session is resumed; one from a handshake that failed verification is never offered', async (t) => {
  const certs = await testCerts();
  const good = await startHttpsBackend({ cert: certs.localhost.cert, key: certs.localhost.key });
  const bad = await startHttpsBackend({ cert: certs.untrustedLocalhost.cert, key: certs.untrustedLocalhost.key });
  t.after(() => Promise.all([good.close(), bad.close()]));
  const verified = (addr: string): string => `proxy_pass https://${addr}; proxy_ssl_protocols TLSv1.2; proxy_ssl_verify on;
        proxy_ssl_trusted_certificate ${certs.ca.certFile}; proxy_ssl_name localhost;`;
  const proxy = await startTestProxy(serverConfig(`
      location /good { ${verified(good.addr)} }
      location /bad { ${verified(bad.addr)} }`), { t });
  assert.equal((await get(proxy, '/good/1')).status, 200);
  assert.equal((await get(proxy, '/good/2')).status, 200);
  assert.deepEqual(good.handshakes.map((h) => [h.protocol, h.resumed]), [['TLSv1.2', false], ['TLSv1.2', true]]);
  // TLS 1.2 hands out the session inside the handshake, before the proxy has checked the certificate.
  assert.equal((await get(proxy, '/bad/1')).status, 502);
  assert.equal((await get(proxy, '/bad/2')).status, 502);
  assert.equal(bad.handshakes.length, 2, 'the server completed both handshakes; the proxy refused the certificate');
  assert.deepEqual(bad.handshakes.map((h) => h.resumed), [false, false]);
  assert.equal(bad.requests.length, 0);
});

test('keepalive over TLS: keepalive_requests ends a connection after its last request, and the next one resumes the session', async (t) => {
  const { backend } = await localhostBackend(t);
  const proxy = await startTestProxy(config(`
      proxy_pass https://tls_backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";`, `upstream tls_backend { server ${backend.addr}; keepalive 4; keepalive_requests 2; }`), { t });
  for (let i = 0; i < 3; i++) assert.equal((await get(proxy, `/k${i}`)).status, 200);
  assert.equal(backend.requests.length, 3);
  assert.deepEqual(backend.handshakes.map((h) => h.resumed), [false, true], 'two requests on the first connection, the third on a resumed one');
});

test('a kept TLS connection that the server closes while idle is not used: the next request gets a new one', async (t) => {
  const { backend } = await localhostBackend(t);
  backend.server.keepAliveTimeout = 100;
  const proxy = await startTestProxy(config(`
      proxy_pass https://tls_backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";`, `upstream tls_backend { server ${backend.addr}; keepalive 4; }`), { t });
  assert.equal((await get(proxy, '/1')).status, 200);
  await waitFor(() => backend.openSockets() === 0, { timeoutMs: WAIT_MS, what: 'the backend to close its idle connection' });
  const errors = proxy.errorLines.length;
  assert.equal((await get(proxy, '/2')).status, 200);
  assert.equal(backend.handshakes.length, 2);
  assert.equal(proxy.errorLines.length, errors, 'the closed connection was never tried');
});

test('the TLS handshake counts in $upstream_connect_time and runs under proxy_connect_timeout', async (t) => {
  const certs = await testCerts();
  const slow = await startHttpsBackend({ cert: certs.localhost.cert, key: certs.localhost.key, handshakeDelayMs: 300 });
  // Accepts the connection and never answers the ClientHello.
  const silent = await startRawBackend();
  t.after(() => Promise.all([slow.close(), silent.close()]));
  const proxy = await startTestProxy(serverConfig(`
      location /slow { proxy_pass https://${slow.addr}; add_header X-Connect-Time $upstream_connect_time always; }
      location /silent { proxy_pass https://${silent.addr}; proxy_connect_timeout 300ms; }`), { t });
  const r = await get(proxy, '/slow');
  assert.equal(r.status, 200);
  const connectTime = Number(r.headers.get('x-connect-time'));
  assert.ok(connectTime >= 0.29, `connect time ${connectTime} s includes the 300 ms handshake`);
  const started = Date.now();
  assert.equal((await get(proxy, '/silent')).status, 504);
  assert.ok(Date.now() - started < 5000, 'proxy_connect_timeout, not proxy_read_timeout, ended the handshake');
  await proxy.waitForErrorLine(/upstream timed out \(110: Connection timed out\) while connecting to upstream/);
});

test('a session verified under one proxy_ssl_name is never resumed under another: the certificate is checked against each name', async (t) => {
  const { certs, backend } = await localhostBackend(t);
  // One location, one set of settings; the name comes from the request. Without SNI the server
  // cannot tell the names apart and resumes whatever session it is offered; resuming skips the
  // name check, so a session must only be offered under the name it was verified for.
  const proxy = await startTestProxy(config(`
      proxy_pass https://${backend.addr};
      proxy_ssl_verify on;
      proxy_ssl_trusted_certificate ${certs.ca.certFile};
      proxy_ssl_name $http_x_name;`), { t });
  const as = async (name: string): Promise<number> => {
    const res = await withTimeout(fetch(proxy.url('/'), { headers: { 'X-Name': name } }), WAIT_MS, `GET as ${name}`);
    await res.text();
    return res.status;
  };
  assert.equal(await as('localhost'), 200);
  assert.equal(await as('localhost'), 200);
  assert.equal(await as('wrong.test'), 502);
  await proxy.waitForErrorLine('upstream SSL certificate verify error: (certificate does not match "wrong.test") while SSL handshaking to upstream');
  // (The third handshake is the client's to refuse; whether the server saw it complete is a race.)
  assert.deepEqual(backend.handshakes.slice(0, 2).map((h) => h.resumed), [false, true]);
  assert.equal(backend.requests.length, 2);
});

test('proxy_ssl_session_reuse off: every connection makes a full handshake', async (t) => {
  const { backend } = await localhostBackend(t);
  const proxy = await startTestProxy(serverConfig(`
      proxy_ssl_session_reuse off;
      location /off { proxy_pass https://${backend.addr}; }
      location /on { proxy_pass https://${backend.addr}; proxy_ssl_session_reuse on; }`), { t });
  for (const path of ['/off/1', '/off/2', '/off/3', '/on/1', '/on/2']) assert.equal((await get(proxy, path)).status, 200, path);
  assert.deepEqual(backend.handshakes.map((h) => h.resumed), [false, false, false, false, true]);
});

test('a proxy_ssl_ciphers list OpenSSL has no cipher for: 502 and the reason in the error log, every time', async (t) => {
  const { backend } = await localhostBackend(t);
  const proxy = await startTestProxy(config(`proxy_pass https://${backend.addr}; proxy_ssl_protocols TLSv1.2; proxy_ssl_ciphers NO-SUCH-CIPHER;`), { t });
  assert.equal((await get(proxy, '/1')).status, 502);
  assert.equal((await get(proxy, '/2')).status, 502);
  await proxy.waitForErrorLine(/SSL_do_handshake\(\) failed \(SSL: .*no cipher match.*\) while SSL handshaking to upstream/i);
  assert.equal(backend.handshakes.length, 0);
});

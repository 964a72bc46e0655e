// TLS to upstream servers (BEHAVIOURS.md 36): proxy_pass https:// with verification on (a trusted
// CA works; an untrusted certificate or a wrong name gives 502 with the reason in the error log)
// and off, SNI only with proxy_ssl_server_name, ALPN http/1.1 (WebSocket upgrades included), a
// client certificate to the upstream, proxy_ssl_protocols, and keepalive connections over TLS.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import WebSocket from 'ws';
import { startHttpBackend } from '../helpers/backends.js';
import { testCerts } from '../helpers/certs.js';
import { startTestProxy } from '../helpers/proxy.js';
import { startHttpsBackend } from '../helpers/tls-backends.js';
import { once, withTimeout } from '../helpers/wait.js';

const WAIT_MS = 10_000;

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
  assert.deepEqual(backend.handshakes[0], { servername: null, alpn: 'http/1.1', protocol: 'TLSv1.3', clientCN: null, clientAuthorized: false });
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

/**
 * The client limits of ngx_http_core_module (issue 13): client_max_body_size (413 from the
 * declared length before any byte of the body is read, or while a chunked body streams; no
 * "100 Continue" before a 413; inherited per location, 0 for no limit), keepalive_requests (the
 * Nth response on a connection closes it), and that other Expect values pass as nginx lets them.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startHttpBackend } from '../helpers/backends.js';
import { testCerts } from '../helpers/certs.js';
import { h2Connect, h2Request } from '../helpers/h2-client.js';
import { conf } from '../helpers/config-text.js';
import { startTestProxy } from '../helpers/proxy.js';
import { completeResponse, headerValue, rawConnect, rawRequest, readUntil, waitForClose } from '../helpers/raw-client.js';
import { waitFor } from '../helpers/wait.js';

const infoConf = (http: string): string => conf(http, 'error_log stderr info;');

test('client_max_body_size: a declared body over the limit gets 413 and closes, the upstream never sees it; at the limit it passes', async (t) => {
  const backend = await startHttpBackend();
  t.after(() => backend.close());
  const proxy = await startTestProxy(infoConf(`
    client_max_body_size 10;
    server {
      listen 127.0.0.1:0;
      location / { proxy_pass http://${backend.addr}; }
      location /big { client_max_body_size 1k; proxy_pass http://${backend.addr}; }
      location /free { client_max_body_size 0; proxy_pass http://${backend.addr}; }
      location /ret { return 204; }
    }`), { t });

  const over = await rawRequest(proxy.port, 'POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n', { until: 'close' });
  assert.equal(over.head?.statusCode, 413);
  assert.equal(headerValue(over.head, 'connection'), 'close');
  assert.match(over.body.toString(), /413 Request Entity Too Large/);
  await proxy.waitForErrorLine(/\[error\] .*client intended to send too large body: 11 bytes, client: 127\.0\.0\.1, .*request: "POST \/x HTTP\/1\.1"/);
  // nginx's find-config phase comes before `return` (the rewrite phase).
  const ret = await rawRequest(proxy.port, 'POST /ret HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n', { until: 'close' });
  assert.equal(ret.head?.statusCode, 413);
  assert.equal(backend.requests.length, 0);

  const at = await rawRequest(proxy.port, 'POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n0123456789');
  assert.equal(at.head?.statusCode, 200);
  const big = await rawRequest(proxy.port, `POST /big HTTP/1.1\r\nHost: a\r\nContent-Length: 1024\r\n\r\n${'b'.repeat(1024)}`);
  assert.equal(big.head?.statusCode, 200);
  const free = await rawRequest(proxy.port, `POST /free HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n${'f'.repeat(100_000)}`);
  assert.equal(free.head?.statusCode, 200);
  assert.equal(backend.requests.length, 3);
  assert.equal(backend.requests[2]?.body.length, 100_000);
});

test('client_max_body_size: Expect: 100-continue gets a 413 without "100 Continue", or "100 Continue" once the body is wanted', async (t) => {
  const backend = await startHttpBackend();
  t.after(() => backend.close());
  const proxy = await startTestProxy(infoConf(`
    client_max_body_size 10;
    server { listen 127.0.0.1:0; location / { proxy_pass http://${backend.addr}; } }`), { t });

  const refused = await rawRequest(proxy.port, 'POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 11\r\n\r\n', { until: 'close' });
  assert.equal(refused.head?.statusCode, 413);
  assert.doesNotMatch(refused.data.toString('latin1'), /100 Continue/);

  const client = await rawConnect(proxy.port);
  t.after(() => client.destroy());
  client.write('POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n');
  await readUntil(client, 'HTTP/1.1 100 Continue\r\n\r\n');
  client.write('hello');
  const answer = await readUntil(client, '"body":"hello"');
  assert.match(answer.toString(), /^HTTP\/1\.1 200 /);
  // The proxy answered the expectation itself: the upstream is not asked again (nginx drops Expect).
  assert.equal(backend.requests[0]?.headers.expect, undefined);

  // nginx ignores expectations it does not know; Node alone would answer 417.
  const other = await rawRequest(proxy.port, 'GET / HTTP/1.1\r\nHost: a\r\nExpect: something-else\r\n\r\n');
  assert.equal(other.head?.statusCode, 200);
});

test('client_max_body_size: a chunked body that outgrows the limit while streaming ends the try with 413', async (t) => {
  // The backend waits for the whole body before it answers, as most applications do.
  const backend = await startHttpBackend((req, res) => {
    req.resume();
    req.on('end', () => res.end('whole'));
  });
  t.after(() => backend.close());
  const proxy = await startTestProxy(infoConf(`
    client_max_body_size 100;
    server { listen 127.0.0.1:0; location / { proxy_pass http://${backend.addr}; } }`), { t });

  const chunk = (s: string): string => `${s.length.toString(16)}\r\n${s}\r\n`;
  const small = await rawRequest(proxy.port, `POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n${chunk('x'.repeat(60))}${chunk('y'.repeat(40))}0\r\n\r\n`);
  assert.equal(small.head?.statusCode, 200);
  assert.equal(small.body.toString(), 'whole');

  const client = await rawConnect(proxy.port);
  t.after(() => client.destroy());
  client.write(`POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n${chunk('x'.repeat(60))}`);
  await waitFor(() => backend.requests.length === 1, { what: 'the request to reach the upstream' });
  client.write(chunk('y'.repeat(41)));
  const answer = await readUntil(client, '</html>');
  assert.match(answer.toString(), /^HTTP\/1\.1 413 Request Entity Too Large\r\n/);
  await waitForClose(client);
  await proxy.waitForErrorLine(/\[error\] .*client intended to send too large chunked body: 60\+41 bytes/);
});

test('keepalive_requests: the Nth response on a connection says Connection: close and the connection ends', async (t) => {
  const backend = await startHttpBackend();
  t.after(() => backend.close());
  const proxy = await startTestProxy(conf(`
    keepalive_requests 3;
    server { listen 127.0.0.1:0; location / { proxy_pass http://${backend.addr}; } location /ret { return 200 "r"; } }`), { t });
  const client = await rawConnect(proxy.port);
  t.after(() => client.destroy());
  for (const [i, path] of ['/a', '/ret', '/b'].entries()) {
    client.write(`GET ${path} HTTP/1.1\r\nHost: a\r\n\r\n`);
    const response = completeResponse(await readUntil(client, (b) => completeResponse(b, 'GET') !== null), 'GET');
    assert.equal(response?.head.statusCode, 200);
    const close = headerValue(response?.head, 'connection');
    if (i < 2) assert.notEqual(close, 'close', `request ${i + 1}`);
    else assert.equal(close, 'close', 'the third response ends the connection');
  }
  await waitForClose(client);
});

test('client_max_body_size over HTTP/2: a declared length over it gets 413; a body without one is counted as it streams', async (t) => {
  const backend = await startHttpBackend((req, res) => {
    req.resume();
    req.on('end', () => res.end('whole'));
  });
  t.after(() => backend.close());
  const certs = await testCerts();
  const proxy = await startTestProxy(infoConf(`
    client_max_body_size 100;
    server {
      listen 127.0.0.1:0 ssl http2;
      ssl_certificate ${certs.localhost.certFile};
      ssl_certificate_key ${certs.localhost.keyFile};
      location / { proxy_pass http://${backend.addr}; }
    }`), { t });
  const client = await h2Connect(proxy.port, { ca: certs.ca.cert });
  t.after(() => client.close());
  const post = { ':method': 'POST', ':path': '/', ':authority': 'localhost', ':scheme': 'https' };

  const declared = await h2Request(client, { ...post, 'content-length': '101' }, 'x'.repeat(101));
  assert.equal(declared.status, 413);
  await proxy.waitForErrorLine(/client intended to send too large body: 101 bytes/);
  const fits = await h2Request(client, post, ['x'.repeat(60), 'y'.repeat(40)]);
  assert.equal(fits.status, 200);
  assert.equal(fits.text, 'whole');
  const streamed = await h2Request(client, post, ['x'.repeat(60), 'y'.repeat(60)]);
  assert.equal(streamed.status, 413);
  await proxy.waitForErrorLine(/client intended to send too large chunked body: (0\+120|60\+60) bytes/);
});

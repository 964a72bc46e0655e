/**
 * proxy_buffer_size bounds the upstream response head as in nginx (a larger one is 502, "upstream
 * sent too big header", an invalid_header for proxy_next_upstream); proxy_buffers and
 * proxy_busy_buffers_size are checked and size nothing, since bodies stream. Runs under both
 * upstream clients (scripts/test.mjs, node-client pass).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startRawBackend } from '../helpers/backends.js';
import { conf } from '../helpers/config-text.js';
import { startTestProxy } from '../helpers/proxy.js';
import { headerValue, rawRequest } from '../helpers/raw-client.js';

/** An upstream whose response head carries a `bytes`-long cookie. */
async function bigHeadBackend(t: import('node:test').TestContext, bytes: number) {
  const backend = await startRawBackend(async (c) => {
    await c.readUntil('\r\n\r\n');
    c.socket.end(`HTTP/1.1 200 OK\r\nSet-Cookie: s=${'x'.repeat(bytes)}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok`);
  });
  t.after(() => backend.close());
  return backend;
}

test('proxy_buffer_size: a response head over it is a 502 with nginx\'s line; a larger setting takes it', async (t) => {
  const big = await bigHeadBackend(t, 6000);
  const small = await bigHeadBackend(t, 100);
  const proxy = await startTestProxy(conf(`
    upstream both { server ${big.addr}; server ${small.addr}; }
    server {
      listen 127.0.0.1:0;
      location /default { proxy_pass http://${big.addr}; }
      location /wide { proxy_buffer_size 16k; proxy_buffers 4 16k; proxy_busy_buffers_size 32k; proxy_pass http://${big.addr}; }
      location /next { proxy_next_upstream invalid_header; proxy_pass http://both; }
    }`), { t });
  const refused = await rawRequest(proxy.port, 'GET /default HTTP/1.1\r\nHost: a\r\n\r\n');
  assert.equal(refused.head?.statusCode, 502);
  await proxy.waitForErrorLine(new RegExp(`\\[error\\] .*upstream sent too big header while reading response header from upstream, .*upstream: "http://${big.addr}/default"`));
  const wide = await rawRequest(proxy.port, 'GET /wide HTTP/1.1\r\nHost: a\r\n\r\n');
  assert.equal(wide.head?.statusCode, 200);
  assert.equal(wide.body.toString(), 'ok');
  // invalid_header in proxy_next_upstream passes it on to the next server.
  for (let i = 0; i < 2; i++) {
    const next = await rawRequest(proxy.port, 'GET /next HTTP/1.1\r\nHost: a\r\n\r\n');
    assert.equal(next.head?.statusCode, 200, `request ${i + 1}`);
  }
});

test('proxy_pass_request_headers off sends only the rules\' headers; proxy_pass_request_body off sends no body', async (t) => {
  const backend = await startRawBackend(async (c) => {
    await c.readUntil('\r\n\r\n');
    c.socket.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok');
  });
  t.after(() => backend.close());
  const proxy = await startTestProxy(conf(`
    server {
      listen 127.0.0.1:0;
      location /noheaders { proxy_pass_request_headers off; proxy_set_header X-Kept yes; proxy_pass http://${backend.addr}; }
      location /nobody { proxy_pass_request_body off; proxy_pass http://${backend.addr}; }
    }`), { t });
  const r1 = await rawRequest(proxy.port, 'GET /noheaders HTTP/1.1\r\nHost: a\r\nCookie: secret=1\r\nX-Client: 1\r\n\r\n');
  assert.equal(r1.head?.statusCode, 200);
  const sent1 = backend.connections[0]!.received.toString('latin1');
  assert.match(sent1, /^GET \/noheaders HTTP\/1\.[01]\r\n/);
  assert.match(sent1, /\r\nX-Kept: yes\r\n/);
  assert.match(sent1, /\r\nHost: /, 'the rules\' defaults (Host, Connection) still go');
  assert.doesNotMatch(sent1, /Cookie|X-Client/);

  const r2 = await rawRequest(proxy.port, 'POST /nobody HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nX-Client: 1\r\n\r\nbody');
  assert.equal(r2.head?.statusCode, 200);
  const sent2 = backend.connections[1]!.received.toString('latin1');
  assert.match(sent2, /^POST \/nobody HTTP\/1\.[01]\r\n/);
  assert.match(sent2, /\r\nX-Client: 1\r\n/);
  assert.doesNotMatch(sent2, /Content-Length|Transfer-Encoding|body$/i);
});

test('charset names the charset of charset_types responses that name none: proxied, returned and error pages', async (t) => {
  const backend = await startRawBackend(async (c) => {
    const head = (await c.readUntil('\r\n\r\n')).toString('latin1');
    const type = /^GET \S*\/json/.test(head) ? 'application/json' : /^GET \S*\/named/.test(head) ? 'text/html; charset=iso-8859-1' : 'text/html';
    c.socket.end(`HTTP/1.1 200 OK\r\nContent-Type: ${type}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok`);
  });
  t.after(() => backend.close());
  const proxy = await startTestProxy(conf(`
    charset utf-8;
    server {
      listen 127.0.0.1:0;
      location / { proxy_pass http://${backend.addr}; }
      location /ret { return 200 "text"; }
      location /err { return 404; }
      location /off { charset off; proxy_pass http://${backend.addr}; }
      location /all { charset_types *; proxy_pass http://${backend.addr}; }
    }`), { t });
  const type = async (path: string): Promise<string | undefined> => headerValue((await rawRequest(proxy.port, `GET ${path} HTTP/1.1\r\nHost: a\r\n\r\n`)).head!, 'content-type');
  assert.equal(await type('/page'), 'text/html; charset=utf-8');
  assert.equal(await type('/named'), 'text/html; charset=iso-8859-1', 'a named charset is kept');
  assert.equal(await type('/json'), 'application/json', 'not a charset_types type');
  assert.equal(await type('/all/json'), 'application/json; charset=utf-8');
  assert.equal(await type('/ret'), 'text/plain; charset=utf-8');
  assert.equal(await type('/err'), 'text/html; charset=utf-8');
  assert.equal(await type('/off/page'), 'text/html');
});

test('proxy_hide_header hides an upstream header; proxy_pass_header passes one hidden by default', async (t) => {
  const backend = await startRawBackend(async (c) => {
    await c.readUntil('\r\n\r\n');
    c.socket.end('HTTP/1.1 200 OK\r\nX-Powered-By: PHP\r\nX-Accel-Expires: 60\r\nX-Pad: y\r\nX-Keep: 1\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok');
  });
  t.after(() => backend.close());
  const proxy = await startTestProxy(conf(`
    proxy_hide_header X-Powered-By;
    server {
      listen 127.0.0.1:0;
      location / { proxy_pass http://${backend.addr}; }
      location /pass { proxy_pass_header X-Accel-Expires; proxy_pass http://${backend.addr}; }
      location /own { proxy_hide_header X-Keep; proxy_pass http://${backend.addr}; }
    }`), { t });
  const names = async (path: string): Promise<string[]> => (await rawRequest(proxy.port, `GET ${path} HTTP/1.1\r\nHost: a\r\n\r\n`)).head!.headers.map(([n]) => n.toLowerCase());
  const plain = await names('/');
  assert.ok(!plain.includes('x-powered-by') && !plain.includes('x-accel-expires') && !plain.includes('x-pad'));
  assert.ok(plain.includes('x-keep'));
  const passed = await names('/pass');
  assert.ok(passed.includes('x-accel-expires') && !passed.includes('x-pad') && !passed.includes('x-powered-by'));
  // A level with proxy_hide_header lines of its own inherits none from above.
  const own = await names('/own');
  assert.ok(own.includes('x-powered-by') && !own.includes('x-keep'));
});

test('proxy_pass_header Server and Date: the upstream\'s go to the client instead of Sluice\'s own', async (t) => {
  const backend = await startRawBackend(async (c) => {
    await c.readUntil('\r\n\r\n');
    c.socket.end('HTTP/1.1 200 OK\r\nServer: app/1.0\r\nDate: Tue, 01 Dec 2026 10:00:00 GMT\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok');
  });
  t.after(() => backend.close());
  const proxy = await startTestProxy(conf(`
    server {
      listen 127.0.0.1:0;
      location / { proxy_pass http://${backend.addr}; }
      location /pass { proxy_pass_header Server; proxy_pass_header Date; proxy_pass http://${backend.addr}; }
    }`), { t });
  const own = (await rawRequest(proxy.port, 'GET / HTTP/1.1\r\nHost: a\r\n\r\n')).head!;
  assert.deepEqual(own.headers.filter(([n]) => /^(server|date)$/i.test(n)).map(([n, v]) => [n.toLowerCase(), n.toLowerCase() === 'date' ? v !== 'Tue, 01 Dec 2026 10:00:00 GMT' : v]), [['server', 'sluice'], ['date', true]]);
  const passed = (await rawRequest(proxy.port, 'GET /pass HTTP/1.1\r\nHost: a\r\n\r\n')).head!;
  assert.deepEqual(passed.headers.filter(([n]) => /^(server|date)$/i.test(n)).map(([n, v]) => [n.toLowerCase(), v]), [['server', 'app/1.0'], ['date', 'Tue, 01 Dec 2026 10:00:00 GMT']]);
});

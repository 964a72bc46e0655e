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
import { rawRequest } from '../helpers/raw-client.js';

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

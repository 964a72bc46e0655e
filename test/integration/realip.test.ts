/**
 * nginx's realip module: from a set_real_ip_from address, real_ip_header names the client; it
 * becomes $remote_addr for the upstream headers, allow/deny, ip_hash and the logs, while
 * $realip_remote_addr keeps the connection's address. real_ip_recursive skips trusted hops.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startHttpBackend } from '../helpers/backends.js';
import { conf } from '../helpers/config-text.js';
import { startTestProxy } from '../helpers/proxy.js';
import { rawRequest } from '../helpers/raw-client.js';

test('set_real_ip_from + real_ip_header: the named client is $remote_addr for headers, allow/deny and the log', async (t) => {
  const backend = await startHttpBackend();
  t.after(() => backend.close());
  const proxy = await startTestProxy(conf(`
    proxy_set_header X-Real-IP $remote_addr;
    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    proxy_set_header X-Conn $realip_remote_addr;
    server {
      listen 127.0.0.1:0;
      set_real_ip_from 127.0.0.0/8;
      set_real_ip_from 10.0.0.0/8;
      location /xrip { proxy_pass http://${backend.addr}; }
      location /xff { real_ip_header X-Forwarded-For; proxy_pass http://${backend.addr}; }
      location /rec { real_ip_header X-Forwarded-For; real_ip_recursive on; proxy_pass http://${backend.addr}; }
      location /untrusted { set_real_ip_from 192.0.2.1; real_ip_header X-Forwarded-For; proxy_pass http://${backend.addr}; }
      location /deny { real_ip_header X-Forwarded-For; deny 203.0.113.7; proxy_pass http://${backend.addr}; }
    }`), { t });
  const send = async (path: string, header: string): Promise<Record<string, string | string[]>> => {
    const before = backend.requests.length;
    const r = await rawRequest(proxy.port, `GET ${path} HTTP/1.1\r\nHost: a\r\n${header}\r\n\r\n`);
    assert.equal(r.head?.statusCode, 200, path);
    return backend.requests[before]!.headers;
  };
  // Server level: X-Real-IP is the default header.
  let h = await send('/xrip', 'X-Real-IP: 198.51.100.4');
  assert.equal(h['x-real-ip'], '198.51.100.4');
  assert.equal(h['x-conn'], '127.0.0.1');
  // X-Forwarded-For: the last address, without recursion even when it is trusted.
  h = await send('/xff', 'X-Forwarded-For: 203.0.113.7, 10.1.1.1');
  assert.equal(h['x-real-ip'], '10.1.1.1');
  assert.equal(h['x-forwarded-for'], '203.0.113.7, 10.1.1.1, 10.1.1.1', '$proxy_add_x_forwarded_for appends $remote_addr');
  // Recursive: trusted hops are skipped from the right.
  h = await send('/rec', 'X-Forwarded-For: 203.0.113.7, 10.1.1.1, 10.2.2.2');
  assert.equal(h['x-real-ip'], '203.0.113.7');
  // A location whose own list does not trust the connection: nothing changes (the server's
  // list is not inherited by a level with its own).
  h = await send('/untrusted', 'X-Forwarded-For: 203.0.113.7');
  assert.equal(h['x-real-ip'], '127.0.0.1');
  // A header that is no address changes nothing.
  h = await send('/xff', 'X-Forwarded-For: not-an-address');
  assert.equal(h['x-real-ip'], '127.0.0.1');

  const denied = await rawRequest(proxy.port, 'GET /deny HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 203.0.113.7\r\n\r\n');
  assert.equal(denied.head?.statusCode, 403);
  await proxy.waitForErrorLine(/access forbidden by rule, client: 203\.0\.113\.7,/);
  const allowed = await rawRequest(proxy.port, 'GET /deny HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 203.0.113.8\r\n\r\n');
  assert.equal(allowed.head?.statusCode, 200);
});

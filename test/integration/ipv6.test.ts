/** IPv6 on both sides: `listen [::1]:PORT`, `proxy_pass http://[::1]:PORT`, `$remote_addr` and `$server_addr`. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import WebSocket from 'ws';
import { startEchoServer } from '../../src/echo/echo-server.js';
import { startTestProxy } from '../helpers/proxy.js';
import { withTimeout } from '../helpers/wait.js';

test('listen [::1] and an IPv6 upstream carry HTTP and WebSocket; variables show IPv6 addresses', async (t) => {
  const seen: Record<string, string | string[] | undefined>[] = [];
  const backend = createServer((req, res) => {
    seen.push(req.headers);
    res.end(`remote=${req.socket.remoteAddress}`);
  });
  await new Promise<void>((r) => backend.listen(0, '::1', r));
  t.after(() => new Promise<void>((r) => { backend.closeAllConnections(); backend.close(() => r()); }));
  const echo = await startEchoServer({ host: '::1', id: 'v6' });
  t.after(() => echo.close());
  const bport = (backend.address() as AddressInfo).port;
  const proxy = await startTestProxy(`events {}
http {
  server {
    listen [::1]:0;
    location /ws { proxy_pass http://[::1]:${echo.port}; }
    location / {
      proxy_pass http://[::1]:${bport};
      proxy_set_header X-Real-IP $remote_addr;
      proxy_set_header X-Server $server_addr:$server_port;
    }
  }
}`, { t });
  assert.equal(proxy.listeners[0]!.key, `[::1]:0`);
  assert.equal(proxy.listeners[0]!.host, '::1');
  const body = await new Promise<string>((resolve, reject) => {
    const req = request({ host: '::1', port: proxy.port, path: '/x', family: 6 }, (res) => {
      let b = '';
      res.on('data', (c: Buffer) => (b += c));
      res.on('end', () => resolve(b));
    });
    req.on('error', reject);
    req.end();
  });
  assert.equal(body, 'remote=::1');
  assert.equal(seen[0]!['x-real-ip'], '::1');
  assert.equal(seen[0]!['x-server'], `::1:${proxy.port}`);
  assert.equal(seen[0]!['host'], `[::1]:${bport}`, 'Host is $proxy_host, the address as written in proxy_pass');
  const ws = new WebSocket(`ws://[::1]:${proxy.port}/ws`);
  t.after(() => ws.terminate());
  await withTimeout(new Promise((r, j) => { ws.once('open', r); ws.once('error', j); }), 5000, 'the WebSocket to open');
  const reply = withTimeout(new Promise<string>((r) => ws.once('message', (m) => r(m.toString()))), 5000, 'the echo');
  ws.send('over v6');
  assert.equal(await reply, 'over v6');
});

test('listen [::]:PORT ipv6only=off also takes IPv4 connections; the default (on) takes only IPv6', async (t) => {
  const dual = await startTestProxy(`events {}
http { server { listen [::]:0 ipv6only=off backlog=64 so_keepalive=on; return 200 "dual"; } }`, { t });
  const only6 = await startTestProxy(`events {}
http { server { listen [::]:0; return 200 "v6"; } }`, { t });
  const get = (host: string, port: number): Promise<string> => new Promise<string>((resolve, reject) => {
    const req = request({ host, port, path: '/' }, (res) => {
      let b = '';
      res.on('data', (c: Buffer) => (b += c));
      res.on('end', () => resolve(b));
    });
    req.on('error', reject);
    req.end();
  });
  assert.equal(await withTimeout(get('127.0.0.1', dual.port), 5000, 'IPv4 to a dual-stack listener'), 'dual');
  assert.equal(await withTimeout(get('::1', dual.port), 5000, 'IPv6 to a dual-stack listener'), 'dual');
  assert.equal(await withTimeout(get('::1', only6.port), 5000, 'IPv6 to an ipv6only listener'), 'v6');
  await assert.rejects(withTimeout(get('127.0.0.1', only6.port), 5000, 'IPv4 to an ipv6only listener'), /ECONNREFUSED/);
});

test('set_real_ip_from matches an IPv4 client of a dual-stack listener (::ffff:a.b.c.d) by its IPv4 address, as nginx', async (t) => {
  const proxy = await startTestProxy(`events {}
http { server { listen [::]:0 ipv6only=off; set_real_ip_from 127.0.0.1; return 200 "$remote_addr $realip_remote_addr"; } }`, { t });
  const get = (): Promise<string> => new Promise<string>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: proxy.port, path: '/', headers: { 'X-Real-IP': '198.51.100.4' } }, (res) => {
      let b = '';
      res.on('data', (c: Buffer) => (b += c));
      res.on('end', () => resolve(b));
    });
    req.on('error', reject);
    req.end();
  });
  assert.equal(await withTimeout(get(), 5000, 'IPv4 to a dual-stack listener'), '198.51.100.4 ::ffff:127.0.0.1');
});

/**
 * forward_proxy: absolute-form requests (`GET http://host/...`, `ws://` upgrades) and CONNECT
 * tunnels from Node clients (raw sockets, https.request and the `ws` client through
 * https-proxy-agent), the allowlist (names, wildcards, addresses, ports), loopback and private
 * addresses refused unless an address rule names them, Proxy-Authorization against an htpasswd
 * file (bcrypt included), the access log, the tunnel idle timeout, and the config checks.
 * curl and Chromium drive it in test/e2e/forward-proxy.e2e.test.ts.
 */
import assert from 'node:assert/strict';
import { get as httpsGet } from 'node:https';
import type { IncomingMessage } from 'node:http';
import { test } from 'node:test';
import bcrypt from 'bcryptjs';
import { HttpsProxyAgent } from 'https-proxy-agent';
import WebSocket from 'ws';
import { formatProblem, loadConfig } from '../../src/config/load.js';
import { startHttpBackend } from '../helpers/backends.js';
import { testCerts } from '../helpers/certs.js';
import { conf } from '../helpers/config-text.js';
import { waitForFileLine } from '../helpers/log-files.js';
import { refusedPort } from '../helpers/ports.js';
import { startTestProxy } from '../helpers/proxy.js';
import { headerValue, rawConnect, rawRequest, readFrame, readUntil, maskedFrame, parseResponseHead, waitForClose, wsHandshakeRequest } from '../helpers/raw-client.js';
import { tempDir } from '../helpers/temp.js';
import { startHttpsBackend } from '../helpers/tls-backends.js';
import { once, waitFor, withTimeout } from '../helpers/wait.js';
import { parsePrometheus, sampleValue } from '../helpers/prometheus.js';

function proxyGet(port: number, url: string, extra = ''): ReturnType<typeof rawRequest> {
  const host = /^[a-z]+:\/\/([^/]+)/.exec(url)?.[1] ?? 'x';
  return rawRequest(port, `GET ${url} HTTP/1.1\r\nHost: ${host}\r\nProxy-Connection: keep-alive\r\n${extra}Connection: close\r\n\r\n`);
}

function connectRequest(port: number, authority: string, extra = ''): ReturnType<typeof rawRequest> {
  return rawRequest(port, `CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n${extra}\r\n`);
}

const proxyBasic = (user: string, password: string): string => `Proxy-Authorization: Basic ${Buffer.from(`${user}:${password}`).toString('base64')}\r\n`;

test('forward_proxy: absolute-form GET goes to the destination in origin form without the proxy headers, logged as sent', async (t) => {
  const backend = await startHttpBackend();
  t.after(() => backend.close());
  const dir = tempDir(t);
  const proxy = await startTestProxy(conf(`
    access_log ${dir.join('access.log')};
    server { listen 127.0.0.1:0; forward_proxy on; forward_proxy_allow 127.0.0.1:${backend.port}; }`), { t });
  const r = await proxyGet(proxy.port, `http://127.0.0.1:${backend.port}/path/x?y=1`, 'Proxy-Authorization: Basic eDp5\r\nX-Kept: yes\r\n');
  assert.equal(r.head?.statusCode, 200);
  const seen = backend.requests.at(-1)!;
  assert.equal(seen.url, '/path/x?y=1');
  assert.equal(seen.headers['host'], `127.0.0.1:${backend.port}`);
  assert.equal(seen.headers['x-kept'], 'yes');
  assert.equal(seen.headers['proxy-authorization'], undefined);
  assert.equal(seen.headers['proxy-connection'], undefined);
  await waitForFileLine(dir.join('access.log'), `"GET http://127.0.0.1:${backend.port}/path/x?y=1 HTTP/1.1" 200`);

  // The target's authority is the Host (RFC 9112 3.2.2), whatever the client's Host says; a POST
  // waiting for 100 Continue gets the destination's.
  const s = await rawConnect(proxy.port);
  t.after(() => s.destroy());
  s.write(`POST http://127.0.0.1:${backend.port}/form HTTP/1.1\r\nHost: elsewhere.test\r\nContent-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n`);
  assert.equal(parseResponseHead(await readUntil(s, '\r\n\r\n')).statusCode, 100);
  s.write('hello');
  assert.equal(parseResponseHead(await readUntil(s, '\r\n\r\n')).statusCode, 200);
  assert.equal(backend.requests.at(-1)?.headers['host'], `127.0.0.1:${backend.port}`);
  assert.equal(backend.requests.at(-1)?.body, 'hello');

  // A URL without a port is port 80, which the rule (one port) does not allow; nothing connects.
  const before = backend.requests.length;
  assert.equal((await proxyGet(proxy.port, 'http://127.0.0.1/')).head?.statusCode, 403);
  // Only http:// and ws:// are forwarded in absolute form; https:// goes through CONNECT.
  assert.equal((await proxyGet(proxy.port, `https://127.0.0.1:${backend.port}/`)).head?.statusCode, 400);
  assert.equal(backend.requests.length, before);
  // An origin-form request is the server's own (no location: its 404).
  assert.equal((await rawRequest(proxy.port, 'GET /nothing HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')).head?.statusCode, 404);
});

test('forward_proxy: loopback, private and metadata addresses are refused unless an address rule as narrow names them', async (t) => {
  const backend = await startHttpBackend();
  t.after(() => backend.close());
  const open = await startTestProxy(conf(`
    server { listen 127.0.0.1:0; forward_proxy on; forward_proxy_allow localhost:* *.localhost:* 0.0.0.0/0:* [::/0]:* 10.0.0.0/8; }`), { t });
  // The name is allowed, but it resolves to 127.0.0.1: no rule names loopback itself.
  const byName = await proxyGet(open.port, `http://localhost:${backend.port}/`);
  assert.equal(byName.head?.statusCode, 403);
  await open.waitForErrorLine(new RegExp(`forward proxy destination is not allowed: "localhost:${backend.port}" \\(resolves to [^)]*127\\.0\\.0\\.1`));
  // 0.0.0.0/0 is wider than 127.0.0.0/8 and 169.254.0.0/16: no permission for them.
  assert.equal((await proxyGet(open.port, `http://127.0.0.1:${backend.port}/`)).head?.statusCode, 403);
  assert.equal((await proxyGet(open.port, 'http://169.254.169.254/latest/meta-data/')).head?.statusCode, 403);
  assert.equal((await proxyGet(open.port, `http://[::ffff:127.0.0.1]:${backend.port}/`)).head?.statusCode, 403);
  assert.equal((await connectRequest(open.port, `127.0.0.1:${backend.port}`)).head?.statusCode, 403);
  assert.equal((await connectRequest(open.port, '0.0.0.0:22')).head?.statusCode, 403);
  assert.equal(backend.requests.length, 0);

  // The server's allow/deny say who may use the proxy at all.
  const fenced = await startTestProxy(conf(`
    server { listen 127.0.0.1:0; forward_proxy on; forward_proxy_allow 127.0.0.1:${backend.port}; allow 10.0.0.0/8; deny all; }`), { t });
  assert.equal((await connectRequest(fenced.port, `127.0.0.1:${backend.port}`)).head?.statusCode, 403);
  await fenced.waitForErrorLine('access forbidden by rule, client: 127.0.0.1');

  // Nothing is allowed without forward_proxy_allow; a name no rule could allow is not even resolved.
  const closed = await startTestProxy(conf(`server { listen 127.0.0.1:0; forward_proxy on; }`), { t });
  assert.equal((await connectRequest(closed.port, 'example.invalid:443')).head?.statusCode, 403);
  await closed.waitForErrorLine('forward proxy destination is not allowed: "example.invalid:443", client: 127.0.0.1');
  assert.equal((await proxyGet(closed.port, `http://127.0.0.1:${backend.port}/`)).head?.statusCode, 403);

  // An explicit address rule opens loopback, on its ports only; wildcards match subdomains.
  const allowed = await startTestProxy(conf(`
    server { listen 127.0.0.1:0; forward_proxy on; forward_proxy_allow 127.0.0.0/8:${backend.port}-${backend.port} *.example.test; }`), { t });
  assert.equal((await proxyGet(allowed.port, `http://localhost:${backend.port}/ok`)).head?.statusCode, 200);
  assert.equal(backend.requests.at(-1)?.url, '/ok');
  assert.equal((await connectRequest(allowed.port, `127.0.0.1:${backend.port + (backend.port === 65535 ? -1 : 1)}`)).head?.statusCode, 403);
  // A CONNECT without a port is malformed.
  assert.equal((await connectRequest(allowed.port, '127.0.0.1')).head?.statusCode, 400);
});

test('forward_proxy: CONNECT tunnels TLS end to end (https.request and a wss:// WebSocket through https-proxy-agent)', async (t) => {
  const certs = await testCerts();
  const backend = await startHttpsBackend({ cert: certs.localhost.cert, key: certs.localhost.key });
  t.after(() => new Promise<void>((r) => backend.server.close(() => r())).then(() => undefined));
  t.after(() => backend.server.closeAllConnections());
  const dir = tempDir(t);
  const proxy = await startTestProxy(conf(`
    access_log ${dir.join('access.log')};
    server {
      listen 127.0.0.1:0;
      forward_proxy on;
      forward_proxy_allow 127.0.0.1:${backend.port};
      location = /metrics { sluice_metrics; }
    }`), { t });
  const agent = new HttpsProxyAgent(`http://127.0.0.1:${proxy.port}`);
  t.after(() => agent.destroy());
  const res = await withTimeout(new Promise<IncomingMessage>((resolve, reject) => {
    httpsGet(`https://localhost:${backend.port}/over-tls`, { agent, ca: certs.ca.cert }, resolve).on('error', reject);
  }), 5000, 'https through the proxy');
  assert.equal(res.statusCode, 200);
  res.resume();
  await once(res, 'end');
  assert.equal(backend.handshakes.at(-1)?.servername, 'localhost');
  assert.equal(backend.requests.at(-1)?.url, '/over-tls');
  await waitForFileLine(dir.join('access.log'), `"CONNECT localhost:${backend.port} HTTP/1.1" 200`);

  const ws = new WebSocket(`wss://localhost:${backend.port}/echo`, { agent, ca: certs.ca.cert });
  const message = once(ws, 'message');
  await once(ws, 'open');
  ws.send('through the tunnel');
  const [data] = await message;
  assert.equal(String(data), 'through the tunnel');
  ws.close();
  await once(ws, 'close');

  // Counted like other tunnels, under the upstream name "forward_proxy"; no WebSocket handshake.
  agent.destroy();
  await waitFor(async () => {
    const m = parsePrometheus((await rawRequest(proxy.port, 'GET /metrics HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')).body.toString());
    return sampleValue(m, 'sluice_upstream_tunnels_opened_total', { upstream: 'forward_proxy' }) === 2
      && (sampleValue(m, 'sluice_http_requests_total', { server_name: '_', status: '200' }) ?? 0) >= 1
      && sampleValue(m, 'sluice_websocket_handshakes_total', { server_name: '_', status: '101' }) === undefined;
  }, { what: 'the tunnels in the metrics' });
});

test('forward_proxy: a ws:// upgrade in absolute form becomes a WebSocket tunnel to the destination', async (t) => {
  const backend = await startHttpBackend();
  t.after(() => backend.close());
  const proxy = await startTestProxy(conf(`
    server { listen 127.0.0.1:0; forward_proxy on; forward_proxy_allow 127.0.0.1:${backend.port}; }`), { t });
  const s = await rawConnect(proxy.port);
  t.after(() => s.destroy());
  const handshake = wsHandshakeRequest({ path: `ws://127.0.0.1:${backend.port}/chat`, host: `127.0.0.1:${backend.port}`, extraHeaders: { 'Proxy-Connection': 'keep-alive' } });
  s.write(handshake);
  const head = parseResponseHead(await readUntil(s, '\r\n\r\n'));
  assert.equal(head.statusCode, 101);
  assert.equal(backend.requests.at(-1)?.url, '/chat');
  assert.equal(backend.requests.at(-1)?.headers['proxy-connection'], undefined);
  s.write(maskedFrame(1, 'ping over ws'));
  const frame = await readFrame(s);
  assert.equal(frame.payload.toString(), 'ping over ws');
  s.end(maskedFrame(8, Buffer.from([0x03, 0xe8])));
  await waitForClose(s);
});

test('forward_proxy_auth_basic: 407 with Proxy-Authenticate, bcrypt/SHA/apr1 users, for absolute form and CONNECT', async (t) => {
  const backend = await startHttpBackend();
  t.after(() => backend.close());
  const dir = tempDir(t);
  const users = dir.write('proxy.htpasswd', [
    `bc:${bcrypt.hashSync('bcrypt-pw', 4).replace(/^\$2b\$/, '$2y$')}`,
    'sha:{SHA}WO51BSqh38jteqySD2jTmVRjTeI=', // plainsha
    'apr:$apr1$abcdefgh$M2T3erDstkD7SsE2QQnfH0', // s3cret
    '',
  ].join('\n'));
  const proxy = await startTestProxy(conf(`
    server {
      listen 127.0.0.1:0;
      forward_proxy on;
      forward_proxy_allow 127.0.0.1:${backend.port};
      forward_proxy_auth_basic "Proxy users";
      forward_proxy_auth_basic_user_file ${users};
    }`), { t });
  const url = `http://127.0.0.1:${backend.port}/secret`;
  const none = await proxyGet(proxy.port, url);
  assert.equal(none.head?.statusCode, 407);
  assert.equal(headerValue(none.head!, 'proxy-authenticate'), 'Basic realm="Proxy users"');
  assert.equal(headerValue(none.head!, 'www-authenticate'), undefined);
  for (const [user, password] of [['bc', 'bcrypt-pw'], ['sha', 'plainsha'], ['apr', 's3cret']] as const) {
    const ok = await proxyGet(proxy.port, url, proxyBasic(user, password));
    assert.equal(ok.head?.statusCode, 200, user);
    assert.equal(backend.requests.at(-1)?.headers['proxy-authorization'], undefined);
    assert.equal((await proxyGet(proxy.port, url, proxyBasic(user, `${password}!`))).head?.statusCode, 407, `${user}, wrong password`);
  }
  await proxy.waitForErrorLine(/\[error\] .*user "bc": password mismatch, client: 127\.0\.0\.1/);
  assert.equal((await proxyGet(proxy.port, url, proxyBasic('nobody', 'x'))).head?.statusCode, 407);
  await proxy.waitForErrorLine(/user "nobody" was not found in ".*proxy\.htpasswd"/);
  // Credentials meant for the destination (Authorization) are not the proxy's.
  assert.equal((await proxyGet(proxy.port, url, `Authorization: Basic ${Buffer.from('bc:bcrypt-pw').toString('base64')}\r\n`)).head?.statusCode, 407);

  const refused = await connectRequest(proxy.port, `127.0.0.1:${backend.port}`);
  assert.equal(refused.head?.statusCode, 407);
  assert.equal(headerValue(refused.head!, 'proxy-authenticate'), 'Basic realm="Proxy users"');
  const s = await rawConnect(proxy.port);
  t.after(() => s.destroy());
  s.write(`CONNECT 127.0.0.1:${backend.port} HTTP/1.1\r\nHost: 127.0.0.1:${backend.port}\r\n${proxyBasic('bc', 'bcrypt-pw')}\r\n`);
  assert.equal(parseResponseHead(await readUntil(s, '\r\n\r\n')).statusCode, 200);
  s.write(`GET /in-tunnel HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
  assert.equal(parseResponseHead(await readUntil(s, '\r\n\r\n')).statusCode, 200);
  assert.equal(backend.requests.at(-1)?.url, '/in-tunnel');
});

test('forward_proxy: an unreachable destination is 502; an idle tunnel ends after proxy_read_timeout', async (t) => {
  const backend = await startHttpBackend();
  t.after(() => backend.close());
  const dead = await refusedPort();
  const proxy = await startTestProxy(conf(`
    error_log stderr info;
    server {
      listen 127.0.0.1:0;
      forward_proxy on;
      forward_proxy_allow 127.0.0.1:${dead} 127.0.0.1:${backend.port};
      proxy_read_timeout 300ms;
    }`), { t });
  assert.equal((await connectRequest(proxy.port, `127.0.0.1:${dead}`)).head?.statusCode, 502);
  await proxy.waitForErrorLine(new RegExp(`connect\\(\\) failed \\(111: Connection refused\\) while connecting to upstream, .*request: "CONNECT 127\\.0\\.0\\.1:${dead} HTTP/1\\.1", upstream: "https://127\\.0\\.0\\.1:${dead}"`));
  assert.equal((await proxyGet(proxy.port, `http://127.0.0.1:${dead}/`)).head?.statusCode, 502);

  const s = await rawConnect(proxy.port);
  t.after(() => s.destroy());
  // Bytes sent right behind the CONNECT head (optimistically, before the 200) go through first.
  s.write(`CONNECT 127.0.0.1:${backend.port} HTTP/1.1\r\nHost: 127.0.0.1:${backend.port}\r\n\r\nGET /optimistic HTTP/1.1\r\nHost: x\r\n\r\n`);
  assert.match((await readUntil(s, 'HTTP/1.1 200 OK')).toString('latin1'), /^HTTP\/1\.1 200 Connection established\r\n\r\n/);
  assert.equal(backend.requests.at(-1)?.url, '/optimistic');
  await waitForClose(s);
  await proxy.waitForErrorLine('upstream timed out (110: Connection timed out) while proxying connection');
});

test('forward_proxy: an open CONNECT tunnel survives a reload, and a reload can withdraw the allowlist for new requests', async (t) => {
  const backend = await startHttpBackend();
  t.after(() => backend.close());
  const text = (allow: string): string => conf(`server { listen 127.0.0.1:0; forward_proxy on; ${allow} }`);
  const proxy = await startTestProxy(text(`forward_proxy_allow 127.0.0.1:${backend.port};`), { t });
  const s = await rawConnect(proxy.port);
  t.after(() => s.destroy());
  s.write(`CONNECT 127.0.0.1:${backend.port} HTTP/1.1\r\nHost: x\r\n\r\n`);
  assert.equal(parseResponseHead(await readUntil(s, '\r\n\r\n')).statusCode, 200);
  const r = await proxy.handle.reload({ text: text('') });
  assert.equal(r.drained, 0);
  s.write('GET /after-reload HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  assert.equal(parseResponseHead(await readUntil(s, '\r\n\r\n')).statusCode, 200);
  assert.equal(backend.requests.at(-1)?.url, '/after-reload');
  assert.equal((await connectRequest(proxy.port, `127.0.0.1:${backend.port}`)).head?.statusCode, 403);
});

test('forward_proxy: -t refuses bad destinations and a forward proxy that is not the default server', async () => {
  const r = await loadConfig({ text: conf([
    '  server { listen 127.0.0.1:0; forward_proxy on; forward_proxy_allow "a b" 10.0.0.0/33 host:0 host:9-3 [::1; }',
    '  server { listen 127.0.0.1:8080; }',
    '  server { listen 127.0.0.1:8080; forward_proxy maybe; }',
    '  server { listen 127.0.0.1:8080; forward_proxy on; }',
    '  server { listen 127.0.0.1:8081; location / { forward_proxy on; } }',
  ].join('\n')) });
  assert.deepEqual(r.ok ? [] : r.problems.map((p) => formatProblem(p)).map((l) => l.replace(/ \(hint:.*$/, '')), [
    '[emerg] invalid destination "a b" in "forward_proxy_allow" directive in <inline>:3',
    '[emerg] invalid destination "10.0.0.0/33" in "forward_proxy_allow" directive in <inline>:3',
    '[emerg] invalid destination "host:0" in "forward_proxy_allow" directive in <inline>:3',
    '[emerg] invalid destination "host:9-3" in "forward_proxy_allow" directive in <inline>:3',
    '[emerg] invalid destination "[::1" in "forward_proxy_allow" directive in <inline>:3',
    '[emerg] invalid value "maybe" in "forward_proxy" directive, it must be "on" or "off" in <inline>:5',
    '[emerg] "forward_proxy" needs the default server of 127.0.0.1:8080 in <inline>:6',
    '[emerg] "forward_proxy" directive is not allowed here in <inline>:7',
  ]);
});

/**
 * undici as the upstream client (src/proxy/client/undici-client.ts, measurement only): the
 * process chooses it with SLUICE_UPSTREAM_CLIENT=undici, set here before the proxy's modules load,
 * and it does the lean client's job on representative exchanges: GET and POST with bodies
 * (Content-Length and chunked, both ways), a HEAD, keep-alive reuse and keepalive_requests, the
 * hop-by-hop headers undici refuses mapped to its options, a WebSocket upgrade with bytes that
 * come with the 101 and the tunnel moving to the native addon, and failures as nginx's 502/504.
 * Without the package the server does not start and says why. The broader suites run with it
 * too: `node scripts/test.mjs --pass undici-client`.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import WebSocket from 'ws';

process.env['SLUICE_UPSTREAM_CLIENT'] = 'undici';

const { upstreamClient, chooseUpstreamClient } = await import('../../src/proxy/client/registry.js');
const { nativeTunnels } = await import('../../src/proxy/tunnel/native-tunnels.js');
const { tunnelAddon } = await import('../../src/core/native-addon.js');
const { Opcode } = await import('../../src/websocket/opcodes.js');
const { startHttpBackend, startRawBackend } = await import('../helpers/backends.js');
const { runCli } = await import('../helpers/cli-process.js');
const { conf } = await import('../helpers/config-text.js');
const { errorPage } = await import('../helpers/pages.js');
const { refusedPort } = await import('../helpers/ports.js');
const { startTestProxy } = await import('../helpers/proxy.js');
const { headerValue, rawConnect, rawRequest, readUntil, sendRequest, serverFrame, waitForBytes } = await import('../helpers/raw-client.js');
const { tempDir } = await import('../helpers/temp.js');
const { once, waitFor } = await import('../helpers/wait.js');
const { WAIT_MS, openRawTunnel, proxyConfig, startScriptedUpstream, switching101 } = await import('./ws-support.js');

/** An upstream `app` of one server with `keepalive 4` (and `extra`), and the keep-alive lines. */
function pooled(addr: string, extra = ''): string {
  return conf(`
    upstream app { server ${addr}; keepalive 4; ${extra} }
    server {
      listen 127.0.0.1:0;
      location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; }
    }`);
}

test('SLUICE_UPSTREAM_CLIENT=undici chooses undici for the process; it is never chosen otherwise', async () => {
  assert.equal(upstreamClient.name, 'undici');
  assert.equal(chooseUpstreamClient({ SLUICE_UPSTREAM_CLIENT: 'undici' }).name, 'undici');
  assert.notEqual(chooseUpstreamClient({}).name, 'undici');
  assert.equal(chooseUpstreamClient({ SLUICE_UPSTREAM_CLIENT: 'node' }).name, 'node');
  await upstreamClient.ready?.();
});

test('GET, POST and PUT through undici: method, target and bodies (Content-Length and chunked) intact both ways; chunked responses relayed', async (t) => {
  const backend = await startHttpBackend((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      // No Content-Length: Node answers chunked.
      res.writeHead(200, { 'X-Method': req.method ?? '', 'X-Url': req.url ?? '', 'X-Te': req.headers['transfer-encoding'] ?? '-', 'X-Len': req.headers['content-length'] ?? '-' });
      res.write(`${body.length}:`);
      res.end(body);
    });
  });
  t.after(() => backend.close());
  const proxy = await startTestProxy(pooled(backend.addr), { t });

  const got = await rawRequest(proxy.port, 'GET /a?b=c HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n', { until: 'close' });
  assert.equal(got.head?.statusCode, 200);
  assert.equal(headerValue(got.head, 'x-url'), '/a?b=c');
  assert.equal(headerValue(got.head, 'x-method'), 'GET');
  assert.equal(got.body.toString(), '0:', 'a chunked response, relayed whole');

  const big = 'x'.repeat(300_000);
  const posted = await sendRequest(proxy.port, '/post', ['Host: localhost'], { method: 'POST', body: big });
  assert.equal(posted.status, 200);
  assert.equal(headerValue(posted.head, 'x-len'), String(big.length));
  assert.equal(posted.body, `${big.length}:${big}`);

  // A chunked request body (proxy_request_buffering on: nginx sends it with a Content-Length).
  const chunked = await rawRequest(proxy.port,
    'PUT /put HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n', { until: 'close' });
  assert.equal(chunked.head?.statusCode, 200);
  assert.equal(headerValue(chunked.head, 'x-method'), 'PUT');
  assert.equal(headerValue(chunked.head, 'x-te'), '-', 'read whole first, then sent with a Content-Length, as nginx does');
  assert.equal(chunked.body.toString(), '11:hello world');

  const head = await rawRequest(proxy.port, 'HEAD /h HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n', { until: 'close' });
  assert.equal(head.head?.statusCode, 200);
  assert.equal(head.body.length, 0);
});

test('a request body streamed upstream (proxy_request_buffering off) goes out chunked by undici, or with a Content-Length when it is all there', async (t) => {
  const backend = await startHttpBackend((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => res.end(`${req.headers['transfer-encoding'] ?? req.headers['content-length'] ?? '-'}|${Buffer.concat(chunks).toString()}`));
  });
  t.after(() => backend.close());
  const proxy = await startTestProxy(conf(`
    server {
      listen 127.0.0.1:0;
      location / { proxy_pass http://${backend.addr}; proxy_http_version 1.1; proxy_request_buffering off; }
    }`), { t });
  const r = await rawRequest(proxy.port,
    'POST /s HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n', { until: 'close' });
  assert.equal(r.head?.statusCode, 200);
  // The lean client sends it chunked as it arrives (as nginx does); undici looks whether the whole
  // body is already there when it starts, and sends a Content-Length then.
  assert.match(r.body.toString(), /^(chunked|6)\|abcdef$/);

  // A body that is not all there when undici starts goes out chunked.
  const client = await rawConnect(proxy.port);
  t.after(() => client.destroy());
  client.write('POST /s HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n');
  await waitFor(() => backend.requests.length === 2, { timeoutMs: WAIT_MS, what: 'the second request upstream' });
  client.write('3\r\ndef\r\n0\r\n\r\n');
  const answer = await readUntil(client, 'chunked|abcdef', WAIT_MS);
  assert.match(answer.toString('latin1'), /^HTTP\/1\.1 200 /);
});

test('keep-alive: sequential requests reuse one upstream connection; keepalive_requests closes it after that many', async (t) => {
  const backend = await startHttpBackend();
  t.after(() => backend.close());
  const proxy = await startTestProxy(pooled(backend.addr, 'keepalive_requests 3;'), { t });
  for (let i = 0; i < 6; i++) {
    const r = await sendRequest(proxy.port, `/k${i}`);
    assert.equal(r.status, 200);
  }
  const ports = backend.requests.map((r) => r.remotePort);
  assert.equal(ports.length, 6);
  assert.equal(new Set(ports.slice(0, 3)).size, 1, 'the first three on one connection');
  assert.equal(new Set(ports.slice(3)).size, 1, 'the next three on another');
  assert.notEqual(ports[0], ports[3], 'a new connection after keepalive_requests');
  // undici writes its own Connection line (keep-alive) where the rules left none.
  assert.equal(backend.requests[0]?.headers['connection'], 'keep-alive');
  // Host is the proxy's, as the lean client sends it.
  assert.equal(backend.requests[0]?.headers['host'], 'app');
});

test('without keepalive the upstream connection closes after each response (Connection: close as undici\'s reset)', async (t) => {
  const backend = await startHttpBackend();
  t.after(() => backend.close());
  const proxy = await startTestProxy(conf(`
    server { listen 127.0.0.1:0; location / { proxy_pass http://${backend.addr}; } }`), { t });
  assert.equal((await sendRequest(proxy.port, '/one')).status, 200);
  assert.equal((await sendRequest(proxy.port, '/two')).status, 200);
  assert.equal(backend.requests[0]?.headers['connection'], 'close');
  assert.notEqual(backend.requests[0]?.remotePort, backend.requests[1]?.remotePort);
  await waitFor(() => backend.openSockets() === 0, { timeoutMs: WAIT_MS, what: 'the upstream connections to close' });
});

test('a WebSocket upgrade through undici: Upgrade/Connection as its upgrade option, messages both ways, and the tunnel moves to the native addon where it is built', async (t) => {
  const backend = await startHttpBackend();
  t.after(() => backend.close());
  const proxy = await startTestProxy(proxyConfig(backend.addr, {
    http: 'map $http_upgrade $connection_upgrade { default upgrade; \'\' close; }',
    location: 'proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection $connection_upgrade;',
  }), { t });
  const adoptedBefore = nativeTunnels()?.stats().adopted ?? 0;
  const ws = new WebSocket(proxy.wsUrl('/echo'));
  t.after(() => ws.terminate());
  const messages: string[] = [];
  ws.on('message', (m: Buffer) => messages.push(m.toString()));
  await once(ws, 'open', WAIT_MS);
  const up = backend.requests.find((r) => r.upgrade);
  assert.ok(up, 'the backend saw an upgrade');
  assert.equal(String(up.headers['upgrade']).toLowerCase(), 'websocket');
  assert.equal(String(up.headers['connection']).toLowerCase(), 'upgrade');
  for (let i = 0; i < 20; i++) ws.send(`message ${i}`);
  await waitFor(() => messages.filter((m) => m.startsWith('message ')).length >= 20, { timeoutMs: WAIT_MS, what: 'the echoes' });
  assert.deepEqual(messages.filter((m) => m.startsWith('message ')), Array.from({ length: 20 }, (_, i) => `message ${i}`));
  if (tunnelAddon() !== null) {
    await waitFor(() => (nativeTunnels()?.stats().adopted ?? 0) > adoptedBefore, { timeoutMs: WAIT_MS, what: 'the addon to take the tunnel' });
    ws.send('after the move');
    await waitFor(() => messages.includes('after the move'), { timeoutMs: WAIT_MS, what: 'an echo through the native tunnel' });
  }
});

test('frames the upstream sends in the same packet as its 101 reach the client (undici\'s leftover head)', async (t) => {
  const upstream = await startScriptedUpstream(t, () => Buffer.concat([Buffer.from(switching101(), 'latin1'), serverFrame(Opcode.TEXT, 'early bird')]));
  const proxy = await startTestProxy(proxyConfig(upstream.addr, {
    location: 'proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection "upgrade";',
  }), { t });
  const { client } = await openRawTunnel(t, proxy.port, upstream);
  const bytes = await readUntil(client, (b) => b.length >= 12, WAIT_MS);
  assert.deepEqual(bytes.subarray(0, 12), serverFrame(Opcode.TEXT, 'early bird'));
});

test('a refused connection gives 502, no response head within proxy_read_timeout 504, each with nginx\'s error-log line', async (t) => {
  const dead = await refusedPort();
  const silent = await startRawBackend(async (conn) => {
    await conn.readUntil('\r\n\r\n');
  });
  t.after(() => silent.close());
  const proxy = await startTestProxy(conf(`
    server {
      listen 127.0.0.1:0;
      proxy_read_timeout 300ms;
      location /dead/ { proxy_pass http://127.0.0.1:${dead}; }
      location /silent/ { proxy_pass http://${silent.addr}; }
    }`), { t });
  const refused = await rawRequest(proxy.port, 'GET /dead/x HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n', { until: 'close' });
  assert.equal(refused.head?.statusCode, 502);
  assert.equal(refused.body.toString(), errorPage('502 Bad Gateway'));
  await proxy.waitForErrorLine(/connect\(\) failed \(111: Connection refused\) while connecting to upstream/);

  const timedOut = await rawRequest(proxy.port, 'GET /silent/x HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n', { until: 'close' });
  assert.equal(timedOut.head?.statusCode, 504);
  assert.equal(timedOut.body.toString(), errorPage('504 Gateway Time-out'));
  await proxy.waitForErrorLine(/upstream timed out \(110: Connection timed out\) while reading response header from upstream/);
  const conn = await silent.nextConnection();
  await conn.readToEnd();
});

test('an upstream that answers garbage gives 502; a response head beyond proxy_buffer_size gives 502 "too big header"', async (t) => {
  const backend = await startRawBackend(async (conn) => {
    const head = (await conn.readUntil('\r\n\r\n')).toString('latin1');
    conn.socket.end(head.startsWith('GET /big')
      ? `HTTP/1.1 200 OK\r\nX-Big: ${'b'.repeat(8000)}\r\nContent-Length: 0\r\n\r\n`
      : 'NOT HTTP AT ALL\r\n\r\n');
  });
  t.after(() => backend.close());
  const proxy = await startTestProxy(conf(`
    server { listen 127.0.0.1:0; proxy_buffer_size 4k; location / { proxy_pass http://${backend.addr}; } }`), { t });
  const garbage = await sendRequest(proxy.port, '/garbage');
  assert.equal(garbage.status, 502);
  await proxy.waitForErrorLine(/upstream sent invalid header while reading response header from upstream/);
  const big = await sendRequest(proxy.port, '/big');
  assert.equal(big.status, 502);
  await proxy.waitForErrorLine(/upstream sent too big header while reading response header from upstream/);
});

test('a client that leaves mid-response makes the proxy close the upstream connection', async (t) => {
  const backend = await startRawBackend(async (conn) => {
    await conn.readUntil('\r\n\r\n');
    conn.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\nsome of it');
    await conn.readToEnd();
  });
  t.after(() => backend.close());
  const proxy = await startTestProxy(pooled(backend.addr), { t });
  const client = await rawConnect(proxy.port);
  client.write('GET /slow HTTP/1.1\r\nHost: localhost\r\n\r\n');
  await waitForBytes(client, 'some of it', WAIT_MS);
  client.destroy();
  const conn = await backend.nextConnection();
  await waitFor(() => conn.ended || conn.socket.destroyed, { timeoutMs: WAIT_MS, what: 'the proxy to close the upstream connection' });
});

test('without the undici package the server does not start, and says what to install', async (t) => {
  const dir = tempDir(t);
  // A resolve hook that makes `import('undici')` fail as it does where the package is not installed.
  const hide = join(dir.path, 'hide-undici.mjs');
  writeFileSync(hide, `import { register } from 'node:module';
register('data:text/javascript,' + encodeURIComponent(\`export async function resolve(specifier, context, next) {
  if (specifier === 'undici') { const e = new Error("Cannot find package 'undici'"); e.code = 'ERR_MODULE_NOT_FOUND'; throw e; }
  return next(specifier, context);
}\`));
`);
  const confFile = join(dir.path, 'sluice.conf');
  writeFileSync(confFile, 'events {} http { server { listen 127.0.0.1:0; location / { return 200; } } }\n');
  const r = await runCli(['-c', confFile], dir.path, { SLUICE_UPSTREAM_CLIENT: 'undici', NODE_OPTIONS: `--import=${pathToFileURL(hide).href}` });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /\[emerg\] SLUICE_UPSTREAM_CLIENT=undici: the undici package is not installed; .*npm install --save-dev undici@7/);
});

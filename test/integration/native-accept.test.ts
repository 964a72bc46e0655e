/**
 * Accepting in the addon (issue 15 item 2; native/sluice_accept.c, server/native-accept.ts,
 * server/native-client.ts, proxy/front/native-client.ts): the relay's I/O thread accepts on plain
 * listeners and reads the first bytes; a WebSocket handshake runs the session with a client that
 * has no net.Socket and its tunnel is adopted by the relay with the client's descriptor; anything
 * else becomes a net.Socket for the lean front end with the bytes read first. The counters say
 * which path answered; the HTTP/1.1 suites run on this path by default (and on libuv's accept in
 * the `libuv-accept` pass).
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { nativeClientCounts } from '../../src/proxy/front/native-client.js';
import { nativeAcceptCounts, nativeAcceptor } from '../../src/server/native-accept.js';
import { Opcode } from '../../src/websocket/opcodes.js';
import { startHttpBackend, startRawBackend } from '../helpers/backends.js';
import { waitForFileLine } from '../helpers/log-files.js';
import { startTestProxy } from '../helpers/proxy.js';
import {
  SAMPLE_ACCEPT, headerValue, maskedFrame, rawConnect, rawRequest, rawWebSocket, readFrame, readUntil, waitForClose, wsHandshakeRequest,
} from '../helpers/raw-client.js';
import { tempDir } from '../helpers/temp.js';

const WAIT_MS = 10_000;

/** The access-log line for `path` once written. */
async function logLine(log: string, path: string): Promise<string> {
  const lines = await waitForFileLine(log, `${path} `, { timeoutMs: WAIT_MS });
  return lines.find((l) => l.startsWith(`${path} `)) ?? '';
}

function config(backend: string, log: string, extra = '', server = '', format = 'addrs'): string {
  return `
events {}
http {
  log_format addrs '$request_uri $status $remote_addr $remote_port $server_addr $server_port';
  log_format len '$request_uri $request_length';
  ${extra}
  server {
    listen 127.0.0.1:0;
    access_log ${log} ${format};
    ${server}
    location = /forbidden { return 403; }
    location = /denied { deny all; proxy_pass http://${backend}; }
    location = /plain { return 200 "plain $remote_addr\\n"; }
    location / { proxy_pass http://${backend}; }
  }
}`;
}

async function echoSetup(t: TestContext, extra = '', server = ''): Promise<{ port: number; log: string; backend: Awaited<ReturnType<typeof startHttpBackend>>; proxy: Awaited<ReturnType<typeof startTestProxy>> }> {
  const backend = await startHttpBackend(undefined, { id: 'echo' });
  t.after(() => backend.close());
  const log = tempDir(t).join('access.log');
  const proxy = await startTestProxy(config(backend.addr, log, extra, server), { t });
  return { port: proxy.port, log, backend, proxy };
}

test('the addon is there and accepts for the plain listener (else this suite tests nothing)', async (t) => {
  assert.notEqual(nativeAcceptor(), null, 'the addon accepts: build it with npm run build:native');
  const { port } = await echoSetup(t);
  const before = nativeAcceptCounts.accepted;
  const res = await rawRequest(port, 'GET /plain HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n', { timeoutMs: WAIT_MS });
  assert.equal(res.head?.statusCode, 200);
  assert.equal(nativeAcceptCounts.accepted, before + 1);
});

test('a WebSocket through the native client path: relayed both ways, addresses right in the log and X-Forwarded-For', async (t) => {
  const { port, log, backend } = await echoSetup(t, '', 'proxy_set_header X-Forwarded-For $remote_addr;');
  const before = { ...nativeClientCounts };
  const { socket, head } = await rawWebSocket(port, { path: '/chat', timeoutMs: WAIT_MS });
  t.after(() => socket.destroy());
  assert.equal(head.statusCode, 101);
  assert.equal(headerValue(head, 'sec-websocket-accept'), SAMPLE_ACCEPT);
  assert.equal(nativeClientCounts.handshakes, before.handshakes + 1);
  assert.equal(nativeClientCounts.tunnels, before.tunnels + 1, 'the relay adopted the client descriptor');
  assert.equal(nativeClientCounts.materialized, before.materialized, 'no net.Socket for the client');
  for (const text of ['one', 'two', 'x'.repeat(70_000)]) {
    socket.write(maskedFrame(Opcode.TEXT, text));
    const frame = await readFrame(socket, WAIT_MS);
    assert.equal(frame.opcode, Opcode.TEXT);
    assert.equal(frame.payload.toString(), text);
  }
  assert.equal(backend.requests.at(-1)?.headers['x-forwarded-for'], '127.0.0.1');
  const clientPort = socket.localPort;
  socket.destroy();
  const line = await logLine(log, '/chat');
  assert.equal(line, `/chat 101 127.0.0.1 ${clientPort} 127.0.0.1 ${port}`);
});

test('local answers to a handshake on the native path: return 403, deny, a 502, as on a socket', async (t) => {
  const { port, log } = await echoSetup(t);
  const dead = await startRawBackend((c) => void c.socket.destroy());
  t.after(() => dead.close());
  const before = nativeClientCounts.handshakes;
  for (const [path, status] of [['/forbidden', 403], ['/denied', 403]] as const) {
    const { socket, head } = await rawWebSocket(port, { path, timeoutMs: WAIT_MS });
    t.after(() => socket.destroy());
    assert.equal(head.statusCode, status, path);
    await waitForClose(socket, WAIT_MS);
    assert.match(await logLine(log, path), new RegExp(`^${path} ${status} 127\\.0\\.0\\.1 `));
  }
  assert.equal(nativeClientCounts.handshakes, before + 2);
  const log2 = tempDir(t).join('access2.log');
  const proxy = await startTestProxy(config(dead.addr, log2), { t });
  const { socket, head } = await rawWebSocket(proxy.port, { path: '/up', timeoutMs: WAIT_MS });
  t.after(() => socket.destroy());
  assert.equal(head.statusCode, 502);
  await waitForClose(socket, WAIT_MS);
  assert.match(await logLine(log2, '/up'), /^\/up 502 /);
});

test('the client leaving before the 101: 499 and the upstream connection closed', async (t) => {
  const upstream = await startRawBackend(async (c) => {
    await c.readUntil('\r\n\r\n', WAIT_MS);
    // Never answers: the client goes first.
  });
  t.after(() => upstream.close());
  const log = tempDir(t).join('access.log');
  const proxy = await startTestProxy(config(upstream.addr, log), { t });
  const before = nativeClientCounts.handshakes;
  const client = await rawConnect(proxy.port);
  client.write(wsHandshakeRequest({ path: '/gone' }));
  const up = await upstream.nextConnection(WAIT_MS);
  await up.readUntil('\r\n\r\n', WAIT_MS).catch(() => Buffer.alloc(0));
  assert.equal(nativeClientCounts.handshakes, before + 1);
  client.destroy();
  // The proxy closes its upstream connection (FIN or reset) instead of waiting for an answer.
  await up.readToEnd(WAIT_MS);
  assert.match(await logLine(log, '/gone'), /^\/gone 499 /);
});

test('client_header_timeout on a client that sends half a head on the native path: closed without an answer', async (t) => {
  const { port } = await echoSetup(t, 'client_header_timeout 1s;');
  const socket = await rawConnect(port);
  t.after(() => socket.destroy());
  const got: Buffer[] = [];
  socket.on('data', (b: Buffer) => got.push(b));
  socket.write('GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n');
  await waitForClose(socket, WAIT_MS);
  assert.equal(Buffer.concat(got).length, 0);
});

test('$request_length counts the head the addon read, on the first request and the next ones kept alive', async (t) => {
  const backend = await startHttpBackend(undefined, { id: 'echo' });
  t.after(() => backend.close());
  const log = tempDir(t).join('access.log');
  const proxy = await startTestProxy(config(backend.addr, log, '', '', 'len'), { t });
  const socket = await rawConnect(proxy.port);
  t.after(() => socket.destroy());
  const heads = ['GET /plain?first HTTP/1.1\r\nHost: a\r\n\r\n', 'GET /plain?second HTTP/1.1\r\nHost: a\r\nX-Pad: 0123456789\r\n\r\n'];
  for (const head of heads) {
    socket.write(head);
    await readUntil(socket, 'plain 127.0.0.1\n', WAIT_MS);
  }
  assert.equal(await logLine(log, '/plain?first'), `/plain?first ${heads[0]!.length}`);
  assert.equal(await logLine(log, '/plain?second'), `/plain?second ${heads[1]!.length}`);
});

test('a head in two packets and a malformed one on the native accept path behave as on the lean front end', async (t) => {
  const { port } = await echoSetup(t);
  const socket = await rawConnect(port);
  t.after(() => socket.destroy());
  socket.write('GET /plain HTTP/1.1\r\nHo');
  await new Promise((r) => setTimeout(r, 50));
  socket.write('st: a\r\n\r\n');
  const first = await readUntil(socket, 'plain 127.0.0.1\n', WAIT_MS);
  assert.match(first.toString('latin1'), /^HTTP\/1\.1 200 /);
  const bad = await rawRequest(port, 'GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: upgrade\r\nBad Header: x\r\n\r\n', { timeoutMs: WAIT_MS });
  assert.equal(bad.head?.statusCode, 400);
});

test('a reload keeps open native tunnels and the listener accepting', async (t) => {
  const { port, proxy, log, backend } = await echoSetup(t);
  const { socket, head } = await rawWebSocket(port, { path: '/kept', timeoutMs: WAIT_MS });
  t.after(() => socket.destroy());
  assert.equal(head.statusCode, 101);
  await proxy.handle.reload({ text: config(backend.addr, log, 'client_header_timeout 5s;') });
  socket.write(maskedFrame(Opcode.TEXT, 'after reload'));
  assert.equal((await readFrame(socket, WAIT_MS)).payload.toString(), 'after reload');
  const again = await rawWebSocket(port, { path: '/new', timeoutMs: WAIT_MS });
  t.after(() => again.socket.destroy());
  assert.equal(again.head.statusCode, 101);
  const res = await rawRequest(port, 'GET /plain HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n', { timeoutMs: WAIT_MS });
  assert.equal(res.head?.statusCode, 200);
});

test('graceful stop: the listener stops accepting, an open native tunnel is closed with 1001', async (t) => {
  const { port, proxy } = await echoSetup(t);
  const { socket, head } = await rawWebSocket(port, { path: '/bye', timeoutMs: WAIT_MS });
  t.after(() => socket.destroy());
  assert.equal(head.statusCode, 101);
  const closing = proxy.handle.close(200);
  const refused = await new Promise<boolean>((resolve) => {
    const c = connect(port, '127.0.0.1');
    c.on('error', () => resolve(true));
    c.on('connect', () => {
      c.destroy();
      resolve(false);
    });
  });
  assert.equal(refused, true, 'a new connection is refused once closing');
  const frame = await readFrame(socket, WAIT_MS);
  assert.equal(frame.opcode, Opcode.CLOSE);
  assert.equal(frame.payload.readUInt16BE(0), 1001);
  socket.destroy();
  await closing;
});

test('a wildcard listener on the native path: $server_addr is the address the client reached (getsockname in the addon)', async (t) => {
  const backend = await startHttpBackend(undefined, { id: 'echo' });
  t.after(() => backend.close());
  const log = tempDir(t).join('access.log');
  const proxy = await startTestProxy(config(backend.addr, log).replace('listen 127.0.0.1:0;', 'listen 0.0.0.0:0;'), { t });
  const before = nativeClientCounts.tunnels;
  const { socket, head } = await rawWebSocket(proxy.port, { path: '/wild', timeoutMs: WAIT_MS });
  t.after(() => socket.destroy());
  assert.equal(head.statusCode, 101);
  assert.equal(nativeClientCounts.tunnels, before + 1);
  const clientPort = socket.localPort;
  socket.destroy();
  assert.equal(await logLine(log, '/wild'), `/wild 101 127.0.0.1 ${clientPort} 127.0.0.1 ${proxy.port}`);
});

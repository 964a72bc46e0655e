/**
 * Upstream failures and lifecycle (BEHAVIOURS 26-29): refused connections, connect and read
 * timeouts, an upstream that closes without answering, the idle tunnel timeout, graceful shutdown,
 * and a client that leaves before the upstream answers (499).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { acceptKey } from '../../src/websocket/accept-key.js';
import { Opcode } from '../../src/websocket/opcodes.js';
import { startHttpBackend, startRawBackend, type HttpBackend } from '../helpers/backends.js';
import { recorderFor } from '../helpers/byte-recorder.js';
import { conf } from '../helpers/config-text.js';
import { errorPage } from '../helpers/pages.js';
import { blackholePort, refusedPort } from '../helpers/ports.js';
import { startTestProxy } from '../helpers/proxy.js';
import {
  completeResponse, headerValue, maskedFrame, rawConnect, rawRequest, rawWebSocket, readFrame, readToEnd, readUntil, serverFrame, waitForClose,
} from '../helpers/raw-client.js';
import type { AfterHook } from '../helpers/temp.js';
import { delay, waitFor, withTimeout } from '../helpers/wait.js';

const GET = (path: string): string => `GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`;

test('connection refused: the next server answers; with none left the client gets a 502 page, never a reset', async (t) => {
  const good = await startHttpBackend(undefined, { id: 'good' });
  t.after(() => good.close());
  const dead = await refusedPort();
  const proxy = await startTestProxy(conf(`
    upstream pair { server 127.0.0.1:${dead}; server ${good.addr}; }
    upstream lonely { server 127.0.0.1:${dead}; }
    server {
      listen 127.0.0.1:0;
      location /pair/ { proxy_pass http://pair; }
      location /lonely/ { proxy_pass http://lonely; }
    }`), { t });

  const retried = await rawRequest(proxy.port, GET('/pair/x'));
  assert.equal(retried.head?.statusCode, 200);
  assert.equal(headerValue(retried.head, 'x-echo-id'), 'good');
  await proxy.waitForErrorLine(new RegExp(`connect\\(\\) failed \\(111: Connection refused\\) while connecting to upstream, .*upstream: "http://127\\.0\\.0\\.1:${dead}/pair/x"`));

  const failed = await rawRequest(proxy.port, GET('/lonely/x'), { until: 'close' });
  assert.equal(failed.head?.statusCode, 502);
  assert.equal(failed.body.toString(), errorPage('502 Bad Gateway'));
  assert.equal(recorderFor(failed.socket).error, null, 'answered, not reset');
  assert.equal(good.requests.length, 1);
});

test('connect timeout: proxy_connect_timeout gives 504, or the next server under the default proxy_next_upstream', async (t) => {
  const hole = await blackholePort(t);
  const good = await startHttpBackend(undefined, { id: 'good' });
  t.after(() => good.close());
  const proxy = await startTestProxy(conf(`
    upstream pair { server 127.0.0.1:${hole}; server ${good.addr}; }
    upstream lonely { server 127.0.0.1:${hole}; }
    server {
      listen 127.0.0.1:0;
      proxy_connect_timeout 300ms;
      location /pair/ { proxy_pass http://pair; }
      location /lonely/ { proxy_pass http://lonely; }
    }`), { t });

  const started = Date.now();
  const timedOut = await rawRequest(proxy.port, GET('/lonely/x'), { until: 'close' });
  assert.ok(Date.now() - started >= 290, 'not before proxy_connect_timeout');
  assert.equal(timedOut.head?.statusCode, 504);
  assert.equal(timedOut.head.reason, 'Gateway Time-out');
  assert.equal(timedOut.body.toString(), errorPage('504 Gateway Time-out'));
  await proxy.waitForErrorLine(/upstream timed out \(110: Connection timed out\) while connecting to upstream/);

  const retried = await rawRequest(proxy.port, GET('/pair/x'));
  assert.equal(retried.head?.statusCode, 200);
  assert.equal(headerValue(retried.head, 'x-echo-id'), 'good');
});

test('no response head within proxy_read_timeout gives 504; the timeout passes the request to the next server', async (t) => {
  const silent = await startRawBackend(async (conn) => {
    await conn.readUntil('\r\n\r\n');
  });
  t.after(() => silent.close());
  const good = await startHttpBackend(undefined, { id: 'good' });
  t.after(() => good.close());
  const proxy = await startTestProxy(conf(`
    upstream lonely { server ${silent.addr}; }
    upstream pair { server ${silent.addr}; server ${good.addr}; }
    server {
      listen 127.0.0.1:0;
      proxy_read_timeout 300ms;
      location /lonely/ { proxy_pass http://lonely; }
      location /pair/ { proxy_pass http://pair; }
    }`), { t });

  const started = Date.now();
  const r = await rawRequest(proxy.port, GET('/lonely/x'), { until: 'close' });
  assert.ok(Date.now() - started >= 290, 'not before proxy_read_timeout');
  assert.equal(r.head?.statusCode, 504);
  assert.equal(r.body.toString(), errorPage('504 Gateway Time-out'));
  await proxy.waitForErrorLine(/upstream timed out \(110: Connection timed out\) while reading response header from upstream/);
  // The silent server's connection is closed by the proxy once it gives up.
  const first = await silent.nextConnection();
  await first.readToEnd();

  const retried = await rawRequest(proxy.port, GET('/pair/y'));
  assert.equal(retried.head?.statusCode, 200);
  assert.equal(headerValue(retried.head, 'x-echo-id'), 'good');
  assert.equal(silent.connections.length, 2);
});

test('an upstream that closes without a response gives 502', async (t) => {
  const closer = await startRawBackend(async (conn) => {
    await conn.readUntil('\r\n\r\n');
    conn.socket.end();
  });
  t.after(() => closer.close());
  const proxy = await startTestProxy(conf(`
    server { listen 127.0.0.1:0; location / { proxy_pass http://${closer.addr}; } }`), { t });
  const r = await rawRequest(proxy.port, GET('/x'), { until: 'close' });
  assert.equal(r.head?.statusCode, 502);
  assert.equal(r.body.toString(), errorPage('502 Bad Gateway'));
  await proxy.waitForErrorLine(/upstream prematurely closed connection while reading response header from upstream/);
  assert.equal(closer.connections.length, 1, 'a single server is tried once');
});

/**
 * A WebSocket backend for the idle tests: accepts every upgrade; on `/push` it sends a text frame
 * every `every` ms, `count` times; otherwise it only reads.
 */
async function idleBackend(t: AfterHook, every: number, count: number): Promise<HttpBackend> {
  const backend = await startHttpBackend(undefined, {
    onUpgrade(req, socket) {
      socket.on('error', () => undefined);
      socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
        + `Sec-WebSocket-Accept: ${acceptKey(String(req.headers['sec-websocket-key']))}\r\n\r\n`);
      socket.resume();
      // The server's sockets allow half-open connections: answer the proxy's FIN with ours.
      socket.once('end', () => socket.end());
      if (req.url === '/push') {
        let sent = 0;
        const timer = setInterval(() => {
          if (socket.destroyed || ++sent > count) {
            clearInterval(timer);
            return;
          }
          socket.write(serverFrame(Opcode.TEXT, `tick ${sent}`));
        }, every);
        socket.once('close', () => clearInterval(timer));
      }
    },
  });
  t.after(() => backend.close());
  return backend;
}

// The timeout is several times the traffic interval, so only a long stall of the machine could
// let it expire while traffic flows.
const IDLE_MS = 600;
const EVERY_MS = 100;
const TRAFFIC_MS = 1500;

test('idle tunnel: closes after proxy_read_timeout with no traffic either way', async (t) => {
  const backend = await idleBackend(t, EVERY_MS, 0);
  // nginx logs this time-out at info level (the client connection's log_error is NGX_ERROR_INFO).
  const proxy = await startTestProxy(`error_log stderr info;\n${conf(`
    server {
      listen 127.0.0.1:0;
      location / { proxy_read_timeout ${IDLE_MS}ms; proxy_pass http://${backend.addr}; }
    }`)}`, { t });
  // Timed from before the handshake: the proxy's idle timer cannot start earlier, while the 101
  // may reach a busy test process well after the timer started.
  const opened = Date.now();
  const ws = await rawWebSocket(proxy.port, { path: '/quiet' });
  t.after(() => ws.socket.destroy());
  assert.equal(ws.head.statusCode, 101);
  await waitForClose(ws.socket, IDLE_MS + 5000);
  assert.ok(Date.now() - opened >= IDLE_MS - 10, `closed after ${Date.now() - opened} ms, before the idle timeout`);
  await proxy.waitForErrorLine(/upstream timed out \(110: Connection timed out\) while proxying upgraded connection/);
  await waitFor(() => backend.openSockets() === 0, { what: 'the upstream side of the tunnel to close' });
});

test('idle tunnel: client-to-server traffic alone keeps it open', async (t) => {
  const backend = await idleBackend(t, EVERY_MS, 0);
  const proxy = await startTestProxy(conf(`
    server {
      listen 127.0.0.1:0;
      location / { proxy_read_timeout ${IDLE_MS}ms; proxy_pass http://${backend.addr}; }
    }`), { t });
  const ws = await rawWebSocket(proxy.port, { path: '/sink' });
  t.after(() => ws.socket.destroy());
  assert.equal(ws.head.statusCode, 101);
  const recorder = recorderFor(ws.socket);
  const until = Date.now() + TRAFFIC_MS;
  let sent = 0;
  // When the last frame was written: a late timer on a loaded machine delays the loop's end, not
  // the proxy's idle clock, which starts again when that frame arrives.
  let lastTraffic = 0;
  while (Date.now() < until) {
    ws.socket.write(maskedFrame(Opcode.TEXT, `client ${++sent}`));
    lastTraffic = Date.now();
    await delay(EVERY_MS);
    assert.equal(recorder.closed || recorder.ended, false, `closed while the client was sending (after ${sent} frames)`);
  }
  await waitForClose(ws.socket, IDLE_MS + 5000);
  assert.ok(Date.now() - lastTraffic >= IDLE_MS - 10, `closed only once the traffic stopped (${Date.now() - lastTraffic} ms after the last frame)`);
});

test('idle tunnel: server-to-client traffic alone keeps it open', async (t) => {
  const ticks = Math.floor(TRAFFIC_MS / EVERY_MS);
  const backend = await idleBackend(t, EVERY_MS, ticks);
  const proxy = await startTestProxy(conf(`
    server {
      listen 127.0.0.1:0;
      location / { proxy_read_timeout ${IDLE_MS}ms; proxy_pass http://${backend.addr}; }
    }`), { t });
  const ws = await rawWebSocket(proxy.port, { path: '/push' });
  t.after(() => ws.socket.destroy());
  assert.equal(ws.head.statusCode, 101);
  for (let i = 1; i <= ticks; i++) {
    const frame = await readFrame(ws.socket, 5000);
    assert.equal(frame.payload.toString(), `tick ${i}`);
  }
  const lastTraffic = Date.now();
  await waitForClose(ws.socket, IDLE_MS + 5000);
  assert.ok(Date.now() - lastTraffic >= IDLE_MS - EVERY_MS - 10, 'closed only once the traffic stopped');
});

test('graceful shutdown: close(grace) refuses new connections, lets a request in flight finish, closes tunnels after the grace', async (t) => {
  let answerSlow: (() => void) | null = null;
  const backend = await startHttpBackend((req, res) => {
    if (req.url === '/slow') {
      answerSlow = () => {
        res.writeHead(200, { 'Content-Length': '4' });
        res.end('done');
      };
      return;
    }
    res.writeHead(200, { 'Content-Length': '2' });
    res.end('ok');
  });
  t.after(() => backend.close());
  const proxy = await startTestProxy(conf(`
    server { listen 127.0.0.1:0; location / { proxy_pass http://${backend.addr}; } }`), { t });

  const ws = await rawWebSocket(proxy.port, { path: '/chat' });
  t.after(() => ws.socket.destroy());
  assert.equal(ws.head.statusCode, 101);
  const slow = rawRequest(proxy.port, GET('/slow'));
  await waitFor(() => answerSlow !== null, { what: 'the slow request to reach the backend' });

  const GRACE = 800;
  const closeStarted = Date.now();
  const closing = proxy.close(GRACE);
  await assert.rejects(rawConnect(proxy.port, { timeoutMs: 2000 }), /ECONNREFUSED/);

  (answerSlow as unknown as () => void)();
  const answered = await slow;
  assert.equal(answered.head?.statusCode, 200);
  assert.equal(answered.body.toString(), 'done');

  // The tunnel still works during the grace period.
  ws.socket.write(maskedFrame(Opcode.TEXT, 'still here'));
  const echo = await readFrame(ws.socket, 2000);
  assert.equal(echo.payload.toString(), 'still here');

  await withTimeout(closing, GRACE + 5000, 'close() to finish');
  await waitForClose(ws.socket, 5000);
  assert.ok(Date.now() - closeStarted >= GRACE - 5, 'the tunnel lives until the grace period is over');
  await waitFor(() => backend.openSockets() === 0, { what: 'the upstream connections to close' });
});

test('a client that leaves before the upstream answers cancels the upstream request; the access log says 499', async (t) => {
  const backend = await startRawBackend(async (conn) => {
    await conn.readUntil('\r\n\r\n');
  });
  t.after(() => backend.close());
  const proxy = await startTestProxy(conf(`
    log_format st '$status "$request" $upstream_addr';
    upstream b { server ${backend.addr}; server ${backend.addr}; }
    server {
      listen 127.0.0.1:0;
      access_log /dev/stderr st;
      location / { proxy_pass http://b; }
    }`), { t });
  const client = await rawConnect(proxy.port);
  t.after(() => client.destroy());
  client.write('GET /wait HTTP/1.1\r\nHost: localhost\r\n\r\n');
  const upstream = await backend.nextConnection();
  await upstream.readUntil('\r\n\r\n');
  client.destroy();
  // The proxy closes its upstream connection (FIN or reset) instead of waiting for an answer.
  await upstream.readToEnd(5000);
  const line = await proxy.waitForErrorLine(/^499 /);
  assert.equal(line, `499 "GET /wait HTTP/1.1" ${backend.addr}`);
  assert.equal(backend.connections.length, 1, 'not passed to another server');
});

test('a response body cut short by the upstream closes the client connection and is logged', async (t) => {
  const backend = await startRawBackend(async (conn) => {
    await conn.readUntil('\r\n\r\n');
    if (conn.received.includes('/chunked')) {
      conn.socket.end('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n');
    } else {
      conn.socket.end('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten..');
    }
  });
  t.after(() => backend.close());
  const proxy = await startTestProxy(conf(`
    server { listen 127.0.0.1:0; location / { proxy_pass http://${backend.addr}; } }`), { t });

  const short = await rawRequest(proxy.port, 'GET /length HTTP/1.1\r\nHost: localhost\r\n\r\n', { until: 'close' });
  assert.equal(short.head?.statusCode, 200);
  assert.equal(headerValue(short.head, 'content-length'), '100');
  assert.equal(short.body.toString(), 'only ten..');
  assert.equal(short.closed, true);
  await proxy.waitForErrorLine(/upstream prematurely closed connection while reading upstream, .*request: "GET \/length HTTP\/1\.1"/);

  // A chunked response is left without its last chunk, so the client can tell.
  const chunked = await rawRequest(proxy.port, 'GET /chunked HTTP/1.1\r\nHost: localhost\r\n\r\n', { until: 'close' });
  assert.equal(chunked.head?.statusCode, 200);
  assert.equal(chunked.closed, true);
  assert.equal(chunked.data.subarray(chunked.head.headLength).toString(), '5\r\nhello\r\n');
  await proxy.waitForErrorLine(/upstream prematurely closed connection while reading upstream, .*request: "GET \/chunked HTTP\/1\.1"/);
});

test('a response body that stalls longer than proxy_read_timeout closes the client connection', async (t) => {
  const backend = await startRawBackend(async (conn) => {
    await conn.readUntil('\r\n\r\n');
    conn.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nfirst part');
  });
  t.after(() => backend.close());
  const proxy = await startTestProxy(conf(`
    server {
      listen 127.0.0.1:0;
      location / { proxy_read_timeout 300ms; proxy_pass http://${backend.addr}; }
    }`), { t });
  const started = Date.now();
  const r = await rawRequest(proxy.port, 'GET /stall HTTP/1.1\r\nHost: localhost\r\n\r\n', { until: 'close' });
  assert.ok(Date.now() - started >= 290, 'not before proxy_read_timeout');
  assert.equal(r.head?.statusCode, 200);
  assert.equal(r.body.toString(), 'first part');
  assert.equal(r.closed, true);
  const line = await proxy.waitForErrorLine(/upstream timed out/);
  assert.match(line, /upstream timed out \(110: Connection timed out\) while reading upstream, client: 127\.0\.0\.1, .*request: "GET \/stall HTTP\/1\.1"/);
  await (await backend.nextConnection()).readToEnd();
});

test('proxy_read_timeout is between two reads: a body that trickles in for longer than it in all is relayed whole', async (t) => {
  const parts = 12;
  const backend = await startRawBackend(async (conn) => {
    await conn.readUntil('\r\n\r\n');
    conn.socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${parts}\r\n\r\n`);
    // 12 parts 100 ms apart: over twice the timeout in all, each read well within it.
    for (let i = 0; i < parts && !conn.socket.destroyed; i++) {
      await delay(100);
      conn.socket.write('x');
    }
  });
  t.after(() => backend.close());
  const proxy = await startTestProxy(conf(`
    server {
      listen 127.0.0.1:0;
      location / { proxy_read_timeout 500ms; proxy_pass http://${backend.addr}; }
    }`), { t });
  const r = await rawRequest(proxy.port, 'GET /trickle HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n', { until: 'close' });
  assert.equal(r.head?.statusCode, 200);
  assert.equal(r.body.toString(), 'x'.repeat(parts));
});

test('proxy_send_timeout is between two writes: a request body that streams upstream for longer than it in all goes whole', async (t) => {
  const parts = 12;
  const backend = await startHttpBackend((req, res) => {
    let body = '';
    req.setEncoding('latin1');
    req.on('data', (d: string) => (body += d));
    req.on('end', () => res.end(`got ${body}`));
  });
  t.after(() => backend.close());
  const proxy = await startTestProxy(conf(`
    server {
      listen 127.0.0.1:0;
      location / { proxy_send_timeout 500ms; proxy_request_buffering off; proxy_http_version 1.1; proxy_pass http://${backend.addr}; }
    }`), { t });
  const client = await rawConnect(proxy.port);
  t.after(() => client.destroy());
  client.write(`POST /slow HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: ${parts}\r\n\r\n`);
  // 12 parts 100 ms apart, each written upstream as it comes: over twice the timeout in all.
  for (let i = 0; i < parts; i++) {
    await delay(100);
    client.write('y');
  }
  const r = completeResponse(await readToEnd(client));
  assert.equal(r?.head.statusCode, 200);
  assert.equal(r?.body.toString(), `got ${'y'.repeat(parts)}`);
});

test('a client that leaves in the middle of a response makes the proxy close the upstream connection', async (t) => {
  const backend = await startRawBackend(async (conn) => {
    await conn.readUntil('\r\n\r\n');
    conn.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nsome of it');
  });
  t.after(() => backend.close());
  const proxy = await startTestProxy(conf(`
    server { listen 127.0.0.1:0; location / { proxy_pass http://${backend.addr}; } }`), { t });
  const client = await rawConnect(proxy.port);
  t.after(() => client.destroy());
  client.write('GET /partial HTTP/1.1\r\nHost: localhost\r\n\r\n');
  await readUntil(client, 'some of it');
  client.destroy();
  await (await backend.nextConnection()).readToEnd(5000);
});

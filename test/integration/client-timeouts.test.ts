/**
 * The client side's timeouts, with nginx's meaning (issue 11, items 5 and 12): client_header_timeout
 * (from the connection, or from the first byte of a keep-alive request, to the end of the head;
 * closed without an answer), keepalive_timeout (the location's value; `Keep-Alive: timeout=N` only
 * for its second value), client_body_timeout (between two reads of a body Sluice wants to read;
 * closed without an answer, 408 in the access log), send_timeout (a client that does not read is
 * closed, and the log blames the client), and proxy_read_timeout stopping while the client holds
 * the response back. Behaviour checked against nginx 1.22.1; timeouts here are 1 s or less.
 */
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { constants as h2constants } from 'node:http2';
import { join } from 'node:path';
import type { Socket } from 'node:net';
import { test } from 'node:test';
import { startHttpBackend, startRawBackend, type BackendAddress } from '../helpers/backends.js';
import { recorderFor } from '../helpers/byte-recorder.js';
import { testCerts } from '../helpers/certs.js';
import { infoConf } from '../helpers/config-text.js';
import { fileLines } from '../helpers/log-files.js';
import { startTestProxy, type TestProxy } from '../helpers/proxy.js';
import {
  SAMPLE_ACCEPT, completeResponse, headerValue, maskedFrame, parseResponseHead, rawConnect, rawRequest, readToEnd, readUntil, waitForBytes, waitForClose,
  wsHandshakeRequest,
} from '../helpers/raw-client.js';
import { tempDir } from '../helpers/temp.js';
import { startHttpsBackend } from '../helpers/tls-backends.js';
import { tlsConnect } from '../helpers/tls-client.js';
import { h2Connect, h2Request } from '../helpers/h2-client.js';
import { delay, once, waitFor, withTimeout } from '../helpers/wait.js';

const WAIT_MS = 10_000;
/** A 1 s timeout fires within a second of its deadline (HEADER_CHECK_INTERVAL_MS is 0.5 s). */
const LATE_MS = 5_000;

/** Resolves when `socket` closes; rejects after `ms`. Returns the time it took from `since`. */
async function closedAfter(socket: Socket, since: number, ms = LATE_MS): Promise<number> {
  await waitForClose(socket, ms);
  return Date.now() - since;
}

test('client_header_timeout: nothing sent, a head that never ends, a head trickled line by line: closed without an answer', async (t) => {
  const proxy = await startTestProxy(infoConf(`
    client_header_timeout 1s;
    server { listen 127.0.0.1:0; return 200 "ok"; }`), { t });
  const started = Date.now();
  const silent = await rawConnect(proxy.port);
  const partial = await rawConnect(proxy.port);
  const trickle = await rawConnect(proxy.port);
  t.after(() => [silent, partial, trickle].forEach((s) => s.destroy()));
  partial.write('GET / HTTP/1.1\r\nHo');
  trickle.write('GET / HTTP/1.1\r\n');
  // Bytes keep coming, but the head never ends: nginx's timer is a deadline, not an idle timer.
  const feeding = setInterval(() => {
    if (!trickle.destroyed) trickle.write('X-Slow: 1\r\n');
  }, 200);
  t.after(() => clearInterval(feeding));
  const times = await Promise.all([silent, partial, trickle].map((s) => closedAfter(s, started)));
  for (const ms of times) assert.ok(ms >= 990, `closed after ${ms} ms, before client_header_timeout`);
  for (const s of [silent, partial, trickle]) assert.equal(recorderFor(s).all.length, 0, 'nginx closes without an answer');
  await proxy.waitForErrorLine(/\[info\] .*client timed out \(110: Connection timed out\) while waiting for request, client: 127\.0\.0\.1/);
  await proxy.waitForErrorLine(/\[info\] .*client timed out \(110: Connection timed out\) while reading client request headers, client: 127\.0\.0\.1/);
});

test('client_header_timeout on a keep-alive connection counts from the first byte of the next head; keepalive_timeout does not cut it', async (t) => {
  const proxy = await startTestProxy(infoConf(`
    client_header_timeout 1s;
    keepalive_timeout 1500ms;
    server { listen 127.0.0.1:0; return 200 "ok"; }`), { t });
  const client = await rawConnect(proxy.port);
  t.after(() => client.destroy());
  client.write('GET / HTTP/1.1\r\nHost: a\r\n\r\n');
  const first = await readUntil(client, (b) => completeResponse(b) !== null);
  assert.equal(completeResponse(first)?.head.statusCode, 200);
  await delay(800);
  const headStarted = Date.now();
  client.write('GET / HTTP/1.1\r\n');
  const feeding = setInterval(() => {
    if (!client.destroyed) client.write('X-Slow: 1\r\n');
  }, 200);
  t.after(() => clearInterval(feeding));
  const ms = await closedAfter(client, headStarted);
  // Past the keep-alive deadline (0.7 s after the head began): the head's own second counts.
  assert.ok(ms >= 990, `closed ${ms} ms after the head began, before client_header_timeout`);
  assert.equal(recorderFor(client).pending.length, 0, 'nothing after the first answer');
});

test('client_header_timeout covers a TLS connection: no handshake, or a head that never ends after it', async (t) => {
  const certs = await testCerts();
  const proxy = await startTestProxy(infoConf(`
    server {
      listen 127.0.0.1:0 ssl;
      server_name localhost;
      client_header_timeout 1s;
      ssl_certificate ${certs.localhost.certFile};
      ssl_certificate_key ${certs.localhost.keyFile};
      return 200 "ok";
    }`), { t });
  const started = Date.now();
  const silent = await rawConnect(proxy.port);
  t.after(() => silent.destroy());
  const secure = await tlsConnect(proxy.port, { servername: 'localhost', ca: certs.ca.cert, timeoutMs: WAIT_MS });
  t.after(() => secure.destroy());
  const headStarted = Date.now();
  secure.write('GET / HTTP/1.1\r\nHost: localhost\r\n');
  assert.ok(await closedAfter(silent, started) >= 990, 'the silent connection is closed after client_header_timeout');
  assert.ok(await closedAfter(secure, headStarted) >= 990, 'the unfinished head is cut after client_header_timeout');
  assert.equal(recorderFor(secure).all.length, 0);
});

test('keepalive_timeout: the location\'s value closes an idle connection quietly; Keep-Alive: timeout=N only for the second value; 0 closes', async (t) => {
  const proxy = await startTestProxy(infoConf(`
    keepalive_timeout 60s;
    server {
      listen 127.0.0.1:0;
      location /short { keepalive_timeout 1s; return 200 "short"; }
      location /header { keepalive_timeout 1s 7; return 200 "header"; }
      location /off { keepalive_timeout 0; return 200 "off"; }
      location / { return 200 "default"; }
    }`), { t });

  // Answered before /short below, so idle for longer when /short's second has run out: the
  // http-level 60 s still holds where the location sets none.
  const kept = await rawRequest(proxy.port, 'GET / HTTP/1.1\r\nHost: a\r\n\r\n', { keepOpen: true });
  t.after(() => kept.socket.destroy());
  assert.equal(kept.head?.statusCode, 200);

  // The timer starts when the answer is out, so after the request went out (nothing earlier is sure).
  const asked = Date.now();
  const idle = await rawRequest(proxy.port, 'GET /short HTTP/1.1\r\nHost: a\r\n\r\n', { keepOpen: true });
  t.after(() => idle.socket.destroy());
  assert.equal(idle.head?.statusCode, 200);
  assert.equal(headerValue(idle.head!, 'connection'), 'keep-alive');
  assert.equal(headerValue(idle.head!, 'keep-alive'), undefined, 'nginx sends no Keep-Alive header by default');
  const ms = await closedAfter(idle.socket, asked);
  assert.ok(ms >= 990, `closed ${ms} ms after the request, before keepalive_timeout`);
  assert.equal(recorderFor(kept.socket).closed, false, 'the http-level 60 s still holds where the location sets none');

  const header = await rawRequest(proxy.port, 'GET /header HTTP/1.1\r\nHost: a\r\n\r\n');
  assert.equal(headerValue(header.head!, 'keep-alive'), 'timeout=7');
  const http10 = await rawRequest(proxy.port, 'GET /header HTTP/1.0\r\nConnection: keep-alive\r\n\r\n');
  assert.equal(headerValue(http10.head!, 'connection'), 'keep-alive');
  assert.equal(headerValue(http10.head!, 'keep-alive'), 'timeout=7');
  const closing = await rawRequest(proxy.port, 'GET /header HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
  assert.equal(headerValue(closing.head!, 'keep-alive'), undefined, 'not on a response that closes');

  const off = await rawRequest(proxy.port, 'GET /off HTTP/1.1\r\nHost: a\r\n\r\n', { until: 'close' });
  assert.equal(off.head?.statusCode, 200);
  assert.equal(headerValue(off.head!, 'connection'), 'close');
  assert.equal(off.closed, true);

  assert.equal(recorderFor(kept.socket).closed, false, 'still open after the other answers');
  assert.equal(proxy.errorLines.some((l) => l.includes('timed out')), false, `nginx logs nothing for an idle keep-alive close: ${proxy.errorLines.join('\n')}`);
});

test('keepalive_timeout starts again at each idle time: requests closer than it keep the connection for longer than it in all', async (t) => {
  const proxy = await startTestProxy(infoConf(`
    keepalive_timeout 1s;
    server { listen 127.0.0.1:0; return 200 "ok"; }`), { t });
  const client = await rawConnect(proxy.port);
  t.after(() => client.destroy());
  const started = Date.now();
  let answered = 0;
  // Six requests 0.4 s apart: 2 s in all, each idle time well within the second.
  for (let i = 0; i < 6; i++) {
    if (i > 0) await delay(400);
    client.write('GET / HTTP/1.1\r\nHost: a\r\n\r\n');
    await readUntil(client, (b) => completeResponse(b) !== null);
    answered++;
  }
  assert.equal(answered, 6);
  assert.ok(Date.now() - started >= 1990, 'the connection outlived one keepalive_timeout');
  assert.equal(recorderFor(client).closed, false, 'still open after the last answer');
  const lastAnswer = Date.now();
  // ...and the last idle time still ends it.
  const ms = await closedAfter(client, lastAnswer);
  assert.ok(ms >= 900, `closed ${ms} ms after the last answer, before keepalive_timeout`);
});

test('a WebSocket upgrade on a kept-alive connection: the keep-alive timer of the request before it does not reach the tunnel', async (t) => {
  const backend = await startRawBackend(async (conn) => {
    await conn.readUntil('\r\n\r\n');
    conn.socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${SAMPLE_ACCEPT}\r\n\r\n`);
    conn.socket.on('data', (d: Buffer) => conn.socket.write(d));
  });
  t.after(() => backend.close());
  const proxy = await startTestProxy(infoConf(`
    keepalive_timeout 1s;
    server {
      listen 127.0.0.1:0;
      location /plain { return 200 "ok"; }
      location / {
        proxy_pass http://${backend.addr};
        proxy_http_version 1.1;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection "upgrade";
      }
    }`), { t });
  const client = await rawConnect(proxy.port);
  t.after(() => client.destroy());
  client.write('GET /plain HTTP/1.1\r\nHost: a\r\n\r\n');
  const first = await readUntil(client, (b) => completeResponse(b) !== null);
  assert.equal(completeResponse(first)?.head.statusCode, 200);
  client.write(wsHandshakeRequest({ path: '/ws' }));
  const head = parseResponseHead(await readUntil(client, '\r\n\r\n'));
  assert.equal(head.statusCode, 101);
  // Past the keepalive_timeout armed when /plain was answered.
  await delay(1500);
  assert.equal(recorderFor(client).closed, false, 'the tunnel is open past keepalive_timeout');
  const frame = maskedFrame(0x1, 'still here');
  client.write(frame);
  const echoed = await readUntil(client, (b) => b.length >= frame.length);
  assert.deepEqual(echoed.subarray(0, frame.length), frame);
});

test('client_body_timeout: a stalled body ends the request without an answer (408 in the access log); a trickle within it passes', async (t) => {
  const backend = await startHttpBackend();
  t.after(() => backend.close());
  const log = join(tempDir(t).path, 'access.log');
  const proxy = await startTestProxy(infoConf(`
    log_format st '$request $status';
    access_log ${log} st;
    client_body_timeout 1s;
    server { listen 127.0.0.1:0; location / { proxy_pass http://${backend.addr}; } }`), { t });

  const stalled = await rawConnect(proxy.port);
  t.after(() => stalled.destroy());
  stalled.write('POST /stalled HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc');
  const sent = Date.now();
  const ms = await closedAfter(stalled, sent);
  assert.ok(ms >= 990, `closed ${ms} ms after the last body byte, before client_body_timeout`);
  assert.equal(recorderFor(stalled).all.length, 0, 'nginx answers nothing');
  await waitFor(() => fileLines(log).includes('POST /stalled HTTP/1.1 408') || null, { what: `a 408 line in ${log}: ${fileLines(log).join(' | ')}` });
  await waitFor(() => backend.openSockets() === 0 || null, { what: 'the upstream request to be abandoned' });

  // One chunk every 300 ms: each read restarts the timer.
  const trickle = await rawConnect(proxy.port);
  t.after(() => trickle.destroy());
  trickle.write('POST /trickle HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n');
  for (let i = 0; i < 6; i++) {
    await delay(300);
    trickle.write('2\r\nab\r\n');
  }
  trickle.write('0\r\n\r\n');
  const done = completeResponse(await readToEnd(trickle, WAIT_MS));
  assert.equal(done?.head.statusCode, 200);
  assert.equal((JSON.parse(done!.body.toString()) as { body: string }).body, 'ab'.repeat(6));
});

test('client_body_timeout does not run while the upstream holds the body back', async (t) => {
  const size = 32 * 1024 * 1024;
  // Reads nothing for 2 s (twice client_body_timeout), then the whole body.
  const backend = await startHttpBackend((req: IncomingMessage, res: ServerResponse) => {
    req.pause();
    setTimeout(() => {
      let n = 0;
      req.on('data', (c: Buffer) => void (n += c.length));
      req.on('end', () => res.end(String(n)));
      req.resume();
    }, 2000);
  });
  t.after(() => backend.close());
  const proxy = await startTestProxy(infoConf(`
    client_body_timeout 1s;
    client_max_body_size 0;
    server { listen 127.0.0.1:0; location / { proxy_pass http://${backend.addr}; } }`), { t });
  const client = await rawConnect(proxy.port);
  t.after(() => client.destroy());
  client.write(`POST / HTTP/1.1\r\nHost: a\r\nContent-Length: ${size}\r\nConnection: close\r\n\r\n`);
  client.write(Buffer.alloc(size, 0x61));
  const r = completeResponse(await readToEnd(client, 30_000));
  assert.equal(r?.head.statusCode, 200);
  assert.equal(r?.body.toString(), String(size));
});

/** 32 MiB in 64 KiB writes, with backpressure. */
const BIG = 32 * 1024 * 1024;
function sendBig(_req: IncomingMessage, res: ServerResponse): void {
  const chunk = Buffer.alloc(64 * 1024, 0x62);
  let left = BIG / chunk.length;
  res.writeHead(200, { 'Content-Length': String(BIG) });
  const write = (): void => {
    while (left > 0) {
      left--;
      if (!res.write(chunk)) {
        res.once('drain', write);
        return;
      }
    }
    res.end();
  };
  write();
}

/** Both upstream clients: Sluice's own for plain TCP, http.request for https. */
const UPSTREAMS: readonly { readonly name: string; start(t: { after(fn: () => unknown): void }): Promise<{ pass: string; backend: BackendAddress }> }[] = [
  {
    name: 'plain upstream (Sluice\'s client)',
    async start(t) {
      const backend = await startHttpBackend(sendBig);
      t.after(() => backend.close());
      return { pass: `http://${backend.addr}`, backend };
    },
  },
  {
    name: 'https upstream (http.request)',
    async start(t) {
      const certs = await testCerts();
      const backend = await startHttpsBackend({ cert: certs.localhost.cert, key: certs.localhost.key, handler: sendBig });
      t.after(() => backend.close());
      return { pass: `https://${backend.addr}`, backend };
    },
  },
];

async function bigProxy(t: { after(fn: () => unknown): void }, pass: string, extra: string): Promise<TestProxy> {
  return startTestProxy(infoConf(`
    server { listen 127.0.0.1:0; ${extra} location / { proxy_pass ${pass}; } }`), { t });
}

for (const up of UPSTREAMS) {
  test(`${up.name}: a client that pauses longer than proxy_read_timeout gets the whole response`, async (t) => {
    const { pass } = await up.start(t);
    const proxy = await bigProxy(t, pass, 'proxy_read_timeout 1s;');
    const client = await rawConnect(proxy.port);
    t.after(() => client.destroy());
    client.write('GET /big HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
    await waitForBytes(client, (b) => b.length > 1024 * 1024, WAIT_MS);
    // Twice proxy_read_timeout: a read timer left running while the client holds the proxy back
    // would fire in the second half.
    client.pause();
    await delay(2000);
    client.resume();
    const all = await readToEnd(client, 30_000);
    const head = parseResponseHead(all);
    assert.equal(head.statusCode, 200);
    assert.equal(all.length - head.headLength, BIG, 'every byte of the body');
    assert.deepEqual(proxy.errorLines.filter((l) => l.includes('timed out')), []);
  });

  test(`${up.name}: a client that stops reading for longer than send_timeout is closed, and the log blames the client`, async (t) => {
    const { pass } = await up.start(t);
    const proxy = await bigProxy(t, pass, 'send_timeout 1s; proxy_read_timeout 1s;');
    const client = await rawConnect(proxy.port);
    t.after(() => client.destroy());
    const asked = Date.now();
    client.write('GET /big HTTP/1.1\r\nHost: a\r\n\r\n');
    await waitForBytes(client, (b) => b.length > 64 * 1024, WAIT_MS);
    client.pause();
    const line = await proxy.waitForErrorLine(/client timed out/, WAIT_MS);
    assert.ok(Date.now() - asked >= 990, 'not before send_timeout');
    assert.match(line, /\[info\] .*client timed out \(110: Connection timed out\) while sending to client, client: 127\.0\.0\.1, server: , request: "GET \/big HTTP\/1\.1", upstream: "https?:\/\/127\.0\.0\.1:\d+\/big", host: "a"/);
    client.resume();
    const got = await readToEnd(client, WAIT_MS);
    assert.ok(got.length < BIG, 'the response was cut');
    assert.deepEqual(proxy.errorLines.filter((l) => l.includes('upstream timed out')), [], 'the upstream is not blamed');
  });
}

test('send_timeout on a refused upgrade whose answer carries a big body: the client that stops reading is closed', async (t) => {
  const backend = await startHttpBackend(undefined, {
    onUpgrade(_req, socket) {
      socket.on('error', () => undefined);
      socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${BIG}\r\n\r\n`);
      const chunk = Buffer.alloc(64 * 1024, 0x63);
      let left = BIG / chunk.length;
      const write = (): void => {
        while (left-- > 0) if (!socket.write(chunk)) return void socket.once('drain', write);
        socket.end();
      };
      write();
    },
  });
  t.after(() => backend.close());
  const proxy = await bigProxy(t, `http://${backend.addr}`, 'send_timeout 1s; proxy_read_timeout 1s;');
  const client = await rawConnect(proxy.port);
  t.after(() => client.destroy());
  client.write(wsHandshakeRequest({ host: 'a', path: '/refused' }));
  await waitForBytes(client, (b) => b.length > 64 * 1024, WAIT_MS);
  client.pause();
  const line = await proxy.waitForErrorLine(/client timed out/, WAIT_MS);
  assert.match(line, /client timed out \(110: Connection timed out\) while sending to client, .*request: "GET \/refused HTTP\/1\.1", upstream: "http:\/\/127\.0\.0\.1:\d+\/refused"/);
  client.resume();
  assert.ok((await readToEnd(client, WAIT_MS)).length < BIG, 'the answer was cut');
  assert.deepEqual(proxy.errorLines.filter((l) => l.includes('upstream timed out')), []);
});

/** A stream's 'close', or now if it has closed (reset streams emit 'error' first, which `once` would reject on). */
function closed(stream: { readonly destroyed: boolean; once(event: 'close', listener: () => void): unknown }, what: string): Promise<void> {
  if (stream.destroyed) return Promise.resolve();
  return withTimeout(new Promise<void>((resolve) => stream.once('close', resolve)), WAIT_MS, what);
}

test('HTTP/2: send_timeout resets the stream of a client that stops reading; client_body_timeout resets a stalled upload (408)', async (t) => {
  const certs = await testCerts();
  const backend = await startHttpBackend((req: IncomingMessage, res: ServerResponse) => {
    if (req.url === '/big') {
      sendBig(req, res);
      return;
    }
    req.resume();
    req.on('end', () => res.end('done'));
  });
  t.after(() => backend.close());
  const log = join(tempDir(t).path, 'access.log');
  const proxy = await startTestProxy(infoConf(`
    log_format st '$request $status';
    server {
      listen 127.0.0.1:0 ssl http2;
      server_name localhost;
      ssl_certificate ${certs.localhost.certFile};
      ssl_certificate_key ${certs.localhost.keyFile};
      access_log ${log} st;
      send_timeout 1s;
      client_body_timeout 1s;
      proxy_read_timeout 1s;
      location / { proxy_pass http://${backend.addr}; }
    }`), { t });
  const client = await h2Connect(proxy.port, { ca: certs.ca.cert, timeoutMs: WAIT_MS });
  t.after(() => client.close());

  const asked = Date.now();
  const download = client.session.request({ ':path': '/big' });
  download.on('error', () => undefined);
  await once(download, 'response', WAIT_MS);
  download.pause();
  const line = await proxy.waitForErrorLine(/client timed out/, WAIT_MS);
  assert.ok(Date.now() - asked >= 990, 'not before send_timeout');
  assert.match(line, /client timed out \(110: Connection timed out\) while sending to client, .*request: "GET \/big HTTP\/2\.0"/);
  download.resume();
  await closed(download, 'the download stream to close');
  assert.equal(download.rstCode, h2constants.NGHTTP2_INTERNAL_ERROR);
  assert.deepEqual(proxy.errorLines.filter((l) => l.includes('upstream timed out')), []);

  const upload = client.session.request({ ':path': '/upload', ':method': 'POST' }, { endStream: false });
  upload.on('error', () => undefined);
  upload.write('abc');
  const sent = Date.now();
  await closed(upload, 'the upload stream to close');
  assert.ok(Date.now() - sent >= 990, 'not before client_body_timeout');
  assert.equal(upload.rstCode, h2constants.NGHTTP2_CANCEL);
  await waitFor(() => fileLines(log).includes('POST /upload HTTP/2.0 408') || null, { what: `a 408 line in ${log}: ${fileLines(log).join(' | ')}` });
  // The session itself goes on.
  const after = await h2Request(client, { ':path': '/upload', ':method': 'POST' }, 'whole', WAIT_MS);
  assert.equal(after.text, 'done');
});

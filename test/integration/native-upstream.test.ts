// The upstream leg of a WebSocket handshake in the native addon (native/sluice_upstream.c,
// src/proxy/client/native-exchange.ts; issue 15, item 2): the relay's I/O thread connects, writes
// the head and reads the response head, and the tunnel takes its descriptor as it is. Both
// HTTP/1.1 front ends. What must stay as it was: header rules on the 101, the server's first
// frames, proxy_next_upstream on a refused connect, 502 and 504, non-101 answers relayed as
// responses, a wrong accept refused, and a client that leaves (499, the upstream connection
// closed). Where the addon is not loaded (SLUICE_NATIVE=off, or not built) the same requests go
// through the lean client's own socket and must give the same answers.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import WebSocket from 'ws';
import { startEchoServer } from '../../src/echo/echo-server.js';
import { nativeLegs } from '../../src/proxy/client/native-legs.js';
import { nativeTunnels } from '../../src/proxy/tunnel/native-tunnels.js';
import { Opcode } from '../../src/websocket/opcodes.js';
import { startHttpBackend, startRawBackend } from '../helpers/backends.js';
import { FRONTS, withFront } from '../helpers/front.js';
import { waitForFileLine } from '../helpers/log-files.js';
import { errorPage } from '../helpers/pages.js';
import { blackholePort, refusedPort } from '../helpers/ports.js';
import { startTestProxy } from '../helpers/proxy.js';
import {
  headerValue, maskedFrame, parseResponseHead, rawConnect, rawRequest, readFrame, readUntil, serverFrame, waitForBytes, wsHandshakeRequest,
} from '../helpers/raw-client.js';
import { recorderFor } from '../helpers/byte-recorder.js';
import { tempDir } from '../helpers/temp.js';
import { waitFor, withTimeout } from '../helpers/wait.js';
import { CLASSIC_LOCATION, CLASSIC_MAP, WAIT_MS, startScriptedUpstream, switching101 } from './ws-support.js';

const LEGS = nativeLegs();

/** The legs' figures now (zeros where the addon does not run them). */
function legs(): { started: number; answered: number; failed: number; cancelled: number } {
  return LEGS?.stats() ?? { started: 0, answered: 0, failed: 0, cancelled: 0 };
}

/** Asserts the figures moved by `delta` since `before` (nothing where the legs are off). */
function assertLegs(before: ReturnType<typeof legs>, delta: Partial<ReturnType<typeof legs>>, what: string): void {
  if (LEGS === null) return;
  const now = legs();
  for (const k of ['started', 'answered', 'failed', 'cancelled'] as const) assert.equal(now[k] - before[k], delta[k] ?? 0, `${what}: legs ${k}`);
}

function tcpSockets(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap').length;
}

function config(upstreams: string, location = '', server = '', http = ''): string {
  return `
events {}
http {
  ${CLASSIC_MAP}
  ${http}
  ${upstreams}
  server {
    listen 127.0.0.1:0;
    ${server}
    location / {
      proxy_pass http://u;
      ${CLASSIC_LOCATION}
      ${location}
    }
  }
}`;
}

const HANDSHAKE = wsHandshakeRequest({ path: '/chat' });

for (const front of FRONTS) {
  test(`[${front}] a 101 through the addon's leg: header rules applied, the server's first frame right after it, frames both ways, no proxy socket left`, async (t) => {
    const upstream = await startScriptedUpstream(t, () => Buffer.concat([
      Buffer.from(switching101({ extra: ['X-Secret: hidden', 'X-Kept: yes'] }), 'latin1'),
      serverFrame(Opcode.TEXT, 'first from upstream'),
    ]));
    const proxy = await withFront(front, () => startTestProxy(config(`upstream u { server ${upstream.addr}; }`, 'proxy_hide_header X-Secret; add_header X-Added here always;'), { t }));
    const before = legs();
    const adopted = nativeTunnels()?.stats().adopted ?? 0;
    const socketsBefore = tcpSockets();
    const client = await rawConnect(proxy.port);
    t.after(() => client.destroy());
    client.write(HANDSHAKE);
    const head = parseResponseHead(await waitForBytes(client, '\r\n\r\n', WAIT_MS));
    recorderFor(client).consume(head.headLength);
    assert.equal(head.statusCode, 101);
    assert.equal(headerValue(head, 'x-secret'), undefined, 'proxy_hide_header');
    assert.equal(headerValue(head, 'x-kept'), 'yes');
    assert.equal(headerValue(head, 'x-added'), 'here', 'add_header ... always');
    const x = await upstream.nextExchange();
    assert.equal(x.head.target, '/chat');
    assert.equal((await readFrame(client, WAIT_MS)).payload.toString(), 'first from upstream');
    client.write(maskedFrame(Opcode.TEXT, 'to upstream'));
    await x.conn.readUntil((b) => b.length >= 6 + 11, WAIT_MS);
    x.conn.socket.write(serverFrame(Opcode.TEXT, 'back'));
    assert.equal((await readFrame(client, WAIT_MS)).payload.toString(), 'back');
    if (LEGS !== null) {
      assertLegs(before, { started: 1, answered: 1 }, 'one leg, answered');
      assert.equal((nativeTunnels()?.stats().adopted ?? 0) - adopted, 1, 'the relay took the tunnel');
      // The test's client and the backend's connection are this process's only new TCP sockets (an
      // earlier test's, closing, may still be counted in socketsBefore: at most two, not exactly).
      await waitFor(() => tcpSockets() - socketsBefore <= 2, { timeoutMs: WAIT_MS, what: `no proxy socket for the tunnel (${tcpSockets() - socketsBefore} new)` });
    }
  });

  test(`[${front}] a refused connect goes to the next server; with none left, 502`, async (t) => {
    const good = await startHttpBackend(undefined, { id: 'good' });
    t.after(() => good.close());
    const dead = await refusedPort();
    const proxy = await withFront(front, () => startTestProxy(`
events {}
http {
  ${CLASSIC_MAP}
  upstream pair { server 127.0.0.1:${dead}; server ${good.addr}; }
  upstream lonely { server 127.0.0.1:${dead}; }
  server {
    listen 127.0.0.1:0;
    location /pair/ { proxy_pass http://pair; ${CLASSIC_LOCATION} }
    location /lonely/ { proxy_pass http://lonely; ${CLASSIC_LOCATION} }
  }
}`, { t }));
    let before = legs();
    const client = await rawConnect(proxy.port);
    t.after(() => client.destroy());
    client.write(wsHandshakeRequest({ path: '/pair/x' }));
    const head = parseResponseHead(await readUntil(client, '\r\n\r\n', WAIT_MS));
    assert.equal(head.statusCode, 101);
    assertLegs(before, { started: 2, failed: 1, answered: 1 }, 'refused, then the next server');
    await proxy.waitForErrorLine(new RegExp(`connect\\(\\) failed \\(111: Connection refused\\) while connecting to upstream, .*upstream: "http://127\\.0\\.0\\.1:${dead}/pair/x"`));

    before = legs();
    const failed = await rawRequest(proxy.port, wsHandshakeRequest({ path: '/lonely/x' }), { until: 'close' });
    assert.equal(failed.head?.statusCode, 502);
    assert.equal(failed.body.toString(), errorPage('502 Bad Gateway'));
    assertLegs(before, { started: 1, failed: 1 }, 'the last server refused');
  });

  test(`[${front}] proxy_connect_timeout and proxy_read_timeout on the leg give 504`, async (t) => {
    const hole = await blackholePort(t);
    const silent = await startRawBackend(async (conn) => {
      await conn.readUntil('\r\n\r\n');
    });
    t.after(() => silent.close());
    const proxy = await withFront(front, () => startTestProxy(`
events {}
http {
  ${CLASSIC_MAP}
  upstream hole { server 127.0.0.1:${hole}; }
  upstream silent { server ${silent.addr}; }
  server {
    listen 127.0.0.1:0;
    proxy_connect_timeout 300ms;
    proxy_read_timeout 300ms;
    location /hole/ { proxy_pass http://hole; ${CLASSIC_LOCATION} }
    location /silent/ { proxy_pass http://silent; ${CLASSIC_LOCATION} }
  }
}`, { t }));
    let before = legs();
    const timedOut = await rawRequest(proxy.port, wsHandshakeRequest({ path: '/hole/x' }), { until: 'close' });
    assert.equal(timedOut.head?.statusCode, 504);
    assert.equal(timedOut.body.toString(), errorPage('504 Gateway Time-out'));
    await proxy.waitForErrorLine(/upstream timed out \(110: Connection timed out\) while connecting to upstream/);
    assertLegs(before, { started: 1, failed: 1 }, 'connect timed out');

    before = legs();
    const noAnswer = await rawRequest(proxy.port, wsHandshakeRequest({ path: '/silent/x' }), { until: 'close' });
    assert.equal(noAnswer.head?.statusCode, 504);
    await proxy.waitForErrorLine(/upstream timed out \(110: Connection timed out\) while reading response header from upstream/);
    assertLegs(before, { started: 1, failed: 1 }, 'read timed out');
  });

  test(`[${front}] a 403 with a body and a 200 to an upgrade reach the client as responses; a wrong Sec-WebSocket-Accept gives 502`, async (t) => {
    const upstream = await startScriptedUpstream(t, (x) => {
      if (x.head.target === '/forbidden') return 'HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 9\r\nX-Why: rule\r\n\r\nno entry\n';
      // A head in two writes, the body after a pause: the lean client reads on from the leg's bytes.
      if (x.head.target === '/plain') {
        x.conn.socket.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n');
        setTimeout(() => x.conn.socket.end('Content-Length: 12\r\n\r\nnot a socket'), 50);
        return null;
      }
      return switching101({ accept: 'd3JvbmcgYWNjZXB0IGtleQ==' });
    });
    const proxy = await withFront(front, () => startTestProxy(config(`upstream u { server ${upstream.addr}; }`), { t }));
    let before = legs();
    const forbidden = await rawRequest(proxy.port, wsHandshakeRequest({ path: '/forbidden' }), { until: 'close' });
    assert.equal(forbidden.head?.statusCode, 403);
    assert.equal(headerValue(forbidden.head, 'x-why'), 'rule');
    assert.equal(headerValue(forbidden.head, 'content-length'), '9');
    assert.equal(forbidden.body.toString(), 'no entry\n');
    assertLegs(before, { started: 1, answered: 1 }, '403');

    before = legs();
    const plain = await rawRequest(proxy.port, wsHandshakeRequest({ path: '/plain' }), { until: 'close' });
    assert.equal(plain.head?.statusCode, 200);
    assert.equal(plain.body.toString(), 'not a socket');
    assertLegs(before, { started: 1, answered: 1 }, '200');

    before = legs();
    const wrong = await rawRequest(proxy.port, wsHandshakeRequest({ path: '/wrong' }), { until: 'close' });
    assert.equal(wrong.head?.statusCode, 502);
    assert.equal(wrong.body.toString(), errorPage('502 Bad Gateway'));
    assertLegs(before, { started: 1, answered: 1 }, 'wrong accept');
  });

  test(`[${front}] a client that leaves while the leg connects or waits for the 101: the upstream connection closes, 499 in the access log`, async (t) => {
    const hole = await blackholePort(t);
    const closed: string[] = [];
    const heads: string[] = [];
    const silent = await startRawBackend(async (conn) => {
      await conn.readUntil('\r\n\r\n');
      heads.push('head');
      // The proxy's FIN (the backend allows half-open connections: 'end', not 'close').
      await new Promise<void>((resolve) => {
        conn.socket.once('end', resolve);
        conn.socket.once('close', resolve);
      });
      closed.push('closed');
    });
    t.after(() => silent.close());
    const dir = tempDir(t);
    const log = dir.join('access.log');
    const proxy = await withFront(front, () => startTestProxy(`
events {}
http {
  ${CLASSIC_MAP}
  log_format st '$request_uri $status';
  access_log ${log} st;
  upstream hole { server 127.0.0.1:${hole}; }
  upstream silent { server ${silent.addr}; }
  server {
    listen 127.0.0.1:0;
    location /hole/ { proxy_pass http://hole; ${CLASSIC_LOCATION} }
    location /silent/ { proxy_pass http://silent; ${CLASSIC_LOCATION} }
  }
}`, { t }));
    let before = legs();
    const waiting = await rawConnect(proxy.port);
    waiting.write(wsHandshakeRequest({ path: '/silent/x' }));
    await waitFor(() => heads.length === 1, { timeoutMs: WAIT_MS, what: 'the upstream to get the head' });
    waiting.destroy();
    await waitFor(() => closed.length === 1, { timeoutMs: WAIT_MS, what: 'the backend to see its connection close' });
    await waitForFileLine(log, '/silent/x 499');
    assertLegs(before, { started: 1, cancelled: 1 }, 'cancelled while reading');

    before = legs();
    const connecting = await rawConnect(proxy.port);
    connecting.write(wsHandshakeRequest({ path: '/hole/x' }));
    if (LEGS !== null) await waitFor(() => legs().started === before.started + 1, { timeoutMs: WAIT_MS, what: 'the leg to start' });
    connecting.destroy();
    await waitForFileLine(log, '/hole/x 499');
    if (LEGS !== null) await waitFor(() => legs().cancelled === before.cancelled + 1, { timeoutMs: WAIT_MS, what: 'the leg to be cancelled' });
    assertLegs(before, { started: 1, cancelled: 1 }, 'cancelled while connecting');
  });
}

test('the leg connects to an IPv6 server; the server\'s first frame on a guarded tunnel and the client\'s bytes sent after its head take the TypeScript relay, in order', async (t) => {
  const echo = await startEchoServer({ host: '::1', id: 'v6' });
  t.after(() => echo.close());
  const upstream = await startScriptedUpstream(t, () => Buffer.concat([Buffer.from(switching101(), 'latin1'), serverFrame(Opcode.TEXT, 'early news')]));
  const proxy = await startTestProxy(`
events {}
http {
  ${CLASSIC_MAP}
  server {
    listen 127.0.0.1:0;
    location /v6 { proxy_pass http://[::1]:${echo.port}; ${CLASSIC_LOCATION} }
    location /guarded { proxy_pass http://${upstream.addr}; ${CLASSIC_LOCATION} websocket_max_message_size 1m; }
    location /early { proxy_pass http://${upstream.addr}; ${CLASSIC_LOCATION} }
  }
}`, { t });
  let before = legs();
  const ws = new WebSocket(`ws://127.0.0.1:${proxy.port}/v6`);
  t.after(() => ws.terminate());
  await withTimeout(new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); }), WAIT_MS, 'the WebSocket to open');
  const reply = withTimeout(new Promise<string>((resolve) => ws.once('message', (m) => resolve(m.toString()))), WAIT_MS, 'the echo');
  ws.send('over v6');
  assert.equal(await reply, 'over v6');
  assertLegs(before, { started: 1, answered: 1 }, 'IPv6');

  before = legs();
  const guarded = await rawConnect(proxy.port);
  t.after(() => guarded.destroy());
  guarded.write(wsHandshakeRequest({ path: '/guarded' }));
  const head = parseResponseHead(await waitForBytes(guarded, '\r\n\r\n', WAIT_MS));
  recorderFor(guarded).consume(head.headLength);
  assert.equal(head.statusCode, 101);
  assert.equal((await readFrame(guarded, WAIT_MS)).payload.toString(), 'early news');
  const g = await upstream.nextExchange();
  guarded.write(maskedFrame(Opcode.TEXT, 'guarded up'));
  await g.conn.readUntil((b) => b.length >= 6 + 10, WAIT_MS);
  assertLegs(before, { started: 1, answered: 1 }, 'guarded');

  before = legs();
  const early = await rawConnect(proxy.port);
  t.after(() => early.destroy());
  // The client's first frame in the packet of its handshake: it goes upstream after the 101.
  early.write(Buffer.concat([Buffer.from(wsHandshakeRequest({ path: '/early' }), 'latin1'), maskedFrame(Opcode.TEXT, 'right after')]));
  const earlyHead = parseResponseHead(await waitForBytes(early, '\r\n\r\n', WAIT_MS));
  recorderFor(early).consume(earlyHead.headLength);
  assert.equal(earlyHead.statusCode, 101);
  const e = await upstream.nextExchange();
  assert.equal(e.early.length, 0, 'nothing of the client\'s before the 101');
  await e.conn.readUntil((b) => b.length >= 6 + 11, WAIT_MS);
  assert.equal((await readFrame(early, WAIT_MS)).payload.toString(), 'early news');
  assertLegs(before, { started: 1, answered: 1 }, 'early client bytes');
});

test('SLUICE_NATIVE_UPSTREAM=off is read once: the legs are there with the addon unless it is set', () => {
  if (process.env.SLUICE_NATIVE === 'off' || process.env.SLUICE_NATIVE_UPSTREAM === 'off' || nativeTunnels() === null) assert.equal(LEGS, null);
  else assert.notEqual(LEGS, null);
});


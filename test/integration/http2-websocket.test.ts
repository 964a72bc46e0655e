// WebSockets over HTTP/2 (RFC 8441), a Sluice extension nginx lacks: extended CONNECT with
// `:protocol websocket` becomes an ordinary HTTP/1.1 upgrade upstream (same forwarded headers, a
// fresh Sec-WebSocket-Key whose accept is checked), the client gets 200 on its stream, and DATA is
// tunnelled both ways with flow control; END_STREAM/FIN and RST_STREAM/reset map to each other.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { constants, type ClientHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';
import { test } from 'node:test';
import { acceptKey } from '../../src/websocket/accept-key.js';
import { Opcode } from '../../src/websocket/opcodes.js';
import { startHttpBackend } from '../helpers/backends.js';
import { recorderFor } from '../helpers/byte-recorder.js';
import { testCerts } from '../helpers/certs.js';
import { h2Connect, h2WebSocket, type H2Client } from '../helpers/h2-client.js';
import { startTestProxy, type TestProxy } from '../helpers/proxy.js';
import { maskedFrame, readFrame, readToEnd, serverFrame, waitForBytes, waitForClose } from '../helpers/raw-client.js';
import { tempDir } from '../helpers/temp.js';
import { delay, waitFor, withTimeout } from '../helpers/wait.js';
import {
  CLASSIC_LOCATION, CLASSIC_MAP, assertRelayedThenGoingAway, sha256, startScriptedUpstream, streamFrames, tunnelEvents, values, type ScriptedExchange,
} from './ws-support.js';

const WAIT_MS = 10_000;

async function h2Proxy(t: import('node:test').TestContext, addr: string, options: { location?: string; http?: string } = {}): Promise<{ proxy: TestProxy; client: H2Client }> {
  const certs = await testCerts();
  const proxy = await startTestProxy(`
events {}
http {
  ${options.http ?? ''}
  server {
    listen 127.0.0.1:0 ssl http2;
    server_name localhost;
    ssl_certificate ${certs.localhost.certFile};
    ssl_certificate_key ${certs.localhost.keyFile};
    location / {
      proxy_pass http://${addr};
      ${options.location ?? ''}
    }
  }
}`, { t });
  const client = await h2Connect(proxy.port, { ca: certs.ca.cert, timeoutMs: WAIT_MS });
  t.after(() => client.close());
  return { proxy, client };
}

/** The stream as a byte source for the raw-client helpers (readFrame, waitForBytes). */
function bytes(stream: ClientHttp2Stream): Socket {
  const s = stream as unknown as Socket;
  recorderFor(s);
  return s;
}

function closed(stream: ClientHttp2Stream): Promise<number> {
  return withTimeout(new Promise<number>((resolve) => {
    if (stream.closed) resolve(stream.rstCode ?? 0);
    else stream.once('close', () => resolve(stream.rstCode ?? 0));
  }), WAIT_MS, 'the stream to close');
}


test('RFC 8441 echo: 200 on the stream, the upstream sees an HTTP/1.1 upgrade with the usual forwarded headers and a fresh key', async (t) => {
  const backend = await startHttpBackend(undefined, { id: 'echo' });
  t.after(() => backend.close());
  const dir = tempDir(t);
  const log = dir.join('access.log');
  const { client } = await h2Proxy(t, backend.addr, {
    http: `${CLASSIC_MAP}\n  log_format ws '$request_method $request_uri $server_protocol $status $http_upgrade ws=$websocket_duration';`,
    location: `${CLASSIC_LOCATION}\n      proxy_set_header X-Forwarded-Proto $scheme;\n      access_log ${log} ws;`,
  });
  const { stream, headers } = await h2WebSocket(client, '/chat?room=1', { origin: 'https://app.example', 'sec-websocket-protocol': 'chat' }, WAIT_MS);
  assert.equal(headers[':status'], 200);
  assert.equal(headers['sec-websocket-accept'], undefined, 'RFC 8441 5: no accept key on HTTP/2');
  assert.equal(headers['upgrade'], undefined);
  assert.equal(headers['connection'], undefined);
  const seen = backend.requests.find((r) => r.upgrade)!;
  assert.equal(seen.method, 'GET');
  assert.equal(seen.url, '/chat?room=1');
  assert.equal(seen.httpVersion, '1.1');
  assert.equal(seen.headers['upgrade'], 'websocket');
  assert.equal(seen.headers['connection'], 'upgrade');
  assert.equal(seen.headers['sec-websocket-version'], '13');
  assert.equal(seen.headers['sec-websocket-protocol'], 'chat');
  assert.equal(seen.headers['origin'], 'https://app.example');
  assert.equal(seen.headers['host'], 'localhost');
  assert.equal(seen.headers['x-real-ip'], '127.0.0.1');
  assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1');
  assert.equal(seen.headers['x-forwarded-proto'], 'https');
  assert.match(String(seen.headers['sec-websocket-key']), /^[A-Za-z0-9+/]{22}==$/);

  const s = bytes(stream);
  stream.write(maskedFrame(Opcode.TEXT, 'hello over h2'));
  const echo = await readFrame(s, WAIT_MS);
  assert.equal(echo.opcode, Opcode.TEXT);
  assert.equal(echo.payload.toString(), 'hello over h2');
  const big = randomBytes(49 * 1024);
  stream.write(maskedFrame(Opcode.BINARY, big));
  const bigBack = await readFrame(s, WAIT_MS);
  assert.ok(bigBack.payload.equals(big));

  // Clean close: close frame, its reply, then END_STREAM both ways.
  stream.write(maskedFrame(Opcode.CLOSE, Buffer.from([0x03, 0xe8])));
  const reply = await readFrame(s, WAIT_MS);
  assert.equal(reply.opcode, Opcode.CLOSE);
  stream.end();
  await readToEnd(s, WAIT_MS);
  assert.equal(await closed(stream), constants.NGHTTP2_NO_ERROR);
  const line = await waitFor(() => {
    try {
      return readFileSync(log, 'utf8').split('\n')[0];
    } catch {
      return undefined;
    }
  }, { timeoutMs: WAIT_MS, what: 'the access log line' });
  assert.match(line, /^GET \/chat\?room=1 HTTP\/2\.0 200 websocket ws=\d+\.\d{3}$/);
});

test('RFC 8441 flow control: 4 MiB each way arrive intact through 256 KiB stream windows', async (t) => {
  const backend = await startHttpBackend(undefined, { id: 'echo' });
  t.after(() => backend.close());
  const { client } = await h2Proxy(t, backend.addr);
  const { stream } = await h2WebSocket(client, '/bulk', {}, WAIT_MS);
  const s = bytes(stream);
  const payload = randomBytes(4 * 1024 * 1024);
  stream.write(maskedFrame(Opcode.BINARY, payload));
  const back = await readFrame(s, 30_000);
  assert.equal(back.payload.length, payload.length);
  assert.equal(sha256(back.payload), sha256(payload));
  stream.close();
});

test('RFC 8441: the upstream\'s Sec-WebSocket-Accept is checked against the key the proxy made; a wrong one gives 502', async (t) => {
  let key = '';
  const upstream = await startScriptedUpstream(t, (x: ScriptedExchange) => {
    key = values(x.head, 'sec-websocket-key')[0] ?? '';
    return 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: bm90IHRoZSByaWdodCBvbmU=\r\n\r\n';
  });
  const { client, proxy } = await h2Proxy(t, upstream.addr);
  const { stream, headers } = await h2WebSocket(client, '/', {}, WAIT_MS);
  assert.equal(headers[':status'], 502);
  const body = await readToEnd(bytes(stream), WAIT_MS);
  assert.match(body.toString(), /<title>502 Bad Gateway<\/title>/);
  assert.notEqual(key, '');
  await proxy.waitForErrorLine('upstream sent 101 without a valid Sec-WebSocket-Accept');
});

test('RFC 8441: a refused upgrade is relayed as an ordinary response on the stream', async (t) => {
  const upstream = await startScriptedUpstream(t, () => 'HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 6\r\nX-Why: nope\r\n\r\nno way');
  const { client } = await h2Proxy(t, upstream.addr);
  const { stream, headers } = await h2WebSocket(client, '/', {}, WAIT_MS);
  assert.equal(headers[':status'], 403);
  assert.equal(headers['x-why'], 'nope');
  assert.equal((await readToEnd(bytes(stream), WAIT_MS)).toString(), 'no way');
  assert.equal(await closed(stream), constants.NGHTTP2_NO_ERROR);
});

/** A scripted upstream that accepts the upgrade with the right accept key (and sends `first` with it). */
async function acceptingUpstream(t: import('node:test').TestContext, first: Buffer = Buffer.alloc(0)): ReturnType<typeof startScriptedUpstream> {
  return startScriptedUpstream(t, (x) => {
    const key = values(x.head, 'sec-websocket-key')[0] ?? '';
    return Buffer.concat([
      Buffer.from(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptKey(key)}\r\n\r\n`, 'latin1'),
      first,
    ]);
  });
}

test('RFC 8441 half-close: END_STREAM reaches the upstream as FIN while the other direction keeps flowing', async (t) => {
  const greeting = serverFrame(Opcode.TEXT, 'hi from upstream');
  const upstream = await acceptingUpstream(t, greeting);
  const { client } = await h2Proxy(t, upstream.addr);
  const { stream, headers } = await h2WebSocket(client, '/', {}, WAIT_MS);
  assert.equal(headers[':status'], 200);
  const s = bytes(stream);
  // Bytes that came in the packet of the 101 arrive first.
  const first = await readFrame(s, WAIT_MS);
  assert.equal(first.payload.toString(), 'hi from upstream');
  const x = await upstream.nextExchange();
  const frame = maskedFrame(Opcode.TEXT, 'last words');
  stream.end(frame);
  const received = await x.conn.readToEnd(WAIT_MS);
  assert.ok(Buffer.from(received).equals(frame), 'the client frame, then FIN');
  // The upstream still talks after the client's END_STREAM.
  x.conn.socket.write(serverFrame(Opcode.TEXT, 'after your FIN'));
  assert.equal((await readFrame(s, WAIT_MS)).payload.toString(), 'after your FIN');
  x.conn.socket.end();
  await readToEnd(s, WAIT_MS);
  assert.equal(await closed(stream), constants.NGHTTP2_NO_ERROR);
});

/**
 * Going away (shutdown) on a half-closed RFC 8441 tunnel, as for HTTP/1.1 tunnels (ws-close.test.ts
 * "28: going away"): the direction whose END_STREAM/FIN went out gets nothing more; the other gets
 * the frame in flight, close 1001 and its end; the side still sending is read out, not reset.
 */
for (const [quiet, midFrame] of [['client', false], ['upstream', false], ['client', true], ['upstream', true]] as const) {
  test(`RFC 8441 going away after the ${quiet} half-closed${midFrame ? ' in the middle of a frame' : ''}: no frame after that end; the open direction gets close 1001 and its end; no reset`, async (t) => {
    const upstream = await acceptingUpstream(t);
    const { client, proxy } = await h2Proxy(t, upstream.addr);
    const events = tunnelEvents(t, proxy.port);
    const { stream } = await h2WebSocket(client, '/', {}, WAIT_MS);
    const s = bytes(stream);
    const up = (await upstream.nextExchange()).conn.socket;
    const [quietSide, talker] = quiet === 'client' ? [s, up] : [up, s];
    const whole = (quiet === 'client' ? maskedFrame : serverFrame)(Opcode.TEXT, `the ${quiet} is done sending`);
    const last = midFrame ? whole.subarray(0, 10) : whole;
    quietSide.end(last);
    assert.ok((await readToEnd(talker, WAIT_MS)).equals(last), 'the last frame, then the end');

    const { sent, stop } = streamFrames(t, talker, quiet === 'client' ? serverFrame : maskedFrame);
    const quietRecorder = recorderFor(quietSide);
    await waitFor(() => quietRecorder.pending.length >= 512 * 1024, { timeoutMs: WAIT_MS, what: 'the stream to flow' });
    const closing = proxy.handle.close(0);
    const got = await readToEnd(quietSide, WAIT_MS);
    await delay(100);
    stop();
    assert.equal(quietRecorder.error, null, `the ${quiet} gets a clean end, not a reset`);
    assertRelayedThenGoingAway(got, sent, quiet === 'upstream');
    assert.equal(recorderFor(talker).pending.length, 0, 'nothing after the end');
    talker.end();
    assert.equal(await closed(stream), constants.NGHTTP2_NO_ERROR, 'the stream ends cleanly, not with RST_STREAM');
    await waitForClose(up, WAIT_MS);
    assert.equal(recorderFor(up).error, null, 'the upstream is not reset');
    await closing;
    await waitFor(() => events.closed.length === 1, { timeoutMs: WAIT_MS, what: 'the tunnel to close' });
    assert.equal(events.closed[0]!.reason, 'shutdown');
  });
}

test('RFC 8441 resets: RST_STREAM from the client destroys the upstream connection; an upstream reset resets the stream (CONNECT_ERROR)', async (t) => {
  const upstream = await acceptingUpstream(t);
  const { client, proxy } = await h2Proxy(t, upstream.addr);
  const events = tunnelEvents(t, proxy.port);

  const one = await h2WebSocket(client, '/one', {}, WAIT_MS);
  assert.equal(one.headers[':status'], 200);
  const x1 = await upstream.nextExchange();
  one.stream.close(constants.NGHTTP2_CANCEL);
  // (Node's client sends END_STREAM before its RST_STREAM, so the upstream sees FIN, then the reset.)
  await x1.conn.readToEnd(WAIT_MS);
  const closedOne = await waitFor(() => events.closed.find((e) => e.ctx.rawUri === '/one'), { timeoutMs: WAIT_MS, what: 'the first tunnel to close' });
  assert.equal(closedOne.reason, `client reset (${constants.NGHTTP2_CANCEL})`);

  const two = await h2WebSocket(client, '/two', {}, WAIT_MS);
  const x2 = await upstream.nextExchange();
  const s2 = bytes(two.stream);
  x2.conn.socket.write(serverFrame(Opcode.TEXT, 'before the reset'));
  assert.equal((await readFrame(s2, WAIT_MS)).payload.toString(), 'before the reset');
  x2.conn.socket.resetAndDestroy();
  assert.equal(await closed(two.stream), constants.NGHTTP2_CONNECT_ERROR);

  // The session survives both: a third tunnel works.
  const three = await h2WebSocket(client, '/three', {}, WAIT_MS);
  assert.equal(three.headers[':status'], 200);
  await waitForBytes(bytes(three.stream), () => true, 50).catch(() => undefined);
  three.stream.close();
});

test('RFC 8441: an unsupported :protocol gets 501; a plain CONNECT gets 405', async (t) => {
  const backend = await startHttpBackend();
  t.after(() => backend.close());
  const { client } = await h2Proxy(t, backend.addr);
  const { stream, headers } = await h2WebSocket(client, '/', { ':protocol': 'webtransport' }, WAIT_MS);
  assert.equal(headers[':status'], 501);
  stream.close();
  const plain = client.session.request({ ':method': 'CONNECT', ':authority': 'example.com:443' });
  plain.on('error', () => undefined);
  const [h] = await withTimeout(new Promise<[Record<string, unknown>]>((resolve) => plain.once('response', (hh) => resolve([hh]))), WAIT_MS, 'the CONNECT answer');
  assert.equal(h[':status'], 405);
  plain.close();
  assert.equal(backend.requests.length, 0);
});

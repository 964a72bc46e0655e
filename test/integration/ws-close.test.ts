// BEHAVIOURS.md "Data phase" 20-23 and 25: how a tunnel ends (clean close, abrupt close, half-close,
// reset) and what is logged when it does; and 28 where it meets 22, going away on a half-closed tunnel.
// Raw sockets on both sides: the proxy is transparent, so every byte (and every missing byte: no
// invented close frame) is checked.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import WebSocket from 'ws';
import { startHttpBackend } from '../helpers/backends.js';
import { recorderFor } from '../helpers/byte-recorder.js';
import { startTestProxy } from '../helpers/proxy.js';
import {
  maskedFrame, parseResponseHead, rawConnect, rawRequest, readToEnd, readUntil, serverFrame, waitForClose, wsHandshakeRequest,
} from '../helpers/raw-client.js';
import { tempDir } from '../helpers/temp.js';
import { delay, once, waitFor } from '../helpers/wait.js';
import { Opcode } from '../../src/websocket/opcodes.js';
import {
  WAIT_MS, assertRelayedThenGoingAway, finFirstThenReadSlowly, openRawTunnel, proxyConfig, startScriptedUpstream, streamFrames, switching101, tunnelEvents,
  values, waitForTunnelOf, type RawTunnel,
} from './ws-support.js';

const closePayload = (code: number, reason: string): Buffer => Buffer.concat([Buffer.from([code >> 8, code & 0xff]), Buffer.from(reason)]);

/** Both TCP connections of a tunnel are fully closed. */
async function bothClosed({ client, up }: RawTunnel): Promise<void> {
  await waitForClose(client, WAIT_MS);
  await waitForClose(up.socket, WAIT_MS);
}

test('20: clean close: the close frame crosses, its reply crosses back, then both TCP connections close', async (t) => {
  const upstream = await startScriptedUpstream(t, () => switching101());
  const proxy = await startTestProxy(proxyConfig(upstream.addr), { t });
  const events = tunnelEvents(t, proxy.port);
  const tunnel = await openRawTunnel(t, proxy.port, upstream);
  const { client, up } = tunnel;
  const close = maskedFrame(Opcode.CLOSE, closePayload(1000, 'done'));
  client.write(close);
  assert.ok((await up.readUntil((b) => b.length >= close.length, WAIT_MS)).equals(close));
  // RFC 6455 7.1.1: the server closes TCP first, right after its close frame.
  const reply = serverFrame(Opcode.CLOSE, closePayload(1000, 'done'));
  up.socket.end(reply);
  assert.ok((await readToEnd(client, WAIT_MS)).equals(reply), 'the reply and then the FIN');
  client.end();
  await bothClosed(tunnel);
  await waitFor(() => events.closed.length === 1, { timeoutMs: WAIT_MS, what: 'the tunnel to close' });
  // The client's close frame came first: the client ended it, though the upstream's FIN came first.
  assert.equal(events.closed[0]?.reason, 'client closed');
  assert.equal(events.open(), 0);
});

test('20: clean close with a ws client and the echo backend: code and reason come back, nothing stays open', async (t) => {
  const backend = await startHttpBackend(undefined, { id: 'echo' });
  t.after(() => backend.close());
  const proxy = await startTestProxy(proxyConfig(backend.addr), { t });
  const events = tunnelEvents(t, proxy.port);
  const ws = new WebSocket(proxy.wsUrl('/'));
  t.after(() => ws.terminate());
  await once(ws, 'open', WAIT_MS);
  const closed = once(ws, 'close', WAIT_MS);
  ws.close(4001, 'see you');
  const [code, reason] = await closed;
  assert.equal(code, 4001);
  assert.equal(String(reason), 'see you');
  await waitFor(() => backend.openSockets() === 0 && events.closed.length === 1, { timeoutMs: WAIT_MS, what: 'backend socket and tunnel to close' });
});

test('21: abrupt close by the upstream: its last bytes reach the client, then the client connection closes; no close frame invented', async (t) => {
  const upstream = await startScriptedUpstream(t, () => switching101());
  const proxy = await startTestProxy(proxyConfig(upstream.addr), { t });
  const events = tunnelEvents(t, proxy.port);
  // An ordinary client (not half-open capable): it closes once the proxy has closed its side.
  const client = await rawConnect(proxy.port, { timeoutMs: WAIT_MS });
  t.after(() => client.destroy());
  client.write(wsHandshakeRequest());
  assert.equal(parseResponseHead(await readUntil(client, '\r\n\r\n', WAIT_MS)).statusCode, 101);
  const { conn: up } = await upstream.nextExchange();
  const last = Buffer.concat([serverFrame(Opcode.TEXT, 'last words'), serverFrame(Opcode.BINARY, Buffer.alloc(5000, 1))]);
  up.socket.write(last, () => up.socket.destroy());
  assert.ok((await readToEnd(client, WAIT_MS)).equals(last), 'exactly the upstream bytes, then the end');
  await waitForClose(client, WAIT_MS);
  await waitFor(() => events.closed.length === 1, { timeoutMs: WAIT_MS, what: 'the tunnel to close' });
  assert.equal(events.closed[0]?.reason, 'upstream closed');
  assert.equal(recorderFor(client).pending.length, 0, 'nothing after the end');
});

test('21: after an abrupt close by the upstream, a half-open client that keeps writing is cut off', async (t) => {
  const upstream = await startScriptedUpstream(t, () => switching101());
  const proxy = await startTestProxy(proxyConfig(upstream.addr), { t });
  const events = tunnelEvents(t, proxy.port);
  const { client, up } = await openRawTunnel(t, proxy.port, upstream);
  const last = serverFrame(Opcode.TEXT, 'gone');
  up.socket.write(last, () => up.socket.destroy());
  assert.ok((await readToEnd(client, WAIT_MS)).equals(last));
  // The upstream answers the next bytes with a reset; the proxy then drops the client too.
  await waitFor(() => {
    if (!client.destroyed && client.writable) client.write(maskedFrame(Opcode.TEXT, 'anyone?'));
    return recorderFor(client).closed;
  }, { timeoutMs: WAIT_MS, intervalMs: 50, what: 'the client connection to be closed' });
  await waitFor(() => events.closed.length === 1, { timeoutMs: WAIT_MS, what: 'the tunnel to close' });
});

test('21: abrupt close by the upstream while the client is slow: pending data is flushed before the close', async (t) => {
  const upstream = await startScriptedUpstream(t, () => switching101());
  const proxy = await startTestProxy(proxyConfig(upstream.addr), { t });
  const { client, up } = await openRawTunnel(t, proxy.port, upstream);
  client.pause();
  const frames = Buffer.concat(Array.from({ length: 16 }, (_, i) => serverFrame(Opcode.BINARY, Buffer.alloc(64 * 1024, i))));
  up.socket.write(frames, () => up.socket.destroy());
  await waitFor(() => up.socket.destroyed, { timeoutMs: WAIT_MS, what: 'the upstream to go away' });
  await delay(300);
  client.resume();
  const got = await readToEnd(client, 30_000);
  assert.equal(got.length, frames.length);
  assert.ok(got.equals(frames), 'every pending byte arrived, in order, before the end');
});

test('21: abrupt close by the client: its last bytes reach the upstream, then the upstream connection ends; no close frame invented', async (t) => {
  const upstream = await startScriptedUpstream(t, () => switching101());
  const proxy = await startTestProxy(proxyConfig(upstream.addr), { t });
  const events = tunnelEvents(t, proxy.port);
  const { client, up } = await openRawTunnel(t, proxy.port, upstream);
  const last = Buffer.concat([maskedFrame(Opcode.TEXT, 'bye for now'), maskedFrame(Opcode.BINARY, Buffer.alloc(5000, 2))]);
  client.write(last, () => client.destroy());
  assert.ok((await up.readToEnd(WAIT_MS)).equals(last), 'exactly the client bytes, then the end');
  // The upstream, as servers do, closes once its client has gone.
  up.socket.end();
  await waitForClose(up.socket, WAIT_MS);
  await waitFor(() => events.closed.length === 1, { timeoutMs: WAIT_MS, what: 'the tunnel to close' });
  assert.equal(events.closed[0]?.reason, 'client closed');
});

test('22: half-close by the client: the FIN reaches the upstream, which keeps sending until it ends too', async (t) => {
  const upstream = await startScriptedUpstream(t, () => switching101());
  const proxy = await startTestProxy(proxyConfig(upstream.addr), { t });
  const events = tunnelEvents(t, proxy.port);
  const tunnel = await openRawTunnel(t, proxy.port, upstream);
  const { client, up } = tunnel;
  const request = maskedFrame(Opcode.TEXT, 'last request');
  client.end(request);
  assert.ok((await up.readToEnd(WAIT_MS)).equals(request), 'the request, then the FIN');
  for (let i = 0; i < 3; i++) {
    const part = serverFrame(Opcode.TEXT, `answer part ${i}`);
    await delay(30);
    up.socket.write(part);
    assert.ok((await readUntil(client, (b) => b.length >= part.length, WAIT_MS)).equals(part), `part ${i} after the client's FIN`);
  }
  assert.equal(recorderFor(client).ended, false, 'the client still has an open read side');
  assert.equal(events.closed.length, 0, 'the tunnel is still open');
  up.socket.end();
  assert.equal((await readToEnd(client, WAIT_MS)).length, 0);
  await bothClosed(tunnel);
  await waitFor(() => events.closed.length === 1, { timeoutMs: WAIT_MS, what: 'the tunnel to close' });
});

for (const keepalive of [false, true]) {
  test(`22: half-close by the upstream: the FIN reaches the client, which keeps sending until it ends too${keepalive ? ' (upstream keepalive pool)' : ''}`, async (t) => {
    const upstream = await startScriptedUpstream(t, () => switching101());
    const config = keepalive
      ? `events {} http { upstream app { server ${upstream.addr}; keepalive 4; } server { listen 127.0.0.1:0; location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; } } }`
      : proxyConfig(upstream.addr);
    const proxy = await startTestProxy(config, { t });
    const events = tunnelEvents(t, proxy.port);
    const tunnel = await openRawTunnel(t, proxy.port, upstream);
    const { client, up } = tunnel;
    // `Connection ""` (for upstream keepalive) does not stop the upgrade from being forwarded.
    assert.deepEqual(values(upstream.exchanges[0]!.head, 'connection'), ['upgrade']);
    const notice = serverFrame(Opcode.TEXT, 'server is done talking');
    up.socket.end(notice);
    assert.ok((await readToEnd(client, WAIT_MS)).equals(notice), 'the notice, then the FIN');
    for (let i = 0; i < 3; i++) {
      const part = maskedFrame(Opcode.TEXT, `client part ${i}`);
      await delay(30);
      client.write(part);
      assert.ok((await up.readUntil((b) => b.length >= part.length, WAIT_MS)).equals(part), `part ${i} after the upstream's FIN`);
    }
    assert.equal(up.ended, false, 'the upstream still has an open read side');
    assert.equal(events.closed.length, 0, 'the tunnel is still open');
    client.end();
    assert.equal((await up.readToEnd(WAIT_MS)).length, 0);
    await bothClosed(tunnel);
    await waitFor(() => events.closed.length === 1, { timeoutMs: WAIT_MS, what: 'the tunnel to close' });
  });
}

/**
 * Going away (BEHAVIOURS 28: drain after a reload, graceful shutdown) on a half-closed tunnel. The
 * `quiet` side has sent its FIN, which the proxy passed on; the other side, the `talker`, is still
 * sending. The direction whose FIN went out carries nothing more (a close frame after a FIN would
 * be a write after end: EPIPE in the addon, ERR_STREAM_WRITE_AFTER_END in TypeScript, and a reset
 * of both connections). The direction still open is relayed up to the end of the frame in flight,
 * then gets its close 1001 and its FIN. The talker's later bytes are read and dropped until it ends
 * too; then both connections close cleanly, and the tunnel ends with the going-away reason (a
 * half-close does not end a tunnel, going away does).
 */
for (const quiet of ['client', 'upstream'] as const) {
  for (const [trigger, midFrame] of [['shutdown', false], ['drain', false], ['shutdown', true]] as const) {
    const ended = midFrame ? 'half-closed in the middle of a frame' : 'half-closed';
    test(`28: going away (${trigger}) after the ${quiet} ${ended}: no frame after that FIN; the open direction gets the frame in flight, close 1001 and FIN; no reset`, async (t) => {
      const upstream = await startScriptedUpstream(t, () => switching101());
      const spare = await startScriptedUpstream(t, () => switching101());
      const config = (addr: string): string => `events {} http { websocket_drain_timeout 10ms 1ms;
        upstream app { server ${addr}; } server { listen 127.0.0.1:0; location / { proxy_pass http://app; } } }`;
      const proxy = await startTestProxy(config(upstream.addr), { t, graceMs: 5000 });
      const events = tunnelEvents(t, proxy.port);
      const tunnel = await openRawTunnel(t, proxy.port, upstream);
      await waitForTunnelOf(events, tunnel.client);
      const [quietSocket, talker] = quiet === 'client' ? [tunnel.client, tunnel.up.socket] : [tunnel.up.socket, tunnel.client];
      const frame = quiet === 'client' ? serverFrame : maskedFrame;
      const whole = (quiet === 'client' ? maskedFrame : serverFrame)(Opcode.TEXT, `the ${quiet} is done sending`);
      // A frame cut short by the FIN leaves that direction's frame cursor inside a frame for good.
      const last = midFrame ? whole.subarray(0, 10) : whole;
      quietSocket.end(last);
      assert.ok((await readToEnd(talker, WAIT_MS)).equals(last), 'the last frame, then the FIN');

      const { sent, stop } = streamFrames(t, talker, frame);
      const quietRecorder = recorderFor(quietSocket);
      await waitFor(() => quietRecorder.pending.length >= 512 * 1024, { timeoutMs: WAIT_MS, what: 'the stream to flow' });

      const closing = trigger === 'shutdown' ? proxy.handle.close(0) : proxy.handle.reload({ text: config(spare.addr) });
      const got = await readToEnd(quietSocket, WAIT_MS);
      // The talker goes on a while after the quiet side has closed (its bytes are dropped), then
      // ends, as a peer finishing its stream does: it is not reset for it.
      await delay(100);
      stop();
      assert.equal(quietRecorder.error, null, `the ${quiet} gets a clean FIN, not a reset`);
      assertRelayedThenGoingAway(got, sent, quiet === 'upstream');

      assert.equal(recorderFor(talker).pending.length, 0, `nothing reaches the ${quiet === 'client' ? 'upstream' : 'client'} after the FIN`);
      talker.end();
      await waitForClose(talker, WAIT_MS);
      await waitForClose(quietSocket, WAIT_MS);
      assert.equal(recorderFor(talker).error, null, 'the talker is not reset');
      await closing;
      await waitFor(() => events.closed.length === 1, { timeoutMs: WAIT_MS, what: 'the tunnel to close' });
      assert.equal(events.closed[0]!.reason, trigger === 'shutdown' ? 'shutdown' : 'drained after reload');
    });
  }
}

test('23: a reset by the client mid-stream destroys the upstream connection; the proxy carries on', async (t) => {
  const upstream = await startScriptedUpstream(t, () => switching101());
  const proxy = await startTestProxy(proxyConfig(upstream.addr), { t });
  const events = tunnelEvents(t, proxy.port);
  const { client, up } = await openRawTunnel(t, proxy.port, upstream);
  const chunk = serverFrame(Opcode.BINARY, Buffer.alloc(16 * 1024, 3));
  const streaming = setInterval(() => { if (!up.socket.destroyed) up.socket.write(chunk); }, 2);
  t.after(() => clearInterval(streaming));
  await readUntil(client, (b) => b.length >= 10 * chunk.length, WAIT_MS);
  client.resetAndDestroy();
  await waitForClose(up.socket, WAIT_MS);
  clearInterval(streaming);
  await waitFor(() => events.closed.length === 1, { timeoutMs: WAIT_MS, what: 'the tunnel to close' });
  assert.match(events.closed[0]?.reason ?? '', /^client (error|closed)/);
  const again = await openRawTunnel(t, proxy.port, upstream);
  const ping = maskedFrame(Opcode.PING, 'still there?');
  again.client.write(ping);
  assert.ok((await again.up.readUntil((b) => b.length >= ping.length, WAIT_MS)).equals(ping));
});

test('23: a reset by the upstream mid-stream destroys the client connection; the proxy carries on', async (t) => {
  const upstream = await startScriptedUpstream(t, () => switching101());
  const proxy = await startTestProxy(proxyConfig(upstream.addr), { t });
  const events = tunnelEvents(t, proxy.port);
  const { client, up } = await openRawTunnel(t, proxy.port, upstream);
  const chunk = maskedFrame(Opcode.BINARY, Buffer.alloc(16 * 1024, 4));
  const streaming = setInterval(() => { if (!client.destroyed) client.write(chunk); }, 2);
  t.after(() => clearInterval(streaming));
  await up.readUntil((b) => b.length >= 10 * chunk.length, WAIT_MS);
  up.socket.resetAndDestroy();
  await waitForClose(client, WAIT_MS);
  clearInterval(streaming);
  await waitFor(() => events.closed.length === 1, { timeoutMs: WAIT_MS, what: 'the tunnel to close' });
  assert.match(events.closed[0]?.reason ?? '', /^upstream (error|closed)/);
  const again = await openRawTunnel(t, proxy.port, upstream);
  const ping = maskedFrame(Opcode.PING, 'still there?');
  again.client.write(ping);
  assert.ok((await again.up.readUntil((b) => b.length >= ping.length, WAIT_MS)).equals(ping));
});

test('25: accounting: one access-log line when the session ends, with 101, the bytes each way and the session time', async (t) => {
  const dir = tempDir(t);
  const log = dir.join('ws-access.log');
  const upstream = await startScriptedUpstream(t, (x) => (x.head.target === '/refused'
    ? 'HTTP/1.1 403 Forbidden\r\nContent-Length: 3\r\n\r\nno\n'
    : switching101()));
  const proxy = await startTestProxy(proxyConfig(upstream.addr, {
    http: `log_format acct '$status $bytes_sent $bytes_received $request_time';`,
    server: `access_log ${log} acct;`,
  }), { t });
  const events = tunnelEvents(t, proxy.port);
  const started = Date.now();
  const tunnel = await openRawTunnel(t, proxy.port, upstream, '/chat');
  const { client, up } = tunnel;
  const fromClient = Buffer.concat([maskedFrame(Opcode.TEXT, 'a'.repeat(1000)), maskedFrame(Opcode.BINARY, Buffer.alloc(70_000, 1))]);
  const fromServer = Buffer.concat([serverFrame(Opcode.TEXT, 'b'.repeat(3000)), serverFrame(Opcode.BINARY, Buffer.alloc(100_000, 2))]);
  client.write(fromClient);
  await up.readUntil((b) => b.length >= fromClient.length, WAIT_MS);
  up.socket.write(fromServer);
  await readUntil(client, (b) => b.length >= fromServer.length, WAIT_MS);
  await delay(400);
  assert.ok(!existsSync(log) || readFileSync(log, 'utf8') === '', 'nothing is logged while the tunnel is open');
  const close = maskedFrame(Opcode.CLOSE, closePayload(1000, ''));
  client.write(close);
  await up.readUntil((b) => b.length >= close.length, WAIT_MS);
  const reply = serverFrame(Opcode.CLOSE, closePayload(1000, ''));
  up.socket.end(reply);
  await readToEnd(client, WAIT_MS);
  client.end();
  await bothClosed(tunnel);
  const elapsed = (Date.now() - started) / 1000;
  await waitFor(() => events.closed.length === 1, { timeoutMs: WAIT_MS, what: 'the tunnel to close' });

  const text = await waitFor(() => (existsSync(log) && readFileSync(log, 'utf8').endsWith('\n') ? readFileSync(log, 'utf8') : null), {
    timeoutMs: WAIT_MS, what: 'the access-log line',
  });
  const lines = text.trimEnd().split('\n');
  assert.equal(lines.length, 1, `one line per session: ${JSON.stringify(lines)}`);
  const [status, sent, received, time] = lines[0]!.split(' ');
  assert.equal(status, '101');
  // Everything the client got (the 101 head and every tunnelled byte) ...
  assert.equal(Number(sent), recorderFor(client).all.length);
  // ... and everything it sent: the request head, then every tunnelled byte.
  assert.equal(Number(received), client.bytesWritten);
  assert.equal(Number(received), Buffer.byteLength(wsHandshakeRequest({ path: '/chat' })) + fromClient.length + close.length);
  assert.match(time ?? '', /^\d+\.\d{3}$/);
  assert.ok(Number(time) >= 0.4 && Number(time) <= elapsed + 0.5, `request_time ${time} covers the session (${elapsed}s)`);

  const refused = await openRefused(proxy.port);
  assert.equal(refused.statusCode, 403);
  const both = await waitFor(() => { const all = readFileSync(log, 'utf8').trimEnd().split('\n'); return all.length === 2 ? all : null; }, {
    timeoutMs: WAIT_MS, what: 'the line for the refused upgrade',
  });
  assert.equal(both[1]!.split(' ')[0], '403');
  assert.equal(Number(both[1]!.split(' ')[2]), refused.requestBytes, 'bytes received for a refused upgrade: its request head');
});

async function openRefused(port: number): Promise<{ statusCode: number; requestBytes: number }> {
  const request = wsHandshakeRequest({ path: '/refused' });
  const res = await rawRequest(port, request, { until: 'close', timeoutMs: WAIT_MS });
  return { statusCode: res.head?.statusCode ?? 0, requestBytes: Buffer.byteLength(request) };
}

test('25: the tunnel-open event names the upstream server; the close event gives the reason', async (t) => {
  const upstream = await startScriptedUpstream(t, () => switching101());
  const proxy = await startTestProxy(proxyConfig(upstream.addr), { t });
  const events = tunnelEvents(t, proxy.port);
  const tunnel = await openRawTunnel(t, proxy.port, upstream);
  const opened = await waitForTunnelOf(events, tunnel.client);
  assert.equal(opened.server, upstream.addr);
  assert.equal(opened.ctx.status, 101);
  tunnel.client.end();
  await waitFor(() => tunnel.up.ended, { timeoutMs: WAIT_MS, what: 'the FIN upstream' });
  tunnel.up.socket.end();
  await waitFor(() => events.closed.length === 1, { timeoutMs: WAIT_MS, what: 'the tunnel to close' });
  assert.equal(events.closed[0]?.ctx, opened.ctx);
  assert.equal(events.closed[0]?.reason, 'client closed');
});

for (const first of ['upstream', 'client'] as const) {
  test(`22: half-close both ways: the ${first} ends first and reads slowly, the other side sends 16 MiB in 4 KiB frames and ends; every byte arrives, in order, before the FIN`, async (t) => {
    const upstream = await startScriptedUpstream(t, () => switching101());
    const proxy = await startTestProxy(proxyConfig(upstream.addr), { t });
    const events = tunnelEvents(t, proxy.port);
    const frames: Buffer[] = [];
    for (let i = 0; i < 4096; i++) {
      const payload = randomBytes(4096);
      frames.push(first === 'upstream' ? maskedFrame(Opcode.BINARY, payload) : serverFrame(Opcode.BINARY, payload));
    }
    const all = Buffer.concat(frames);
    // One round loses bytes only when the late FIN lands while bytes are queued in the proxy
    // (most rounds, not all): three rounds make the race all but certain to show.
    const lost: number[] = [];
    for (let round = 0; round < 3; round++) {
      const tunnel = await openRawTunnel(t, proxy.port, upstream);
      const [reader, writer] = first === 'upstream' ? [tunnel.up.socket, tunnel.client] : [tunnel.client, tunnel.up.socket];
      const got = await finFirstThenReadSlowly(reader, writer, frames);
      lost.push(all.length - got.length);
      if (got.length === all.length) assert.ok(got.equals(all), `round ${round}: the bytes arrive intact and in order`);
      await bothClosed(tunnel);
      await waitFor(() => events.closed.length === round + 1, { timeoutMs: WAIT_MS, what: `tunnel ${round} to close` });
      assert.equal(events.closed[round]!.reason, `${first} closed`);
    }
    assert.deepEqual(lost, [0, 0, 0], `bytes lost per round of ${all.length}`);
  });
}

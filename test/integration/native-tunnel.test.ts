// The native tunnel (native/sluice_tunnel.c): once a plain-TCP tunnel is open, its descriptors move
// to the addon's I/O thread. The BEHAVIOURS data-phase and close suites (ws-data, ws-close,
// timeouts, reload) run against it by default and again with SLUICE_NATIVE=off against the
// TypeScript tunnel (see package.json "test"); this file checks what only the hand-over has: that
// it happens, that Node lets go of both sockets while every figure still counts the tunnel, the
// splice path for large payloads, going away in the middle of a spliced frame, and descriptors
// returning after many tunnels. Where the addon could not be built (no C compiler: a machine with
// only Node and npm) tunnels stay in TypeScript and this file checks that; test/e2e/native-addon
// (`npm run test:e2e`) fails when npm ci did not build it.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { request } from 'node:http';
import { test } from 'node:test';
import WebSocket from 'ws';
import { nativeAddonProblem, tunnelAddon } from '../../src/core/native-addon.js';
import { nativeTunnels } from '../../src/proxy/tunnel/native-tunnels.js';
import { Opcode } from '../../src/websocket/opcodes.js';
import { startHttpBackend } from '../helpers/backends.js';
import { recorderFor } from '../helpers/byte-recorder.js';
import { runCli } from '../helpers/cli-process.js';
import { startTestProxy } from '../helpers/proxy.js';
import { maskedFrame, readToEnd, readUntil, serverFrame } from '../helpers/raw-client.js';
import { tempDir } from '../helpers/temp.js';
import { once, waitFor } from '../helpers/wait.js';
import {
  WAIT_MS, framesOf, openRawTunnel, proxyConfig, startScriptedUpstream, switching101, tunnelEvents, waitForTunnelOf,
} from './ws-support.js';

const KiB = 1024;
const MiB = 1024 * KiB;
/** SLUICE_NATIVE=off, or no addon built. */
const NATIVE_OFF = tunnelAddon() === null;

/** The addon's figures now (zeros when it is not loaded). */
function figures(): { adopted: number; closed: number; splicedBytes: number; copiedBytes: number; pendingBuffers: number } {
  return nativeTunnels()?.stats() ?? { adopted: 0, closed: 0, splicedBytes: 0, copiedBytes: 0, pendingBuffers: 0 };
}

/** TCP sockets this process has open in libuv (the test's own, the proxy's and the backends'). */
function tcpSockets(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap').length;
}

function openDescriptors(): number {
  return readdirSync('/proc/self/fd').length;
}

function stubStatus(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/basic_status' }, (res) => {
      let body = '';
      res.setEncoding('latin1');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
    req.end();
  });
}

test('the addon loads where npm ci built it; SLUICE_NATIVE=off leaves it out', () => {
  if (process.env.SLUICE_NATIVE === 'off') {
    assert.equal(tunnelAddon(), null);
    assert.match(nativeAddonProblem(), /SLUICE_NATIVE=off/);
    return;
  }
  // Not built is allowed here (test/e2e/native-addon insists); built but not loading is not.
  if (tunnelAddon() === null) assert.match(nativeAddonProblem(), /^it is not built /);
  else assert.equal(nativeAddonProblem(), '');
});

test('an open tunnel moves to the addon: Node lets go of both proxy sockets, stub_status and the byte figures still count it', async (t) => {
  const upstream = await startScriptedUpstream(t, () => switching101());
  const proxy = await startTestProxy(`
events {}
http {
  server {
    listen 127.0.0.1:0;
    location / { proxy_pass http://${upstream.addr}; }
    location = /basic_status { stub_status; }
  }
}`, { t });
  const events = tunnelEvents(t, proxy.port);
  const before = figures();
  const socketsBefore = tcpSockets();
  const { client, up } = await openRawTunnel(t, proxy.port, upstream);
  const { ctx } = await waitForTunnelOf(events, client);
  const received = ctx.bytesReceived;
  const sent = ctx.bytesSent;
  client.write(maskedFrame(Opcode.TEXT, 'ping through'));
  await up.readUntil((b) => b.length >= 18, WAIT_MS);
  up.socket.write(serverFrame(Opcode.TEXT, 'pong back'));
  await readUntil(client, (b) => b.length >= 11, WAIT_MS);
  if (NATIVE_OFF) {
    assert.equal(figures().adopted, before.adopted);
    assert.equal(tcpSockets() - socketsBefore, 4, 'the TypeScript tunnel keeps its two sockets (plus the test\'s two)');
  } else {
    assert.equal(figures().adopted, before.adopted + 1, 'the addon took the tunnel');
    // The test's own client and upstream sockets are in this process too: only they are left.
    await waitFor(() => tcpSockets() - socketsBefore === 2, { timeoutMs: WAIT_MS, what: 'the proxy to close its two net.Sockets' });
  }
  // The figures move while the addon relays: the frames are 18 and 11 bytes.
  await waitFor(() => ctx.bytesReceived === received + 18 && ctx.bytesSent === sent + 11, {
    timeoutMs: WAIT_MS, what: `live byte figures (got ${ctx.bytesReceived - received} and ${ctx.bytesSent - sent})`,
  });
  const status = await stubStatus(proxy.port);
  // The tunnel and this status request: two active connections, both writing (nginx's reading).
  assert.match(status, /^Active connections: 2 $/m);
  assert.match(status, /Reading: 0 Writing: 2 Waiting: 0/);
  assert.equal(proxy.handle.stats!.snapshot().tunnels.open, 1);
  client.end();
  await up.readToEnd(WAIT_MS);
  up.socket.end();
  await waitFor(() => events.closed.length === 1, { timeoutMs: WAIT_MS, what: 'the tunnel to end' });
  assert.equal(events.closed[0]!.reason, 'client closed');
  assert.equal(events.closed[0]!.ctx.bytesReceived, received + 18);
  assert.equal(events.closed[0]!.ctx.bytesSent, sent + 11);
  if (!NATIVE_OFF) assert.equal(figures().closed, before.closed + 1);
});

test('frames of every size around the splice threshold cross intact both ways; large payloads are spliced', async (t) => {
  const backend = await startHttpBackend(undefined, { id: 'echo' });
  t.after(() => backend.close());
  const proxy = await startTestProxy(proxyConfig(backend.addr), { t });
  const ws = new WebSocket(proxy.wsUrl('/'), { perMessageDeflate: false });
  t.after(() => ws.terminate());
  await once(ws, 'open', WAIT_MS);
  const before = figures();
  const sizes = [0, 1, 125, 126, 65_535, 65_536, 16 * KiB - 1, 16 * KiB, 16 * KiB + 1, 70 * KiB, MiB + 3, 4 * MiB];
  for (const size of sizes) {
    const payload = randomBytes(size);
    const echoed = new Promise<Buffer>((resolve) => ws.once('message', (m: Buffer) => resolve(m)));
    ws.send(payload);
    const got = await echoed;
    assert.equal(got.length, size);
    assert.ok(got.equals(payload), `a ${size}-byte message came back intact`);
  }
  const after = figures();
  if (NATIVE_OFF) {
    assert.equal(after.adopted, before.adopted);
    return;
  }
  // The echo backend's own framing goes through the copy path, payloads of 16 KiB and more
  // through the pipe: both moved bytes.
  const total = sizes.reduce((a, b) => a + b, 0);
  assert.ok(after.splicedBytes - before.splicedBytes > total, `spliced ${after.splicedBytes - before.splicedBytes} bytes of ${2 * total}`);
  assert.ok(after.copiedBytes > before.copiedBytes, 'small frames take the copy path');
});

test('bytes queued for a slow reader: the direction\'s buffer is freed once they are out, and the open tunnel holds none', async (t) => {
  const upstream = await startScriptedUpstream(t, () => switching101());
  const proxy = await startTestProxy(proxyConfig(upstream.addr), { t });
  const events = tunnelEvents(t, proxy.port);
  const { client, up } = await openRawTunnel(t, proxy.port, upstream);
  await waitForTunnelOf(events, client);
  const before = figures().pendingBuffers;
  // 4 KiB frames take the copy path (payloads from 16 KiB on are spliced through a pipe).
  const all = Buffer.concat(Array.from({ length: 4096 }, () => serverFrame(Opcode.BINARY, randomBytes(4 * KiB))));
  client.pause();
  up.socket.write(all);
  if (!NATIVE_OFF) {
    await waitFor(() => figures().pendingBuffers === before + 1, { timeoutMs: WAIT_MS, what: 'the proxy to queue bytes for the paused client' });
  }
  client.resume();
  const got = await readUntil(client, (b) => b.length >= all.length, 30_000);
  assert.ok(got.equals(all), '16 MiB arrived intact and in order');
  const ping = maskedFrame(Opcode.PING, 'still open');
  client.write(ping);
  assert.ok((await up.readUntil((b) => b.length >= ping.length, WAIT_MS)).equals(ping));
  assert.equal(events.closed.length, 0, 'the tunnel is still open');
  if (!NATIVE_OFF) {
    await waitFor(() => figures().pendingBuffers === before, {
      timeoutMs: WAIT_MS, what: `the drained buffer to be freed (${figures().pendingBuffers - before} still held)`,
    });
  }
  client.end();
  up.socket.end();
  await waitFor(() => events.closed.length === 1, { timeoutMs: WAIT_MS, what: 'the tunnel to end' });
});

test('going away in the middle of a spliced 1 MiB frame: the frame completes, then close 1001 each way, then FIN', async (t) => {
  const upstream = await startScriptedUpstream(t, () => switching101());
  const proxy = await startTestProxy(proxyConfig(upstream.addr), { t, graceMs: 5000 });
  const events = tunnelEvents(t, proxy.port);
  const { client, up } = await openRawTunnel(t, proxy.port, upstream);
  await waitForTunnelOf(events, client);
  const payload = randomBytes(MiB);
  const frame = serverFrame(Opcode.BINARY, payload);
  const split = 300 * KiB;
  up.socket.write(frame.subarray(0, split));
  const recorder = recorderFor(client);
  await waitFor(() => recorder.pending.length >= split, { timeoutMs: WAIT_MS, what: 'the first part of the frame' });
  // Shutdown with no grace: the tunnel goes away now, in the middle of the frame.
  const closing = proxy.handle.close(0);
  await new Promise((r) => setTimeout(r, 100));
  up.socket.write(frame.subarray(split));
  const upBytes = await up.readUntil((b) => b.length >= 4, WAIT_MS);
  const toUpstream = framesOf(upBytes);
  assert.equal(toUpstream.length, 1);
  assert.equal(toUpstream[0]!.opcode, Opcode.CLOSE);
  assert.equal(toUpstream[0]!.masked, true, 'the close frame to the upstream is masked');
  assert.equal(toUpstream[0]!.payload.readUInt16BE(0), 1001);
  // The client gets the whole frame, then the close frame, then the FIN.
  const toClient = framesOf(await readToEnd(client, WAIT_MS));
  assert.equal(toClient.length, 2);
  assert.equal(toClient[0]!.opcode, Opcode.BINARY);
  assert.ok(toClient[0]!.payload.equals(payload), 'the frame in flight completed intact');
  assert.equal(toClient[1]!.opcode, Opcode.CLOSE);
  assert.equal(toClient[1]!.masked, false);
  assert.equal(toClient[1]!.payload.readUInt16BE(0), 1001);
  up.socket.end();
  client.end();
  await closing;
  assert.equal(events.closed.length, 1);
  assert.equal(events.closed[0]!.reason, 'shutdown');
});

test('hundreds of tunnels ended every way give back every descriptor', async (t) => {
  const backend = await startHttpBackend(undefined, { id: 'echo' });
  t.after(() => backend.close());
  const proxy = await startTestProxy(proxyConfig(backend.addr), { t });
  const events = tunnelEvents(t, proxy.port);
  const fdsBefore = openDescriptors();
  const before = figures();
  const n = 240;
  for (let round = 0; round < n / 40; round++) {
    await Promise.all(Array.from({ length: 40 }, async (_, i) => {
      const ws = new WebSocket(proxy.wsUrl('/'), { perMessageDeflate: false });
      await once(ws, 'open', WAIT_MS);
      const echoed = once(ws, 'message', WAIT_MS);
      ws.send(randomBytes(i % 3 === 0 ? 40 * KiB : 100));
      await echoed;
      const closed = once(ws, 'close', WAIT_MS);
      if (i % 2 === 0) ws.close(1000);
      else ws.terminate();
      await closed;
    }));
  }
  await waitFor(() => events.closed.length === n, { timeoutMs: WAIT_MS, what: `all ${n} tunnels to end (${events.closed.length})` });
  if (!NATIVE_OFF) {
    const after = figures();
    assert.equal(after.adopted - before.adopted, n);
    await waitFor(() => figures().closed - before.closed === n, { timeoutMs: WAIT_MS, what: 'the addon to close them all' });
  }
  await waitFor(() => openDescriptors() <= fdsBefore + 2, { timeoutMs: WAIT_MS, what: `descriptors to return (${openDescriptors()} vs ${fdsBefore})` });
  assert.equal(proxy.handle.stats!.snapshot().tunnels.open, 0);
});

test('native_tunnels off keeps tunnels in TypeScript; "native_tunnels on" without the addon is a -t error with file:line', async (t) => {
  const backend = await startHttpBackend(undefined, { id: 'echo' });
  t.after(() => backend.close());
  const proxy = await startTestProxy(proxyConfig(backend.addr, { location: 'native_tunnels off;' }), { t });
  const before = figures();
  const ws = new WebSocket(proxy.wsUrl('/'), { perMessageDeflate: false });
  t.after(() => ws.terminate());
  await once(ws, 'open', WAIT_MS);
  const echoed = once(ws, 'message', WAIT_MS);
  ws.send('stays in TypeScript');
  assert.equal(String((await echoed as unknown[])[0]), 'stays in TypeScript');
  assert.equal(figures().adopted, before.adopted);

  const dir = tempDir(t);
  const conf = dir.write('on.conf', 'events {}\nhttp {\n  native_tunnels on;\n  server { listen 127.0.0.1:0; location / { proxy_pass http://127.0.0.1:9; } }\n}\n');
  const off = await runCli(['-t', '-c', conf], dir.path, { SLUICE_NATIVE: 'off' });
  assert.equal(off.code, 1);
  assert.match(off.stderr, /\[emerg\] "native_tunnels on" needs the native tunnel addon, but SLUICE_NATIVE=off is set in the environment in .*on\.conf:3/);
  assert.match(off.stderr, /hint: build it with "npm run build:native"/);
  if (!NATIVE_OFF) {
    const on = await runCli(['-t', '-c', conf], dir.path);
    assert.equal(on.code, 0, on.stderr);
  }
});

// BEHAVIOURS.md "Data phase" 16-19 and 24: what crosses an open tunnel, byte for byte, at any size
// and speed, and that tunnels leave nothing behind. Closing (20-23) and accounting (25) are in
// ws-close.test.ts.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { test } from 'node:test';
import WebSocket from 'ws';
import { startHttpBackend, type HttpBackend } from '../helpers/backends.js';
import { recorderFor } from '../helpers/byte-recorder.js';
import { startTestProxy, type TestProxy } from '../helpers/proxy.js';
import { maskedFrame, readUntil, serverFrame } from '../helpers/raw-client.js';
import { delay, once, waitFor, withTimeout } from '../helpers/wait.js';
import { Opcode } from '../../src/websocket/opcodes.js';
import {
  CLASSIC_LOCATION, CLASSIC_MAP, WAIT_MS, openRawTunnel, proxyConfig, sha256, startScriptedUpstream, switching101, tunnelEvents, waitForTunnelOf,
  type TunnelEvent,
} from './ws-support.js';

const MiB = 1024 * 1024;

async function echoProxy(t: import('node:test').TestContext, options: { location?: string; http?: string } = {}): Promise<{ backend: HttpBackend; proxy: TestProxy }> {
  const backend = await startHttpBackend(undefined, { id: 'echo' });
  t.after(() => backend.close());
  const proxy = await startTestProxy(proxyConfig(backend.addr, options), { t });
  return { backend, proxy };
}

/** A `ws` client through the proxy, open; terminated by `t.after`. */
async function openWs(t: import('node:test').TestContext, proxy: TestProxy, path = '/'): Promise<WebSocket> {
  const ws = new WebSocket(proxy.wsUrl(path), { perMessageDeflate: false });
  t.after(() => ws.terminate());
  await once(ws, 'open', WAIT_MS);
  return ws;
}

/** The next `count` messages on `ws`, as Buffers with their binary flag. */
function nextMessages(ws: WebSocket, count: number, timeoutMs = WAIT_MS): Promise<{ data: Buffer; binary: boolean }[]> {
  const got: { data: Buffer; binary: boolean }[] = [];
  return withTimeout(new Promise((resolve, reject) => {
    const onMessage = (data: Buffer, binary: boolean): void => {
      got.push({ data, binary });
      if (got.length === count) {
        ws.off('message', onMessage);
        resolve(got);
      }
    };
    ws.on('message', onMessage);
    ws.once('close', (code: number) => reject(new Error(`closed (${code}) after ${got.length} of ${count} messages`)));
  }), timeoutMs, `${count} messages (got ${got.length})`);
}


/**
 * A poll that says whether `read()` has stood still for `quietMs` and for at least 8 polls in a row:
 * one long gap between polls (the machine busy elsewhere, timers run before pending I/O) is no
 * proof that the flow stopped.
 */
function stillness(read: () => number, quietMs: number): () => boolean {
  let last = read();
  let since = Date.now();
  let polls = 0;
  return () => {
    const now = read();
    if (now !== last) {
      last = now;
      since = Date.now();
      polls = 0;
      return false;
    }
    polls++;
    return polls >= 8 && Date.now() - since >= quietMs;
  };
}

/** Waits until `read()` has not changed for `quietMs` (the flow has stalled) and returns it. */
async function stalled(read: () => number, quietMs = 400, timeoutMs = WAIT_MS): Promise<number> {
  await waitFor(stillness(read, quietMs), { timeoutMs, intervalMs: 25, what: 'the transfer to stall' });
  return read();
}

test('16: bytes cross byte-exact both ways, client first: text, binary (every byte value) and raw non-frame bytes', async (t) => {
  const upstream = await startScriptedUpstream(t, () => switching101());
  const proxy = await startTestProxy(proxyConfig(upstream.addr), { t });
  const { client, up } = await openRawTunnel(t, proxy.port, upstream);
  const every = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
  const toUpstream = Buffer.concat([
    maskedFrame(Opcode.TEXT, 'héllo wörld ✓'),
    maskedFrame(Opcode.BINARY, every),
    every, // a transparent pipe does not care whether these are frames
    Buffer.from('\r\n\r\nGET / HTTP/1.1\r\n\r\n'),
  ]);
  client.write(toUpstream);
  assert.deepEqual(await up.readUntil((b) => b.length >= toUpstream.length, WAIT_MS), toUpstream);
  const toClient = Buffer.concat([serverFrame(Opcode.TEXT, 'réponse'), serverFrame(Opcode.BINARY, Buffer.from(every).reverse()), Buffer.from([0, 0, 0xff])]);
  up.socket.write(toClient);
  assert.deepEqual(await readUntil(client, (b) => b.length >= toClient.length, WAIT_MS), toClient);
  await delay(50);
  assert.equal(recorderFor(client).pending.length, 0, 'nothing more reached the client');
  assert.equal(up.received.length, upstreamHeadLength(up.received) + toUpstream.length, 'nothing more reached the upstream');
});

function upstreamHeadLength(received: Buffer): number {
  return received.indexOf('\r\n\r\n') + 4;
}

test('16: server first: the upstream speaks before the client and the bytes arrive exactly', async (t) => {
  const greeting = Buffer.concat([serverFrame(Opcode.TEXT, 'server speaks first'), serverFrame(Opcode.BINARY, Buffer.from([1, 2, 3]))]);
  const upstream = await startScriptedUpstream(t, async (x) => {
    x.conn.socket.write(switching101());
    await delay(50);
    x.conn.socket.write(greeting);
    return null;
  });
  const proxy = await startTestProxy(proxyConfig(upstream.addr), { t });
  const { client, up } = await openRawTunnel(t, proxy.port, upstream);
  assert.deepEqual(await readUntil(client, (b) => b.length >= greeting.length, WAIT_MS), greeting);
  const reply = maskedFrame(Opcode.TEXT, 'client answers');
  client.write(reply);
  assert.deepEqual(await up.readUntil((b) => b.length >= reply.length, WAIT_MS), reply);
});

for (const config of [{ name: 'no Upgrade lines', location: '', http: '' }, { name: 'classic map config', location: CLASSIC_LOCATION, http: CLASSIC_MAP }]) {
  test(`16: a ws client round-trips text and binary messages through the echo backend (${config.name})`, async (t) => {
    const { proxy } = await echoProxy(t, config);
    const ws = await openWs(t, proxy);
    const binary = randomBytes(1000);
    const replies = nextMessages(ws, 3);
    ws.send('text ✓ 😀');
    ws.send(binary);
    ws.send('');
    const [a, b, c] = await replies;
    assert.deepEqual([a!.binary, a!.data.toString()], [false, 'text ✓ 😀']);
    assert.deepEqual([b!.binary, sha256(b!.data)], [true, sha256(binary)]);
    assert.deepEqual([c!.binary, c!.data.length], [false, 0]);
  });
}

test('17: large messages (49 KB, 64 KiB - 1, 64 KiB, 64 KiB + 1, 16 MiB) arrive intact both ways, text and binary', async (t) => {
  const { proxy } = await echoProxy(t);
  const ws = await openWs(t, proxy);
  for (const size of [49 * 1000, 49 * 1024, 64 * 1024 - 1, 64 * 1024, 64 * 1024 + 1, 16 * MiB]) {
    const payload = randomBytes(size);
    const reply = nextMessages(ws, 1, 60_000);
    ws.send(payload);
    const [got] = await reply;
    assert.equal(got!.binary, true);
    assert.equal(got!.data.length, size);
    assert.equal(sha256(got!.data), sha256(payload), `binary ${size}`);
  }
  for (const size of [64 * 1024 - 1, 64 * 1024, 64 * 1024 + 1]) {
    const text = 'é'.repeat(Math.floor(size / 2)) + (size % 2 === 1 ? 'x' : '');
    const reply = nextMessages(ws, 1, 60_000);
    ws.send(text);
    const [got] = await reply;
    assert.equal(got!.binary, false);
    assert.equal(got!.data.length, size);
    assert.equal(got!.data.toString(), text, `text ${size}`);
  }
});

/** The kernel's TCP buffer sizes in bytes ([min, default, max] of net.ipv4.tcp_rmem and tcp_wmem). */
function tcpBuffers(): { rmem: number[]; wmem: number[] } {
  const read = (name: string, fallback: number[]): number[] => {
    try {
      const v = readFileSync(`/proc/sys/net/ipv4/${name}`, 'latin1').trim().split(/\s+/).map(Number);
      return v.length === 3 && v.every((n) => Number.isFinite(n) && n > 0) ? v : fallback;
    } catch {
      return fallback;
    }
  };
  // Off Linux: generous stand-ins (the bounds below only grow with them).
  return { rmem: read('tcp_rmem', [4096, 256 * 1024, 64 * MiB]), wmem: read('tcp_wmem', [4096, 256 * 1024, 64 * MiB]) };
}

const TCP = tcpBuffers();
/**
 * The most a proxy that honours backpressure can have read from a source whose receiver is paused:
 * what the kernel holds on the receiving hop (the proxy's send buffer, autotuned up to tcp_wmem's
 * maximum; the paused receiver's receive buffer, which grows only as its owner reads, so
 * tcp_rmem's default) plus the proxy's own buffers (a read or two beyond a high-water mark), with
 * room to spare. Without backpressure the proxy reads whatever the source writes.
 */
const READ_BOUND = TCP.wmem[2]! + TCP.rmem[1]! + 2 * MiB;
/**
 * More than the sending hop can absorb too (the source's send buffer and the proxy's receive
 * buffer, both at their maxima, whatever autotuning did), so that a source writing this much
 * blocks unless the proxy keeps reading.
 */
const WRITE_CAP = READ_BOUND + TCP.wmem[2]! + TCP.rmem[2]! + 8 * MiB;

/**
 * Writes fresh 256 KiB frames to `source` until it is blocked (a write still pending while the
 * proxy's read count `proxyRead()` stands still, see {@link stillness}) or WRITE_CAP bytes are out,
 * and returns them in order. How much that is depends on the kernel's buffers, never on luck: the
 * source is blocked exactly when the whole path up to the proxy is full and the proxy has stopped
 * reading.
 */
async function writeUntilBlocked(source: Socket, frame: (payload: Buffer) => Buffer, proxyRead: () => number): Promise<Buffer[]> {
  const frames: Buffer[] = [];
  const deadline = Date.now() + 20_000;
  for (let total = 0; total < WRITE_CAP;) {
    const f = frame(randomBytes(256 * 1024));
    frames.push(f);
    total += f.length;
    if (source.write(f)) continue;
    const still = stillness(proxyRead, 400);
    const blocked = await waitFor(() => (source.writableLength === 0 ? 'drained' : still() ? 'blocked' : null), {
      timeoutMs: Math.max(0, deadline - Date.now()), intervalMs: 25,
      what: `the write to drain or the proxy to stop reading (${total} bytes written, the proxy has read ${proxyRead()})`,
    });
    if (blocked === 'blocked') break;
  }
  return frames;
}

test('17: backpressure toward a paused client: the proxy stops reading the upstream, memory stays bounded, nothing is lost', async (t) => {
  const upstream = await startScriptedUpstream(t, () => switching101());
  const proxy = await startTestProxy(proxyConfig(upstream.addr), { t });
  const events = tunnelEvents(t, proxy.port);
  const { client, up, head } = await openRawTunnel(t, proxy.port, upstream);
  const { ctx } = await waitForTunnelOf(events, client);
  client.pause();
  const all = Buffer.concat(await writeUntilBlocked(up.socket, (p) => serverFrame(Opcode.BINARY, p), () => ctx.bytesSent));
  const relayed = await stalled(() => ctx.bytesSent, 400, 30_000) - head.headLength;
  assert.ok(relayed < READ_BOUND, `the proxy read ${relayed} of ${all.length} bytes from the upstream for a paused client (at most ${READ_BOUND})`);
  assert.ok(up.socket.writableLength > 0, 'the upstream is still blocked: the backpressure reached it');
  client.resume();
  const got = await readUntil(client, (b) => b.length >= all.length, 60_000);
  assert.equal(got.length, all.length);
  assert.ok(got.equals(all), `the ${all.length} bytes arrived intact and in order`);
  await waitFor(() => up.socket.writableLength === 0, { timeoutMs: WAIT_MS, what: 'the upstream writes to complete' });
  assert.equal(ctx.bytesSent, head.headLength + all.length);
});

test('17: backpressure toward a paused upstream: the proxy stops reading the client, memory stays bounded, nothing is lost', async (t) => {
  const upstream = await startScriptedUpstream(t, () => switching101());
  const proxy = await startTestProxy(proxyConfig(upstream.addr), { t });
  const events = tunnelEvents(t, proxy.port);
  const { client, up } = await openRawTunnel(t, proxy.port, upstream);
  const { ctx } = await waitForTunnelOf(events, client);
  const before = ctx.bytesReceived;
  up.socket.pause();
  const all = Buffer.concat(await writeUntilBlocked(client, (p) => maskedFrame(Opcode.BINARY, p), () => ctx.bytesReceived));
  const relayed = await stalled(() => ctx.bytesReceived, 400, 30_000) - before;
  assert.ok(relayed < READ_BOUND, `the proxy read ${relayed} of ${all.length} bytes from the client for a paused upstream (at most ${READ_BOUND})`);
  assert.ok(client.writableLength > 0, 'the client is still blocked: the backpressure reached it');
  up.socket.resume();
  const got = await up.readUntil((b) => b.length >= all.length, 60_000);
  assert.equal(got.length, all.length);
  assert.ok(got.equals(all), `the ${all.length} bytes arrived intact and in order`);
});

test('17: a 16 MiB stream of 64 KiB frames completes against a client that keeps pausing', async (t) => {
  const upstream = await startScriptedUpstream(t, () => switching101());
  const proxy = await startTestProxy(proxyConfig(upstream.addr), { t });
  const { client, up } = await openRawTunnel(t, proxy.port, upstream);
  const frames: Buffer[] = [];
  for (let i = 0; i < 256; i++) frames.push(serverFrame(Opcode.BINARY, randomBytes(64 * 1024)));
  const all = Buffer.concat(frames);
  const writer = (async () => {
    for (const f of frames) if (!up.socket.write(f)) await once(up.socket, 'drain', 30_000);
  })();
  const recorder = recorderFor(client);
  let pauses = 0;
  const deadline = Date.now() + 60_000;
  while (recorder.pending.length < all.length) {
    if (Date.now() > deadline) throw new Error(`stuck after ${recorder.pending.length} of ${all.length} bytes`);
    client.pause();
    pauses++;
    await delay(15);
    client.resume();
    await delay(5);
  }
  await writer;
  assert.ok(pauses > 3, `the reader paused ${pauses} times`);
  const got = recorder.consume();
  assert.equal(got.length, all.length);
  assert.ok(got.equals(all), '16 MiB arrived in order and intact');
});

test('18: many frames written back to back come out complete and in order, both ways', async (t) => {
  const upstream = await startScriptedUpstream(t, () => switching101());
  const proxy = await startTestProxy(proxyConfig(upstream.addr), { t });
  const { client, up } = await openRawTunnel(t, proxy.port, upstream);
  const fromClient = Buffer.concat(Array.from({ length: 3000 }, (_, i) => maskedFrame(i % 2 === 0 ? Opcode.TEXT : Opcode.BINARY, `message ${i}`)));
  client.write(fromClient);
  assert.ok((await up.readUntil((b) => b.length >= fromClient.length, WAIT_MS)).equals(fromClient));
  const fromServer = Buffer.concat(Array.from({ length: 3000 }, (_, i) => serverFrame(Opcode.TEXT, `reply ${i}`)));
  for (let i = 0; i < fromServer.length; i += 1000) up.socket.write(fromServer.subarray(i, i + 1000));
  assert.ok((await readUntil(client, (b) => b.length >= fromServer.length, WAIT_MS)).equals(fromServer));
});

test('18: a ws client sending 2000 messages without waiting gets 2000 echoes in order', async (t) => {
  const { proxy } = await echoProxy(t);
  const ws = await openWs(t, proxy);
  const replies = nextMessages(ws, 2000, 60_000);
  for (let i = 0; i < 2000; i++) ws.send(`#${i}`);
  const got = await replies;
  assert.deepEqual(got.map((m) => m.data.toString()), Array.from({ length: 2000 }, (_, i) => `#${i}`));
});

test('19: ping, pong, close, fragments, RSV bits, reserved opcodes and wrong masking pass untouched, client to upstream', async (t) => {
  const upstream = await startScriptedUpstream(t, () => switching101());
  const proxy = await startTestProxy(proxyConfig(upstream.addr), { t });
  const { client, up } = await openRawTunnel(t, proxy.port, upstream);
  const odd = Buffer.concat([
    maskedFrame(Opcode.PING, 'are you there'),
    maskedFrame(Opcode.PONG, 'unsolicited'),
    maskedFrame(Opcode.TEXT, 'compressed?', { rsv: 4 }),
    maskedFrame(Opcode.BINARY, Buffer.from([9, 9]), { rsv: 3 }),
    maskedFrame(Opcode.TEXT, 'frag-1 ', { fin: false }),
    maskedFrame(Opcode.PING, 'between fragments'),
    maskedFrame(Opcode.CONTINUATION, 'frag-2 ', { fin: false }),
    maskedFrame(Opcode.CONTINUATION, 'frag-3'),
    maskedFrame(0x3, 'reserved opcode'),
    serverFrame(Opcode.TEXT, 'unmasked from a client'),
    maskedFrame(Opcode.CLOSE, Buffer.concat([Buffer.from([0x03, 0xe8]), Buffer.from('bye')])),
  ]);
  client.write(odd);
  assert.ok((await up.readUntil((b) => b.length >= odd.length, WAIT_MS)).equals(odd), 'every frame arrived as sent');
  // The proxy answered no ping itself: the next bytes the client sees are what the upstream sends.
  const marker = serverFrame(Opcode.TEXT, 'marker');
  up.socket.write(marker);
  assert.ok((await readUntil(client, (b) => b.length >= marker.length, WAIT_MS)).equals(marker), 'no pong from the proxy');
});

test('19: ping, pong, close, fragments, RSV bits and masked server frames pass untouched, upstream to client', async (t) => {
  const upstream = await startScriptedUpstream(t, () => switching101());
  const proxy = await startTestProxy(proxyConfig(upstream.addr), { t });
  const { client, up } = await openRawTunnel(t, proxy.port, upstream);
  const odd = Buffer.concat([
    serverFrame(Opcode.PING, 'heartbeat'),
    serverFrame(Opcode.PONG, ''),
    serverFrame(Opcode.TEXT, 'deflated?', { rsv: 4 }),
    serverFrame(Opcode.BINARY, 'part 1', { fin: false }),
    serverFrame(Opcode.PONG, 'in between'),
    serverFrame(Opcode.CONTINUATION, 'part 2'),
    maskedFrame(Opcode.TEXT, 'masked from a server'),
    serverFrame(0xb, 'reserved control opcode'),
    serverFrame(Opcode.CLOSE, Buffer.from([0x03, 0xe9])),
  ]);
  up.socket.write(odd);
  assert.ok((await readUntil(client, (b) => b.length >= odd.length, WAIT_MS)).equals(odd), 'every frame arrived as sent');
  const marker = maskedFrame(Opcode.TEXT, 'marker');
  client.write(marker);
  assert.ok((await up.readUntil((b) => b.length >= marker.length, WAIT_MS)).equals(marker), 'no pong from the proxy');
});

test('19: a ws client ping gets the echo backend\'s pong with the same payload, through the proxy', async (t) => {
  const { proxy } = await echoProxy(t);
  const ws = await openWs(t, proxy);
  const pong = once(ws, 'pong', WAIT_MS);
  ws.ping(Buffer.from('payload-123'));
  const [data] = await pong;
  assert.equal(String(data), 'payload-123');
});

/** Opens `count` ws sessions at once (or one after another), each echoing one message, and closes them. */
async function churn(proxy: TestProxy, count: number, parallel: boolean): Promise<void> {
  const one = async (i: number): Promise<void> => {
    const ws = new WebSocket(proxy.wsUrl('/'), { perMessageDeflate: false });
    try {
      await once(ws, 'open', 30_000);
      const reply = once(ws, 'message', 30_000);
      ws.send(`hello ${i}`);
      const [data] = await reply;
      assert.equal(String(data), `hello ${i}`);
      if (i % 3 === 0) {
        ws.terminate();
      } else {
        const closed = once(ws, 'close', 30_000);
        ws.close(1000, 'done');
        const [code] = await closed;
        assert.equal(code, 1000);
      }
    } finally {
      ws.terminate();
    }
  };
  if (parallel) {
    await Promise.all(Array.from({ length: count }, (_, i) => one(i)));
  } else {
    for (let i = 0; i < count; i++) await one(i);
  }
}

test('24: no leaks: after 300 serial and 200 parallel tunnels, the backend has no sockets and every tunnel closed', async (t) => {
  const { backend, proxy } = await echoProxy(t);
  const events = tunnelEvents(t, proxy.port);
  await churn(proxy, 300, false);
  await churn(proxy, 200, true);
  await waitFor(() => backend.openSockets() === 0 && events.closed.length === 500, {
    timeoutMs: 30_000, what: 'every backend socket and tunnel to close',
  }).catch((error: unknown) => {
    throw new Error(`${(error as Error).message}: backend sockets ${backend.openSockets()}, tunnels opened ${events.opened.length}, closed ${events.closed.length}`);
  });
  assert.equal(events.opened.length, 500);
  assert.equal(events.open(), 0);
  const ctxs = new Set<TunnelEvent['ctx']>(events.closed.map((e) => e.ctx));
  assert.equal(ctxs.size, 500, 'each tunnel closed exactly once');
  assert.equal(backend.requests.filter((r) => r.upgrade).length, 500);
  // The proxy still works afterwards.
  const ws = await openWs(t, proxy);
  const reply = once(ws, 'message', WAIT_MS);
  ws.send('still alive');
  assert.equal(String((await reply)[0]), 'still alive');
});

test('24: no leaks with raw clients that vanish mid-stream (destroyed, reset, half-closed)', async (t) => {
  const upstream = await startScriptedUpstream(t, () => switching101());
  const proxy = await startTestProxy(proxyConfig(upstream.addr), { t });
  const events = tunnelEvents(t, proxy.port);
  const clients: Socket[] = [];
  for (let i = 0; i < 60; i++) {
    const { client, up } = await openRawTunnel(t, proxy.port, upstream);
    clients.push(client);
    client.write(maskedFrame(Opcode.TEXT, `n${i}`));
    await up.readUntil((b) => b.length > 0, WAIT_MS);
    if (i % 3 === 0) client.destroy();
    else if (i % 3 === 1) client.resetAndDestroy();
    else client.end();
    // The upstream, like any server, ends its side once the proxy has ended (or reset) the tunnel.
    await waitFor(() => up.ended || up.socket.destroyed, { timeoutMs: WAIT_MS, what: `the proxy to end upstream connection #${i}` });
    up.socket.end();
  }
  await waitFor(() => upstream.openSockets() === 0 && events.closed.length === 60, {
    timeoutMs: 30_000, what: 'every upstream socket and tunnel to close',
  }).catch((error: unknown) => {
    throw new Error(`${(error as Error).message}: upstream sockets ${upstream.openSockets()}, tunnels closed ${events.closed.length}`);
  });
  assert.equal(events.open(), 0);
  await waitFor(() => clients.every((c) => c.destroyed || recorderFor(c).closed), { timeoutMs: WAIT_MS, what: 'every client socket to close' });
});

// The WebSocket guardrails of an open tunnel (websocket_max_message_size, websocket_max_frame_size),
// each case against every way Sluice relays a tunnel (tunnel-impl-support.ts): the native relay
// (the addon applies the guardrails in C: each case waits until it holds the tunnel), the
// TypeScript relay over a socket pair (checked: the addon never took it), and the HTTP/2 tunnel
// (RFC 8441).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { CloseCode } from '../../src/websocket/close-codes.js';
import { Opcode } from '../../src/websocket/opcodes.js';
import { maskedFrame, readToEnd, readUntil, serverFrame } from '../helpers/raw-client.js';
import { tempDir } from '../helpers/temp.js';
import { waitFor } from '../helpers/wait.js';
import {
  IMPLEMENTATIONS, acceptingUpstream, adopted, closedEvent, contractProxy, endBoth, openTunnel,
} from './tunnel-impl-support.js';
import { WAIT_MS, framesOf, tunnelEvents } from './ws-support.js';

const MiB = 1024 * 1024;

/** The code and reason of a close frame's payload. */
function closeOf(payload: Buffer): { code: number; reason: string } {
  return { code: payload.readUInt16BE(0), reason: payload.subarray(2).toString() };
}

for (const impl of IMPLEMENTATIONS) {
  const { name } = impl;

  test(`${name}: websocket_max_message_size: a 10 MiB message against 1m closes with 1009 to the client, 1001 upstream, none of it forwarded`, async (t) => {
    const upstream = await acceptingUpstream(t);
    const log = tempDir(t).join('access.log');
    const proxy = await contractProxy(t, impl, upstream.addr, {
      location: 'websocket_max_message_size 1m;', http: `log_format ws '$websocket_close_code $websocket_messages_in $websocket_messages_out';\n  access_log ${log} ws;`,
    });
    const events = tunnelEvents(t, proxy.port);
    const before = adopted();
    const { client, up } = await openTunnel(t, impl, proxy, upstream, events, '/big');
    // A message up to the limit passes both ways.
    const fits = maskedFrame(Opcode.BINARY, randomBytes(MiB));
    client.io.write(fits);
    assert.ok((await up.readUntil((b) => b.length >= fits.length, WAIT_MS)).equals(fits), 'a 1 MiB message passes');
    const fitsDown = serverFrame(Opcode.TEXT, 'x'.repeat(MiB));
    up.socket.write(fitsDown);
    assert.ok((await readUntil(client.io, (b) => b.length >= fitsDown.length, WAIT_MS)).equals(fitsDown), 'and the other way');
    // The header announces 10 MiB: refused before the header goes anywhere.
    client.io.write(maskedFrame(Opcode.BINARY, randomBytes(10 * MiB)));
    const upward = framesOf(await up.readToEnd(WAIT_MS));
    assert.deepEqual(upward.map((f) => [f.opcode, f.masked, closeOf(f.payload).code]), [[Opcode.CLOSE, true, CloseCode.GOING_AWAY]],
      'the upstream gets a masked close 1001 and its end, not a byte of the message');
    const downward = framesOf(await readToEnd(client.io, WAIT_MS));
    assert.deepEqual(downward.map((f) => [f.opcode, f.masked, closeOf(f.payload).code]), [[Opcode.CLOSE, false, CloseCode.MESSAGE_TOO_BIG]],
      'the client gets close 1009 and its end');
    up.socket.end();
    client.io.end();
    const closed = await closedEvent(events, '/big');
    assert.equal(closed.reason, 'client message too large');
    await proxy.waitForErrorLine(/\[error\] .*client intended to send too large WebSocket message: 10485760 bytes \(websocket_max_message_size 1048576\) while proxying upgraded connection/);
    assert.equal(adopted() > before, impl.native, `the tunnel was carried by the ${impl.native ? 'native' : 'TypeScript'} relay`);
    // Sluice's close came first; the refused message is not counted.
    assert.equal(await waitFor(() => (existsSync(log) ? readFileSync(log, 'utf8') : null) || null, { timeoutMs: WAIT_MS, what: 'the access log' }), '1009/sluice 1 1\n');
  });

  test(`${name}: websocket_max_message_size: a continuation announcing a 64-bit length near 2^64 is refused, not wrapped below the limit`, async (t) => {
    const upstream = await acceptingUpstream(t);
    const proxy = await contractProxy(t, impl, upstream.addr, { location: 'websocket_max_message_size 1m;' });
    const events = tunnelEvents(t, proxy.port);
    const { client, up } = await openTunnel(t, impl, proxy, upstream, events, '/wrap');
    const first = maskedFrame(Opcode.TEXT, 'a'.repeat(100), { fin: false });
    client.io.write(first);
    assert.ok((await up.readUntil((b) => b.length >= first.length, WAIT_MS)).equals(first), 'the first fragment passes');
    // A masked continuation header whose 8-byte length is 2^64 - 8: 100 + that wraps to 92 in 64 bits.
    const header = Buffer.from([0x80 | Opcode.CONTINUATION, 0x80 | 127, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xf8, 1, 2, 3, 4]);
    client.io.write(Buffer.concat([header, randomBytes(64)]));
    const downward = framesOf(await readToEnd(client.io, WAIT_MS));
    assert.deepEqual(downward.map((f) => [f.opcode, closeOf(f.payload).code]), [[Opcode.CLOSE, CloseCode.MESSAGE_TOO_BIG]], 'the client gets close 1009');
    const upward = framesOf(await up.readToEnd(WAIT_MS));
    assert.deepEqual(upward.map((f) => [f.opcode, closeOf(f.payload).code]), [[Opcode.CLOSE, CloseCode.GOING_AWAY]], 'the upstream gets 1001, none of the frame');
    up.socket.end();
    client.io.end();
    assert.equal((await closedEvent(events, '/wrap')).reason, 'client message too large');
  });

  test(`${name}: websocket_max_message_size counts all fragments: the fragment that goes over is refused, the ones before it passed`, async (t) => {
    const upstream = await acceptingUpstream(t);
    const proxy = await contractProxy(t, impl, upstream.addr, { http: 'websocket_max_message_size 100k;' });
    const events = tunnelEvents(t, proxy.port);
    const { client, up } = await openTunnel(t, impl, proxy, upstream, events, '/fragments');
    const first = serverFrame(Opcode.TEXT, 'a'.repeat(40_000), { fin: false });
    // A ping between fragments belongs to no message (RFC 6455 5.5).
    const ping = serverFrame(Opcode.PING, 'p');
    const second = serverFrame(Opcode.CONTINUATION, 'b'.repeat(40_000), { fin: false });
    const passed = Buffer.concat([first, ping, second]);
    // The header of the third fragment is cut across two writes: it is held, then refused whole.
    const third = serverFrame(Opcode.CONTINUATION, 'c'.repeat(40_000));
    up.socket.write(Buffer.concat([passed, third.subarray(0, 3)]));
    assert.ok((await readUntil(client.io, (b) => b.length >= passed.length, WAIT_MS)).equals(passed), 'the fragments within the limit, exactly');
    up.socket.write(third.subarray(3));
    const downward = framesOf(await readToEnd(client.io, WAIT_MS));
    assert.deepEqual(downward.map((f) => [f.opcode, closeOf(f.payload).code]), [[Opcode.CLOSE, CloseCode.GOING_AWAY]], 'the client gets 1001, nothing of the third fragment');
    const upward = framesOf(await up.readToEnd(WAIT_MS));
    assert.deepEqual(upward.map((f) => [f.opcode, f.masked, closeOf(f.payload).code]), [[Opcode.CLOSE, true, CloseCode.MESSAGE_TOO_BIG]], 'the upstream, the sender, gets 1009');
    client.io.end();
    up.socket.end();
    assert.equal((await closedEvent(events, '/fragments')).reason, 'upstream message too large');
    await proxy.waitForErrorLine(/upstream intended to send too large WebSocket message: 120000 bytes \(websocket_max_message_size 102400\)/);
  });

  test(`${name}: websocket_max_frame_size: a frame over it is refused, a message of many smaller frames passes; 1009 waits for the frame in flight to the sender`, async (t) => {
    const upstream = await acceptingUpstream(t);
    const proxy = await contractProxy(t, impl, upstream.addr, { location: 'websocket_max_frame_size 16k;' });
    const events = tunnelEvents(t, proxy.port);
    const { client, up } = await openTunnel(t, impl, proxy, upstream, events, '/frames');
    const message = Buffer.concat([0, 1, 2, 3].map((i) => maskedFrame(i === 0 ? Opcode.BINARY : Opcode.CONTINUATION, randomBytes(16 * 1024), { fin: i === 3 })));
    client.io.write(message);
    assert.ok((await up.readUntil((b) => b.length >= message.length, WAIT_MS)).equals(message), '64 KiB in frames of 16 KiB pass');
    // A frame towards the client is half sent when the client breaks the limit: it is completed first.
    const inFlight = serverFrame(Opcode.BINARY, randomBytes(1000));
    up.socket.write(inFlight.subarray(0, 500));
    await readUntil(client.io, (b) => b.length >= 500, WAIT_MS);
    client.io.write(maskedFrame(Opcode.TEXT, 'x'.repeat(16 * 1024 + 1)));
    const goingAway = serverFrame(Opcode.CLOSE, Buffer.from([0x03, 0xe9]));
    const upward = framesOf(await up.readUntil((b) => b.length >= goingAway.length + 4, WAIT_MS));
    assert.deepEqual(upward.map((f) => [f.opcode, closeOf(f.payload).code]), [[Opcode.CLOSE, CloseCode.GOING_AWAY]], 'the upstream gets 1001 only');
    up.socket.end(inFlight.subarray(500));
    assert.equal((await up.readToEnd(WAIT_MS)).length, 0, 'then its end');
    const rest = await readToEnd(client.io, WAIT_MS);
    const tail = inFlight.length - 500;
    assert.ok(rest.subarray(0, tail).equals(inFlight.subarray(500)), 'the frame in flight is completed');
    assert.deepEqual(framesOf(rest.subarray(tail)).map((f) => [f.opcode, closeOf(f.payload)]),
      [[Opcode.CLOSE, { code: CloseCode.MESSAGE_TOO_BIG, reason: 'frame too big' }]], 'then close 1009');
    client.io.end();
    assert.equal((await closedEvent(events, '/frames')).reason, 'client frame too large');
    await proxy.waitForErrorLine(/client intended to send too large WebSocket frame: 16385 bytes \(websocket_max_frame_size 16384\)/);
  });
}

/** mulberry32: a small seeded generator, so that a failing split can be replayed from its seed. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/**
 * Messages of one to four fragments with pings and pongs between them (RFC 6455 5.4, 5.5), payloads
 * of every length form (7-bit, 16-bit, 64-bit), all within `maxFrame`.
 */
function randomFrames(random: () => number, masked: boolean, count: number, maxFrame: number): Buffer {
  const frames: Buffer[] = [];
  const frame = masked ? maskedFrame : serverFrame;
  const size = (): number => {
    const r = random();
    return r < 0.5 ? Math.floor(random() * 126) : r < 0.9 ? 126 + Math.floor(random() * 70_000) : Math.floor(random() * maxFrame);
  };
  for (let m = 0; m < count; m++) {
    const fragments = 1 + Math.floor(random() * 4);
    for (let f = 0; f < fragments; f++) {
      frames.push(frame(f === 0 ? (random() < 0.5 ? Opcode.TEXT : Opcode.BINARY) : Opcode.CONTINUATION, randomBytes(size()), { fin: f === fragments - 1 }));
      if (random() < 0.3) frames.push(frame(random() < 0.5 ? Opcode.PING : Opcode.PONG, randomBytes(Math.floor(random() * 126))));
    }
  }
  return Buffer.concat(frames);
}

/** Writes `bytes` in pieces of random length (many of them a few bytes: headers cut anywhere), yielding between them. */
async function writeSplit(io: { write(b: Buffer): boolean }, bytes: Buffer, random: () => number): Promise<void> {
  let at = 0;
  while (at < bytes.length) {
    const n = random() < 0.6 ? 1 + Math.floor(random() * 20) : 1 + Math.floor(random() * 100_000);
    io.write(bytes.subarray(at, at + n));
    at += n;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

for (const impl of IMPLEMENTATIONS) {
  test(`${impl.name}: with every guardrail on and none broken (the rate holding messages back), random frames cut at random places cross both ways byte for byte`, async (t) => {
    const seed = Date.now() >>> 0;
    const random = seeded(seed);
    const upstream = await acceptingUpstream(t);
    const proxy = await contractProxy(t, impl, upstream.addr, {
      location: 'websocket_max_frame_size 256k; websocket_max_message_size 1m; websocket_ping_interval 1h; websocket_message_rate 2000/s burst=5 both;',
    });
    const events = tunnelEvents(t, proxy.port);
    const tunnel = await openTunnel(t, impl, proxy, upstream, events, '/random');
    const { client, up } = tunnel;
    const upward = randomFrames(random, true, 60, 256 * 1024);
    const downward = randomFrames(random, false, 60, 256 * 1024);
    const gotUp = up.readUntil((b) => b.length >= upward.length, WAIT_MS * 2);
    const gotDown = readUntil(client.io, (b) => b.length >= downward.length, WAIT_MS * 2);
    await Promise.all([writeSplit(client.io, upward, random), writeSplit(up.socket, downward, random)]);
    assert.ok((await gotUp).equals(upward), `client to upstream, byte for byte (seed ${seed})`);
    assert.ok((await gotDown).equals(downward), `upstream to client, byte for byte (seed ${seed})`);
    await endBoth(tunnel);
    assert.equal((await closedEvent(events, '/random')).reason, 'client closed');
  });
}

for (const impl of IMPLEMENTATIONS) {
  test(`${impl.name}: random frames cut at random places, then a frame over the limit: everything before it passes byte for byte, nothing of it`, async (t) => {
    const seed = Date.now() >>> 0;
    const random = seeded(seed);
    const upstream = await acceptingUpstream(t);
    const proxy = await contractProxy(t, impl, upstream.addr, { location: 'websocket_max_frame_size 256k; websocket_max_message_size 1m;' });
    const events = tunnelEvents(t, proxy.port);
    const { client, up } = await openTunnel(t, impl, proxy, upstream, events, '/random-over');
    const valid = randomFrames(random, true, 40, 256 * 1024);
    const atUpstream = up.readToEnd(WAIT_MS * 2);
    await writeSplit(client.io, Buffer.concat([valid, maskedFrame(Opcode.BINARY, randomBytes(256 * 1024 + 1))]), random);
    const all = await atUpstream;
    assert.ok(all.subarray(0, valid.length).equals(valid), `the frames within the limits, byte for byte (seed ${seed})`);
    assert.deepEqual(framesOf(all.subarray(valid.length)).map((f) => [f.opcode, f.masked, closeOf(f.payload).code]), [[Opcode.CLOSE, true, CloseCode.GOING_AWAY]],
      `then close 1001 and the end, nothing of the frame over the limit (seed ${seed})`);
    const downward = framesOf(await readToEnd(client.io, WAIT_MS));
    assert.deepEqual(downward.map((f) => [f.opcode, closeOf(f.payload).code]), [[Opcode.CLOSE, CloseCode.MESSAGE_TOO_BIG]]);
    client.io.end();
    up.socket.end();
    assert.equal((await closedEvent(events, '/random-over')).reason, 'client frame too large');
  });
}

for (const impl of IMPLEMENTATIONS) {
  test(`${impl.name}: random bytes that are no WebSocket frames at all cross a guarded tunnel as they came (but for a header cut short at the end)`, async (t) => {
    const seed = Date.now() >>> 0;
    const random = seeded(seed);
    const upstream = await acceptingUpstream(t);
    // Pings only (never due): no limit refuses the garbage, so every header it seems to hold is walked.
    const proxy = await contractProxy(t, impl, upstream.addr, { location: 'websocket_ping_interval 1h;' });
    const events = tunnelEvents(t, proxy.port);
    const { client, up } = await openTunnel(t, impl, proxy, upstream, events, '/garbage');
    // Short frames with random headers: lengths of every form, many of them small enough to end soon.
    const pieces: Buffer[] = [];
    for (let i = 0; i < 300; i++) {
      const header = randomBytes(14);
      header[1] = (header[1]! & 0x80) | (random() < 0.9 ? Math.floor(random() * 126) : 126);
      if ((header[1]! & 0x7f) === 126) header.writeUInt16BE(Math.floor(random() * 3000), 2);
      pieces.push(header, randomBytes(Math.floor(random() * 200)));
    }
    const garbage = Buffer.concat(pieces);
    const got = up.readUntil((b) => b.length >= garbage.length - 24, WAIT_MS * 2);
    await writeSplit(client.io, garbage, random);
    const received = await got;
    assert.ok(received.length <= garbage.length && garbage.subarray(0, received.length).equals(received), `a prefix of what was sent, byte for byte (seed ${seed})`);
    client.io.destroy();
    up.socket.destroy();
    await closedEvent(events, '/garbage');
  });
}

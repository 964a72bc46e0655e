// The WebSocket guardrails of an open tunnel (websocket_max_message_size, websocket_max_frame_size),
// each case against every way Sluice relays a tunnel (tunnel-impl-support.ts): the native relay
// implementation (whose tunnels stay in the TypeScript relay when a guardrail is on: checked), the
// TypeScript relay over a socket pair, and the HTTP/2 tunnel (RFC 8441).
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
  IMPLEMENTATIONS, acceptingUpstream, adopted, closedEvent, contractProxy, openTunnel,
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
    const { client, up } = await openTunnel(t, impl, proxy, upstream, events, '/big', { native: false });
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
    assert.equal(adopted(), before, 'with a guardrail on, the tunnel stays in the TypeScript relay');
    // Sluice's close came first; the refused message is not counted.
    assert.equal(await waitFor(() => (existsSync(log) ? readFileSync(log, 'utf8') : null) || null, { timeoutMs: WAIT_MS, what: 'the access log' }), '1009/sluice 1 1\n');
  });

  test(`${name}: websocket_max_message_size counts all fragments: the fragment that goes over is refused, the ones before it passed`, async (t) => {
    const upstream = await acceptingUpstream(t);
    const proxy = await contractProxy(t, impl, upstream.addr, { http: 'websocket_max_message_size 100k;' });
    const events = tunnelEvents(t, proxy.port);
    const { client, up } = await openTunnel(t, impl, proxy, upstream, events, '/fragments', { native: false });
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
    const { client, up } = await openTunnel(t, impl, proxy, upstream, events, '/frames', { native: false });
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

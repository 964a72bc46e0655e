// websocket_message_rate: each case against every way Sluice relays a tunnel
// (tunnel-impl-support.ts): the native relay (the addon applies the rate in C: each case waits
// until it holds the tunnel), the TypeScript relay over a socket pair (checked: the addon never
// took it), and the HTTP/2 tunnel (RFC 8441). No case asserts that anything is fast or slow to the millisecond: only an
// upper bound on what may have passed by a time measured after counting, with generous slack.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CloseCode } from '../../src/websocket/close-codes.js';
import type { Frame } from '../../src/websocket/frame-parser.js';
import { Opcode } from '../../src/websocket/opcodes.js';
import { maskedFrame, serverFrame } from '../helpers/raw-client.js';
import { delay, waitFor } from '../helpers/wait.js';
import { IMPLEMENTATIONS, acceptingUpstream, adopted, closedEvent, contractProxy, frameLog, openTunnel } from './tunnel-impl-support.js';
import { WAIT_MS, tunnelEvents } from './ws-support.js';

const texts = (frames: readonly Frame[]): string[] => frames.filter((f) => f.opcode === Opcode.TEXT).map((f) => f.payload.toString());
const numbered = (n: number): string[] => Array.from({ length: n }, (_, i) => `message ${i} `.padEnd(64, '.'));

for (const impl of IMPLEMENTATIONS) {
  const { name } = impl;

  test(`${name}: websocket_message_rate slows a client sending as fast as it can to the rate, nothing lost, in order, its end after the last`, async (t) => {
    const rate = 200;
    const burst = 20;
    const upstream = await acceptingUpstream(t);
    const proxy = await contractProxy(t, impl, upstream.addr, { location: `websocket_message_rate ${rate}/s burst=${burst};` });
    const events = tunnelEvents(t, proxy.port);
    const before = adopted();
    const { client, up } = await openTunnel(t, impl, proxy, upstream, events, '/rate');
    const atUpstream = frameLog(up.socket, null);
    let ended = false;
    up.socket.on('end', () => { ended = true; });
    const sent = numbered(400);
    const started = performance.now();
    // All at once (one write, about 400 messages of 64 B), then the end.
    client.io.end(Buffer.concat(sent.map((m) => maskedFrame(Opcode.TEXT, m))));
    await delay(500);
    const passed = texts(atUpstream).length;
    const elapsed = performance.now() - started;
    // The bucket was full when the tunnel opened (before `started`): the rate over the time, the
    // burst, and slack for a late timer.
    const most = (rate * elapsed) / 1000 + burst + 40;
    assert.ok(passed <= most, `${passed} messages passed in ${Math.round(elapsed)} ms: at most ${Math.round(most)} may`);
    assert.ok(passed < sent.length, 'not all at once');
    await waitFor(() => texts(atUpstream).length === sent.length && ended, { timeoutMs: WAIT_MS * 2, what: `all ${sent.length} messages, then the end (${texts(atUpstream).length} so far)` });
    assert.deepEqual(texts(atUpstream), sent, 'every message, in order');
    assert.equal(adopted() > before, impl.native, `the tunnel was carried by the ${impl.native ? 'native' : 'TypeScript'} relay`);
    // The other direction is not limited (no `both`): the upstream's messages pass at once.
    const down = numbered(100);
    const atClient = frameLog(client.io, null);
    up.socket.end(Buffer.concat(down.map((m) => serverFrame(Opcode.TEXT, m))));
    await waitFor(() => texts(atClient).length === down.length, { timeoutMs: WAIT_MS, what: 'the upstream\'s messages' });
    assert.deepEqual(texts(atClient), down);
    await closedEvent(events, '/rate');
  });

  test(`${name}: websocket_message_rate ... close: the sender over the rate gets 1008, the other side 1001`, async (t) => {
    const upstream = await acceptingUpstream(t);
    const proxy = await contractProxy(t, impl, upstream.addr, { location: 'websocket_message_rate 10/s burst=5 close;' });
    const events = tunnelEvents(t, proxy.port);
    const { client, up } = await openTunnel(t, impl, proxy, upstream, events, '/rate-close');
    const atUpstream = frameLog(up.socket, null);
    const atClient = frameLog(client.io, null);
    const sent = numbered(50);
    client.io.write(Buffer.concat(sent.map((m) => maskedFrame(Opcode.TEXT, m))));
    const toClient = await waitFor(() => atClient.find((f) => f.opcode === Opcode.CLOSE), { timeoutMs: WAIT_MS, what: 'the close frame to the client' });
    assert.equal(toClient.payload.readUInt16BE(0), CloseCode.POLICY_VIOLATION);
    const toUpstream = await waitFor(() => atUpstream.find((f) => f.opcode === Opcode.CLOSE), { timeoutMs: WAIT_MS, what: 'the close frame upstream' });
    assert.equal(toUpstream.payload.readUInt16BE(0), CloseCode.GOING_AWAY);
    const passed = texts(atUpstream);
    assert.ok(passed.length >= 5 && passed.length < sent.length, `the burst passed, not the rest (${passed.length})`);
    assert.deepEqual(passed, sent.slice(0, passed.length), 'a prefix, in order');
    client.io.end();
    up.socket.end();
    assert.equal((await closedEvent(events, '/rate-close')).reason, 'client message rate exceeded');
    await proxy.waitForErrorLine(/\[error\] .*limiting WebSocket messages of client by websocket_message_rate 10\/s while proxying upgraded connection/);
  });

  test(`${name}: websocket_message_rate ... both: the upstream's messages count too`, async (t) => {
    const upstream = await acceptingUpstream(t);
    const proxy = await contractProxy(t, impl, upstream.addr, { location: 'websocket_message_rate 10/s burst=3 both close;' });
    const events = tunnelEvents(t, proxy.port);
    const { client, up } = await openTunnel(t, impl, proxy, upstream, events, '/rate-both');
    const atUpstream = frameLog(up.socket, null);
    up.socket.write(Buffer.concat(numbered(20).map((m) => serverFrame(Opcode.TEXT, m))));
    const close = await waitFor(() => atUpstream.find((f) => f.opcode === Opcode.CLOSE), { timeoutMs: WAIT_MS, what: 'the close frame upstream' });
    assert.equal(close.masked, true);
    assert.equal(close.payload.readUInt16BE(0), CloseCode.POLICY_VIOLATION);
    client.io.end();
    up.socket.end();
    assert.equal((await closedEvent(events, '/rate-both')).reason, 'upstream message rate exceeded');
  });
}

// websocket_ping_interval / websocket_ping_timeout: Sluice's own pings on both legs of a tunnel,
// each case against every way Sluice relays a tunnel (tunnel-impl-support.ts): the native relay
// (the addon pings in C: each case waits until it holds the tunnel), the TypeScript relay over a
// socket pair (checked: the addon never took it), and the HTTP/2 tunnel (RFC 8441).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CloseCode } from '../../src/websocket/close-codes.js';
import type { Frame } from '../../src/websocket/frame-parser.js';
import { Opcode } from '../../src/websocket/opcodes.js';
import { maskedFrame, readToEnd, waitForClose } from '../helpers/raw-client.js';
import { waitFor } from '../helpers/wait.js';
import {
  IMPLEMENTATIONS, acceptingUpstream, adopted, closedCleanly, closedEvent, contractProxy, frameLog, openTunnel,
} from './tunnel-impl-support.js';
import { WAIT_MS, tunnelEvents } from './ws-support.js';

// A generous timeout where the ends answer (a busy machine must not make them look dead).
const LIVE_PINGS = 'websocket_ping_interval 100ms; websocket_ping_timeout 3s;';
// Where one end is silent the other still answers within the timeout: a second, so that a
// loaded machine's stall of this process (the answering end) does not make that end the dead one.
const PINGS = 'websocket_ping_interval 100ms; websocket_ping_timeout 1000ms;';

const ofKind = (frames: readonly Frame[], opcode: number): Frame[] => frames.filter((f) => f.opcode === opcode);

for (const impl of IMPLEMENTATIONS) {
  const { name } = impl;

  test(`${name}: a silent client (reads and sends nothing, no FIN) is pinged, then closed; the upstream gets close 1001`, async (t) => {
    const upstream = await acceptingUpstream(t);
    const proxy = await contractProxy(t, impl, upstream.addr, { main: 'error_log stderr info;', location: PINGS });
    const events = tunnelEvents(t, proxy.port);
    const before = adopted();
    const { client, up } = await openTunnel(t, impl, proxy, upstream, events, '/silent');
    const atUpstream = frameLog(up.socket, 'upstream');
    const atClient = frameLog(client.io, null);
    await waitFor(() => ofKind(atClient, Opcode.PING).length >= 1, { timeoutMs: WAIT_MS, what: 'Sluice\'s ping to the client' });
    const ping = ofKind(atClient, Opcode.PING)[0]!;
    assert.equal(ping.masked, false, 'unmasked towards the client');
    // The client stops reading too.
    client.io.pause();
    const closed = await closedEvent(events, '/silent');
    assert.equal(closed.reason, 'client ping timeout');
    const close = await waitFor(() => ofKind(atUpstream, Opcode.CLOSE)[0], { timeoutMs: WAIT_MS, what: 'the close frame at the upstream' });
    assert.equal(close.masked, true, 'masked towards the upstream');
    assert.equal(close.payload.readUInt16BE(0), CloseCode.GOING_AWAY);
    assert.ok(ofKind(atUpstream, Opcode.PING).every((f) => f.masked && f.payload.length === 8), 'the upstream got Sluice\'s masked pings (it answered them)');
    assert.equal(ofKind(atUpstream, Opcode.PONG).length, 0, 'no pong reached the upstream');
    await up.readToEnd(WAIT_MS);
    up.socket.end();
    await proxy.waitForErrorLine(/\[info\] .*client did not answer a WebSocket ping within 1000ms \(websocket_ping_timeout\) while proxying upgraded connection/);
    assert.equal(adopted() > before, impl.native, `the tunnel was carried by the ${impl.native ? 'native' : 'TypeScript'} relay`);
  });

  test(`${name}: a silent upstream is pinged, then closed; the client gets close 1001 and the line is an error`, async (t) => {
    const upstream = await acceptingUpstream(t);
    const proxy = await contractProxy(t, impl, upstream.addr, { location: PINGS });
    const events = tunnelEvents(t, proxy.port);
    const { client, up } = await openTunnel(t, impl, proxy, upstream, events, '/silent-upstream');
    // The client answers Sluice's pings; the upstream never does.
    const atClient = frameLog(client.io, 'client');
    const atUpstream = frameLog(up.socket, null);
    const closed = await closedEvent(events, '/silent-upstream');
    assert.equal(closed.reason, 'upstream ping timeout');
    assert.ok(ofKind(atUpstream, Opcode.PING).length >= 1 && ofKind(atUpstream, Opcode.PING).every((f) => f.masked), 'the upstream got masked pings');
    const close = await waitFor(() => ofKind(atClient, Opcode.CLOSE)[0], { timeoutMs: WAIT_MS, what: 'the close frame at the client' });
    assert.equal(close.masked, false, 'unmasked towards the client');
    assert.equal(close.payload.readUInt16BE(0), CloseCode.GOING_AWAY);
    assert.equal(ofKind(atUpstream, Opcode.PONG).length, 0, 'the client\'s pongs to Sluice never reached the upstream');
    await proxy.waitForErrorLine(/\[error\] .*upstream did not answer a WebSocket ping within 1000ms \(websocket_ping_timeout\) while proxying upgraded connection/);
  });

  test(`${name}: live ends answer Sluice's pings, whose pongs are taken out; the endpoints' own pings and pongs pass untouched`, async (t) => {
    const upstream = await acceptingUpstream(t);
    const proxy = await contractProxy(t, impl, upstream.addr, { location: LIVE_PINGS });
    const events = tunnelEvents(t, proxy.port);
    const tunnel = await openTunnel(t, impl, proxy, upstream, events, '/live');
    const { client, up } = tunnel;
    const atUpstream = frameLog(up.socket, 'upstream');
    const atClient = frameLog(client.io, 'client');
    // Several rounds each way (each answered within the timeout, or the tunnel would close).
    await waitFor(() => ofKind(atClient, Opcode.PING).length >= 3 && ofKind(atUpstream, Opcode.PING).length >= 3, {
      timeoutMs: WAIT_MS, what: 'three pings on each leg',
    });
    assert.equal(events.closed.length, 0, 'the tunnel is still open');
    assert.equal(ofKind(atClient, Opcode.PONG).length + ofKind(atUpstream, Opcode.PONG).length, 0, 'no pong to Sluice crossed the tunnel');
    // The client's own ping and the upstream's pong cross as they are.
    const mine = maskedFrame(Opcode.PING, 'mine');
    client.io.write(mine);
    await waitFor(() => ofKind(atUpstream, Opcode.PING).find((f) => f.payload.toString() === 'mine'), { timeoutMs: WAIT_MS, what: 'the client\'s ping upstream' });
    await waitFor(() => ofKind(atClient, Opcode.PONG).find((f) => f.payload.toString() === 'mine'), { timeoutMs: WAIT_MS, what: 'the upstream\'s pong to it' });
    assert.equal(ofKind(atClient, Opcode.PONG).length, 1, 'only the endpoint\'s pong reached the client');
    // Data still flows both ways, byte-exact.
    const text = maskedFrame(Opcode.TEXT, 'hello');
    client.io.write(text);
    await waitFor(() => ofKind(atUpstream, Opcode.TEXT).find((f) => f.payload.toString() === 'hello'), { timeoutMs: WAIT_MS, what: 'the message upstream' });
    // The ends cross as ever (the bytes before them were checked frame by frame above).
    client.io.end();
    await up.readToEnd(WAIT_MS);
    up.socket.end();
    await readToEnd(client.io, WAIT_MS);
    await closedCleanly(tunnel);
    assert.equal((await closedEvent(events, '/live')).reason, 'client closed');
    assert.equal(ofKind(atClient, Opcode.PONG).length + ofKind(atUpstream, Opcode.PONG).length, 1, 'no pong to Sluice crossed the tunnel, to the end');
  });
}

for (const impl of IMPLEMENTATIONS) {
  test(`${impl.name}: a silent upstream is pinged, then closed; the client gets close 1001 and a clean end (no reset)`, async (t) => {
    const upstream = await acceptingUpstream(t);
    const proxy = await contractProxy(t, impl, upstream.addr, { main: 'error_log stderr info;', location: PINGS });
    const events = tunnelEvents(t, proxy.port);
    const tunnel = await openTunnel(t, impl, proxy, upstream, events, '/silent-up', { native: false });
    const { client, up } = tunnel;
    const atUpstream = frameLog(up.socket, null);
    const atClient = frameLog(client.io, 'client');
    await waitFor(() => ofKind(atUpstream, Opcode.PING).length >= 1, { timeoutMs: WAIT_MS, what: 'Sluice\'s ping to the upstream' });
    assert.equal(ofKind(atUpstream, Opcode.PING)[0]!.masked, true, 'masked towards the upstream');
    const close = await waitFor(() => ofKind(atClient, Opcode.CLOSE)[0], { timeoutMs: WAIT_MS, what: 'the close frame at the client' });
    assert.equal(close.masked, false, 'unmasked towards the client');
    assert.equal(close.payload.readUInt16BE(0), CloseCode.GOING_AWAY);
    assert.equal(ofKind(atClient, Opcode.PONG).length, 0, 'no pong reached the client');
    // The client ends its side after the close, as a client does; the stream or connection ends cleanly.
    client.io.end();
    await readToEnd(client.io, WAIT_MS);
    await waitForClose(client.io, WAIT_MS);
    assert.equal(client.failure(), null, 'the client side ends cleanly (for HTTP/2: no RST_STREAM)');
    assert.equal((await closedEvent(events, '/silent-up')).reason, 'upstream ping timeout');
    await proxy.waitForErrorLine(/\[error\] .*upstream did not answer a WebSocket ping within 1000ms \(websocket_ping_timeout\) while proxying upgraded connection/);
  });
}

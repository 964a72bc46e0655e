// The tunnel contract (DESIGN.md: one suite that every implementation of an interface runs): each
// case below runs against every way Sluice relays an open tunnel:
//
// - the native relay: an HTTP/1.1 upgrade whose two plain-TCP sockets move to the addon's I/O
//   thread (native/sluice_tunnel.c), `native_tunnels on`;
// - the TypeScript relay over a socket pair (src/proxy/tunnel/relay.ts), `native_tunnels off`;
// - the TypeScript relay between the client's HTTP/2 stream and the upstream's socket (RFC 8441
//   extended CONNECT), which the addon never takes.
//
// The client speaks its protocol and the upstream is a raw socket, so every byte is checked, and
// the ends (FIN, END_STREAM, resets), the reason the proxy gives, its error log and access log are
// the same contract whatever moves the bytes. The suites per feature (ws-data, ws-close, timeouts,
// reload, http2-websocket, native-tunnel) go deeper into each.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import type { Duplex } from 'node:stream';
import { test } from 'node:test';
import { Opcode } from '../../src/websocket/opcodes.js';
import { recorderFor } from '../helpers/byte-recorder.js';
import { maskedFrame, readToEnd, readUntil, serverFrame, waitForClose } from '../helpers/raw-client.js';
import { tempDir } from '../helpers/temp.js';
import { delay, waitFor } from '../helpers/wait.js';
import {
  IMPLEMENTATIONS, acceptingUpstream, adopted, closedCleanly, closedEvent, contractConfig, contractProxy, endBoth, openTunnel,
} from './tunnel-impl-support.js';
import { WAIT_MS, assertRelayedThenGoingAway, finFirstThenReadSlowly, framesOf, tunnelEvents } from './ws-support.js';

const MiB = 1024 * 1024;

const closePayload = (code: number, reason: string): Buffer => Buffer.concat([Buffer.from([code >> 8, code & 0xff]), Buffer.from(reason)]);
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const nextTick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Writes `bytes` in pieces of `sizes` bytes in turn, each in a turn of the event loop of its own (a segment of its own on the wire). */
async function writeInPieces(to: Duplex, bytes: Buffer, sizes: readonly number[]): Promise<void> {
  for (let at = 0, i = 0; at < bytes.length; i++) {
    const n = sizes[i % sizes.length] as number;
    to.write(bytes.subarray(at, at + n));
    at += n;
    await nextTick();
  }
}

for (const impl of IMPLEMENTATIONS) {
  const { name } = impl;

  test(`${name}: echo: frames cross byte-exact both ways, the upstream's greeting first`, async (t) => {
    const upstream = await acceptingUpstream(t);
    const proxy = await contractProxy(t, impl, upstream.addr);
    const events = tunnelEvents(t, proxy.port);
    const before = adopted();
    const tunnel = await openTunnel(t, impl, proxy, upstream, events, '/echo');
    const { client, up } = tunnel;
    const greeting = serverFrame(Opcode.TEXT, 'hello from upstream');
    up.socket.write(greeting);
    assert.ok((await readUntil(client.io, (b) => b.length >= greeting.length, WAIT_MS)).equals(greeting), 'the greeting, exactly');
    const every = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    for (const [opcode, payload] of [[Opcode.TEXT, 'héllo wörld'], [Opcode.BINARY, every], [Opcode.BINARY, randomBytes(70_000)]] as const) {
      const sent = maskedFrame(opcode, payload);
      client.io.write(sent);
      assert.ok((await up.readUntil((b) => b.length >= sent.length, WAIT_MS)).equals(sent), `client frame (${sent.length} bytes), exactly`);
      const [frame] = framesOf(sent);
      const echo = serverFrame(opcode, frame!.payload);
      up.socket.write(echo);
      assert.ok((await readUntil(client.io, (b) => b.length >= echo.length, WAIT_MS)).equals(echo), `its echo (${echo.length} bytes), exactly`);
    }
    assert.equal(adopted() - before, impl.native ? 1 : 0, impl.native ? 'the addon took the tunnel' : 'the tunnel stays in TypeScript');
    await endBoth(tunnel);
  });

  test(`${name}: fragmentation: fragments, a ping between them and frames cut at any byte cross untouched, both ways`, async (t) => {
    const upstream = await acceptingUpstream(t);
    const proxy = await contractProxy(t, impl, upstream.addr);
    const events = tunnelEvents(t, proxy.port);
    const tunnel = await openTunnel(t, impl, proxy, upstream, events, '/fragments');
    const { client, up } = tunnel;
    for (const toUpstream of [true, false]) {
      const frame = toUpstream ? maskedFrame : serverFrame;
      // A message in three fragments with a ping between two of them (RFC 6455 5.4, 5.5), then a
      // frame with a 64-bit length: the proxy reassembles nothing, and no frame boundary is lost
      // when a header arrives one byte at a time.
      const stream = Buffer.concat([
        frame(Opcode.TEXT, 'one, ', { fin: false }),
        frame(Opcode.CONTINUATION, 'two, ', { fin: false }),
        frame(Opcode.PING, 'between'),
        frame(Opcode.CONTINUATION, 'three'),
        frame(Opcode.BINARY, randomBytes(70_000)),
        frame(Opcode.TEXT, 'after the big one'),
      ]);
      const [from, to] = toUpstream ? [client.io, up.socket] : [up.socket, client.io];
      await writeInPieces(from, stream, [1, 1, 2, 3, 5, 8, 13, 4096, 7]);
      const got = await readUntil(to, (b) => b.length >= stream.length, WAIT_MS);
      assert.ok(got.equals(stream), `${toUpstream ? 'client to upstream' : 'upstream to client'}: every byte, in order, nothing added`);
      assert.deepEqual(framesOf(got).map((f) => [f.opcode, f.fin]), [
        [Opcode.TEXT, false], [Opcode.CONTINUATION, false], [Opcode.PING, true], [Opcode.CONTINUATION, true], [Opcode.BINARY, true], [Opcode.TEXT, true],
      ]);
    }
    await endBoth(tunnel);
  });

  test(`${name}: 16 MiB: one 16 MiB frame each way at once arrives intact`, async (t) => {
    const upstream = await acceptingUpstream(t);
    const proxy = await contractProxy(t, impl, upstream.addr);
    const events = tunnelEvents(t, proxy.port);
    const tunnel = await openTunnel(t, impl, proxy, upstream, events, '/big');
    const { client, up } = tunnel;
    const upward = maskedFrame(Opcode.BINARY, randomBytes(16 * MiB));
    const downward = serverFrame(Opcode.BINARY, randomBytes(16 * MiB));
    client.io.write(upward);
    up.socket.write(downward);
    const [atUpstream, atClient] = await Promise.all([
      up.readUntil((b) => b.length >= upward.length, 60_000),
      readUntil(client.io, (b) => b.length >= downward.length, 60_000),
    ]);
    assert.equal(atUpstream.length, upward.length);
    assert.equal(sha(atUpstream), sha(upward), 'client to upstream');
    assert.equal(atClient.length, downward.length);
    assert.equal(sha(atClient), sha(downward), 'upstream to client');
    await endBoth(tunnel);
  });

  test(`${name}: close codes: close frames cross as they are, either side first, and the tunnel closes cleanly after them`, async (t) => {
    const upstream = await acceptingUpstream(t);
    const proxy = await contractProxy(t, impl, upstream.addr);
    const events = tunnelEvents(t, proxy.port);
    for (const [first, code, reason] of [['client', 4000, 'client says bye'], ['upstream', 1011, 'upstream failed'], ['client', 1000, '']] as const) {
      const path = `/close-${first}-${code}`;
      const tunnel = await openTunnel(t, impl, proxy, upstream, events, path);
      const { client, up } = tunnel;
      const fromClient = maskedFrame(Opcode.CLOSE, closePayload(code, reason));
      const fromUpstream = serverFrame(Opcode.CLOSE, closePayload(code, reason));
      if (first === 'client') {
        client.io.write(fromClient);
        assert.ok((await up.readUntil((b) => b.length >= fromClient.length, WAIT_MS)).equals(fromClient), `${code} reaches the upstream as sent`);
        // RFC 6455 7.1.1: the server closes the TCP connection first.
        up.socket.end(fromUpstream);
        assert.ok((await readToEnd(client.io, WAIT_MS)).equals(fromUpstream), `the reply ${code}, then the end: no frame of the proxy's own`);
        client.io.end();
      } else {
        up.socket.write(fromUpstream);
        assert.ok((await readUntil(client.io, (b) => b.length >= fromUpstream.length, WAIT_MS)).equals(fromUpstream), `${code} reaches the client as sent`);
        client.io.write(fromClient);
        assert.ok((await up.readUntil((b) => b.length >= fromClient.length, WAIT_MS)).equals(fromClient), `the reply ${code} reaches the upstream as sent`);
        up.socket.end();
        assert.equal((await readToEnd(client.io, WAIT_MS)).length, 0, 'then the end, nothing more');
        client.io.end();
      }
      assert.equal((await up.readToEnd(WAIT_MS)).length, 0, 'nothing after the close frame');
      await closedCleanly(tunnel);
      // Who sent the first close frame ended it, though the server's FIN comes first either way.
      assert.equal((await closedEvent(events, path)).reason, `${first} closed`);
    }
  });

  for (const first of ['client', 'upstream'] as const) {
    test(`${name}: half-close with a slow receiver: the ${first} ends first and reads slowly, the other side sends 16 MiB and ends; every byte arrives before the end`, async (t) => {
      const upstream = await acceptingUpstream(t);
      const proxy = await contractProxy(t, impl, upstream.addr);
      const events = tunnelEvents(t, proxy.port);
      const tunnel = await openTunnel(t, impl, proxy, upstream, events, '/half');
      const frames: Buffer[] = [];
      for (let i = 0; i < 4096; i++) frames.push((first === 'upstream' ? maskedFrame : serverFrame)(Opcode.BINARY, randomBytes(4096)));
      const [reader, writer] = first === 'upstream' ? [tunnel.up.socket, tunnel.client.io] : [tunnel.client.io, tunnel.up.socket];
      const got = await finFirstThenReadSlowly(reader, writer, frames);
      const all = Buffer.concat(frames);
      assert.equal(got.length, all.length, 'bytes before the end');
      assert.ok(got.equals(all), 'intact and in order');
      await closedCleanly(tunnel);
      assert.equal((await closedEvent(events, '/half')).reason, `${first} closed`);
    });
  }

  test(`${name}: drain 1001 on graceful shutdown: each direction completes the frame in flight, then gets close 1001 and its end`, async (t) => {
    const upstream = await acceptingUpstream(t);
    const proxy = await contractProxy(t, impl, upstream.addr);
    const events = tunnelEvents(t, proxy.port);
    const tunnel = await openTunnel(t, impl, proxy, upstream, events, '/shutdown');
    const { client, up } = tunnel;
    // Each direction is in the middle of a frame when the proxy starts going away.
    const upward = [maskedFrame(Opcode.BINARY, randomBytes(100_000)), maskedFrame(Opcode.TEXT, 'after the frame in flight')];
    const downward = [serverFrame(Opcode.BINARY, randomBytes(100_000)), serverFrame(Opcode.TEXT, 'after the frame in flight')];
    const half = 50_000;
    client.io.write(upward[0]!.subarray(0, half));
    up.socket.write(downward[0]!.subarray(0, half));
    await Promise.all([up.readUntil((b) => b.length >= half, WAIT_MS), readUntil(client.io, (b) => b.length >= half, WAIT_MS)]);
    const closing = proxy.handle.close(0);
    client.io.write(Buffer.concat(upward).subarray(half));
    up.socket.write(Buffer.concat(downward).subarray(half));
    const [atUpstream, atClient] = await Promise.all([up.readToEnd(WAIT_MS), readToEnd(client.io, WAIT_MS)]);
    for (const [got, sent, toUpstream] of [[atUpstream, upward, true], [atClient, downward, false]] as const) {
      const all = Buffer.concat([sent[0]!.subarray(0, half), got]);
      assertRelayedThenGoingAway(all, sent, toUpstream);
      assert.ok(framesOf(all).length >= 2, `${toUpstream ? 'to the upstream' : 'to the client'}: the frame in flight is completed before the close`);
    }
    // What a WebSocket peer does on a close: it ends its side.
    client.io.end();
    up.socket.end();
    await closedCleanly(tunnel);
    await closing;
    assert.equal((await closedEvent(events, '/shutdown')).reason, 'shutdown');
  });

  test(`${name}: drain 1001 after a reload that removed its server: close 1001 each way, then the end`, async (t) => {
    const [a, b] = [await acceptingUpstream(t), await acceptingUpstream(t)];
    const extra = { http: 'websocket_drain_timeout 0 0;' };
    const proxy = await contractProxy(t, impl, a.addr, extra);
    const events = tunnelEvents(t, proxy.port);
    const tunnel = await openTunnel(t, impl, proxy, a, events, '/reload');
    const { client, up } = tunnel;
    const hello = maskedFrame(Opcode.TEXT, 'before the reload');
    client.io.write(hello);
    await up.readUntil((got) => got.length >= hello.length, WAIT_MS);
    const result = await proxy.handle.reload({ text: await contractConfig(impl, b.addr, extra) });
    assert.equal(result.drained, 1, 'the reload drains the tunnel to the removed server');
    const [atUpstream, atClient] = await Promise.all([up.readToEnd(WAIT_MS), readToEnd(client.io, WAIT_MS)]);
    assertRelayedThenGoingAway(atUpstream, [], true);
    assertRelayedThenGoingAway(atClient, [], false);
    client.io.end();
    up.socket.end();
    await closedCleanly(tunnel);
    assert.equal((await closedEvent(events, '/reload')).reason, 'drained after reload');
  });

  test(`${name}: idle timeout: traffic either way keeps the tunnel open; proxy_read_timeout of silence closes both sides`, async (t) => {
    // The timeout is many times the traffic interval: only a stall of the machine that long
    // (a second: more than a loaded CI machine's pauses) could let it expire while traffic flows.
    const IDLE_MS = 1000;
    const EVERY_MS = 50;
    const upstream = await acceptingUpstream(t);
    // nginx logs this time-out at info level (the client connection's log_error is NGX_ERROR_INFO).
    const proxy = await contractProxy(t, impl, upstream.addr, { main: 'error_log stderr info;', location: `proxy_read_timeout ${IDLE_MS}ms;` });
    const events = tunnelEvents(t, proxy.port);
    const tunnel = await openTunnel(t, impl, proxy, upstream, events, '/idle');
    const { client, up } = tunnel;
    let lastTraffic = Date.now();
    for (const [from, frame] of [[client.io, maskedFrame], [up.socket, serverFrame]] as const) {
      // Each direction alone, for longer than the timeout.
      for (const until = Date.now() + 1.5 * IDLE_MS; Date.now() < until;) {
        from.write(frame(Opcode.TEXT, 'still here'));
        lastTraffic = Date.now();
        await delay(EVERY_MS);
        assert.equal(recorderFor(client.io).closed || recorderFor(up.socket).closed, false, 'open while traffic flows');
      }
    }
    await readToEnd(client.io, IDLE_MS + WAIT_MS);
    await up.readToEnd(WAIT_MS);
    assert.ok(Date.now() - lastTraffic >= IDLE_MS - EVERY_MS, `closed ${Date.now() - lastTraffic} ms after the last traffic, before the timeout`);
    client.io.end();
    up.socket.end();
    await waitForClose(client.io, WAIT_MS);
    await waitForClose(up.socket, WAIT_MS);
    assert.equal((await closedEvent(events, '/idle')).reason, 'idle timeout');
    await proxy.waitForErrorLine(/upstream timed out \(110: Connection timed out\) while proxying upgraded connection/);
  });

  test(`${name}: byte counts: the access log has every tunnelled byte each way on top of the handshake`, async (t) => {
    const log = tempDir(t).join('access.log');
    const upstream = await acceptingUpstream(t);
    const proxy = await contractProxy(t, impl, upstream.addr, {
      http: `log_format acct '$status $bytes_sent $bytes_received $body_bytes_sent';\n  access_log ${log} acct;`,
    });
    const events = tunnelEvents(t, proxy.port);
    const tunnel = await openTunnel(t, impl, proxy, upstream, events, '/count');
    const { client, up, ctx } = tunnel;
    // The handshake's figures: for HTTP/1.1 exactly what crossed the wire.
    const [handshakeSent, handshakeReceived] = [ctx.bytesSent, ctx.bytesReceived];
    if (client.answerBytes !== null) assert.equal(handshakeSent, client.answerBytes, 'the 101 head');
    if (client.requestBytes !== null) assert.equal(handshakeReceived, client.requestBytes, 'the request head');
    const upward = Buffer.concat([maskedFrame(Opcode.TEXT, 'a'.repeat(1000)), maskedFrame(Opcode.BINARY, randomBytes(70_000)), maskedFrame(Opcode.CLOSE, closePayload(1000, ''))]);
    const downward = Buffer.concat([serverFrame(Opcode.TEXT, 'b'.repeat(3000)), serverFrame(Opcode.BINARY, randomBytes(100_000)), serverFrame(Opcode.CLOSE, closePayload(1000, ''))]);
    client.io.write(upward);
    await up.readUntil((b) => b.length >= upward.length, WAIT_MS);
    // The figures are live while the tunnel is open (the addon counts as it relays).
    await waitFor(() => ctx.bytesReceived === handshakeReceived + upward.length, { timeoutMs: WAIT_MS, what: `the live figure (${ctx.bytesReceived - handshakeReceived})` });
    assert.ok(!existsSync(log) || readFileSync(log, 'utf8') === '', 'nothing is logged while the tunnel is open');
    up.socket.end(downward);
    await readToEnd(client.io, WAIT_MS);
    client.io.end();
    await closedCleanly(tunnel);
    await closedEvent(events, '/count');
    const line = await waitFor(() => (existsSync(log) && readFileSync(log, 'utf8').endsWith('\n') ? readFileSync(log, 'utf8').trimEnd() : null), {
      timeoutMs: WAIT_MS, what: 'the access-log line',
    });
    // $body_bytes_sent: what was relayed to the client after the 101 (nginx counts it as body).
    assert.deepEqual(line.split('\n'), [`${impl.status} ${handshakeSent + downward.length} ${handshakeReceived + upward.length} ${downward.length}`], 'one line, every byte');
  });
}

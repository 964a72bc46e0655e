/**
 * The descriptor of a WebSocket client the addon accepted (native/sluice_accept.c,
 * front/native-client.ts, native/sluice_tunnel.c adopt): one descriptor with one registration in
 * the addon's epoll from the hand-over to the tunnel's end. The addon hands an upgrade over
 * watched (the watch is that registration), the relay takes the descriptor as it is and turns the
 * registration into the tunnel's; every other path ends the watch before the descriptor is closed
 * or becomes a net.Socket. Read from /proc/self (the proxy runs in this process): the descriptors
 * and the epoll registrations (fdinfo).
 */
import assert from 'node:assert/strict';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import type { Socket } from 'node:net';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import type { NativeClient } from '../../src/proxy/front/native-client.js';
import { nativeClientCounts } from '../../src/proxy/front/native-client.js';
import { nativeTunnels } from '../../src/proxy/tunnel/native-tunnels.js';
import { nativeAcceptor } from '../../src/server/native-accept.js';
import { seeded } from '../../src/upstream/balancers/fixtures.js';
import { Opcode } from '../../src/websocket/opcodes.js';
import { startHttpBackend, startRawBackend } from '../helpers/backends.js';
import type { RawBackend } from '../helpers/backends.js';
import { waitForFileLine } from '../helpers/log-files.js';
import { tempDir } from '../helpers/temp.js';
import { waitFor } from '../helpers/wait.js';
import { startTestProxy } from '../helpers/proxy.js';
import { SAMPLE_ACCEPT, maskedFrame, rawConnect, readFrame, readToEnd, readUntil, waitForBytes, wsHandshakeRequest } from '../helpers/raw-client.js';

const WAIT_MS = 10_000;

function config(backend: string, log = 'off', http = '', location = ''): string {
  return `
events {}
http {
  log_format short '$request_uri $status';
  ${http}
  server {
    listen 127.0.0.1:0;
    access_log ${log}${log === 'off' ? '' : ' short'};
    location = /plain { return 200 "plain\\n"; }
    location = /forbidden { return 403; }
    location / { ${location} proxy_pass http://${backend}; }
  }
}`;
}

/** One registration in an epoll of this process: the descriptor, its event mask, its tag. */
interface Registration {
  readonly epoll: number;
  readonly fd: number;
  readonly events: number;
  readonly tag: bigint;
}

/** Every registration in every epoll of this process (libuv's and the addon's). */
function registrations(): Registration[] {
  const out: Registration[] = [];
  for (const name of readdirSync('/proc/self/fd')) {
    let link = '';
    try {
      link = readlinkSync(`/proc/self/fd/${name}`);
    } catch {
      continue;
    }
    if (link !== 'anon_inode:[eventpoll]') continue;
    let info = '';
    try {
      info = readFileSync(`/proc/self/fdinfo/${name}`, 'utf8');
    } catch {
      continue;
    }
    for (const m of info.matchAll(/^tfd:\s*(\d+)\s+events:\s*([0-9a-f]+)\s+data:\s*([0-9a-f]+)/gm)) {
      out.push({ epoll: Number(name), fd: Number(m[1]), events: parseInt(m[2] as string, 16), tag: BigInt(`0x${m[3] as string}`) });
    }
  }
  return out;
}

/** The descriptors of this process open on the socket of `inode`. */
function descriptorsOf(inode: string): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${name}`) === `socket:[${inode}]`) out.push(Number(name));
    } catch {
      // closed meanwhile
    }
  }
  return out;
}

/** The inode of the proxy's end of the TCP connection from `clientPort` to `proxyPort` (/proc/net/tcp). */
function acceptedInode(proxyPort: number, clientPort: number): string | null {
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    const local = parseInt((f[1] as string).split(':')[1] as string, 16);
    const remote = parseInt((f[2] as string).split(':')[1] as string, 16);
    if (local === proxyPort && remote === clientPort) return f[9] as string;
  }
  return null;
}

function openDescriptors(): number {
  return readdirSync('/proc/self/fd').length;
}

/** Watches the addon has not ended. */
function liveWatches(): number {
  return nativeAcceptor()?.addon.acceptStats().watches ?? -1;
}

/** The native clients made while `run` runs. */
async function nativeClientsOf<T>(run: () => Promise<T>): Promise<{ result: T; clients: NativeClient[] }> {
  const clients: NativeClient[] = [];
  const onClient = (message: unknown): void => void clients.push((message as { client: NativeClient }).client);
  subscribe('sluice:native-client', onClient);
  try {
    return { result: await run(), clients };
  } finally {
    unsubscribe('sluice:native-client', onClient);
  }
}

async function echoProxy(t: TestContext): Promise<{ port: number }> {
  const backend = await startHttpBackend(undefined, { id: 'echo' });
  t.after(() => backend.close());
  const proxy = await startTestProxy(config(backend.addr), { t });
  return { port: proxy.port };
}

/** A proxy with an access log in front of an upstream server that never answers (its clients go first). */
async function silentUpstream(t: TestContext, http = '', location = ''): Promise<{ upstream: RawBackend; log: string; proxy: { port: number }; watchesBefore: number }> {
  const upstream = await startRawBackend();
  t.after(() => upstream.close());
  const log = tempDir(t).join('access.log');
  const proxy = await startTestProxy(config(upstream.addr, log, http, location), { t });
  return { upstream, log, proxy, watchesBefore: liveWatches() };
}

const EPOLLIN = 0x1;
const EPOLLRDHUP = 0x2000;

test('the addon accepts here (else this suite tests nothing)', () => {
  assert.notEqual(nativeAcceptor(), null, 'the addon accepts: build it with npm run build:native');
  assert.notEqual(nativeTunnels(), null);
});

for (const split of [false, true]) {
  const how = split ? 'a head that came in two packets (read in the addon\'s epoll first)' : 'a head that came with the connect';
  test(`${how}: the relay tunnels on the very descriptor the addon accepted, not a duplicate, with one registration, the tunnel's`, async (t) => {
    const { port } = await echoProxy(t);
    const before = { ...nativeClientCounts };
    const { result: socket, clients } = await nativeClientsOf(async () => {
      const s = await rawConnect(port, { timeoutMs: WAIT_MS });
      t.after(() => s.destroy());
      const request = wsHandshakeRequest({ path: '/chat' });
      if (split) {
        s.write(request.slice(0, 20));
        // The addon waits for the rest with the descriptor in its epoll (a connection being read).
        await waitFor(() => registrations().some((r) => (r.tag & 7n) === 1n), { timeoutMs: WAIT_MS, what: 'the partial head read in the addon' });
        s.write(request.slice(20));
      } else {
        s.write(request);
      }
      assert.match((await readUntil(s, '\r\n\r\n', WAIT_MS)).toString('latin1'), /^HTTP\/1\.1 101 /);
      return s;
    });
    assert.equal(clients.length, 1, 'one native client');
    assert.equal(nativeClientCounts.tunnels, before.tunnels + 1, 'the relay adopted the client');
    assert.equal(nativeClientCounts.materialized, before.materialized);
    const fd = (clients[0] as NativeClient).fd;
    const inode = acceptedInode(port, (socket as Socket).localPort as number);
    assert.notEqual(inode, null, 'the accepted connection in /proc/net/tcp');
    // Once the I/O thread has the tunnel: the descriptor the addon accepted is the relay's, in its
    // epoll under the tunnel's tag (a pointer: bit 0 clear), reading; no other descriptor of the
    // socket, no other registration of it anywhere.
    const regs = await waitFor(() => {
      const mine = registrations().filter((r) => r.fd === fd);
      return mine.length === 1 && (mine[0] as Registration).tag % 2n === 0n ? mine : null;
    }, { timeoutMs: WAIT_MS, what: `descriptor ${fd} registered under the tunnel's tag (have: ${JSON.stringify(registrations().filter((r) => r.fd === fd), (_, v: unknown) => typeof v === 'bigint' ? v.toString(16) : v)})` });
    const reg = regs[0] as Registration;
    assert.ok(reg.events & EPOLLIN, 'the relay reads the client');
    assert.equal(reg.events & EPOLLRDHUP, 0, 'the watch\'s mask is gone');
    assert.deepEqual(descriptorsOf(inode as string), [fd], 'the socket has one descriptor, the one accepted');
    // And it relays.
    socket.write(maskedFrame(Opcode.TEXT, 'hello'));
    const frame = await readFrame(socket, WAIT_MS);
    assert.equal(frame.payload.toString(), 'hello');
    socket.destroy();
    await waitFor(() => descriptorsOf(inode as string).length === 0, { timeoutMs: WAIT_MS, what: 'the relay closing the client descriptor' });
  });
}

test('a tunnel the relay does not take (native_tunnels off): the client becomes a socket on the descriptor, its watch ended first, and relays', async (t) => {
  const backend = await startHttpBackend(undefined, { id: 'echo' });
  t.after(() => backend.close());
  const proxy = await startTestProxy(config(backend.addr, 'off', '', 'native_tunnels off;'), { t });
  const watchesBefore = liveWatches();
  const before = { ...nativeClientCounts };
  const socket = await rawConnect(proxy.port, { timeoutMs: WAIT_MS });
  t.after(() => socket.destroy());
  socket.write(wsHandshakeRequest({ path: '/chat' }));
  assert.match((await readUntil(socket, '\r\n\r\n', WAIT_MS)).toString('latin1'), /^HTTP\/1\.1 101 /);
  assert.equal(nativeClientCounts.handshakes, before.handshakes + 1);
  assert.equal(nativeClientCounts.materialized, before.materialized + 1, 'the client became a socket');
  assert.equal(liveWatches(), watchesBefore, 'the watch ended');
  socket.write(maskedFrame(Opcode.TEXT, 'through the TypeScript relay'));
  assert.equal((await readFrame(socket, WAIT_MS)).payload.toString(), 'through the TypeScript relay');
  const inode = acceptedInode(proxy.port, socket.localPort as number);
  assert.notEqual(inode, null);
  // libuv's socket on the descriptor: in libuv's epoll (its tag is the descriptor), not the addon's.
  const fds = descriptorsOf(inode as string);
  assert.equal(fds.length, 1);
  assert.deepEqual(registrations().filter((r) => r.fd === fds[0]).map((r) => r.tag), [BigInt(fds[0] as number)]);
});

test('a client that leaves before the 101 after a head in two packets: 499, the upstream connection closed, the descriptor closed once', async (t) => {
  const { upstream, log, proxy, watchesBefore } = await silentUpstream(t);
  const { result: client, clients } = await nativeClientsOf(async () => {
    const c = await rawConnect(proxy.port, { timeoutMs: WAIT_MS });
    t.after(() => c.destroy());
    const request = wsHandshakeRequest({ path: '/gone' });
    c.write(request.slice(0, 10));
    await waitFor(() => registrations().some((r) => (r.tag & 7n) === 1n), { timeoutMs: WAIT_MS, what: 'the partial head read in the addon' });
    c.write(request.slice(10));
    const u = await upstream.nextConnection(WAIT_MS);
    await u.readUntil('\r\n\r\n', WAIT_MS);
    return c;
  });
  assert.equal(clients.length, 1);
  const up = upstream.connections[0]!;
  const inode = acceptedInode(proxy.port, client.localPort as number);
  assert.notEqual(inode, null);
  client.destroy();
  // The session ends (the watch reported the client gone) and closes its upstream connection.
  await up.readToEnd(WAIT_MS);
  await waitFor(() => descriptorsOf(inode as string).length === 0, { timeoutMs: WAIT_MS, what: 'the client descriptor closed' });
  await waitFor(() => liveWatches() === watchesBefore, { timeoutMs: WAIT_MS, what: `the watch ended (live: ${liveWatches()}, before: ${watchesBefore})` });
  assert.deepEqual(await waitForFileLine(log, '/gone ', { timeoutMs: WAIT_MS }), ['/gone 499']);
});

test('a client that sends its head and leaves at once: 499 and the upstream connection closed', async (t) => {
  const { upstream, log, proxy, watchesBefore } = await silentUpstream(t);
  const client = await rawConnect(proxy.port, { timeoutMs: WAIT_MS });
  client.end(wsHandshakeRequest({ path: '/early' }));
  const up = await upstream.nextConnection(WAIT_MS);
  await up.readToEnd(WAIT_MS);
  assert.deepEqual(await waitForFileLine(log, '/early ', { timeoutMs: WAIT_MS }), ['/early 499']);
  await waitFor(() => liveWatches() === watchesBefore, { timeoutMs: WAIT_MS, what: 'the watch ended' });
  client.destroy();
});

test('a client that leaves while limit_req delays its handshake (the session reads the client only after): 499', async (t) => {
  const { upstream, log, proxy, watchesBefore } = await silentUpstream(t, 'limit_req_zone $binary_remote_addr zone=hs:1m rate=2r/s;', 'limit_req zone=hs burst=5;');
  // The first handshake takes the zone's token; the second waits for the next (500 ms).
  const first = await rawConnect(proxy.port, { timeoutMs: WAIT_MS });
  t.after(() => first.destroy());
  first.write(wsHandshakeRequest({ path: '/first' }));
  const firstUp = await upstream.nextConnection(WAIT_MS);
  await firstUp.readUntil('\r\n\r\n', WAIT_MS);
  const client = await rawConnect(proxy.port, { timeoutMs: WAIT_MS });
  client.end(wsHandshakeRequest({ path: '/delayed' }));
  // The addon saw it leave while the session waited; once the delay is over the session reads the
  // client and ends with 499 (as on a socket, whose 'end' also comes a tick after it is resumed:
  // an upstream connection started in that tick is closed, not waited on).
  assert.deepEqual(await waitForFileLine(log, '/delayed ', { timeoutMs: WAIT_MS }), ['/delayed 499']);
  for (const up of upstream.connections.slice(1)) await up.readToEnd(WAIT_MS);
  first.destroy();
  await firstUp.readToEnd(WAIT_MS);
  await waitFor(() => liveWatches() === watchesBefore, { timeoutMs: WAIT_MS, what: 'the watches ended' });
  client.destroy();
});

type Ending = 'after-head' | 'after-part' | 'after-101' | 'after-frame' | 'split-then-frame' | 'forbidden' | 'not-a-handshake' | 'slow-upstream-leave';
const ENDINGS: readonly Ending[] = ['after-head', 'after-part', 'after-101', 'after-frame', 'split-then-frame', 'forbidden', 'not-a-handshake', 'slow-upstream-leave'];

async function oneClient(port: number, ending: Ending): Promise<void> {
  const s = await rawConnect(port, { timeoutMs: WAIT_MS });
  try {
    const path = ending === 'forbidden' ? '/forbidden' : ending === 'slow-upstream-leave' ? '/slow' : '/chat';
    const request = wsHandshakeRequest({ path });
    if (ending === 'not-a-handshake') {
      // An Upgrade line, so the addon hands it over watched, but no handshake (no Connection: upgrade).
      s.write('GET /plain HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: close\r\n\r\n');
      const answer = await readToEnd(s, WAIT_MS);
      assert.match(answer.toString('latin1'), /^HTTP\/1\.1 200 /);
      return;
    }
    if (ending === 'after-part') {
      s.write(request.slice(0, 15));
      return;
    }
    if (ending === 'split-then-frame') {
      s.write(request.slice(0, 25));
      await new Promise((resolve) => setImmediate(resolve));
      s.write(request.slice(25));
    } else {
      s.write(request);
    }
    if (ending === 'after-head' || ending === 'slow-upstream-leave') return;
    const head = (await waitForBytes(s, '\r\n\r\n', WAIT_MS)).toString('latin1');
    if (ending === 'forbidden') {
      assert.match(head, /^HTTP\/1\.1 403 /);
      return;
    }
    assert.match(head, /^HTTP\/1\.1 101 /);
    if (ending === 'after-101') return;
    s.write(maskedFrame(Opcode.TEXT, 'ping'));
  } finally {
    s.destroy();
  }
}

test('many handshakes, the clients leaving at random points: no descriptor, registration or watch left behind', async (t) => {
  const backend = await startHttpBackend(undefined, {
    id: 'echo',
    onUpgrade: (req, socket) => {
      // /slow never answers: its client leaves while the session waits for the 101.
      socket.on('error', () => socket.destroy());
      socket.on('end', () => socket.end());
      socket.on('data', () => undefined);
      if (req.url === '/slow') return;
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${SAMPLE_ACCEPT}\r\n\r\n`);
    },
  });
  t.after(() => backend.close());
  const proxy = await startTestProxy(config(backend.addr), { t });
  // One handshake first, so that whatever the process opens once (the addon's pipes, the
  // upstream keepalive cache) is open before the count.
  await oneClient(proxy.port, 'after-frame');
  await waitFor(() => nativeTunnels()?.open === 0, { timeoutMs: WAIT_MS, what: 'the first tunnel closed' });
  await waitFor(() => backend.openSockets() === 0, { timeoutMs: WAIT_MS, what: 'the backend side closed' });
  const fdsBefore = openDescriptors();
  const regsBefore = registrations().length;
  const watchesBefore = liveWatches();
  const before = { ...nativeClientCounts };
  const random = seeded(15);
  const rounds = 24;
  const perRound = 10;
  const used = new Set<Ending>();
  for (let r = 0; r < rounds; r++) {
    const batch: Promise<void>[] = [];
    for (let i = 0; i < perRound; i++) {
      const ending = ENDINGS[Math.floor(random() * ENDINGS.length)] as Ending;
      used.add(ending);
      batch.push(oneClient(proxy.port, ending));
    }
    await Promise.all(batch);
  }
  assert.equal(used.size, ENDINGS.length, 'every ending was tried');
  assert.ok(nativeClientCounts.tunnels > before.tunnels, 'some tunnels ran on the native client path');
  assert.ok(nativeClientCounts.materialized > before.materialized, 'some native clients became sockets (the 403s)');
  const state = (): string => `descriptors ${openDescriptors()} (before ${fdsBefore}), registrations ${registrations().length} (before ${regsBefore}), watches ${liveWatches()} (before ${watchesBefore}), native tunnels ${nativeTunnels()?.open}, backend sockets ${backend.openSockets()}`;
  await waitFor(
    () => openDescriptors() === fdsBefore && registrations().length === regsBefore && liveWatches() === watchesBefore && nativeTunnels()?.open === 0,
    { timeoutMs: WAIT_MS * 2, what: `everything closed: ${state()}` },
  ).catch((error: unknown) => {
    throw new Error(`${(error as Error).message}; now ${state()}`);
  });
});

/**
 * Balancing methods end to end (BEHAVIOURS 31, 32, 34; issue 3): least_conn over long-lived
 * tunnels, ip_hash and `hash KEY [consistent]` (stickiness, spread, what moves when a server goes),
 * random and random two, sticky cookie over HTTP and WebSocket, max_conns and backup, passive
 * health under a non-round-robin method, proxy_next_upstream_tries / _timeout with several dead
 * servers, and zone. Round robin, weights, max_fails and backup-when-down are in balancing.test.ts.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Agent } from 'node:http';
import { test } from 'node:test';
import { skipTime } from '../../src/core/clock.js';
import { acceptEchoUpgrade } from '../../src/echo/echo-websocket.js';
import { startHttpBackend, startHttpBackends, startRawBackend, type HttpBackend } from '../helpers/backends.js';
import { conf } from '../helpers/config-text.js';
import { refusedPort } from '../helpers/ports.js';
import { startTestProxy } from '../helpers/proxy.js';
import { maskedFrame, rawConnect, rawRequest, readFrame, waitForClose } from '../helpers/raw-client.js';
import { tempDir, type AfterHook } from '../helpers/temp.js';
import { waitFor } from '../helpers/wait.js';
import {
  WAIT_MS, chashRing, get, hashIndex, ipHashIndex, mapLimit, openWs, parseSetCookie, record, tally,
  type PickEvent, type WsClient,
} from './balancing-support.js';
import { switching101, tunnelEvents } from './ws-support.js';

const T = { timeout: 60_000 };

function keepAliveAgent(t: AfterHook): Agent {
  const agent = new Agent({ keepAlive: true, maxSockets: 8 });
  t.after(() => agent.destroy());
  return agent;
}

/** Open tunnels per server address, from the proxy's tunnel events. */
function openPerServer(events: ReturnType<typeof tunnelEvents>, addr: string): number {
  return events.opened.filter((e) => e.server === addr).length - events.closed.filter((e) => e.server === addr).length;
}

/** Destroys `clients` and waits until the proxy has closed their tunnels (and released the servers). */
async function closeTunnels(events: ReturnType<typeof tunnelEvents>, clients: readonly WsClient[]): Promise<void> {
  const want = events.closed.length + clients.length;
  for (const c of clients) c.socket.destroy();
  await waitFor(() => events.closed.length >= want, { timeoutMs: WAIT_MS, what: `${clients.length} tunnels to close` });
}

async function tunnel(t: AfterHook, port: number, path = '/', headers: Record<string, string> = {}): Promise<WsClient> {
  const ws = await openWs(t, port, { path, headers });
  assert.equal(ws.status, 101, `handshake to ${path}: ${ws.head.statusLine}`);
  return ws;
}

test('least_conn counts open tunnels: with 10 on A, new tunnels go to B until balanced; closing frees A', T, async (t) => {
  const [a] = await startHttpBackends(t, 'a');
  // B refuses upgrades (503, passed on to A) until told otherwise; max_fails=0 keeps it in the pool.
  let bRefuses = true;
  const b = await startHttpBackend(undefined, {
    id: 'b',
    onUpgrade(req, socket, head) {
      if (bRefuses) socket.end('HTTP/1.1 503 Service Unavailable\r\nX-Echo-Id: b\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      else acceptEchoUpgrade(req, socket, head, { id: 'b' });
    },
  });
  t.after(() => b.close());
  const proxy = await startTestProxy(conf(`
    upstream lc { least_conn; server ${a!.addr}; server ${b.addr} max_fails=0; }
    server {
      listen 127.0.0.1:0;
      proxy_next_upstream error timeout http_503;
      location / { proxy_pass http://lc; }
    }`), { t });
  const events = tunnelEvents(t, proxy.port);

  const onA: WsClient[] = [];
  for (let i = 0; i < 10; i++) onA.push(await tunnel(t, proxy.port));
  assert.deepEqual(onA.map((w) => w.id), Array(10).fill('a'));
  // The first handshake was a tie (A, by round robin); each later one went to B first (fewer
  // connections), was refused and passed on to A within the same request.
  assert.equal(b.requests.length, 9);
  assert.equal(openPerServer(events, a!.addr), 10);

  bRefuses = false;
  const next: WsClient[] = [];
  for (let i = 0; i < 10; i++) next.push(await tunnel(t, proxy.port));
  assert.deepEqual(next.map((w) => w.id), Array(10).fill('b'), 'B gets every new tunnel until it holds as many as A');
  const tie = [await tunnel(t, proxy.port), await tunnel(t, proxy.port)];
  assert.deepEqual(tie.map((w) => w.id).sort(), ['a', 'b'], 'balanced: one each');
  assert.deepEqual([openPerServer(events, a!.addr), openPerServer(events, b.addr)], [11, 11]);

  // Closing four of A's tunnels drops its count: the next four go to A.
  await closeTunnels(events, onA.slice(0, 4));
  assert.deepEqual([openPerServer(events, a!.addr), openPerServer(events, b.addr)], [7, 11]);
  const refill: string[] = [];
  for (let i = 0; i < 4; i++) refill.push((await tunnel(t, proxy.port)).id);
  assert.deepEqual(refill, ['a', 'a', 'a', 'a']);

  // Plain HTTP requests are short connections: at 11 each, they alternate.
  const http: string[] = [];
  for (let i = 0; i < 4; i++) http.push((await get(proxy.port, '/')).id);
  assert.deepEqual(http.sort(), ['a', 'a', 'b', 'b']);
});

test('least_conn across a reload: tunnels opened before it still count, so a server added by it fills up first', T, async (t) => {
  const [a, b] = await startHttpBackends(t, 'a', 'b');
  const config = (servers: readonly HttpBackend[]): string => conf(`
    upstream lc_reload { least_conn; ${servers.map((s) => `server ${s.addr};`).join(' ')} }
    server { listen 127.0.0.1:0; location / { proxy_pass http://lc_reload; } }`);
  const proxy = await startTestProxy(config([a!]), { t });
  const events = tunnelEvents(t, proxy.port);
  const onA: WsClient[] = [];
  for (let i = 0; i < 6; i++) onA.push(await tunnel(t, proxy.port));
  assert.deepEqual(onA.map((w) => w.id), Array(6).fill('a'));

  const reloaded = await proxy.handle.reload({ text: config([a!, b!]) });
  assert.equal(reloaded.drained, 0);
  const next: string[] = [];
  for (let i = 0; i < 6; i++) next.push((await tunnel(t, proxy.port)).id);
  assert.deepEqual(next, Array(6).fill('b'), 'A still holds its 6 tunnels after the reload');
  // The tunnels from before the reload still work, and closing them is still counted.
  assert.equal(openPerServer(events, a!.addr), 6);
  onA[5]!.socket.write(maskedFrame(0x1, 'still here'));
  const echo = await readFrame(onA[5]!.socket, WAIT_MS);
  assert.deepEqual([echo.opcode, echo.payload.toString()], [0x1, 'still here']);
  await closeTunnels(events, onA.slice(0, 2));
  assert.deepEqual([(await tunnel(t, proxy.port)).id, (await tunnel(t, proxy.port)).id], ['a', 'a']);
});

test('least_conn counts HTTP requests in flight as open connections too', T, async (t) => {
  const held: (() => void)[] = [];
  const slowA = await startHttpBackend((req, res) => {
    res.setHeader('X-Echo-Id', 'a');
    if (req.url === '/slow') held.push(() => res.end('late'));
    else res.end('now');
  }, { id: 'a' });
  t.after(() => slowA.close());
  const [b] = await startHttpBackends(t, 'b');
  const proxy = await startTestProxy(conf(`
    upstream lc_http { least_conn; server ${slowA.addr}; server ${b!.addr}; }
    server { listen 127.0.0.1:0; location / { proxy_pass http://lc_http; } }`), { t });
  const slow = [get(proxy.port, '/slow'), get(proxy.port, '/slow')];
  // The first two (a tie, then the other) split; B answers its one at once, A holds its own.
  await waitFor(() => held.length === 1 && b!.requests.length === 1, { timeoutMs: WAIT_MS, what: 'one request held by A' });
  const whileHeld: string[] = [];
  for (let i = 0; i < 5; i++) whileHeld.push((await get(proxy.port, '/')).id);
  assert.deepEqual(whileHeld, ['b', 'b', 'b', 'b', 'b'], 'A has one connection open, B none');
  held.shift()!();
  const late = await Promise.all(slow);
  assert.deepEqual(late.map((r) => r.id).sort(), ['a', 'b']);
  const after: string[] = [];
  for (let i = 0; i < 4; i++) after.push((await get(proxy.port, '/')).id);
  assert.deepEqual(after.sort(), ['a', 'a', 'b', 'b']);
});

test('ip_hash: one /24 lands on one server (127.0.0.x all alike), over HTTP and WebSocket; each /24 as nginx picks it', T, async (t) => {
  const servers = await startHttpBackends(t, 's0', 's1', 's2');
  const proxy = await startTestProxy(conf(`
    upstream iph { ip_hash; ${servers.map((s) => `server ${s.addr};`).join(' ')} }
    server { listen 127.0.0.1:0; location / { proxy_pass http://iph; } }`), { t });

  // nginx hashes only the first three octets: 127.0.0.1 ... 127.0.0.12 are one client.
  const home = `s${ipHashIndex('127.0.0.1', 3)}`;
  const sameNet: string[] = [];
  for (let i = 1; i <= 12; i++) sameNet.push((await get(proxy.port, '/', { localAddress: `127.0.0.${i}` })).id);
  assert.deepEqual(sameNet, Array(12).fill(home));
  for (let i = 2; i <= 4; i++) assert.equal((await openWs(t, proxy.port, { localAddress: `127.0.0.${i}` })).id, home);

  // Other /24s: each always lands where nginx puts it, HTTP and WebSocket alike.
  for (const addr of ['127.1.2.3', '127.9.9.9', '127.200.17.4', '127.42.0.250']) {
    const want = `s${ipHashIndex(addr, 3)}`;
    for (let i = 0; i < 3; i++) assert.equal((await get(proxy.port, '/', { localAddress: addr })).id, want, addr);
    assert.equal((await openWs(t, proxy.port, { localAddress: addr })).id, want, `${addr} (WebSocket)`);
  }
});

test('ip_hash spreads 1,000 client networks over 3 servers within ±15%, each exactly where nginx puts it', T, async (t) => {
  const servers = await startHttpBackends(t, 's0', 's1', 's2');
  const proxy = await startTestProxy(conf(`
    upstream iph_spread { ip_hash; ${servers.map((s) => `server ${s.addr};`).join(' ')} }
    server { listen 127.0.0.1:0; location / { proxy_pass http://iph_spread; } }`), { t });
  const addrs = Array.from({ length: 1000 }, (_, i) => `127.${Math.floor(i / 250)}.${i % 250}.1`);
  const got = await mapLimit(addrs, 8, async (addr) => (await get(proxy.port, '/', { localAddress: addr })).id);
  const wrong = addrs.filter((addr, i) => got[i] !== `s${ipHashIndex(addr, 3)}`);
  assert.deepEqual(wrong, [], 'every client network on nginx\'s server');
  const counts = tally(got);
  for (const s of ['s0', 's1', 's2']) assert.ok(counts[s]! >= 283 && counts[s]! <= 383, `${s}: ${counts[s]} of 1000`);
  // Each request was recorded by the server that answered it.
  assert.deepEqual(servers.map((s) => s.requests.length), [counts['s0'], counts['s1'], counts['s2']]);
});

test('ip_hash: a server marked down or refusing moves only its own clients, to the server nginx rehashes them to', T, async (t) => {
  const servers = await startHttpBackends(t, 's0', 's1', 's2');
  const dead = await refusedPort();
  const proxy = await startTestProxy(conf(`
    upstream iph_all { ip_hash; server ${servers[0]!.addr}; server ${servers[1]!.addr}; server ${servers[2]!.addr}; }
    upstream iph_down { ip_hash; server ${servers[0]!.addr}; server ${servers[1]!.addr}; server ${servers[2]!.addr} down; }
    upstream iph_dead { ip_hash; server ${servers[0]!.addr}; server ${servers[1]!.addr}; server 127.0.0.1:${dead}; }
    server {
      listen 127.0.0.1:0;
      location /all/ { proxy_pass http://iph_all; }
      location /down/ { proxy_pass http://iph_down; }
      location /dead/ { proxy_pass http://iph_dead; }
    }`), { t });
  const addrs = Array.from({ length: 60 }, (_, i) => `127.${10 + (i % 7)}.${i * 3}.1`);
  const onThird = addrs.filter((a) => ipHashIndex(a, 3) === 2);
  assert.ok(onThird.length >= 5 && onThird.length < addrs.length, 'some clients hash to the third server');
  for (const addr of addrs) {
    const all = await get(proxy.port, '/all/', { localAddress: addr });
    const down = await get(proxy.port, '/down/', { localAddress: addr });
    const viaDead = await get(proxy.port, '/dead/', { localAddress: addr });
    const home = ipHashIndex(addr, 3);
    const rehashed = ipHashIndex(addr, 3, new Set([2]));
    assert.equal(all.id, `s${home}`, addr);
    // Clients of other servers keep theirs; clients of the down one go where nginx's rehash says.
    assert.equal(down.id, `s${home === 2 ? rehashed : home}`, `${addr} with the third server down`);
    // A refused connection is passed on (no client error), and later requests skip the server.
    assert.deepEqual([viaDead.status, viaDead.id], [200, `s${home === 2 ? rehashed : home}`], `${addr} with the third server refusing`);
  }
  // Only the first client of the refusing server met the failure; it was then marked failed.
  const refused = new RegExp(`\\[error\\] .*connect\\(\\) failed \\(111: Connection refused\\) while connecting to upstream, .*upstream: "http://127\\.0\\.0\\.1:${dead}/dead/"`);
  await proxy.waitForErrorLine(refused);
  assert.equal(proxy.errorLines.filter((l) => refused.test(l)).length, 1);
});

test('hash $http_x_user / $cookie_sid / $arg_room consistent: a key sticks to nginx\'s server; no key means round robin', T, async (t) => {
  const servers = await startHttpBackends(t, 's0', 's1', 's2');
  const list = servers.map((s) => `server ${s.addr};`).join(' ');
  const proxy = await startTestProxy(conf(`
    upstream by_user { hash $http_x_user; ${list} }
    upstream by_sid { hash $cookie_sid; ${list} }
    upstream by_room { hash $arg_room consistent; ${list} }
    server {
      listen 127.0.0.1:0;
      location /user/ { proxy_pass http://by_user; }
      location /sid/ { proxy_pass http://by_sid; }
      location /room/ { proxy_pass http://by_room; }
    }`), { t });
  const ring = chashRing(servers.map((s) => s.addr));
  const idOf = new Map(servers.map((s) => [s.addr, s.id]));

  for (const user of ['alice', 'bob', 'carol', 'dave', 'erin']) {
    const want = `s${hashIndex(user, 3)}`;
    for (let i = 0; i < 4; i++) assert.equal((await get(proxy.port, '/user/', { headers: { 'X-User': user } })).id, want, user);
    // The cookie is found among others, in any position.
    for (const cookie of [`sid=${user}`, `theme=dark; sid=${user}`, `sid=${user}; lang=en`]) {
      assert.equal((await get(proxy.port, '/sid/', { headers: { Cookie: cookie } })).id, want, cookie);
    }
    const room = `room-${user}`;
    const home = idOf.get(ring(room));
    for (let i = 0; i < 3; i++) assert.equal((await get(proxy.port, `/room/?room=${room}&n=${i}`)).id, home, room);
    // Members of a room meet on one server over WebSocket too.
    for (let i = 0; i < 2; i++) assert.equal((await openWs(t, proxy.port, { path: `/room/?room=${room}` })).id, home, `${room} (WebSocket)`);
  }

  // nginx (1.17.1+): an empty key falls back to round robin instead of piling onto one server.
  for (const path of ['/user/', '/sid/', '/room/']) {
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) ids.push((await get(proxy.port, path)).id);
    assert.deepEqual(ids, ['s0', 's1', 's2', 's0', 's1', 's2'], `${path} without a key`);
  }
});

test('hash spreads 1,000 keys over 3 servers within ±15%; hash consistent puts every key where nginx\'s ring does', T, async (t) => {
  const servers = await startHttpBackends(t, 's0', 's1', 's2');
  const list = servers.map((s) => `server ${s.addr};`).join(' ');
  const proxy = await startTestProxy(conf(`
    upstream spread_plain { hash $http_x_user; ${list} }
    upstream spread_ring { hash $arg_room consistent; ${list} }
    server {
      listen 127.0.0.1:0;
      location /user/ { proxy_pass http://spread_plain; }
      location /room/ { proxy_pass http://spread_ring; }
    }`), { t });
  const agent = keepAliveAgent(t);
  const users = Array.from({ length: 1000 }, (_, i) => `user-${i}`);
  const plain = await mapLimit(users, 8, async (u) => (await get(proxy.port, '/user/', { agent, headers: { 'X-User': u } })).id);
  assert.deepEqual(users.filter((u, i) => plain[i] !== `s${hashIndex(u, 3)}`), []);
  const counts = tally(plain);
  for (const s of ['s0', 's1', 's2']) assert.ok(counts[s]! >= 283 && counts[s]! <= 383, `hash: ${s} has ${counts[s]} of 1000`);

  // The ring's shares depend on the servers' names (their random ports here), so the spread is
  // checked against nginx's ring, key by key, rather than against a fixed tolerance.
  const ring = chashRing(servers.map((s) => s.addr));
  const idOf = new Map(servers.map((s) => [s.addr, s.id]));
  const rooms = Array.from({ length: 1000 }, (_, i) => `room-${i}`);
  const ringed = await mapLimit(rooms, 8, async (r) => (await get(proxy.port, `/room/?room=${r}`, { agent })).id);
  assert.deepEqual(rooms.filter((r, i) => ringed[i] !== idOf.get(ring(r))), []);
  for (const s of ['s0', 's1', 's2']) assert.ok((tally(ringed)[s] ?? 0) > 150, `consistent: ${s} has ${tally(ringed)[s]} of 1000`);
});

test('hash consistent: removing a server from the config moves only that server\'s keys', T, async (t) => {
  const servers = await startHttpBackends(t, 's0', 's1', 's2');
  const three = await startTestProxy(conf(`
    upstream ring3 { hash $arg_room consistent; ${servers.map((s) => `server ${s.addr};`).join(' ')} }
    server { listen 127.0.0.1:0; location / { proxy_pass http://ring3; } }`), { t });
  const two = await startTestProxy(conf(`
    upstream ring2 { hash $arg_room consistent; server ${servers[0]!.addr}; server ${servers[1]!.addr}; }
    server { listen 127.0.0.1:0; location / { proxy_pass http://ring2; } }`), { t });
  const agent = keepAliveAgent(t);
  const rooms = Array.from({ length: 1000 }, (_, i) => `r${i}`);
  const before = await mapLimit(rooms, 8, async (r) => (await get(three.port, `/?room=${r}`, { agent })).id);
  const after = await mapLimit(rooms, 8, async (r) => (await get(two.port, `/?room=${r}`, { agent })).id);
  const moved = rooms.filter((_, i) => before[i] !== after[i]);
  const ofRemoved = rooms.filter((_, i) => before[i] === 's2');
  assert.deepEqual(moved, ofRemoved, 'exactly the keys of the removed server move');
  assert.ok(after.every((id) => id === 's0' || id === 's1'));
  // How many that is depends on the removed server's share of nginx's ring.
  const ring = chashRing(servers.map((s) => s.addr));
  assert.equal(moved.length, rooms.filter((r) => ring(r) === servers[2]!.addr).length);
  assert.ok(moved.length > 150 && moved.length < 500, `${moved.length} of 1000 moved (about a third)`);
});

test('random reaches every server; random two least_conn sends new tunnels to the less loaded of two', T, async (t) => {
  const [a, b, c] = await startHttpBackends(t, 'a', 'b', 'c');
  const proxy = await startTestProxy(conf(`
    upstream rnd { random; server ${a!.addr}; server ${b!.addr}; server ${c!.addr}; }
    upstream rnd2 { random two least_conn; server ${a!.addr}; server ${b!.addr}; }
    server {
      listen 127.0.0.1:0;
      location /r/ { proxy_pass http://rnd; }
      location /two/ { proxy_pass http://rnd2; }
    }`), { t });
  const events = tunnelEvents(t, proxy.port);
  const ids: string[] = [];
  for (let i = 0; i < 90; i++) {
    const r = await get(proxy.port, '/r/');
    assert.equal(r.status, 200);
    ids.push(r.id);
  }
  const counts = tally(ids);
  assert.deepEqual(Object.keys(counts).sort(), ['a', 'b', 'c'], `every server is reached: ${JSON.stringify(counts)}`);

  // With two servers, "two" draws both: the one with fewer tunnels always wins, so they stay level.
  const opened: WsClient[] = [];
  for (let i = 0; i < 10; i++) {
    opened.push(await tunnel(t, proxy.port, '/two/'));
    const diff = openPerServer(events, a!.addr) - openPerServer(events, b!.addr);
    assert.ok(Math.abs(diff) <= 1, `after ${i + 1} tunnels: a-b = ${diff}`);
  }
  assert.deepEqual([openPerServer(events, a!.addr), openPerServer(events, b!.addr)], [5, 5]);
  await closeTunnels(events, opened.filter((w) => w.id === 'a').slice(0, 3));
  const refill: string[] = [];
  for (let i = 0; i < 3; i++) refill.push((await tunnel(t, proxy.port, '/two/')).id);
  assert.deepEqual(refill, ['a', 'a', 'a']);
});

test('sticky cookie over HTTP: set once with its attributes, followed while the server is up, replaced when it is not', T, async (t) => {
  const [a, b] = await startHttpBackends(t, 'a', 'b');
  const proxy = await startTestProxy(conf(`
    upstream st {
      server ${a!.addr};
      server ${b!.addr};
      sticky cookie srv_id expires=1h domain=.example.com path=/app httponly secure samesite=lax;
    }
    server { listen 127.0.0.1:0; location / { proxy_pass http://st; } }`), { t });

  const first = await get(proxy.port, '/');
  assert.deepEqual([first.status, first.id], [200, 'a']);
  assert.equal(first.cookies.length, 1);
  const cookie = parseSetCookie(first.cookies[0]!);
  assert.equal(cookie.name, 'srv_id');
  assert.match(cookie.value, /^[A-Za-z0-9_-]{22}$/);
  const [expires, ...rest] = cookie.attributes;
  assert.deepEqual(rest, ['Max-Age=3600', 'Domain=.example.com', 'Path=/app', 'HttpOnly', 'Secure', 'SameSite=Lax']);
  assert.match(expires!, /^Expires=\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} GMT$/);
  const lifetime = Date.parse(expires!.slice('Expires='.length)) - Date.now();
  assert.ok(lifetime > 3_590_000 && lifetime <= 3_600_000, `expires in ${lifetime} ms`);

  // The id is opaque: not the address, its port, nor a plain digest of it (nginx Plus uses MD5).
  for (const server of [a!, b!]) {
    for (const form of [server.addr, String(server.port), Buffer.from(server.addr).toString('base64url').slice(0, 10)]) {
      assert.ok(!cookie.value.includes(form), `${cookie.value} reveals ${form}`);
    }
    for (const algo of ['md5', 'sha1', 'sha256']) {
      const digest = createHash(algo).update(server.addr).digest();
      assert.ok(![digest.toString('hex'), digest.toString('base64url')].some((d) => d.startsWith(cookie.value.slice(0, 16))), algo);
    }
  }

  // With the cookie every request goes to A (round robin alone would alternate); no new cookie.
  const withA = { Cookie: `theme=dark; srv_id=${cookie.value}` };
  for (let i = 0; i < 5; i++) {
    const r = await get(proxy.port, '/', { headers: withA });
    assert.deepEqual([r.status, r.id, r.cookies], [200, 'a', []]);
  }
  // Without one, the balancer picks (B is next) and B's own id is set.
  const second = await get(proxy.port, '/');
  assert.equal(second.id, 'b');
  const idB = parseSetCookie(second.cookies[0]!).value;
  assert.notEqual(idB, cookie.value);
  assert.equal((await get(proxy.port, '/', { headers: { Cookie: `srv_id=${idB}` } })).id, 'b');
  // A forged or stale value names no server: balanced as without a cookie, and replaced.
  const forged = await get(proxy.port, '/', { headers: { Cookie: 'srv_id=AAAAAAAAAAAAAAAAAAAAAA' } });
  assert.equal(forged.cookies.length, 1);
  assert.equal(parseSetCookie(forged.cookies[0]!).value, forged.id === 'a' ? cookie.value : idB);

  // A goes away: its clients are served by B (no error) and get B's cookie.
  await a!.close();
  const moved = await get(proxy.port, '/', { headers: withA });
  assert.deepEqual([moved.status, moved.id], [200, 'b']);
  assert.deepEqual(moved.cookies.map((c) => parseSetCookie(c).value), [idB]);
  const again = await get(proxy.port, '/', { headers: withA });
  assert.deepEqual([again.status, again.id, again.cookies.length], [200, 'b', 1]);

});

test('sticky cookie secret_file: instances that share the file follow each other\'s cookies (a fleet needs no shared state); without it they do not', T, async (t) => {
  const [a, b, c] = await startHttpBackends(t, 'a', 'b', 'c');
  const dir = tempDir(t);
  const secret = dir.write('sticky.key', `${'k3y'.repeat(12)}\n`);
  const upstream = (params: string): string => `upstream st_fleet { server ${a!.addr}; server ${b!.addr}; server ${c!.addr}; sticky cookie sid ${params}; }
    server { listen 127.0.0.1:0; location / { proxy_pass http://st_fleet; } }`;
  // Three instances, each a proxy of its own (its own random key unless the file gives one).
  const fleet = await Promise.all([0, 1, 2].map(() => startTestProxy(conf(upstream(`secret_file=${secret}`)), { t })));
  // Round robin on the first instance: its third client is placed on c.
  for (let i = 0; i < 2; i++) await tunnel(t, fleet[0]!.port);
  const placed = await tunnel(t, fleet[0]!.port);
  assert.equal(placed.id, 'c');
  const withCookie = { Cookie: `sid=${parseSetCookie(placed.cookies[0]!).value}` };
  // The other instances, whose own round robin would start at a, send the client to c too.
  for (const proxy of [fleet[1]!, fleet[2]!]) {
    const ws = await tunnel(t, proxy.port, '/', withCookie);
    assert.deepEqual([ws.id, ws.cookies], ['c', []]);
    assert.deepEqual((await get(proxy.port, '/poll', { headers: withCookie })).id, 'c');
  }
  // An instance with its own key does not know the cookie: it places the client anew and replaces it.
  const alone = await startTestProxy(conf(upstream('')), { t });
  const other = await tunnel(t, alone.port, '/', withCookie);
  assert.deepEqual([other.id, other.cookies.length], ['a', 1]);
});

test('sticky cookie over WebSocket: the 101 sets it, later handshakes and requests with it land on the same server', T, async (t) => {
  const [a, b, c] = await startHttpBackends(t, 'a', 'b', 'c');
  const proxy = await startTestProxy(conf(`
    upstream st_ws { server ${a!.addr}; server ${b!.addr}; server ${c!.addr}; sticky cookie sid path=/ samesite=none secure; }
    server { listen 127.0.0.1:0; location / { proxy_pass http://st_ws; } }`), { t });
  const first = await tunnel(t, proxy.port);
  assert.equal(first.id, 'a');
  assert.equal(first.cookies.length, 1);
  const cookie = parseSetCookie(first.cookies[0]!);
  assert.equal(cookie.name, 'sid');
  assert.deepEqual(cookie.attributes, ['Path=/', 'Secure', 'SameSite=None']);

  const withCookie = { Cookie: `sid=${cookie.value}` };
  for (let i = 0; i < 4; i++) {
    const ws = await tunnel(t, proxy.port, '/', withCookie);
    assert.deepEqual([ws.id, ws.cookies], ['a', []]);
  }
  // The polling fallback of the same client (socket.io) reaches the same server.
  assert.deepEqual((await get(proxy.port, '/poll', { headers: withCookie })).id, 'a');

  // Its server gone, the handshake is passed to another and the 101 carries the new cookie.
  await a!.close();
  const moved = await tunnel(t, proxy.port, '/', withCookie);
  assert.notEqual(moved.id, 'a');
  assert.equal(moved.cookies.length, 1);
  const newCookie = parseSetCookie(moved.cookies[0]!);
  assert.notEqual(newCookie.value, cookie.value);
  for (let i = 0; i < 3; i++) {
    const ws = await tunnel(t, proxy.port, '/', { Cookie: `sid=${newCookie.value}` });
    assert.deepEqual([ws.id, ws.cookies], [moved.id, []]);
  }

  // expires=max is nginx Plus's fixed date with the matching Max-Age.
  const upMax = await startHttpBackend(undefined, { id: 'x' });
  t.after(() => upMax.close());
  const maxProxy = await startTestProxy(conf(`
    upstream st_forever { server ${upMax.addr}; sticky cookie route expires=max; }
    server { listen 127.0.0.1:0; location / { proxy_pass http://st_forever; } }`), { t });
  const ws = await tunnel(t, maxProxy.port);
  assert.deepEqual(parseSetCookie(ws.cookies[0]!).attributes, ['Expires=Thu, 31 Dec 2037 23:55:55 GMT', 'Max-Age=315360000', 'Path=/']);
});

test('max_conns caps a server (tunnels held open count); every server full gives 502; a freed slot is used again', T, async (t) => {
  const [a, b] = await startHttpBackends(t, 'a', 'b');
  const proxy = await startTestProxy(conf(`
    upstream mc { server ${a!.addr} max_conns=2 weight=5; server ${b!.addr} max_conns=1; }
    server { listen 127.0.0.1:0; location / { proxy_pass http://mc; } }`), { t });
  const events = tunnelEvents(t, proxy.port);
  const held = [await tunnel(t, proxy.port), await tunnel(t, proxy.port), await tunnel(t, proxy.port)];
  // Weight 5 sends the first two to A; the third would go to A too, but A is full.
  assert.deepEqual(held.map((w) => w.id), ['a', 'a', 'b']);

  const full = await openWs(t, proxy.port);
  assert.equal(full.status, 502);
  const fullHttp = await get(proxy.port, '/');
  assert.equal(fullHttp.status, 502);
  await proxy.waitForErrorLine(/\[error\] .*no live upstreams while connecting to upstream.*, client: 127\.0\.0\.1, server: , request: "GET \/ HTTP\/1\.1"/);
  assert.equal(a!.requests.length + b!.requests.length, 3, 'nothing reached a full server');

  await closeTunnels(events, [held[0]!]);
  assert.deepEqual([(await get(proxy.port, '/')).id, (await tunnel(t, proxy.port)).id], ['a', 'a']);
  assert.equal((await openWs(t, proxy.port)).status, 502);
});

test('max_conns: the slot is given back however a connection ends (aborts, resets, refusals, closed tunnels)', T, async (t) => {
  const up = await startRawBackend(async (conn) => {
    const head = (await conn.readUntil('\r\n\r\n', WAIT_MS)).toString('latin1');
    switch (head.split(' ')[1]) {
      case '/ok': conn.socket.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok'); break;
      case '/cut': conn.socket.end('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b'); break;
      case '/reset': conn.socket.destroy(); break;
      case '/ws-refuse': conn.socket.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n'); break;
      case '/ws-bad-accept': conn.socket.end(switching101({ accept: 'AAAAAAAAAAAAAAAAAAAAAAAAAAA=' })); break;
      case '/ws-then-close': conn.socket.end(switching101()); break;
      case '/ws-hold':
        conn.socket.write(switching101());
        conn.socket.once('end', () => conn.socket.end()); // a FIN is passed on (half-close): answer it
        break;
      default: break; // /hang: no answer
    }
  });
  t.after(() => up.close());
  const proxy = await startTestProxy(conf(`
    upstream capped { server ${up.addr} max_conns=1; }
    server { listen 127.0.0.1:0; location / { proxy_pass http://capped; } }`), { t });
  const slotFree = (what: string): Promise<unknown> => waitFor(async () => (await get(proxy.port, '/ok')).status === 200,
    { timeoutMs: WAIT_MS, what: `the slot to be free after ${what}` });
  /** A client that sends `request` and leaves once the server has it. */
  const leaveEarly = async (request: string): Promise<void> => {
    const seen = up.connections.length;
    const socket = await rawConnect(proxy.port);
    socket.write(request);
    await waitFor(() => up.connections.length > seen && up.connections[seen]!.received.includes('\r\n\r\n'),
      { timeoutMs: WAIT_MS, what: 'the request upstream' });
    socket.destroy();
  };

  await slotFree('nothing');
  await leaveEarly('GET /hang HTTP/1.1\r\nHost: x\r\n\r\n');
  await slotFree('a client leaving before the response');
  assert.equal((await rawRequest(proxy.port, 'GET /cut HTTP/1.1\r\nHost: x\r\n\r\n', { until: 'close' })).head?.statusCode, 200);
  await slotFree('a response cut short');
  assert.equal((await get(proxy.port, '/reset')).status, 502);
  await slotFree('a reset before the response');
  assert.equal((await openWs(t, proxy.port, { path: '/ws-refuse' })).status, 403);
  await slotFree('a refused upgrade');
  assert.equal((await openWs(t, proxy.port, { path: '/ws-bad-accept' })).status, 502);
  await slotFree('a 101 with a wrong accept');
  const closedByServer = await openWs(t, proxy.port, { path: '/ws-then-close' });
  assert.equal(closedByServer.status, 101);
  await waitForClose(closedByServer.socket, WAIT_MS);
  await slotFree('a tunnel the server closed');
  const held = await openWs(t, proxy.port, { path: '/ws-hold' });
  assert.equal(held.status, 101);
  // The cap still holds: the tunnel has the one slot.
  assert.equal((await get(proxy.port, '/ok')).status, 502);
  held.socket.destroy();
  await slotFree('a tunnel the client closed');
});

test('backup takes traffic only while the primaries are full, and gives it back when a slot frees', T, async (t) => {
  const [a, b, c] = await startHttpBackends(t, 'a', 'b', 'c');
  const proxy = await startTestProxy(conf(`
    upstream mb { server ${a!.addr} max_conns=1; server ${b!.addr} max_conns=1; server ${c!.addr} backup; }
    server { listen 127.0.0.1:0; location / { proxy_pass http://mb; } }`), { t });
  const events = tunnelEvents(t, proxy.port);
  assert.deepEqual([(await get(proxy.port, '/')).id, (await get(proxy.port, '/')).id], ['a', 'b']);
  const onA = await tunnel(t, proxy.port);
  const onB = await tunnel(t, proxy.port);
  assert.deepEqual([onA.id, onB.id], ['a', 'b']);
  const overflow: string[] = [];
  for (let i = 0; i < 3; i++) overflow.push((await get(proxy.port, '/')).id);
  overflow.push((await tunnel(t, proxy.port)).id);
  assert.deepEqual(overflow, ['c', 'c', 'c', 'c']);
  await closeTunnels(events, [onB]);
  const back: string[] = [];
  for (let i = 0; i < 3; i++) back.push((await get(proxy.port, '/')).id);
  assert.deepEqual(back, ['b', 'b', 'b']);
  assert.equal(c!.requests.length, 4);
});

test('passive health under least_conn: a server back from fail_timeout that succeeds starts from zero failures', T, async (t) => {
  let healthy = false;
  const flaky = await startRawBackend(async (conn) => {
    await conn.readUntil('\r\n\r\n', WAIT_MS);
    if (healthy) conn.socket.end('HTTP/1.1 200 OK\r\nX-Echo-Id: flaky\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
    else conn.socket.destroy();
  });
  t.after(() => flaky.close());
  const [good] = await startHttpBackends(t, 'good');
  const proxy = await startTestProxy(conf(`
    upstream lc_pf { least_conn; server ${flaky.addr} max_fails=2 fail_timeout=30s; server ${good!.addr}; }
    server { listen 127.0.0.1:0; location / { proxy_pass http://lc_pf; } }`), { t });

  const until = async (n: number, what: string): Promise<void> => {
    for (let i = 0; i < 6 && flaky.connections.length < n; i++) assert.equal((await get(proxy.port, '/')).status, 200, what);
    assert.equal(flaky.connections.length, n, what);
  };
  await until(2, 'two failures, each passed on to the good server');
  for (let i = 0; i < 4; i++) assert.equal((await get(proxy.port, '/')).id, 'good');
  assert.equal(flaky.connections.length, 2, 'skipped for fail_timeout');

  healthy = true;
  // Past fail_timeout on the proxy's clock (30 s, so that the four requests above fall within it).
  skipTime(30_000);
  await until(3, 'tried again after fail_timeout, and it answers');
  healthy = false;
  // One failure after a success is below max_fails=2: the server stays in the rotation.
  await until(4, 'one new failure');
  await until(5, 'still picked after a single failure');
});

test('proxy_next_upstream_tries with several dead servers: exactly that many tries, in order, then 502', T, async (t) => {
  const [good] = await startHttpBackends(t, 'good');
  const dead = [await refusedPort(), await refusedPort(), await refusedPort(), await refusedPort()];
  const list = `${dead.map((p) => `server 127.0.0.1:${p};`).join(' ')} server ${good!.addr};`;
  const proxy = await startTestProxy(conf(`
    upstream tries3 { ${list} }
    upstream tries5 { ${list} }
    upstream unlimited { ${list} }
    server {
      listen 127.0.0.1:0;
      location /three/ { proxy_next_upstream_tries 3; proxy_pass http://tries3; }
      location /five/ { proxy_next_upstream_tries 5; proxy_pass http://tries5; }
      location /all/ { proxy_pass http://unlimited; }
    }`), { t });
  const picks3 = record<PickEvent>(t, 'sluice:upstream:pick', 'tries3');
  const picks5 = record<PickEvent>(t, 'sluice:upstream:pick', 'tries5');
  const picksAll = record<PickEvent>(t, 'sluice:upstream:pick', 'unlimited');
  const addr = (p: number): string => `127.0.0.1:${p}`;

  assert.equal((await get(proxy.port, '/three/')).status, 502);
  assert.deepEqual(picks3, [
    { upstream: 'tries3', server: addr(dead[0]!), reason: 'balancer' },
    { upstream: 'tries3', server: addr(dead[1]!), reason: 'retry' },
    { upstream: 'tries3', server: addr(dead[2]!), reason: 'retry' },
  ]);
  const r5 = await get(proxy.port, '/five/');
  assert.deepEqual([r5.status, r5.id], [200, 'good']);
  assert.deepEqual(picks5.map((p) => [p.server, p.reason]), [
    [addr(dead[0]!), 'balancer'], [addr(dead[1]!), 'retry'], [addr(dead[2]!), 'retry'], [addr(dead[3]!), 'retry'], [good!.addr, 'retry'],
  ]);
  const rAll = await get(proxy.port, '/all/');
  assert.deepEqual([rAll.status, rAll.id, picksAll.length], [200, 'good', 5]);
  // The dead servers are now failed: the next request goes straight to the good one.
  assert.deepEqual([(await get(proxy.port, '/all/')).id, picksAll.length], ['good', 6]);
  assert.deepEqual(picksAll[5], { upstream: 'unlimited', server: good!.addr, reason: 'balancer' });
});

test('proxy_next_upstream_timeout stops passing a request on once the time is up (504 from the last try)', T, async (t) => {
  // Servers that accept, read the request and never answer: each try ends at proxy_read_timeout.
  const silent = [await startRawBackend(), await startRawBackend(), await startRawBackend()];
  for (const s of silent) t.after(() => s.close());
  const [good] = await startHttpBackends(t, 'good');
  const proxy = await startTestProxy(conf(`
    upstream slow { ${silent.map((s) => `server ${s.addr};`).join(' ')} server ${good!.addr}; }
    server {
      listen 127.0.0.1:0;
      proxy_read_timeout 1s;
      proxy_next_upstream_timeout 1500ms;
      location / { proxy_pass http://slow; }
    }`), { t });
  const started = Date.now();
  const r = await get(proxy.port, '/');
  const took = Date.now() - started;
  // Tries start at about 0 s and 1 s (inside 1.5 s); the one that would start at 2 s does not.
  assert.equal(r.status, 504);
  assert.deepEqual(silent.map((s) => s.connections.length), [1, 1, 0]);
  assert.equal(good!.requests.length, 0);
  assert.ok(took >= 1900, `two read timeouts take 2 s, took ${took} ms`);
  await proxy.waitForErrorLine(/upstream timed out \(110: Connection timed out\) while reading response header from upstream/);
});

test('zone is accepted, alone or shared between upstreams, and changes nothing in balancing', T, async (t) => {
  const [a, b] = await startHttpBackends(t, 'a', 'b');
  const proxy = await startTestProxy(conf(`
    upstream z1 { zone shared_state 64k; server ${a!.addr}; server ${b!.addr}; }
    upstream z2 { zone shared_state; least_conn; server ${a!.addr}; server ${b!.addr}; }
    upstream z3 { zone own 1m; server ${a!.addr} max_conns=1; }
    server {
      listen 127.0.0.1:0;
      location /one/ { proxy_pass http://z1; }
      location /two/ { proxy_pass http://z2; }
      location /three/ { proxy_pass http://z3; }
    }`), { t });
  const ids: string[] = [];
  for (let i = 0; i < 4; i++) ids.push((await get(proxy.port, '/one/')).id);
  assert.deepEqual(ids, ['a', 'b', 'a', 'b']);
  const ws = [await tunnel(t, proxy.port, '/two/'), await tunnel(t, proxy.port, '/two/')];
  assert.deepEqual(ws.map((w) => w.id).sort(), ['a', 'b']);
  const held = await tunnel(t, proxy.port, '/three/');
  assert.equal(held.id, 'a');
  assert.equal((await get(proxy.port, '/three/')).status, 502);
});

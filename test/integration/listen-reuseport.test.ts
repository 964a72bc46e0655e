/**
 * `listen ... reuseport` (issue 15, item 3) with real worker processes. Every worker binds a
 * socket of its own with SO_REUSEPORT (Node's reusePort on 22.12+ and 23.1+, the native addon's
 * socket on an older Node: server/reuseport.ts) and accepts its connections itself; with neither
 * (no addon), nginx's warning for a platform without SO_REUSEPORT and the one shared socket, on
 * which the workers accept for themselves. Either way connections land on both workers, and a
 * reload under traffic and a graceful quit with a request in flight lose nothing. Also how
 * `accept_mutex` shares connections without `reuseport`.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import type { Socket } from 'node:net';
import { Opcode } from '../../src/websocket/opcodes.js';
import { startHttpBackend } from '../helpers/backends.js';
import { headerValue, maskedFrame, rawConnect, rawWebSocket, readFrame, readUntil } from '../helpers/raw-client.js';
import { acceptKey } from '../../src/websocket/accept-key.js';
import { CHILD_MS, CliProcess, httpGet, runCli } from '../helpers/cli-process.js';
import { unusedPort } from '../helpers/ports.js';
import { tempDir } from '../helpers/temp.js';
import { waitFor } from '../helpers/wait.js';
import { allThreadsStopped } from '../helpers/threads.js';
import { reusePortAvailable } from '../../src/server/reuseport.js';

const WARNING = /\[warn\] reuseport is not supported on this platform, ignored in \S+:\d+/;

/** The inodes of the listening TCP sockets on 127.0.0.1:port, as the kernel lists them. */
function listeningInodes(port: number): string[] {
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  return readFileSync('/proc/net/tcp', 'utf8').split('\n').map((l) => l.trim().split(/\s+/))
    .filter((f) => f[1] === local && f[3] === '0A').map((f) => f[9] as string);
}

function listeningSockets(port: number): number {
  return listeningInodes(port).length;
}

/** The descriptors of process `pid` that are listening sockets of the port. */
function listeningFds(pid: string, port: number): Set<string> {
  const inodes = new Set(listeningInodes(port).map((i) => `socket:[${i}]`));
  return new Set(readdirSync(`/proc/${pid}/fd`).filter((fd) => {
    try {
      return inodes.has(readlinkSync(`/proc/${pid}/fd/${fd}`));
    } catch {
      return false;
    }
  }));
}

/**
 * Whether process `pid` has a listening socket of the port open: a worker that accepts for itself
 * does (its own with reusePort, the primary's shared one without); with round robin only the
 * primary does, and the workers get accepted connections.
 */
function holdsListeningSocket(pid: string, port: number): boolean {
  return listeningFds(pid, port).size > 0;
}

/**
 * Whether process `pid` accepts on a listening socket of the port in the addon: the socket is in
 * an epoll instance under the addon's tag (native/sluice_accept.c, listener_tag) as its data,
 * where libuv's epoll registers a descriptor under its own number.
 */
function acceptsInAddon(pid: string, port: number): boolean {
  const listening = listeningFds(pid, port);
  return readdirSync(`/proc/${pid}/fdinfo`).some((fd) => {
    let info = '';
    try {
      info = readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8');
    } catch {
      return false;
    }
    return [...info.matchAll(/^tfd:\s+(\d+)\s+events:\s+[0-9a-f]+\s+data:\s+([0-9a-f]+)/gm)]
      .some((m) => listening.has(m[1]!) && parseInt(m[2]!, 16) !== Number(m[1]) && (parseInt(m[2]!, 16) & 7) === 3);
  });
}

/** Each worker accepts for itself: it holds a listening socket of the port and its addon accepts there; the primary does not. */
function assertWorkersAccept(workers: ReadonlySet<string>, primary: number, port: number): void {
  for (const pid of workers) assert.ok(holdsListeningSocket(pid, port), `worker ${pid} holds a listening socket of :${port}`);
  for (const pid of workers) assert.ok(acceptsInAddon(pid, port), `worker ${pid} accepts in its addon`);
  assert.equal(acceptsInAddon(String(primary), port), false, 'the primary does not accept');
}

/** `n` connections opened at once, each asking `GET /` (`$pid`) and kept open: each worker's. */
async function burstSockets(t: TestContext, port: number, n: number): Promise<Map<string, Socket[]>> {
  const held: Socket[] = [];
  t.after(() => { for (const s of held) s.destroy(); });
  const owners = await Promise.all(Array.from({ length: n }, async () => {
    const socket = await rawConnect(port);
    held.push(socket);
    socket.write('GET / HTTP/1.1\r\nHost: burst.test\r\n\r\n');
    const text = (await readUntil(socket, (b) => /\r\n\r\n\d+$/.test(b.toString('latin1')))).toString('latin1');
    return [/\r\n\r\n(\d+)$/.exec(text)![1]!, socket] as const;
  }));
  const byWorker = new Map<string, Socket[]>();
  for (const [pid, socket] of owners) byWorker.set(pid, [...(byWorker.get(pid) ?? []), socket]);
  return byWorker;
}

/** `n` connections opened at once, each asking `GET /` (`$pid`) and kept open: how many each worker took. */
async function burst(t: TestContext, port: number, n: number): Promise<Map<string, number>> {
  return new Map([...await burstSockets(t, port, n)].map(([pid, sockets]) => [pid, sockets.length]));
}

function config(port: number, body: string, events = ''): string {
  return `worker_processes 2;
error_log stderr notice;
events { ${events} }
http { server { listen 127.0.0.1:${port} reuseport; ${body} } }
`;
}

/**
 * Reloads `proxy` with the configuration `write(port)` writes, on a port that was free a moment
 * ago, and resolves with that port once the reload is reported done. Test files run in parallel,
 * so another one may bind the port between unusedPort() and the reload: the reload then fails
 * (rightly: nginx keeps the old configuration when a bind fails) and is tried again on another port.
 */
async function reloadOnto(proxy: CliProcess, write: (port: number) => void): Promise<number> {
  const outcomes: string[] = [];
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await unusedPort();
    const from = proxy.stderr.length;
    write(port);
    proxy.child.kill('SIGHUP');
    await waitFor(() => /\[notice\] (\d+#0: )?reconfigured: |reload failed: /.test(proxy.stderr.slice(from)), { timeoutMs: CHILD_MS, what: `the reload onto :${port} to be reported` });
    const said = proxy.stderr.slice(from);
    if (/\[notice\] (\d+#0: )?reconfigured: /.test(said)) return port;
    // Only a port taken meanwhile is tried again; any other failure is the test's failure.
    assert.match(said, new RegExp(`bind\\(\\) to 127\\.0\\.0\\.1:${port} failed \\(98: Address already in use\\)`), said);
    outcomes.push(said);
  }
  throw new Error(`five reloads onto fresh ports failed:\n${outcomes.join('\n')}`);
}

/** New connections, one after another, until two worker pids answered `GET /` (`$pid`). */
async function bothWorkers(port: number): Promise<Set<string>> {
  const seen = new Set<string>();
  await waitFor(async () => {
    const res = await httpGet(port, '/');
    assert.equal(res.status, 200);
    seen.add(res.body);
    return seen.size >= 2;
  }, { timeoutMs: CHILD_MS, what: 'both workers to answer' });
  return seen;
}

test('listen reuseport with worker_processes 2: a socket per worker (Node\'s reusePort, or the addon\'s where Node has none), nginx\'s warning where neither; a burst of connections lands on both', async (t) => {
  const dir = tempDir(t);
  const port = await unusedPort();
  const conf = dir.write('sluice.conf', config(port, 'location / { return 200 "$pid"; }'));

  const checked = await runCli(['-t', '-c', conf], dir.path);
  assert.equal(checked.code, 0, checked.stderr);
  assert.equal(WARNING.test(checked.stderr), !reusePortAvailable(), checked.stderr);

  const proxy = new CliProcess(t, ['-c', conf], dir.path);
  assert.equal(await proxy.port(), port);
  // Two sockets in the kernel's table with SO_REUSEPORT; the primary's one shared socket without.
  assert.equal(listeningSockets(port), reusePortAvailable() ? 2 : 1);
  if (reusePortAvailable()) {
    // 100 connections opened at once and kept (tunnels after a reconnect storm): the kernel
    // hashes each onto a socket, so neither worker gets fewer than a quarter (binomially, less
    // than a chance in a million). On one shared socket the worker that wakes first can take all.
    const owners = await burst(t, port, 100);
    for (const [pid, n] of owners) assert.ok(n >= 25, `worker ${pid} took ${n} of 100: ${JSON.stringify([...owners])}`);
    assert.equal(owners.size, 2, JSON.stringify([...owners]));
  }

  // The kernel hashes each connection's addresses onto a socket: new connections (new source
  // ports) reach both workers, never the primary.
  const seen = await bothWorkers(port);
  assert.ok(!seen.has(String(proxy.pid)));
  assert.equal(seen.size, 2);
  // Each worker accepts for itself: it holds a listening socket of the port, and its addon
  // accepts on it (the relay's thread, as in one process).
  assertWorkersAccept(seen, proxy.pid, port);
  assert.deepEqual(await proxy.stop('SIGTERM'), { code: 0, signal: null });
});

test('by default (accept_mutex off, as in nginx) every worker accepts for itself in its addon on the one shared socket, as nginx\'s workers do', async (t) => {
  const dir = tempDir(t);
  const port = await unusedPort();
  const conf = dir.write('sluice.conf', config(port, 'location / { return 200 "$pid"; }').replace(' reuseport;', ';'));
  const proxy = new CliProcess(t, ['-c', conf], dir.path);
  assert.equal(await proxy.port(), port);
  assert.equal(listeningSockets(port), 1, 'one socket, the primary\'s');
  const seen = await bothWorkers(port);
  assert.ok(!seen.has(String(proxy.pid)));
  assertWorkersAccept(seen, proxy.pid, port);
  assert.deepEqual(await proxy.stop('SIGTERM'), { code: 0, signal: null });
});

test('accept_mutex off: bursts of long-lived connections, requests and WebSocket tunnels, spread evenly over the workers accepting on one shared socket (their shared load table)', async (t) => {
  const dir = tempDir(t);
  const port = await unusedPort();
  // The backend's 101 says which worker proxied it: the proxy sends its $pid along.
  const backend = await startHttpBackend(undefined, {
    onUpgrade: (req, socket) => socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptKey(req.headers['sec-websocket-key'] as string)}\r\nX-Worker: ${req.headers['x-pid'] as string}\r\n\r\n`),
  });
  t.after(() => backend.close());
  const body = `location / { return 200 "$pid"; }
    location /ws { proxy_pass http://${backend.addr}; proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection "upgrade"; proxy_set_header X-Pid $pid; }`;
  const conf = dir.write('sluice.conf', config(port, body, 'accept_mutex off;').replace(' reuseport;', ';'));
  const proxy = new CliProcess(t, ['-c', conf], dir.path);
  assert.equal(await proxy.port(), port);
  const workers = await bothWorkers(port);
  assertWorkersAccept(workers, proxy.pid, port);
  // Bursts opened at once and kept, as clients reconnecting after a deploy: the worker whose
  // thread wakes first would take most of each (before the table, 199 of 200 at times). A worker
  // steps back once it holds an eighth more than the other, so after every burst each holds no
  // less than 40 % of all the connections held (at most an eighth over the other: 47 %).
  const held = new Map<string, number>();
  const add = (pid: string): void => void held.set(pid, (held.get(pid) ?? 0) + 1);
  const even = (what: string): void => {
    const all = [...held.values()].reduce((a, b) => a + b, 0);
    assert.deepEqual(new Set(held.keys()), workers, `${what}: ${JSON.stringify([...held])}`);
    for (const [pid, n] of held) assert.ok(n >= all * 0.4, `${what}: worker ${pid} holds ${n} of ${all}: ${JSON.stringify([...held])}`);
  };
  const tunnels: Socket[] = [];
  t.after(() => { for (const s of tunnels) s.destroy(); });
  for (let round = 1; round <= 3; round++) {
    for (const [pid, n] of await burst(t, port, 200)) for (let i = 0; i < n; i++) add(pid);
    even(`200 requests, round ${round}`);
    // Tunnels (the addon's relay holds them) count as well.
    const owners = await Promise.all(Array.from({ length: 100 }, async (_, i) => {
      const ws = await rawWebSocket(port, { path: `/ws/${round}/${i}`, timeoutMs: CHILD_MS });
      tunnels.push(ws.socket);
      assert.equal(ws.head.statusCode, 101);
      return headerValue(ws.head, 'x-worker') as string;
    }));
    owners.forEach(add);
    even(`100 tunnels, round ${round}`);
  }
  assert.deepEqual(await proxy.stop('SIGTERM'), { code: 0, signal: null });
});

/**
 * Two workers accepting on one shared socket (`accept_mutex off`) after a burst of 200 kept
 * connections, when one worker's clients all left: `idle` holds none of them, `busy` holds `kept`.
 */
async function oneWorkerEmptied(t: TestContext): Promise<{ proxy: CliProcess; port: number; idle: string; busy: string; gone: number; kept: number }> {
  const dir = tempDir(t);
  const port = await unusedPort();
  const conf = dir.write('sluice.conf', config(port, 'location = /stub { stub_status; } location / { return 200 "$pid"; }').replace(' reuseport;', ';'));
  const proxy = new CliProcess(t, ['-c', conf], dir.path);
  assert.equal(await proxy.port(), port);
  // Both workers accept (on a busy machine the second may start listening well after the first).
  await bothWorkers(port);
  const first = await burstSockets(t, port, 200);
  assert.equal(first.size, 2, JSON.stringify([...first].map(([pid, s]) => [pid, s.length])));
  // One worker's clients leave: its load falls (published when they close), the other's stays.
  const [[idle, gone], [busy, kept]] = [...first] as [[string, Socket[]], [string, Socket[]]];
  await Promise.all(gone.map((s) => new Promise<void>((resolve) => {
    s.once('close', () => resolve());
    s.destroy();
  })));
  // Until the workers have seen them close (stub_status sums the workers: the kept ones, and the
  // request asking).
  await waitFor(async () => {
    const m = /Active connections: (\d+)/.exec((await httpGet(port, '/stub')).body);
    return m !== null && Number(m[1]) <= kept.length + 1;
  }, { timeoutMs: CHILD_MS, what: `stub_status to count ${kept.length} + 1 active connections` });
  return { proxy, port, idle, busy, gone: gone.length, kept: kept.length };
}

test('accept_mutex off: a worker whose connections closed takes the next burst, until the loads are even again', async (t) => {
  const { proxy, port, idle, busy, gone, kept } = await oneWorkerEmptied(t);
  const next = await burst(t, port, 100);
  // The busy worker holds about 100 and steps back: the other takes the burst, all of it or
  // nearly (it may take a few beyond the busy one's count minus the slack only at the end).
  assert.ok((next.get(idle) ?? 0) >= 85, `after ${gone} of ${idle}'s connections closed (${busy} kept ${kept}), the next 100 went ${JSON.stringify([...next])}`);
  assert.deepEqual(await proxy.stop('SIGTERM'), { code: 0, signal: null });
});

test('accept_mutex off: a stopped worker\'s share is taken by the other after a wait; once it runs again, it takes the next burst (the other steps back again)', async (t) => {
  const { proxy, port, idle, busy, kept } = await oneWorkerEmptied(t);
  // The idle worker stops (as a starved one would): the busy one, over its share, waits for it,
  // then takes the burst itself (the other accepted nothing meanwhile); no client is left waiting.
  process.kill(Number(idle), 'SIGSTOP');
  let stopped = true;
  t.after(() => { if (stopped) process.kill(Number(idle), 'SIGCONT'); });
  // Each thread stops when it next runs: until then its I/O thread could still accept.
  await waitFor(() => allThreadsStopped(idle), { timeoutMs: CHILD_MS, what: `every thread of ${idle} to stop` });
  const meanwhile = await burst(t, port, 20);
  assert.deepEqual([...meanwhile], [[busy, 20]], `with ${idle} stopped`);
  process.kill(Number(idle), 'SIGCONT');
  stopped = false;
  // Until it accepts again (the busy one takes what comes before: the other still accepts nothing).
  await waitFor(async () => (await httpGet(port, '/')).body === idle, { timeoutMs: CHILD_MS, what: `${idle} to answer again` });
  // Running again, it holds nothing and the busy worker about 120: the busy one steps back for
  // the whole burst, from its first connection.
  const next = await burst(t, port, 100);
  assert.ok((next.get(idle) ?? 0) >= 85, `after ${idle} ran again (${busy} holds ${kept + 20}), the next 100 went ${JSON.stringify([...next])}`);
  assert.deepEqual(await proxy.stop('SIGTERM'), { code: 0, signal: null });
});

test('accept_mutex on: the primary accepts every connection and hands it to a worker in turn, no worker holds the listening socket; a reload that turns it off says it waits for the next start', async (t) => {
  const dir = tempDir(t);
  const port = await unusedPort();
  const text = (events: string): string => config(port, 'location / { return 200 "$pid"; }', events).replace(' reuseport;', ';');
  const conf = dir.write('sluice.conf', text('accept_mutex on;'));
  const proxy = new CliProcess(t, ['-c', conf], dir.path);
  assert.equal(await proxy.port(), port);
  const turns: string[] = [];
  for (let i = 0; i < 4; i++) turns.push((await httpGet(port, '/')).body);
  assert.equal(new Set(turns).size, 2, `round robin alternates: ${turns.join(' ')}`);
  assert.notEqual(turns[0], turns[1], `in turn: ${turns.join(' ')}`);
  const seen = new Set(turns);
  for (const pid of seen) assert.equal(holdsListeningSocket(pid, port), false, `worker ${pid}`);
  assert.equal(holdsListeningSocket(String(proxy.pid), port), true, 'the primary');

  // Node fixes cluster's scheduling policy at the first fork: the reload applies the rest and
  // says that this waits for the next start.
  dir.write('sluice.conf', text('accept_mutex off;'));
  proxy.child.kill('SIGHUP');
  await proxy.output('stderr', /\[warn\] \d+#0: "accept_mutex" off takes effect at the next start: the worker processes take connections in turn until then$/m);
  for (const pid of seen) assert.equal(holdsListeningSocket(pid, port), false, `worker ${pid} after the reload`);
  assert.deepEqual(await proxy.stop('SIGTERM'), { code: 0, signal: null });
});

test('listen reuseport: a reload under traffic and a graceful quit with a request in flight lose nothing', async (t) => {
  const dir = tempDir(t);
  const port = await unusedPort();
  let release: (() => void) | null = null;
  const backend = await startHttpBackend((req, res) => {
    if (req.url === '/slow') release = () => res.end('slow done');
    else res.end('fast');
  });
  t.after(() => backend.close());
  const body = (v: string): string => `location = /v { return 200 "${v}"; } location / { proxy_pass http://127.0.0.1:${backend.port}; }`;
  const conf = dir.write('sluice.conf', config(port, body('v1')));
  const proxy = new CliProcess(t, ['-c', conf], dir.path);
  await proxy.port();

  // New connections one after another while the workers apply a new config: every one answered.
  dir.write('sluice.conf', config(port, body('v2')));
  proxy.child.kill('SIGHUP');
  const answers: string[] = [];
  await waitFor(async () => {
    const res = await httpGet(port, '/v').catch((e: unknown) => ({ status: 0, body: (e as Error).message }));
    answers.push(`${res.status} ${res.body}`);
    return answers.filter((a) => a === '200 v2').length >= 6;
  }, { timeoutMs: CHILD_MS, what: 'both workers to answer with the new config' });
  assert.ok(answers.every((a) => a === '200 v1' || a === '200 v2'), answers.join(' | '));

  // SIGQUIT with a request waiting for its upstream: it completes, then the proxy exits 0.
  const slow = httpGet(port, '/slow');
  await waitFor(() => release !== null, { timeoutMs: CHILD_MS, what: 'the slow request to reach the backend' });
  proxy.child.kill('SIGQUIT');
  // Both workers stop accepting and wait for what they serve (nginx's notices).
  await waitFor(() => [...proxy.stderr.matchAll(/#0: gracefully shutting down$/gm)].length === 2, { timeoutMs: CHILD_MS, what: 'both workers to shut down gracefully' });
  assert.equal(proxy.done, false, 'the request in flight holds the exit');
  (release as unknown as () => void)();
  assert.deepEqual(await slow, { status: 200, body: 'slow done' });
  assert.deepEqual(await proxy.wait(), { code: 0, signal: null });
  assert.equal(WARNING.test(proxy.stderr), !reusePortAvailable(), proxy.stderr);
});

test('listen reuseport: WebSocket tunnels through workers that accept in their addon; a reload that drops the address closes it in every process, tunnels stay', async (t) => {
  const dir = tempDir(t);
  const port = await unusedPort();
  const backend = await startHttpBackend(undefined, { id: 'echo' });
  t.after(() => backend.close());
  const at = (p: number): string => config(p, `location / { proxy_pass http://${backend.addr}; }`);
  const conf = dir.write('sluice.conf', at(port));
  const proxy = new CliProcess(t, ['-c', conf], dir.path);
  await proxy.port();
  const tunnels: Socket[] = [];
  for (let i = 0; i < 6; i++) {
    const { socket, head } = await rawWebSocket(port, { path: `/ws${i}`, timeoutMs: CHILD_MS });
    t.after(() => socket.destroy());
    assert.equal(head.statusCode, 101);
    tunnels.push(socket);
  }
  const echoes = async (): Promise<void> => {
    for (const [i, socket] of tunnels.entries()) {
      socket.write(maskedFrame(Opcode.TEXT, `hello ${i}`));
      assert.equal((await readFrame(socket, CHILD_MS)).payload.toString(), `hello ${i}`);
    }
  };
  await echoes();

  // The address goes: once every worker has let go of it, nobody listens there (the primary
  // closes its shared socket when no worker holds it; a worker's own socket closes with it).
  const next = await reloadOnto(proxy, (p) => dir.write('sluice.conf', at(p)));
  await waitFor(() => rawConnect(port).then((s) => {
    s.destroy();
    return false;
  }, (e: NodeJS.ErrnoException) => e.code === 'ECONNREFUSED'), { timeoutMs: CHILD_MS, what: `connections to :${port} refused` });
  assert.equal(listeningSockets(port), 0);
  await echoes();
  const after = await rawWebSocket(next, { path: '/after', timeoutMs: CHILD_MS });
  t.after(() => after.socket.destroy());
  assert.equal(after.head.statusCode, 101);
});

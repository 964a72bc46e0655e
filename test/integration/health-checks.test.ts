/**
 * Active health checks end to end (issue 3): `health_check` type=http (fails / passes, `match`
 * status, header and body tests, `port=`), type=websocket (a real handshake, closed cleanly) and
 * type=tcp, each taking a server out and back in while traffic flows, with no client ever sent to
 * a server already marked down; the warn line in the error log and the `sluice:upstream:health`
 * event for each change; slow_start ramping a server that came back.
 */
import assert from 'node:assert/strict';
import { createServer, type AddressInfo } from 'node:net';
import { test } from 'node:test';
import { acceptEchoUpgrade } from '../../src/echo/echo-websocket.js';
import { acceptKey } from '../../src/websocket/accept-key.js';
import { FrameParser } from '../../src/websocket/frame-parser.js';
import { serverHandshakeResponse } from '../../src/websocket/handshake.js';
import { startHttpBackend, type HttpBackend } from '../helpers/backends.js';
import { conf } from '../helpers/config-text.js';
import { startTestProxy } from '../helpers/proxy.js';
import type { AfterHook } from '../helpers/temp.js';
import { escapeRegExp } from '../helpers/text.js';
import { delay, waitFor, withTimeout } from '../helpers/wait.js';
import { WAIT_MS, get, openWs, record, startHealthBackend, tally, type HealthEvent, type PickEvent } from './balancing-support.js';

const T = { timeout: 60_000 };
const WARN_LOG = 'error_log stderr warn;';

/** One request of a traffic loop, with the phase the test was in when it was sent. */
interface Sample { phase: string; status: number; id: string }

interface Traffic {
  readonly samples: Sample[];
  /** Runs `change` between two requests (none in flight), so every sample is on one side of it. */
  between(change: () => void): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Sends requests one after another (`send`) until stopped, recording each answer with the phase
 * read just before sending. Every wait is bounded; `stop()` also runs at the end of the test.
 */
function runTraffic(t: AfterHook, send: () => Promise<{ status: number; id: string }>, phase: () => string): Traffic {
  const samples: Sample[] = [];
  const changes: (() => void)[] = [];
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      for (const change of changes.splice(0)) change();
      const p = phase();
      const r = await send();
      samples.push({ phase: p, status: r.status, id: r.id });
      await delay(3);
    }
    for (const change of changes.splice(0)) change();
  })();
  loop.catch(() => undefined);
  let stopping: Promise<void> | null = null;
  const stop = (): Promise<void> => {
    stopped = true;
    stopping ??= withTimeout(loop, WAIT_MS, 'the traffic loop to stop');
    return stopping;
  };
  t.after(stop);
  return {
    samples,
    between: (change) => withTimeout(new Promise<void>((resolve) => changes.push(() => {
      change();
      resolve();
    })), WAIT_MS, 'a gap between two requests'),
    stop,
  };
}

/** Which server each pick of `upstream` chose (by backend id), with the test's phase at that moment. */
function picksByPhase(t: AfterHook, upstream: string, backends: readonly HttpBackend[], phase: () => string): [string, string][] {
  const picks: [string, string][] = [];
  record<PickEvent>(t, 'sluice:upstream:pick', upstream, (e) => {
    picks.push([phase(), backends.find((b) => b.addr === e.server)?.id ?? e.server]);
  });
  return picks;
}

/** The distinct servers picked in `phase`. */
function pickedIn(picks: readonly [string, string][], ...phases: string[]): string[] {
  return [...new Set(picks.filter(([p]) => phases.includes(p)).map(([, id]) => id))].sort();
}

function inPhase(samples: readonly Sample[], phase: string): Sample[] {
  return samples.filter((s) => s.phase === phase);
}

test('type=http: a server failing its probes is out after `fails`, back after `passes`; no client is sent to it while out', T, async (t) => {
  const a = await startHealthBackend(t, 'a');
  const b = await startHealthBackend(t, 'b');
  let phase = 'healthy';
  let flip = 0;
  const probesAtEvent: number[][] = [];
  const events = record<HealthEvent>(t, 'sluice:upstream:health', 'hc_http', (e) => {
    probesAtEvent.push(b.probes.slice(flip));
    phase = e.healthy ? 'up' : 'down';
  });
  const proxy = await startTestProxy(conf(`
    upstream hc_http { server ${a.addr}; server ${b.addr}; }
    server {
      listen 127.0.0.1:0;
      location / {
        proxy_pass http://hc_http;
        health_check interval=100ms fails=2 passes=3 uri=/health/ready;
      }
    }`, WARN_LOG), { t });
  await waitFor(() => a.probes.length > 0 && b.probes.length > 0, { timeoutMs: WAIT_MS, what: 'the first probes' });
  const probe = b.requests.find((r) => r.url === '/health/ready')!;
  assert.deepEqual([probe.method, probe.headers['host'], probe.headers['user-agent']], ['GET', 'hc_http', 'sluice-health-check']);

  const picks = picksByPhase(t, 'hc_http', [a, b], () => phase);
  const traffic = runTraffic(t, () => get(proxy.port, '/app'), () => phase);
  await waitFor(() => traffic.samples.length >= 10, { timeoutMs: WAIT_MS, what: 'traffic' });

  // B falls sick, its application and its health endpoint alike.
  await traffic.between(() => {
    flip = b.probes.length;
    b.failing = true;
    b.health = { status: 500 };
    phase = 'sick';
  });
  await waitFor(() => events.length === 1, { timeoutMs: WAIT_MS, what: 'B to be marked unhealthy' });
  assert.deepEqual(probesAtEvent[0], [500, 500], 'out after exactly fails=2 failed probes');
  await waitFor(() => inPhase(traffic.samples, 'down').length >= 20, { timeoutMs: WAIT_MS, what: 'traffic while B is out' });

  // B recovers; it stays out until passes=3 probes have succeeded.
  await traffic.between(() => {
    flip = b.probes.length;
    b.failing = false;
    b.health = { status: 200 };
    phase = 'recovering';
  });
  await waitFor(() => events.length === 2, { timeoutMs: WAIT_MS, what: 'B to be marked healthy' });
  assert.deepEqual(probesAtEvent[1], [200, 200, 200], 'back after exactly passes=3 good probes');
  await waitFor(() => pickedIn(picks, 'up').includes('b'), { timeoutMs: WAIT_MS, what: 'traffic to reach B again' });
  await traffic.stop();

  assert.deepEqual(events, [
    { upstream: 'hc_http', server: b.addr, healthy: false, reason: 'status 500' },
    { upstream: 'hc_http', server: b.addr, healthy: true, reason: 'passed' },
  ]);
  // From the moment B was marked down until it was marked up, nothing was sent to it.
  assert.deepEqual(pickedIn(picks, 'down', 'recovering'), ['a']);
  assert.deepEqual(pickedIn(picks, 'healthy'), ['a', 'b']);
  // Before the mark, B's own 500s reach clients; once it is marked, no client sees an error.
  const answers = (...phases: string[]): string[] =>
    [...new Set(traffic.samples.filter((x) => phases.includes(x.phase)).map((x) => `${x.status} ${x.id}`))].sort();
  assert.deepEqual(answers('healthy'), ['200 a', '200 b']);
  for (const answer of answers('sick')) assert.ok(['200 a', '500 b'].includes(answer), answer);
  assert.deepEqual(answers('down', 'recovering', 'up').filter((x) => !x.startsWith('200 ')), []);

  const what = `health check "http /health/ready" of peer ${b.addr} in upstream "hc_http"`;
  await proxy.waitForErrorLine(new RegExp(`\\[warn\\] \\d+#0: peer is unhealthy \\(status 500\\), ${escapeRegExp(what)}$`));
  await proxy.waitForErrorLine(new RegExp(`\\[warn\\] \\d+#0: peer is healthy, ${escapeRegExp(what)}$`));
  assert.equal(proxy.errorLines.filter((l) => l.includes('[warn]')).length, 2, proxy.errorLines.join('\n'));
});

test('type=http with match: every status, header and body test must pass, negated ones included', T, async (t) => {
  const answers = {
    ok: { status: 200, headers: { 'X-Health': 'good' }, body: 'ready=yes' },
    status: { status: 503, headers: { 'X-Health': 'good' }, body: 'ready=yes' },
    header: { status: 200, headers: { 'X-Health': 'bad' }, body: 'ready=yes' },
    body: { status: 200, headers: { 'X-Health': 'good' }, body: 'ready=no' },
    fine: { status: 204, body: '' },
    five: { status: 500, body: 'ok' },
    maint: { status: 200, headers: { 'X-Maintenance': 'on' }, body: 'ok' },
    err: { status: 200, body: 'error: database down' },
  } as const;
  const s: Record<string, Awaited<ReturnType<typeof startHealthBackend>>> = {};
  for (const [id, answer] of Object.entries(answers)) {
    s[id] = await startHealthBackend(t, id);
    s[id]!.health = { ...answer };
  }
  const positive = record<HealthEvent>(t, 'sluice:upstream:health', 'hc_match');
  const negative = record<HealthEvent>(t, 'sluice:upstream:health', 'hc_not');
  const proxy = await startTestProxy(conf(`
    match app_ok {
      status 200-299;
      header X-Health = good;
      body ~ "ready=yes";
    }
    match not_broken {
      status ! 500-599;
      header ! X-Maintenance;
      body !~ "error";
    }
    upstream hc_match { server ${s['ok']!.addr}; server ${s['status']!.addr}; server ${s['header']!.addr}; server ${s['body']!.addr}; }
    upstream hc_not { server ${s['fine']!.addr}; server ${s['five']!.addr}; server ${s['maint']!.addr}; server ${s['err']!.addr}; }
    server {
      listen 127.0.0.1:0;
      location /pos/ { proxy_pass http://hc_match; health_check interval=100ms fails=2 uri=/health match=app_ok; }
      location /neg/ { proxy_pass http://hc_not; health_check interval=100ms fails=2 uri=/health match=not_broken; }
    }`, WARN_LOG), { t });
  await waitFor(() => positive.length === 3 && negative.length === 3, { timeoutMs: WAIT_MS, what: 'three servers of each upstream to fail' });
  const byServer = (events: HealthEvent[]): [string, boolean, string][] =>
    events.map((e): [string, boolean, string] => [Object.keys(s).find((id) => s[id]!.addr === e.server)!, e.healthy, e.reason]).sort();
  assert.deepEqual(byServer(positive), [
    ['body', false, 'body does not match ready=yes'],
    ['header', false, 'header X-Health: bad'],
    ['status', false, 'status 503'],
  ]);
  assert.deepEqual(byServer(negative), [
    ['err', false, 'body matches error'],
    ['five', false, 'status 500'],
    ['maint', false, 'header X-Maintenance present'],
  ]);
  const ids = async (path: string, n: number): Promise<string[]> => {
    const out: string[] = [];
    for (let i = 0; i < n; i++) {
      const r = await get(proxy.port, path);
      assert.equal(r.status, 200);
      out.push(r.id);
    }
    return out;
  };
  assert.deepEqual(await ids('/pos/', 4), ['ok', 'ok', 'ok', 'ok']);
  assert.deepEqual(await ids('/neg/', 4), ['fine', 'fine', 'fine', 'fine']);

  // The body comes right: that server passes again (passes=1) and shares the traffic.
  s['body']!.health = { ...answers.ok };
  await waitFor(() => positive.length === 4, { timeoutMs: WAIT_MS, what: 'the fixed server to pass' });
  assert.deepEqual(byServer([positive[3]!]), [['body', true, 'passed']]);
  assert.deepEqual((await ids('/pos/', 4)).sort(), ['body', 'body', 'ok', 'ok']);
  await proxy.waitForErrorLine(`peer is unhealthy (header X-Health: bad), health check "http /health" of peer ${s['header']!.addr} in upstream "hc_match"`);
});

/** A backend for type=websocket checks: `mode` decides how every upgrade is answered. */
interface WsHealthBackend extends HttpBackend {
  mode: 'ok' | 'bad-accept' | 'refuse';
  /** What each probe sent after the 101, up to its FIN (ok mode). */
  readonly probeTails: { bytes: Buffer; ended: boolean }[];
}

async function startWsHealthBackend(t: AfterHook, id: string): Promise<WsHealthBackend> {
  const self = { mode: 'ok' as WsHealthBackend['mode'] };
  const probeTails: WsHealthBackend['probeTails'] = [];
  const backend = await startHttpBackend(undefined, {
    id,
    onUpgrade(req, socket, head) {
      socket.on('error', () => undefined);
      if (self.mode === 'refuse') {
        socket.end(`HTTP/1.1 503 Service Unavailable\r\nX-Echo-Id: ${id}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
      } else if (self.mode === 'bad-accept') {
        socket.end(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptKey('not the key')}\r\nX-Echo-Id: ${id}\r\n\r\n`);
      } else if (req.url === '/ws-health') {
        const tail = { bytes: Buffer.from(head), ended: false };
        socket.on('data', (chunk: Buffer) => void (tail.bytes = Buffer.concat([tail.bytes, chunk])));
        socket.on('end', () => {
          tail.ended = true;
          probeTails.push(tail);
          socket.end();
        });
        socket.write(serverHandshakeResponse(req.headers['sec-websocket-key'] as string));
      } else {
        acceptEchoUpgrade(req, socket, head, { id });
      }
    },
  });
  t.after(() => backend.close());
  return Object.defineProperties(backend as WsHealthBackend, {
    mode: { get: () => self.mode, set: (m: WsHealthBackend['mode']) => void (self.mode = m) },
    probeTails: { value: probeTails },
  });
}

test('type=websocket: a server whose handshake breaks is out (bad accept, refusal), back once it shakes hands again', T, async (t) => {
  const a = await startWsHealthBackend(t, 'a');
  const b = await startWsHealthBackend(t, 'b');
  let phase = 'healthy';
  const events = record<HealthEvent>(t, 'sluice:upstream:health', 'hc_ws', (e) => {
    phase = e.healthy ? 'up' : 'down';
  });
  // A client meeting B's broken 101 before the mark is also a passive failure, which would keep B
  // out for fail_timeout after it is healthy again; max_fails=0 keeps this test about the check.
  const proxy = await startTestProxy(conf(`
    upstream hc_ws { server ${a.addr}; server ${b.addr} max_fails=0; }
    server {
      listen 127.0.0.1:0;
      location / {
        proxy_pass http://hc_ws;
        health_check type=websocket uri=/ws-health interval=100ms fails=2 passes=2;
      }
    }`, WARN_LOG), { t });

  // A probe is a real handshake, ended with a masked close 1000 and a FIN.
  await waitFor(() => a.probeTails.length > 0, { timeoutMs: WAIT_MS, what: 'a finished probe' });
  const probe = a.requests.find((r) => r.url === '/ws-health')!;
  assert.deepEqual([probe.method, probe.upgrade, probe.headers['upgrade'], probe.headers['sec-websocket-version'], probe.headers['host']],
    ['GET', true, 'websocket', '13', 'hc_ws']);
  const [close, ...more] = new FrameParser().feed(a.probeTails[0]!.bytes);
  assert.equal(more.length, 0);
  assert.ok(close !== undefined && close.kind === 'frame');
  assert.deepEqual([close.opcode, close.masked, close.payload.length, close.payload.readUInt16BE(0)], [8, true, 2, 1000]);

  const picks = picksByPhase(t, 'hc_ws', [a, b], () => phase);
  const traffic = runTraffic(t, async () => {
    const ws = await openWs(t, proxy.port, { path: '/chat' });
    ws.socket.destroy();
    return { status: ws.status, id: ws.id };
  }, () => phase);
  await waitFor(() => traffic.samples.length >= 6, { timeoutMs: WAIT_MS, what: 'traffic' });

  await traffic.between(() => {
    b.mode = 'bad-accept';
    phase = 'sick';
  });
  await waitFor(() => events.length === 1, { timeoutMs: WAIT_MS, what: 'B to be marked unhealthy' });
  assert.deepEqual(events[0], { upstream: 'hc_ws', server: b.addr, healthy: false, reason: 'missing or wrong Sec-WebSocket-Accept' });
  // Refusing the upgrade outright keeps it out.
  await traffic.between(() => {
    b.mode = 'refuse';
    phase = 'refusing';
  });
  await waitFor(() => inPhase(traffic.samples, 'refusing').length >= 10 && b.requests.filter((r) => r.url === '/ws-health').length >= 3,
    { timeoutMs: WAIT_MS, what: 'traffic while B refuses' });
  await traffic.between(() => {
    b.mode = 'ok';
    phase = 'recovering';
  });
  await waitFor(() => events.length === 2, { timeoutMs: WAIT_MS, what: 'B to be marked healthy' });
  await waitFor(() => pickedIn(picks, 'up').includes('b'), { timeoutMs: WAIT_MS, what: 'traffic to reach B again' });
  await traffic.stop();

  assert.deepEqual(events[1], { upstream: 'hc_ws', server: b.addr, healthy: true, reason: 'passed' });
  assert.deepEqual(pickedIn(picks, 'down', 'refusing', 'recovering'), ['a']);
  assert.deepEqual(pickedIn(picks, 'healthy'), ['a', 'b']);
  const answers = (...phases: string[]): string[] =>
    [...new Set(traffic.samples.filter((x) => phases.includes(x.phase)).map((x) => `${x.status} ${x.id}`))].sort();
  assert.deepEqual(answers('healthy'), ['101 a', '101 b']);
  // Before the mark a client can meet B's broken 101 (the proxy turns it into a 502)...
  for (const answer of answers('sick')) assert.ok(['101 a', '502 -'].includes(answer), answer);
  // ...once marked, never.
  assert.deepEqual(answers('down', 'refusing', 'recovering', 'up').filter((x) => !x.startsWith('101 ')), []);
  await proxy.waitForErrorLine(`peer is unhealthy (missing or wrong Sec-WebSocket-Accept), health check "websocket /ws-health" of peer ${b.addr} in upstream "hc_ws"`);
  await proxy.waitForErrorLine(`peer is healthy, health check "websocket /ws-health" of peer ${b.addr} in upstream "hc_ws"`);
});

test('type=tcp: a closed port is taken out at the first probe; traffic flows to the rest without an error or a retry', T, async (t) => {
  const a = await startHealthBackend(t, 'a');
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const dead = (probe.address() as AddressInfo).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  const events = record<HealthEvent>(t, 'sluice:upstream:health', 'hc_tcp');
  const proxy = await startTestProxy(conf(`
    upstream hc_tcp { server ${a.addr}; server 127.0.0.1:${dead}; }
    server {
      listen 127.0.0.1:0;
      location / { proxy_pass http://hc_tcp; health_check type=tcp interval=100ms; }
    }`, WARN_LOG), { t });
  await waitFor(() => events.length === 1, { timeoutMs: WAIT_MS, what: 'the closed port to be marked unhealthy' });
  assert.deepEqual(events, [{ upstream: 'hc_tcp', server: `127.0.0.1:${dead}`, healthy: false, reason: 'connect failed (ECONNREFUSED)' }]);
  await proxy.waitForErrorLine(`[warn]`);
  const warn = proxy.errorLines.filter((l) => l.includes('[warn]'));
  assert.equal(warn.length, 1);
  assert.match(warn[0]!, new RegExp(`peer is unhealthy \\(connect failed \\(ECONNREFUSED\\)\\), health check "tcp" of peer 127\\.0\\.0\\.1:${dead} in upstream "hc_tcp"$`));

  const connectFailures = (): number => proxy.errorLines.filter((l) => l.includes(`connect() failed`)).length;
  const before = connectFailures();
  const ids: string[] = [];
  for (let i = 0; i < 20; i++) {
    const r = await get(proxy.port, '/');
    assert.equal(r.status, 200);
    ids.push(r.id);
  }
  assert.deepEqual(tally(ids), { a: 20 });
  assert.equal(connectFailures(), before, 'no request tried the closed port');
  // A's probes are bare connections: nothing reached its HTTP server but the 20 requests.
  assert.equal(a.requests.length, 20);
});

test('health_check port= on an implicit upstream: the probe goes to that port; the only server unhealthy gives 502', T, async (t) => {
  const app = await startHealthBackend(t, 'app');
  const status = await startHealthBackend(t, 'status-port');
  // proxy_pass to an address makes an implicit upstream named after it.
  const events = record<HealthEvent>(t, 'sluice:upstream:health', app.addr);
  const proxy = await startTestProxy(conf(`
    server {
      listen 127.0.0.1:0;
      location / { proxy_pass http://${app.addr}; health_check interval=100ms port=${status.port} uri=/health; }
    }`, WARN_LOG), { t });
  await waitFor(() => status.probes.length > 0, { timeoutMs: WAIT_MS, what: 'a probe on the status port' });
  assert.equal(app.probes.length, 0, 'the server\'s own port is not probed');
  assert.equal(status.requests[0]!.headers['host'], app.addr, 'Host is $proxy_host');
  assert.deepEqual([(await get(proxy.port, '/')).status, (await get(proxy.port, '/')).id], [200, 'app']);

  status.health = { status: 503 };
  await waitFor(() => events.length === 1, { timeoutMs: WAIT_MS, what: 'the server to be marked unhealthy' });
  assert.deepEqual(events[0], { upstream: app.addr, server: app.addr, healthy: false, reason: 'status 503' });
  const served = app.served();
  for (let i = 0; i < 3; i++) assert.equal((await get(proxy.port, '/')).status, 502);
  assert.equal((await openWs(t, proxy.port)).status, 502);
  assert.equal(app.served(), served);
  await proxy.waitForErrorLine(/\[error\] .*no live upstreams while connecting to upstream/);

  status.health = { status: 200 };
  await waitFor(() => events.length === 2, { timeoutMs: WAIT_MS, what: 'the server to be marked healthy' });
  assert.deepEqual([(await get(proxy.port, '/')).status, (await openWs(t, proxy.port)).status], [200, 101]);
});

test('health state across reloads: a server marked down stays down, old checks stop, and without checks it serves again', T, async (t) => {
  const a = await startHealthBackend(t, 'a');
  const b = await startHealthBackend(t, 'b');
  const events = record<HealthEvent>(t, 'sluice:upstream:health', 'hc_reload');
  const config = (check: string): string => conf(`
    upstream hc_reload { server ${a.addr}; server ${b.addr}; }
    server { listen 127.0.0.1:0; location / { proxy_pass http://hc_reload; ${check} } }`, WARN_LOG);
  const proxy = await startTestProxy(config('health_check interval=100ms fails=2 passes=2 uri=/health;'), { t });
  const ids = async (n: number): Promise<string[]> => {
    const out: string[] = [];
    for (let i = 0; i < n; i++) out.push((await get(proxy.port, '/')).id);
    return out.sort();
  };
  b.health = { status: 500 };
  await waitFor(() => events.length === 1, { timeoutMs: WAIT_MS, what: 'B to be marked unhealthy' });

  // A reload (the check now probes /health/v2): B is still out, since live state survives it;
  // the old checker stops, and the new one brings B back after passes=2.
  await proxy.handle.reload({ text: config('health_check interval=100ms fails=2 passes=2 uri=/health/v2;') });
  assert.deepEqual(await ids(4), ['a', 'a', 'a', 'a']);
  const probesOf = (uri: string): number => a.requests.filter((r) => r.url === uri).length;
  await waitFor(() => probesOf('/health/v2') >= 2, { timeoutMs: WAIT_MS, what: 'the new checker' });
  const oldProbes = probesOf('/health');
  b.health = { status: 200 };
  await waitFor(() => events.length === 2, { timeoutMs: WAIT_MS, what: 'B to be marked healthy' });
  assert.deepEqual(await ids(4), ['a', 'a', 'b', 'b']);
  await waitFor(() => probesOf('/health/v2') >= 8, { timeoutMs: WAIT_MS, what: 'more probes' });
  assert.equal(probesOf('/health'), oldProbes, 'the old checker stopped at the reload');

  // Down again, then a reload that drops the health check: nothing can bring B back but the
  // config, so with no check left it is not held out.
  b.health = { status: 500 };
  await waitFor(() => events.length === 3, { timeoutMs: WAIT_MS, what: 'B to be marked unhealthy again' });
  assert.deepEqual(await ids(2), ['a', 'a']);
  await proxy.handle.reload({ text: config('') });
  assert.deepEqual(await ids(4), ['a', 'a', 'b', 'b']);
  assert.deepEqual(events.map((e) => [e.healthy, e.reason]), [[false, 'status 500'], [true, 'passed'], [false, 'status 500'], [true, 'no health check']]);
});

test('slow_start is accepted, and a server back from unhealthy starts at a low weight', T, async (t) => {
  const a = await startHealthBackend(t, 'a');
  const b = await startHealthBackend(t, 'b');
  const events = record<HealthEvent>(t, 'sluice:upstream:health', 'ramp');
  const proxy = await startTestProxy(conf(`
    upstream ramp { server ${a.addr} weight=10 slow_start=600s; server ${b.addr}; }
    server {
      listen 127.0.0.1:0;
      location / { proxy_pass http://ramp; health_check interval=100ms fails=2 uri=/health; }
    }`), { t });
  const picks = async (n: number): Promise<Record<string, number>> => {
    const ids: string[] = [];
    for (let i = 0; i < n; i++) ids.push((await get(proxy.port, '/')).id);
    return tally(ids);
  };
  // Two whole cycles of smooth weighted round robin at full weight.
  assert.deepEqual(await picks(22), { a: 20, b: 2 });

  a.health = { status: 500 };
  await waitFor(() => events.length === 1, { timeoutMs: WAIT_MS, what: 'A to be marked unhealthy' });
  assert.deepEqual(await picks(5), { b: 5 });
  a.health = { status: 200 };
  await waitFor(() => events.length === 2, { timeoutMs: WAIT_MS, what: 'A to be marked healthy' });
  // 600 s ramp: for its first minute A weighs 1, like B, instead of 10.
  assert.deepEqual(await picks(40), { a: 20, b: 20 });
});

/**
 * Status locations end to end: nginx's stub_status text byte for byte with real
 * Reading/Writing/Waiting figures, the Prometheus text (checked by a strict parser), the JSON
 * status, the dashboard's Server-Sent Events, and figures kept apart per proxy instance.
 */
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { test } from 'node:test';
import type { StatsSnapshot } from '../../src/observability/stats.js';
import { startHttpBackend } from '../helpers/backends.js';
import { parsePrometheus, sampleValue } from '../helpers/prometheus.js';
import { conf } from '../helpers/config-text.js';
import { refusedPort } from '../helpers/ports.js';
import { startTestProxy, type TestProxy } from '../helpers/proxy.js';
import { headerValue, maskedFrame, rawConnect, rawWebSocket, readUntil, sendRequest, waitForBytes, waitForClose, type Answer } from '../helpers/raw-client.js';
import { Opcode } from '../../src/websocket/opcodes.js';
import type { AfterHook } from '../helpers/temp.js';
import { waitFor } from '../helpers/wait.js';

async function get(proxy: TestProxy, path: string, method = 'GET', body?: string): Promise<Answer & { type: string }> {
  const r = await sendRequest(proxy.port, path, ['Host: localhost'], { method, ...(body === undefined ? {} : { body }) });
  return { ...r, type: headerValue(r.head, 'content-type') ?? '' };
}

function snapshot(proxy: TestProxy): StatsSnapshot {
  const stats = proxy.handle.stats;
  assert.ok(stats, 'the proxy has statistics');
  return stats.snapshot();
}

/** Sockets to destroy at the end of the test, whatever happens. */
function track(t: AfterHook): (s: Socket) => Socket {
  const all: Socket[] = [];
  t.after(() => { for (const s of all) s.destroy(); });
  return (s) => {
    all.push(s);
    return s;
  };
}

test('stub_status: nginx\'s exact text, and Reading / Writing / Waiting follow real connections', async (t) => {
  const backend = await startHttpBackend(undefined, { id: 'b' });
  t.after(() => backend.close());
  const proxy = await startTestProxy(conf(`
    server {
      listen 127.0.0.1:0;
      server_name status.test;
      location = /basic_status { stub_status; }
      location / { proxy_pass http://${backend.addr}; }
    }`), { t });
  const keep = track(t);

  const first = await get(proxy, '/basic_status');
  assert.equal(first.status, 200);
  assert.equal(first.type, 'text/plain');
  assert.equal(first.body, 'Active connections: 1 \nserver accepts handled requests\n 1 1 1 \nReading: 0 Writing: 1 Waiting: 0 \n');
  assert.equal(headerValue(first.head, 'server'), 'sluice');
  assert.equal(headerValue(first.head, 'content-length'), String(first.body.length));

  // A: connected, silent (waiting). B: half a request head (reading). C: an open tunnel (writing).
  // D: keep-alive after a finished request (waiting).
  const a = keep(await rawConnect(proxy.port));
  const b = keep(await rawConnect(proxy.port));
  b.write('GET / HTTP/1.1\r\nHost: status.test\r\n');
  const c = await rawWebSocket(proxy.port, { path: '/chat' });
  keep(c.socket);
  assert.equal(c.head.statusCode, 101);
  const d = keep(await rawConnect(proxy.port));
  d.write('GET /hello HTTP/1.1\r\nHost: status.test\r\n\r\n');
  await readUntil(d, (buf) => buf.includes('"id":"b"'));
  await waitFor(() => {
    const s = snapshot(proxy).connections;
    return s.active === 4 && s.reading === 1 && s.writing === 1 && s.waiting === 2;
  }, { what: 'A and D waiting, B reading, C writing' });

  const second = await get(proxy, '/basic_status');
  // accepts: the first status connection, A, B, C, D and this one; requests: two status
  // requests, the handshake and D's request (B's head is not complete yet).
  assert.equal(second.body, 'Active connections: 5 \nserver accepts handled requests\n 6 6 4 \nReading: 1 Writing: 2 Waiting: 2 \n');

  // Counts move: B completes its request, the tunnel closes, A goes away.
  b.write('\r\n');
  await readUntil(b, (buf) => buf.includes('"id":"b"'));
  c.socket.destroy();
  a.destroy();
  await waitFor(() => {
    const s = snapshot(proxy).connections;
    return s.active === 2 && s.waiting === 2 && s.writing === 0;
  }, { what: 'B and D idle, A and C gone' });
  const third = await get(proxy, '/basic_status');
  assert.equal(third.body, 'Active connections: 3 \nserver accepts handled requests\n 7 7 6 \nReading: 0 Writing: 1 Waiting: 2 \n');

  const head = await get(proxy, '/basic_status', 'HEAD');
  assert.equal(head.status, 200);
  assert.equal(head.body, '');
  const post = await get(proxy, '/basic_status', 'POST', '');
  assert.equal(post.status, 405);
  assert.match(post.body, /<title>405 Not Allowed<\/title>/);
});

test('stub_status at server level answers what no location takes; an Upgrade request to a status location gets the page', async (t) => {
  const proxy = await startTestProxy(conf(`
    server {
      listen 127.0.0.1:0;
      stub_status;
      location = /json { sluice_status; }
    }`), { t });
  const r = await get(proxy, '/anything');
  assert.equal(r.status, 200);
  assert.match(r.body, /^Active connections: 1 \nserver accepts handled requests\n 1 1 1 \nReading: 0 Writing: 1 Waiting: 0 \n$/);
  const ws = await rawWebSocket(proxy.port, { path: '/json' });
  t.after(() => ws.socket.destroy());
  assert.equal(ws.head.statusCode, 200);
  assert.equal(headerValue(ws.head, 'connection'), 'close');
  const body = await waitForBytes(ws.socket, (buf) => buf.length >= Number(headerValue(ws.head, 'content-length')));
  assert.equal((JSON.parse(body.toString()) as StatsSnapshot).schema, 1);
});

test('sluice_metrics: strict Prometheus text with requests, handshakes, tunnels, retries, health and reloads', async (t) => {
  const backend = await startHttpBackend(undefined, { id: 'm' });
  t.after(() => backend.close());
  const dead = await refusedPort();
  const text = (extra = ''): string => conf(`
    upstream app { server 127.0.0.1:${dead} max_fails=1 fail_timeout=60s; server ${backend.addr}; }
    server {
      listen 127.0.0.1:0;
      server_name metrics.test;
      location / { proxy_pass http://app; }
      location = /gone { return 404; }
      location = /metrics { sluice_metrics; }
      ${extra}
    }`);
  const proxy = await startTestProxy(text(), { t });
  // A second proxy in the same process counts only its own traffic.
  const other = await startTestProxy(conf(`server { listen 127.0.0.1:0; server_name other.test; location = /metrics { sluice_metrics; } }`), { t });

  // Round robin starts at the dead server: the first request retries on the live one.
  for (let i = 0; i < 3; i++) assert.equal((await get(proxy, `/r${i}`)).status, 200);
  assert.equal((await get(proxy, '/gone')).status, 404);
  const ws = await rawWebSocket(proxy.port, { path: '/ws' });
  t.after(() => ws.socket.destroy());
  assert.equal(ws.head.statusCode, 101);

  const res = await get(proxy, '/metrics');
  assert.equal(res.status, 200);
  assert.equal(res.type, 'text/plain; version=0.0.4; charset=utf-8');
  const m = parsePrometheus(res.body);
  const v = (name: string, labels: Record<string, string> = {}): number | undefined => sampleValue(m, name, labels);
  assert.equal(v('sluice_http_requests_total', { server_name: 'metrics.test', status: '200' }), 3);
  assert.equal(v('sluice_http_requests_total', { server_name: 'metrics.test', status: '404' }), 1);
  assert.equal(v('sluice_websocket_handshakes_total', { server_name: 'metrics.test', status: '101' }), 1);
  assert.equal(v('sluice_tunnels_open'), 1);
  assert.equal(v('sluice_server_tunnels_open', { server_name: 'metrics.test' }), 1);
  assert.equal(v('sluice_upstream_tunnels_open', { upstream: 'app' }), 1);
  assert.equal(v('sluice_upstream_server_tunnels_open', { upstream: 'app', server: backend.addr }), 1);
  assert.equal(v('sluice_upstream_server_connections', { upstream: 'app', server: backend.addr }), 1);
  assert.equal(v('sluice_upstream_retries_total', { upstream: 'app' }), 1);
  assert.equal(v('sluice_upstream_server_failures_total', { upstream: 'app', server: `127.0.0.1:${dead}` }), 1);
  assert.equal(v('sluice_upstream_server_fails', { upstream: 'app', server: `127.0.0.1:${dead}` }), 1);
  assert.equal(v('sluice_upstream_server_state', { upstream: 'app', server: `127.0.0.1:${dead}`, state: 'failed' }), 1);
  assert.equal(v('sluice_upstream_server_state', { upstream: 'app', server: backend.addr, state: 'up' }), 1);
  assert.equal(v('sluice_upstream_server_healthy', { upstream: 'app', server: backend.addr }), 1);
  // Three requests and one handshake reached the live server, each on a new connection.
  assert.equal(v('sluice_upstream_server_requests_total', { upstream: 'app', server: backend.addr }), 4);
  assert.equal(v('sluice_upstream_connect_seconds_count', { upstream: 'app' }), 4);
  assert.ok((v('sluice_received_bytes_total', { server_name: 'metrics.test' }) ?? 0) > 0);
  assert.ok((v('sluice_sent_bytes_total', { server_name: 'metrics.test' }) ?? 0) > 0);
  assert.equal(v('sluice_connections_accepted_total'), v('sluice_connections_handled_total'));
  assert.equal(v('sluice_workers'), 1);
  assert.equal(v('sluice_reloads_total', { result: 'ok' }), 0);

  const otherMetrics = parsePrometheus((await get(other, '/metrics')).body);
  assert.equal(sampleValue(otherMetrics, 'sluice_tunnels_open'), 0);
  assert.equal(sampleValue(otherMetrics, 'sluice_requests_total'), 1, 'only its own /metrics request');

  // The tunnel closes: its duration is observed, the gauges drop.
  ws.socket.destroy();
  await waitFor(() => snapshot(proxy).tunnels.closed === 1, { what: 'the tunnel to close' });
  // Reloads, one bad and one good, are counted by result.
  await assert.rejects(proxy.handle.reload({ text: text('location /x { proxy_pas http://app; }') }));
  await proxy.handle.reload({ text: text('location /new { return 204; }') });
  const after = parsePrometheus((await get(proxy, '/metrics')).body);
  assert.equal(sampleValue(after, 'sluice_tunnels_open'), 0);
  assert.equal(sampleValue(after, 'sluice_upstream_server_tunnels_open', { upstream: 'app', server: backend.addr }), 0);
  assert.equal(sampleValue(after, 'sluice_tunnel_duration_seconds_count', { upstream: 'app' }), 1);
  assert.equal(sampleValue(after, 'sluice_tunnel_duration_seconds_bucket', { upstream: 'app', le: '+Inf' }), 1);
  const closed = after.get('sluice_upstream_tunnels_closed_total')!.samples;
  assert.equal(closed.reduce((n, s) => n + s.value, 0), 1);
  assert.equal(sampleValue(after, 'sluice_reloads_total', { result: 'failed' }), 1);
  assert.equal(sampleValue(after, 'sluice_reloads_total', { result: 'ok' }), 1);
  assert.equal(sampleValue(after, 'sluice_last_reload_success'), 1);
  assert.ok((sampleValue(after, 'sluice_last_reload_timestamp_seconds') ?? 0) > 0);
  // Counters survive the reload.
  assert.equal(sampleValue(after, 'sluice_http_requests_total', { server_name: 'metrics.test', status: '200' }), 4);
  const otherAfter = parsePrometheus((await get(other, '/metrics')).body);
  assert.equal(sampleValue(otherAfter, 'sluice_reloads_total', { result: 'ok' }), 0, 'the other proxy did not reload');
});

test('sluice_status: the same figures as JSON', async (t) => {
  const backend = await startHttpBackend(undefined, { id: 'j' });
  t.after(() => backend.close());
  const proxy = await startTestProxy(conf(`
    upstream app { server ${backend.addr} weight=3; server 127.0.0.1:9 down; }
    server {
      listen 127.0.0.1:0;
      server_name json.test;
      location / { proxy_pass http://app; }
      location = /status { sluice_status; }
    }`), { t });
  assert.equal((await get(proxy, '/x')).status, 200);
  const ws = await rawWebSocket(proxy.port, { path: '/ws' });
  t.after(() => ws.socket.destroy());
  await waitFor(() => snapshot(proxy).connections.active === 1, { what: 'the request\'s connection to close' });
  const res = await get(proxy, '/status');
  assert.equal(res.status, 200);
  assert.equal(res.type, 'application/json');
  const s = JSON.parse(res.body) as StatsSnapshot;
  assert.equal(s.schema, 1);
  assert.equal(s.workers, 1);
  assert.deepEqual(s.pids, [process.pid]);
  assert.equal(s.connections.active, 2);
  assert.equal(s.connections.writing, 2, 'the tunnel and this request');
  assert.deepEqual(s.tunnels, { open: 1, opened: 1, closed: 0 });
  assert.deepEqual(s.servers['json.test']!.requests, { 200: 1 });
  assert.deepEqual(s.servers['json.test']!.handshakes, { 101: 1 });
  assert.equal(s.servers['json.test']!.inFlight, 2);
  const app = s.upstreams['app']!;
  assert.equal(app.method, 'round_robin');
  assert.deepEqual(Object.keys(app.peers).sort(), [backend.addr, '127.0.0.1:9'].sort());
  const live = app.peers[backend.addr]!;
  assert.deepEqual({ state: live.state, weight: live.weight, tunnels: live.tunnels, active: live.active, attempts: live.attempts },
    { state: 'up', weight: 3, tunnels: 1, active: 1, attempts: 2 });
  assert.equal(app.peers['127.0.0.1:9']!.state, 'down');
  assert.equal(s.series.values.requests.length, 60);
  assert.ok(s.rates.requests > 0);
});

test('sluice_dashboard: the page, and its event stream pushes live snapshots', async (t) => {
  const backend = await startHttpBackend(undefined, { id: 'd' });
  t.after(() => backend.close());
  const proxy = await startTestProxy(conf(`
    upstream app { server ${backend.addr}; }
    server {
      listen 127.0.0.1:0;
      server_name dash.test;
      location / { proxy_pass http://app; }
      location /dashboard { sluice_dashboard; add_header X-Frame-Options SAMEORIGIN; }
    }`), { t });
  const page = await get(proxy, '/dashboard');
  assert.equal(page.status, 200);
  assert.equal(page.type, 'text/html; charset=utf-8');
  assert.match(page.body, /^<!doctype html>/);
  assert.match(page.body, /new EventSource\(url\)/);
  assert.match(headerValue(page.head, 'content-security-policy') ?? '', /connect-src 'self'/);
  assert.equal(headerValue(page.head, 'x-frame-options'), 'SAMEORIGIN');

  const events = async (request: string): Promise<{ socket: Socket; next: () => Promise<StatsSnapshot> }> => {
    const socket = await rawConnect(proxy.port);
    t.after(() => socket.destroy());
    socket.write(request);
    const head = (await readUntil(socket, '\r\n\r\n')).toString('latin1');
    assert.match(head, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(head, /\r\nContent-Type: text\/event-stream; charset=utf-8\r\n/i);
    assert.match(head, /\r\nCache-Control: no-cache\r\n/i);
    assert.match(head, /\r\nTransfer-Encoding: chunked\r\n/i);
    let raw = Buffer.from(head.slice(head.indexOf('\r\n\r\n') + 4), 'latin1');
    let text = '';
    // Undo the chunked framing as bytes arrive, then cut the text into events.
    const dechunk = (): void => {
      for (;;) {
        const eol = raw.indexOf('\r\n');
        if (eol < 0) return;
        const size = parseInt(raw.subarray(0, eol).toString('latin1'), 16);
        if (raw.length < eol + 2 + size + 2) return;
        text += raw.subarray(eol + 2, eol + 2 + size).toString('utf8');
        raw = raw.subarray(eol + 2 + size + 2);
      }
    };
    const next = async (): Promise<StatsSnapshot> => {
      for (;;) {
        dechunk();
        const end = text.indexOf('\n\n');
        if (end >= 0) {
          const event = text.slice(0, end);
          text = text.slice(end + 2);
          const data = event.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
          if (data !== '') return JSON.parse(data) as StatsSnapshot;
          continue;
        }
        raw = Buffer.concat([raw, await readUntil(socket, (b) => b.length > 0)]);
      }
    };
    return { socket, next };
  };

  const stream = await events('GET /dashboard?events HTTP/1.1\r\nHost: dash.test\r\n\r\n');
  const first = await stream.next();
  assert.equal(first.tunnels.open, 0);
  assert.ok(first.upstreams['app']);
  // The stream is counted apart: watching an idle proxy shows an idle proxy.
  assert.deepEqual([first.viewers.open, first.connections.active, first.connections.writing, first.servers['dash.test']?.inFlight], [1, 0, 0, 0]);
  const ws = await rawWebSocket(proxy.port, { path: '/chat' });
  t.after(() => ws.socket.destroy());
  assert.equal(ws.head.statusCode, 101);
  for (let s = await stream.next(); s.tunnels.open !== 1; s = await stream.next()) { /* until the tunnel shows */ }
  ws.socket.destroy();
  for (let s = await stream.next(); s.tunnels.open !== 0; s = await stream.next()) { /* until it is gone */ }

  // Accept: text/event-stream works without ?events.
  const byAccept = await events('GET /dashboard HTTP/1.1\r\nHost: dash.test\r\nAccept: text/event-stream\r\n\r\n');
  assert.equal((await byAccept.next()).schema, 1);
  // Streams are counted apart from the proxied connections, requests and bytes.
  await waitFor(() => snapshot(proxy).viewers.open === 2, { what: 'the two streams open' });
  const watched = snapshot(proxy);
  assert.deepEqual([watched.connections.active, watched.connections.writing, watched.servers['dash.test']?.inFlight], [0, 0, 0]);
  const before = snapshot(proxy).servers['dash.test']!;
  byAccept.socket.destroy();
  await waitFor(() => snapshot(proxy).viewers.served === 1, { what: 'the ended stream to be counted as a viewer' });
  const after = snapshot(proxy);
  assert.equal(after.viewers.open, 1);
  assert.ok(after.viewers.bytesSent > 0);
  assert.deepEqual(after.servers['dash.test']!.requests, before.requests, 'the ended stream is no request of the server');
  assert.equal(after.servers['dash.test']!.bytesSent, before.bytesSent);
  // Shutting down ends the streams instead of waiting for them.
  const started = Date.now();
  await proxy.handle.close(30_000);
  assert.ok(Date.now() - started < 20_000, 'the streams did not hold the shutdown for its grace period');
  await waitForClose(stream.socket);
});

test('dashboard figures: a server draining after a reload is not an error; a tunnel the client closed counts as "client closed"', async (t) => {
  const a = await startHttpBackend(undefined, { id: 'a' });
  t.after(() => a.close());
  const b = await startHttpBackend(undefined, { id: 'b' });
  t.after(() => b.close());
  const text = (servers: string): string => conf(`
    upstream app { ${servers} }
    server {
      listen 127.0.0.1:0;
      location / { proxy_pass http://app; }
      location = /status { sluice_status; }
    }`);
  const proxy = await startTestProxy(text(`server ${a.addr};`), { t });
  // A tunnel to a, then a reload without a: the tunnel stays and a is draining, as planned.
  const ws = await rawWebSocket(proxy.port, { path: '/chat' });
  t.after(() => ws.socket.destroy());
  assert.equal(ws.head.statusCode, 101);
  // The statistics note state changes on their ticks (a watcher is called on each): a must be
  // seen up on one tick and draining on later ones.
  let ticks = 0;
  const unwatch = proxy.handle.stats!.watch(() => ticks++, () => undefined);
  t.after(unwatch);
  await waitFor(() => ticks >= 2, { what: 'two ticks with a up' });
  await proxy.handle.reload({ text: text(`server ${b.addr};`) });
  const reloadedAt = ticks;
  await waitFor(() => ticks >= reloadedAt + 2, { what: 'two ticks after the reload' });
  const s = snapshot(proxy);
  assert.equal(s.upstreams['app']?.peers[a.addr]?.state, 'draining');
  assert.deepEqual(s.recentErrors.filter((e) => e.message.includes('draining')), [], 'no error for planned draining');

  // A WebSocket client that closes: the client's close frame comes first, the server's FIN first.
  const client = await rawWebSocket(proxy.port, { path: '/bye' });
  t.after(() => client.socket.destroy());
  assert.equal(client.head.statusCode, 101);
  client.socket.write(maskedFrame(Opcode.CLOSE, Buffer.from([0x03, 0xe8])));
  await waitForClose(client.socket);
  await waitFor(() => (snapshot(proxy).upstreams['app']?.tunnelsClosed['client closed'] ?? 0) === 1, { what: 'the tunnel to count as client closed' });
  assert.equal(snapshot(proxy).upstreams['app']?.tunnelsClosed['upstream closed'], undefined);
});

test('statistics with no viewer: a server that goes down is a recent error, and no snapshot is built on the ticks (an idle proxy does not visit its tunnels every second)', async (t) => {
  const a = await startHttpBackend(undefined, { id: 'a' });
  t.after(() => a.close());
  const text = (server: string): string => conf(`
    upstream app { ${server} }
    server {
      listen 127.0.0.1:0;
      location / { proxy_pass http://app; }
    }`);
  const proxy = await startTestProxy(text(`server ${a.addr};`), { t });
  // Tunnels the ticks would visit if they built the snapshot.
  const tunnels = await Promise.all([0, 1, 2].map(() => rawWebSocket(proxy.port, { path: '/chat' })));
  t.after(() => { for (const w of tunnels) w.socket.destroy(); });
  assert.deepEqual(tunnels.map((w) => w.head.statusCode), [101, 101, 101]);
  const stats = proxy.handle.stats!;
  const snapshotOf = stats.snapshot.bind(stats);
  let built = 0;
  Object.defineProperty(stats, 'snapshot', { value: () => { built++; return snapshotOf(); }, configurable: true });
  // One tick with a viewer: the collector has seen a up (and built the viewer's snapshot).
  let viewed = 0;
  const unwatch = stats.watch(() => viewed++, () => undefined);
  await waitFor(() => viewed >= 1, { what: 'a tick with a viewer' });
  unwatch();
  assert.ok(built >= 1, 'a viewer gets a snapshot built on the tick');
  built = 0;
  await proxy.handle.reload({ text: text(`server ${a.addr} down;`) });
  const message = `upstream server ${a.addr} of "app" is down (was up)`;
  await waitFor(() => snapshotOf().recentErrors.some((e) => e.kind === 'state' && e.message === message), { what: 'the state change as a recent error', timeoutMs: 5_000 });
  assert.equal(built, 0, 'no snapshot built on a tick without a viewer');
  assert.equal(snapshotOf().recentErrors.filter((e) => e.kind === 'state').length, 1, 'one change, noted once');
});

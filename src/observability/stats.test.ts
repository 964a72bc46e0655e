/** Snapshots from several worker processes sum into one; the sum renders as valid Prometheus text. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePrometheus, sampleValue } from '../../test/helpers/prometheus.js';
import { renderPrometheus } from './metrics.js';
import {
  CONNECT_BUCKETS, RATE_WINDOW_SECONDS, STATS_SCHEMA, TUNNEL_BUCKETS, dict, emptyRates, emptySeries, emptyStates, mergeSnapshots,
  newHistogram, observe,
} from './stats.js';
import type { PeerStats, StatsSnapshot } from './stats.js';

function peer(address: string, state: PeerStats['state'], over: Partial<PeerStats> = {}): PeerStats {
  const states = emptyStates();
  states[state] = 1;
  return {
    address, name: address, backup: false, weight: 1, checked: true, active: 0, tunnels: 0, fails: 0, states, state,
    healthy: state === 'unhealthy' ? 0 : 1, attempts: 0, failures: 0, ...over,
  };
}

function worker(pid: number, n: number, end: number): StatsSnapshot {
  const connect = newHistogram(CONNECT_BUCKETS);
  observe(connect, 0.001 * n);
  const tunnel = newHistogram(TUNNEL_BUCKETS);
  observe(tunnel, 2);
  const series = emptySeries(end);
  series.values.requests[RATE_WINDOW_SECONDS - 1] = n;
  const s: StatsSnapshot = {
    schema: STATS_SCHEMA, version: '0.1.0', time: 1000 * n, startTime: 500 * n, workers: 1, pids: [pid],
    connections: { active: n, reading: 0, writing: n, waiting: 0, accepted: 10 * n, handled: 10 * n, requests: 20 * n },
    tunnels: { open: n, opened: 2 * n, closed: n },
    servers: dict(), upstreams: dict(),
    reloads: { ok: 1, failed: n - 1, drained: 0, lastTime: 100 * n, lastOk: n === 1 ? 1 : 0, recent: [
      { time: 100 * n, ok: n === 1, file: '/etc/sluice.conf', problems: n === 1 ? [] : ['bad'], drained: 0, pid },
    ] },
    recentErrors: [{ time: 50 * n, kind: 'upstream', message: `error of ${pid}`, upstream: 'app', server: '10.0.0.1:80', pid }],
    internalErrors: n - 1,
    viewers: { open: n, served: 2 * n, bytesSent: 100 * n },
    rates: { ...emptyRates(), requests: n },
    series,
  };
  s.servers['chat.example'] = { requests: { 200: 5 * n, 502: n }, handshakes: { 101: 2 * n }, inFlight: n, tunnels: n, bytesReceived: 100 * n, bytesSent: 1000 * n };
  const peers = dict<PeerStats>();
  peers['10.0.0.1:80'] = peer('10.0.0.1:80', 'up', { active: n, tunnels: n, attempts: 3 * n });
  peers['10.0.0.2:80'] = peer('10.0.0.2:80', n === 1 ? 'up' : 'failed', { fails: n - 1, attempts: n, failures: n - 1 });
  s.upstreams['app'] = {
    method: 'least_conn', implicit: false, peers, retries: n, tunnelsOpened: 2 * n, tunnelsClosed: { 'client closed': n },
    websocketCloses: { '1000/client': n, ...(n === 2 ? { '1009/sluice': 1 } : {}) }, tunnelDuration: tunnel, connectTime: connect,
  };
  return s;
}

test('mergeSnapshots adds counters, gauges, histograms and per-second series of workers', () => {
  const a = worker(101, 1, 1000);
  const b = worker(102, 2, 1001);
  const before = JSON.stringify([a, b]);
  // Over IPC the snapshots arrive as JSON.
  const m = mergeSnapshots([JSON.parse(JSON.stringify(a)) as StatsSnapshot, b]);
  assert.equal(JSON.stringify([a, b]), before, 'inputs untouched');
  assert.equal(m.workers, 2);
  assert.deepEqual(m.pids, [101, 102]);
  assert.equal(m.startTime, 500);
  assert.equal(m.time, 2000);
  assert.deepEqual(m.connections, { active: 3, reading: 0, writing: 3, waiting: 0, accepted: 30, handled: 30, requests: 60 });
  assert.deepEqual(m.tunnels, { open: 3, opened: 6, closed: 3 });
  const srv = m.servers['chat.example']!;
  assert.deepEqual({ ...srv.requests }, { 200: 15, 502: 3 });
  assert.deepEqual({ ...srv.handshakes }, { 101: 6 });
  assert.equal(srv.bytesSent, 3000);
  const app = m.upstreams['app']!;
  assert.equal(app.retries, 3);
  assert.equal(app.connectTime.count, 2);
  assert.equal(app.tunnelDuration.count, 2);
  assert.equal(app.connectTime.sum, 0.003);
  assert.deepEqual({ ...app.tunnelsClosed }, { 'client closed': 3 });
  assert.deepEqual({ ...app.websocketCloses }, { '1000/client': 3, '1009/sluice': 1 });
  const p2 = app.peers['10.0.0.2:80']!;
  assert.equal(p2.states.up, 1);
  assert.equal(p2.states.failed, 1);
  assert.equal(p2.state, 'failed', 'the worst state any worker sees');
  assert.equal(p2.healthy, 2);
  assert.equal(app.peers['10.0.0.1:80']!.active, 3);
  assert.deepEqual({ ok: m.reloads.ok, failed: m.reloads.failed, lastOk: m.reloads.lastOk, lastTime: m.reloads.lastTime }, { ok: 1, failed: 1, lastOk: 0, lastTime: 200 });
  assert.deepEqual(m.reloads.recent.map((r) => r.pid), [102, 101], 'newest first');
  assert.deepEqual(m.recentErrors.map((e) => e.pid), [102, 101]);
  assert.equal(m.internalErrors, 1, 'internal errors add up over workers');
  assert.equal(m.rates.requests, 3);
  // Series align on epoch seconds: a's last second is 1000, b's 1001.
  assert.equal(m.series.end, 1001);
  assert.equal(m.series.values.requests[RATE_WINDOW_SECONDS - 1], 2);
  assert.equal(m.series.values.requests[RATE_WINDOW_SECONDS - 2], 1);
  assert.deepEqual(JSON.parse(JSON.stringify(mergeSnapshots([a]))), JSON.parse(JSON.stringify(a)), 'one snapshot merges to an equal copy');
});

test('a reload every worker applied is counted and listed once, with every worker\'s drained tunnels', () => {
  const ws = [1, 2, 3].map((pid) => {
    const s = worker(pid, 1, 10);
    s.reloads = { ok: pid === 3 ? 1 : 2, failed: 0, drained: pid, lastTime: 10_000 + pid * 100, lastOk: 1, recent: [
      { time: 10_000 + pid * 100, ok: true, file: '/etc/sluice.conf', problems: [], drained: pid, pid },
      ...(pid === 3 ? [] : [{ time: 1000 + pid, ok: true, file: '/etc/sluice.conf', problems: [], drained: 0, pid }]),
    ] };
    return s;
  });
  const m = mergeSnapshots(ws);
  assert.equal(m.reloads.ok, 2, 'worker 3 started after the first reload');
  assert.equal(m.reloads.drained, 6);
  assert.equal(m.reloads.lastTime, 10_300);
  assert.deepEqual(m.reloads.recent.map((r) => [r.time, r.drained]), [[10_300, 6], [1002, 0]]);
  const p = parsePrometheus(renderPrometheus(m));
  assert.equal(sampleValue(p, 'sluice_reloads_total', { result: 'ok' }), 2);
  assert.equal(sampleValue(p, 'sluice_last_reload_success'), 1);
});

test('mergeSnapshots refuses other schemas and differing histogram bounds', () => {
  const a = worker(1, 1, 10);
  assert.throws(() => mergeSnapshots([]), /at least one/);
  assert.throws(() => mergeSnapshots([a, { ...worker(2, 1, 10), schema: 99 }]), /schema 99/);
  const b = worker(2, 1, 10);
  b.upstreams['app']!.connectTime = newHistogram([1, 2]);
  assert.throws(() => mergeSnapshots([a, b]), /bucket bounds/);
});

test('the merged snapshot renders as strict Prometheus text, awkward label values escaped', () => {
  const a = worker(1, 1, 10);
  const b = worker(2, 2, 10);
  b.servers['quote " back \\ slash\nline'] = { requests: { 404: 1 }, handshakes: {}, inFlight: 0, tunnels: 0, bytesReceived: 1, bytesSent: 2 };
  const text = renderPrometheus(mergeSnapshots([a, b]));
  assert.match(text, /server_name="quote \\" back \\\\ slash\\nline"/);
  const fams = parsePrometheus(text);
  assert.equal(sampleValue(fams, 'sluice_workers'), 2);
  assert.equal(sampleValue(fams, 'sluice_http_requests_total', { server_name: 'chat.example', status: '200' }), 15);
  assert.equal(sampleValue(fams, 'sluice_http_requests_total', { server_name: 'quote " back \\ slash\nline', status: '404' }), 1);
  assert.equal(sampleValue(fams, 'sluice_upstream_connect_seconds_count', { upstream: 'app' }), 2);
  assert.equal(sampleValue(fams, 'sluice_upstream_connect_seconds_bucket', { upstream: 'app', le: '+Inf' }), 2);
  assert.equal(sampleValue(fams, 'sluice_upstream_server_state', { upstream: 'app', server: '10.0.0.2:80', state: 'failed' }), 1);
  assert.equal(sampleValue(fams, 'sluice_upstream_server_state', { upstream: 'app', server: '10.0.0.2:80', state: 'up' }), 1);
  assert.equal(sampleValue(fams, 'sluice_reloads_total', { result: 'failed' }), 1);
  assert.equal(sampleValue(fams, 'sluice_internal_errors_total'), 1);
  assert.equal(fams.get('sluice_tunnel_duration_seconds')?.type, 'histogram');
});

test('mergeSnapshots lists a state change every worker saw once; viewers add up; sluice_info stays 1', () => {
  const a = worker(101, 1, 1000);
  const b = worker(102, 2, 1001);
  const change = (pid: number, time: number) => ({ time, kind: 'state' as const, message: 'upstream server 10.0.0.2:80 of "app" is unhealthy (was up)', upstream: 'app', server: '10.0.0.2:80', pid });
  a.recentErrors.push(change(101, 5000));
  b.recentErrors.push(change(102, 5400));
  // The same change much later is another event.
  b.recentErrors.push(change(102, 60_000));
  const m = mergeSnapshots([a, b]);
  assert.deepEqual(m.recentErrors.filter((e) => e.kind === 'state').map((e) => e.time), [60_000, 5400]);
  assert.deepEqual(m.viewers, { open: 3, served: 6, bytesSent: 300 });
  const families = parsePrometheus(renderPrometheus(m));
  assert.equal(sampleValue(families, 'sluice_info', { version: '0.1.0' }), 1);
  assert.equal(sampleValue(families, 'sluice_workers'), 2);
  assert.equal(sampleValue(families, 'sluice_dashboard_viewers'), 3);
});

test('mergeSnapshots adds limit zone figures by zone; an older worker without them adds nothing', () => {
  const a = worker(101, 1, 1000);
  const b = worker(102, 2, 1001);
  const c = worker(103, 3, 1002);
  a.limitReqs = { one: { passed: 3, delayed: 1, rejected: 2, delayed_dry_run: 0, rejected_dry_run: 0 } };
  b.limitReqs = { one: { passed: 4, delayed: 0, rejected: 1, delayed_dry_run: 0, rejected_dry_run: 5 }, two: { passed: 1, delayed: 0, rejected: 0, delayed_dry_run: 0, rejected_dry_run: 0 } };
  a.limitConns = { perip: { passed: 7, rejected: 1, rejected_dry_run: 0 } };
  b.limitConns = { perip: { passed: 2, rejected: 2, rejected_dry_run: 3 } };
  const m = mergeSnapshots([a, b, c]);
  assert.deepEqual({ ...m.limitReqs }, {
    one: { passed: 7, delayed: 1, rejected: 3, delayed_dry_run: 0, rejected_dry_run: 5 },
    two: { passed: 1, delayed: 0, rejected: 0, delayed_dry_run: 0, rejected_dry_run: 0 },
  });
  assert.deepEqual({ ...m.limitConns }, { perip: { passed: 9, rejected: 3, rejected_dry_run: 3 } });
  assert.equal(a.limitReqs['one']!.passed, 3, 'inputs untouched');
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { HealthCheckConfig, UpstreamConfig } from '../config/types.js';
import { EVERY_METHOD, methodLabel } from './balancers/registry.js';
import { testPeer } from './balancers/fixtures.js';
import { recordFailure, recordSuccess } from './peer.js';
import { PeerStates, UpstreamPool } from './pool.js';

function upstream(extra: Partial<UpstreamConfig> = {}): UpstreamConfig {
  const servers = [testPeer(1, { maxFails: 2, failTimeout: 1000 }).server, testPeer(2).server];
  return {
    name: 'u', servers, keepalive: 0, keepaliveTimeout: 60_000, keepaliveRequests: 1000, implicit: false,
    method: { name: 'round_robin' }, sticky: null, zone: null, healthChecks: [], resolver: null, resolverTimeout: 30_000, loc: { file: 't', line: 1 }, ...extra,
  };
}

// nginx, in every method: a pick after fail_timeout opens a new window, so a success then clears
// the failures; otherwise one later failure would take the server out again at once.
for (const method of EVERY_METHOD) {
  test(`${methodLabel(method)}: a server picked after fail_timeout that succeeds starts from zero failures`, () => {
    const pool = new UpstreamPool(upstream({ method }), new PeerStates());
    const flaky = pool.primary[0]!;
    recordFailure(flaky, 100);
    recordFailure(flaky, 200);
    let picked = false;
    for (let i = 0; i < 50 && !picked; i++) {
      const p = pool.pick(new Set(), 1300, `10.0.${i}.1`);
      if (p === flaky) picked = true;
    }
    assert.ok(picked, 'available again after fail_timeout');
    recordSuccess(flaky, 1310);
    assert.equal(flaky.state.fails, 0);
    recordFailure(flaky, 1400);
    assert.equal(pool.pick(new Set([pool.primary[1]!]), 1450, '10.0.0.1'), flaky, 'one failure is below max_fails=2');
  });
}

test('a pool built without health checks (a reload dropped them) returns servers they had marked unhealthy', () => {
  const states = new PeerStates();
  const check = { interval: 1000 } as HealthCheckConfig;
  const checked = new UpstreamPool(upstream({ healthChecks: [check] }), states);
  checked.primary[1]!.state.healthy = false;
  const again = new UpstreamPool(upstream({ healthChecks: [check] }), states);
  assert.equal(again.primary[1]!.state.healthy, false, 'still checked: the checks decide');
  const unchecked = new UpstreamPool(upstream(), states);
  assert.equal(unchecked.primary[1]!.state.healthy, true);
  assert.ok(unchecked.primary[1]!.state.recoveredAt > 0, 'slow_start ramps it from now');
});

test('the connections a client keeps for a pool: made once per client, closed with the pool, and closed at once when made after it', () => {
  const pool = new UpstreamPool(upstream({ keepalive: 2 }), new PeerStates());
  const made: { idle: number; closed: number }[] = [];
  const make = (): { idle: number; closed: number; closeIdle(): void; close(): void } => {
    const c = { idle: 0, closed: 0, closeIdle() { c.idle++; }, close() { c.closed++; } };
    made.push(c);
    return c;
  };
  const first = pool.connectionsOf(make);
  assert.equal(pool.connectionsOf(make), first, 'one per client and pool');
  pool.closeIdle();
  assert.deepEqual(made.map((c) => [c.idle, c.closed]), [[1, 0]]);
  pool.close();
  assert.deepEqual(made.map((c) => [c.idle, c.closed]), [[1, 1]]);
  // A request still finishing on the old pool after a reload asks for another client's connections.
  const late = pool.connectionsOf(() => make());
  assert.equal(late.closed, 1, 'nothing is kept for a pool that is shut down');
});

test('a `server NAME resolve` line: addresses join and leave, a staying address keeps its peer and live state', () => {
  const line = testPeer(8080, { name: 'app.test:8080', resolve: 'app.test', loc: { file: 't', line: 2 } }).server;
  const pool = new UpstreamPool(upstream({ servers: [testPeer(1).server, line] }), new PeerStates());
  assert.deepEqual(pool.peers.map((p) => p.addr), ['127.0.0.1:1'], 'nothing for the name before its first answer');
  const v4 = (host: string) => ({ host, port: 0, family: 4 as const });
  assert.deepEqual(pool.setResolved(line, [v4('10.0.0.1'), v4('10.0.0.2')]), []);
  assert.deepEqual(pool.peers.map((p) => p.addr), ['127.0.0.1:1', '10.0.0.1:8080', '10.0.0.2:8080']);
  const kept = pool.peers[2]!;
  kept.state.fails = 3;
  assert.deepEqual(pool.setResolved(line, [v4('10.0.0.2'), v4('10.0.0.3')]), ['10.0.0.1:8080']);
  assert.deepEqual(pool.peers.map((p) => p.addr), ['127.0.0.1:1', '10.0.0.2:8080', '10.0.0.3:8080']);
  assert.equal(pool.peers[1], kept, 'the same peer');
  assert.equal(pool.peers[1]!.state.fails, 3);
  assert.deepEqual(pool.setResolved(line, []), ['10.0.0.2:8080', '10.0.0.3:8080']);
  assert.deepEqual(pool.peers.map((p) => p.addr), ['127.0.0.1:1']);
});

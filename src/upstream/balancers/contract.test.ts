import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { BalanceMethod } from '../../config/types.js';
import type { Peer } from '../peer.js';
import { recordFailure } from '../peer.js';
import { seeded, testPeer } from './fixtures.js';
import { EVERY_METHOD, makeBalancer, methodLabel } from './registry.js';

function make(method: BalanceMethod, peers: Peer[]) {
  return makeBalancer(method, peers, { random: seeded(42) });
}

// The contract every balancing method keeps (DESIGN: one suite run against every implementation).
for (const method of EVERY_METHOD) {
  const label = methodLabel(method);
  test(`${label}: an empty pool picks nothing`, () => {
    assert.equal(make(method, []).pick({ tried: new Set(), now: 1, key: '10.0.0.1' }), null);
  });

  test(`${label}: never picks a down, failed, full, unhealthy or already tried server`, () => {
    const a = testPeer(1), down = testPeer(2, { down: true }), failed = testPeer(3), tried = testPeer(4);
    const full = testPeer(5, { maxConns: 2 }), sick = testPeer(6);
    recordFailure(failed, 1000);
    full.state.active = 2;
    sick.state.healthy = false;
    const bal = make(method, [a, down, failed, tried, full, sick]);
    for (let i = 0; i < 50; i++) {
      assert.equal(bal.pick({ tried: new Set([tried]), now: 1500, key: `10.0.${i}.1` }), a);
    }
    assert.equal(bal.pick({ tried: new Set([a, tried]), now: 1500, key: '10.0.0.1' }), null);
  });

  test(`${label}: spreads many keys over equal servers`, () => {
    const peers = [testPeer(1), testPeer(2), testPeer(3)];
    const bal = make(method, peers);
    const counts = new Map<Peer, number>();
    for (let i = 0; i < 3000; i++) {
      const p = bal.pick({ tried: new Set(), now: 1, key: `10.${i % 251}.${Math.floor(i / 251)}.7 user-${i}` });
      assert.ok(p);
      counts.set(p, (counts.get(p) ?? 0) + 1);
    }
    // ip_hash hashes only three octets, so its key space here is ~3000 distinct /24s: still spread.
    for (const p of peers) assert.ok((counts.get(p) ?? 0) > 600, `${p.addr}: ${counts.get(p)}`);
  });

  test(`${label}: a rebuilt balancer (reload) over the same peers keeps working with their live state`, () => {
    const peers = [testPeer(1), testPeer(2)];
    peers[0]!.state.active = 5;
    const first = make(method, peers).pick({ tried: new Set(), now: 1, key: 'k' });
    const again = make(method, peers).pick({ tried: new Set(), now: 1, key: 'k' });
    assert.ok(first && again);
  });
}

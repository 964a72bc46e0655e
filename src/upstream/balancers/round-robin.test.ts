import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { UpstreamServer } from '../../config/types.js';
import { Peer, PeerState, recordFailure, recordSuccess } from '../peer.js';
import { BALANCERS } from './registry.js';

function peer(port: number, extra: Partial<UpstreamServer> = {}): Peer {
  const server: UpstreamServer = {
    name: `127.0.0.1:${port}`, address: { host: '127.0.0.1', port, family: 4 }, weight: 1, maxFails: 1,
    failTimeout: 10_000, backup: false, down: false, loc: { file: 't', line: 1 }, ...extra,
  };
  return new Peer(server, new PeerState());
}

function picks(balancerName: string, peers: Peer[], n: number, now = 1000): string[] {
  const make = BALANCERS.get(balancerName);
  assert.ok(make, balancerName);
  const b = make(peers);
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(String(b.pick({ tried: new Set(), now })?.server.address.port ?? 'none'));
  return out;
}

// The contract every balancing method keeps, run against each registered method.
for (const method of BALANCERS.keys()) {
  test(`${method}: an empty pool picks nothing`, () => {
    assert.deepEqual(picks(method, [], 2), ['none', 'none']);
  });
  test(`${method}: never picks a down, failed or already tried server`, () => {
    const a = peer(1), b = peer(2, { down: true }), c = peer(3), d = peer(4);
    recordFailure(c, 1000);
    const make = BALANCERS.get(method)!;
    const bal = make([a, b, c, d]);
    for (let i = 0; i < 20; i++) {
      const p = bal.pick({ tried: new Set([d]), now: 1500 });
      assert.equal(p, a);
    }
    assert.equal(bal.pick({ tried: new Set([a, d]), now: 1500 }), null);
  });
  test(`${method}: spreads picks over equal servers`, () => {
    const counts = new Map<string, number>();
    for (const p of picks(method, [peer(1), peer(2), peer(3)], 300)) counts.set(p, (counts.get(p) ?? 0) + 1);
    for (const port of ['1', '2', '3']) assert.ok((counts.get(port) ?? 0) >= 80, `${port}: ${counts.get(port)}`);
  });
}

test('round robin alternates exactly and weights hold smoothly (nginx: a a b a c a a for 5,1,1)', () => {
  assert.deepEqual(picks('round_robin', [peer(1), peer(2)], 6), ['1', '2', '1', '2', '1', '2']);
  assert.deepEqual(picks('round_robin', [peer(1, { weight: 5 }), peer(2), peer(3)], 7), ['1', '1', '2', '1', '3', '1', '1']);
});

test('passive health: max_fails within fail_timeout takes a server out for fail_timeout, then one try', () => {
  const a = peer(1, { maxFails: 2, failTimeout: 1000 }), b = peer(2);
  const make = BALANCERS.get('round_robin')!;
  const bal = make([a, b]);
  recordFailure(a, 100);
  assert.ok(picks('round_robin', [a, b], 2, 200).includes('1'), 'one failure is below max_fails');
  recordFailure(a, 300);
  for (let i = 0; i < 5; i++) assert.equal(bal.pick({ tried: new Set(), now: 500 })?.server.address.port, 2);
  // After fail_timeout the server gets tried again; a success clears its failures.
  let sawA = false;
  for (let i = 0; i < 4; i++) if (bal.pick({ tried: new Set(), now: 1400 }) === a) sawA = true;
  assert.ok(sawA);
  recordSuccess(a);
  assert.equal(a.state.fails, 0);
});

test('a single server is never marked unavailable (nginx ignores max_fails for it)', () => {
  const a = peer(1);
  recordFailure(a, 100);
  recordFailure(a, 100);
  assert.deepEqual(picks('round_robin', [a], 2, 200), ['1', '1']);
});

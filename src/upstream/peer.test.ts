import { test } from 'node:test';
import assert from 'node:assert/strict';
import { peerAvailability, peerAvailable, recordFailure } from './peer.js';
import { testPeer } from './balancers/fixtures.js';

test('peerAvailability names the first reason a peer cannot be picked, in nginx\'s order; peerAvailable agrees', () => {
  const cases = [
    { peer: testPeer(1), single: false, want: 'up' },
    { peer: testPeer(2, { down: true, maxConns: 1 }), single: false, want: 'down' },
    { peer: testPeer(3, { maxConns: 1 }), single: false, want: 'unhealthy', unhealthy: true, active: 1 },
    { peer: testPeer(4, { maxConns: 1 }), single: true, want: 'full', active: 1 },
    { peer: testPeer(5, { maxConns: 2 }), single: false, want: 'up', active: 1 },
    { peer: testPeer(6, { maxFails: 1, maxConns: 1 }), single: false, want: 'full', failedAt: 100, active: 1 },
    { peer: testPeer(7, { maxFails: 2 }), single: false, want: 'up', failedAt: 100 },
  ] as const;
  for (const c of cases) {
    if ('unhealthy' in c) c.peer.state.healthy = false;
    if ('active' in c) c.peer.state.active = c.active;
    if ('failedAt' in c) recordFailure(c.peer, c.failedAt);
    assert.equal(peerAvailability(c.peer, 200, c.single), c.want, c.peer.addr);
    assert.equal(peerAvailable(c.peer, 200, c.single), c.want === 'up', c.peer.addr);
  }
});

test('max_fails within fail_timeout is "failed" until the window passes, except for a group\'s only server', () => {
  const p = testPeer(1, { maxFails: 1, failTimeout: 1000 });
  recordFailure(p, 100);
  assert.equal(peerAvailability(p, 100, false), 'failed');
  assert.equal(peerAvailability(p, 1100, false), 'failed', 'fail_timeout is inclusive, as nginx compares');
  assert.equal(peerAvailability(p, 1101, false), 'up');
  assert.equal(peerAvailability(p, 100, true), 'up', 'nginx never marks the only server of a group as failed');
  assert.equal(peerAvailable(p, 100, false), false);
  assert.equal(peerAvailable(p, 100, true), true);
});

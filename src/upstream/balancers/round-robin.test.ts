import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { UpstreamServer } from '../../config/types.js';
import type { Peer } from '../peer.js';
import { recordFailure, recordSuccess } from '../peer.js';
import { makeBalancer } from './registry.js';
import { testPeer } from './fixtures.js';

function peer(port: number, extra: Partial<UpstreamServer> = {}): Peer {
  return testPeer(port, extra);
}

function picks(_method: 'round_robin', peers: Peer[], n: number, now = 1000): string[] {
  const b = makeBalancer({ name: 'round_robin' }, peers);
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(String(b.pick({ tried: new Set(), now, key: '' })?.server.address.port ?? 'none'));
  return out;
}

test('round robin alternates exactly and weights hold smoothly (nginx: a a b a c a a for 5,1,1)', () => {
  assert.deepEqual(picks('round_robin', [peer(1), peer(2)], 6), ['1', '2', '1', '2', '1', '2']);
  assert.deepEqual(picks('round_robin', [peer(1, { weight: 5 }), peer(2), peer(3)], 7), ['1', '1', '2', '1', '3', '1', '1']);
});

test('passive health: max_fails within fail_timeout takes a server out for fail_timeout, then one try', () => {
  const a = peer(1, { maxFails: 2, failTimeout: 1000 }), b = peer(2);
  const bal = makeBalancer({ name: 'round_robin' }, [a, b]);
  recordFailure(a, 100);
  assert.ok(picks('round_robin', [a, b], 2, 200).includes('1'), 'one failure is below max_fails');
  recordFailure(a, 300);
  for (let i = 0; i < 5; i++) assert.equal(bal.pick({ tried: new Set(), now: 500, key: '' })?.server.address.port, 2);
  // After fail_timeout the server gets tried again; a success clears its failures.
  let sawA = false;
  for (let i = 0; i < 4; i++) if (bal.pick({ tried: new Set(), now: 1400, key: '' }) === a) sawA = true;
  assert.ok(sawA);
  recordSuccess(a, 1500);
  assert.equal(a.state.fails, 0);
});

test('a single server is never marked unavailable (nginx ignores max_fails for it)', () => {
  const a = peer(1);
  recordFailure(a, 100);
  recordFailure(a, 100);
  assert.deepEqual(picks('round_robin', [a], 2, 200), ['1', '1']);
});

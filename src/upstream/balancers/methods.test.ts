import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { BalanceMethod } from '../../config/types.js';
import type { Peer } from '../peer.js';
import { ipHashBytes } from './ip-hash.js';
import { makeBalancer } from './registry.js';
import { seeded, testPeer } from './fixtures.js';

const HASH: BalanceMethod = { name: 'hash', key: { raw: '$k', parts: [{ variable: 'k' }], constant: null }, consistent: false };
const CONSISTENT: BalanceMethod = { ...HASH, consistent: true };

function pickWith(method: BalanceMethod, peers: Peer[], key: string, tried: Peer[] = []): Peer | null {
  return makeBalancer(method, peers, { random: seeded(1) }).pick({ tried: new Set(tried), now: 1, key });
}

test('least_conn sends new connections to the server with fewer open ones until balanced', () => {
  const a = testPeer(1), b = testPeer(2);
  const bal = makeBalancer({ name: 'least_conn' }, [a, b]);
  a.state.active = 10;
  const order: number[] = [];
  for (let i = 0; i < 14; i++) {
    const p = bal.pick({ tried: new Set(), now: 1, key: '' }) as Peer;
    p.state.active++;
    order.push(p.server.address.port);
  }
  assert.deepEqual(order.slice(0, 10), Array(10).fill(2), 'the first ten go to the idle server');
  assert.equal(a.state.active, 12);
  assert.equal(b.state.active, 12);
});

test('least_conn compares connections relative to weight and breaks ties by weighted round robin', () => {
  const a = testPeer(1, { weight: 2 }), b = testPeer(2);
  a.state.active = 2;
  b.state.active = 1;
  const bal = makeBalancer({ name: 'least_conn' }, [a, b]);
  // 2/2 == 1/1: a tie, resolved 2:1 by weight.
  const picks = Array.from({ length: 6 }, () => (bal.pick({ tried: new Set(), now: 1, key: '' }) as Peer).server.address.port);
  assert.deepEqual(picks.filter((p) => p === 1).length, 4);
});

test('least_conn fleet adds the other members\' connections; plain least_conn ignores them', () => {
  const a = testPeer(1), b = testPeer(2), c = testPeer(3);
  a.state.active = 1;
  a.state.remote = 0;
  b.state.remote = 5;
  c.state.remote = 2;
  const fleet = makeBalancer({ name: 'least_conn', fleet: true }, [a, b, c]);
  const local = makeBalancer({ name: 'least_conn' }, [a, b, c]);
  const picks: number[] = [];
  for (let i = 0; i < 5; i++) {
    const p = fleet.pick({ tried: new Set(), now: 1, key: '' }) as Peer;
    p.state.active++;
    picks.push(p.server.address.port);
  }
  // Loads 1, 5, 2: a, then a or c, ... until the three are level at 4, 5, 4 or so.
  assert.equal(picks.filter((p) => p === 2).length, 0, 'the server busiest fleet-wide gets none');
  assert.equal(a.state.active + a.state.remote, 4);
  assert.equal(c.state.active + c.state.remote, 4);
  b.state.active = 0;
  assert.equal(local.pick({ tried: new Set(), now: 1, key: '' }), b, 'plain least_conn sees only this process\'s counts');
});

test('ip_hash hashes the first three octets of IPv4 and the whole IPv6 address', () => {
  assert.deepEqual(ipHashBytes('192.168.7.9'), [192, 168, 7]);
  assert.deepEqual(ipHashBytes('::ffff:10.1.2.3'), [10, 1, 2]);
  assert.equal(ipHashBytes('2001:db8::1').length, 16);
  assert.deepEqual(ipHashBytes('2001:db8::1').slice(0, 4), [0x20, 0x01, 0x0d, 0xb8]);
  const peers = [testPeer(1), testPeer(2), testPeer(3)];
  const p1 = pickWith({ name: 'ip_hash' }, peers, '10.20.30.1');
  assert.equal(pickWith({ name: 'ip_hash' }, peers, '10.20.30.200'), p1, 'same /24, same server');
  for (let i = 0; i < 10; i++) assert.equal(pickWith({ name: 'ip_hash' }, peers, '10.20.30.1'), p1, 'stable');
});

test('ip_hash moves a client off a down server and back when it returns', () => {
  const peers = [testPeer(1), testPeer(2), testPeer(3)];
  const home = pickWith({ name: 'ip_hash' }, peers, '172.16.5.5') as Peer;
  const other = pickWith({ name: 'ip_hash' }, peers, '172.16.5.5', [home]);
  assert.ok(other && other !== home);
  assert.equal(pickWith({ name: 'ip_hash' }, peers, '172.16.5.5'), home);
});

test('hash KEY is stable per key and spreads 1,000 keys over 3 servers within ±15%', () => {
  for (const method of [HASH, CONSISTENT]) {
    const peers = [testPeer(1), testPeer(2), testPeer(3)];
    const bal = makeBalancer(method, peers);
    const counts = new Map<Peer, number>();
    for (let i = 0; i < 1000; i++) {
      const key = `room-${i}`;
      const p = bal.pick({ tried: new Set(), now: 1, key }) as Peer;
      assert.equal(bal.pick({ tried: new Set(), now: 1, key }), p);
      counts.set(p, (counts.get(p) ?? 0) + 1);
    }
    for (const p of peers) {
      const n = counts.get(p) ?? 0;
      assert.ok(n >= 283 && n <= 383, `${method.name}${'consistent' in method && method.consistent ? ' consistent' : ''} ${p.addr}: ${n}`);
    }
  }
});

test('hash and hash consistent: an empty key is balanced by round robin (nginx 1.17.1+)', () => {
  for (const method of [HASH, CONSISTENT]) {
    const peers = [testPeer(1), testPeer(2), testPeer(3)];
    const bal = makeBalancer(method, peers);
    const ports = Array.from({ length: 6 }, () => (bal.pick({ tried: new Set(), now: 1, key: '' }) as Peer).server.address.port);
    assert.deepEqual(ports, [1, 2, 3, 1, 2, 3]);
  }
});

test('hash consistent: removing a server moves only its keys; the plain hash moves most keys', () => {
  const keys = Array.from({ length: 2000 }, (_, i) => `user-${i}`);
  const moved = (method: BalanceMethod): { moved: number; ofRemoved: number } => {
    const [a, b, c, d] = [testPeer(1), testPeer(2), testPeer(3), testPeer(4)];
    const before = makeBalancer(method, [a!, b!, c!, d!]);
    const after = makeBalancer(method, [a!, b!, c!]);
    let n = 0;
    let ofRemoved = 0;
    for (const key of keys) {
      const x = before.pick({ tried: new Set(), now: 1, key });
      const y = after.pick({ tried: new Set(), now: 1, key });
      if (x !== y) {
        n++;
        if (x === d) ofRemoved++;
      }
    }
    return { moved: n, ofRemoved };
  };
  const c = moved(CONSISTENT);
  assert.equal(c.moved, c.ofRemoved, 'only keys of the removed server move');
  assert.ok(c.moved > 2000 * 0.15 && c.moved < 2000 * 0.35, `moved ${c.moved} of 2000 (~1/4 expected)`);
  const plain = moved(HASH);
  assert.ok(plain.moved > c.moved * 1.5, `plain hash moved ${plain.moved}`);
});

test('random follows weights; random two prefers the less loaded of two', () => {
  const a = testPeer(1, { weight: 3 }), b = testPeer(2);
  const bal = makeBalancer({ name: 'random', two: false }, [a, b], { random: seeded(7) });
  let na = 0;
  for (let i = 0; i < 4000; i++) if (bal.pick({ tried: new Set(), now: 1, key: '' }) === a) na++;
  assert.ok(na > 2700 && na < 3300, `weighted 3:1 gave ${na}/4000`);
  const x = testPeer(1), y = testPeer(2);
  x.state.active = 100;
  const two = makeBalancer({ name: 'random', two: true }, [x, y], { random: seeded(9) });
  for (let i = 0; i < 20; i++) assert.equal(two.pick({ tried: new Set(), now: 1, key: '' }), y);
});

test('slow_start ramps a recovered server up from a small weight', () => {
  const a = testPeer(1, { weight: 10, slowStart: 10_000 }), b = testPeer(2, { weight: 10 });
  a.state.recoveredAt = 1000;
  const bal = makeBalancer({ name: 'round_robin' }, [a, b]);
  let early = 0;
  for (let i = 0; i < 100; i++) if (bal.pick({ tried: new Set(), now: 2000, key: '' }) === a) early++;
  let late = 0;
  for (let i = 0; i < 100; i++) if (bal.pick({ tried: new Set(), now: 20_000, key: '' }) === a) late++;
  assert.ok(early <= 10, `1s into a 10s ramp: ${early}/100`);
  assert.equal(late, 50);
});

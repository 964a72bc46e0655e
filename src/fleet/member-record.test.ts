import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { MemberRecord } from './member-record.js';
import { fleetKeys, memberId, parseMembers, rebalanceSums, remoteCounts, sameCounts } from './member-record.js';

function record(u: MemberRecord['u'], t = 0): MemberRecord {
  return { n: 'a', p: 1, h: 'h', s: 0, w: 0, t, c: 0, u };
}

test('the fleet keys share one Redis Cluster hash slot and end with the member id', () => {
  const k = fleetKeys('app:');
  assert.equal(k.members, 'app:{fleet}:members');
  assert.equal(k.memberPrefix + memberId('edge-1', 42), 'app:{fleet}:member:edge-1/42');
});

test('remote counts sum every other member per upstream server and leave this one out', () => {
  const members = parseMembers([
    'a/1', JSON.stringify(record({ ws: { '127.0.0.1:1': [3, 'up'], '127.0.0.1:2': [1, 'up'] } })),
    'b/2', JSON.stringify(record({ ws: { '127.0.0.1:1': [2, 'up'] }, other: { '127.0.0.1:1#2': [4, 'failed'] } })),
    'c/3', JSON.stringify(record({ ws: { '127.0.0.1:2': [7, 'up'] } })),
  ]);
  assert.deepEqual(members.map((m) => m.id), ['a/1', 'b/2', 'c/3']);
  const sums = remoteCounts(members, 'c/3');
  assert.deepEqual(Object.fromEntries(sums), { 'ws|127.0.0.1:1': 5, 'ws|127.0.0.1:2': 1, 'other|127.0.0.1:1#2': 4 });
});

test('records that do not parse are skipped, not fatal', () => {
  const members = parseMembers(['a/1', '{not json', 'b/2', JSON.stringify({ n: 'b' }), 'c/3', JSON.stringify(record({}))]);
  assert.deepEqual(members.map((m) => m.id), ['c/3']);
  assert.deepEqual(parseMembers(null), []);
  assert.deepEqual(Object.fromEntries(remoteCounts([{ id: 'x/1', record: record({ u: { s: [-1, 'up'] } as never }) }], 'y/2')), {});
});

test('an unchanged record is only rewritten on the heartbeat', () => {
  const a = record({ ws: { s: [1, 'up'] } }, 1);
  assert.equal(sameCounts(null, a), false);
  assert.equal(sameCounts(a, { ...a, w: 99 }), true);
  assert.equal(sameCounts(a, record({ ws: { s: [2, 'up'] } }, 1)), false);
  assert.equal(sameCounts(a, record({ ws: { s: [1, 'up'] } }, 2)), false);
});

test('rebalance sums: other members\' tunnels per server address and clients on their way back, for one upstream', () => {
  const members = parseMembers([
    'a/1', JSON.stringify({ ...record({}), r: { ws: [{ '127.0.0.1:1': 3, '127.0.0.1:2': 1 }, 2] } }),
    'b/2', JSON.stringify({ ...record({}), r: { ws: [{ '127.0.0.1:1': 4 }, 0], other: [{ '127.0.0.1:9': 5 }, 1] } }),
    'c/3', JSON.stringify({ ...record({}), r: { ws: [{ '127.0.0.1:2': 6 }, 1] } }),
    'd/4', JSON.stringify(record({})),
    'e/5', JSON.stringify({ ...record({}), r: { ws: ['junk', -3] } }),
  ]);
  const sums = rebalanceSums(members, 'c/3', 'ws');
  assert.deepEqual(Object.fromEntries(sums.servers), { '127.0.0.1:1': 7, '127.0.0.1:2': 1 });
  assert.equal(sums.members, 2, 'a and b rebalance ws; d does not, e\'s view is damaged');
  assert.equal(sums.returning, 2);
  const a = { ...record({}), r: { ws: [{ s: 1 }, 0] as const } };
  assert.equal(sameCounts(a, { ...a, r: { ws: [{ s: 2 }, 0] } }), false, 'a changed view is written at once');
});

test('a record whose upstream views are not objects is skipped: the sums never throw on another version\'s or a damaged record', () => {
  const members = parseMembers([
    'a/1', JSON.stringify({ ...record({}), u: { ws: null } }),
    'b/2', JSON.stringify({ ...record({}), u: { ws: [1, 2] } }),
    'c/3', JSON.stringify({ ...record({}), u: [] }),
    'd/4', JSON.stringify(record({ ws: { '127.0.0.1:1': [2, 'up'] } })),
  ]);
  assert.deepEqual(members.map((m) => m.id), ['d/4']);
  assert.deepEqual(Object.fromEntries(remoteCounts(members, 'x/9')), { 'ws|127.0.0.1:1': 2 });
});

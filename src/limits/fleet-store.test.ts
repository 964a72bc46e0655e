/** The pure parts of the fleet's limit store: groups of checks, outcomes, Redis keys and replies. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ReqCheck, ZoneRef } from './limit-store.js';
import { combineReq, mapReqOutcome, reqReply, splitChecks } from './fleet-store.js';
import { LimitKeys } from './fleet-scripts.js';

const zone = (name: string, fleet: boolean): ZoneRef => ({ name, kind: 'req', size: 1 << 20, keyText: '$binary_remote_addr', rate: 1000, ...(fleet ? { fleet } : {}) });
const check = (name: string, fleet: boolean, last = false): ReqCheck => ({ zone: zone(name, fleet), key: 'k', burst: 0, delay: 0, last });

test('splitChecks keeps order and each check\'s index in the request', () => {
  const { fleet, local } = splitChecks([check('a', true), check('b', false), check('c', true, true)]);
  assert.deepEqual(fleet.checks.map((c) => c.zone.name), ['a', 'c']);
  assert.deepEqual(fleet.at, [0, 2]);
  assert.deepEqual(local.checks.map((c) => c.zone.name), ['b']);
  assert.deepEqual(local.at, [1]);
});

test('outcomes of two groups: indexes mapped back, a refusal stands, the longer delay wins', () => {
  assert.deepEqual(mapReqOutcome({ rc: 'busy', index: 1, excess: 2000 }, [0, 2]), { rc: 'busy', index: 2, excess: 2000 });
  assert.deepEqual(mapReqOutcome({ rc: 'declined' }, [3]), { rc: 'declined' });
  const ok = (delay: number, index: number) => ({ rc: 'ok', delay, excess: delay, index }) as const;
  assert.deepEqual(combineReq(ok(10, 0), ok(30, 1)), ok(30, 1));
  assert.deepEqual(combineReq(ok(30, 0), ok(10, 1)), ok(30, 0));
  assert.deepEqual(combineReq(ok(0, 0), { rc: 'busy', index: 1, excess: 5 }), { rc: 'busy', index: 1, excess: 5 });
  assert.deepEqual(combineReq({ rc: 'declined' }, ok(5, 1)), ok(5, 1));
});

test('the limit_req script\'s replies, and keys that keep a binary address\'s bytes', () => {
  assert.deepEqual(reqReply([1, 0, 5000]), { rc: 'busy', index: 0, excess: 5000 });
  assert.deepEqual(reqReply([0, 250, 1500, 1]), { rc: 'ok', delay: 250, excess: 1500, index: 1 });
  assert.equal(reqReply(null), null);
  assert.equal(reqReply(-1), null);
  const keys = new LimitKeys('app:', 'app:{fleet}:member:');
  for (let i = 0; i < 2; i++) {
    // The second time from the zone's prefix made the first time.
    const key = keys.key('conn', 'perip', String.fromCharCode(10, 0, 0, 255));
    assert.deepEqual([...key.subarray(-4)], [10, 0, 0, 255]);
    assert.equal(key.subarray(0, -4).toString(), 'app:{fleet}:limit_conn:perip:');
  }
  assert.equal(keys.key('req', 'perip', 'k').toString(), 'app:{fleet}:limit_req:perip:k');
});

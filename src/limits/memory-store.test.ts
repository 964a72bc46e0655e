import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ReqCheck, ZoneRef } from './limit-store.js';
import { MemoryLimitStore } from './memory-store.js';

const T0 = 1_000_000_000;

function clock(): { now: () => number; at: (ms: number) => void } {
  let t = T0;
  return { now: () => t, at: (ms) => { t = T0 + ms; } };
}

function reqZone(name: string, rps: number, size = 1024 * 1024): ZoneRef {
  return { name, kind: 'req', size, keyText: '$binary_remote_addr', rate: rps * 1000 };
}

const one = reqZone('one', 1);

function check(zone: ZoneRef, key: string, burst: number, delay = 0, last = true): ReqCheck {
  return { zone, key, burst: burst * 1000, delay: delay * 1000, last };
}

test('limit_req: the leaky bucket in milli-requests, burst, delay (nginx arithmetic)', () => {
  const c = clock();
  const s = new MemoryLimitStore(c.now);
  // First request: a new key, excess 0, no delay.
  assert.deepEqual(s.limitReq([check(one, 'a', 2)]), { rc: 'ok', delay: 0, excess: 0, index: 0 });
  // 250 ms later: 1000 - 250 (leaked at 1 r/s) = 750 milli-requests over, delayed 750 ms.
  c.at(250);
  assert.deepEqual(s.limitReq([check(one, 'a', 2)]), { rc: 'ok', delay: 750, excess: 750, index: 0 });
  // At once again: 1750, still within burst=2.
  assert.deepEqual(s.limitReq([check(one, 'a', 2)]), { rc: 'ok', delay: 1750, excess: 1750, index: 0 });
  // Over burst: 2750 > 2000, rejected, and the bucket is not charged.
  assert.deepEqual(s.limitReq([check(one, 'a', 2)]), { rc: 'busy', index: 0, excess: 2750 });
  // nodelay: passes without delay.
  c.at(1250);
  assert.deepEqual(s.limitReq([check(one, 'a', 2, Number.MAX_SAFE_INTEGER / 1000)]), { rc: 'ok', delay: 0, excess: 1750, index: 0 });
  // delay=1: only the excess beyond one request is delayed.
  c.at(1250);
  assert.deepEqual(s.limitReq([check(one, 'b', 5, 1)]), { rc: 'ok', delay: 0, excess: 0, index: 0 });
  assert.deepEqual(s.limitReq([check(one, 'b', 5, 1)]), { rc: 'ok', delay: 0, excess: 1000, index: 0 });
  assert.deepEqual(s.limitReq([check(one, 'b', 5, 1)]), { rc: 'ok', delay: 1000, excess: 2000, index: 0 });
  // Another key is counted on its own.
  assert.equal(s.limitReq([check(one, 'c', 0)]).rc, 'ok');
  assert.equal(s.limitReq([check(one, 'c', 0)]).rc, 'busy');
});

test('limit_req: r/m rates, several limits (the largest delay wins, a refusal frees the held nodes)', () => {
  const c = clock();
  const s = new MemoryLimitStore(c.now);
  const perMinute: ZoneRef = { ...reqZone('slow', 0), rate: Math.floor(30 * 1000 / 60) };
  const fast = reqZone('fast', 10);
  const both = (key: string): ReqCheck[] => [check(fast, key, 5, 0, false), check(perMinute, key, 1, 0, true)];
  assert.deepEqual(s.limitReq(both('k')), { rc: 'ok', delay: 0, excess: 0, index: 1 });
  // 100 ms later: fast has leaked 1000 (empty again), slow has 1000 - 50 = 950: 950 * 1000 / 500 = 1900 ms.
  c.at(100);
  assert.deepEqual(s.limitReq(both('k')), { rc: 'ok', delay: 1900, excess: 950, index: 1 });
  // slow is over its burst: refused there; fast was looked up first and is not charged.
  assert.deepEqual(s.limitReq(both('k')), { rc: 'busy', index: 1, excess: 1950 });
  assert.deepEqual(s.limitReq([check(fast, 'k', 5)]), { rc: 'ok', delay: 100, excess: 1000, index: 0 });
});

test('limit_req: a full zone drops its oldest key; limit_conn counts, refuses over the limit or when full, releases', () => {
  const c = clock();
  const s = new MemoryLimitStore(c.now);
  const small = reqZone('small', 1, 32768);
  // 32 KiB: 7 pages once the slab's page descriptors are counted, one of them for the zone's own
  // tree and log context: 6 pages of 32 nodes of 128 bytes = 192 keys.
  for (let i = 0; i < 192; i++) assert.equal(s.limitReq([check(small, `k${i}`, 0)]).rc, 'ok');
  assert.equal(s.limitReq([check(small, 'k0', 0)]).rc, 'busy', 'k0 is still known');
  assert.equal(s.limitReq([check(small, 'new', 0)]).rc, 'ok', 'the oldest key (k1) makes room');
  assert.equal(s.limitReq([check(small, 'k1', 0)]).rc, 'ok', 'k1 was forgotten');

  const perip: ZoneRef = { name: 'perip', kind: 'conn', size: 32768, keyText: '$binary_remote_addr', rate: 0 };
  const peruser: ZoneRef = { ...perip, name: 'peruser' };
  assert.deepEqual(s.acquire([{ zone: perip, key: 'a', conn: 2 }, { zone: peruser, key: 'u', conn: 1 }]), { ok: true });
  assert.deepEqual(s.acquire([{ zone: perip, key: 'a', conn: 2 }, { zone: peruser, key: 'u', conn: 1 }]), { ok: false, index: 1, full: false });
  assert.equal(s.connections(perip, 'a'), 1, 'the refusal released what it had counted');
  s.release([{ zone: perip, key: 'a' }, { zone: peruser, key: 'u' }]);
  assert.equal(s.connections(perip, 'a'), 0);
  // 6 pages of 64 nodes of 64 bytes (the zone's first keys, a and u, have left it).
  for (let i = 0; i < 384; i++) assert.deepEqual(s.acquire([{ zone: perip, key: `c${i}`, conn: 1 }]), { ok: true });
  assert.deepEqual(s.acquire([{ zone: perip, key: 'one more', conn: 1 }]), { ok: false, index: 0, full: true });
});

test('limit_req: a zone kept across a reload leaks at the rate of the new config; another size is a new zone', () => {
  const c = clock();
  const s = new MemoryLimitStore(c.now);
  assert.equal(s.limitReq([check(one, 'a', 5)]).rc, 'ok');
  assert.deepEqual(s.limitReq([check(one, 'a', 5)]), { rc: 'ok', delay: 1000, excess: 1000, index: 0 });
  // The same zone at 10 r/s: the key's excess (1000) is kept and leaks ten times faster: 100 ms
  // later it is empty again, plus this request.
  const faster: ZoneRef = { ...one, rate: 10_000 };
  c.at(100);
  assert.deepEqual(s.limitReq([check(faster, 'a', 5)]), { rc: 'ok', delay: 100, excess: 1000, index: 0 });
  // Another size: a zone of its own, the key is new there.
  assert.deepEqual(s.limitReq([check({ ...one, size: 2 * 1024 * 1024 }, 'a', 5)]), { rc: 'ok', delay: 0, excess: 0, index: 0 });
});

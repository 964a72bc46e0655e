/** `sticky learn`'s table in memory: timeout since the last lookup, capacity from the zone size, keys in Redis. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { StickyLearn } from '../config/types.js';
import { StickySessions, capacityOf, sessionKey } from './sticky-learn.js';

const learn = (size = 1 << 20, timeout = 1000): StickyLearn => ({ create: [], lookup: [], zone: 'z', size, timeout, header: false, sync: false });

test('a session lives `timeout` after its last lookup', async () => {
  let now = 1_000_000;
  const s = new StickySessions(() => null, () => now);
  const l = learn();
  s.learn(l, 'abc', '10.0.0.1:80');
  now += 900;
  assert.equal(await s.lookup(l, 'abc'), '10.0.0.1:80');
  now += 900;
  assert.equal(await s.lookup(l, 'abc'), '10.0.0.1:80', 'the lookup renewed it');
  now += 1000;
  assert.equal(await s.lookup(l, 'abc'), null);
  assert.equal(await s.lookup(l, 'other'), null);
  // Learnt again (a new response): the new server.
  s.learn(l, 'abc', '10.0.0.2:80');
  s.learn(l, 'abc', '10.0.0.3:80');
  assert.equal(await s.lookup(l, 'abc'), '10.0.0.3:80');
});

test('a full zone drops its least recently used session; the size gives nginx Plus\'s 4000 a megabyte', async () => {
  assert.equal(capacityOf(1 << 20), 4000);
  assert.equal(capacityOf(32 * 1024), 125);
  const s = new StickySessions(() => null, () => 0);
  const l = learn(32 * 1024, 60_000);
  for (let i = 0; i < 125; i++) s.learn(l, `s${i}`, 'a:1');
  assert.equal(await s.lookup(l, 's0'), 'a:1');
  s.learn(l, 'new', 'b:1');
  assert.equal(s.size('z'), 125);
  assert.equal(await s.lookup(l, 's1'), null, 'the least recently used went');
  assert.equal(await s.lookup(l, 's0'), 'a:1');
  assert.equal(await s.lookup(l, 'new'), 'b:1');
});

test('Redis keys keep the value\'s bytes', () => {
  assert.equal(sessionKey('app:', 'sessions', 'x\u00ff').toString('latin1'), 'app:{fleet}:sticky:sessions:x\u00ff');
});

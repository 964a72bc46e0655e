import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SessionStore } from './tls-session-cache.js';

test('a session store drops expired sessions and, when full, the oldest', () => {
  const s = new SessionStore(2);
  s.set('a', Buffer.from('A'), 100, 0);
  s.set('b', Buffer.from('B'), 200, 0);
  assert.equal(s.get('a', 50)?.toString(), 'A');
  s.set('c', Buffer.from('C'), 300, 60);
  assert.deepEqual([s.get('a', 60), s.get('b', 60)?.toString(), s.get('c', 60)?.toString()], [null, 'B', 'C']);
  assert.equal(s.get('b', 200), null, 'expired at its time');
  assert.equal(s.size, 1);
});

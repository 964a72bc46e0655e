import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import { delay, once, waitFor, withTimeout } from './wait.js';

test('withTimeout passes results and errors through, and names what timed out', async () => {
  assert.equal(await withTimeout(Promise.resolve(7), 100, 'seven'), 7);
  await assert.rejects(withTimeout(Promise.reject(new Error('boom')), 100, 'x'), /boom/);
  await assert.rejects(withTimeout(new Promise(() => undefined), 30, 'the 101 response'), {
    message: 'timed out after 30 ms waiting for the 101 response',
  });
});

test('waitFor returns the first truthy value, retries throwing predicates, and times out', async () => {
  let n = 0;
  assert.equal(await waitFor(() => (++n >= 3 ? `n=${n}` : null), { intervalMs: 1 }), 'n=3');
  let m = 0;
  assert.equal(await waitFor(async () => { if (++m < 2) throw new Error('not yet'); return true; }, { intervalMs: 1 }), true);
  await assert.rejects(waitFor(() => { throw new Error('still broken'); }, { timeoutMs: 30, what: 'the fix' }),
    /timed out after 30 ms waiting for the fix \(last error: still broken\)/);
  await assert.rejects(waitFor(() => false, { timeoutMs: 20 }), /waiting for condition/);
});

test('once resolves with the event arguments, rejects on error or time-out, and cleans up', async () => {
  const emitter = new EventEmitter();
  const got = once(emitter, 'ping', 1000);
  emitter.emit('ping', 1, 'two');
  assert.deepEqual(await got, [1, 'two']);
  const failed = once(emitter, 'ping', 1000);
  emitter.emit('error', new Error('socket broke'));
  await assert.rejects(failed, /socket broke/);
  await assert.rejects(once(emitter, 'never', 20), /timed out after 20 ms waiting for 'never'/);
  assert.equal(emitter.listenerCount('ping'), 0);
  assert.equal(emitter.listenerCount('error'), 0);
  const start = Date.now();
  await delay(20);
  assert.ok(Date.now() - start >= 15);
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { monotonicNow, skipTime } from './clock.js';

test('the proxy clock is monotonic, moves forward by what a test skips, and never back', () => {
  const before = monotonicNow();
  skipTime(60_000);
  const after = monotonicNow();
  assert.ok(after - before >= 60_000, `${after - before} ms`);
  const real = performance.now();
  assert.ok(monotonicNow() - real >= 60_000, 'ahead of performance.now() by what was skipped');
  assert.throws(() => skipTime(-1), /only moves forward/);
  assert.throws(() => skipTime(Number.NaN), /only moves forward/);
  assert.ok(monotonicNow() >= after);
});

/** The close budget of websocket_rebalance: the rate, a few at a time, never more than the rate in any second. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CloseBudget } from './close-budget.js';

/** Asks every `tickMs` for `wanted` closes over `ms`; the times of the closes granted. */
function run(budget: CloseBudget, tickMs: number, ms: number, wanted: number, start = 0): number[] {
  const times: number[] = [];
  for (let now = start; now <= start + ms; now += tickMs) for (let n = budget.take(wanted, now); n > 0; n--) times.push(now);
  return times;
}

function maxInAnySecond(times: readonly number[]): number {
  let max = 0;
  for (const t of times) max = Math.max(max, times.filter((u) => u >= t && u < t + 1000).length);
  return max;
}

test('10/s asked every 250 ms: close to 10 a second, a few per tick, never more than 10 in any second', () => {
  const budget = new CloseBudget(10, 250, 0);
  const times = run(budget, 250, 10_000, 1000);
  assert.ok(times.length >= 75 && times.length <= 101, `${times.length} closes in 10 s`);
  assert.ok(maxInAnySecond(times) <= 10);
  for (let t = 0; t <= 10_000; t += 250) assert.ok(times.filter((u) => u === t).length <= 4, 'a few per tick, not a herd');
});

test('a fractional rate (a fleet share of 2.5/s) and a slow one (1/m)', () => {
  const times = run(new CloseBudget(2.5, 250, 0), 250, 20_000, 100);
  assert.ok(times.length >= 30 && times.length <= 51, `${times.length} closes in 20 s`);
  assert.ok(maxInAnySecond(times) <= 2);
  const slow = run(new CloseBudget(1 / 60, 250, 0), 250, 120_000, 100);
  assert.ok(slow.length >= 2 && slow.length <= 3, `${slow.length} closes in 2 min`);
});

test('nothing wanted for a long time: the bucket does not fill beyond a tick, and no second sees more than the rate', () => {
  const budget = new CloseBudget(20, 250, 0);
  assert.equal(budget.take(0, 0), 0);
  assert.equal(budget.take(100, 60_000), 6, 'one tick of 20/s (5) plus one');
  const times = [...new Array<number>(6).fill(60_000), ...run(budget, 250, 2000, 100, 60_250)];
  assert.ok(maxInAnySecond(times) <= 20);
});

test('a new rate (a fleet share moved) still counts the closes of the last second', () => {
  const budget = new CloseBudget(4, 250, 0);
  const times = run(budget, 250, 750, 100);
  assert.equal(times.length, 4);
  budget.setRate(6, 1000);
  assert.equal(budget.recent(1000), 4);
  const more = budget.take(100, 1000) + budget.take(100, 1010);
  assert.ok(more >= 1 && more <= 2, `six in the second, four of them already made: ${more} more`);
});

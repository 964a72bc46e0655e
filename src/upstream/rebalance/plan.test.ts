/** websocket_rebalance's decisions: which servers give up tunnels, how many, and each instance's share of the rate. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { instanceRate, localPart, planRebalance, shares, wholeCloses, withReturning, withinBudget } from './plan.js';
import type { ServerLoad } from './plan.js';

function loads(...counts: number[]): ServerLoad[] {
  return counts.map((count, i) => ({ addr: `s${i + 1}`, weight: 1, count }));
}

test('a fifth server with no tunnel: two leave each of the four others (40 tunnels, share 8)', () => {
  const plan = planRebalance(loads(10, 10, 10, 10, 0), 0.2);
  assert.equal(plan.balanced, false);
  assert.deepEqual([...plan.moves], [['s1', 2], ['s2', 2], ['s3', 2], ['s4', 2]]);
  assert.equal(plan.total, 8);
});

test('within the tolerance, or within one tunnel of the share: balanced, nothing moves', () => {
  assert.deepEqual(planRebalance(loads(9, 8, 8, 8, 7), 0.2), { balanced: true, moves: new Map(), total: 0 });
  // 2 against a share of 1.2 is 67% over, but less than one tunnel: no churn for a fraction.
  assert.equal(planRebalance(loads(2, 1, 1, 1, 1), 0.2).balanced, true);
  assert.equal(planRebalance(loads(0, 0, 0), 0.2).balanced, true);
  assert.equal(planRebalance(loads(7), 0.2).balanced, true, 'one server: nowhere to move to');
});

test('a server below its share makes the upstream unbalanced; the most loaded give up the surplus', () => {
  // Share 8.2: the fifth is 39% below; no server is a whole tunnel above, but 3.2 are over in all.
  const plan = planRebalance(loads(9, 9, 9, 9, 5), 0.2);
  assert.equal(plan.balanced, false);
  assert.equal(plan.total, 3);
  assert.ok([...plan.moves.values()].every((n) => n === 1));
});

test('the most loaded server gives up the most', () => {
  const plan = planRebalance(loads(20, 10, 10, 0), 0.2);
  // Share 10: 10 over, all from s1.
  assert.deepEqual([...plan.moves], [['s1', 10]]);
  const two = planRebalance(loads(14, 12, 8, 6), 0);
  // Share 10: s1 4 over, s2 2 over; s1 first.
  assert.deepEqual([...two.moves], [['s1', 4], ['s2', 2]]);
});

test('weights: a server of weight 2 holds twice the share of the others', () => {
  const servers = [{ addr: 'a', weight: 2, count: 20 }, { addr: 'b', weight: 1, count: 10 }, { addr: 'c', weight: 1, count: 10 }];
  assert.deepEqual(shares(servers), [20, 10, 10]);
  assert.equal(planRebalance(servers, 0).balanced, true);
  const off = planRebalance([{ addr: 'a', weight: 2, count: 10 }, { addr: 'b', weight: 1, count: 15 }, { addr: 'c', weight: 1, count: 15 }], 0.2);
  assert.deepEqual([...off.moves], [['b', 5], ['c', 5]]);
});

test('tolerance 0: any whole tunnel over the share moves', () => {
  assert.equal(planRebalance(loads(11, 9), 0).total, 1);
  assert.equal(planRebalance(loads(11, 9), 0.2).total, 0);
});

test('local part: with local counts only it is the plan; with a fleet, each instance closes its fraction', () => {
  const plan = planRebalance(loads(12, 12, 12, 0), 0.2);
  assert.deepEqual([...plan.moves], [['s1', 3], ['s2', 3], ['s3', 3]]);
  const fleet = new Map([['s1', 12], ['s2', 12], ['s3', 12], ['s4', 0]]);
  assert.deepEqual(localPart(plan, fleet, fleet), new Map(plan.moves));
  // Three instances: this one holds 4 of each server's 12, a third.
  const mine = new Map([['s1', 4], ['s2', 4], ['s3', 4], ['s4', 0]]);
  const part = localPart(plan, fleet, mine);
  assert.deepEqual([...part.values()], [1, 1, 1]);
  // Fleet counts a moment older than the local ones: never more than the whole plan.
  assert.deepEqual(localPart(plan, new Map([['s1', 2]]), new Map([['s1', 4]])).get('s1'), 3);
});

test('instance rate: max_rate times the share of the excess; the instances add up to max_rate', () => {
  assert.equal(instanceRate(10, 9, 9, 1, 1), 10, 'alone: the whole rate');
  assert.equal(instanceRate(10, 0, 9, 1, 1), 0, 'nothing to close here: no rate');
  // Three instances holding 1/2, 1/3 and 1/6 of what must move.
  const rates = [instanceRate(12, 3, 6, 1, 3), instanceRate(12, 2, 6, 1, 3), instanceRate(12, 1, 6, 1, 3)];
  assert.deepEqual(rates, [6, 4, 2]);
  assert.equal(rates.reduce((a, b) => a + b, 0), 12);
  assert.equal(instanceRate(12, 3, 6, 4, 3), 1.5, 'worker processes split the instance share');
  assert.equal(instanceRate(12, 2, 0, 1, 3), 4, 'no fleet total known: an even split over the live instances');
  assert.equal(instanceRate(12, 9, 6, 1, 1), 12, 'never more than max_rate');
});

test('whole closes: fractions round up with their probability, never beyond the tunnels held', () => {
  const part = new Map([['a', 1.25], ['b', 0.5], ['c', 7]]);
  const local = new Map([['a', 5], ['b', 5], ['c', 3]]);
  assert.deepEqual(wholeCloses(part, local, () => 0), new Map([['a', 1], ['c', 3]]));
  assert.deepEqual(wholeCloses(part, local, () => 0.99), new Map([['a', 2], ['b', 1], ['c', 3]]));
});

test('within budget: the server with the most closes wanted goes first, one at a time', () => {
  const wanted = new Map([['a', 3], ['b', 1], ['c', 2]]);
  assert.deepEqual(withinBudget(wanted, 0), new Map());
  assert.deepEqual(withinBudget(wanted, 1), new Map([['a', 1]]));
  assert.deepEqual(withinBudget(wanted, 3), new Map([['a', 2], ['c', 1]]));
  assert.deepEqual(withinBudget(wanted, 100), wanted);
});

test('clients on their way back are placed as least_conn would: on the least loaded, by weight', () => {
  assert.deepEqual(withReturning(loads(8, 8, 8, 8, 0), 8).map((l) => l.count), [8, 8, 8, 8, 8]);
  assert.deepEqual(withReturning(loads(9, 9, 9, 9, 0), 5).map((l) => l.count), [9, 9, 9, 9, 5]);
  const weighted = withReturning([{ addr: 'a', weight: 3, count: 0 }, { addr: 'b', weight: 1, count: 0 }], 8);
  assert.deepEqual(weighted.map((l) => l.count), [6, 2]);
  assert.equal(planRebalance(withReturning(loads(8, 8, 8, 8, 0), 8), 0.2).balanced, true);
});

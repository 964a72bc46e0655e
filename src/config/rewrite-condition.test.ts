/** The `if (...)` condition reader: every form nginx accepts, and its words for what it refuses. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BuildContext } from './build-context.js';
import { Problems } from './problems.js';
import { parseCondition } from './rewrite-condition.js';
import type { RewriteCondition } from './types.js';

function read(...args: string[]): { condition: RewriteCondition | null; problems: string[] } {
  const problems = new Problems();
  const cx = new BuildContext(problems, '/');
  const condition = parseCondition({ name: 'if', args, block: [], file: 'f', line: 1, endLine: 1 }, cx);
  return { condition, problems: problems.list.map((p) => p.message) };
}

test('a variable alone, with the parentheses apart or touching', () => {
  for (const args of [['($a)'], ['(', '$a', ')'], ['($a', ')'], ['(', '$a)']]) {
    const { condition } = read(...args);
    assert.equal(condition?.kind, 'value', args.join(' '));
    assert.equal(condition.kind === 'value' && condition.value.raw, '$a');
  }
});

test('comparisons: = and != with a value that may hold variables', () => {
  const eq = read('($request_method', '=', 'POST)').condition;
  assert.ok(eq?.kind === 'compare');
  assert.equal(eq.negate, false);
  assert.equal(eq.other.constant, 'POST');
  const ne = read('(', '$a', '!=', 'x$b', ')').condition;
  assert.ok(ne?.kind === 'compare');
  assert.equal(ne.negate, true);
  assert.deepEqual(ne.other.parts, [{ text: 'x' }, { variable: 'b' }]);
  // A quoted empty value: `if ($a = "")`.
  const empty = read('($a', '=', '', ')').condition;
  assert.ok(empty?.kind === 'compare');
  assert.equal(empty.other.constant, '');
});

test('regex operators: ~ and !~ keep case, ~* and !~* ignore it; a quoted regex may hold spaces', () => {
  const cases: [string, boolean, boolean][] = [['~', false, false], ['~*', true, false], ['!~', false, true], ['!~*', true, true]];
  for (const [op, caseless, negate] of cases) {
    const c = read('($a', op, '^a b)').condition;
    assert.ok(c?.kind === 'regex', op);
    assert.equal(c.negate, negate, op);
    assert.equal(c.regex.flags.includes('i'), caseless, op);
    assert.equal(c.source, '^a b');
    assert.equal(c.regex.test('A b'), caseless, op);
  }
});

test('file tests, each with its negation', () => {
  for (const test of ['f', 'd', 'e', 'x']) {
    for (const negate of [false, true]) {
      const c = read(`(${negate ? '!' : ''}-${test}`, '$request_filename)').condition;
      assert.deepEqual(c?.kind === 'file' ? [c.test, c.negate, c.path.raw] : null, [test, negate, '$request_filename']);
    }
  }
});

test("nginx's messages for what is not a condition", () => {
  const cases: [string[], string][] = [
    [['a'], 'invalid condition "a"'],
    [['(a)'], 'invalid condition "a"'],
    [['($a', 'b)'], 'invalid condition "$a"'],
    [['($a', '=', 'b', 'c)'], 'invalid condition "$a"'],
    [['($a', '<', 'b)'], 'unexpected "<" in condition'],
    [['(-f', 'a', 'b)'], 'invalid condition "-f"'],
    [['(-q', 'a)'], 'invalid condition "-q"'],
    [['(!-q', 'a)'], 'invalid condition "!-q"'],
    [['($a'], 'invalid condition "$a"'],
    [['()'], 'invalid condition ")"'],
    [['$', ')'], 'invalid condition "$"'],
  ];
  for (const [args, message] of cases) {
    const r = read(...args);
    assert.equal(r.condition, null, args.join(' '));
    assert.deepEqual(r.problems, [message], args.join(' '));
  }
});

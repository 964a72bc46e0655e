import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileComplexValue } from './complex-value.js';

test('text and variables, $name and ${name}, lower-cased names', () => {
  const r = compileComplexValue('a$Host-${remote_addr}b$1$23');
  assert.ok(r.ok);
  assert.deepEqual(r.value.parts, [
    { text: 'a' }, { variable: 'host' }, { text: '-' }, { variable: 'remote_addr' }, { text: 'b' },
    { variable: '1' }, { variable: '2' }, { text: '3' },
  ]);
  assert.equal(r.value.constant, null);
  assert.equal(r.value.raw, 'a$Host-${remote_addr}b$1$23');
  assert.deepEqual(r.variables, ['host', 'remote_addr', '1', '2']);
});

test('constants', () => {
  const r = compileComplexValue('upgrade');
  assert.ok(r.ok);
  assert.equal(r.value.constant, 'upgrade');
  assert.deepEqual(r.value.parts, [{ text: 'upgrade' }]);
  const empty = compileComplexValue('');
  assert.ok(empty.ok);
  assert.equal(empty.value.constant, '');
  assert.deepEqual(empty.value.parts, []);
});

test('malformed references use nginx messages', () => {
  const cases: [string, string][] = [
    ['a$', 'invalid variable name'],
    ['$ x', 'invalid variable name'],
    ['${}', 'invalid variable name'],
    ['${host', 'the closing bracket in "host" variable is missing'],
    ['${', 'invalid variable name'],
  ];
  for (const [raw, message] of cases) {
    const r = compileComplexValue(raw);
    assert.equal(r.ok, false, raw);
    assert.equal(r.ok ? '' : r.message, message, raw);
  }
});

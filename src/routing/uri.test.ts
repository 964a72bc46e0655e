import { test } from 'node:test';
import assert from 'node:assert/strict';
import { normalizeUri, originForm } from './uri.js';

test('normalizeUri decodes, merges slashes and resolves dot segments like nginx', () => {
  const cases: [string, string | null][] = [
    ['/', '/'],
    ['/a//b///c', '/a/b/c'],
    ['/a/./b/../c', '/a/c'],
    ['/a/b/..', '/a/'],
    ['/a/.', '/a/'],
    ['/%61%62c', '/abc'],
    ['/a%2Fb', '/a/b'],
    ['/x/', '/x/'],
    ['/.well-known/a..b/..c.', '/.well-known/a..b/..c.'],
    ['/..', null],
    ['/a/../../b', null],
    ['/%zz', null],
    ['/a%00b', null],
    ['http://example.com/p//q', '/p/q'],
    ['http://example.com', '/'],
    ['relative', null],
  ];
  for (const [input, want] of cases) assert.equal(normalizeUri(input), want, input);
});

test('merge_slashes off keeps repeated slashes; ".." still removes one segment, an empty one too', () => {
  const cases: [string, string | null][] = [
    ['/a//b///c', '/a//b///c'],
    ['//x', '//x'],
    ['/a//../b', '/a/b'],
    ['/a%2F%2Fb', '/a//b'],
  ];
  for (const [input, want] of cases) assert.equal(normalizeUri(input, false), want, input);
});

test('originForm strips scheme and authority from an absolute-form target', () => {
  assert.equal(originForm('/a?b=1'), '/a?b=1');
  assert.equal(originForm('http://h:8080/a?b=1'), '/a?b=1');
  assert.equal(originForm('http://h?x'), '/?x');
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileRegex } from './regex.js';

function ok(source: string, caseless = false): RegExp {
  const r = compileRegex(source, caseless);
  assert.ok(r.ok, `${source}: ${r.ok ? '' : r.message}`);
  return r.regex;
}

test('plain PCRE works as a JS RegExp; ~* is caseless', () => {
  assert.ok(ok('^/api/(\\d+)$').test('/api/42'));
  assert.ok(!ok('\\.PNG$').test('/a.png'));
  assert.ok(ok('\\.PNG$', true).test('/a.png'));
});

test('named groups: (?P<name>) and (?<name>) become JS named groups', () => {
  assert.equal(ok('^/u/(?P<user>[a-z]+)$').exec('/u/ann')!.groups!['user'], 'ann');
  assert.equal(ok('^/u/(?<user>[a-z]+)$').exec('/u/bob')!.groups!['user'], 'bob');
  assert.ok(ok('(?P<c>a)(?P=c)').test('aa'));
});

test('leading inline flags and \\A \\z anchors', () => {
  assert.ok(ok('(?i)^/ABC').test('/abc'));
  assert.ok(ok('\\A/x\\z').test('/x'));
  assert.ok(!ok('\\A/x\\z').test('/x/y'));
  assert.ok(ok('[\\A]').test('A'));
});

test('a ] first in a class is literal, as in PCRE', () => {
  assert.ok(ok('[]a]').test(']'));
  assert.ok(ok('[^]a]').test('b'));
});

test('errors name the regex and carry the engine message', () => {
  const r = compileRegex('^/(unclosed', false);
  assert.equal(r.ok, false);
  assert.equal(r.ok ? '' : r.message, 'invalid regular expression "^/(unclosed": Unterminated group');
});

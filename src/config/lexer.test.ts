import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tokenize, type Token } from './lexer.js';

function words(text: string): string[] {
  return tokenize(text).map((t: Token) => (t.kind === 'word' ? `w:${t.value}` : t.kind === 'error' ? `error:${t.message}` : t.kind));
}

test('words, punctuation and line numbers', () => {
  const toks = tokenize('events {\n  worker_connections 10;\n}\n');
  assert.deepEqual(toks.map((t) => [t.kind, 'value' in t ? t.value : '', t.line]), [
    ['word', 'events', 1], ['{', '', 1], ['word', 'worker_connections', 2], ['word', '10', 2], [';', '', 2],
    ['}', '', 3], ['eof', '', 4],
  ]);
});

test('comments run to the end of the line; # inside a word is text', () => {
  assert.deepEqual(words('a b#c; # comment ; {\nd;'), ['w:a', 'w:b#c', ';', 'w:d', ';', 'eof']);
});

test('quotes: ; and { inside quotes are text; empty strings are words', () => {
  assert.deepEqual(words(`add_header X "a; {b}" '';`), ['w:add_header', 'w:X', 'w:a; {b}', 'w:', ';', 'eof']);
});

test('escapes: \\" \\\' \\\\ \\n \\r \\t are unescaped, other sequences kept as written', () => {
  const toks = tokenize(String.raw`x "a\"b" 'c\'d' e\\f "g\nh\ti\rj" ~^/\d+\.png$;`);
  const values = toks.filter((t) => t.kind === 'word').map((t) => (t as { value: string }).value);
  assert.deepEqual(values, ['x', 'a"b', "c'd", 'e\\f', 'g\nh\ti\rj', '~^/\\d+\\.png$']);
});

test('${var} inside a bare word does not open a block; } does not end a bare word', () => {
  assert.deepEqual(words('return 200 ${host}x;'), ['w:return', 'w:200', 'w:${host}x', ';', 'eof']);
  assert.deepEqual(words('a b}'), ['w:a', 'eof']);
  const last = tokenize('a b}').at(-1)!;
  assert.equal(last.kind, 'eof');
  assert.equal((last as { incomplete: boolean }).incomplete, true);
});

test('a word ends at { and ;', () => {
  assert.deepEqual(words('location /{return 204;}'), ['w:location', 'w:/', '{', 'w:return', 'w:204', ';', '}', 'eof']);
});

test('a quoted word must be followed by space, ; or {', () => {
  assert.deepEqual(words('a "b"c;'), ['w:a', 'w:b', 'error:unexpected "c"']);
  assert.equal(tokenize('a\n"b"c;').at(-1)!.line, 2);
});

test('an unterminated quote reaches the end of the text incomplete', () => {
  const last = tokenize('a "b;\n').at(-1)!;
  assert.equal(last.kind, 'eof');
  assert.equal((last as { incomplete: boolean }).incomplete, true);
});

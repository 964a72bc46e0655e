import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SsiTokenizer, type SsiToken } from './parser.js';

/** The tokens of `chunks` fed in order, with adjacent texts joined (how they split is free). */
function tokens(chunks: readonly string[], valueLength = 255): SsiToken[] {
  const t = new SsiTokenizer(valueLength);
  const out: SsiToken[] = [];
  for (const c of chunks) t.feed(c, out);
  t.end(out);
  const joined: SsiToken[] = [];
  for (const tok of out) {
    const last = joined.at(-1);
    if (tok.kind === 'text' && last?.kind === 'text') joined[joined.length - 1] = { kind: 'text', text: last.text + tok.text };
    else joined.push(tok);
  }
  return joined;
}

const PAGE = 'a<b><!-- c --><!--# echo var="x" default=\'d"q\' --><!--#endif-->< !--#x--><!--# set var="v" value="a\\"b" -->tail<!-';

test('commands, quotes and escapes, and text that only looks like a start', () => {
  assert.deepEqual(tokens([PAGE]), [
    { kind: 'text', text: 'a<b><!-- c -->' },
    { kind: 'command', command: { name: 'echo', params: [['var', 'x'], ['default', 'd"q']], raw: '<!--# echo var="x" default=\'d"q\' -->' } },
    { kind: 'command', command: { name: 'endif', params: [], raw: '<!--#endif-->' } },
    { kind: 'text', text: '< !--#x-->' },
    { kind: 'command', command: { name: 'set', params: [['var', 'v'], ['value', 'a\\"b']], raw: '<!--# set var="v" value="a\\"b" -->' } },
    { kind: 'text', text: 'tail<!-' },
  ]);
});

test('the same tokens whatever the chunk boundaries', () => {
  const whole = tokens([PAGE]);
  for (let i = 0; i <= PAGE.length; i++) {
    for (let j = i; j <= PAGE.length; j += 7) assert.deepEqual(tokens([PAGE.slice(0, i), PAGE.slice(i, j), PAGE.slice(j)]), whole, `split at ${i}, ${j}`);
  }
  assert.deepEqual(tokens([...PAGE]), whole);
});

test('malformed commands: nginx\'s messages, the rest skipped to -->', () => {
  assert.deepEqual(tokens(['<!--# echo var=x -->after']), [
    { kind: 'error', message: 'unexpected "x" symbol before value of "var" parameter in "echo" SSI command' },
    { kind: 'text', text: 'after' },
  ]);
  assert.deepEqual(tokens([`<!--# ${'c'.repeat(32)} -->`]), [{ kind: 'error', message: `the "${'c'.repeat(31)}c..." SSI command is too long` }]);
  assert.equal(tokens(['<!--# set var="v" value="12345" -->'], 4)[0]?.kind, 'error');
  // An unfinished command at the end is dropped.
  assert.deepEqual(tokens(['x<!--# echo var="y"']), [{ kind: 'text', text: 'x' }]);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_BLOCK_DEPTH, parseConfigText } from './parser.js';
import { Problems } from './problems.js';

function parse(text: string, commandLine = false) {
  const problems = new Problems();
  const tree = parseConfigText(text, '/x.conf', problems, { commandLine });
  return { tree, problems: problems.list.map((p) => `${p.message} @${p.line}`) };
}

test('builds a tree with names, args, blocks and lines', () => {
  const { tree, problems } = parse('events {}\nhttp {\n  server {\n    listen 80;\n  }\n}\n');
  assert.deepEqual(problems, []);
  assert.equal(tree.length, 2);
  assert.deepEqual(tree[0], { name: 'events', args: [], block: [], file: '/x.conf', line: 1, endLine: 1 });
  const http = tree[1]!;
  assert.equal(http.line, 2);
  assert.equal(http.endLine, 6);
  const server = http.block![0]!;
  assert.equal(server.endLine, 5);
  assert.deepEqual(server.block![0], { name: 'listen', args: ['80'], block: null, file: '/x.conf', line: 4, endLine: 4 });
});

test('syntax errors use nginx wording and lines', () => {
  const cases: [string, string][] = [
    ['events {}\n}\n', 'unexpected "}" @2'],
    ['http {\n  server {\n', 'unexpected end of file, expecting "}" @3'],
    ['http {\n  listen 80', 'unexpected end of file, expecting ";" or "}" @2'],
    ['events {}\n;\n', 'unexpected ";" @2'],
    ['events {}\n{\n}\n', 'unexpected "{" @2'],
    ['http {\n  listen 80 }\n', 'unexpected "}" @2'],
    ['http {\n  listen 80}\n', 'unexpected end of file, expecting ";" or "}" @3'],
    ['http { server { listen 80; }\n  listen "a"b;\n}', 'unexpected "b" @2'],
    ['http {\n  x "unterminated;\n}\n', 'unexpected end of file, expecting ";" or "}" @4'],
  ];
  for (const [text, want] of cases) assert.deepEqual(parse(text).problems, [want], JSON.stringify(text));
});

test('a `}` that follows words inside a block is unexpected', () => {
  assert.deepEqual(parse('http {\n  a b\n  }\n').problems, ['unexpected "}" @3']);
  assert.deepEqual(parse('http { a "b" }').problems, ['unexpected "}" @1']);
});

test('-g text reports the end of input as nginx does', () => {
  assert.deepEqual(parse('worker_processes 2', true).problems, ['unexpected end of parameter, expecting ";" @1']);
});

test('parsing stops at the first syntax error but keeps what came before', () => {
  const { tree, problems } = parse('events {}\ninclude a.conf;\n}\nhttp {}\n');
  assert.deepEqual(problems, ['unexpected "}" @3']);
  assert.deepEqual(tree.map((d) => d.name), ['events', 'include']);
});

test('syntax errors carry a hint about what is missing', () => {
  const problems = new Problems();
  parseConfigText('events { worker_connections 10 }', '/x.conf', problems);
  assert.equal(problems.list[0]!.hint, '"worker_connections" before it is missing its ";"');
  const eof = new Problems();
  parseConfigText('http {\n', '/x.conf', eof);
  assert.equal(eof.list[0]!.hint, 'a block is not closed; add the missing "}"');
});

test('a file is not read past MAX_BLOCK_DEPTH open blocks: the block one too deep is reported, nothing after it', () => {
  const depth = MAX_BLOCK_DEPTH + 5;
  const { tree, problems } = parse(`${'a {\n'.repeat(depth)}${'}'.repeat(depth)}\nb;\n`);
  assert.deepEqual(problems, [`too many nested blocks (more than ${MAX_BLOCK_DEPTH}) @${MAX_BLOCK_DEPTH + 1}`]);
  assert.equal(tree.length, 1);
});

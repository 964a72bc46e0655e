/**
 * `npm test` starts with scripts/check-cycles.mjs: modules under src/ that import each other in a
 * cycle (type imports included) fail the run before any test, with the chain to break.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { ROOT, runNode } from '../helpers/cli-process.js';
import { tempDir } from '../helpers/temp.js';

const CHECK = join(ROOT, 'scripts', 'check-cycles.mjs');

test('src/ has no import cycle', async () => {
  const res = await runNode(CHECK, []);
  assert.equal(res.code, 0, res.stderr);
  assert.match(res.stdout, /^sluice cycles: no import cycle among \d+ modules in src\/\n$/);
});

test('a cycle fails the check and is named, a type import closing it included; a tree without one passes', async (t) => {
  const dir = tempDir(t);
  dir.write('tree/a.ts', "import { b } from './b.js';\nexport const a = b + 1;\n");
  dir.write('tree/b.ts', "import type { C } from './sub/c.js';\nexport const b: C = 1;\n");
  dir.write('tree/sub/c.ts', "export type C = number;\n");
  const clean = await runNode(CHECK, [dir.join('tree')]);
  assert.equal(clean.code, 0, clean.stderr);
  assert.match(clean.stdout, /no import cycle among 3 modules in /);

  dir.write('tree/sub/c.ts', "import type { a } from '../a.js';\nexport type C = typeof a;\n");
  const cycle = await runNode(CHECK, [dir.join('tree')]);
  assert.equal(cycle.code, 1, cycle.stdout);
  assert.match(cycle.stderr, /^sluice cycles: 3 modules import each other: \S*tree\/a\.ts -> \S*tree\/b\.ts -> \S*tree\/sub\/c\.ts -> \S*tree\/a\.ts$/m);
});

/**
 * Deeply nested blocks: nginx accepts 5,000 nested locations, so Sluice must too, and no depth
 * may overflow the JavaScript stack in the parser, the include expansion, the directive walk, the
 * merge, freezing or routing. Beyond MAX_BLOCK_DEPTH the config is refused with file:line.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocationLevel } from '../routing/locations.js';
import { bad, good, show } from './fixtures.js';
import { MAX_BLOCK_DEPTH } from './include.js';
import { loadConfig } from './load.js';
import type { LocationConfig } from './types.js';
import type { ReturnAction, Settings } from './types.js';

/** The action of a level's first `return` line (its rewrite script's step). */
function returnOf(settings: Settings): ReturnAction | null {
  const step = settings.rewrite.script?.find((x) => x.op === 'return');
  return step?.op === 'return' ? step.action : null;
}

/** `depth` locations nested in one another (`location / {` each), `return 200 "deep"` in the innermost. */
function nested(depth: number, inner = 'return 200 "deep";'): string {
  return ['events {}', 'http {', 'server {', 'listen 127.0.0.1:8080;', ...Array<string>(depth).fill('location / {'), inner, '}'.repeat(depth), '}', '}'].join('\n');
}

function deepest(locations: readonly LocationConfig[]): { location: LocationConfig; depth: number } {
  let depth = 1;
  let l = locations[0]!;
  while (l.locations.length > 0) {
    l = l.locations[0]!;
    depth++;
  }
  return { location: l, depth };
}

for (const depth of [3_000, 5_000, MAX_BLOCK_DEPTH - 2]) {
  test(`${depth} nested locations load, and routing reaches the innermost`, async () => {
    const config = await good(nested(depth));
    const server = config.http!.servers[0]!;
    const inner = deepest(server.locations);
    assert.equal(inner.depth, depth);
    assert.equal(returnOf(inner.location.settings)?.code, 200);
    assert.equal(inner.location.loc.line, 4 + depth);
    assert.ok(Object.isFrozen(inner.location));
    assert.equal(new LocationLevel(server.locations).find('/any')?.location, inner.location);
  });
}

test(`more than ${MAX_BLOCK_DEPTH} nested blocks are refused at the first one too deep, with a hint`, async () => {
  // http and server are two of the blocks: location number MAX_BLOCK_DEPTH - 1 is one too many.
  for (const depth of [MAX_BLOCK_DEPTH - 1, 100_000]) {
    const problems = await bad(nested(depth));
    assert.deepEqual(problems.map(show), [`too many nested blocks (more than ${MAX_BLOCK_DEPTH}) in <inline>:${4 + MAX_BLOCK_DEPTH - 1}`]);
    assert.match(problems[0]!.hint ?? '', /nest fewer locations/);
  }
  // Blocks Sluice does not know are counted (and refused) the same way, before their names are checked.
  const unknown = ['events {}', ...Array<string>(100_000).fill('x {'), '}'.repeat(100_000)].join('\n');
  assert.deepEqual((await bad(unknown)).map(show), [`too many nested blocks (more than ${MAX_BLOCK_DEPTH}) in <inline>:${MAX_BLOCK_DEPTH + 2}`]);
});

test('nesting counts across included files; the message names the included file', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-nesting-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const half = MAX_BLOCK_DEPTH / 2;
  await writeFile(join(dir, 'inner.conf'), [...Array<string>(half).fill('location / {'), 'return 200 "x";', '}'.repeat(half)].join('\n'));
  const main = join(dir, 'main.conf');
  await writeFile(main, nested(half, 'include inner.conf;'));
  const r = await loadConfig({ file: main });
  assert.deepEqual(!r.ok && r.problems.map(show), [`too many nested blocks (more than ${MAX_BLOCK_DEPTH}) in ${join(dir, 'inner.conf')}:${half - 1}`]);
});

test('5,000 nested regex locations (nginx does not require them to lie inside their parent) route too', async () => {
  const depth = 5_000;
  const text = ['events {}', 'http {', 'server {', 'listen 127.0.0.1:8080;',
    ...Array.from({ length: depth }, (_, i) => `location ~ ^/(a)${i % 2 === 0 ? '' : '/?'} {`), 'return 200 "deep $1";', '}'.repeat(depth), '}', '}'].join('\n');
  const config = await good(text);
  const locations = config.http!.servers[0]!.locations;
  const m = new LocationLevel(locations).find('/a');
  assert.equal(m?.location, deepest(locations).location);
  assert.equal(m?.captures[1], 'a');
});

/**
 * How the `sluice` command holds its memory (src/cli/memory-settings.ts), in child processes that
 * import the module as the CLI does: V8's young generation stays at its initial size through a
 * burst of survivors (300,000 objects kept, what a burst of handshakes does with the tunnels'
 * contexts; without the module V8 doubles it up to 16 MiB per semi-space), the operator's own
 * sizing and `SLUICE_V8_MEMORY=default` are left alone.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runNode } from '../helpers/cli-process.js';
import { tempDir } from '../helpers/temp.js';

const MIB = 1024 * 1024;
const module = (rel: string): string => JSON.stringify(new URL(`../../src/${rel}`, import.meta.url).href);

async function child(t: Parameters<typeof tempDir>[0], body: string, env: Record<string, string | undefined>, load = true): Promise<Record<string, unknown>> {
  const dir = tempDir(t);
  const script = dir.write('child.mjs', `${load ? `await import(${module('cli/memory-settings.js')});` : ''}\n${body}`);
  const r = await runNode(script, [], undefined, { NODE_OPTIONS: undefined, SLUICE_V8_MEMORY: undefined, ...env });
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout.trim()) as Record<string, unknown>;
}

const SURVIVORS = `
const { getHeapSpaceStatistics } = await import('node:v8');
const keep = [];
for (let i = 0; i < 300_000; i++) keep.push({ n: i, s: 'tunnel ' + i });
console.log(JSON.stringify({ newSpace: getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size, kept: keep.length }));
`;

async function newSpace(t: Parameters<typeof tempDir>[0], env: Record<string, string | undefined>, load = true): Promise<number> {
  return (await child(t, SURVIVORS, env, load)).newSpace as number;
}

test('the young generation stays at its initial size through a burst of survivors', async (t) => {
  const grown = await newSpace(t, {}, false);
  assert.ok(grown > 4 * MIB, `V8 grows it on its own (the test can fail): ${grown}`);
  const kept = await newSpace(t, {});
  assert.ok(kept <= 2 * MIB, `new space ${kept} bytes`);
});

test('the operator\'s sizing and SLUICE_V8_MEMORY=default leave V8 alone', async (t) => {
  for (const options of ['--max-semi-space-size=4', '--max-old-space-size=512 --max_semi_space_size=8']) {
    assert.ok(await newSpace(t, { NODE_OPTIONS: options }) > 4 * MIB, options);
  }
  assert.ok(await newSpace(t, { SLUICE_V8_MEMORY: 'default' }) > 4 * MIB);
  // Node options that do not size the young generation do not count as the operator's choice.
  assert.ok(await newSpace(t, { NODE_OPTIONS: '--max-old-space-size=512' }) <= 2 * MIB);
});

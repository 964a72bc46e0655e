/**
 * How the `sluice` command holds its memory (src/cli/memory-settings.ts), in child processes that
 * import the module as the CLI does: through a burst of survivors (300,000 objects kept, what a
 * burst of handshakes does with the objects of the handshakes in flight) V8 grows the young
 * generation as it would on its own (no promotion of every in-flight object), and once the
 * process is idle the sluice_memory addon gives it back; without the addon, and with
 * `SLUICE_V8_MEMORY=small`, it stays at its initial size; the operator's own sizing and
 * `SLUICE_V8_MEMORY=default` are left alone (grown and kept).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
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

/** Whether the sluice_memory addon is built here (without it the young generation stays small). */
const MEMORY_ADDON = process.platform === 'linux' && existsSync(fileURLToPath(new URL('../../../native/memory/build/Release/sluice_memory.node', import.meta.url)));

// The burst, then (with SLUICE_TEST_IDLE=1) idle: the new space's size after the burst and once
// the process has been idle (polled every 100 ms for up to 10 s, until it is 2 MiB or less).
const SURVIVORS = `
const { getHeapSpaceStatistics } = await import('node:v8');
const size = () => getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size;
let keep = [];
for (let i = 0; i < 300_000; i++) keep.push({ n: i, s: 'tunnel ' + i });
const newSpace = size();
const kept = keep.length;
keep = null;
for (let i = 0; process.env.SLUICE_TEST_IDLE === '1' && i < 100 && size() > 2 * 1024 * 1024; i++) await new Promise((r) => setTimeout(r, 100));
console.log(JSON.stringify({ newSpace, kept, idle: size() }));
`;

async function newSpace(t: Parameters<typeof tempDir>[0], env: Record<string, string | undefined>, load = true): Promise<number> {
  return (await child(t, SURVIVORS, env, load)).newSpace as number;
}

test('the young generation grows through a burst of survivors and is given back once the process is idle', async (t) => {
  const grown = await newSpace(t, {}, false);
  assert.ok(grown > 4 * MIB, `V8 grows it on its own (the test can fail): ${grown}`);
  const r = await child(t, SURVIVORS, { SLUICE_TEST_IDLE: '1' });
  if (MEMORY_ADDON) {
    assert.ok((r.newSpace as number) > 4 * MIB, `grown during the burst: ${r.newSpace}`);
    assert.ok((r.idle as number) <= 2 * MIB, `given back when idle: ${r.idle}`);
  } else {
    assert.ok((r.newSpace as number) <= 2 * MIB, `without the addon it stays small: ${r.newSpace}`);
  }
});

test('SLUICE_V8_MEMORY=small keeps the young generation at its initial size through the burst', async (t) => {
  const kept = await newSpace(t, { SLUICE_V8_MEMORY: 'small' });
  assert.ok(kept <= 2 * MIB, `new space ${kept} bytes`);
});

test('the operator\'s sizing and SLUICE_V8_MEMORY=default leave V8 alone', async (t) => {
  for (const options of ['--max-semi-space-size=4', '--max-old-space-size=512 --max_semi_space_size=8']) {
    assert.ok(await newSpace(t, { NODE_OPTIONS: options }) > 4 * MIB, options);
  }
  assert.ok(await newSpace(t, { SLUICE_V8_MEMORY: 'default' }) > 4 * MIB);
  // Node options that do not size the young generation do not count as the operator's choice.
  const r = await child(t, SURVIVORS, { NODE_OPTIONS: '--max-old-space-size=512', SLUICE_TEST_IDLE: '1' });
  assert.ok((MEMORY_ADDON ? r.idle : r.newSpace) as number <= 2 * MIB, JSON.stringify(r));
});

/**
 * The benchmark harness's `--handshake-warmup MS`: the handshakes scenario waits that long before
 * its window (each cell's record says the warm-up it had), the run's notes say so, and the run
 * goes to latest-MODE-partial.* (it is not the plan's run, so it never replaces the committed
 * reference). Sluice alone and the handshakes scenario only: no nginx or wrk needed. No timing is
 * asserted.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runNode } from '../helpers/cli-process.js';
import { tempDir } from '../helpers/temp.js';

/** The harness, run to completion by runNode (killed after 20 s; a run here takes about 3). */
const RUN_JS = fileURLToPath(new URL('../../bench/run.js', import.meta.url));

test('--handshake-warmup sets the handshake cells\' warm-up, says so, and writes a partial run', async (t) => {
  const out = tempDir(t, 'sluice-bench-options-');
  const r = await runNode(RUN_JS, ['--smoke', '--targets', 'sluice', '--scenarios', 'handshakes', '--handshake-warmup', '700', '--out', out.path]);
  assert.equal(r.code, 0, r.stderr.split('\n').slice(-20).join('\n'));
  assert.ok(existsSync(out.join('latest-smoke-partial.jsonl')), 'a run with another warm-up is a partial run');
  assert.ok(!existsSync(out.join('latest-smoke.jsonl')), 'a run with another warm-up must not replace the plan\'s run');
  const lines = readFileSync(out.join('latest-smoke-partial.jsonl'), 'utf8').split('\n').filter(Boolean)
    .map((l) => JSON.parse(l) as { type: string; scenario?: string; params?: Record<string, number>; notes?: string[] });
  const cells = lines.filter((l) => l.type === 'cell' && l.scenario === 'handshakes');
  assert.ok(cells.length > 0, 'no handshake cell');
  for (const c of cells) assert.equal(c.params?.warmupMs, 700);
  const run = lines.find((l) => l.type === 'run');
  assert.ok(run?.notes?.some((n) => n === 'handshakes: 700 ms of warm-up before each window (the smoke plan\'s: 300)'), JSON.stringify(run?.notes));
  assert.match(readFileSync(out.join('latest-smoke-partial.md'), 'utf8'), /700 ms of warm-up/);
});

test('--handshake-warmup refuses what is not a whole number of milliseconds', async () => {
  for (const bad of ['abc', '-5', '1.5']) {
    const r = await runNode(RUN_JS, ['--smoke', '--handshake-warmup', bad]);
    assert.equal(r.code, 2, `--handshake-warmup ${bad}`);
    assert.match(r.stderr, /--handshake-warmup needs a whole number of milliseconds/);
  }
});

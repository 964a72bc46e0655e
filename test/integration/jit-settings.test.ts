/**
 * The tier-up threshold the `sluice` command sets for V8 (src/cli/jit-flags.ts, applied by
 * cli/jit-settings.ts): a quarter of V8's default, with the flag of the V8 line Node runs on,
 * nothing on a line whose flag is not known, and nothing where the operator set a threshold or
 * asked for V8's own (`SLUICE_V8_JIT=default`). What the earlier tier-up does to a handshake's CPU
 * is measured in the benchmark (docs/benchmarks.md), not here. The flag the running Node's V8
 * takes is checked against that V8's own list of flags (`node --v8-options`).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { jitFlags, operatorSetTierUp, tierUpFlag } from '../../src/cli/jit-flags.js';

test('a quarter of the default, with the flag of the V8 line', () => {
  assert.equal(jitFlags('11.3.244.8-node.33', [], {}), '--interrupt-budget=16896');
  assert.equal(jitFlags('12.4.254.21-node.33', [], {}), '--invocation-count-for-turbofan=750');
  assert.equal(jitFlags('13.6.233.10-node.27', [], {}), '--invocation-count-for-turbofan=750');
  assert.equal(jitFlags('11.8.172.17-node.19', [], {}), null, 'Node 21\'s V8: flag not known, nothing set');
  assert.equal(jitFlags('10.2.154.26-node.26', [], {}), null);
});

test('the operator\'s own threshold and SLUICE_V8_JIT=default are left alone', () => {
  assert.equal(jitFlags('11.3.244.8', [], { SLUICE_V8_JIT: 'default' }), null);
  assert.equal(jitFlags('11.3.244.8', [], { SLUICE_V8_JIT: 'other' }), '--interrupt-budget=16896');
  assert.equal(jitFlags('11.3.244.8', ['--interrupt-budget=1000'], {}), null);
  assert.equal(jitFlags('12.4.254.21', [], { NODE_OPTIONS: '--max-old-space-size=512 --invocation-count-for-turbofan=100' }), null);
  assert.ok(operatorSetTierUp(['--interrupt_budget=5'], ''));
  assert.ok(operatorSetTierUp([], '--invocation-count-for-turbofan'));
  assert.ok(!operatorSetTierUp(['--interrupt-budget-for-feedback-allocation=5'], '--invocation-count-for-maglev=10'));
});

test('the flag chosen for this Node\'s V8 is one that V8 has', () => {
  const t = tierUpFlag(process.versions.v8);
  assert.ok(t !== null, `no tier-up flag known for V8 ${process.versions.v8} (Node ${process.version})`);
  const r = spawnSync(process.execPath, ['--v8-options'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const m = new RegExp(`^\\s+${t.flag} \\(.*\\)\\n\\s+type: int\\s+default: ${t.flag}=(\\d+)`, 'm').exec(r.stdout);
  assert.ok(m, `${t.flag} is not among V8 ${process.versions.v8}'s flags`);
  assert.equal(Number(m[1]), t.dflt, `V8's default for ${t.flag}`);
});

/**
 * The benchmark harness works: `bench/run.js --smoke` (Sluice and nginx, tiny sizes, every
 * scenario) runs to the end, and every scenario produced finite numbers, positive where they
 * must be, with no errors. It asserts no timing. An end-to-end test (`npm run test:e2e`): nginx and
 * wrk must be installed (.ci/run installs them); without them this test fails.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { trackGroup } from '../helpers/process-groups.js';
import { requireProgram } from '../helpers/programs.js';
import { tempDir } from '../helpers/temp.js';

const RUN_JS = fileURLToPath(new URL('../../bench/run.js', import.meta.url));

/** The child is stopped (SIGTERM, which stops everything it started, then SIGKILL) after this. */
const HARNESS_LIMIT_MS = 100_000;

interface Cell {
  type: 'cell';
  scenario: string;
  cell: string;
  target: string;
  metrics: Record<string, number>;
  errors: string[];
}

/** Per scenario: metrics that must be finite and > 0, and metrics that must merely be finite. */
const EXPECTED: Record<string, { positive: string[]; finite: string[] }> = {
  idle: { positive: ['tunnels', 'rssKiB', 'openFiles', 'opensPerSec'], finite: ['rssPerTunnelKiB', 'idleCpuPct', 'openFilesPerTunnel'] },
  handshakes: { positive: ['handshakesPerSec', 'cpuUsPerHandshake', 'p50Ms', 'p99Ms'], finite: ['driverCpuPct'] },
  small: { positive: ['msgsPerSec', 'cpuUsPerMsg', 'p50Ms'], finite: ['p99Ms', 'driverCpuPct'] },
  large: { positive: ['msgsPerSec', 'MBps', 'cpuUsPerMsg', 'peakRssMiB'], finite: ['p99Ms'] },
  latency: { positive: ['msgsPerSec', 'p50Ms', 'p99Ms', 'p999Ms'], finite: ['proxyCpuPct'] },
  http: { positive: ['requestsPerSec', 'cpuUsPerRequest'], finite: ['p50Ms'] },
  cache: { positive: ['requestsPerSec', 'cpuUsPerRequest'], finite: ['p50Ms'] },
};

function runHarness(args: string[]): Promise<{ code: number | null; signal: string | null; stderr: string; timedOut: boolean }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [RUN_JS, ...args], { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
    trackGroup(child);
    let stderr = '';
    let timedOut = false;
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString('utf8');
      if (stderr.length > 200_000) stderr = stderr.slice(-100_000);
    });
    const kill = (signal: NodeJS.Signals): void => {
      try {
        process.kill(-child.pid!, signal);
      } catch {
        // gone
      }
    };
    const term = setTimeout(() => {
      timedOut = true;
      kill('SIGTERM');
    }, HARNESS_LIMIT_MS);
    const hard = setTimeout(() => kill('SIGKILL'), HARNESS_LIMIT_MS + 10_000);
    child.on('close', (code, signal) => {
      clearTimeout(term);
      clearTimeout(hard);
      kill('SIGKILL'); // anything left in the harness's own group
      resolve({ code, signal, stderr, timedOut });
    });
  });
}

test('bench --smoke measures every scenario on sluice and nginx without errors', async (t) => {
  // Before the harness, which would try apt-get itself when run as root.
  requireProgram('nginx', 'nginx-light');
  requireProgram('wrk', 'wrk');
  const out = tempDir(t, 'sluice-bench-smoke-');
  const r = await runHarness(['--smoke', '--out', out.path]);
  const tail = r.stderr.split('\n').slice(-40).join('\n');
  assert.ok(!r.timedOut, `the smoke run did not finish within ${HARNESS_LIMIT_MS / 1000} s; last output:\n${tail}`);
  if (r.code === 2 && /needs nginx and wrk/.test(r.stderr)) {
    assert.fail(`the benchmark smoke needs nginx and wrk, and they are missing and could not be installed ` +
      `(install nginx-light and wrk with apt-get as root, as .ci/run does):\n${tail}`);
  }
  assert.equal(r.code, 0, `bench --smoke exited with ${r.code ?? r.signal}:\n${tail}`);

  const jsonl = out.join('latest-smoke.jsonl');
  assert.ok(existsSync(jsonl), `no results file at ${jsonl}`);
  const lines = readFileSync(jsonl, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { type: string });
  const cells = lines.filter((l): l is Cell => l.type === 'cell');
  for (const [scenario, want] of Object.entries(EXPECTED)) {
    for (const target of ['sluice', 'nginx']) {
      const mine = cells.filter((c) => c.scenario === scenario && c.target === target);
      assert.ok(mine.length > 0, `no ${scenario} cell for ${target}`);
      for (const c of mine) {
        const where = `${scenario} / ${c.cell} / ${target}`;
        assert.deepEqual(c.errors, [], `${where} had errors`);
        for (const k of want.positive) {
          const v = c.metrics[k];
          assert.ok(typeof v === 'number' && Number.isFinite(v) && v > 0, `${where}: ${k} should be a positive number, got ${v}`);
        }
        for (const k of want.finite) {
          const v = c.metrics[k];
          assert.ok(typeof v === 'number' && Number.isFinite(v), `${where}: ${k} should be a finite number, got ${v}`);
        }
      }
    }
  }
  const md = readFileSync(out.join('latest-smoke.md'), 'utf8');
  for (const title of ['Idle tunnels', 'Handshakes', 'Small messages', 'Large messages', 'Added latency', 'Plain HTTP', 'Cached HTTP responses']) {
    assert.match(md, new RegExp(`### \\d\\. ${title}`), `the report has no "${title}" table`);
  }
  assert.match(md, /sluice\/nginx/);
});

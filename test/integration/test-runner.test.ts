/**
 * The runner behind `npm test` (scripts/test.mjs). `node --test dist/` found every test on Node 20
 * (and ran the helper files as tests too) but nothing on Node 21+, which reads its arguments as
 * globs: the runner lists the compiled *.test.js files itself, the same on every Node, and each
 * pass says which it is and how many tests it ran.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, relative, sep } from 'node:path';
import { test } from 'node:test';
import { ROOT, runNode } from '../helpers/cli-process.js';

const RUNNER = join(ROOT, 'scripts', 'test.mjs');
/** `node --test` marks the processes it runs and refuses to run tests inside them: unmark the child. */
const OUTSIDE_A_TEST = { NODE_TEST_CONTEXT: undefined };
const DIST = join(ROOT, 'dist');

function compiledTests(dir: string, out: string[] = []): string[] {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) compiledTests(path, out);
    else if (entry.name.endsWith('.test.js')) out.push(relative(DIST, path).split(sep).join('/'));
  }
  return out;
}

/** The passes `scripts/test.mjs --list ARGS` names, each with its files. */
async function listed(args: readonly string[]): Promise<Map<string, string[]>> {
  const res = await runNode(RUNNER, ['--list', ...args]);
  assert.equal(res.code, 0, res.stderr);
  const passes = new Map<string, string[]>();
  let current: string[] = [];
  for (const line of res.stdout.split('\n')) {
    const head = /^sluice test: pass "([^"]+)" \(.*\): (\d+) file\(s\)$/.exec(line);
    if (head) passes.set(head[1]!, (current = []));
    else if (line.startsWith('  dist/')) current.push(line.slice('  dist/'.length));
  }
  return passes;
}

test('the runner lists every compiled test file with a source, and nothing else, in the main pass; test/e2e only with --pass e2e', async () => {
  const passes = await listed([]);
  const all = compiledTests(DIST).filter((f) => existsSync(join(ROOT, f.replace(/\.js$/, '.ts')))).sort();
  const e2e = all.filter((f) => f.startsWith('test/e2e/'));
  const expected = all.filter((f) => !e2e.includes(f));
  assert.ok(expected.includes('test/integration/test-runner.test.js'));
  assert.ok(e2e.includes('test/e2e/browser.test.js'), 'the browser test is an end-to-end test');
  assert.deepEqual(passes.get('main'), expected);
  assert.deepEqual([...passes.keys()], ['main', 'ts-tunnel', 'js-upstream', 'node-client', 'node-front', 'libuv-accept'], 'npm test runs no end-to-end test');
  assert.deepEqual([...(await listed(['--pass', 'e2e'])).entries()], [['e2e', e2e]]);
  assert.ok(!expected.some((f) => f.startsWith('test/helpers/') && !f.endsWith('.test.js')));
  assert.deepEqual(passes.get('ts-tunnel'), ['native-tunnel', 'ws-data', 'ws-close', 'ws-guards', 'ws-pings', 'ws-rate', 'ws-session-log', 'ws-rebalance', 'timeouts', 'reload'].map((f) => `test/integration/${f}.test.js`));
  for (const suite of ['http-proxy', 'upstream-client', 'tls-upstream']) {
    assert.ok(passes.get('node-client')?.includes(`test/integration/${suite}.test.js`), `${suite}: the HTTP suites, plain and TLS, run again with the http.request client`);
  }
  for (const suite of ['http-proxy', 'ws-handshake', 'request-head', 'tls']) {
    assert.ok(passes.get('node-front')?.includes(`test/integration/${suite}.test.js`), `${suite}: the HTTP/1.1 suites, plain and TLS, run again on Node's HTTP server alone`);
  }
  for (const suite of ['front-ends', 'lean-front', 'ws-handshake', 'reload']) {
    assert.ok(passes.get('libuv-accept')?.includes(`test/integration/${suite}.test.js`), `${suite}: the connection and handshake suites run again with libuv accepting`);
  }
});

test('a run names its pass, runs the chosen file with `node --test` and counts its tests', async () => {
  const res = await runNode(RUNNER, ['test/helpers/wait.test'], ROOT, OUTSIDE_A_TEST);
  assert.equal(res.code, 0, res.stdout + res.stderr);
  assert.match(res.stdout, new RegExp(`^sluice test: pass 1/1 "main": every unit and integration test\\nsluice test:   1 test file\\(s\\), ${availableParallelism() + 1} at a time, node ${process.version.replace(/\./g, '\\.')}, no extra environment$`, 'm'));
  // The overall progress line, once per test file started.
  assert.match(res.stdout, /^sluice test: \[main\] 1\/1 files started, 0 tests done, 0 failed, \d+ s$/m);
  const summary = /^sluice test: {3}ok {5}main +1 files +(\d+) tests (\d+) passed, 0 failed, 0 cancelled, 0 skipped, 0 todo, /m.exec(res.stdout);
  assert.ok(summary, res.stdout);
  assert.ok(Number(summary[1]) >= 3, 'wait.test has several tests');
  assert.equal(summary[2], summary[1]);
  // An unknown pass is refused before anything runs.
  const wrong = await runNode(RUNNER, ['--pass', 'nope']);
  assert.equal(wrong.code, 2);
  assert.match(wrong.stderr, /^sluice test: no pass named "nope" \(passes: main, ts-tunnel, js-upstream, node-client, undici-client, node-front, libuv-accept, e2e\)$/m);
  // A word that names only an end-to-end test says where it is.
  const e2eOnly = await runNode(RUNNER, ['--list', 'dashboard-browser']);
  assert.equal(e2eOnly.code, 2);
  assert.match(e2eOnly.stderr, /^sluice test: no test file matches dashboard-browser \(files in test\/e2e\/ run with --pass e2e\)$/m);
});

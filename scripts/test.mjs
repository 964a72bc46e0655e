#!/usr/bin/env node
// The test runner behind `npm test` (after `npm run build`): it finds the compiled test files
// (dist/**/*.test.js) itself and hands them to `node --test` by name, once per pass below.
//
// Why not `node --test dist/`: Node 20 walks a directory argument and runs every .js file under a
// folder named "test" as a test file (the helpers in dist/test/helpers, the *-support.js files),
// while Node 21+ reads each argument as a glob, so `dist/` matches no test file at all and the
// run fails. Naming the files works the same on every Node from 20 on, and only *.test.js files
// count. Plain JavaScript, so that it needs no build of its own.
//
// The end-to-end tests (test/e2e/: they drive nginx, wrk, Chromium and other programs beyond Node
// and npm, which they fail without) are a pass of their own that runs only when named:
// `npm run test:e2e`. Every other pass runs on a machine with only Node and npm.
//
//   node scripts/test.mjs                     every pass but e2e
//   node scripts/test.mjs --pass ts-tunnel    only that pass (repeatable; --pass e2e for the end-to-end tests,
//                                             --pass node-front for the HTTP/1.1 suites on Node's HTTP server alone)
//   node scripts/test.mjs workers ws-data     only test files whose path contains one of these words
//   node scripts/test.mjs --list              the files of each pass and how many, without running
//
// Other options that start with --test- (e.g. --test-name-pattern=REGEX) go to `node --test`.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { killLeftGroups } from './process-groups.mjs';

/** Where the end-to-end tests live (under dist/ once built). */
const E2E_DIR = 'test/e2e/';

/**
 * The passes, in order. `files`: '*' for every test file outside test/e2e/, 'e2e' for every one
 * in it, or paths under dist/ without ".test.js" (a name that matches no file is an error, so a
 * renamed suite cannot drop out of a pass unnoticed). `env`: what the pass sets on top of the
 * caller's environment. `named`: runs only when chosen with --pass. `concurrency`: test files at a
 * time, when not TEST_CONCURRENCY.
 * Another pass is one more line here.
 */
const PASSES = [
  { name: 'main', what: 'every unit and integration test', files: '*', env: {} },
  {
    name: 'ts-tunnel', what: 'the tunnel suites again, over the TypeScript relay instead of the native addon', env: { SLUICE_NATIVE: 'off' },
    files: ['native-tunnel', 'ws-data', 'ws-close', 'ws-guards', 'ws-pings', 'ws-rate', 'ws-session-log', 'ws-rebalance', 'timeouts', 'reload'].map((f) => `test/integration/${f}`),
  },
  {
    name: 'js-upstream', what: 'the handshake suites again, with the upstream leg of WebSocket handshakes in JavaScript instead of the addon',
    env: { SLUICE_NATIVE_UPSTREAM: 'off' },
    files: ['native-upstream', 'ws-handshake', 'native-tunnel'].map((f) => `test/integration/${f}`),
  },
  {
    name: 'node-client', what: 'the HTTP suites again, with http.request as the upstream client instead of the lean one', env: { SLUICE_UPSTREAM_CLIENT: 'node' },
    files: [
      'http-proxy', 'upstream-client', 'tls-upstream', 'upstream-release', 'timeouts', 'balancing', 'variables-map', 'logging',
      'safety', 'ipv6', 'ws-handshake', 'http2', 'http2-websocket', 'proxy-buffers', 'client-limits', 'compression',
      'request-buffering', 'response-buffering',
    ].map((f) => `test/integration/${f}`),
  },
  {
    // undici as the upstream client (src/proxy/client/undici-client.ts) is a measurement-only
    // client: its suites run only when named; what it cannot do as nginx does is listed in
    // docs/benchmarks.md ("undici as the upstream client"), so some of these fail by design.
    name: 'undici-client', what: 'the HTTP suites again, with undici (a devDependency, measurement only) as the upstream client', env: { SLUICE_UPSTREAM_CLIENT: 'undici' },
    named: true,
    files: [
      'http-proxy', 'upstream-client', 'tls-upstream', 'upstream-release', 'timeouts', 'balancing', 'logging', 'ws-handshake', 'ws-data',
      'proxy-buffers', 'request-buffering', 'response-buffering',
    ].map((f) => `test/integration/${f}`),
  },
  {
    // The lean front end (src/server/lean-front.ts) reads every connection's request heads and
    // takes WebSocket handshakes and plain requests without a chunked body itself; this pass runs
    // the HTTP/1.1 suites with Node's HTTP server reading everything, as before it (front-ends and
    // lean-front.test.ts run their requests against both in one file).
    name: 'node-front', what: 'the HTTP/1.1 suites again, with Node\'s HTTP server reading every request instead of the lean front end', env: { SLUICE_FRONT: 'node' },
    files: [
      'http-proxy', 'ws-handshake', 'ws-data', 'ws-close', 'request-head', 'bare-lf', 'client-timeouts', 'client-limits', 'safety',
      'tls', 'proxy-protocol', 'websocket-origins', 'timeouts',
    ].map((f) => `test/integration/${f}`),
  },
  {
    // The relay's I/O thread accepts on plain listeners and reads the first bytes (issue 15 item 2,
    // src/server/native-accept.ts), and WebSocket handshakes run with no net.Socket for the client;
    // this pass runs the suites of connections and handshakes with libuv accepting, as before it.
    name: 'libuv-accept', what: 'the HTTP/1.1 and handshake suites again, with libuv accepting instead of the addon', env: { SLUICE_ACCEPT: 'node' },
    files: [
      'front-ends', 'lean-front', 'ws-handshake', 'ws-data', 'ws-close', 'request-head', 'bare-lf', 'client-timeouts', 'reload', 'timeouts',
    ].map((f) => `test/integration/${f}`),
  },
  {
    name: 'e2e', what: 'the end-to-end tests, which drive programs beyond Node and npm (nginx, wrk, Chromium) and fail without them', env: {},
    // One at a time: the benchmark smoke test measures, and Chromium needs the cores it can get.
    files: 'e2e', named: true, concurrency: 1,
  },
];

/** Per test (node --test --test-timeout): a hung test fails instead of stalling the run. */
const TEST_TIMEOUT_MS = 120_000;

/**
 * Test files run at once (node --test --test-concurrency; --test-concurrency=N on the command line
 * overrides it). Node's default is one less than the cores, one file at a time on two cores; most
 * of a test's time is spent waiting on sockets, timers and child processes, not on a core, so one
 * more file than there are cores. Each file is its own process: tests in a file still run one
 * after another, and no test shares a port, a directory or a clock with another file.
 */
const TEST_CONCURRENCY = availableParallelism() + 1;

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
const say = (line) => process.stdout.write(`sluice test: ${line}\n`);

function usage(problem) {
  process.stderr.write(`sluice test: ${problem}\nusage: node scripts/test.mjs [--list] [--pass NAME]... [--test-OPTION...] [WORD...]\n`);
  process.exit(2);
}

const args = process.argv.slice(2);
const chosen = [];
const words = [];
const nodeOptions = [];
let list = false;
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a === '--list') list = true;
  else if (a === '--pass') chosen.push(args[++i] ?? usage('--pass needs a name'));
  else if (a.startsWith('--pass=')) chosen.push(a.slice('--pass='.length));
  else if (a.startsWith('--test-')) nodeOptions.push(a);
  else if (a.startsWith('-')) usage(`unknown option ${a}`);
  else words.push(a);
}
const concurrencyGiven = nodeOptions.some((o) => o.startsWith('--test-concurrency'));
for (const name of chosen) {
  if (!PASSES.some((p) => p.name === name)) usage(`no pass named "${name}" (passes: ${PASSES.map((p) => p.name).join(', ')})`);
}

/** dist/**\/*.test.js, as paths relative to dist/ with forward slashes, sorted. */
function findTestFiles(dir, out = []) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory() && entry.name !== 'node_modules') findTestFiles(path, out);
    else if (entry.isFile() && entry.name.endsWith('.test.js')) out.push(relative(dist, path).split(sep).join('/'));
  }
  return out.sort();
}

if (!existsSync(dist)) usage('there is no dist/: run `npm run build` first (`npm test` does)');
// tsc never deletes output: a compiled test whose source is gone would still run.
const stale = [];
const found = findTestFiles(dist).filter((f) => {
  const source = existsSync(join(root, f.replace(/\.js$/, '.ts')));
  if (!source) stale.push(f);
  return source;
});
if (found.length === 0) usage('no *.test.js files under dist/: run `npm run build` first');
if (stale.length > 0) say(`not run, their sources are gone (left in dist/ by an earlier build): ${stale.join(', ')}`);

function filesOf(pass) {
  let files = found.filter((f) => f.startsWith(E2E_DIR) === (pass.files === 'e2e'));
  if (pass.files !== '*' && pass.files !== 'e2e') {
    files = pass.files.map((name) => {
      const file = `${name}.test.js`;
      if (!found.includes(file)) usage(`pass "${pass.name}" names ${name}, and dist/${file} does not exist`);
      return file;
    });
  }
  return words.length === 0 ? files : files.filter((f) => words.some((w) => f.includes(w)));
}

const envText = (env) => Object.entries(env).map(([k, v]) => `${k}=${v}`).join(' ') || 'no extra environment';
const passes = PASSES.filter((p) => (chosen.length === 0 ? !p.named : chosen.includes(p.name))).map((p) => ({ ...p, list: filesOf(p) })).filter((p) => p.list.length > 0);
if (passes.length === 0) {
  const e2e = chosen.length === 0 && filesOf(PASSES.find((p) => p.name === 'e2e')).length > 0;
  usage(`no test file matches ${words.join(' ') || 'in the passes chosen'}${e2e ? ` (files in ${E2E_DIR} run with --pass e2e)` : ''}`);
}

if (list) {
  let text = '';
  for (const p of passes) {
    text += `sluice test: pass "${p.name}" (${envText(p.env)}): ${p.list.length} file(s)\n`;
    for (const f of p.list) text += `  dist/${f}\n`;
  }
  // Written out before the exit: into a pipe, newer Nodes may still hold part of it when
  // process.exit() comes, and the reader gets a list cut short.
  await new Promise((resolve) => process.stdout.write(text, resolve));
  process.exit(0);
}

/** The totals `node --test` gives at the end (`# tests 555`, `# fail 0`, ...), as scripts/test-progress.mjs wrote them. */
function tapTotals(path) {
  const totals = {};
  const text = existsSync(path) ? readFileSync(path, 'utf8') : '';
  for (const m of text.matchAll(/^# (tests|pass|fail|cancelled|skipped|todo) (\d+)$/gm)) totals[m[1]] = Number(m[2]);
  return totals;
}

let child = null;
let groupsNow = null;
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => {
    child?.kill(signal);
    if (groupsNow !== null) killLeftGroups(groupsNow);
    process.exit(1);
  });
}

function runPass(pass, totalsFile, groupsDir) {
  const argv = [
    '--test', `--test-timeout=${TEST_TIMEOUT_MS}`,
    ...(concurrencyGiven ? [] : [`--test-concurrency=${pass.concurrency ?? TEST_CONCURRENCY}`]),
    // What people read, and an overall progress line per test file started that also writes
    // Node's totals to a file to count from (scripts/test-progress.mjs): Node's summary lines
    // differ between reporters and versions.
    '--test-reporter=spec', '--test-reporter-destination=stdout',
    `--test-reporter=${pathToFileURL(join(root, 'scripts', 'test-progress.mjs')).href}`, '--test-reporter-destination=stdout',
    ...nodeOptions,
    ...pass.list.map((f) => join('dist', f)),
  ];
  return new Promise((resolve) => {
    child = spawn(process.execPath, argv, { cwd: root, stdio: 'inherit', env: { ...process.env, ...pass.env, SLUICE_TEST_PROGRESS: `${pass.name} ${pass.list.length}`, SLUICE_TEST_TOTALS: totalsFile, SLUICE_TEST_GROUPS: groupsDir } });
    child.on('error', (e) => resolve({ code: 1, error: e.message }));
    child.on('exit', (code, signal) => resolve({ code: code ?? 1, error: signal ? `killed by ${signal}` : '' }));
  });
}

const scratch = mkdtempSync(join(tmpdir(), 'sluice-test-runner-'));
const results = [];
const started = Date.now();
try {
  for (const [i, pass] of passes.entries()) {
    say('');
    say(`pass ${i + 1}/${passes.length} "${pass.name}": ${pass.what}`);
    say(`  ${pass.list.length} test file(s), ${concurrencyGiven ? 'as --test-concurrency says' : `${pass.concurrency ?? TEST_CONCURRENCY} at a time`}, node ${process.version}, ${envText(pass.env)}`);
    say('');
    const t0 = Date.now();
    const groupsDir = join(scratch, `${pass.name}.groups`);
    mkdirSync(groupsDir);
    groupsNow = groupsDir;
    const { code, error } = await runPass(pass, join(scratch, `${pass.name}.totals`), groupsDir);
    const left = killLeftGroups(groupsDir);
    if (left > 0) say(`pass "${pass.name}": killed ${left} process group(s) that its tests left running`);
    const totals = tapTotals(join(scratch, `${pass.name}.totals`));
    const ok = code === 0 && totals.tests > 0 && (totals.fail ?? 0) === 0 && (totals.cancelled ?? 0) === 0;
    results.push({ pass, totals, ok, seconds: Math.round((Date.now() - t0) / 1000), error });
    say(`pass "${pass.name}" ${ok ? 'passed' : 'FAILED'}: ${totals.tests ?? 0} tests in ${pass.list.length} files${error ? ` (${error})` : ''}`);
  }
} finally {
  rmSync(scratch, { recursive: true, force: true });
}

say('');
say(`summary (node ${process.version}, ${Math.round((Date.now() - started) / 1000)} s):`);
for (const r of results) {
  const t = r.totals;
  say(`  ${r.ok ? 'ok    ' : 'FAILED'} ${r.pass.name.padEnd(12)} ${String(r.pass.list.length).padStart(3)} files ${String(t.tests ?? 0).padStart(5)} tests ` +
    `${t.pass ?? 0} passed, ${t.fail ?? 0} failed, ${t.cancelled ?? 0} cancelled, ${t.skipped ?? 0} skipped, ${t.todo ?? 0} todo, ${r.seconds} s  (${envText(r.pass.env)})`);
}
process.exitCode = results.every((r) => r.ok) ? 0 : 1;

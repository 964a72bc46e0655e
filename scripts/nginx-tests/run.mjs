#!/usr/bin/env node
// Runs files of nginx's test suite (nginx/nginx-tests) against the installed nginx and against
// Sluice, one file at a time, and writes the comparison to docs/nginx-tests.md.
//
//   node scripts/nginx-tests/run.mjs /path/to/nginx-tests [options]
//
// Options:
//   --files 'proxy*.t map.t'  the files to run (globs in the checkout; default: the measured set)
//   --only nginx|sluice       run one side only (the table then shows the other side as not run)
//   --out FILE                where the Markdown goes (default: docs/nginx-tests.md for the
//                             default file set, standard output otherwise; '-' for stdout)
//   --json FILE               also write every file's TAP results and Sluice's messages as JSON
//   --timeout SECONDS         per file and binary (default 300); a file over it counts as failed
//   --nginx PATH              the nginx binary (default /usr/sbin/nginx)
//   --from-json FILE          run nothing: write the Markdown from the JSON of an earlier run
// See scripts/nginx-tests/README.md.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '../..');
const DEFAULT_FILES = [
  'proxy*.t', 'upstream*.t', 'map*.t', 'rewrite*.t', 'access*.t', 'ssl_sni*.t', 'stub_status*.t',
  'http_variables*.t', 'ssl_proxy_upgrade.t', 'worker_shutdown_timeout_proxy_upgrade.t',
];

function parseOptions(argv) {
  const o = { suite: null, files: null, only: null, out: null, json: null, fromJson: null, timeout: 300, nginx: '/usr/sbin/nginx' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--files') o.files = value().split(/[\s,]+/).filter(Boolean);
    else if (a === '--only') o.only = value();
    else if (a === '--out') o.out = value();
    else if (a === '--json') o.json = value();
    else if (a === '--timeout') o.timeout = Number(value());
    else if (a === '--nginx') o.nginx = value();
    else if (a === '--from-json') o.fromJson = value();
    else if (a.startsWith('-')) throw new Error(`unknown option ${a}`);
    else o.suite = resolve(a);
  }
  if (!o.suite && !o.fromJson) throw new Error('usage: node scripts/nginx-tests/run.mjs NGINX_TESTS_DIR [--files ...] [--only nginx|sluice] [--out FILE] [--json FILE]');
  if (o.only !== null && o.only !== 'nginx' && o.only !== 'sluice') throw new Error('--only takes nginx or sluice');
  return o;
}

function globToRegExp(glob) {
  return new RegExp(`^${glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
}

function listFiles(suite, patterns) {
  const all = readdirSync(suite).filter((f) => f.endsWith('.t')).sort();
  const chosen = new Set();
  for (const p of patterns) {
    const re = globToRegExp(p);
    const hits = all.filter((f) => re.test(f));
    if (hits.length === 0) process.stderr.write(`run.mjs: no file matches ${p}\n`);
    for (const f of hits) chosen.add(f);
  }
  return [...chosen].sort();
}

/** TAP as Test::More writes it: a plan, `ok`/`not ok` lines with `# skip` and `# TODO` directives. */
function parseTap(text) {
  const r = { planned: null, skipAll: null, tests: new Map() };
  for (const line of text.split('\n')) {
    let m = /^1\.\.(\d+)(?:\s*#\s*(?:skip|SKIP)\S*\s*(.*))?/.exec(line);
    if (m) {
      r.planned = Number(m[1]);
      if (r.planned === 0) r.skipAll = (m[2] ?? '').trim() || 'skipped';
      continue;
    }
    m = /^(not )?ok (\d+)(?: - ([^#]*))?(?:#\s*(skip|SKIP|TODO|todo)\b\s*(.*))?/.exec(line);
    if (!m) continue;
    const ok = m[1] === undefined;
    const directive = (m[4] ?? '').toLowerCase();
    const status = directive === 'skip' ? 'skip' : directive === 'todo' ? (ok ? 'pass' : 'todo') : ok ? 'pass' : 'fail';
    r.tests.set(Number(m[2]), { status, name: (m[3] ?? '').trim() });
  }
  return r;
}

function summarise(tap, timedOut) {
  const count = (s) => [...tap.tests.values()].filter((t) => t.status === s).length;
  const planned = tap.planned ?? 0;
  const seen = tap.tests.size;
  // Planned tests that never reported (the file died or was stopped) count as failed.
  const missing = Math.max(0, planned - seen);
  return {
    planned, pass: count('pass'), fail: count('fail') + missing, skip: count('skip'), todo: count('todo'),
    missing, skipAll: tap.skipAll, timedOut,
  };
}

/**
 * Runs one file. With `keepLogs`, Test::Nginx keeps its directories (TEST_NGINX_LEAVE) so that the
 * error.log Sluice wrote while serving can be read; they are removed here afterwards.
 */
function runFile(suite, file, binary, env, timeoutS, keepLogs) {
  return new Promise((done) => {
    const before = new Set(readdirSync(tmpdir()).filter((d) => d.startsWith('nginx-test-')));
    // A process group of its own, so that a file over its time can be stopped with everything it
    // started (the server under test and the backends the test forks).
    const child = spawn('perl', [file], {
      cwd: suite, detached: true, stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env, ...(keepLogs ? { TEST_NGINX_LEAVE: '1' } : {}), TEST_NGINX_BINARY: binary },
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (b) => { out += b; });
    child.stderr.on('data', (b) => { err += b; });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try { process.kill(-child.pid, 'SIGKILL'); } catch { /* already gone */ }
    }, timeoutS * 1000);
    child.on('error', (e) => { err += String(e); });
    child.on('close', () => {
      clearTimeout(timer);
      let errorLogs = '';
      // Test::Nginx removes its directory in DESTROY, which a killed file never reaches.
      for (const d of readdirSync(tmpdir())) {
        if (!d.startsWith('nginx-test-') || before.has(d)) continue;
        const dir = join(tmpdir(), d);
        if (keepLogs && existsSync(join(dir, 'error.log'))) errorLogs += readFileSync(join(dir, 'error.log'), 'utf8');
        if (keepLogs || timedOut) rmSync(dir, { recursive: true, force: true });
      }
      done({ out, err, timedOut, errorLogs });
    });
  });
}

const shorten = (msg) => {
  const m = msg
    .replace(/"([^"]*)"/g, (all, inner) => (/^[a-z_][a-z0-9_]*:?$/.test(inner) ? all : '"…"'))
    .replace(/\d+/g, 'N');
  return m.length > 160 ? `${m.slice(0, 157)}...` : m;
};

/**
 * Sluice's refusals of a file's configs, one key per kind: `unknown directive "x"`, with file names
 * and values cut out. Unknown variables of one family (`$connections_active`, `$connections_reading`)
 * make one key (`$connections_*`). A failed reload (SIGHUP) is not a refusal of the config the file
 * started with; its messages are left to the error-log table.
 */
function reasonsOf(log) {
  const keys = new Set();
  const vars = new Set();
  let pending = [];
  const flush = (keep) => {
    for (const msg of keep ? pending : []) {
      const v = /^unknown "([a-z_0-9]+)" variable$/.exec(msg);
      if (v) vars.add(v[1]);
      else keys.add(shorten(msg));
    }
    pending = [];
  };
  for (const line of log.split('\n')) {
    const m = /^sluice: \[emerg\] (.*?)(?: in \/\S+:\d+)?$/.exec(line);
    if (m) pending.push(m[1]);
    else if (/^sluice: \[alert\] reload failed/.test(line)) flush(false);
    else if (!line.startsWith('  hint:')) flush(true);
  }
  flush(true);
  const names = [...vars].sort();
  const done = new Set();
  for (const name of names) {
    if (done.has(name)) continue;
    const family = names.filter((n) => !done.has(n) && n.split('_')[0] === name.split('_')[0]);
    let prefix = name;
    if (family.length > 1) {
      while (!family.every((n) => n.startsWith(prefix))) prefix = prefix.slice(0, -1);
      prefix = `${prefix.replace(/_[^_]*$/, '')}_*`;
    }
    for (const n of family.length > 1 ? family : [name]) done.add(n);
    keys.add(`unknown "${family.length > 1 ? prefix : name}" variable`);
  }
  return [...keys];
}

/**
 * What Sluice's error log said while a started config served the file's requests: errors, alerts
 * and the requests it refused as unparsable (nginx logs those at info), by kind, with counts.
 */
function runtimeMessagesOf(log) {
  const counts = new Map();
  for (const line of log.split('\n')) {
    const m = /^\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d \[(\w+)\] [\d#]+: (?:\*\d+ )?(.*)$/.exec(line);
    if (!m) continue;
    const [, level, text] = m;
    if (!['emerg', 'alert', 'crit', 'error'].includes(level) && !/^client sent invalid/.test(text)) continue;
    // nginx's context after the message: ", client: ..., server: ..., request: ..., upstream: ...".
    const key = `[${level}] ${shorten(text.replace(/, (client|server|request|upstream|host|referrer): .*$/, '').replace(/ while .*$/, ''))}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return Object.fromEntries(counts);
}

function gitCommit() {
  const rev = spawnSync('git', ['-C', repo, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).stdout.trim();
  const dirty = spawnSync('git', ['-C', repo, 'status', '--porcelain', '--untracked-files=no', '--', 'src'], { encoding: 'utf8' }).stdout.trim();
  const subject = spawnSync('git', ['-C', repo, 'log', '-1', '--format=%s'], { encoding: 'utf8' }).stdout.trim();
  return { rev: rev + (dirty ? ' (with uncommitted changes in src/)' : ''), subject };
}

const cell = (s) => (s === null ? '–' : `${s.pass}/${s.planned}`);

function markdown(results, meta, files, only) {
  const L = [];
  const sum = (side, k) => results.reduce((n, r) => n + (r[side]?.[k] ?? 0), 0);
  L.push('# nginx\'s own test suite against Sluice');
  L.push('');
  L.push('Generated by `node scripts/nginx-tests/run.mjs` (see scripts/nginx-tests/README.md); do not edit by hand.');
  L.push('Each file of [nginx-tests](https://github.com/nginx/nginx-tests) runs twice with Test::Nginx: once against');
  L.push('the installed nginx, once against Sluice through `scripts/nginx-tests/sluice-as-nginx`, which claims only');
  L.push('the modules Sluice implements (so the suite skips the other modules\' tests, as for an nginx built without');
  L.push('them) and comments out the suite\'s scaffolding that Sluice refuses (`daemon off;`, and the `root`,');
  L.push('`client_body_temp_path` and `proxy_temp_path` lines Test::Nginx adds to every http block).');
  L.push('');
  L.push(`- Date: ${meta.date}`);
  L.push(`- Sluice: ${meta.commit.rev} (${meta.commit.subject}), node ${process.version}`);
  L.push(`- nginx: ${meta.nginxVersion} (Debian build; dynamic modules whose package is not installed are left out)`);
  L.push(`- nginx-tests: ${meta.suiteRev}`);
  L.push(`- Files: ${files.length} (${meta.patterns.join(' ')}), run one at a time${only ? `; only ${only} was run` : ''}`);
  L.push('');
  L.push('Counts are subtests. *pass/planned*: passed of planned (a skipped file plans none). *fail* includes');
  L.push('planned subtests that never ran because the file died (for Sluice usually: the config was refused).');
  L.push('*skip* includes TODO subtests that failed as expected. Every file adds two subtests of its own');
  L.push('("no alerts", "no sanitizer errors"). *both* is the number of subtests that pass on both.');
  L.push('The suite is newer than the installed nginx: where nginx fails, the test checks behaviour of a later');
  L.push('nginx version that the file does not gate by version.');
  L.push('');
  L.push('## Totals');
  L.push('');
  const filesRun = (side) => results.filter((r) => r[side] && r[side].planned > 0).length;
  const bothPass = results.reduce((n, r) => n + (r.both ?? 0), 0);
  L.push('| | files run | planned | pass | fail | skip |');
  L.push('| --- | ---: | ---: | ---: | ---: | ---: |');
  for (const side of ['nginx', 'sluice']) {
    L.push(`| ${side === 'nginx' ? 'nginx' : 'Sluice'} | ${filesRun(side)} | ${sum(side, 'planned')} | ${sum(side, 'pass')} | ${sum(side, 'fail')} | ${sum(side, 'skip') + sum(side, 'todo')} |`);
  }
  L.push('');
  L.push(`Subtests that pass on both: ${bothPass}. Sluice passes ${sum('sluice', 'pass')} subtests where nginx passes ${sum('nginx', 'pass')}.`);
  const nginxOnly = results.filter((r) => r.nginx?.planned > 0 && r.sluice && r.sluice.planned === 0);
  if (nginxOnly.length > 0) {
    L.push(`${nginxOnly.length} files that nginx runs are skipped whole for Sluice (${nginxOnly.reduce((n, r) => n + r.nginx.planned, 0)} subtests nginx plans):`);
    L.push('');
    const why = new Map();
    for (const r of nginxOnly) {
      // A file's own try_run message names what it tried; a refused config is the real reason.
      const k = r.sluice.skipAll && /^no \S+ available$/.test(r.sluice.skipAll)
        ? `"${r.sluice.skipAll}": the file needs a module Sluice does not claim`
        : 'the config was refused (see the next table)';
      const e = why.get(k) ?? { files: [], planned: 0 };
      e.files.push(r.file.replace(/\.t$/, ''));
      e.planned += r.nginx.planned;
      why.set(k, e);
    }
    for (const [k, e] of [...why.entries()].sort((a, b) => b[1].planned - a[1].planned)) {
      L.push(`- ${k}: ${e.files.length} files, ${e.planned} subtests (${e.files.join(', ')})`);
    }
  }
  L.push('');
  L.push('## Why Sluice fails: refused directives and features');
  L.push('');
  L.push('Each line is one kind of message Sluice printed when it refused a test config. *files*: test files whose');
  L.push('config got it; *subtests*: how many fewer subtests Sluice passed than nginx in those files (a file with');
  L.push('several refusals counts for each); *alone*: the same, counting only files where it is the only refusal');
  L.push('(what implementing it alone would let run). Files that started but answered differently are listed after.');
  L.push('');
  const reasons = new Map();
  const elsewhere = new Set();
  for (const r of results) {
    if (!r.sluice || !r.nginx) continue;
    // A refusal in a file nginx skips as well (a newer nginx's directive, a missing module) costs
    // nothing in this comparison; it is only counted below the table.
    if (r.nginx.planned === 0) {
      for (const k of r.reasons) elsewhere.add(k);
      continue;
    }
    const lost = Math.max(0, r.nginx.pass - r.sluice.pass);
    for (const k of r.reasons) {
      const e = reasons.get(k) ?? { files: [], lost: 0, alone: 0 };
      e.files.push(r.file);
      e.lost += lost;
      if (r.reasons.length === 1) e.alone += lost;
      reasons.set(k, e);
    }
  }
  const sorted = [...reasons.entries()].sort((a, b) => b[1].lost - a[1].lost || b[1].files.length - a[1].files.length);
  L.push('| # | Sluice says | files | subtests | alone | files (first 6) |');
  L.push('| ---: | --- | ---: | ---: | ---: | --- |');
  sorted.forEach(([k, e], i) => {
    const names = e.files.slice(0, 6).map((f) => f.replace(/\.t$/, '')).join(', ') + (e.files.length > 6 ? ', …' : '');
    L.push(`| ${i + 1} | ${k.replace(/\|/g, '\\|')} | ${e.files.length} | ${e.lost} | ${e.alone} | ${names} |`);
  });
  L.push('');
  const onlyElsewhere = [...elsewhere].filter((k) => !reasons.has(k));
  if (onlyElsewhere.length > 0) {
    L.push(`${onlyElsewhere.length} further kinds of refusal come only from files that nginx ${meta.nginxVersion.replace(/^nginx\//, '')} skips as well: ${onlyElsewhere.slice(0, 12).map((k) => k.replace(/\|/g, '\\|')).join('; ')}${onlyElsewhere.length > 12 ? '; …' : ''}.`);
    L.push('');
  }
  L.push('## What Sluice logged while serving');
  L.push('');
  L.push('For the files whose config Sluice accepted: the errors and alerts in its error log, and the requests it');
  L.push('answered with 400 as unparsable (logged at info, as nginx does), by kind. *subtests*: how many fewer');
  L.push('subtests Sluice passed than nginx in the files where the message appeared.');
  L.push('');
  const runtime = new Map();
  for (const r of results) {
    if (!r.sluice || !r.nginx || r.sluice.planned === 0) continue;
    const lost = Math.max(0, r.nginx.pass - r.sluice.pass);
    for (const [k, n] of Object.entries(r.runtime ?? {})) {
      const e = runtime.get(k) ?? { files: [], times: 0, lost: 0 };
      e.files.push(r.file);
      e.times += n;
      e.lost += lost;
      runtime.set(k, e);
    }
  }
  L.push('| # | Sluice logged | times | files | subtests | files (first 6) |');
  L.push('| ---: | --- | ---: | ---: | ---: | --- |');
  [...runtime.entries()].sort((a, b) => b[1].lost - a[1].lost || b[1].times - a[1].times).slice(0, 30).forEach(([k, e], i) => {
    const names = e.files.slice(0, 6).map((f) => f.replace(/\.t$/, '')).join(', ') + (e.files.length > 6 ? ', …' : '');
    L.push(`| ${i + 1} | ${k.replace(/\|/g, '\\|')} | ${e.times} | ${e.files.length} | ${e.lost} | ${names} |`);
  });
  L.push('');
  const differing = results.filter((r) => r.sluice && r.nginx && r.reasons.length === 0 && r.sluice.planned > 0 && r.nginx.pass > r.sluice.pass);
  if (differing.length > 0) {
    L.push('Files Sluice runs without refusing anything but passes fewer subtests than nginx:');
    L.push('');
    for (const r of differing) {
      const names = r.sluiceFailed.slice(0, 8).map((n) => `"${n}"`).join(', ') + (r.sluiceFailed.length > 8 ? ', …' : '');
      L.push(`- ${r.file}: ${r.nginx.pass - r.sluice.pass} fewer${r.sluice.timedOut ? ' (stopped at the time limit)' : ''}; failing: ${names || '(died before reporting)'}`);
    }
    L.push('');
  }
  L.push('## Per file');
  L.push('');
  L.push('| file | nginx pass/planned | fail | skip | Sluice pass/planned | fail | skip | both | note |');
  L.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |');
  for (const r of results) {
    const n = r.nginx;
    const s = r.sluice;
    const notes = [];
    if (n?.skipAll && s?.skipAll && n.skipAll === s.skipAll) notes.push(`both skip: ${n.skipAll}`);
    else {
      if (n?.skipAll) notes.push(`nginx skips: ${n.skipAll}`);
      if (s?.skipAll) notes.push(`Sluice skips: ${s.skipAll}`);
    }
    if (n?.timedOut) notes.push('nginx: time limit');
    if (n?.startFailed) notes.push('nginx did not start');
    if (s?.timedOut) notes.push('Sluice: time limit');
    if (s && r.reasons.length > 0) notes.push(`refused: ${r.reasons.slice(0, 2).join('; ')}${r.reasons.length > 2 ? `; +${r.reasons.length - 2} more` : ''}`);
    const f = (x, k) => (x ? (x[k] ?? 0) : '–');
    L.push(`| ${r.file} | ${cell(n)} | ${f(n, 'fail')} | ${n ? n.skip + n.todo : '–'} | ${cell(s)} | ${f(s, 'fail')} | ${s ? s.skip + s.todo : '–'} | ${r.both ?? '–'} | ${notes.join('; ').replace(/\|/g, '\\|')} |`);
  }
  L.push('');
  return L.join('\n');
}

async function main() {
  const o = parseOptions(process.argv.slice(2));
  if (o.fromJson) {
    const { meta, results } = JSON.parse(readFileSync(o.fromJson, 'utf8'));
    const out = o.out ?? (meta.patterns.join(' ') === DEFAULT_FILES.join(' ') ? join(repo, 'docs/nginx-tests.md') : '-');
    const md = markdown(results, meta, results.map((r) => r.file), meta.only ?? null);
    if (out === '-') process.stdout.write(md);
    else writeFileSync(out, md);
    return;
  }
  const cli = join(repo, 'dist/src/cli/main.js');
  if (o.only !== 'nginx' && !existsSync(cli)) throw new Error(`${cli} is missing: run npm run build first`);
  if (o.only !== 'sluice' && !existsSync(o.nginx)) throw new Error(`${o.nginx} is missing (--nginx PATH)`);
  const patterns = o.files ?? DEFAULT_FILES;
  const files = listFiles(o.suite, patterns);
  const logs = mkdtempSync(join(tmpdir(), 'sluice-nginx-tests-'));
  const nginxEnv = { NGINX: o.nginx };
  // Running as root, nginx's workers become "nobody" and cannot read Test::Nginx's 0700 directory.
  if (process.getuid?.() === 0) nginxEnv.TEST_NGINX_GLOBALS = `user root;${process.env.TEST_NGINX_GLOBALS ? ` ${process.env.TEST_NGINX_GLOBALS}` : ''}`;
  const results = [];
  for (const file of files) {
    const r = { file, nginx: null, sluice: null, reasons: [], sluiceFailed: [], runtime: {}, both: null };
    const taps = {};
    for (const side of ['nginx', 'sluice']) {
      if (o.only && o.only !== side) continue;
      const log = join(logs, `${basename(file)}.log`);
      const started = Date.now();
      const run = side === 'nginx'
        ? await runFile(o.suite, file, join(here, 'nginx-as-installed'), nginxEnv, o.timeout)
        : await runFile(o.suite, file, join(here, 'sluice-as-nginx'), { SLUICE_NGINX_TESTS_LOG: log }, o.timeout, true);
      const tap = parseTap(run.out);
      taps[side] = tap;
      r[side] = summarise(tap, run.timedOut);
      // Test::Nginx gives the server 5 s to write its pid file; on a loaded machine a start can miss that.
      r[side].startFailed = /Can't start nginx/.test(run.err);
      if (side === 'sluice') {
        const text = existsSync(log) ? readFileSync(log, 'utf8') : '';
        r.reasons = reasonsOf(text);
        if (r.sluice.startFailed && r.reasons.length === 0) r.reasons.push('no pid file within the 5 s Test::Nginx waits (a slow start, or Sluice died at start)');
        r.sluiceLog = text.split('\n').filter((l) => l.includes('[emerg]') || l.includes('[alert]')).slice(0, 40);
        r.sluiceFailed = [...tap.tests.values()].filter((t) => t.status === 'fail').map((t) => t.name);
        r.runtime = runtimeMessagesOf(run.errorLogs);
      }
      const s = r[side];
      process.stderr.write(`${file} ${side}: ${s.skipAll ? `skipped (${s.skipAll})` : `${s.pass}/${s.planned} pass, ${s.fail} fail, ${s.skip + s.todo} skip`}${s.timedOut ? ', TIME LIMIT' : ''} [${((Date.now() - started) / 1000).toFixed(1)}s]\n`);
    }
    if (taps.nginx && taps.sluice && taps.nginx.planned === taps.sluice.planned) {
      r.both = [...taps.nginx.tests].filter(([n, t]) => t.status === 'pass' && taps.sluice.tests.get(n)?.status === 'pass').length;
    } else if (taps.nginx && taps.sluice) {
      r.both = 0;
    }
    results.push(r);
  }
  rmSync(logs, { recursive: true, force: true });
  const nginxVersion = o.only === 'sluice' ? '(not run)'
    : (spawnSync(o.nginx, ['-v'], { encoding: 'utf8' }).stderr.trim().replace(/^nginx version: /, ''));
  const suiteRev = spawnSync('git', ['-C', o.suite, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).stdout.trim()
    || (existsSync(join(o.suite, '.nginx-tests-commit')) ? readFileSync(join(o.suite, '.nginx-tests-commit'), 'utf8').trim() : 'unknown commit');
  const meta = { date: new Date().toISOString().slice(0, 10), commit: gitCommit(), nginxVersion, suiteRev, patterns, only: o.only };
  const md = markdown(results, meta, files, o.only);
  const out = o.out ?? (o.files === null ? join(repo, 'docs/nginx-tests.md') : '-');
  if (out === '-') process.stdout.write(md);
  else {
    writeFileSync(out, md);
    process.stderr.write(`run.mjs: wrote ${out}\n`);
  }
  if (o.json) writeFileSync(o.json, `${JSON.stringify({ meta, results }, null, 1)}\n`);
}

main().catch((e) => {
  process.stderr.write(`run.mjs: ${e.message}\n`);
  process.exit(1);
});

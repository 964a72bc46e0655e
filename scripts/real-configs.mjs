#!/usr/bin/env node
/**
 * `npm run real-configs`: a measurement, not a test. For every fixture in
 * test/fixtures/real-configs/ (configs written after real nginx configs that front WebSocket
 * apps; test/fixtures/real-configs/README.md says where each came from) it prepares a temporary
 * prefix directory, runs `nginx -t` (when nginx is installed; it is never started) and
 * `sluice -t` on it, and prints which of the two accept it, what Sluice refuses, and a ranking
 * of the refused directives by the number of configs that use them.
 *
 * Exits 0 whatever the two programs say; only a failure of this script itself exits 1.
 *
 * Options:
 *   --only TEXT    only the fixtures whose file name contains TEXT
 *   --verbose      print what nginx and Sluice said for every fixture
 *   --keep         keep the temporary prefixes and print where they are
 *   --write-doc    also write the result to docs/real-configs.md
 *
 * Environment: NGINX (the nginx binary; default /usr/sbin/nginx, else `nginx` on PATH),
 * OPENSSL (default `openssl`).
 *
 * How a prefix is prepared (the fixtures rely on it; keep README.md in step):
 * - the fixture is copied to PREFIX/<name>.conf, so paths in it resolve against PREFIX both for
 *   nginx (its conf prefix is the config file's directory) and for Sluice;
 * - _shared/ and then <name>.d/ next to the fixture are copied into PREFIX;
 * - `@PREFIX@` in any of those files becomes the absolute prefix (for unix socket paths);
 * - certs/ holds a certificate for localhost signed by a local CA: cert.pem / fullchain.pem
 *   (certificate + CA), key.pem / privkey.pem, chain.pem (the CA) and dhparam.pem;
 * - mime.types, proxy_params, fastcgi_params, fastcgi.conf, uwsgi_params and scgi_params are
 *   copied from /etc/nginx when present (else a minimal stand-in is written);
 * - the directories logs/, run/, cache/, tmp/, html/, www/ and modules-enabled/ exist.
 *
 * Lines of a fixture between `# >>> wrapper` and `# <<< wrapper` were added around a source that
 * is only a server block or a conf.d file (Debian's or the Docker image's default nginx.conf);
 * a refusal on those lines is counted as coming from the wrapper.
 */
import { spawnSync, execFileSync } from 'node:child_process';
import {
  closeSync, cpSync, existsSync, openSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, copyFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const FIXTURES = join(ROOT, 'test', 'fixtures', 'real-configs');
const SLUICE = join(ROOT, 'dist', 'src', 'cli', 'main.js');
const CERTS_MODULE = join(ROOT, 'dist', 'scripts', 'certs.js');
const DOC = join(ROOT, 'docs', 'real-configs.md');
const RUN_TIMEOUT_MS = 60_000;

/** Include files the distributions ship next to nginx.conf; the fixtures include them by name. */
const DISTRO_FILES = {
  'mime.types': 'types {\n    text/html html htm;\n    text/css css;\n    application/javascript js;\n}\n',
  proxy_params: 'proxy_set_header Host $host;\nproxy_set_header X-Real-IP $remote_addr;\n'
    + 'proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\nproxy_set_header X-Forwarded-Proto $scheme;\n',
  fastcgi_params: 'fastcgi_param QUERY_STRING $query_string;\nfastcgi_param REQUEST_METHOD $request_method;\n',
  'fastcgi.conf': 'fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;\n'
    + 'fastcgi_param QUERY_STRING $query_string;\n',
  uwsgi_params: 'uwsgi_param QUERY_STRING $query_string;\nuwsgi_param REQUEST_METHOD $request_method;\n',
  scgi_params: 'scgi_param REQUEST_METHOD $request_method;\nscgi_param REQUEST_URI $request_uri;\n',
};
const PREFIX_DIRS = ['logs', 'run', 'cache', 'tmp', 'html', 'www', 'modules-enabled', 'certs'];

function parseArgs(argv) {
  const opts = { only: undefined, verbose: false, keep: false, writeDoc: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--only') opts.only = argv[++i];
    else if (a === '--verbose') opts.verbose = true;
    else if (a === '--keep') opts.keep = true;
    else if (a === '--write-doc') opts.writeDoc = true;
    else throw new Error(`unknown option "${a}" (known: --only TEXT, --verbose, --keep, --write-doc)`);
  }
  return opts;
}

function findNginx() {
  const candidates = [process.env.NGINX, '/usr/sbin/nginx', 'nginx'].filter(Boolean);
  for (const bin of candidates) {
    const r = spawnSync(bin, ['-v'], { encoding: 'utf8' });
    if (r.error === undefined && r.status === 0) return { bin, version: (r.stderr || r.stdout).trim().replace(/^nginx version: /, '') };
  }
  return undefined;
}

/** Copies a tree, replacing @PREFIX@ in text files. */
function copyTree(from, to, prefix) {
  if (!existsSync(from)) return;
  for (const entry of readdirSync(from, { withFileTypes: true })) {
    const src = join(from, entry.name);
    const dst = join(to, entry.name);
    if (entry.isDirectory()) {
      mkdirSync(dst, { recursive: true });
      copyTree(src, dst, prefix);
    } else {
      writeSubstituted(src, dst, prefix);
    }
  }
}

function writeSubstituted(src, dst, prefix) {
  const bytes = readFileSync(src);
  if (bytes.includes(0)) { copyFileSync(src, dst); return; }
  writeFileSync(dst, bytes.toString('utf8').replaceAll('@PREFIX@', prefix));
}

/** A CA-signed certificate for localhost and a DH parameter file, made once per run. */
async function makeMaterial(dir) {
  if (!existsSync(CERTS_MODULE)) throw new Error(`${relative(ROOT, CERTS_MODULE)} is missing; run \`npm run build\` first`);
  const { generateCertificates } = await import(pathToFileURL(CERTS_MODULE).href);
  const openssl = process.env.OPENSSL ?? 'openssl';
  const files = await generateCertificates(join(dir, 'raw'), {
    openssl,
    cas: [{ name: 'ca', commonName: 'Real-configs Local CA' }],
    certs: [{ name: 'server', dnsNames: ['localhost', '*.example.test', 'example.test'], ips: ['127.0.0.1', '::1'], days: 30 }],
  });
  const ca = readFileSync(files.cas.get('ca').cert, 'utf8');
  const cert = readFileSync(files.certs.get('server').cert, 'utf8');
  const key = readFileSync(files.certs.get('server').key, 'utf8');
  const out = join(dir, 'certs');
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'cert.pem'), cert + ca);
  writeFileSync(join(out, 'fullchain.pem'), cert + ca);
  writeFileSync(join(out, 'chain.pem'), ca);
  writeFileSync(join(out, 'key.pem'), key);
  writeFileSync(join(out, 'privkey.pem'), key);
  // -dsaparam: a safe-prime search takes minutes; the file only has to load.
  execFileSync(openssl, ['dhparam', '-dsaparam', '-out', join(out, 'dhparam.pem'), '2048'], { stdio: 'ignore', timeout: RUN_TIMEOUT_MS });
  return out;
}

function preparePrefix(root, fixture, certs) {
  const name = basename(fixture, '.conf');
  const prefix = join(root, name);
  for (const d of PREFIX_DIRS) mkdirSync(join(prefix, d), { recursive: true });
  cpSync(certs, join(prefix, 'certs'), { recursive: true });
  for (const [file, fallback] of Object.entries(DISTRO_FILES)) {
    const system = join('/etc/nginx', file);
    if (existsSync(system)) copyFileSync(system, join(prefix, file));
    else writeFileSync(join(prefix, file), fallback);
  }
  copyTree(join(FIXTURES, '_shared'), prefix, prefix);
  copyTree(join(FIXTURES, `${name}.d`), prefix, prefix);
  const conf = join(prefix, `${name}.conf`);
  writeSubstituted(fixture, conf, prefix);
  return { prefix, conf };
}

/**
 * Runs a checker with its output going to a file: configs that log to /dev/stdout or /dev/stderr
 * make nginx open those paths, which fails (ENXIO) when they are the sockets a pipe uses.
 */
function run(bin, args, cwd, name) {
  const log = join(cwd, `${name}.out`);
  const fd = openSync(log, 'w');
  let r;
  try {
    r = spawnSync(bin, args, { cwd, stdio: ['ignore', fd, fd], timeout: RUN_TIMEOUT_MS });
  } finally {
    closeSync(fd);
  }
  if (r.error !== undefined && r.error.code !== 'ETIMEDOUT') throw r.error;
  return { ok: r.status === 0, timedOut: r.error?.code === 'ETIMEDOUT', output: readFileSync(log, 'utf8') };
}

function runNginx(nginx, prefix, conf) {
  const setsPid = /^\s*pid\s/m.test(readFileSync(conf, 'utf8'));
  const globals = `error_log stderr;${setsPid ? '' : ` pid ${join(prefix, 'run', 'nginx.pid')};`}`;
  return run(nginx.bin, ['-t', '-p', `${prefix}/`, '-c', conf, '-g', globals], prefix, 'nginx-t');
}

function runSluice(prefix, conf) {
  return run(process.execPath, [SLUICE, '-t', '-p', `${prefix}/`, '-c', conf], prefix, 'sluice-t');
}

/** Line numbers (1-based) of the fixture lines a wrapper added. */
function wrapperLines(text) {
  const lines = new Set();
  let inside = false;
  text.split('\n').forEach((line, i) => {
    if (/^\s*#\s*>>>\s*wrapper/.test(line)) inside = true;
    if (inside) lines.add(i + 1);
    if (/^\s*#\s*<<<\s*wrapper/.test(line)) inside = false;
  });
  return lines;
}

/**
 * What one `[emerg]` line refuses: the directive named by the message, or the first word of the
 * line it points at, and for refusals other than an unknown directive the reason too.
 */
function refusal(message) {
  const at = /^(.*) in (\S+):(\d+)$/.exec(message);
  const text = at ? at[1] : message;
  const file = at ? at[2] : undefined;
  const line = at ? Number(at[3]) : undefined;
  let directive;
  let m;
  if ((m = /^unknown directive "([^"]+)"/.exec(text))) return { key: m[1], file, line };
  if ((m = /^unknown "([^"]+)" variable/.exec(text))) return { key: `$${m[1]} (unknown variable)`, file, line };
  if ((m = /^"([^"]+)" directive/.exec(text)) || (m = /in "([^"]+)" directive/.exec(text))) directive = m[1];
  if (directive === undefined && file !== undefined && existsSync(file)) {
    const source = readFileSync(file, 'utf8').split('\n')[line - 1] ?? '';
    directive = /^\s*([^\s;{}#]+)/.exec(source)?.[1];
  }
  // A trailing quoted value (an address, a URL with variables, a path) differs per config.
  const reason = text.replace(/^"[^"]+" directive /, '').replace(/ in "[^"]+" directive$/, '')
    .replace(/ "[^"]*[$/:][^"]*"$/, '');
  const key = directive === undefined ? reason : `${directive}: ${reason}`;
  return { key, file, line };
}

/**
 * Whether a refusal comes from lines a wrapper added: lines of the fixture between the markers,
 * or an include file the script provides (mime.types, proxy_params...) that only wrapper lines
 * include.
 */
function fromWrapper(r, conf, text, wrapper) {
  if (r.file === conf) return wrapper.has(r.line);
  const name = r.file === undefined ? undefined : basename(r.file);
  if (name === undefined || !(name in DISTRO_FILES) || dirname(r.file) !== dirname(conf)) return false;
  const including = text.split('\n').map((l, i) => ({ l, n: i + 1 }))
    .filter(({ l }) => new RegExp(`^\\s*include\\s+(\\S*/)?${name.replace('.', '\\.')}\\s*;`).test(l));
  return including.length > 0 && including.every(({ n }) => wrapper.has(n));
}

function emergLines(output) {
  // nginx writes "[emerg] PID#TID: message"
  return output.split('\n').map((l) => /\[emerg\] (?:\d+#\d+: )?(.*)$/.exec(l)?.[1]).filter((l) => l !== undefined);
}

function appOf(fixture) {
  const first = readFileSync(fixture, 'utf8').split('\n')[0] ?? '';
  return /^#\s*\d+\s+([^:]+):/.exec(first)?.[1]?.trim() ?? '';
}

function measure(fixture, root, certs, nginx) {
  const name = basename(fixture, '.conf');
  const { prefix, conf } = preparePrefix(root, fixture, certs);
  const text = readFileSync(conf, 'utf8');
  const wrapper = wrapperLines(text);
  const ng = nginx === undefined ? undefined : runNginx(nginx, prefix, conf);
  const sl = runSluice(prefix, conf);
  const refused = new Map(); // key -> true when every occurrence is on wrapper lines
  for (const msg of emergLines(sl.output)) {
    const r = refusal(msg);
    refused.set(r.key, (refused.get(r.key) ?? true) && fromWrapper(r, conf, text, wrapper));
  }
  if (!sl.ok && refused.size === 0) refused.set(sl.timedOut ? '(timed out)' : '(no [emerg] line)', false);
  const nginxWhy = ng === undefined || ng.ok ? undefined : (emergLines(ng.output)[0] ?? (ng.timedOut ? 'timed out' : ng.output.trim().split('\n').pop()));
  return {
    name, app: appOf(fixture), prefix, nginx: ng === undefined ? undefined : ng.ok, nginxWhy,
    sluice: sl.ok, refused, nginxOutput: ng?.output ?? '', sluiceOutput: sl.output,
  };
}

function shortNginxWhy(why, prefix) {
  return why?.replaceAll(`${prefix}/`, '');
}

function rank(results) {
  const byKey = new Map();
  for (const r of results) {
    for (const [key, wrapperOnly] of r.refused) {
      const e = byKey.get(key) ?? { key, configs: 0, nginxAccepted: 0, ownLines: 0 };
      e.configs++;
      if (r.nginx === true) e.nginxAccepted++;
      if (!wrapperOnly) e.ownLines++;
      byKey.set(key, e);
    }
  }
  return [...byKey.values()].sort((a, b) => b.configs - a.configs || b.nginxAccepted - a.nginxAccepted || a.key.localeCompare(b.key));
}

function totals(results) {
  const nginxOk = results.filter((r) => r.nginx === true).length;
  const sluiceOk = results.filter((r) => r.sluice).length;
  const both = results.filter((r) => r.nginx === true && r.sluice).length;
  // Refused only for lines of the distribution's default nginx.conf, none of the app's own.
  const onlyWrapper = results.filter((r) => !r.sluice && r.refused.size > 0 && [...r.refused.values()].every(Boolean)).length;
  return { count: results.length, nginxOk, sluiceOk, both, onlyWrapper, nginxRan: results.some((r) => r.nginx !== undefined) };
}

function yesNo(v) {
  return v === undefined ? 'n/a' : v ? 'ok' : 'refuses';
}

function printText(results, nginx) {
  const w = Math.max(...results.map((r) => r.name.length), 7);
  const out = [];
  out.push(`${'fixture'.padEnd(w)}  nginx    sluice   refused by sluice`);
  for (const r of results) {
    out.push(`${r.name.padEnd(w)}  ${yesNo(r.nginx).padEnd(7)}  ${yesNo(r.sluice).padEnd(7)}  ${[...r.refused.keys()].join(', ')}`);
  }
  const t = totals(results);
  out.push('');
  out.push(`nginx ${nginx?.version ?? '(not installed)'} accepts ${t.nginxRan ? `${t.nginxOk} of ${t.count}` : 'n/a'}`);
  out.push(`sluice accepts ${t.sluiceOk} of ${t.count}`);
  if (t.nginxRan) out.push(`sluice accepts ${t.both} of the ${t.nginxOk} nginx accepts`);
  out.push(`sluice refuses ${t.onlyWrapper} only for lines of the default nginx.conf wrapped around them`);
  const refusedByNginx = results.filter((r) => r.nginx === false);
  if (refusedByNginx.length > 0) {
    out.push('');
    out.push('nginx refuses:');
    for (const r of refusedByNginx) out.push(`  ${r.name}: ${shortNginxWhy(r.nginxWhy, r.prefix)}`);
  }
  out.push('');
  out.push('what Sluice refuses, by number of configs (of those: nginx accepts / in the source\'s own lines, not only a wrapper):');
  for (const e of rank(results)) out.push(`  ${String(e.configs).padStart(3)}  (${e.nginxAccepted} / ${e.ownLines})  ${e.key}`);
  process.stdout.write(`${out.join('\n')}\n`);
}

function md(s) {
  return String(s).replaceAll('|', '\\|');
}

/** The commit measured, and the last one that changed src/ (what decides Sluice's answers). */
function gitDescribe() {
  const git = (...args) => execFileSync('git', args, { cwd: ROOT, encoding: 'utf8' }).trim();
  try {
    const head = git('rev-parse', '--short', 'HEAD');
    const src = git('log', '-1', '--format=%h %s', '--', 'src');
    const dirty = git('status', '--porcelain', '--', 'src') !== '' ? ', with uncommitted changes in src/' : '';
    return `${head} (src/ last changed in ${src}${dirty})`;
  } catch {
    return 'unknown';
  }
}

function writeDoc(results, nginx) {
  const t = totals(results);
  const lines = [];
  lines.push('# Real-world configs: what nginx and Sluice accept');
  lines.push('');
  lines.push('Measured by `npm run real-configs -- --write-doc` over the fixtures in');
  lines.push('[test/fixtures/real-configs/](../test/fixtures/real-configs/README.md): configs written after');
  lines.push('real nginx configs from public repositories that front WebSocket apps (the README there says');
  lines.push('where each came from). Each is checked with `nginx -t` and `sluice -t` in a prepared prefix;');
  lines.push('nothing is started. This is a measurement, not a test: it records where Sluice stands.');
  lines.push('');
  lines.push(`- Date: ${new Date().toISOString().slice(0, 10)}`);
  lines.push(`- Commit: ${gitDescribe()}`);
  lines.push(`- nginx: ${nginx?.version ?? 'not installed'}; Node.js ${process.version}`);
  lines.push('');
  lines.push('## Totals');
  lines.push('');
  lines.push(`- Configs: ${t.count}`);
  lines.push(`- nginx accepts: ${t.nginxRan ? t.nginxOk : 'n/a'}`);
  lines.push(`- Sluice accepts: ${t.sluiceOk}`);
  if (t.nginxRan) lines.push(`- Sluice accepts ${t.both} of the ${t.nginxOk} that nginx accepts`);
  lines.push(`- Sluice refuses ${t.onlyWrapper} only for lines of the default nginx.conf wrapped around them`);
  lines.push('');
  lines.push('## What Sluice refuses, by number of configs');
  lines.push('');
  lines.push('"In the source\'s own lines": configs where the refusal is not only on the default nginx.conf');
  lines.push('lines a fixture adds around a source that is a bare server block or conf.d file (Debian\'s or the');
  lines.push('Docker image\'s, marked as wrapper in the fixture), nor only in mime.types those lines include.');
  lines.push('');
  lines.push('| Refused | Configs | Of those nginx accepts | In the source\'s own lines |');
  lines.push('| --- | ---: | ---: | ---: |');
  for (const e of rank(results)) lines.push(`| \`${md(e.key)}\` | ${e.configs} | ${e.nginxAccepted} | ${e.ownLines} |`);
  lines.push('');
  lines.push('## Per config');
  lines.push('');
  lines.push('| Fixture | App | nginx -t | sluice -t | Sluice refuses |');
  lines.push('| --- | --- | --- | --- | --- |');
  for (const r of results) {
    const refusedList = [...r.refused.keys()].map((k) => `\`${md(k)}\``).join(', ');
    lines.push(`| ${r.name} | ${md(r.app)} | ${yesNo(r.nginx)} | ${yesNo(r.sluice)} | ${refusedList} |`);
  }
  const refusedByNginx = results.filter((r) => r.nginx === false);
  if (refusedByNginx.length > 0) {
    lines.push('');
    lines.push('## Why nginx refuses some');
    lines.push('');
    for (const r of refusedByNginx) lines.push(`- ${r.name}: ${md(shortNginxWhy(r.nginxWhy, r.prefix))}`);
  }
  lines.push('');
  writeFileSync(DOC, lines.join('\n'));
  process.stdout.write(`\nwrote ${relative(ROOT, DOC)}\n`);
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (!existsSync(SLUICE)) throw new Error(`${relative(ROOT, SLUICE)} is missing; run \`npm run build\` first`);
  const fixtures = readdirSync(FIXTURES)
    .filter((f) => /^\d+-.*\.conf$/.test(f) && statSync(join(FIXTURES, f)).isFile())
    .filter((f) => opts.only === undefined || f.includes(opts.only))
    .sort()
    .map((f) => join(FIXTURES, f));
  if (fixtures.length === 0) throw new Error('no fixture matches');
  const nginx = findNginx();
  if (nginx === undefined) process.stderr.write('nginx is not installed: only Sluice is measured\n');
  const root = mkdtempSync(join(tmpdir(), 'sluice-real-configs-'));
  try {
    const certs = await makeMaterial(join(root, '_material'));
    const results = fixtures.map((f) => measure(f, root, certs, nginx));
    if (opts.verbose) {
      for (const r of results) {
        process.stdout.write(`--- ${r.name}\nnginx:\n${r.nginxOutput.trim()}\nsluice:\n${r.sluiceOutput.trim()}\n`);
      }
      process.stdout.write('\n');
    }
    printText(results, nginx);
    if (opts.writeDoc) writeDoc(results, nginx);
  } finally {
    if (opts.keep) process.stdout.write(`\nprefixes kept in ${root}\n`);
    else rmSync(root, { recursive: true, force: true });
  }
}

main().catch((err) => {
  process.stderr.write(`real-configs: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});

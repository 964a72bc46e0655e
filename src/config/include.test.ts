/** Reading files: the main file, includes (globs, prefix, cycles, errors), -T dump. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MAX_INCLUDE_DEPTH, MAX_INCLUDED_FILES } from './include.js';
import { dumpConfig, formatProblem, loadConfig } from './load.js';
import { expandGlob } from './glob.js';
import { fakeResolveHost, lines, show } from './fixtures.js';

let dir = '';

async function write(rel: string, text: string): Promise<string> {
  const path = join(dir, rel);
  await mkdir(join(path, '..'), { recursive: true });
  await writeFile(path, text);
  return path;
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sluice-config-'));
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('a config file with includes: globs sorted, relative to the prefix, in context', async () => {
  const main = await write('a/sluice.conf', lines(
    'events {}',
    'http {',
    '  include conf.d/*.conf;',
    '  include nothing/*.conf;',
    '  server {',
    '    listen 8080;',
    '    location / {',
    '      include snippets/proxy[0-9].inc;',
    '    }',
    '  }',
    '}',
  ));
  await write('a/conf.d/20-map.conf', 'map $http_upgrade $connection_upgrade { include maps/upgrade.map; }\n');
  await write('a/conf.d/10-upstream.conf', 'upstream app { server 127.0.0.1:9000; }\n');
  await write('a/conf.d/.hidden.conf', 'this is not included;\n');
  await write('a/conf.d/notes.txt', 'nor is this;\n');
  await write('a/maps/upgrade.map', "default upgrade;\n'' close;\n");
  await write('a/snippets/proxy1.inc', 'proxy_pass http://app;\nproxy_set_header Connection $connection_upgrade;\n');
  await write('a/snippets/proxy2.inc', 'proxy_http_version 1.1;\n');

  const r = await loadConfig({ file: main, resolveHost: fakeResolveHost });
  if (!r.ok) assert.fail(r.problems.map(formatProblem).join('\n'));
  const c = r.config;
  assert.equal(c.file, main);
  assert.equal(c.prefix, join(dir, 'a'));
  assert.deepEqual(c.sources.map((s) => s.file.slice(dir.length)), [
    '/a/sluice.conf', '/a/conf.d/10-upstream.conf', '/a/conf.d/20-map.conf', '/a/maps/upgrade.map',
    '/a/snippets/proxy1.inc', '/a/snippets/proxy2.inc',
  ]);
  assert.deepEqual([...c.http!.upstreams.keys()], ['app']);
  assert.deepEqual(c.http!.upstreams.get('app')!.loc, { file: join(dir, 'a/conf.d/10-upstream.conf'), line: 1 });
  assert.equal(c.http!.maps[0]!.exact.get('')!.constant, 'close');
  const loc = c.http!.servers[0]!.locations[0]!;
  assert.equal(loc.settings.proxyPass!.upstream, 'app');
  assert.equal(loc.settings.proxyHttpVersion, '1.1');

  // -T: every file under nginx's header, each followed by a newline.
  const dump = dumpConfig(c.sources);
  assert.ok(dump.startsWith(`# configuration file ${main}:\nevents {}\n`));
  assert.ok(dump.includes(`# configuration file ${join(dir, 'a/maps/upgrade.map')}:\ndefault upgrade;\n'' close;\n\n`));
});

test('includes follow -p, not the config file directory', async () => {
  const main = await write('b/etc/main.conf', 'events {}\ninclude extra.conf;\n');
  await write('b/prefix/extra.conf', 'worker_processes 3;\n');
  const r = await loadConfig({ file: main, prefix: join(dir, 'b/prefix') });
  if (!r.ok) assert.fail(r.problems.map(formatProblem).join('\n'));
  assert.equal(r.config.workerProcesses, 3);
});

test('problems in several files are all reported with absolute file:line', async () => {
  const main = await write('c/main.conf', lines('events {}', 'http {', '  include servers/*.conf;', '  proxy_read_timeout x;', '}'));
  const one = await write('c/servers/one.conf', lines('server {', '  listen 80;', '  lisen 81;', '}'));
  const two = await write('c/servers/two.conf', lines('server {', '  location / { proxy_pass http://127.0.0.1:1; }', '  location / { }', '}'));
  const r = await loadConfig({ file: main });
  assert.equal(r.ok, false);
  if (r.ok) return;
  assert.deepEqual(r.problems.map(show), [
    `"proxy_read_timeout" directive invalid value in ${main}:4`,
    `unknown directive "lisen" in ${one}:3`,
    `duplicate location "/" in ${two}:3`,
  ]);
  assert.deepEqual(r.sources.map((s) => s.file), [main, one, two]);
});

test('syntax errors in several files are all reported', async () => {
  const main = await write('d/main.conf', lines('events {}', 'include a.conf;', 'include b.conf;'));
  const a = await write('d/a.conf', 'http {\n');
  const b = await write('d/b.conf', 'pid x.pid; }\n');
  const r = await loadConfig({ file: main });
  assert.deepEqual(!r.ok && r.problems.map(show), [
    `unexpected end of file, expecting "}" in ${a}:2`,
    `unexpected "}" in ${b}:1`,
  ]);
});

test('a missing include file, a missing main file, a missing glob directory', async () => {
  const main = await write('e/main.conf', lines('events {}', 'include missing.conf;', 'include nowhere/*.conf;'));
  const r = await loadConfig({ file: main });
  assert.deepEqual(!r.ok && r.problems.map(show), [
    `open() "${join(dir, 'e/missing.conf')}" failed (2: No such file or directory) in ${main}:2`,
  ]);
  const gone = join(dir, 'e/gone.conf');
  const r2 = await loadConfig({ file: gone });
  assert.deepEqual(!r2.ok && r2.problems.map(formatProblem), [`[emerg] open() "${gone}" failed (2: No such file or directory)`]);
});

test('include cycles are errors', async () => {
  const main = await write('f/main.conf', lines('events {}', 'include a.conf;'));
  const a = await write('f/a.conf', 'include b.conf;\n');
  await write('f/b.conf', 'include a.conf;\ninclude main.conf;\n');
  const b = join(dir, 'f/b.conf');
  const r = await loadConfig({ file: main });
  assert.deepEqual(!r.ok && r.problems.map(show), [
    `recursive include of "${a}" in ${b}:1`,
    `recursive include of "${main}" in ${b}:2`,
  ]);
});

test('a file included twice (not a cycle) is fine and dumped once', async () => {
  const main = await write('g/main.conf', lines('events {}', 'http {', '  server { listen 1; include common.conf; }', '  server { listen 2; include common.conf; }', '}'));
  await write('g/common.conf', 'add_header X-Common yes;\n');
  const r = await loadConfig({ file: main });
  if (!r.ok) assert.fail(r.problems.map(formatProblem).join('\n'));
  assert.equal(r.config.sources.length, 2);
  assert.deepEqual(r.config.http!.servers.map((s) => s.settings.addHeaders.length), [1, 1]);
});

test('include arity and shape', async () => {
  const r = await loadConfig({ text: lines('events {}', 'include;', 'include a b;', 'include x { }') });
  assert.deepEqual(!r.ok && r.problems.map(show), [
    'invalid number of arguments in "include" directive in <inline>:2',
    'invalid number of arguments in "include" directive in <inline>:3',
    'directive "include" is not terminated by ";" in <inline>:4',
  ]);
});

test('text with a file name is that file; inline text includes relative to the prefix', async () => {
  await write('h/inc.conf', 'worker_processes 5;\n');
  const asFile = await loadConfig({ file: join(dir, 'h/virtual.conf'), text: 'events {}\ninclude inc.conf;\n' });
  if (!asFile.ok) assert.fail(asFile.problems.map(formatProblem).join('\n'));
  assert.equal(asFile.config.file, join(dir, 'h/virtual.conf'));
  assert.equal(asFile.config.workerProcesses, 5);
  const inline = await loadConfig({ text: 'events {}\ninclude inc.conf;\n', prefix: join(dir, 'h') });
  if (!inline.ok) assert.fail(inline.problems.map(formatProblem).join('\n'));
  assert.equal(inline.config.workerProcesses, 5);
  assert.equal(inline.config.sources[0]!.file, '<inline>');
});

test('glob: *, ?, [..], [!..], sorted, files only, no dot files', async () => {
  for (const f of ['x/a1.conf', 'x/a2.conf', 'x/b1.conf', 'x/.a3.conf', 'x/sub/a9.conf', 'y/a1.conf']) await write(`glob/${f}`, '');
  await mkdir(join(dir, 'glob/x/a5.conf'));
  const rel = async (p: string) => (await expandGlob(join(dir, 'glob', p))).map((f) => f.slice(join(dir, "glob").length));
  assert.deepEqual(await rel('x/*.conf'), ['/x/a1.conf', '/x/a2.conf', '/x/b1.conf']);
  assert.deepEqual(await rel('x/a?.conf'), ['/x/a1.conf', '/x/a2.conf']);
  assert.deepEqual(await rel('x/[ab]1.conf'), ['/x/a1.conf', '/x/b1.conf']);
  assert.deepEqual(await rel('x/[!a]*'), ['/x/b1.conf']);
  assert.deepEqual(await rel('*/a1.conf'), ['/x/a1.conf', '/y/a1.conf']);
  assert.deepEqual(await rel('x/.*.conf'), ['/x/.a3.conf']);
  assert.deepEqual(await rel('none/*.conf'), []);
});

test('a UTF-8 byte order mark at the start of a file is ignored', async () => {
  const main = await write('bom/main.conf', '\uFEFFevents {}\n');
  const r = await loadConfig({ file: main });
  assert.equal(r.ok, true, !r.ok ? r.problems.map(formatProblem).join('\n') : '');
});

test('files that include their own folder by mask: one message per include line, not one per path', async () => {
  // Each of N files includes c/*.conf: N! paths through N^2 include edges. Before, every path
  // reported its cycle (N=8: 1.5 million lines in 133 s); now each include line reports once.
  for (const n of [6, 8, 64]) {
    const sub = `cycle${n}`;
    const main = await write(`${sub}/main.conf`, lines('events {}', 'http {', '  include c/*.conf;', '}'));
    const files: string[] = [];
    for (let i = 1; i <= n; i++) files.push(await write(`${sub}/c/f${String(i).padStart(2, '0')}.conf`, 'include c/*.conf;\n'));
    const r = await loadConfig({ file: main });
    assert.equal(r.ok, false);
    if (r.ok) return;
    assert.deepEqual(r.problems.map(show), files.map((f) => `recursive include of "${files[0]}" in ${f}:1`), `N=${n}`);
    assert.equal(r.problems[0]!.hint,
      `these includes form a cycle: ${files[0]}:1 -> ${files[0]}; a file may not include itself, directly or through other files: remove one of them`);
    assert.equal(r.problems[1]!.hint?.startsWith(`these includes form a cycle: ${files[0]}:1 -> ${files[1]}:1 -> ${files[0]};`), true);
  }
});

test('a cycle through the -g text and the main file is reported at the -g include', async () => {
  const main = await write('gcycle/main.conf', lines('events {}', 'include b.conf;'));
  await write('gcycle/b.conf', 'worker_processes 1;\n');
  const r = await loadConfig({ file: main, globalDirectives: 'include main.conf;' });
  assert.deepEqual(!r.ok && r.problems.map(show), [`recursive include of "${main}" in <command line>:1`]);
  assert.equal(!r.ok && r.problems[0]!.hint?.startsWith(`these includes form a cycle: <command line>:1 -> ${main};`), true);
});

test(`includes may nest ${MAX_INCLUDE_DEPTH} deep; one more is refused at the include line, with the chain`, async () => {
  const chain = async (sub: string, depth: number): Promise<string[]> => {
    const files = [await write(`${sub}/main.conf`, lines('events {}', 'include f1.conf;'))];
    for (let i = 1; i <= depth; i++) files.push(await write(`${sub}/f${i}.conf`, i < depth ? `include f${i + 1}.conf;\n` : 'worker_processes 2;\n'));
    return files;
  };
  await chain('deep-ok', MAX_INCLUDE_DEPTH);
  const ok = await loadConfig({ file: join(dir, 'deep-ok/main.conf') });
  assert.equal(ok.ok && ok.config.workerProcesses, 2);

  const files = await chain('deep-bad', MAX_INCLUDE_DEPTH + 1);
  const r = await loadConfig({ file: files[0]! });
  assert.deepEqual(!r.ok && r.problems.map(show), [
    `includes nested too deep (more than ${MAX_INCLUDE_DEPTH} levels) in ${files[MAX_INCLUDE_DEPTH]}:1`,
  ]);
  const hint = !r.ok ? r.problems[0]!.hint ?? '' : '';
  assert.ok(hint.startsWith(`the include chain ${files[0]}:2 -> ${files[1]}:1 -> ${files[2]}:1 -> ... (`), hint);
  assert.ok(hint.includes(` -> ${files[MAX_INCLUDE_DEPTH]}:1 -> ${files[MAX_INCLUDE_DEPTH + 1]} goes deeper than Sluice reads`), hint);
});

test(`the include tree holds at most ${MAX_INCLUDED_FILES} files, each inclusion counted`, async () => {
  // x0 includes x1 twice, x1 includes x2 twice, ...: 2^(k+1) - 1 inclusions from k + 1 files.
  const tree = async (sub: string, k: number): Promise<string> => {
    for (let i = 0; i < k; i++) await write(`${sub}/x${i}.conf`, `include x${i + 1}.conf;\ninclude x${i + 1}.conf;\n`);
    await write(`${sub}/x${k}.conf`, '');
    return write(`${sub}/main.conf`, lines('events {}', 'include x0.conf;'));
  };
  assert.ok(2 ** 16 < MAX_INCLUDED_FILES && 2 ** 17 > MAX_INCLUDED_FILES);
  const ok = await loadConfig({ file: await tree('wide-ok', 15) });
  assert.equal(ok.ok, true, !ok.ok ? ok.problems.map(show).join('\n') : '');
  const r = await loadConfig({ file: await tree('wide-bad', 16) });
  assert.equal(r.ok, false);
  if (r.ok) return;
  assert.equal(r.problems.length, 1);
  assert.match(show(r.problems[0]!), new RegExp(`^too many included files \\(more than ${MAX_INCLUDED_FILES}\\) in ${dir}/wide-bad/x\\d+\\.conf:[12]$`));
  assert.match(r.problems[0]!.hint ?? '', /every inclusion counts/);
});

/**
 * The command line as a real child process (`node dist/src/cli/main.js`): nginx's -t/-T/-q/-g/-p
 * habits and messages, version and help, run mode with a pid file and SIGTERM, plus the embedded
 * demo config and the worker_connections cap, started through the library.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import WebSocket from 'ws';
import { HELP } from '../../src/cli/args.js';
import { DEFAULT_BACKEND_PORTS, DEFAULT_CONFIG, DEFAULT_LISTEN, DEMO_PAGE, FAVICON_SVG } from '../../src/cli/default-config.js';
import { SLUICE_VERSION } from '../../src/core/version.js';
import type { EchoHttpReport } from '../../src/echo/echo-http.js';
import { startHttpBackend } from '../helpers/backends.js';
import { CliProcess, ROOT, okLines, runCli } from '../helpers/cli-process.js';
import { fileLines } from '../helpers/log-files.js';
import { startTestProxy } from '../helpers/proxy.js';
import { headerValue, rawConnect, rawRequest, readUntil } from '../helpers/raw-client.js';
import { tempDir } from '../helpers/temp.js';
import { once, waitFor } from '../helpers/wait.js';

const EXAMPLES = join(ROOT, 'examples');

/** Only the lines sluice prints itself (hints are indented and belong to the config's wording). */
function sluiceLines(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l.startsWith('sluice: '));
}

test('-t -c passes every file in examples/ with nginx\'s two lines', async () => {
  const files = readdirSync(EXAMPLES).filter((f) => f.endsWith('.conf')).sort();
  assert.ok(files.length >= 3, `examples found: ${files.join(', ')}`);
  for (const name of files) {
    const file = join(EXAMPLES, name);
    const res = await runCli(['-t', '-c', file]);
    assert.equal(res.stderr, okLines(file), name);
    assert.equal(res.stdout, '', name);
    assert.equal(res.code, 0, name);
  }
});

test('-t without -c checks the embedded default config', async () => {
  const res = await runCli(['-t']);
  assert.equal(res.stderr, okLines('<embedded default>'));
  assert.equal(res.stdout, '');
  assert.equal(res.code, 0);
});

test('-t reports every problem as [emerg] MESSAGE in FILE:LINE, included files too, and exits 1', async (t) => {
  const dir = tempDir(t);
  const main = dir.write('bad.conf', [
    'events {}',
    'http {',
    '  server {',
    '    listen 127.0.0.1:0;',
    '    bogus_directive on;',
    '    location / {',
    '      proxy_pass http://127.0.0.1:1;',
    '      proxy_read_timeout abc;',
    '    }',
    '  }',
    '  include conf.d/*.conf;',
    '}',
    '',
  ].join('\n'));
  const included = dir.write('conf.d/extra.conf', 'server {\n  listen 127.0.0.1:0;\n  return 200 $nosuchvar;\n}\n');
  const res = await runCli(['-t', '-c', main]);
  assert.deepEqual(sluiceLines(res.stderr), [
    `sluice: [emerg] unknown directive "bogus_directive" in ${main}:5`,
    `sluice: [emerg] "proxy_read_timeout" directive invalid value in ${main}:8`,
    `sluice: [emerg] unknown "nosuchvar" variable in ${included}:3`,
    `sluice: configuration file ${main} test failed`,
  ]);
  assert.equal(res.stdout, '');
  assert.equal(res.code, 1);
  // -q hides only the success lines.
  const quiet = await runCli(['-tq', '-c', main]);
  assert.deepEqual(sluiceLines(quiet.stderr), sluiceLines(res.stderr));
  assert.equal(quiet.code, 1);
  // nginx dumps only a configuration that passed.
  const dump = await runCli(['-T', '-c', main]);
  assert.equal(dump.stdout, '');
  assert.equal(dump.code, 1);
});

test('-t on a missing file names it the nginx way', async (t) => {
  const dir = tempDir(t);
  const missing = dir.join('nope.conf');
  const res = await runCli(['-t', '-c', missing]);
  assert.deepEqual(sluiceLines(res.stderr), [
    `sluice: [emerg] open() "${missing}" failed (2: No such file or directory)`,
    `sluice: configuration file ${missing} test failed`,
  ]);
  assert.equal(res.code, 1);
});

test('-T dumps every file read under "# configuration file FILE:"', async (t) => {
  const dir = tempDir(t);
  const mainText = 'events {}\nhttp {\n  include servers.conf;\n}\n';
  const serversText = 'server {\n  listen 127.0.0.1:0;\n  return 200 "dumped";\n}\n';
  const main = dir.write('main.conf', mainText);
  const servers = dir.write('servers.conf', serversText);
  const res = await runCli(['-T', '-c', main]);
  assert.equal(res.stdout, `# configuration file ${main}:\n${mainText}\n# configuration file ${servers}:\n${serversText}\n`);
  assert.equal(res.stderr, okLines(main));
  assert.equal(res.code, 0);
  const quiet = await runCli(['-Tq', '-c', main]);
  assert.equal(quiet.stdout, res.stdout);
  assert.equal(quiet.stderr, '');
  assert.equal(quiet.code, 0);
});

test('-q silences a successful test; flags may be grouped and values attached, as in nginx', async () => {
  const file = join(EXAMPLES, 'minimal-websocket.conf');
  for (const args of [['-t', '-q', '-c', file], ['-q', '-t', '-c', file], ['-tq', '-c', file], ['-qtc', file], ['-tq', `-c${file}`]]) {
    const res = await runCli(args);
    assert.equal(res.stderr, '', args.join(' '));
    assert.equal(res.stdout, '', args.join(' '));
    assert.equal(res.code, 0, args.join(' '));
  }
});

test('-g adds main-context directives; a duplicate is reported where the file sets it', async () => {
  const minimal = join(EXAMPLES, 'minimal-websocket.conf');
  const ok = await runCli(['-t', '-c', minimal, '-g', 'worker_processes 2;']);
  assert.equal(ok.stderr, okLines(minimal));
  assert.equal(ok.code, 0);
  const forwarding = join(EXAMPLES, 'forwarding-headers.conf');
  const lines = readFileSync(forwarding, 'utf8').split('\n');
  const line = lines.findIndex((l) => l.startsWith('worker_processes')) + 1;
  assert.ok(line > 0);
  const dup = await runCli(['-t', '-c', forwarding, '-g', 'worker_processes 2;']);
  assert.deepEqual(sluiceLines(dup.stderr), [
    `sluice: [emerg] "worker_processes" directive is duplicate in ${forwarding}:${line}`,
    `sluice: configuration file ${forwarding} test failed`,
  ]);
  assert.equal(dup.code, 1);
});

test('-p PREFIX: relative includes and a relative -c resolve under the prefix', async (t) => {
  const dir = tempDir(t);
  const main = dir.write('conf/main.conf', 'events {}\nhttp {\n  include sites/one.conf;\n}\n');
  dir.write('prefix/sites/one.conf', 'server {\n  listen 127.0.0.1:0;\n  return 200 "one";\n}\n');
  const without = await runCli(['-t', '-c', main]);
  assert.equal(sluiceLines(without.stderr)[0],
    `sluice: [emerg] open() "${dir.join('conf', 'sites', 'one.conf')}" failed (2: No such file or directory) in ${main}:3`);
  assert.equal(without.code, 1);
  const withPrefix = await runCli(['-t', '-p', dir.join('prefix'), '-c', main]);
  assert.equal(withPrefix.stderr, okLines(main));
  assert.equal(withPrefix.code, 0);
  // A relative -c is found under the prefix too (nginx), whatever the current directory.
  const inPrefix = dir.write('prefix/conf/main.conf', 'events {}\nhttp {\n  include sites/one.conf;\n}\n');
  const relative = await runCli(['-t', '-p', dir.join('prefix'), '-c', 'conf/main.conf'], ROOT);
  assert.equal(relative.stderr, okLines(inPrefix));
  assert.equal(relative.code, 0);
});

test('-v, -V and -h', async () => {
  const v = await runCli(['-v']);
  assert.equal(v.stderr, `sluice version: sluice/${SLUICE_VERSION}\n`);
  assert.equal(v.stdout, '');
  assert.equal(v.code, 0);
  const V = await runCli(['-V']);
  // -V also says whether the native tunnel addon loaded, and why not.
  assert.match(V.stderr, new RegExp(`^sluice version: sluice/${SLUICE_VERSION.replaceAll('.', '\\.')}\nbuilt with node ${process.version.replaceAll('.', '\\.')} \\(${process.platform} ${process.arch}\\)\nnative tunnel addon: (loaded \\(.+\\)|not loaded, .+; tunnels use the TypeScript relay)\n$`));
  const off = await runCli(['-V'], ROOT, { SLUICE_NATIVE: 'off' });
  assert.match(off.stderr, /^native tunnel addon: not loaded, SLUICE_NATIVE=off is set in the environment; tunnels use the TypeScript relay$/m);
  assert.equal(V.code, 0);
  for (const flag of ['-h', '-?']) {
    const h = await runCli([flag]);
    assert.equal(h.stdout, HELP, flag);
    assert.equal(h.stderr, '', flag);
    assert.equal(h.code, 0, flag);
  }
  assert.match(HELP, /^Usage: sluice \[-\?hvVtTq\] \[-s signal\] \[-c filename\] \[-p prefix\] \[-g directives\]\n/);
});

test('an invalid option or a missing value prints the usage and exits 1', async () => {
  const cases: [string[], string][] = [
    [['-x'], 'sluice: invalid option: "x"\n'],
    [['-tx'], 'sluice: invalid option: "x"\n'],
    [['stray'], 'sluice: invalid option: "stray"\n'],
    [['-c'], 'sluice: option "-c" requires file name\n'],
    [['-t', '-p'], 'sluice: option "-p" requires directory name\n'],
    [['-g'], 'sluice: option "-g" requires parameter\n'],
  ];
  for (const [args, first] of cases) {
    const res = await runCli(args);
    assert.equal(res.stderr, first + HELP, args.join(' '));
    assert.equal(res.stdout, '', args.join(' '));
    assert.equal(res.code, 1, args.join(' '));
  }
});

test('run mode: proxies HTTP and a WebSocket to a `sluice echo` child, writes the pid file, SIGTERM exits 0 and removes it', async (t) => {
  const dir = tempDir(t);
  const echo = new CliProcess(t, ['echo', '--port', '0', '--id', 'child-echo'], dir.path);
  const [, echoPort] = await echo.output('stdout', /^sluice echo: child-echo listening on ws:\/\/127\.0\.0\.1:(\d+)\/ \(HTTP too\)$/m);
  const conf = dir.write('proxy.conf', `
pid run/sluice.pid;
events {}
http {
  map $http_upgrade $connection_upgrade { default upgrade; '' close; }
  server {
    listen 127.0.0.1:0;
    location / {
      proxy_pass http://127.0.0.1:${echoPort!};
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
    }
  }
}
`);
  dir.write('run/.keep', '');
  const pidFile = dir.join('run', 'sluice.pid');
  const proxy = new CliProcess(t, ['-c', conf], dir.path);
  const started = await proxy.output('stderr', /^sluice: sluice\/\S+ running (.+), listening on 127\.0\.0\.1:(\d+) \(pid (\d+)\)$/m);
  assert.equal(started[1], conf);
  assert.equal(Number(started[3]), proxy.child.pid);
  assert.equal(readFileSync(pidFile, 'utf8'), `${proxy.child.pid!}\n`);
  const port = Number(started[2]);

  const res = await fetch(`http://127.0.0.1:${port}/hello?x=1`);
  assert.equal(res.status, 200);
  const report = await res.json() as EchoHttpReport;
  assert.equal(report.id, 'child-echo');
  assert.equal(report.url, '/hello?x=1');
  assert.equal(report.headers['connection'], 'close');

  const ws = new WebSocket(`ws://127.0.0.1:${port}/whoami`);
  ws.on('error', () => undefined);
  t.after(() => ws.terminate());
  const greeted = once(ws, 'message');
  const [hello] = await greeted;
  assert.deepEqual(JSON.parse(String(hello)), { id: 'child-echo' });
  ws.send('through a real process');
  const [echoed] = await once(ws, 'message');
  assert.equal(String(echoed), 'through a real process');
  const closed = once(ws, 'close');
  ws.close(1000, 'done');
  const [code] = await closed;
  assert.equal(code, 1000);

  // fetch's keep-alive connection is still open and idle: it must not hold the shutdown.
  const exit = await proxy.stop('SIGTERM');
  assert.deepEqual(exit, { code: 0, signal: null });
  assert.equal(existsSync(pidFile), false, 'the pid file is removed');
  assert.match(proxy.stderr, /^sluice: \[notice\] signal 15 \(SIGTERM\) received, exiting$/m);
  assert.deepEqual(await echo.stop('SIGTERM'), { code: 0, signal: null });
});

test('run mode: a pid file that cannot be written stops the start-up with nginx\'s message', async (t) => {
  const dir = tempDir(t);
  const conf = dir.write('proxy.conf', 'pid missing/dir/sluice.pid;\nevents {}\nhttp { server { listen 127.0.0.1:0; return 200 "x"; } }\n');
  const res = await runCli(['-c', conf], dir.path);
  assert.equal(sluiceLines(res.stderr).at(-1), `sluice: [emerg] open() "${dir.join('missing', 'dir', 'sluice.pid')}" failed (2: No such file or directory)`);
  assert.equal(res.code, 1);
});

test('the embedded demo config serves its page at / and a WebSocket to /whoami, round robin; a WebSocket at / reaches the backends; the favicon is local', async (t) => {
  const a = await startHttpBackend(undefined, { id: 'demo-a' });
  t.after(() => a.close());
  const b = await startHttpBackend(undefined, { id: 'demo-b' });
  t.after(() => b.close());
  const log = tempDir(t).join('demo.log');
  const replacements: [string, string][] = [
    [`listen ${DEFAULT_LISTEN};`, 'listen 127.0.0.1:0;'],
    [`server 127.0.0.1:${DEFAULT_BACKEND_PORTS[0]};`, `server ${a.addr};`],
    [`server 127.0.0.1:${DEFAULT_BACKEND_PORTS[1]};`, `server ${b.addr};`],
    ['access_log /dev/stdout demo;', `access_log ${log} demo;`],
  ];
  let text = DEFAULT_CONFIG;
  for (const [from, to] of replacements) {
    assert.ok(text.includes(from), `the default config contains ${from}`);
    text = text.replace(from, to);
  }
  const proxy = await startTestProxy(text, { t });

  const page = await rawRequest(proxy.port, 'GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
  assert.equal(page.head?.statusCode, 200);
  assert.equal(headerValue(page.head!, 'content-type'), 'text/html');
  assert.equal(page.body.toString('utf8'), DEMO_PAGE);
  assert.equal(headerValue(page.head!, 'content-length'), String(Buffer.byteLength(DEMO_PAGE)));
  // The browser's favicon request is answered here: it takes no round-robin turn.
  const icon = await rawRequest(proxy.port, 'GET /favicon.ico HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
  assert.equal(icon.head?.statusCode, 200);
  assert.equal(headerValue(icon.head!, 'content-type'), 'image/svg+xml');
  assert.equal(icon.body.toString('utf8'), FAVICON_SVG);
  assert.equal(a.requests.length + b.requests.length, 0, 'neither the page nor the favicon reached a backend');

  for (const id of ['demo-a', 'demo-b']) {
    const ws = new WebSocket(proxy.wsUrl('/whoami'));
    ws.on('error', () => undefined);
    t.after(() => ws.terminate());
    const greeted = once(ws, 'message');
    const [hello] = await greeted;
    assert.deepEqual(JSON.parse(String(hello)), { id });
    const closed = once(ws, 'close');
    ws.close();
    await closed;
  }

  // What `wscat -c ws://127.0.0.1:8080/` sends: an upgrade at "/" is a WebSocket to a backend
  // (the next in turn, demo-a), not the page.
  const atRoot = new WebSocket(proxy.wsUrl('/'));
  atRoot.on('error', () => undefined);
  t.after(() => atRoot.terminate());
  await once(atRoot, 'open');
  const echoed = once(atRoot, 'message');
  atRoot.send('hello at /');
  assert.equal(String((await echoed)[0]), 'hello at /');
  const rootClosed = once(atRoot, 'close');
  atRoot.close();
  await rootClosed;
  assert.equal(a.requests.filter((r) => r.url === '/').length, 1, 'the upgrade at / reached demo-a');
  // A plain GET / after it is still the page.
  const again = await rawRequest(proxy.port, 'GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
  assert.equal(again.body.toString('utf8'), DEMO_PAGE);

  const lines = await waitFor(() => {
    const all = fileLines(log);
    return all.length >= 6 ? all : null;
  }, { what: 'six demo log lines' });
  assert.equal(lines.length, 6);
  assert.match(lines[0]!, new RegExp(`^127\\.0\\.0\\.1 "GET / HTTP/1\\.1" 200 ${page.data.length} upstream=- time=\\d+\\.\\d{3}$`));
  assert.match(lines[1]!, /^127\.0\.0\.1 "GET \/favicon\.ico HTTP\/1\.1" 200 \d+ upstream=- /);
  // A WebSocket session is logged when it ends, with status 101.
  for (const backend of [a, b]) {
    const session = new RegExp(`^127\\.0\\.0\\.1 "GET /whoami HTTP/1\\.1" 101 \\d+ upstream=${backend.addr} time=\\d+\\.\\d{3}$`);
    assert.equal(lines.slice(2).filter((l) => session.test(l)).length, 1, `one session line for ${backend.id}:\n${lines.join('\n')}`);
  }
  // The tunnel at / is logged when the relay reports its end, which may come after the plain GET
  // that followed it has been logged: one line each, in either order.
  const rootSession = new RegExp(`^127\\.0\\.0\\.1 "GET / HTTP/1\\.1" 101 \\d+ upstream=${a.addr} `);
  assert.equal(lines.slice(2).filter((l) => rootSession.test(l)).length, 1, `one session line for the WebSocket at /:\n${lines.join('\n')}`);
  assert.equal(lines.slice(2).filter((l) => /^127\.0\.0\.1 "GET \/ HTTP\/1\.1" 200 /.test(l)).length, 1, `one line for the page after it:\n${lines.join('\n')}`);
});

const endsWithOk = (b: Buffer): boolean => b.toString('latin1').endsWith('\r\n\r\nok');

test('events { worker_connections 2; }: a third concurrent connection gets 503 and is closed', async (t) => {
  const proxy = await startTestProxy(`
    events { worker_connections 2; }
    http { server { listen 127.0.0.1:0; location / { return 200 "ok"; } } }`, { t });
  const held = [await rawConnect(proxy.port), await rawConnect(proxy.port)];
  t.after(() => { for (const s of held) s.destroy(); });
  // A full answer on each proves both are accepted and counted before the third arrives.
  for (const socket of held) {
    socket.write('GET /held HTTP/1.1\r\nHost: cap.test\r\n\r\n');
    const head = await readUntil(socket, endsWithOk);
    assert.match(head.toString('latin1'), /^HTTP\/1\.1 200 OK\r\n/);
  }
  const third = await rawRequest(proxy.port, 'GET /third HTTP/1.1\r\nHost: cap.test\r\n\r\n', { until: 'close' });
  assert.equal(third.head?.statusCode, 503);
  assert.equal(headerValue(third.head!, 'connection'), 'close');
  assert.equal(third.closed, true);
  assert.match(await proxy.waitForErrorLine('worker_connections'), / \[alert\] \d+#\d+: 2 worker_connections are not enough$/);
  // The two held connections still work.
  held[1]!.write('GET /again HTTP/1.1\r\nHost: cap.test\r\n\r\n');
  assert.match((await readUntil(held[1]!, endsWithOk)).toString('latin1'), /^HTTP\/1\.1 200 OK\r\n/);
  // Once one closes, a new connection is served again.
  held[0]!.destroy();
  await waitFor(async () => {
    const res = await rawRequest(proxy.port, 'GET /later HTTP/1.1\r\nHost: cap.test\r\nConnection: close\r\n\r\n');
    return res.head?.statusCode === 200 && res.body.toString() === 'ok';
  }, { what: 'a free connection slot' });
});

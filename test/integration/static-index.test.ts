/**
 * The handlers around the static module, on real files: `index` (internal redirects to the first
 * index file that exists), `autoindex` (nginx's html, json, jsonp and xml listings, byte for
 * byte), `try_files` (files, `$uri/`, `=code`, a URI, a named location; a WebSocket through a
 * named location), `internal` and nginx's limit of ten internal redirects.
 */
import assert from 'node:assert/strict';
import { mkdirSync, symlinkSync, utimesSync } from 'node:fs';
import { test } from 'node:test';
import { startHttpBackend } from '../helpers/backends.js';
import { conf } from '../helpers/config-text.js';
import { errorPage } from '../helpers/pages.js';
import { startTestProxy } from '../helpers/proxy.js';
import { rawWebSocket, SAMPLE_ACCEPT } from '../helpers/raw-client.js';
import { tempDir } from '../helpers/temp.js';
import { get, request } from './static-support.js';

test('index: the first index file that exists, by internal redirect (so its own location serves it); a missing directory is 404', async (t) => {
  const dir = tempDir(t);
  dir.write('html/a/index.htm', 'htm index');
  dir.write('html/b/index.html', 'html index');
  dir.write('html/b/index.htm', 'not this one');
  dir.write('html/c/x.txt', 'x');
  dir.write('html/d/default.html', 'absolute fallback');
  dir.write('html/d2/default.html', 'variable index');
  const proxy = await startTestProxy(conf(`
    server {
      listen 127.0.0.1:0;
      server_name localhost;
      index index.html index.htm;
      location / { }
      location ~ \\.htm$ { add_header X-Via htm-location; }
      location /c/ { index index.html /d/default.html; }
      location /d2/ { index $server_name.html default.html; }
    }`), { t, prefix: dir.path });
  const a = await get(proxy.port, '/a/');
  assert.equal(a.body.toString(), 'htm index');
  assert.equal(a.header('x-via'), 'htm-location', 'the index file is served after a new location search');
  assert.equal((await get(proxy.port, '/b/')).body.toString(), 'html index');
  // An absolute index is redirected to without a test.
  assert.equal((await get(proxy.port, '/c/')).body.toString(), 'absolute fallback');
  assert.equal((await get(proxy.port, '/d2/')).body.toString(), 'variable index');
  const gone = await get(proxy.port, '/missing/');
  assert.equal(gone.status, 404);
  assert.match(await proxy.waitForErrorLine('is not found'), new RegExp(`"${dir.path}/html/missing/index.html" is not found \\(2: No such file or directory\\)`));
  // A file where a directory is asked for.
  dir.write('html/file', 'f');
  assert.equal((await get(proxy.port, '/file/')).status, 404);
  // Arguments go along with the redirect.
  assert.equal((await get(proxy.port, '/b/?x=1')).status, 200);
});

test('autoindex html: nginx\'s page byte for byte, directories first, sizes exact or human, names escaped and cut at 50 bytes', async (t) => {
  const dir = tempDir(t);
  const when = Date.UTC(2022, 4, 6, 7, 8, 9) / 1000;
  const files: [string, string | Buffer][] = [
    ['b.txt', 'hello'],
    ['a&b<c>.txt', 'x'],
    ['big.bin', Buffer.alloc(12345)],
    ['.hidden', 'no'],
    [`${'n'.repeat(60)}.txt`, 'long'],
    ['sp ace.txt', ''],
  ];
  for (const [name, body] of files) {
    const p = dir.write(`html/list/${name}`, body);
    utimesSync(p, when, when);
  }
  mkdirSync(dir.join('html/list/zdir'));
  utimesSync(dir.join('html/list/zdir'), when, when);
  const proxy = await startTestProxy(conf(`
    server {
      listen 127.0.0.1:0;
      autoindex on;
      location /human/ { alias html/list/; autoindex_exact_size off; }
    }`), { t, prefix: dir.path });
  const date = '06-May-2022 07:08';
  const row = (href: string, shown: string, size: string): string => `<a href="${href}">${shown}</a>${' '.repeat(Math.max(0, 50 - shown.replace(/&[a-z]+;/g, '_').length))} ${date} ${size}\r\n`;
  const exact = (n: number): string => String(n).padStart(19);
  const long = `${'n'.repeat(60)}.txt`;
  const expected = '<html>\r\n<head><title>Index of /list/</title></head>\r\n<body>\r\n<h1>Index of /list/</h1><hr><pre><a href="../">../</a>\r\n'
    + row('zdir/', 'zdir/', `${' '.repeat(18)}-`)
    + row('a%26b%3Cc%3E.txt', 'a&amp;b&lt;c&gt;.txt', exact(1))
    + row('b.txt', 'b.txt', exact(5))
    + row('big.bin', 'big.bin', exact(12345))
    + `<a href="${long}">${long.slice(0, 47)}..&gt;</a> ${date} ${exact(4)}\r\n`
    + row('sp%20ace.txt', 'sp ace.txt', exact(0))
    + '</pre><hr></body>\r\n</html>\r\n';
  const r = await get(proxy.port, '/list/');
  assert.equal(r.status, 200);
  assert.equal(r.header('content-type'), 'text/html');
  assert.equal(r.header('content-length'), undefined, 'a listing is sent chunked, as nginx');
  assert.equal(r.body.toString('latin1'), expected);
  const human = (await get(proxy.port, '/human/')).body.toString('latin1');
  assert.match(human, /<a href="big.bin">big.bin<\/a> +06-May-2022 07:08 {5}12K\r\n/);
  assert.match(human, /<a href="b.txt">b.txt<\/a> +06-May-2022 07:08 {7}5\r\n/);
  assert.match(human, /<a href="zdir\/">zdir\/<\/a> +06-May-2022 07:08 {7}-\r\n/);
  const head = await request(proxy.port, 'HEAD', '/list/');
  assert.equal(head.status, 200);
  assert.equal(head.body.length, 0);
  // autoindex serves GET and HEAD; a POST to a directory without index is nginx's 403.
  assert.equal((await request(proxy.port, 'POST', '/list/', { 'Content-Length': '0' })).status, 403);
  assert.equal((await get(proxy.port, '/nolist/')).status, 404);
});

test('autoindex json, jsonp and xml: nginx\'s documents; a bad callback is 400', async (t) => {
  const dir = tempDir(t);
  const when = Date.UTC(2020, 0, 2, 3, 4, 5) / 1000;
  utimesSync(dir.write('html/a"b.txt', '12345'), when, when);
  mkdirSync(dir.join('html/sub'));
  utimesSync(dir.join('html/sub'), when, when);
  symlinkSync('/nonexistent/target', dir.join('html/dangling'));
  const proxy = await startTestProxy(conf(`
    server {
      listen 127.0.0.1:0;
      location /j/ { alias html/; autoindex on; autoindex_format json; }
      location /p/ { alias html/; autoindex on; autoindex_format jsonp; }
      location /x/ { alias html/; autoindex on; autoindex_format xml; }
    }`), { t, prefix: dir.path });
  const json = await get(proxy.port, '/j/');
  assert.equal(json.header('content-type'), 'application/json');
  const mtime = 'Thu, 02 Jan 2020 03:04:05 GMT';
  const body = json.body.toString();
  assert.ok(body.startsWith(`[\r\n{ "name":"sub", "type":"directory", "mtime":"${mtime}" },\r\n{ "name":"a\\"b.txt", "type":"file", "mtime":"${mtime}", "size":5 },\r\n{ "name":"dangling", "type":"other", "mtime":"`), body);
  assert.ok(body.endsWith('" }\r\n]'), body);
  assert.doesNotThrow(() => JSON.parse(body));

  const plain = await get(proxy.port, '/p/');
  assert.equal(plain.header('content-type'), 'application/json', 'jsonp without a callback is json');
  const jsonp = await get(proxy.port, '/p/?callback=cb.x_1');
  assert.equal(jsonp.header('content-type'), 'application/javascript');
  assert.ok(jsonp.body.toString().startsWith('/* callback */\r\ncb.x_1([\r\n{ "name":"sub"'));
  assert.ok(jsonp.body.toString().endsWith(']);'));
  const refused = await get(proxy.port, '/p/?callback=alert(1)');
  assert.equal(refused.status, 400);
  assert.equal(refused.body.toString(), errorPage('400 Bad Request'));
  assert.equal((await get(proxy.port, `/p/?callback=${'a'.repeat(129)}`)).status, 400);

  const xml = await get(proxy.port, '/x/');
  assert.equal(xml.header('content-type'), 'text/xml; charset=utf-8');
  const x = xml.body.toString();
  assert.ok(x.startsWith('<?xml version="1.0"?>\r\n<list>\r\n<directory mtime="2020-01-02T03:04:05Z">sub</directory>\r\n<file mtime="2020-01-02T03:04:05Z" size="5">a&quot;b.txt</file>\r\n<other mtime="'), x);
  assert.ok(x.endsWith('">dangling</other>\r\n</list>\r\n'), x);
});

test('try_files: the first name that exists becomes $uri in the same location; $uri/ asks for a directory; =code; a URI with arguments', async (t) => {
  const dir = tempDir(t);
  dir.write('html/app/index.html', 'spa shell');
  dir.write('html/app/asset.js', 'js');
  dir.write('html/app/sub/index.html', 'sub index');
  dir.write('html/fallback.html', 'fallback page');
  const proxy = await startTestProxy(conf(`
    log_format uris '$uri|$args|$request_uri';
    server {
      listen 127.0.0.1:0;
      access_log ${dir.join('access.log')} uris;
      location /app/ { try_files $uri $uri/ /app/index.html; add_header X-Loc app; }
      location /strict/ { alias html/app/; try_files $uri =404; }
      location /args/ { try_files $uri /echo?from=$uri&$args; }
      location = /echo { return 200 "uri=$uri args=$args request_uri=$request_uri"; }
      location /teapot/ { try_files $uri =418; }
      location /nothing/ { try_files /nope /fallback.html; }
    }`), { t, prefix: dir.path });
  const p = proxy.port;
  assert.equal((await get(p, '/app/asset.js')).body.toString(), 'js');
  // A directory for "$uri/": the index then serves it.
  assert.equal((await get(p, '/app/sub/')).body.toString(), 'sub index');
  // "$uri/" for "/app/sub" (no slash) finds the directory: $uri stays "/app/sub", the static module says 301.
  const sub = await get(p, '/app/sub');
  assert.equal(sub.status, 301);
  assert.equal(sub.header('location'), `http://localhost:${p}/app/sub/`);
  const spa = await get(p, '/app/some/client/route');
  assert.equal(spa.body.toString(), 'spa shell');
  assert.equal(spa.header('x-loc'), 'app');
  assert.equal((await get(p, '/strict/asset.js')).body.toString(), 'js');
  assert.equal((await get(p, '/strict/nope.js')).status, 404);
  const teapot = await get(p, '/teapot/x');
  assert.equal(teapot.status, 418);
  // nginx has no page for 418: an empty body and no Content-Type.
  assert.equal(teapot.header('content-length'), '0');
  assert.equal(teapot.header('content-type'), undefined);
  assert.equal((await get(p, '/nothing/')).body.toString(), 'fallback page');
  const redirected = await get(p, '/args/a?b=1');
  assert.equal(redirected.body.toString(), 'uri=/echo args=from=/args/a&b=1 request_uri=/args/a?b=1');
});

test('try_files to a named location: proxied with the client\'s own request line; WebSocket upgrades go through it too', async (t) => {
  const dir = tempDir(t);
  dir.write('html/static.txt', 'from disk');
  const app = await startHttpBackend(undefined, { id: 'app' });
  t.after(() => app.close());
  const proxy = await startTestProxy(conf(`
    server {
      listen 127.0.0.1:0;
      location / { try_files $uri @app; }
      location @app { proxy_pass http://${app.addr}; proxy_set_header X-Named yes; }
      location /miss/ { try_files $uri @nowhere; }
    }`), { t, prefix: dir.path });
  assert.equal((await get(proxy.port, '/static.txt')).body.toString(), 'from disk');
  const proxied = await get(proxy.port, '/api/users?id=7');
  assert.equal(proxied.status, 200);
  const seen = app.requests.at(-1)!;
  assert.equal(seen.url, '/api/users?id=7');
  assert.equal(seen.headers['x-named'], 'yes');

  const ws = await rawWebSocket(proxy.port, { path: '/socket' });
  t.after(() => ws.socket.destroy());
  assert.equal(ws.head.statusCode, 101);
  assert.equal(ws.head.headers.find(([n]) => n.toLowerCase() === 'sec-websocket-accept')?.[1], SAMPLE_ACCEPT);
  assert.equal(app.requests.at(-1)!.upgrade, true);

  const missing = await get(proxy.port, '/miss/x');
  assert.equal(missing.status, 500);
  assert.match(await proxy.waitForErrorLine('could not find named location'), /\[error\] .*could not find named location "@nowhere", client: 127\.0\.0\.1/);
});

test('an internal redirect to a proxied URI sends the new URI and arguments upstream', async (t) => {
  const dir = tempDir(t);
  const app = await startHttpBackend(undefined, { id: 'app' });
  t.after(() => app.close());
  const proxy = await startTestProxy(conf(`
    server {
      listen 127.0.0.1:0;
      location / { try_files $uri /backend/index.php?q=$uri&$args; }
      location /backend/ { proxy_pass http://${app.addr}; }
      location /prefixed/ { try_files $uri /up/x%20y; }
      location /up/ { proxy_pass http://${app.addr}/v1/; }
    }`), { t, prefix: dir.path });
  assert.equal((await get(proxy.port, '/some/page?a=1')).status, 200);
  assert.equal(app.requests.at(-1)!.url, '/backend/index.php?q=/some/page&a=1');
  assert.equal((await get(proxy.port, '/prefixed/z')).status, 200);
  assert.equal(app.requests.at(-1)!.url, '/v1/x%2520y', 'the fallback URI is not decoded; its "%" is escaped on the way out, as nginx');
});

test('internal locations are only reached by internal redirects; ten internal redirects at most, then 500', async (t) => {
  const dir = tempDir(t);
  dir.write('html/private/secret.txt', 'secret');
  const proxy = await startTestProxy(conf(`
    server {
      listen 127.0.0.1:0;
      location /private/ { internal; }
      location /door/ { try_files /private/secret.txt =404; root html; }
      location /via/ { try_files $uri /private/secret.txt; }
      location /loop/ { try_files $uri /loop/again; }
    }`), { t, prefix: dir.path });
  const direct = await get(proxy.port, '/private/secret.txt');
  assert.equal(direct.status, 404);
  assert.equal((await get(proxy.port, '/via/x')).body.toString(), 'secret');
  const loop = await get(proxy.port, '/loop/x');
  assert.equal(loop.status, 500);
  assert.match(await proxy.waitForErrorLine('internal redirection cycle'), /\[error\] .*rewrite or internal redirection cycle while internally redirecting to "\/loop\/again", client/);
});

test('autoindex_localtime shifts listed times by the local offset in force', async (t) => {
  const dir = tempDir(t);
  const when = Date.UTC(2022, 4, 6, 7, 8, 9) / 1000;
  utimesSync(dir.write('html/f.txt', 'f'), when, when);
  const saved = process.env['TZ'];
  // POSIX's sign is reversed: Etc/GMT-3 is UTC+3 all year.
  process.env['TZ'] = 'Etc/GMT-3';
  t.after(() => {
    if (saved === undefined) delete process.env['TZ'];
    else process.env['TZ'] = saved;
  });
  const proxy = await startTestProxy(conf(`
    server {
      listen 127.0.0.1:0;
      autoindex on;
      location /local/ { alias html/; autoindex_localtime on; }
    }`), { t, prefix: dir.path });
  assert.match((await get(proxy.port, '/')).body.toString(), / 06-May-2022 07:08 /);
  assert.match((await get(proxy.port, '/local/')).body.toString(), / 06-May-2022 10:08 /);
});

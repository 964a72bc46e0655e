/**
 * Static files on real files and sockets (ngx_http_static_module and the core around it): the
 * 200 and its headers, HEAD, types and default_type, nginx's 301/403/404/405, conditional
 * requests (304, 412) and ranges (206, multipart/byteranges, 416).
 */
import assert from 'node:assert/strict';
import { statSync, utimesSync } from 'node:fs';
import { test } from 'node:test';
import { conf } from '../helpers/config-text.js';
import { errorPage } from '../helpers/pages.js';
import { startTestProxy } from '../helpers/proxy.js';
import { tempDir, type TempDir } from '../helpers/temp.js';
import { get, request } from './static-support.js';

/** A site: html/ with a text file, a page, an image name, a directory with and without index. */
function site(t: Parameters<typeof tempDir>[0]): TempDir {
  const dir = tempDir(t);
  dir.write('html/hello.txt', 'hello, world\n');
  dir.write('html/page.html', '<p>page</p>\n');
  dir.write('html/Photo.JPG', 'not really a jpeg');
  dir.write('html/data.bin', Buffer.from([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]));
  dir.write('html/empty.txt', '');
  dir.write('html/docs/index.html', '<h1>docs</h1>\n');
  dir.write('html/bare/readme.txt', 'no index here\n');
  // A fixed time, so Last-Modified and the ETag are known: 2021-01-02 03:04:05 UTC.
  for (const f of ['hello.txt', 'page.html', 'data.bin']) utimesSync(dir.join('html', f), 1609556645, 1609556645);
  return dir;
}

const LAST_MODIFIED = 'Sat, 02 Jan 2021 03:04:05 GMT';
/** nginx's ETag: hex mtime "-" hex size. */
const ETAG_HELLO = `"${(1609556645).toString(16)}-${(13).toString(16)}"`;
const ETAG_DATA = `"${(1609556645).toString(16)}-a"`;

test('a file: 200 with the type from types {}, Content-Length, Last-Modified, ETag and Accept-Ranges; HEAD sends the same head and no body', async (t) => {
  const dir = site(t);
  const proxy = await startTestProxy(conf(`
    types { text/plain txt; text/html html; }
    server { listen 127.0.0.1:0; }`), { t, prefix: dir.path });
  const r = await get(proxy.port, '/hello.txt');
  assert.equal(r.status, 200);
  assert.equal(r.body.toString(), 'hello, world\n');
  assert.equal(r.header('content-type'), 'text/plain');
  assert.equal(r.header('content-length'), '13');
  assert.equal(r.header('last-modified'), LAST_MODIFIED);
  assert.equal(r.header('etag'), ETAG_HELLO);
  assert.equal(r.header('accept-ranges'), 'bytes');
  assert.equal(r.header('server'), 'sluice');

  const head = await request(proxy.port, 'HEAD', '/hello.txt');
  assert.equal(head.status, 200);
  assert.equal(head.header('content-length'), '13');
  assert.equal(head.header('etag'), ETAG_HELLO);
  assert.equal(head.body.length, 0);

  assert.equal((await get(proxy.port, '/page.html')).header('content-type'), 'text/html');
  // No entry for "bin" in this table: default_type (nginx's default text/plain).
  assert.equal((await get(proxy.port, '/data.bin')).header('content-type'), 'text/plain');
  const empty = await get(proxy.port, '/empty.txt');
  assert.equal(empty.status, 200);
  assert.equal(empty.header('content-length'), '0');
  assert.equal(empty.body.length, 0);
});

test('types: extensions match case-insensitively, a level with its own types {} replaces the table, default_type and nginx\'s three built-in types', async (t) => {
  const dir = site(t);
  const proxy = await startTestProxy(conf(`
    server {
      listen 127.0.0.1:0;
      default_type application/octet-stream;
      location /typed/ { alias html/; types { image/jpeg jpg; } default_type text/x-other; }
      location / { }
    }`), { t, prefix: dir.path });
  // Without any types block nginx knows html, gif and jpg only.
  assert.equal((await get(proxy.port, '/page.html')).header('content-type'), 'text/html');
  assert.equal((await get(proxy.port, '/Photo.JPG')).header('content-type'), 'image/jpeg');
  assert.equal((await get(proxy.port, '/hello.txt')).header('content-type'), 'application/octet-stream');
  assert.equal((await get(proxy.port, '/typed/Photo.JPG')).header('content-type'), 'image/jpeg');
  assert.equal((await get(proxy.port, '/typed/page.html')).header('content-type'), 'text/x-other');
});

test('charset names itself in the Content-Type of files whose type is in charset_types, as nginx\'s charset filter', async (t) => {
  const dir = site(t);
  const proxy = await startTestProxy(conf(`
    types { text/plain txt; text/html html; application/octet-stream bin; }
    charset utf-8;
    server {
      listen 127.0.0.1:0;
      location /all/ { alias html/; charset_types *; }
      location /off/ { alias html/; charset off; }
      location /list/ { alias html/; autoindex on; }
    }`), { t, prefix: dir.path });
  assert.equal((await get(proxy.port, '/hello.txt')).header('content-type'), 'text/plain; charset=utf-8');
  assert.equal((await get(proxy.port, '/page.html')).header('content-type'), 'text/html; charset=utf-8');
  assert.equal((await get(proxy.port, '/data.bin')).header('content-type'), 'application/octet-stream', 'not a charset type');
  assert.equal((await get(proxy.port, '/all/data.bin')).header('content-type'), 'application/octet-stream; charset=utf-8');
  assert.equal((await get(proxy.port, '/off/page.html')).header('content-type'), 'text/html');
  assert.equal((await get(proxy.port, '/list/')).header('content-type'), 'text/html; charset=utf-8', 'an autoindex listing');
});

test('include mime.types reads Sluice\'s copy of nginx\'s table when the config directory has none', async (t) => {
  const dir = site(t);
  dir.write('html/app.js', 'let x = 1;\n');
  dir.write('html/icon.svg', '<svg/>');
  const proxy = await startTestProxy(conf(`
    include mime.types;
    default_type application/octet-stream;
    server { listen 127.0.0.1:0; }`), { t, prefix: dir.path });
  assert.equal((await get(proxy.port, '/app.js')).header('content-type'), 'application/javascript');
  assert.equal((await get(proxy.port, '/icon.svg')).header('content-type'), 'image/svg+xml');
  assert.equal((await get(proxy.port, '/data.bin')).header('content-type'), 'application/octet-stream');
  // A mime.types of the config's own wins.
  dir.write('mime.types', 'types { text/x-mine js; }\n');
  const own = await startTestProxy(conf('include mime.types; server { listen 127.0.0.1:0; }'), { t, prefix: dir.path });
  assert.equal((await get(own.port, '/app.js')).header('content-type'), 'text/x-mine');
});

test('404 for a missing file (logged as nginx, unless log_not_found off), 403 for a directory without index, 405 for other methods', async (t) => {
  const dir = site(t);
  const proxy = await startTestProxy(conf(`
    server {
      listen 127.0.0.1:0;
      location /quiet/ { log_not_found off; }
    }`), { t, prefix: dir.path });
  const missing = await get(proxy.port, '/nope.txt');
  assert.equal(missing.status, 404);
  assert.equal(missing.body.toString(), errorPage('404 Not Found'));
  const line = await proxy.waitForErrorLine('nope.txt');
  assert.match(line, new RegExp(`\\[error\\] \\d+#0: \\*\\d+ open\\(\\) "${dir.path}/html/nope.txt" failed \\(2: No such file or directory\\), client: 127\\.0\\.0\\.1, server: , request: "GET /nope.txt HTTP/1\\.1", host: "localhost"$`));
  assert.equal((await get(proxy.port, '/quiet/nope.txt')).status, 404);
  // A file used as a directory: ENOTDIR is a 404 too.
  assert.equal((await get(proxy.port, '/hello.txt/x')).status, 404);

  const bare = await get(proxy.port, '/bare/');
  assert.equal(bare.status, 403);
  assert.equal(bare.body.toString(), errorPage('403 Forbidden'));
  assert.match(await proxy.waitForErrorLine('directory index'), new RegExp(`directory index of "${dir.path}/html/bare/" is forbidden, client`));

  for (const method of ['PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
    const r = await request(proxy.port, method, '/hello.txt', { 'Content-Length': '0' });
    assert.equal(r.status, 405, method);
    assert.equal(r.head.reason, 'Not Allowed');
    assert.equal(r.body.toString(), errorPage('405 Not Allowed'));
  }
  // nginx's static module takes POST only to say 405 for an existing file; a missing one is 404.
  assert.equal((await request(proxy.port, 'POST', '/hello.txt', { 'Content-Length': '0' })).status, 405);
  assert.equal((await request(proxy.port, 'POST', '/nope.txt', { 'Content-Length': '0' })).status, 404);
  assert.equal((await request(proxy.port, 'PUT', '/bare/', { 'Content-Length': '0' })).status, 405);
  await proxy.stop();
  assert.equal(proxy.errorLines.filter((l) => l.includes('/quiet/')).length, 0, 'log_not_found off logs nothing');
});

test('a directory named without its slash: 301 to the URI with one, absolute, escaped, arguments kept', async (t) => {
  const dir = site(t);
  dir.write('html/a dir/x.txt', 'x');
  const proxy = await startTestProxy(conf('server { listen 127.0.0.1:0; }'), { t, prefix: dir.path });
  const r = await get(proxy.port, '/docs');
  assert.equal(r.status, 301);
  assert.equal(r.header('location'), `http://localhost:${proxy.port}/docs/`);
  assert.equal(r.body.toString(), errorPage('301 Moved Permanently'));
  assert.equal((await get(proxy.port, '/docs?a=1&b')).header('location'), `http://localhost:${proxy.port}/docs/?a=1&b`);
  assert.equal((await get(proxy.port, '/a%20dir')).header('location'), `http://localhost:${proxy.port}/a%20dir/`);
  assert.equal((await request(proxy.port, 'POST', '/docs', { 'Content-Length': '0' })).status, 301);
});

test('conditional requests: If-None-Match and If-Modified-Since give 304, If-Match and If-Unmodified-Since give 412, as nginx decides', async (t) => {
  const dir = site(t);
  const proxy = await startTestProxy(conf(`
    server {
      listen 127.0.0.1:0;
      location /before/ { alias html/; if_modified_since before; }
      location /off/ { alias html/; if_modified_since off; }
      location /noetag/ { alias html/; etag off; }
    }`), { t, prefix: dir.path });
  const p = proxy.port;
  const nm = await get(p, '/hello.txt', { 'If-None-Match': ETAG_HELLO });
  assert.equal(nm.status, 304);
  assert.equal(nm.body.length, 0);
  assert.equal(nm.header('etag'), ETAG_HELLO);
  assert.equal(nm.header('last-modified'), LAST_MODIFIED);
  for (const gone of ['content-type', 'content-length', 'accept-ranges']) assert.ok(!nm.names.includes(gone), `no ${gone} on a 304`);
  // If-None-Match compares weakly, in a list, and `*` matches anything.
  assert.equal((await get(p, '/hello.txt', { 'If-None-Match': `"x", W/${ETAG_HELLO}` })).status, 304);
  assert.equal((await get(p, '/hello.txt', { 'If-None-Match': '*' })).status, 304);
  assert.equal((await get(p, '/hello.txt', { 'If-None-Match': '"other"' })).status, 200);

  assert.equal((await get(p, '/hello.txt', { 'If-Modified-Since': LAST_MODIFIED })).status, 304);
  // `exact` (the default): only the same time; `before`: that time or later; `off`: never.
  assert.equal((await get(p, '/hello.txt', { 'If-Modified-Since': 'Sun, 03 Jan 2021 00:00:00 GMT' })).status, 200);
  assert.equal((await get(p, '/before/hello.txt', { 'If-Modified-Since': 'Sun, 03 Jan 2021 00:00:00 GMT' })).status, 304);
  assert.equal((await get(p, '/before/hello.txt', { 'If-Modified-Since': 'Fri, 01 Jan 2021 00:00:00 GMT' })).status, 200);
  assert.equal((await get(p, '/off/hello.txt', { 'If-Modified-Since': LAST_MODIFIED })).status, 200);
  // The other two date formats of RFC 9110 are read too; a bad date is "modified".
  assert.equal((await get(p, '/hello.txt', { 'If-Modified-Since': 'Saturday, 02-Jan-21 03:04:05 GMT' })).status, 304);
  assert.equal((await get(p, '/hello.txt', { 'If-Modified-Since': 'Sat Jan  2 03:04:05 2021' })).status, 304);
  assert.equal((await get(p, '/hello.txt', { 'If-Modified-Since': 'yesterday' })).status, 200);
  // When If-Modified-Since says modified, If-None-Match is not asked (nginx).
  assert.equal((await get(p, '/hello.txt', { 'If-Modified-Since': 'Fri, 01 Jan 2021 00:00:00 GMT', 'If-None-Match': ETAG_HELLO })).status, 200);

  const im = await get(p, '/hello.txt', { 'If-Match': '"nope"' });
  assert.equal(im.status, 412);
  assert.equal(im.body.toString(), errorPage('412 Precondition Failed'));
  assert.equal((await get(p, '/hello.txt', { 'If-Match': ETAG_HELLO })).status, 200);
  // If-Match is a strong comparison: a weak tag never matches.
  assert.equal((await get(p, '/hello.txt', { 'If-Match': `W/${ETAG_HELLO}` })).status, 412);
  assert.equal((await get(p, '/hello.txt', { 'If-Unmodified-Since': 'Fri, 01 Jan 2021 00:00:00 GMT' })).status, 412);
  assert.equal((await get(p, '/hello.txt', { 'If-Unmodified-Since': LAST_MODIFIED })).status, 200);
  // etag off: no ETag, and If-Match with a tag fails.
  const noetag = await get(p, '/noetag/hello.txt');
  assert.equal(noetag.header('etag'), undefined);
  assert.equal((await get(p, '/noetag/hello.txt', { 'If-Match': ETAG_HELLO })).status, 412);
});

test('ranges: one range is a 206 with Content-Range, several are multipart/byteranges, none satisfiable is 416; If-Range and max_ranges as nginx', async (t) => {
  const dir = site(t);
  const proxy = await startTestProxy(conf(`
    types { application/x-data bin; }
    server {
      listen 127.0.0.1:0;
      location /one/ { alias html/; max_ranges 1; }
      location /none/ { alias html/; max_ranges 0; }
    }`), { t, prefix: dir.path });
  const p = proxy.port;
  const single = await get(p, '/data.bin', { Range: 'bytes=2-4' });
  assert.equal(single.status, 206);
  assert.deepEqual([...single.body], [2, 3, 4]);
  assert.equal(single.header('content-range'), 'bytes 2-4/10');
  assert.equal(single.header('content-length'), '3');
  assert.equal(single.header('content-type'), 'application/x-data');
  assert.equal(single.header('accept-ranges'), undefined);
  assert.deepEqual([...(await get(p, '/data.bin', { Range: 'bytes=-3' })).body], [7, 8, 9]);
  assert.deepEqual([...(await get(p, '/data.bin', { Range: 'bytes=8-' })).body], [8, 9]);
  assert.equal((await get(p, '/data.bin', { Range: 'bytes=8-100' })).header('content-range'), 'bytes 8-9/10');

  const multi = await get(p, '/data.bin', { Range: 'bytes=0-1,5-6' });
  assert.equal(multi.status, 206);
  const m = /^multipart\/byteranges; boundary=(\d{20})$/.exec(multi.header('content-type') ?? '');
  assert.ok(m, `multipart type: ${multi.header('content-type')}`);
  const b = m[1]!;
  const expected = Buffer.concat([
    Buffer.from(`\r\n--${b}\r\nContent-Type: application/x-data\r\nContent-Range: bytes 0-1/10\r\n\r\n`), Buffer.from([0, 1]),
    Buffer.from(`\r\n--${b}\r\nContent-Type: application/x-data\r\nContent-Range: bytes 5-6/10\r\n\r\n`), Buffer.from([5, 6]),
    Buffer.from(`\r\n--${b}--\r\n`),
  ]);
  assert.deepEqual(multi.body, expected);
  assert.equal(multi.header('content-length'), String(expected.length));

  const bad = await get(p, '/data.bin', { Range: 'bytes=20-30' });
  assert.equal(bad.status, 416);
  assert.equal(bad.header('content-range'), 'bytes */10');
  assert.equal(bad.body.toString(), errorPage('416 Requested Range Not Satisfiable'));
  assert.equal((await get(p, '/data.bin', { Range: 'bytes=x-1' })).status, 416);
  // Ignored: not "bytes=", or ranges that together ask for more than the file.
  assert.equal((await get(p, '/data.bin', { Range: 'items=0-1' })).status, 200);
  assert.equal((await get(p, '/data.bin', { Range: 'bytes=0-8,1-9' })).status, 200);

  // If-Range: the ETag (exactly) or the date (exactly), else the whole file.
  assert.equal((await get(p, '/data.bin', { Range: 'bytes=0-0', 'If-Range': ETAG_DATA })).status, 206);
  assert.equal((await get(p, '/data.bin', { Range: 'bytes=0-0', 'If-Range': '"old"' })).status, 200);
  assert.equal((await get(p, '/data.bin', { Range: 'bytes=0-0', 'If-Range': LAST_MODIFIED })).status, 206);
  assert.equal((await get(p, '/data.bin', { Range: 'bytes=0-0', 'If-Range': 'Fri, 01 Jan 2021 00:00:00 GMT' })).status, 200);

  // max_ranges 1: a second range means the whole file; max_ranges 0: no ranges, no Accept-Ranges.
  assert.equal((await get(p, '/one/data.bin', { Range: 'bytes=0-0' })).status, 206);
  assert.equal((await get(p, '/one/data.bin', { Range: 'bytes=0-0,2-2' })).status, 200);
  const none = await get(p, '/none/data.bin', { Range: 'bytes=0-0' });
  assert.equal(none.status, 200);
  assert.equal(none.header('accept-ranges'), undefined);

  const headRange = await request(p, 'HEAD', '/data.bin', { Range: 'bytes=1-2' });
  assert.equal(headRange.status, 206);
  assert.equal(headRange.header('content-range'), 'bytes 1-2/10');
  assert.equal(headRange.body.length, 0);
});

test('add_header applies to the statuses nginx gives it: 200, 206, 304 and 301 yes, 404 only with always', async (t) => {
  const dir = site(t);
  const proxy = await startTestProxy(conf(`
    server { listen 127.0.0.1:0; add_header X-Site static; add_header X-All yes always; }`), { t, prefix: dir.path });
  const ok = await get(proxy.port, '/hello.txt');
  assert.equal(ok.header('x-site'), 'static');
  assert.equal(ok.header('x-all'), 'yes');
  assert.equal((await get(proxy.port, '/hello.txt', { Range: 'bytes=0-1' })).header('x-site'), 'static');
  assert.equal((await get(proxy.port, '/hello.txt', { 'If-None-Match': ETAG_HELLO })).header('x-site'), 'static');
  assert.equal((await get(proxy.port, '/docs')).header('x-site'), 'static');
  const missing = await get(proxy.port, '/nope');
  assert.equal(missing.header('x-site'), undefined);
  assert.equal(missing.header('x-all'), 'yes');
  // A 416 replaces a 200 that add_header had already seen: nginx keeps those lines and adds the
  // `always` ones again for the 416.
  const range = await get(proxy.port, '/hello.txt', { Range: 'bytes=100-' });
  assert.equal(range.status, 416);
  assert.deepEqual(range.head.headers.filter(([n]) => n.startsWith('X-')), [['X-Site', 'static'], ['X-All', 'yes'], ['X-All', 'yes']]);
});

test('Last-Modified and ETag follow the file: a rewritten file is a new entity', async (t) => {
  const dir = site(t);
  const proxy = await startTestProxy(conf('server { listen 127.0.0.1:0; }'), { t, prefix: dir.path });
  const before = await get(proxy.port, '/hello.txt');
  dir.write('html/hello.txt', 'changed content, longer\n');
  utimesSync(dir.join('html/hello.txt'), 1700000000, 1700000000);
  const after = await get(proxy.port, '/hello.txt');
  assert.equal(after.body.toString(), 'changed content, longer\n');
  assert.notEqual(after.header('etag'), before.header('etag'));
  assert.equal(after.header('etag'), `"${(1700000000).toString(16)}-${statSync(dir.join('html/hello.txt')).size.toString(16)}"`);
  assert.equal((await get(proxy.port, '/hello.txt', { 'If-None-Match': before.header('etag')! })).status, 200);
});

/**
 * Static files, Sluice against nginx on the same files and the same config text: a table of
 * requests (files, HEAD, types, 301/403/404/405, conditional requests, ranges, index, autoindex in
 * every format, try_files, internal, alias with nginx's quirks, traversal, symbolic links,
 * variables), each answered by both; status, the headers that carry meaning and the body must be
 * the same. The only differences allowed are the server's name in error pages, the port in
 * Location, and the multipart boundary (a number each server picks).
 *
 * Needs nginx (NGINX, or the installed one): without it the test fails and names the package.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { test } from 'node:test';
import { conf } from '../helpers/config-text.js';
import { unusedPort } from '../helpers/ports.js';
import { requireProgram } from '../helpers/programs.js';
import { startTestProxy } from '../helpers/proxy.js';
import { rawRequest } from '../helpers/raw-client.js';
import { tempDir, type TempDir } from '../helpers/temp.js';
import { waitFor } from '../helpers/wait.js';


/** The files both servers serve, with fixed times (Last-Modified, ETag and listings agree). */
function makeSite(dir: TempDir): string {
  const site = dir.join('site');
  const files: Record<string, string | Buffer> = {
    'html/hello.txt': 'hello, world\n',
    'html/page.html': '<p>page</p>\n',
    'html/data.bin': Buffer.from([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]),
    'html/empty.txt': '',
    'html/docs/index.html': '<h1>docs</h1>\n',
    'html/bare/readme.txt': 'no index\n',
    'html/a dir/x.txt': 'x',
    'html/list/b.txt': 'hello',
    'html/list/a&b<c>.txt': 'x',
    'html/list/big.bin': Buffer.alloc(12345),
    'html/list/.hidden': 'no',
    [`html/list/${'n'.repeat(60)}.txt`]: 'long',
    'html/list/sp ace.txt': '',
    'html/list/quote"d.txt': 'q',
    'html/list/zdir/inner.txt': 'i',
    'html/app/index.html': 'spa shell',
    'html/app/asset.js': 'let x;',
    'html/app/sub/index.html': 'sub index',
    'html/private/secret.txt': 'internal only',
    'images/logo.png': 'png',
    'imageslogo.png': 'joined by a missing slash',
    'secret.txt': 'outside the alias',
    'outside/secret.txt': 'outside the root',
  };
  for (const [name, body] of Object.entries(files)) dir.write(`site/${name}`, body);
  symlinkSync(`${site}/outside/secret.txt`, `${site}/html/link.txt`);
  const touch = (p: string): void => utimesSync(p, WHEN, WHEN);
  for (const name of Object.keys(files)) touch(`${site}/${name}`);
  for (const d of ['html/list/zdir', 'html/list', 'html/docs', 'html/bare', 'html/app/sub', 'html/app']) touch(`${site}/${d}`);
  return site;
}

/** The http {} body both run; LISTEN is each one's own listen line. */
function httpBody(site: string, listen: string): string {
  return `
    types { text/plain txt; text/html html; application/javascript js; image/png png; }
    default_type application/octet-stream;
    server {
      listen ${listen};
      server_name localhost;
      root ${site}/html;
      add_header X-Test yes;
      add_header X-Always a always;
      location /list/ { autoindex on; }
      location /listjson/ { alias ${site}/html/list/; autoindex on; autoindex_format json; }
      location /listp/ { alias ${site}/html/list/; autoindex on; autoindex_format jsonp; }
      location /listxml/ { alias ${site}/html/list/; autoindex on; autoindex_format xml; }
      location /listhuman/ { alias ${site}/html/list/; autoindex on; autoindex_exact_size off; }
      location /img { alias ${site}/images/; }
      location /pic/ { alias ${site}/images; }
      location ~ ^/re/(\\w+)/(.+)$ { alias ${site}/$1/$2; }
      location /app/ { try_files $uri $uri/ /app/index.html; }
      location /tf/ { try_files $uri =404; }
      location /tfcode/ { try_files $uri =418; }
      location /private/ { internal; }
      location /via/ { try_files $uri /private/secret.txt; }
      location /loop/ { try_files $uri /loop/x; }
      location /before/ { alias ${site}/html/; if_modified_since before; }
      location /noetag/ { alias ${site}/html/; etag off; }
      location /one/ { alias ${site}/html/; max_ranges 1; }
      location /none/ { alias ${site}/html/; max_ranges 0; }
      location /symon/ { alias ${site}/html/; disable_symlinks on; }
      location /idx/ { index nothere.html /docs/index.html; }
      location /vidx/ { alias ${site}/html/docs/; index $arg_i index.html; }
      location /nest/ { alias ${site}/html/app/; location /nest/sub/ { } }
      location = /vars { return 200 "$document_root|$request_filename|$uri|$args"; }
      location /cs/ { alias ${site}/html/; charset utf-8; }
      location /csall/ { alias ${site}/html/; charset utf-8; charset_types *; }
      location /csoff/ { alias ${site}/html/; charset off; }
      location /cslist/ { alias ${site}/html/list/; charset utf-8; autoindex on; }
    }`;
}

interface Case {
  readonly method?: string;
  readonly target: string;
  readonly headers?: Readonly<Record<string, string>>;
}

const LM = 'Fri, 06 May 2022 07:08:09 GMT';
const WHEN = Date.UTC(2022, 4, 6, 7, 8, 9) / 1000;
/** nginx's ETag for a file of the site: hex time "-" hex size. */
const etag = (size: number): string => `"${WHEN.toString(16)}-${size.toString(16)}"`;
const HELLO = etag(13);
const DATA = etag(10);

const CASES: readonly Case[] = [
  { target: '/hello.txt' }, { method: 'HEAD', target: '/hello.txt' }, { target: '/page.html' }, { target: '/data.bin' },
  { target: '/empty.txt' }, { target: '/nope' }, { target: '/hello.txt/x' }, { target: '/bare/' }, { target: '/docs' },
  { target: '/docs?a=1&b' }, { target: '/a%20dir' }, { target: '/docs/' }, { target: '/docs/?x=1' },
  { method: 'PUT', target: '/hello.txt' }, { method: 'DELETE', target: '/hello.txt' }, { method: 'POST', target: '/hello.txt' },
  { method: 'POST', target: '/nope' }, { method: 'PUT', target: '/bare/' }, { method: 'POST', target: '/bare/' },
  { method: 'POST', target: '/docs' }, { method: 'OPTIONS', target: '/hello.txt' },
  // conditional requests (the ETag is computed per run: the files' times are fixed)
  { target: '/hello.txt', headers: { 'If-None-Match': HELLO } },
  { target: '/hello.txt', headers: { 'If-None-Match': `W/${HELLO}` } },
  { target: '/hello.txt', headers: { 'If-None-Match': '*' } },
  { target: '/hello.txt', headers: { 'If-None-Match': `"other", ${HELLO}` } },
  { target: '/hello.txt', headers: { 'If-None-Match': '"other"' } },
  { target: '/hello.txt', headers: { 'If-Modified-Since': LM } },
  { target: '/hello.txt', headers: { 'If-Modified-Since': 'Sat, 07 May 2022 00:00:00 GMT' } },
  { target: '/before/hello.txt', headers: { 'If-Modified-Since': 'Sat, 07 May 2022 00:00:00 GMT' } },
  { target: '/before/hello.txt', headers: { 'If-Modified-Since': 'Thu, 05 May 2022 00:00:00 GMT' } },
  { target: '/hello.txt', headers: { 'If-Modified-Since': 'Friday, 06-May-22 07:08:09 GMT' } },
  { target: '/hello.txt', headers: { 'If-Modified-Since': 'Fri May  6 07:08:09 2022' } },
  { target: '/hello.txt', headers: { 'If-Modified-Since': 'garbage' } },
  { target: '/hello.txt', headers: { 'If-Modified-Since': 'Thu, 05 May 2022 00:00:00 GMT', 'If-None-Match': HELLO } },
  { target: '/hello.txt', headers: { 'If-Match': '"nope"' } },
  { target: '/hello.txt', headers: { 'If-Match': HELLO } },
  { target: '/hello.txt', headers: { 'If-Match': `W/${HELLO}` } },
  { target: '/hello.txt', headers: { 'If-Unmodified-Since': 'Thu, 05 May 2022 00:00:00 GMT' } },
  { target: '/hello.txt', headers: { 'If-Unmodified-Since': LM } },
  { target: '/noetag/hello.txt' }, { target: '/noetag/hello.txt', headers: { 'If-Match': HELLO } },
  { target: '/list/', headers: { 'If-None-Match': '*' } },
  // ranges
  { target: '/data.bin', headers: { Range: 'bytes=2-4' } }, { target: '/data.bin', headers: { Range: 'bytes=-3' } },
  { target: '/data.bin', headers: { Range: 'bytes=8-' } }, { target: '/data.bin', headers: { Range: 'bytes=8-100' } },
  { target: '/data.bin', headers: { Range: 'bytes=0-1,5-6' } }, { target: '/data.bin', headers: { Range: 'bytes=0-1, 3-3,5-' } },
  { target: '/data.bin', headers: { Range: 'bytes=20-30' } }, { target: '/data.bin', headers: { Range: 'bytes=x-1' } },
  { target: '/data.bin', headers: { Range: 'items=0-1' } }, { target: '/data.bin', headers: { Range: 'bytes=0-8,1-9' } },
  { target: '/data.bin', headers: { Range: 'bytes=0-' } }, { target: '/empty.txt', headers: { Range: 'bytes=0-' } },
  { target: '/empty.txt', headers: { Range: 'bytes=0-1' } }, { target: '/data.bin', headers: { Range: 'BYTES=1-1' } },
  { target: '/data.bin', headers: { Range: 'bytes=0-0', 'If-Range': DATA } },
  { target: '/data.bin', headers: { Range: 'bytes=0-0', 'If-Range': '"old"' } },
  { target: '/data.bin', headers: { Range: 'bytes=0-0', 'If-Range': LM } },
  { target: '/data.bin', headers: { Range: 'bytes=0-0', 'If-Range': 'Thu, 05 May 2022 00:00:00 GMT' } },
  { target: '/one/data.bin', headers: { Range: 'bytes=0-0' } }, { target: '/one/data.bin', headers: { Range: 'bytes=0-0,2-2' } },
  { target: '/none/data.bin', headers: { Range: 'bytes=0-0' } },
  { method: 'HEAD', target: '/data.bin', headers: { Range: 'bytes=1-2' } },
  // index and autoindex
  { target: '/list/' }, { method: 'HEAD', target: '/list/' }, { target: '/listjson/' }, { target: '/listxml/' },
  { target: '/listhuman/' }, { target: '/listp/?callback=cb.x_1' }, { target: '/listp/' }, { target: '/listp/?callback=a(1)' },
  { target: '/idx/' }, { target: '/missing/' }, { method: 'POST', target: '/list/' },
  // try_files, internal
  { target: '/app/asset.js' }, { target: '/app/sub/' }, { target: '/app/sub' }, { target: '/app/some/route?q=1' },
  { target: '/tf/nope' }, { target: '/tfcode/x' }, { target: '/via/x' }, { target: '/private/secret.txt' }, { target: '/loop/x' },
  // alias
  { target: '/img/logo.png' }, { target: '/img../secret.txt' }, { target: '/pic/logo.png' }, { target: '/re/images/logo.png' },
  { target: '/re/nothere/x' },
  // traversal and encodings
  { target: '/../secret.txt' }, { target: '/%2e%2e/secret.txt' }, { target: '/docs/..%2f..%2fsecret.txt' },
  { target: '/hello.txt%00.png' }, { target: '/docs/../hello.txt' }, { target: '/docs%2findex.html' }, { target: '/docs/./index.html' },
  { target: '//hello.txt' },
  // symbolic links
  { target: '/link.txt' }, { target: '/symon/link.txt' }, { target: '/symon/hello.txt' },
  // variables
  { target: '/vars?a=b' }, { target: '/docs?' }, { target: '/vidx/?i=nothere' }, { target: '/nest/sub/' }, { target: '/nest/asset.js' },
  { target: '/list/zdir' }, { target: '/data.bin', headers: { Range: 'bytes=5-1' } }, { target: '/data.bin', headers: { Range: 'bytes=-0' } },
  { target: '/data.bin', headers: { Range: 'bytes=3-3,1-1' } }, { target: '/data.bin', headers: { Range: 'bytes=0-0,0-0' } },
  // charset on static files: charset_types (text/html, text/plain... by default), *, off, listings, errors
  { target: '/cs/hello.txt' }, { target: '/cs/page.html' }, { target: '/cs/data.bin' }, { target: '/cs/app/asset.js' },
  { target: '/csall/data.bin' }, { target: '/csoff/page.html' }, { target: '/cslist/' }, { target: '/cs/nope' },
  { target: '/cs/hello.txt', headers: { 'If-None-Match': HELLO } }, { target: '/cs/data.bin', headers: { Range: 'bytes=0-1,5-6' } },
];

/** The headers whose values must agree. */
const COMPARED = ['content-type', 'content-length', 'content-range', 'last-modified', 'etag', 'accept-ranges', 'location', 'transfer-encoding', 'x-test', 'x-always'];

interface Seen {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

async function ask(port: number, c: Case): Promise<Seen> {
  let text = `${c.method ?? 'GET'} ${c.target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n`;
  if (c.method === 'POST' || c.method === 'PUT') text += 'Content-Length: 0\r\n';
  for (const [k, v] of Object.entries(c.headers ?? {})) text += `${k}: ${v}\r\n`;
  const r = await rawRequest(port, `${text}\r\n`, { until: 'close', timeoutMs: 10_000 });
  assert.ok(r.head, `a response to ${c.method ?? 'GET'} ${c.target}`);
  const headers: Record<string, string> = {};
  for (const [n, v] of r.head.headers) {
    const name = n.toLowerCase();
    if (!COMPARED.includes(name)) continue;
    const value = name === 'location' ? v.replace(/:\d+\//, ':PORT/') : v;
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  let body = r.body.toString('latin1').replace(/<hr><center>(nginx\/[\d.]+|sluice)<\/center>/, '<hr><center>SERVER</center>');
  if (body !== r.body.toString('latin1')) delete headers['content-length'];
  const boundary = /boundary=(\d+)/.exec(headers['content-type'] ?? '')?.[1];
  if (boundary !== undefined) {
    body = body.split(boundary).join('BOUNDARY');
    headers['content-type'] = headers['content-type']!.replace(boundary, 'BOUNDARY');
  }
  return { status: r.head.statusCode, headers, body };
}

async function startNginx(t: import('node:test').TestContext, dir: TempDir, site: string): Promise<number> {
  const port = await unusedPort();
  const prefix = dir.join('nginx');
  mkdirSync(`${prefix}/logs`, { recursive: true });
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((n) => `${n}_temp_path ${prefix}/${n};`).join(' ');
  const user = process.getuid?.() === 0 ? 'user root;' : '';
  const text = `${user}\ndaemon off;\nmaster_process off;\npid ${prefix}/nginx.pid;\nerror_log ${prefix}/logs/error.log info;\n`
    + conf(`access_log off; ${temp}\n${httpBody(site, `127.0.0.1:${port}`)}`).replace(/^events \{\}/, 'events {}');
  writeFileSync(`${prefix}/nginx.conf`, text);
  const nginx = process.env['NGINX'] ?? requireProgram('nginx', 'nginx-light');
  const child = spawn(nginx, ['-p', prefix, '-c', `${prefix}/nginx.conf`], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => void (stderr += d));
  t.after(() => void child.kill('SIGKILL'));
  await waitFor(() => new Promise<boolean>((resolve) => {
    if (child.exitCode !== null) {
      resolve(false);
      return;
    }
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  }).then((up) => (up ? true : child.exitCode !== null ? Promise.reject(new Error(`nginx exited: ${stderr}`)) : null)), { what: 'nginx to listen', timeoutMs: 10_000 });
  return port;
}

test('static files: Sluice answers a table of requests as nginx does', async (t) => {
  const dir = tempDir(t);
  chmodSync(dir.path, 0o755);
  const site = makeSite(dir);
  const nginxPort = await startNginx(t, dir, site);
  const sluice = await startTestProxy(conf(httpBody(site, '127.0.0.1:0')), { t, prefix: dir.path });
  const differences: string[] = [];
  for (const c of CASES) {
    const [n, s] = [await ask(nginxPort, c), await ask(sluice.port, c)];
    const what = `${c.method ?? 'GET'} ${c.target}${c.headers === undefined ? '' : ` ${JSON.stringify(c.headers)}`}`;
    if (n.status !== s.status) differences.push(`${what}: status nginx ${n.status}, sluice ${s.status}`);
    for (const h of COMPARED) {
      if (n.headers[h] !== s.headers[h]) differences.push(`${what}: ${h} nginx ${JSON.stringify(n.headers[h])}, sluice ${JSON.stringify(s.headers[h])}`);
    }
    if (n.body !== s.body) differences.push(`${what}: body nginx ${JSON.stringify(n.body.slice(0, 300))}, sluice ${JSON.stringify(s.body.slice(0, 300))}`);
  }
  assert.deepEqual(differences, [], `${differences.length} differences from nginx:\n${differences.join('\n')}`);
});

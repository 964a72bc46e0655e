/**
 * Server-side includes (ngx_http_ssi_module) on real files and sockets: echo/set/config/if with
 * nginx's expressions, include file= and virtual= as subrequests (static files, a proxied
 * location, nested includes, stub blocks, set=), errors and ssi_silent_errors, ssi_types, the
 * headers the filter removes, a command split across upstream reads, and gzip after SSI.
 */
import assert from 'node:assert/strict';
import { gunzipSync } from 'node:zlib';
import type { ServerResponse } from 'node:http';
import { test } from 'node:test';
import { startHttpBackend } from '../helpers/backends.js';
import { testCerts } from '../helpers/certs.js';
import { h2Connect, h2Request } from '../helpers/h2-client.js';
import { conf } from '../helpers/config-text.js';
import { startTestProxy } from '../helpers/proxy.js';
import { tempDir, type TempDir } from '../helpers/temp.js';
import { get } from './static-support.js';

const ERR = '[an error occurred while processing the directive]';

function site(t: Parameters<typeof tempDir>[0], files: Record<string, string>): TempDir {
  const dir = tempDir(t);
  for (const [name, text] of Object.entries(files)) dir.write(`html/${name}`, text);
  return dir;
}

async function proxyFor(t: Parameters<typeof tempDir>[0], dir: TempDir, server: string, http = ''): Promise<Awaited<ReturnType<typeof startTestProxy>>> {
  return startTestProxy(conf(`
    types { text/html html; text/plain txt; application/javascript js; }
    ${http}
    server { ${server.includes('listen ') ? '' : 'listen 127.0.0.1:0;'} ${server} }`), { t, prefix: dir.path });
}

test('echo, set and config: variables of nginx and of SSI, default, the three encodings, timefmt for $date_gmt', async (t) => {
  const dir = site(t, {
    'a.html': [
      'uri=<!--# echo var="uri" -->;',
      'none=<!--# echo var="nothing" -->;',
      'def=<!--# echo var="nothing" default="dflt" -->;',
      '<!--# set var="x" value="<a&b> $uri ${args}" -->',
      'ent=<!--# echo var="x" -->;',
      'raw=<!--# echo var="X" encoding="none" -->;',
      'url=<!--# echo var="x" encoding="url" -->;',
      'still-url=<!--# echo var="x" -->;',
      '<!--# config timefmt="%Y" -->year=<!--# echo var="date_gmt" -->;',
      '<!--#echo var="arg_q"-->|',
    ].join('\n'),
  });
  const proxy = await proxyFor(t, dir, 'ssi on;');
  const r = await get(proxy.port, '/a.html?q=1&z');
  assert.equal(r.status, 200);
  assert.equal(r.header('content-length'), undefined);
  assert.equal(r.header('last-modified'), undefined);
  assert.equal(r.header('etag'), undefined);
  assert.equal(r.header('accept-ranges'), undefined);
  const year = String(new Date().getUTCFullYear());
  assert.equal(r.body.toString(), [
    'uri=/a.html;',
    'none=(none);',
    'def=dflt;',
    '',
    'ent=&lt;a&amp;b&gt; /a.html q=1&amp;z;',
    'raw=<a&b> /a.html q=1&z;',
    'url=%3Ca&b%3E%20/a.html%20q=1&z;',
    'still-url=%3Ca&b%3E%20/a.html%20q=1&z;',
    `year=${year};`,
    '1|',
  ].join('\n'));
});

test('if / elif / else / endif: plain, =, !=, regexes with captures; output only from the branch taken', async (t) => {
  const dir = site(t, {
    'if.html': [
      '<!--# if expr="$arg_a" -->A<!--# else -->noA<!--# endif -->',
      '<!--# if expr="$arg_a = x" -->eq<!--# elif expr="$arg_a != y" -->ne<!--# else -->y<!--# endif -->',
      // A regex's `$` anchor is written `\$` (a bare `$` must name a variable, as in nginx).
      '<!--# if expr="$URI = /^\\/(if)\\.(?<ext>html)\\$/" -->re:$1 <!--# echo var="1" -->-<!--# echo var="ext" --><!--# endif -->',
      '<!--# if expr="$uri != /nomatch/" -->not<!--# endif -->',
      '<!--# if expr="$arg_b" --><!--# echo var="never" --><!--# include virtual="/missing" --><!--# endif -->end',
    ].join('\n'),
  });
  const proxy = await proxyFor(t, dir, 'ssi on;');
  assert.equal((await get(proxy.port, '/if.html?a=x')).body.toString(), 'A\neq\nre:$1 if-html\nnot\nend');
  assert.equal((await get(proxy.port, '/if.html?a=z')).body.toString(), 'A\nne\nre:$1 if-html\nnot\nend');
  assert.equal((await get(proxy.port, '/if.html?a=y')).body.toString(), 'A\ny\nre:$1 if-html\nnot\nend');
  assert.equal((await get(proxy.port, '/if.html')).body.toString(), 'noA\nne\nre:$1 if-html\nnot\nend');
});

test('include file= and virtual=: static files, relative names, a proxied location with the subrequest\'s URI, nested includes, set=', async (t) => {
  const backend = await startHttpBackend((req, res: ServerResponse) => {
    res.writeHead(200, { 'Content-Type': 'text/html' });
    res.end(`[backend ${req.url}]`);
  });
  t.after(() => backend.close());
  const dir = site(t, {
    'index.html': 'top <!--# include file="parts/head.html" --> mid <!--# include virtual="/api/x?y=1" --> <!--# include virtual="/nested.html" --> end',
    'parts/head.html': 'HEAD(<!--# echo var="uri" -->)',
    'nested.html': 'nested[<!--# include virtual="/parts/head.html" -->]',
    'set.html': '<!--# include virtual="/parts/plain.txt" set="got" -->got=<!--# echo var="got" -->',
    'parts/plain.txt': 'plain<text>',
  });
  const proxy = await proxyFor(t, dir, `ssi on; location /api/ { proxy_pass http://${backend.addr}/b/; }`);
  const r = await get(proxy.port, '/index.html');
  assert.equal(r.status, 200);
  assert.equal(r.body.toString(), 'top HEAD(/parts/head.html) mid [backend /b/x?y=1] nested[HEAD(/parts/head.html)] end');
  // The subrequest went upstream as a GET with the client's headers and no body.
  assert.equal(backend.requests.at(-1)?.method, 'GET');
  assert.equal((await get(proxy.port, '/set.html')).body.toString(), 'got=plain&lt;text&gt;');
});

test('a proxied page with includes of other locations; ssi_types decides which responses are processed', async (t) => {
  const backend = await startHttpBackend((req, res: ServerResponse) => {
    if (req.url === '/page') {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Content-Length': '60', 'Last-Modified': 'Sat, 02 Jan 2021 03:04:05 GMT' });
      res.end('<b><!--# include virtual="/static/frag.html" --></b>'.padEnd(60, '.'));
    } else if (req.url === '/script') {
      res.writeHead(200, { 'Content-Type': 'application/javascript' });
      res.end('var x = "<!--# echo var="host" -->";');
    } else {
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.end('<!--# echo var="host" -->');
    }
  });
  t.after(() => backend.close());
  const dir = site(t, { 'static/frag.html': 'fragment' });
  const proxy = await proxyFor(t, dir, `
    ssi on; ssi_types application/javascript;
    location / { proxy_pass http://${backend.addr}; }
    location /static/ { }`);
  const page = await get(proxy.port, '/page');
  assert.equal(page.body.toString(), `<b>fragment</b>${'.'.repeat(60 - '<b><!--# include virtual="/static/frag.html" --></b>'.length)}`);
  assert.equal(page.header('content-length'), undefined);
  assert.equal(page.header('last-modified'), undefined);
  assert.equal((await get(proxy.port, '/script')).body.toString(), 'var x = "localhost";');
  // text/plain is not among the types: passed as it is.
  assert.equal((await get(proxy.port, '/other')).body.toString(), '<!--# echo var="host" -->');
});

test('a command split across upstream reads at every byte, and a large streamed body, are processed', async (t) => {
  const text = 'pre <!--# echo var="uri" --> mid <!--# include virtual="/frag.html" --> post <!-- plain comment --> <!-';
  const big = 'x'.repeat(1 << 20);
  const backend = await startHttpBackend((req, res: ServerResponse) => {
    res.writeHead(200, { 'Content-Type': 'text/html' });
    if (req.url === '/big') {
      res.write('<!--# echo var="uri" -->');
      for (let i = 0; i < 4; i++) res.write(big);
      res.end('<!--# echo var="uri" -->');
      return;
    }
    // One byte per write, each flushed on its own.
    let i = 0;
    const next = (): void => {
      if (i === text.length) {
        res.end();
        return;
      }
      res.write(text[i++]);
      setImmediate(next);
    };
    next();
  });
  t.after(() => backend.close());
  const dir = site(t, { 'frag.html': 'FRAG' });
  const proxy = await proxyFor(t, dir, `ssi on; location / { proxy_pass http://${backend.addr}; proxy_buffering off; } location = /frag.html { }`);
  assert.equal((await get(proxy.port, '/split')).body.toString(), 'pre /split mid FRAG post <!-- plain comment --> <!-');
  const r = await get(proxy.port, '/big');
  assert.equal(r.body.length, 4 * big.length + 8);
  assert.ok(r.body.subarray(0, 4).toString() === '/big' && r.body.subarray(-4).toString() === '/big');
});

test('errors: nginx\'s message (or config errmsg) in place, nothing with ssi_silent_errors; a missing include shows its error page or the stub', async (t) => {
  const dir = site(t, {
    'e.html': [
      '1<!--# bogus -->',
      '2<!--# echo -->',
      '3<!--# echo var="x" encoding="weird" -->',
      '4<!--# include virtual="/nothere.html" stub="fallback" -->',
      '<!--# block name="fallback" -->stub for <!--# echo var="uri" --><!--# endblock -->',
      '5<!--# include virtual="/nothere.html" stub="fallback" -->',
      '6<!--# config errmsg="OOPS" --><!--# endif -->',
      '7<!--# echo var=x -->',
      '8<!--# include virtual="/../etc/passwd" -->',
    ].join('\n'),
    'loop.html': 'L<!--# include virtual="/loop.html" -->',
  });
  const proxy = await proxyFor(t, dir, 'ssi on; location /quiet/ { alias html/; ssi_silent_errors on; }');
  const r = await get(proxy.port, '/e.html');
  assert.equal(r.status, 200);
  const lines = r.body.toString().split('\n');
  assert.equal(lines[0], `1${ERR}`);
  assert.equal(lines[1], `2${ERR}`);
  // An unknown encoding is logged and the value echoed anyway (x is not set: "(none)").
  assert.equal(lines[2], '3(none)');
  // The block is defined below this line: the stub is unknown yet.
  assert.equal(lines[3], `4${ERR}`);
  assert.equal(lines[4], '');
  // The stub is output as the subrequest's response: its commands see the subrequest's URI.
  assert.equal(lines[5], '5stub for /nothere.html');
  assert.equal(lines[6], '6OOPS');
  assert.equal(lines[7], '7OOPS');
  assert.equal(lines[8], '8OOPS');
  await proxy.waitForErrorLine('invalid SSI command: "bogus"');
  await proxy.waitForErrorLine('mandatory "var" parameter is absent in "echo" SSI command');
  await proxy.waitForErrorLine('unsafe URI');
  await proxy.waitForErrorLine('unknown encoding "weird" in the "echo" command');

  const quiet = await get(proxy.port, '/quiet/e.html');
  assert.deepEqual(quiet.body.toString().split('\n').slice(0, 4), ['1', '2', '3(none)', '4']);

  // Without a stub, the subrequest's 404 page is spliced in.
  const dir2 = site(t, { 'p.html': 'a<!--# include virtual="/none.html" -->b' });
  const proxy2 = await proxyFor(t, dir2, 'ssi on;');
  const p = await get(proxy2.port, '/p.html');
  assert.equal(p.status, 200);
  assert.match(p.body.toString(), /^a<html>\r?\n<head><title>404 Not Found<\/title>[\s\S]*<\/html>\r?\nb$/);

  // An include of itself: nested until nginx's limit, then the error message.
  const loop = await get(proxy.port, '/loop.html');
  assert.equal(loop.status, 200);
  assert.equal(loop.body.toString(), `${'L'.repeat(51)}${ERR}`);
  await proxy.waitForErrorLine('subrequests cycle while processing "/loop.html"');
});

test('gzip applies after SSI; ssi_last_modified on keeps Last-Modified and weakens the ETag', async (t) => {
  const dir = site(t, { 'g.html': `<!--# echo var="uri" -->${'z'.repeat(200)}` });
  const proxy = await proxyFor(t, dir, 'ssi on; gzip on; location /keep/ { alias html/; ssi_last_modified on; }');
  const r = await get(proxy.port, '/g.html', { 'Accept-Encoding': 'gzip' });
  assert.equal(r.header('content-encoding'), 'gzip');
  assert.equal(gunzipSync(r.body).toString(), `/g.html${'z'.repeat(200)}`);
  const keep = await get(proxy.port, '/keep/g.html');
  assert.equal(keep.body.toString(), `/keep/g.html${'z'.repeat(200)}`);
  assert.ok(keep.header('last-modified') !== undefined);
  assert.match(keep.header('etag') ?? '', /^W\/"/);
});

test('the Jitsi shape: ssi on with ssi_types for config.js served by alias', async (t) => {
  const dir = site(t, { 'config.js': 'var config = { hosts: { domain: "<!--# echo var="subdomain" default="" -->meet.example" } };' });
  const proxy = await proxyFor(t, dir, `
    ssi on; ssi_types application/x-javascript application/javascript;
    location ~ ^/([^/?&:'"]+)/config.js$ { set $subdomain "$1."; alias html/config.js; }
    location = /config.js { alias html/config.js; }`);
  assert.equal((await get(proxy.port, '/config.js')).body.toString(), 'var config = { hosts: { domain: "meet.example" } };');
  assert.equal((await get(proxy.port, '/team/config.js')).body.toString(), 'var config = { hosts: { domain: "team.meet.example" } };');
});

test('over HTTP/2: a proxied page and a static file are processed, includes included', async (t) => {
  const backend = await startHttpBackend((req, res: ServerResponse) => {
    res.writeHead(200, { 'Content-Type': 'text/html' });
    res.end(`<i><!--# include virtual="/frag.html" --> <!--# echo var="server_protocol" --> ${req.url}</i>`);
  });
  t.after(() => backend.close());
  const certs = await testCerts();
  const dir = site(t, { 'frag.html': 'F', 'page.html': '[<!--# include virtual="/up/x" -->]' });
  const proxy = await proxyFor(t, dir, `
    listen 127.0.0.1:0 ssl http2; ssl_certificate ${certs.localhost.certFile}; ssl_certificate_key ${certs.localhost.keyFile};
    ssi on; location /up/ { proxy_pass http://${backend.addr}/; }`);
  const client = await h2Connect(proxy.port, { ca: certs.ca.cert });
  t.after(() => client.close());
  const up = await h2Request(client, { ':path': '/up/p' });
  assert.equal(up.status, 200);
  assert.equal(up.text, '<i>F HTTP/2.0 /p</i>');
  const page = await h2Request(client, { ':path': '/page.html' });
  assert.equal(page.text, '[<i>F HTTP/2.0 /x</i>]');
});

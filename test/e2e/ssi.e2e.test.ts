/**
 * Server-side includes, Sluice against nginx on the same files, the same backend and the same
 * config text: echo/set/config, if/elif/else with regexes, include file= and virtual= (static,
 * proxied, nested, relative, set=, stub blocks), errors and silent errors, ssi_types, and the
 * headers the filter removes. Status, the headers that carry meaning and the body must match
 * (error pages differ only in the server's name).
 *
 * Needs nginx (SLUICE_NGINX, or the installed one).
 */
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { chmodSync } from 'node:fs';
import { test } from 'node:test';
import { startHttpBackend } from '../helpers/backends.js';
import { nginxAndSluice } from '../helpers/nginx.js';
import { rawRequest } from '../helpers/raw-client.js';
import { headerValue } from '../helpers/raw-client.js';
import { tempDir } from '../helpers/temp.js';

const FILES: Record<string, string> = {
  'echo.html': [
    'uri=<!--# echo var="uri" -->;',
    'none=<!--# echo var="nothing" -->;',
    'def=<!--# echo var="nothing" default="dflt" -->;',
    '<!--# set var="x" value="<a&b> $uri ${args} \\$lit ?\'\\"#%" -->',
    'ent=<!--# echo var="x" -->;',
    'raw=<!--# echo var="X" encoding="none" -->;',
    'url=<!--# echo var="x" encoding="url" -->;',
    'again=<!--# echo var="x" -->;',
    '<!--# config timefmt="%Y" -->',
    'arg=<!--#echo var="arg_q"-->|',
  ].join('\n'),
  'if.html': [
    '<!--# if expr="$arg_a" -->A<!--# else -->noA<!--# endif -->',
    '<!--# if expr="$arg_a = x" -->eq<!--# elif expr="$arg_a != y" -->ne<!--# else -->y<!--# endif -->',
    '<!--# if expr="$uri = /^\\/(if)\\.(html)$/" -->re <!--# echo var="1" -->-<!--# echo var="2" --><!--# endif -->',
    '<!--# if expr="$URI = /^\\/(if)\\.(?<ext>html)\\$/" -->re2 <!--# echo var="1" -->-<!--# echo var="ext" --><!--# endif -->',
    '<!--# if expr="$uri != /nomatch/" -->not<!--# endif -->',
    '<!--# if expr="ABC = abc" -->lower<!--# endif --><!--# if expr="$arg_a = \\/x" -->slash<!--# endif -->',
    '<!--# else -->E<!--# endif --><!--# if expr="1" -->1<!--# else -->2<!--# else -->3<!--# elif expr="1" -->4<!--# endif -->',
    '<!--# if expr="$arg_b" --><!--# echo var="never" --><!--# endif -->end',
  ].join('\n'),
  'inc.html': 'top <!--# include file="parts/head.html" --> mid <!--# include virtual="/api/x?y=1" --> <!--# include virtual="/nested.html" --> rel <!--# include virtual="parts/head.html" --> end',
  'parts/head.html': 'HEAD(<!--# echo var="uri" -->)',
  'nested.html': 'nested[<!--# include virtual="/parts/head.html" -->]',
  'set.html': '<!--# include virtual="/parts/plain.txt" set="got" -->got=<!--# echo var="got" -->;<!--# include virtual="/api/v" set="up" -->up=<!--# echo var="up" -->',
  'parts/plain.txt': 'plain<text>',
  'err.html': [
    '1<!--# bogus -->',
    '2<!--# echo -->',
    '3<!--# echo var="x" encoding="weird" -->',
    '<!--# block name="fallback" -->stub for <!--# echo var="uri" --><!--# endblock -->',
    '5<!--# include virtual="/nothere.html" stub="fallback" -->',
    '6<!--# config errmsg="OOPS" --><!--# endif -->',
    '7<!--# echo var=x -->',
    '8<!--# include virtual="/none.html" -->',
    '9<!--# include file="parts/head.html" wait="yes" -->',
    '10<!--# include virtual="/parts/head.html" wait="YES" -->',
    '11<!--# include virtual="/parts/head.html" stub="nope" -->',
    '12<!--# include virtual="/nothere.html" stub="fallback" -->',
    '13<!--# include virtual="/../x" -->',
  ].join('\n'),
  'plain.txt': '<!--# echo var="uri" -->',
  'app.js': 'var host = "<!--# echo var="host" -->";',
  'empty.html': '',
};

function httpBody(root: string, backend: string, listen: string): string {
  return `
    types { text/html html; text/plain txt; application/javascript js; }
    server {
      listen ${listen};
      server_name localhost;
      root ${root};
      ssi on;
      ssi_types application/javascript;
      location /api/ { proxy_pass http://${backend}/b/; }
      location /proxied/ { proxy_pass http://${backend}/; }
      location /quiet/ { alias ${root}/; ssi_silent_errors on; }
      location /keep/ { alias ${root}/; ssi_last_modified on; }
    }`;
}

async function ask(port: number, target: string): Promise<{ status: number; body: string; headers: Record<string, string | undefined> }> {
  const res = await rawRequest(port, `GET ${target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`);
  assert.ok(res.head, `an answer to ${target}`);
  const h = (name: string): string | undefined => headerValue(res.head!, name);
  return {
    status: res.head.statusCode,
    body: res.body.toString('latin1').replace(/nginx\/[0-9.]+|nginx|sluice/g, 'SERVER'),
    headers: { 'content-type': h('content-type'), 'content-length': h('content-length'), 'last-modified': h('last-modified') === undefined ? undefined : 'set', etag: h('etag')?.replace(/"[^"]*"/, '"E"'), 'accept-ranges': h('accept-ranges') },
  };
}

test('SSI: the same answers from nginx and Sluice', async (t) => {
  const backend = await startHttpBackend((req, res: ServerResponse) => {
    if (req.url === '/page.html') {
      res.writeHead(200, { 'Content-Type': 'text/html' });
      res.end('<b><!--# include virtual="/parts/head.html" --></b><!--# echo var="request_uri" -->');
      return;
    }
    res.writeHead(200, { 'Content-Type': 'text/html' });
    res.end(`[backend ${req.url}]`);
  });
  t.after(() => backend.close());
  const dir = tempDir(t);
  // nginx's workers run as nobody: the files must be readable by them.
  chmodSync(dir.path, 0o755);
  for (const [name, text] of Object.entries(FILES)) dir.write(`site/${name}`, text);
  const root = dir.join('site');
  const { nginx, sluice } = await nginxAndSluice(t, (port) => httpBody(root, backend.addr, `127.0.0.1:${port}`));
  const targets = [
    '/echo.html?q=1&z', '/if.html?a=x', '/if.html?a=z', '/if.html?a=y', '/if.html', '/inc.html', '/set.html',
    '/err.html', '/quiet/err.html', '/plain.txt', '/app.js', '/empty.html', '/keep/echo.html', '/proxied/page.html',
  ];
  for (const target of targets) {
    const [a, b] = [await ask(nginx, target), await ask(sluice, target)];
    assert.deepEqual(b, a, `GET ${target}`);
  }
});

// nginx (the installed 1.22) and Sluice side by side on one configuration: error_page in each
// form (URI, `=`, `=code`, @named, a URL, variables, `?args`), on local answers (404 from files,
// 403, `return`, 413, a dead upstream's 502) and on upstream answers with and without
// proxy_intercept_errors, recursive_error_pages off and on, and the method an error page's target
// sees. Status, Location and body must be the same (bar the signature line of built-in pages).
import assert from 'node:assert/strict';
import { chmodSync } from 'node:fs';
import { test } from 'node:test';
import { startHttpBackend } from '../helpers/backends.js';
import { nginxAndSluice } from '../helpers/nginx.js';
import { refusedPort } from '../helpers/ports.js';
import { headerValue, rawRequest } from '../helpers/raw-client.js';
import { tempDir } from '../helpers/temp.js';

interface Seen { status: number; location: string | undefined; body: string; ranges: string | undefined; added: string | undefined; auth: string | undefined }

/** One request on its own connection; ports in Location and server signatures made comparable. */
async function ask(port: number, request: string): Promise<Seen> {
  const r = await rawRequest(port, request, { until: 'close' });
  const head = r.head!;
  const body = r.body.toString().replace(/<hr><center>[^<]*<\/center>/, '<hr><center>SERVER</center>');
  return {
    status: head.statusCode, location: headerValue(head, 'location')?.replace(`:${port}`, ':PORT'), body,
    ranges: headerValue(head, 'accept-ranges'), added: headerValue(head, 'x-added'), auth: headerValue(head, 'www-authenticate'),
  };
}

const req = (method: string, path: string, body = '', extra = ''): string =>
  `${method} ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n${extra}${body === '' ? '' : `Content-Length: ${body.length}\r\n`}\r\n${body}`;

test('e2e: error_page answers as nginx does in every form, for local and upstream answers', async (t) => {
  const dir = tempDir(t);
  // nginx started as root serves files as nobody.
  chmodSync(dir.path, 0o755);
  dir.write('html/404.html', 'custom 404\n');
  dir.write('html/50x.html', 'custom 50x\n');
  dir.write('html/deny/x.txt', 'x');
  dir.write('html/post/f.txt', 'posted file\n');
  const backend = await startHttpBackend((r, res) => {
    const m = /^\/up\/(\d+)/.exec(r.url ?? '');
    if (m) {
      res.writeHead(Number(m[1]), m[1] === '401' ? { 'WWW-Authenticate': 'Basic realm="up"' } : { 'Content-Type': 'text/plain' }).end(`upstream ${m[1]}\n`);
      return;
    }
    let body = '';
    r.on('data', (c: Buffer) => void (body += c.toString()));
    r.on('end', () => res.writeHead(200, { 'Content-Type': 'text/plain' }).end(`${r.method ?? ''} ${r.url ?? ''}${body === '' ? '' : ` ${body}`}\n`));
  });
  t.after(() => backend.close());
  const dead = await refusedPort();
  const ports = await nginxAndSluice(t, (port) => `
    server { listen 127.0.0.1:${port}; root ${dir.join('html')};
      error_page 404 /404.html;
      error_page 502 503 504 /50x.html;
      add_header X-Added yes;
      location = /404.html { }
      location = /50x.html { }
      location /eq/ { error_page 404 = /echo/eq; }
      location /code/ { error_page 404 =200 /404.html; }
      location /code301/ { error_page 404 =301 /404.html; }
      location /named/ { error_page 404 @fallback; }
      location @fallback { proxy_pass http://${backend.addr}; }
      location /url/ { error_page 404 http://example.com/missing; }
      location /url301/ { error_page 404 =301 https://example.com/moved; }
      location /vars/ { error_page 404 /echo/v?u=$uri; }
      location /args/ { error_page 404 /echo/a?x=1; }
      location /echo/ { proxy_pass http://${backend.addr}; }
      location /deny/ { deny all; error_page 403 /404.html; }
      location /ret/ { return 418; error_page 418 =200 /404.html; }
      location /rettext/ { error_page 418 /404.html; return 418 "text"; }
      location /retredir/ { error_page 302 /404.html; return 302 /elsewhere; }
      location /small/ { client_max_body_size 2; error_page 413 /404.html; proxy_pass http://${backend.addr}; }
      location /up404/ { error_page 404 = /echo/again; proxy_intercept_errors on; proxy_pass http://${backend.addr}/up/404; }
      location /dead/ { proxy_pass http://127.0.0.1:${dead}; }
      location /up/ { proxy_pass http://${backend.addr}; }
      location /icpt/ { proxy_intercept_errors on; error_page 404 500 401 /404.html; proxy_pass http://${backend.addr}/up/; }
      location /own/ { error_page 500 /50x.html; }
      location /rec/ { error_page 404 /rec/missing2; }
      location /recon/ { recursive_error_pages on; error_page 404 /recon/again; }
      location /recloop/ { recursive_error_pages on; error_page 404 /recloop/x; }
      location /post/ { error_page 405 =200 $uri; }
      location /r2/ { error_page 404 /r3/x; }
      location /r3/ { error_page 500 /404.html; return 302 /y; }
      location /t2/ { error_page 404 /t3/x; }
      location /t3/ { return 200 "in target"; }
      location /missingpage/ { error_page 404 /nothere.html; }
    }`);
  const requests = [
    req('GET', '/nothing'), req('HEAD', '/nothing'),
    req('GET', '/nothing', '', 'If-Modified-Since: Fri, 01 Jan 2100 00:00:00 GMT\r\nRange: bytes=0-3\r\n'), req('POST', '/nothing', 'ab'),
    req('GET', '/eq/x'), req('POST', '/eq/x', 'ab'), req('HEAD', '/eq/x'),
    req('GET', '/code/x'), req('GET', '/code301/x'),
    req('GET', '/named/x'), req('POST', '/named/x', 'ab'),
    req('GET', '/url/x'), req('GET', '/url301/x'),
    req('GET', '/vars/x'), req('GET', '/args/x?y=2'),
    req('GET', '/deny/x.txt'), req('GET', '/ret/x'), req('GET', '/rettext/x'), req('GET', '/retredir/x'),
    req('POST', '/small/x', 'abcdef'),
    req('GET', '/dead/x'), req('GET', '/up404/x'),
    req('GET', '/up/404'), req('GET', '/up/500'),
    req('GET', '/icpt/404'), req('GET', '/icpt/500'), req('GET', '/icpt/403'), req('GET', '/icpt/401'), req('HEAD', '/icpt/404'),
    req('GET', '/own/x'), req('GET', '/rec/x'), req('GET', '/recon/x'), req('GET', '/recloop/x'), req('GET', '/missingpage/x'),
    req('POST', '/post/f.txt', 'ab'), req('GET', '/r2/x'), req('GET', '/t2/x'),
  ];
  const nginx: Record<string, Seen> = {};
  const sluice: Record<string, Seen> = {};
  for (const r of requests) {
    const what = r.split('\r\n')[0]!;
    nginx[what] = await ask(ports.nginx, r);
    sluice[what] = await ask(ports.sluice, r);
  }
  assert.deepEqual(sluice, nginx);
});

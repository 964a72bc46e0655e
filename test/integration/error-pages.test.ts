/**
 * error_page, recursive_error_pages and proxy_intercept_errors on real sockets: each form of the
 * target (URI, `=`, `=code`, @named, a URL, variables and `?args`), the local answers it applies
 * to (404, 403, `return`, 413, a head refused before routing, 502, 504), upstream answers with
 * and without interception (the upstream connection closed, a 401's challenge kept, an upgrade
 * answered without 101), the method the target sees, inheritance, recursion and its limit, and
 * HTTP/2.
 */
import assert from 'node:assert/strict';
import { chmodSync } from 'node:fs';
import { test, type TestContext } from 'node:test';
import { startHttpBackend } from '../helpers/backends.js';
import type { HttpBackend } from '../helpers/backends.js';
import { testCerts } from '../helpers/certs.js';
import { conf } from '../helpers/config-text.js';
import { h2Connect, h2Request, h2WebSocket } from '../helpers/h2-client.js';
import { errorPage } from '../helpers/pages.js';
import { refusedPort } from '../helpers/ports.js';
import { startTestProxy } from '../helpers/proxy.js';
import { headerValue, readToEnd, sendRequest } from '../helpers/raw-client.js';
import { tempDir, type TempDir } from '../helpers/temp.js';
import { waitFor } from '../helpers/wait.js';

function site(t: Parameters<typeof tempDir>[0]): TempDir {
  const dir = tempDir(t);
  chmodSync(dir.path, 0o755);
  dir.write('html/404.html', 'custom 404\n');
  dir.write('html/50x.html', 'custom 50x\n');
  dir.write('html/other.html', 'other page\n');
  dir.write('html/post/f.txt', 'a file\n');
  return dir;
}

/** A backend answering `/up/CODE` with that status, `/hang` never, and anything else with "METHOD URL[ BODY]". */
async function backend(t: TestContext): Promise<HttpBackend> {
  const b = await startHttpBackend((req, res) => {
    const m = /^\/up\/(\d+)/.exec(req.url ?? '');
    if (m !== null) {
      const status = Number(m[1]);
      res.writeHead(status, status === 401 ? { 'WWW-Authenticate': 'Basic realm="up"' } : { 'Content-Type': 'text/plain' }).end(`upstream ${status}\n`);
      return;
    }
    if (req.url === '/hang') return;
    let body = '';
    req.on('data', (c: Buffer) => void (body += c.toString()));
    req.on('end', () => res.writeHead(200, { 'Content-Type': 'text/plain' }).end(`${req.method ?? ''} ${req.url ?? ''}${body === '' ? '' : ` ${body}`}\n`));
  }, {
    onUpgrade: (_req, socket) => socket.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 13\r\nConnection: close\r\n\r\nupstream 403\n'),
  });
  t.after(() => b.close());
  return b;
}

const get = (port: number, path: string, headers: readonly string[] = ['Host: localhost']) => sendRequest(port, path, headers);

test('error_page on a local 404, in each form: URI, =, =code, @named, a URL, =301 URL, variables and ?args', async (t) => {
  const dir = site(t);
  const b = await backend(t);
  const proxy = await startTestProxy(conf(`
    server { listen 127.0.0.1:0; root html;
      error_page 404 /404.html;
      add_header X-Added yes;
      location = /404.html { }
      location /eq/ { error_page 404 = /echo/eq; }
      location /code/ { error_page 404 =200 /404.html; }
      location /named/ { error_page 404 @fallback; }
      location @fallback { proxy_pass http://${b.addr}; }
      location /url/ { error_page 404 http://example.com/missing; }
      location /url301/ { error_page 404 =301 https://example.com/moved; }
      location /vars/ { error_page 404 /echo/v?u=$uri; }
      location /args/ { error_page 404 /echo/a?x=1; }
      location /echo/ { proxy_pass http://${b.addr}; }
    }`), { t, prefix: dir.path });
  let r = await get(proxy.port, '/nothing');
  assert.equal(r.status, 404);
  assert.equal(r.body, 'custom 404\n');
  // The page's file goes out as a 404: no 304, no range, no Accept-Ranges, no add_header (nginx's
  // filters see err_status).
  r = await get(proxy.port, '/nothing', ['Host: localhost', 'If-Modified-Since: Fri, 01 Jan 2100 00:00:00 GMT', 'Range: bytes=0-3']);
  assert.deepEqual([r.status, r.body, headerValue(r.head, 'accept-ranges'), headerValue(r.head, 'x-added')], [404, 'custom 404\n', undefined, undefined]);
  r = await get(proxy.port, '/eq/x');
  assert.deepEqual([r.status, r.body], [200, 'GET /echo/eq\n'], '= takes the target\'s status');
  r = await get(proxy.port, '/code/x');
  assert.deepEqual([r.status, r.body], [200, 'custom 404\n']);
  r = await get(proxy.port, '/named/x?q=1');
  assert.deepEqual([r.status, r.body], [404, 'GET /named/x?q=1\n'], 'a named location keeps the URI and the error status');
  r = await get(proxy.port, '/url/x');
  assert.equal(r.status, 302);
  assert.equal(headerValue(r.head, 'location'), 'http://example.com/missing');
  assert.equal(r.body, errorPage('302 Found'));
  r = await get(proxy.port, '/url301/x');
  assert.equal(r.status, 301);
  assert.equal(headerValue(r.head, 'location'), 'https://example.com/moved');
  r = await get(proxy.port, '/vars/x');
  assert.deepEqual([r.status, r.body], [404, 'GET /echo/v?u=/vars/x\n']);
  r = await get(proxy.port, '/args/x?y=2');
  assert.deepEqual([r.status, r.body], [404, 'GET /echo/a?x=1\n'], 'the page\'s own arguments replace the request\'s');
});

test('the method: a URI target turns POST into GET (HEAD stays HEAD), @named keeps POST; the body goes along unless an upstream had it already', async (t) => {
  const dir = site(t);
  const b = await backend(t);
  const proxy = await startTestProxy(conf(`
    server { listen 127.0.0.1:0; root html;
      location /eq/ { error_page 404 = /echo/eq; }
      location /named/ { error_page 404 @fallback; }
      location @fallback { proxy_pass http://${b.addr}; }
      location /echo/ { proxy_pass http://${b.addr}; }
      location /post/ { error_page 405 =200 $uri; }
      location /icpt/ { error_page 404 = /echo/again; proxy_intercept_errors on; proxy_pass http://${b.addr}/up/404; }
    }`), { t, prefix: dir.path });
  let r = await sendRequest(proxy.port, '/eq/x', ['Host: localhost'], { method: 'POST', body: 'ab' });
  assert.deepEqual([r.status, r.body], [200, 'GET /echo/eq ab\n'], 'nginx sends the unread body with the GET');
  // The body was read whole (proxy_request_buffering on, the default): after the upstream whose
  // answer is intercepted had it, the error page's target gets it again, as from nginx.
  r = await sendRequest(proxy.port, '/icpt/x', ['Host: localhost'], { method: 'POST', body: 'ab' });
  assert.deepEqual([r.status, r.body], [200, 'GET /echo/again ab\n']);
  r = await sendRequest(proxy.port, '/eq/x', ['Host: localhost'], { method: 'HEAD' });
  assert.deepEqual([r.status, r.body], [200, '']);
  assert.equal(b.requests.at(-1)?.method, 'HEAD');
  r = await sendRequest(proxy.port, '/named/x', ['Host: localhost'], { method: 'POST', body: 'ab' });
  assert.deepEqual([r.status, r.body], [404, 'POST /named/x ab\n']);
  // The classic: POST to a static file is 405; the error page serves the file instead.
  r = await sendRequest(proxy.port, '/post/f.txt', ['Host: localhost'], { method: 'POST', body: 'ab' });
  assert.deepEqual([r.status, r.body], [200, 'a file\n']);
});

test('error_page applies to 403, return without text, a return redirect (its Location kept), 413, 502 and 504; return with text is sent as it is', async (t) => {
  const dir = site(t);
  const b = await backend(t);
  const dead = await refusedPort();
  const proxy = await startTestProxy(conf(`
    server { listen 127.0.0.1:0; root html;
      error_page 404 403 413 /404.html;
      error_page 502 504 /50x.html;
      location = /404.html { }
      location = /50x.html { }
      location /deny/ { deny all; }
      location /ret/ { return 418; error_page 418 =200 /404.html; }
      location /rettext/ { error_page 418 /404.html; return 418 "text"; }
      location /retredir/ { error_page 302 /404.html; return 302 /elsewhere; }
      location /small/ { client_max_body_size 2; proxy_pass http://${b.addr}; }
      location /dead/ { proxy_pass http://127.0.0.1:${dead}; }
      location = /slow { proxy_read_timeout 200ms; proxy_pass http://${b.addr}/hang; }
    }`), { t, prefix: dir.path });
  let r = await get(proxy.port, '/deny/x');
  assert.deepEqual([r.status, r.body], [403, 'custom 404\n']);
  r = await get(proxy.port, '/ret/x');
  assert.deepEqual([r.status, r.body], [200, 'custom 404\n']);
  r = await get(proxy.port, '/rettext/x');
  assert.deepEqual([r.status, r.body], [418, 'text']);
  r = await get(proxy.port, '/retredir/x');
  assert.deepEqual([r.status, r.body], [302, 'custom 404\n']);
  assert.match(headerValue(r.head, 'location') ?? '', /^http:\/\/localhost:\d+\/elsewhere$/);
  r = await sendRequest(proxy.port, '/small/x', ['Host: localhost'], { method: 'POST', body: 'abcdef' });
  assert.deepEqual([r.status, r.body], [413, 'custom 404\n']);
  assert.equal(b.requests.length, 0, 'the refused body never went upstream');
  r = await get(proxy.port, '/dead/x');
  assert.deepEqual([r.status, r.body], [502, 'custom 50x\n']);
  r = await get(proxy.port, '/slow');
  assert.deepEqual([r.status, r.body], [504, 'custom 50x\n']);
});

test('a head refused before routing (no Host, a header too large) gets the server\'s error_page; 494 goes out as 400', async (t) => {
  const dir = site(t);
  const proxy = await startTestProxy(conf(`
    server { listen 127.0.0.1:0; root html; large_client_header_buffers 4 1k;
      error_page 400 494 /404.html;
      location = /404.html { }
    }`), { t, prefix: dir.path });
  let r = await sendRequest(proxy.port, '/x', []);
  assert.deepEqual([r.status, r.body], [400, 'custom 404\n']);
  r = await sendRequest(proxy.port, '/x', ['Host: localhost', `X-Big: ${'a'.repeat(2000)}`]);
  assert.deepEqual([r.status, r.body], [400, 'custom 404\n']);
});

test('upstream answers: relayed without proxy_intercept_errors; intercepted with it when an error_page lists the status, the upstream connection closed', async (t) => {
  const dir = site(t);
  const b = await backend(t);
  const proxy = await startTestProxy(conf(`
    server { listen 127.0.0.1:0; root html;
      error_page 404 500 401 /404.html;
      location = /404.html { }
      location /up/ { proxy_pass http://${b.addr}; }
      location /icpt/ { proxy_intercept_errors on; proxy_pass http://${b.addr}/up/; }
    }`), { t, prefix: dir.path });
  let r = await get(proxy.port, '/up/404');
  assert.deepEqual([r.status, r.body], [404, 'upstream 404\n']);
  r = await get(proxy.port, '/icpt/404');
  assert.deepEqual([r.status, r.body], [404, 'custom 404\n']);
  r = await get(proxy.port, '/icpt/500');
  assert.deepEqual([r.status, r.body], [500, 'custom 404\n']);
  r = await get(proxy.port, '/icpt/403');
  assert.deepEqual([r.status, r.body], [403, 'upstream 403\n'], 'a status with no error_page is relayed');
  r = await get(proxy.port, '/icpt/401');
  assert.deepEqual([r.status, r.body], [401, 'custom 404\n']);
  assert.equal(headerValue(r.head, 'www-authenticate'), 'Basic realm="up"', 'the upstream\'s challenge is kept');
  r = await sendRequest(proxy.port, '/icpt/404', ['Host: localhost'], { method: 'HEAD' });
  assert.deepEqual([r.status, r.body], [404, '']);
  await waitFor(() => b.openSockets() === 0, { what: 'the intercepted upstream connections to close' });
});

test('an upgrade the upstream answers without 101 gets the error page when intercepted; one whose upstream is down gets the 502 page', async (t) => {
  const dir = site(t);
  const b = await backend(t);
  const dead = await refusedPort();
  const proxy = await startTestProxy(conf(`
    server { listen 127.0.0.1:0; root html;
      error_page 403 /404.html;
      error_page 502 /50x.html;
      location = /50x.html { }
      location /dead/ { proxy_pass http://127.0.0.1:${dead}; }
      location = /404.html { }
      location /ws/ { proxy_pass http://${b.addr}; }
      location /wsi/ { proxy_intercept_errors on; proxy_pass http://${b.addr}; }
    }`), { t, prefix: dir.path });
  const upgrade = ['Host: localhost', 'Upgrade: websocket', 'Connection: Upgrade', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version: 13'];
  let r = await sendRequest(proxy.port, '/ws/x', upgrade);
  assert.deepEqual([r.status, r.body], [403, 'upstream 403\n']);
  r = await sendRequest(proxy.port, '/wsi/x', upgrade);
  assert.deepEqual([r.status, r.body], [403, 'custom 404\n']);
  r = await sendRequest(proxy.port, '/dead/x', upgrade);
  assert.deepEqual([r.status, r.body], [502, 'custom 50x\n']);
});

test('inheritance and recursion: own error_page lines replace the inherited ones; one error page per request unless recursive_error_pages; the redirect limit', async (t) => {
  const dir = site(t);
  const proxy = await startTestProxy(conf(`
    server { listen 127.0.0.1:0; root html;
      error_page 404 /404.html;
      location = /404.html { }
      location = /other.html { }
      location /own/ { error_page 500 /other.html; }
      location /rec/ { error_page 404 /rec/missing2; }
      location /recon/ { recursive_error_pages on; error_page 404 /recon2/x; }
      location /recon2/ { recursive_error_pages on; error_page 404 /other.html; }
      location /recloop/ { recursive_error_pages on; error_page 404 /recloop/x; }
    }`), { t, prefix: dir.path });
  let r = await get(proxy.port, '/own/x');
  assert.deepEqual([r.status, r.body], [404, errorPage('404 Not Found')], 'the server\'s 404 page is not inherited');
  r = await get(proxy.port, '/rec/x');
  assert.deepEqual([r.status, r.body], [404, errorPage('404 Not Found')], 'the page\'s own 404 gets the built-in page');
  r = await get(proxy.port, '/recon/x');
  assert.deepEqual([r.status, r.body], [404, 'other page\n'], 'recursive_error_pages on: the second error page is used');
  r = await get(proxy.port, '/recloop/x');
  assert.deepEqual([r.status, r.body], [500, errorPage('500 Internal Server Error')]);
  await proxy.waitForErrorLine('rewrite or internal redirection cycle while internally redirecting to "/recloop/x"');
});

test('HTTP/2: error pages for a local 404, an intercepted upstream answer and an extended CONNECT the upstream refuses', async (t) => {
  const dir = site(t);
  const b = await backend(t);
  const certs = await testCerts();
  const proxy = await startTestProxy(conf(`
    server { listen 127.0.0.1:0 ssl http2; server_name localhost; root html;
      ssl_certificate ${certs.localhost.certFile};
      ssl_certificate_key ${certs.localhost.keyFile};
      error_page 404 500 /404.html;
      location = /404.html { }
      location /icpt/ { proxy_intercept_errors on; proxy_pass http://${b.addr}/up/; }
      location /ws/ { error_page 403 @denied; proxy_intercept_errors on; proxy_pass http://${b.addr}; }
      location @denied { return 403 "denied\\n"; }
    }`), { t, prefix: dir.path });
  const client = await h2Connect(proxy.port, { ca: certs.ca.cert });
  t.after(() => client.close());
  let r = await h2Request(client, { ':path': '/nothing' });
  assert.deepEqual([r.status, r.text], [404, 'custom 404\n']);
  r = await h2Request(client, { ':path': '/icpt/500' });
  assert.deepEqual([r.status, r.text], [500, 'custom 404\n']);
  r = await h2Request(client, { ':path': '/icpt/403' });
  assert.deepEqual([r.status, r.text], [403, 'upstream 403\n']);
  // RFC 8441 extended CONNECT refused by the upstream: the error page, as for HTTP/1.1 (a file
  // is no answer to a CONNECT stream: Sluice's HTTP/2 WebSocket front end answers those 405).
  const ws = await h2WebSocket(client, '/ws/x');
  assert.equal(ws.headers[':status'], 403);
  assert.equal((await readToEnd(ws.stream)).toString(), 'denied\n');
});

/**
 * fastcgi_pass (ngx_http_fastcgi_module) on real sockets, against a FastCGI responder written in
 * the test helpers: the params (fastcgi_param with if_not_empty and inheritance, the bundled
 * fastcgi_params, the client's headers as HTTP_*), fastcgi_split_path_info and fastcgi_index,
 * the request body (whole, chunked, streamed), the CGI head (Status, Location, headers and body
 * over several records), stderr in the error log, keep_conn reuse, time-outs (504), a refused
 * server (502), malformed replies (502), fastcgi_intercept_errors, and what `-t` refuses.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bad, http, show } from '../../src/config/fixtures.js';
import { conf } from '../helpers/config-text.js';
import { record, startFastcgiResponder } from '../helpers/fastcgi-responder.js';
import type { FcgiHandler, FcgiRequest, FcgiResponder } from '../helpers/fastcgi-responder.js';
import { refusedPort } from '../helpers/ports.js';
import { startTestProxy } from '../helpers/proxy.js';
import { headerValue, rawConnect, readToEnd, sendRequest } from '../helpers/raw-client.js';
import { tempDir } from '../helpers/temp.js';
import { waitForFileLine } from '../helpers/log-files.js';
import { waitFor } from '../helpers/wait.js';

async function responder(t: import('node:test').TestContext, handler?: FcgiHandler, path?: string): Promise<FcgiResponder> {
  const r = await startFastcgiResponder(handler, path === undefined ? {} : { path });
  t.after(() => r.close());
  return r;
}

/** Answers with every param as NAME=VALUE lines, then the stdin. */
const paramsHandler: FcgiHandler = (req, reply) => {
  reply.stdout('Content-Type: text/plain\r\n\r\n');
  reply.stdout([...req.params].map(([k, v]) => `${k}=${v}`).join('\n'));
  reply.stdout(`\nSTDIN=${req.stdin.toString('latin1')}`);
  reply.end();
};

function paramsOf(body: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of body.split('\n')) {
    const at = line.indexOf('=');
    if (at > 0) m.set(line.slice(0, at), line.slice(at + 1));
  }
  return m;
}

test('params: fastcgi_params, SCRIPT_FILENAME, split_path_info, fastcgi_index, if_not_empty, the client headers', async (t) => {
  const fpm = await responder(t, paramsHandler);
  const dir = tempDir(t);
  const proxy = await startTestProxy(conf(`
    server {
      listen 127.0.0.1:0;
      server_name app.test;
      root ${dir.path}/www;
      fastcgi_param FROM_SERVER yes;
      location ~ [^/]\\.php(/|$) {
        fastcgi_split_path_info ^(.+?\\.php)(/.*)$;
        fastcgi_pass 127.0.0.1:${fpm.port};
        fastcgi_index index.php;
        include fastcgi_params;
        fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
        fastcgi_param PATH_INFO $fastcgi_path_info;
        fastcgi_param EMPTY_SKIPPED $http_x_absent if_not_empty;
        fastcgi_param HTTP_X_OVERRIDDEN set-by-config;
      }
      location /dir/ {
        fastcgi_pass 127.0.0.1:${fpm.port};
        fastcgi_index index.php;
        fastcgi_param SCRIPT_NAME $fastcgi_script_name;
      }
      location /inherit {
        fastcgi_pass 127.0.0.1:${fpm.port};
      }
    }
  `), { t });
  const res = await sendRequest(proxy.port, '/app/index.php/extra/path?x=1&y=2', ['Host: app.test', 'X-Custom: c1', 'X-Overridden: from-client']);
  assert.equal(res.status, 200);
  const p = paramsOf(res.body);
  assert.equal(p.get('SCRIPT_FILENAME'), `${dir.path}/www/app/index.php`);
  assert.equal(p.get('SCRIPT_NAME'), '/app/index.php');
  assert.equal(p.get('PATH_INFO'), '/extra/path');
  assert.equal(p.get('QUERY_STRING'), 'x=1&y=2');
  assert.equal(p.get('REQUEST_METHOD'), 'GET');
  assert.equal(p.get('REQUEST_URI'), '/app/index.php/extra/path?x=1&y=2');
  assert.equal(p.get('DOCUMENT_URI'), '/app/index.php/extra/path');
  assert.equal(p.get('DOCUMENT_ROOT'), `${dir.path}/www`);
  assert.equal(p.get('SERVER_NAME'), 'app.test');
  assert.equal(p.get('SERVER_PORT'), String(proxy.port));
  assert.equal(p.get('REMOTE_ADDR'), '127.0.0.1');
  assert.equal(p.get('GATEWAY_INTERFACE'), 'CGI/1.1');
  assert.equal(p.get('REDIRECT_STATUS'), '200');
  assert.equal(p.get('HTTP_HOST'), 'app.test');
  assert.equal(p.get('HTTP_X_CUSTOM'), 'c1');
  // A header a fastcgi_param line names is not passed again.
  assert.equal(p.get('HTTP_X_OVERRIDDEN'), 'set-by-config');
  assert.equal(p.has('HTTPS'), false, 'HTTPS is if_not_empty');
  assert.equal(p.has('EMPTY_SKIPPED'), false);
  // A level with fastcgi_param lines inherits none (nginx's array merge).
  assert.equal(p.has('FROM_SERVER'), false);

  const idx = paramsOf((await sendRequest(proxy.port, '/dir/', ['Host: app.test'])).body);
  assert.equal(idx.get('SCRIPT_NAME'), '/dir/index.php');
  const inherited = paramsOf((await sendRequest(proxy.port, '/inherit', ['Host: app.test'])).body);
  assert.equal(inherited.get('FROM_SERVER'), 'yes');
  assert.equal(fpm.requests[0]?.role, 1, 'the responder role');
  assert.equal(fpm.requests[0]?.keepConn, false);
});

test('the CGI head: Status, headers and body over several records, Location without Status, stderr in the error log', async (t) => {
  const fpm = await responder(t, (req, reply) => {
    const uri = req.params.get('REQUEST_URI');
    if (uri === '/redirect') {
      reply.stdout('Location: /elsewhere\r\n\r\n');
    } else if (uri === '/lf') {
      reply.stdout('Content-Type: text/plain\nX-Lf: yes\n\nbare lf');
    } else {
      reply.stderr('PHP Warning:  something odd\n');
      reply.stdout('Status: 404 Not Found\r\nX-A: 1\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n');
      reply.stdout('X-Accel-Buffering: no\r\nContent-Type: text/html\r\n\r\nbody1');
      reply.stdout('body2');
    }
    reply.end();
  });
  const proxy = await startTestProxy(conf(`
    server {
      listen 127.0.0.1:0;
      location / { fastcgi_pass 127.0.0.1:${fpm.port}; include fastcgi_params; }
    }
  `), { t });
  const res = await sendRequest(proxy.port, '/page');
  assert.equal(res.status, 404);
  assert.equal(res.head.reason, 'Not Found');
  assert.equal(headerValue(res.head, 'x-a'), '1');
  assert.equal(headerValue(res.head, 'status'), undefined, 'Status is hidden');
  assert.equal(headerValue(res.head, 'x-accel-buffering'), undefined, 'X-Accel-* are hidden');
  assert.deepEqual(res.head.headers.filter(([n]) => n.toLowerCase() === 'set-cookie').map(([, v]) => v), ['a=1', 'b=2']);
  assert.equal(res.body, 'body1body2');
  const line = await proxy.waitForErrorLine('FastCGI sent in stderr');
  assert.match(line, /\[error\].*FastCGI sent in stderr: "PHP Warning:  something odd" while reading response header from upstream, client: 127\.0\.0\.1, .*upstream: "fastcgi:\/\/127\.0\.0\.1:\d+"/);

  const redirect = await sendRequest(proxy.port, '/redirect');
  assert.equal(redirect.status, 302);
  assert.equal(headerValue(redirect.head, 'location'), '/elsewhere');

  const lf = await sendRequest(proxy.port, '/lf');
  assert.equal(lf.status, 200);
  assert.equal(headerValue(lf.head, 'x-lf'), 'yes');
  assert.equal(lf.body, 'bare lf');
});

test('the request body: whole, chunked (read whole, CONTENT_LENGTH set), and streamed with fastcgi_request_buffering off', async (t) => {
  const fpm = await responder(t, paramsHandler);
  const proxy = await startTestProxy(conf(`
    server {
      listen 127.0.0.1:0;
      location / { fastcgi_pass 127.0.0.1:${fpm.port}; include fastcgi_params; }
      location /stream { fastcgi_pass 127.0.0.1:${fpm.port}; include fastcgi_params; fastcgi_request_buffering off; }
    }
  `), { t });
  const whole = paramsOf((await sendRequest(proxy.port, '/form', ['Host: localhost', 'Content-Type: application/x-www-form-urlencoded'], { method: 'POST', body: 'a=1&b=2' })).body);
  assert.equal(whole.get('STDIN'), 'a=1&b=2');
  assert.equal(whole.get('CONTENT_LENGTH'), '7');
  assert.equal(whole.get('CONTENT_TYPE'), 'application/x-www-form-urlencoded');
  assert.equal(whole.get('REQUEST_METHOD'), 'POST');

  const chunked = await rawConnect(proxy.port);
  chunked.write('POST /c HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n');
  const text = (await readToEnd(chunked)).toString('latin1');
  const c = paramsOf(text.slice(text.indexOf('\r\n\r\n') + 4).replace(/^[0-9a-f]+\r\n/m, ''));
  assert.match(text, /STDIN=hello world/);
  assert.equal(c.get('CONTENT_LENGTH'), '11');

  // Streamed: the params and the first part reach the server before the client sends the rest.
  let live: FcgiRequest | null = null;
  fpm.onParams = (req) => void (live = req);
  const s = await rawConnect(proxy.port);
  s.write('POST /stream HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10\r\nConnection: close\r\n\r\nfirst');
  await waitFor(() => (live as FcgiRequest | null)?.stdin.toString() === 'first', { what: 'the first part reached the server' });
  s.write('-part');
  const streamed = (await readToEnd(s)).toString('latin1');
  assert.match(streamed, /STDIN=first-part/);
  assert.equal(fpm.requests[2]?.stdin.toString(), 'first-part');
  assert.ok((fpm.requests[2]?.stdinRecords.length ?? 0) >= 2, 'the body went in more than one record');
});

test('fastcgi_keep_conn on with keepalive reuses one connection; off closes each', async (t) => {
  const fpm = await responder(t);
  const proxy = await startTestProxy(conf(`
    upstream php { server 127.0.0.1:${fpm.port}; keepalive 4; }
    server {
      listen 127.0.0.1:0;
      location /keep { fastcgi_pass php; fastcgi_keep_conn on; }
      location /close { fastcgi_pass php; }
    }
  `), { t });
  for (let i = 0; i < 3; i++) assert.equal((await sendRequest(proxy.port, '/keep')).status, 200);
  assert.equal(fpm.connections, 1);
  assert.deepEqual(fpm.requests.map((r) => [r.connection, r.keepConn]), [[0, true], [0, true], [0, true]]);
  for (let i = 0; i < 2; i++) assert.equal((await sendRequest(proxy.port, '/close')).status, 200);
  assert.equal(fpm.connections, 3);
  assert.deepEqual(fpm.requests.slice(3).map((r) => r.keepConn), [false, false]);
});

test('failures: read time-out 504, refused 502, garbage 502, invalid header 502, invalid Status 502, closed before the end', async (t) => {
  const fpm = await responder(t, (req, reply) => {
    switch (req.params.get('REQUEST_URI')) {
      case '/hang':
        return;
      case '/garbage':
        reply.raw('HTTP/1.1 200 OK\r\n\r\n');
        return;
      case '/bad-header':
        reply.stdout('this is no header\r\n\r\nbody');
        reply.end();
        return;
      case '/bad-status':
        reply.stdout('Status: abc\r\n\r\n');
        reply.end();
        return;
      case '/no-head':
        reply.end();
        return;
      case '/cut':
        reply.stdout('Content-Type: text/plain\r\n\r\npart');
        setTimeout(() => reply.socket.destroy(), 20);
        return;
      case '/type':
        reply.raw(record(11, 'x'));
        return;
    }
  });
  const dead = await refusedPort();
  const proxy = await startTestProxy(conf(`
    server {
      listen 127.0.0.1:0;
      fastcgi_param REQUEST_URI $request_uri;
      location / { fastcgi_pass 127.0.0.1:${fpm.port}; fastcgi_read_timeout 300ms; }
      location /dead { fastcgi_pass 127.0.0.1:${dead}; }
    }
  `), { t });
  assert.equal((await sendRequest(proxy.port, '/hang')).status, 504);
  await proxy.waitForErrorLine(/upstream timed out \(110: Connection timed out\) while reading response header from upstream.*upstream: "fastcgi:\/\/127\.0\.0\.1:\d+"/);
  assert.equal((await sendRequest(proxy.port, '/dead')).status, 502);
  await proxy.waitForErrorLine(/connect\(\) failed \(111: Connection refused\) while connecting to upstream/);
  for (const path of ['/garbage', '/bad-header', '/bad-status', '/no-head', '/type']) {
    assert.equal((await sendRequest(proxy.port, path)).status, 502, path);
  }
  // Cut after the head: the client gets the head and what came, then the connection closes.
  const cut = await rawConnect(proxy.port);
  cut.write('GET /cut HTTP/1.1\r\nHost: localhost\r\n\r\n');
  const got = (await readToEnd(cut)).toString('latin1');
  assert.match(got, /^HTTP\/1\.1 200/);
  assert.doesNotMatch(got, /\r\n0\r\n\r\n$/, 'no last chunk: the body was cut short');
});

test('fastcgi_intercept_errors: the error_page answers for an upstream 500; off relays the upstream page', async (t) => {
  const fpm = await responder(t, (_req, reply) => {
    reply.stdout('Status: 500 Internal Server Error\r\nContent-Type: text/plain\r\n\r\nfrom php');
    reply.end();
  });
  const proxy = await startTestProxy(conf(`
    server {
      listen 127.0.0.1:0;
      error_page 500 /oops;
      location = /oops { return 200 "custom page\\n"; }
      location /on { fastcgi_pass 127.0.0.1:${fpm.port}; fastcgi_intercept_errors on; }
      location /off { fastcgi_pass 127.0.0.1:${fpm.port}; }
    }
  `), { t });
  const on = await sendRequest(proxy.port, '/on');
  assert.equal(on.status, 500);
  assert.equal(on.body, 'custom page\n');
  const off = await sendRequest(proxy.port, '/off');
  assert.equal(off.status, 500);
  assert.equal(off.body, 'from php');
});

test('fastcgi_pass unix:/path and an upstream of unix servers; $upstream_addr names the socket', async (t) => {
  const dir = tempDir(t);
  const sock = dir.join('fpm.sock');
  const fpm = await responder(t, paramsHandler, sock);
  const log = dir.join('access.log');
  const proxy = await startTestProxy(conf(`
    log_format u '$uri $status $upstream_addr';
    access_log ${log} u;
    upstream php { server unix:${sock}; }
    server {
      listen 127.0.0.1:0;
      location /direct { fastcgi_pass unix:${sock}; fastcgi_param REQUEST_URI $request_uri; }
      location /group { fastcgi_pass php; fastcgi_param REQUEST_URI $request_uri; }
    }
  `), { t });
  assert.equal(paramsOf((await sendRequest(proxy.port, '/direct?a')).body).get('REQUEST_URI'), '/direct?a');
  assert.equal(paramsOf((await sendRequest(proxy.port, '/group')).body).get('REQUEST_URI'), '/group');
  assert.equal(fpm.requests.length, 2);
  const lines = await waitForFileLine(log, '/group');
  assert.ok(lines.includes(`/direct 200 unix:${sock}`), lines.join('\n'));
});

test('fastcgi_next_upstream: a refused server is skipped for the next one of the upstream', async (t) => {
  const fpm = await responder(t);
  const dead = await refusedPort();
  const proxy = await startTestProxy(conf(`
    upstream php { server 127.0.0.1:${dead}; server 127.0.0.1:${fpm.port}; }
    upstream php_off { server 127.0.0.1:${dead} max_fails=0; server 127.0.0.1:${fpm.port}; }
    server {
      listen 127.0.0.1:0;
      location / { fastcgi_pass php; }
      location /off { fastcgi_pass php_off; fastcgi_next_upstream off; }
    }
  `), { t });
  const statuses = [];
  for (let i = 0; i < 2; i++) statuses.push((await sendRequest(proxy.port, '/')).status);
  assert.deepEqual(statuses, [200, 200]);
  const off = [];
  for (let i = 0; i < 4; i++) off.push((await sendRequest(proxy.port, '/off')).status);
  assert.ok(off.includes(502), `fastcgi_next_upstream off: a refused try is the answer (${off.join(',')})`);
});

test('-t: the fastcgi_* directives Sluice lacks are refused, and the checks nginx makes', async () => {
  const problems = await bad(http(
    '  server {',
    '    listen 8080;',
    '    location /a { fastcgi_pass 127.0.0.1:9000; fastcgi_cache zone; }',
    '    location /b { fastcgi_pass 127.0.0.1:9000; fastcgi_split_path_info ^(.+\\.php)$; }',
    '    location /c { fastcgi_pass 127.0.0.1:9000; fastcgi_param A b c; }',
    '    location /d { fastcgi_pass localhost; }',
    '  }',
  ));
  const shown = problems.map(show);
  assert.ok(shown.some((p) => p.startsWith('unknown directive "fastcgi_cache"') || p.includes('"fastcgi_cache"')), shown.join('\n'));
  assert.ok(shown.includes('pattern "^(.+\\.php)$" must have 2 captures in <inline>:6'), shown.join('\n'));
  assert.ok(shown.includes('invalid parameter "c" in <inline>:7'), shown.join('\n'));
  assert.ok(shown.includes('no port in upstream "localhost" in <inline>:8'), shown.join('\n'));
  assert.ok(problems.find((p) => show(p).includes('fastcgi_cache'))?.hint?.includes('Sluice does not implement'));
});

test('the reply to a HEAD request has no body; a 4 MiB body streams through unbuffered', async (t) => {
  const big = Buffer.alloc(4 * 1024 * 1024, 'x');
  const fpm = await responder(t, (_req, reply) => {
    reply.stdout('Content-Type: application/octet-stream\r\n\r\n');
    reply.stdout(big);
    reply.end();
  });
  const proxy = await startTestProxy(conf(`
    server {
      listen 127.0.0.1:0;
      location / { fastcgi_pass 127.0.0.1:${fpm.port}; fastcgi_buffering off; include fastcgi_params; }
    }
  `), { t });
  const head = await sendRequest(proxy.port, '/', ['Host: localhost'], { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(head.bytes.length, 0);
  const res = await sendRequest(proxy.port, '/');
  assert.equal(res.bytes.length, big.length);
  assert.ok(res.bytes.equals(big));
});

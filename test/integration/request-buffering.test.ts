/**
 * Request body buffering (issue 14): proxy_request_buffering (nginx's default on: the body is read
 * whole before an upstream is chosen), client_body_buffer_size and the temp files under
 * client_body_temp_path, client_body_in_file_only, $request_body and $request_body_file, retries
 * of requests with bodies, a client that leaves mid-body, client_max_body_size, proxy_set_body,
 * proxy_method and proxy_ignore_client_abort. Real sockets; the node-client pass reruns it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { EchoHttpReport } from '../../src/echo/echo-http.js';
import { startHttpBackend, startRawBackend } from '../helpers/backends.js';
import { conf } from '../helpers/config-text.js';
import { waitForFileLine } from '../helpers/log-files.js';
import { startTestProxy } from '../helpers/proxy.js';
import { completeResponse, headerValue, rawConnect, rawRequest, readToEnd, sendRequest } from '../helpers/raw-client.js';
import { tempDir } from '../helpers/temp.js';
import { escapeRegExp } from '../helpers/text.js';
import { waitFor } from '../helpers/wait.js';

const report = (body: string): EchoHttpReport => JSON.parse(body) as EchoHttpReport;

/** Every file under `dir`, recursively (paths relative to it). */
function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const name of readdirSync(dir, { recursive: true }) as string[]) {
    if (statSync(join(dir, name)).isFile()) out.push(name);
  }
  return out;
}

function chunked(parts: readonly string[]): string {
  return parts.map((p) => `${Buffer.byteLength(p).toString(16)}\r\n${p}\r\n`).join('') + '0\r\n\r\n';
}

test('a chunked body is read whole and goes upstream with Content-Length; with request buffering off it streams chunked to an HTTP/1.1 upstream', async (t) => {
  const backend = await startHttpBackend();
  t.after(() => backend.close());
  const proxy = await startTestProxy(conf(`
    server {
      listen 127.0.0.1:0;
      location / { proxy_pass http://${backend.addr}; }
      location /stream { proxy_pass http://${backend.addr}; proxy_http_version 1.1; proxy_request_buffering off; }
      location /stream10 { proxy_pass http://${backend.addr}; proxy_request_buffering off; }
    }`), { t });
  const body = chunked(['hello, ', 'buffered ', 'world']);
  const buffered = await rawRequest(proxy.port, `POST /up HTTP/1.1\r\nHost: a\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n${body}`);
  assert.equal(buffered.head?.statusCode, 200);
  const a = report(buffered.body.toString());
  assert.equal(a.body, 'hello, buffered world');
  assert.equal(a.headers['content-length'], '21');
  assert.equal(a.headers['transfer-encoding'], undefined);
  // Streamed: the request goes upstream with the first part of the body, before the rest comes.
  const client = await rawConnect(proxy.port);
  t.after(() => client.destroy());
  client.write('POST /stream HTTP/1.1\r\nHost: a\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n7\r\nhello, \r\n');
  await waitFor(() => backend.requests.length === 2, { what: 'the streamed request upstream' });
  client.write(chunked(['buffered ', 'world']));
  const streamed = completeResponse(await readToEnd(client));
  assert.ok(streamed);
  const b = report(streamed.body.toString());
  assert.equal(b.body, 'hello, buffered world');
  assert.equal(b.headers['content-length'], undefined);
  assert.equal(b.headers['transfer-encoding'], 'chunked');
  // A body that came whole with the head is sent with its length (nginx had it read already).
  const whole = await rawRequest(proxy.port, `POST /stream HTTP/1.1\r\nHost: a\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n${body}`);
  assert.equal(report(whole.body.toString()).headers['content-length'], '21');
  // HTTP/1.0 upstream (the default proxy_http_version): nginx buffers a chunked body anyway.
  const old = await rawRequest(proxy.port, `POST /stream10 HTTP/1.1\r\nHost: a\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n${body}`);
  const c = report(old.body.toString());
  assert.equal(c.body, 'hello, buffered world');
  assert.equal(c.headers['content-length'], '21');
});

test('the upstream is chosen only once the whole body is in: half a body reaches no upstream', async (t) => {
  const backend = await startHttpBackend();
  t.after(() => backend.close());
  const proxy = await startTestProxy(conf(`server { listen 127.0.0.1:0; location / { proxy_pass http://${backend.addr}; } }`), { t });
  const slow = await rawConnect(proxy.port);
  t.after(() => slow.destroy());
  slow.write('PUT /slow HTTP/1.1\r\nHost: a\r\nConnection: close\r\nContent-Length: 10\r\n\r\nhello');
  // A whole request on another connection goes through meanwhile; the half body still waits.
  assert.equal((await sendRequest(proxy.port, '/other')).status, 200);
  assert.deepEqual(backend.requests.map((r) => r.url), ['/other']);
  slow.write('world');
  await waitFor(() => backend.requests.length === 2, { what: 'the slow request upstream' });
  assert.equal(backend.requests[1]!.url, '/slow');
});

test('past client_body_buffer_size the body goes to a temp file under client_body_temp_path (levels), removed after the request', async (t) => {
  const dir = tempDir(t);
  const temp = dir.join('body');
  const seen: { file: string; existed: boolean; contents: string; body: string }[] = [];
  const backend = await startHttpBackend((req, res) => {
    const file = String(req.headers['x-body-file'] ?? '');
    const existed = file !== '' && existsSync(file);
    const contents = existed ? readFileSync(file, 'utf8') : '';
    let body = '';
    req.on('data', (c: Buffer) => void (body += c.toString()));
    req.on('end', () => {
      seen.push({ file, existed, contents, body });
      res.end(`${req.headers['x-body'] ?? ''}|${body.length}`);
    });
  });
  t.after(() => backend.close());
  const proxy = await startTestProxy(conf(`
    client_body_buffer_size 1k;
    client_body_temp_path ${temp} 1 2;
    proxy_set_header X-Body-File $request_body_file;
    proxy_set_header X-Body $request_body;
    server {
      listen 127.0.0.1:0;
      location / { proxy_pass http://${backend.addr}; }
      location /clean { proxy_pass http://${backend.addr}; client_body_in_file_only clean; }
      location /keep { proxy_pass http://${backend.addr}; client_body_in_file_only on; }
    }`), { t });
  const big = 'x'.repeat(5000);

  // Small: in memory, $request_body has it, no file.
  const small = await sendRequest(proxy.port, '/small', ['Host: a'], { method: 'POST', body: 'tiny' });
  assert.equal(small.body, 'tiny|4');
  assert.equal(seen[0]!.file, '');

  // Past the buffer: a file (unlinked at once, as nginx does), $request_body empty.
  const large = await sendRequest(proxy.port, '/large', ['Host: a'], { method: 'POST', body: big });
  assert.equal(large.body, '|5000');
  assert.match(seen[1]!.file, new RegExp(`^${escapeRegExp(temp)}/(\\d)/(\\d\\d)/\\d{7}\\2\\1$`));
  assert.equal(seen[1]!.existed, false);
  assert.equal(seen[1]!.body, big);

  // client_body_in_file_only clean: always a file, there during the request, removed after it.
  const clean = await sendRequest(proxy.port, '/clean', ['Host: a'], { method: 'POST', body: 'in a file' });
  assert.equal(clean.body, '|9');
  assert.equal(seen[2]!.existed, true);
  assert.equal(seen[2]!.contents, 'in a file');
  await waitFor(() => !existsSync(seen[2]!.file), { what: 'the clean file removed' });

  // on: the file stays.
  await sendRequest(proxy.port, '/keep', ['Host: a'], { method: 'PUT', body: big });
  assert.equal(seen[3]!.existed, true);
  await waitFor(() => filesUnder(temp).length === 1, { what: 'the kept file' });
  assert.equal(readFileSync(seen[3]!.file, 'utf8'), big);
});

test('$request_body in the access log and in add_header; with request buffering off, while the body fits client_body_buffer_size', async (t) => {
  const dir = tempDir(t);
  const log = dir.join('access.log');
  const backend = await startHttpBackend();
  t.after(() => backend.close());
  const proxy = await startTestProxy(conf(`
    log_format body '$request_method $uri $request_body';
    server {
      listen 127.0.0.1:0;
      access_log ${log} body;
      add_header X-Body $request_body;
      location / { proxy_pass http://${backend.addr}; }
      location /off { proxy_pass http://${backend.addr}; proxy_request_buffering off; client_body_buffer_size 2k; }
    }`), { t });
  const on = await sendRequest(proxy.port, '/', ['Host: a'], { method: 'POST', body: 'a=1&b=2' });
  assert.equal(headerValue(on.head, 'x-body'), 'a=1&b=2');
  await waitForFileLine(log, 'POST / a=1&b=2');
  const body = '0123456789'.repeat(128);
  const off = await sendRequest(proxy.port, '/off', ['Host: a'], { method: 'POST', body });
  assert.equal(headerValue(off.head, 'x-body'), body);
  const over = await sendRequest(proxy.port, '/off', ['Host: a'], { method: 'POST', body: body.repeat(2) });
  assert.equal(over.status, 200);
  assert.equal(headerValue(over.head, 'x-body'), undefined);
});

test('a buffered body lets proxy_next_upstream send a request with a body again; non-idempotent methods need non_idempotent', async (t) => {
  // The first server reads the whole request, then drops the connection without an answer.
  const dropping = await startRawBackend(async (conn) => {
    await conn.readUntil((b) => b.includes('the body'));
    conn.socket.destroy();
  });
  t.after(() => dropping.close());
  const good = await startHttpBackend();
  t.after(() => good.close());
  const proxy = await startTestProxy(conf(`
    upstream pair { server ${dropping.addr} max_fails=0; server ${good.addr}; }
    server {
      listen 127.0.0.1:0;
      location / { proxy_pass http://pair; }
      location /any { proxy_pass http://pair; proxy_next_upstream error non_idempotent; }
      location /stream { proxy_pass http://pair; proxy_request_buffering off; }
    }`), { t });
  // Round robin alternates: ask until the dropping server was the one tried first.
  const put = async (path: string, method: string): Promise<number> => {
    for (;;) {
      const before = dropping.connections.length;
      const r = await sendRequest(proxy.port, path, ['Host: a'], { method, body: 'the body' });
      if (dropping.connections.length > before) return r.status;
    }
  };
  const goodBefore = good.requests.length;
  assert.equal(await put('/', 'PUT'), 200);
  const retried = good.requests.slice(goodBefore).find((r) => r.method === 'PUT');
  assert.ok(retried, 'the PUT went on to the second server');
  assert.equal(retried.body, 'the body');
  assert.equal(retried.headers['content-length'], '8');
  assert.equal(await put('/', 'POST'), 502, 'POST is not repeated by default');
  assert.equal(await put('/any', 'POST'), 200, 'non_idempotent repeats it');
  assert.equal(await put('/stream', 'PUT'), 502, 'a streamed body that was sent is never repeated');
});

test('a client that leaves mid-body sends nothing upstream (400 in the log, as nginx); a chunked body over client_max_body_size gets 413', async (t) => {
  const dir = tempDir(t);
  const log = dir.join('access.log');
  const backend = await startHttpBackend();
  t.after(() => backend.close());
  const proxy = await startTestProxy(conf(`
    log_format s '$request_uri $status';
    client_max_body_size 1k;
    server { listen 127.0.0.1:0; access_log ${log} s; location / { proxy_pass http://${backend.addr}; } }`, 'error_log stderr info;'), { t });
  const leaving = await rawConnect(proxy.port);
  leaving.write('POST /left HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nonly part');
  leaving.destroy();
  await waitForFileLine(log, '/left 400');
  await proxy.waitForErrorLine(/client prematurely closed connection, client: 127\.0\.0\.1, server: , request: "POST \/left HTTP\/1\.1"/);
  const big = chunked(['y'.repeat(600), 'y'.repeat(600)]);
  const tooLarge = await rawRequest(proxy.port, `POST /big HTTP/1.1\r\nHost: a\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n${big}`);
  assert.equal(tooLarge.head?.statusCode, 413);
  await waitForFileLine(log, '/big 413');
  assert.deepEqual(backend.requests, [], 'nothing reached the upstream');
});

test('proxy_set_body (with variables, Content-Length set) and proxy_method', async (t) => {
  const backend = await startHttpBackend();
  t.after(() => backend.close());
  const proxy = await startTestProxy(conf(`
    server {
      listen 127.0.0.1:0;
      location /set { proxy_pass http://${backend.addr}; proxy_method POST; proxy_set_body "name=$arg_name&uri=$uri"; }
      location /method { proxy_pass http://${backend.addr}; proxy_method $http_x_method; }
      location /empty { proxy_pass http://${backend.addr}; proxy_set_body ""; }
    }`), { t });
  const set = report((await sendRequest(proxy.port, '/set?name=sluice')).body);
  assert.equal(set.method, 'POST');
  assert.equal(set.body, 'name=sluice&uri=/set');
  assert.equal(set.headers['content-length'], String('name=sluice&uri=/set'.length));
  // Instead of the client's body, too.
  const replaced = report((await sendRequest(proxy.port, '/set?name=x', ['Host: a'], { method: 'PUT', body: 'the client body' })).body);
  assert.equal(replaced.body, 'name=x&uri=/set');
  const method = report((await sendRequest(proxy.port, '/method', ['Host: a', 'X-Method: PATCH'], { method: 'POST', body: 'b' })).body);
  assert.equal(method.method, 'PATCH');
  assert.equal(method.body, 'b');
  const empty = report((await sendRequest(proxy.port, '/empty', ['Host: a'], { method: 'POST', body: 'dropped' })).body);
  assert.equal(empty.body, '');
  assert.equal(empty.headers['content-length'], '0');
});

test('proxy_ignore_client_abort: the upstream request goes on when the client leaves; off (the default) cancels it', async (t) => {
  const dir = tempDir(t);
  const log = dir.join('access.log');
  const outcomes: string[] = [];
  const backend = await startRawBackend(async (conn) => {
    const head = (await conn.readUntil('\r\n\r\n')).toString('latin1');
    const path = /^GET (\S+)/.exec(head)![1]!;
    await waitForFileLine(log, `${path} 499`);
    // The client is gone: a 4 MiB answer either all goes out (the proxy reads it) or fails.
    const body = Buffer.alloc(4 * 1024 * 1024, 0x61);
    const ok = await new Promise<boolean>((resolve) => {
      conn.socket.once('error', () => resolve(false));
      conn.socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`);
      conn.socket.write(body, (err) => resolve(err == null));
    });
    outcomes.push(`${path} ${ok ? 'read' : 'cancelled'}`);
    conn.socket.destroy();
  });
  t.after(() => backend.close());
  const proxy = await startTestProxy(conf(`
    log_format s '$request_uri $status';
    server {
      listen 127.0.0.1:0;
      access_log ${log} s;
      proxy_buffering off;
      location /ignore { proxy_pass http://${backend.addr}; proxy_ignore_client_abort on; }
      location /cancel { proxy_pass http://${backend.addr}; }
    }`), { t });
  for (const path of ['/ignore', '/cancel']) {
    const c = await rawConnect(proxy.port);
    c.write(`GET ${path} HTTP/1.1\r\nHost: a\r\n\r\n`);
    await waitFor(() => backend.connections.length === (path === '/ignore' ? 1 : 2), { what: `${path} upstream` });
    c.destroy();
    await waitFor(() => outcomes.length === (path === '/ignore' ? 1 : 2), { what: `${path} answered`, timeoutMs: 10_000 });
  }
  assert.deepEqual(outcomes, ['/ignore read', '/cancel cancelled']);
});

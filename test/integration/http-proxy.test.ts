/**
 * HTTP proxying end to end: methods and bodies streamed both ways, HEAD/204/304, keep-alive to
 * clients and upstream keepalive, nginx's request header defaults and proxy_set_header
 * inheritance, exact request lines and URI replacement, `return`, `add_header`, `proxy_redirect`,
 * and the local answers (404, 400, 502) nginx would give.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Agent, request, type IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import { test } from 'node:test';
import type { EchoHttpReport } from '../../src/echo/echo-http.js';
import { startHttpBackend, startRawBackend } from '../helpers/backends.js';
import { recorderFor } from '../helpers/byte-recorder.js';
import { conf } from '../helpers/config-text.js';
import { errorPage } from '../helpers/pages.js';
import { startTestProxy } from '../helpers/proxy.js';
import {
  completeResponse, headerValue, headerValues, rawConnect, rawRequest, sendRequest, type ResponseHead,
} from '../helpers/raw-client.js';
import { withTimeout } from '../helpers/wait.js';

/** nginx's error page as Sluice signs it. */
interface Answer {
  status: number;
  head: ResponseHead;
  body: Buffer;
  text: string;
  closed: boolean;
}

/** One request on its own connection with exactly these header lines (`Connection: close` added). */
async function send(port: number, method: string, target: string, headers: [string, string][] = [], body = ''): Promise<Answer> {
  const lines = ['Host: localhost', ...headers.map(([name, value]) => `${name}: ${value}`)];
  const res = await sendRequest(port, target, lines, body === '' ? { method } : { method, body });
  return { ...res, body: res.bytes, text: res.body };
}

const echoOf = (a: Answer): EchoHttpReport => JSON.parse(a.text) as EchoHttpReport;

/** A connection that reads responses one by one (pipelined or sequential). */
class ResponseReader {
  readonly socket: Socket;
  #offset = 0;

  constructor(socket: Socket) {
    this.socket = socket;
  }

  async next(method = 'GET'): Promise<{ head: ResponseHead; body: Buffer }> {
    const recorder = recorderFor(this.socket);
    const parse = (): ReturnType<typeof completeResponse> => completeResponse(recorder.all.subarray(this.#offset), method);
    const deadline = Date.now() + 5000;
    let r = parse();
    while (r === null) {
      if (recorder.closed || recorder.ended) throw new Error(`connection closed before a complete response; unread: ${JSON.stringify(recorder.all.subarray(this.#offset).toString('latin1'))}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for a response; unread: ${JSON.stringify(recorder.all.subarray(this.#offset).toString('latin1'))}`);
      await withTimeout(recorder.changed(), left, 'bytes').catch(() => undefined);
      r = parse();
    }
    this.#offset += r.length;
    return { head: r.head, body: Buffer.from(r.body) };
  }

  /** Bytes received after the last complete response. */
  rest(): Buffer {
    return recorderFor(this.socket).all.subarray(this.#offset);
  }
}

interface HttpAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** A request through Node's client; a body given as several chunks goes out chunked. */
function nodeRequest(
  port: number,
  options: { method?: string; path?: string; headers?: Record<string, string>; body?: Buffer | Buffer[]; agent?: Agent },
): Promise<HttpAnswer> {
  const done = new Promise<HttpAnswer>((resolve, reject) => {
    const req = request({
      host: '127.0.0.1', port, method: options.method ?? 'GET', path: options.path ?? '/', headers: options.headers ?? {},
      agent: options.agent ?? false,
    }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    const body = options.body;
    if (Array.isArray(body)) {
      void (async () => {
        for (const chunk of body) {
          if (!req.write(chunk)) await new Promise((r) => req.once('drain', r));
        }
        req.end();
      })();
    } else {
      req.end(body);
    }
  });
  return withTimeout(done, 20_000, `${options.method ?? 'GET'} ${options.path ?? '/'}`);
}

const sha256 = (b: Buffer | Buffer[]): string => {
  const h = createHash('sha256');
  for (const part of Array.isArray(b) ? b : [b]) h.update(part);
  return h.digest('hex');
};

function slices(b: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < b.length; i += size) out.push(b.subarray(i, i + size));
  return out;
}

test('GET, POST and PUT: method, target and 5 MB bodies (Content-Length and chunked) stream both ways intact', async (t) => {
  const FIVE_MB = 5 * 1024 * 1024;
  const up = randomBytes(FIVE_MB);
  const down = randomBytes(FIVE_MB);
  const backend = await startHttpBackend((req, res) => {
    const hash = createHash('sha256');
    let bytes = 0;
    req.on('data', (c: Buffer) => {
      hash.update(c);
      bytes += c.length;
    });
    req.on('end', () => {
      const replyChunked = req.headers['x-reply'] === 'chunked';
      const replyBytes = req.headers['x-reply'] === undefined ? 0 : FIVE_MB;
      const headers: Record<string, string> = {
        'X-Method': req.method ?? '', 'X-Url': req.url ?? '', 'X-Body-Bytes': String(bytes), 'X-Body-Sha256': hash.digest('hex'),
      };
      if (!replyChunked) headers['Content-Length'] = String(replyBytes);
      res.writeHead(200, headers);
      const parts = replyBytes === 0 ? [] : slices(down, 64 * 1024);
      void (async () => {
        for (const p of parts) if (!res.write(p)) await new Promise((r) => res.once('drain', r));
        res.end();
      })();
    });
  });
  t.after(() => backend.close());
  const proxy = await startTestProxy(conf(`
    client_max_body_size 10m;
    upstream b { server ${backend.addr}; }
    server { listen 127.0.0.1:0; location / { proxy_pass http://b; } }`), { t });

  const get = await nodeRequest(proxy.port, { path: '/get?x=1' });
  assert.equal(get.status, 200);
  assert.equal(get.headers['x-method'], 'GET');
  assert.equal(get.headers['x-url'], '/get?x=1');
  assert.equal(get.headers['x-body-bytes'], '0');
  assert.equal(get.body.length, 0);

  // POST with Content-Length up, Content-Length down.
  const post = await nodeRequest(proxy.port, {
    method: 'POST', path: '/post', headers: { 'Content-Length': String(FIVE_MB), 'X-Reply': 'length' }, body: up,
  });
  assert.equal(post.status, 200);
  assert.equal(post.headers['x-method'], 'POST');
  assert.equal(post.headers['x-body-bytes'], String(FIVE_MB));
  assert.equal(post.headers['x-body-sha256'], sha256(up));
  assert.equal(post.headers['content-length'], String(FIVE_MB));
  assert.equal(post.body.length, FIVE_MB);
  assert.equal(sha256(post.body), sha256(down));

  // PUT with a chunked body up, chunked down.
  const put = await nodeRequest(proxy.port, {
    method: 'PUT', path: '/put', headers: { 'X-Reply': 'chunked' }, body: slices(up, 100_000),
  });
  assert.equal(put.status, 200);
  assert.equal(put.headers['x-method'], 'PUT');
  assert.equal(put.headers['x-body-bytes'], String(FIVE_MB));
  assert.equal(put.headers['x-body-sha256'], sha256(up));
  assert.equal(put.headers['transfer-encoding'], 'chunked');
  assert.equal(put.headers['content-length'], undefined);
  assert.equal(sha256(put.body), sha256(down));

  // The framing the backend saw: Content-Length passed as is; a chunked body is read whole (a temp
  // file past client_body_buffer_size) and sent with its length, as nginx does by default.
  const seen = backend.requests.map((r) => [r.method, r.headers['content-length'], r.headers['transfer-encoding']]);
  assert.deepEqual(seen, [
    ['GET', undefined, undefined],
    ['POST', String(FIVE_MB), undefined],
    ['PUT', String(FIVE_MB), undefined],
  ]);
});

test('HEAD gets the head only (Content-Length kept); 204 and 304 carry no body; the connection stays usable', async (t) => {
  const backend = await startHttpBackend((req, res) => {
    if (req.url === '/204') {
      res.writeHead(204, { 'X-Kind': 'no-content' });
      res.end();
    } else if (req.url === '/304') {
      res.writeHead(304, { ETag: '"v1"' });
      res.end();
    } else {
      res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': '11' });
      res.end(req.method === 'HEAD' ? undefined : 'hello world');
    }
  });
  t.after(() => backend.close());
  const proxy = await startTestProxy(conf(`
    server { listen 127.0.0.1:0; location / { proxy_pass http://${backend.addr}; } }`), { t });
  const socket = await rawConnect(proxy.port);
  t.after(() => socket.destroy());
  const reader = new ResponseReader(socket);

  socket.write('HEAD /file HTTP/1.1\r\nHost: localhost\r\n\r\n');
  const head = await reader.next('HEAD');
  assert.equal(head.head.statusCode, 200);
  assert.equal(headerValue(head.head, 'content-length'), '11');
  assert.equal(headerValue(head.head, 'transfer-encoding'), undefined);

  socket.write('GET /204 HTTP/1.1\r\nHost: localhost\r\n\r\n');
  const noContent = await reader.next();
  assert.equal(noContent.head.statusCode, 204);
  assert.equal(headerValue(noContent.head, 'x-kind'), 'no-content');
  assert.equal(headerValue(noContent.head, 'content-length'), undefined);
  assert.equal(headerValue(noContent.head, 'transfer-encoding'), undefined);

  socket.write('GET /304 HTTP/1.1\r\nHost: localhost\r\nIf-None-Match: "v1"\r\n\r\n');
  const notModified = await reader.next();
  assert.equal(notModified.head.statusCode, 304);
  assert.equal(headerValue(notModified.head, 'etag'), '"v1"');
  assert.equal(headerValue(notModified.head, 'transfer-encoding'), undefined);

  // Had any body bytes followed the HEAD, 204 or 304, this response would not parse.
  socket.write('GET /file HTTP/1.1\r\nHost: localhost\r\n\r\n');
  const file = await reader.next();
  assert.equal(file.head.statusCode, 200);
  assert.equal(file.body.toString(), 'hello world');
  assert.equal(reader.rest().length, 0);
  assert.deepEqual(backend.requests.map((r) => `${r.method} ${r.url}`), ['HEAD /file', 'GET /204', 'GET /304', 'GET /file']);
});

test('keep-alive to clients: several requests on one connection, sequential and pipelined, answered in order', async (t) => {
  const backend = await startHttpBackend();
  t.after(() => backend.close());
  const proxy = await startTestProxy(conf(`
    server { listen 127.0.0.1:0; location / { proxy_pass http://${backend.addr}; } }`), { t });
  const socket = await rawConnect(proxy.port);
  t.after(() => socket.destroy());
  const reader = new ResponseReader(socket);
  for (const n of [1, 2, 3]) {
    socket.write(`GET /seq/${n} HTTP/1.1\r\nHost: localhost\r\n\r\n`);
    const r = await reader.next();
    assert.equal(r.head.statusCode, 200);
    assert.equal(headerValue(r.head, 'connection'), 'keep-alive');
    assert.equal((JSON.parse(r.body.toString()) as EchoHttpReport).url, `/seq/${n}`);
  }
  socket.write('GET /pipe/1 HTTP/1.1\r\nHost: localhost\r\n\r\nGET /pipe/2 HTTP/1.1\r\nHost: localhost\r\n\r\n');
  const first = await reader.next();
  const second = await reader.next();
  assert.equal((JSON.parse(first.body.toString()) as EchoHttpReport).url, '/pipe/1');
  assert.equal((JSON.parse(second.body.toString()) as EchoHttpReport).url, '/pipe/2');
  assert.equal(recorderFor(socket).closed, false);
  assert.equal(backend.requests.length, 5);
});

test('upstream keepalive: reused with proxy_http_version 1.1 and Connection ""; never with the nginx default (Connection: close)', async (t) => {
  const backend = await startHttpBackend();
  t.after(() => backend.close());
  const proxy = await startTestProxy(conf(`
    upstream pooled { server ${backend.addr}; keepalive 4; }
    upstream plain { server ${backend.addr}; }
    server {
      listen 127.0.0.1:0;
      location /reuse/ {
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_pass http://pooled;
      }
      location /default/ { proxy_pass http://pooled; }
      location /plain/ { proxy_pass http://plain; }
    }`), { t });

  const socketsFor = async (prefix: string): Promise<{ ports: Set<number | null>; connection: (string | string[] | undefined)[] }> => {
    const before = backend.requests.length;
    for (let i = 0; i < 5; i++) {
      const r = await send(proxy.port, 'GET', `${prefix}${i}`);
      assert.equal(r.status, 200);
    }
    const seen = backend.requests.slice(before);
    assert.equal(seen.length, 5);
    return { ports: new Set(seen.map((r) => r.remotePort)), connection: seen.map((r) => r.headers['connection']) };
  };

  const reused = await socketsFor('/reuse/');
  assert.equal(reused.ports.size, 1, 'five sequential requests share one upstream connection');
  assert.ok(!reused.connection.includes('close'));

  const byDefault = await socketsFor('/default/');
  assert.equal(byDefault.ports.size, 5, 'the default Connection: close opens one connection per request');
  assert.deepEqual(byDefault.connection, ['close', 'close', 'close', 'close', 'close']);

  const plain = await socketsFor('/plain/');
  assert.equal(plain.ports.size, 5);
  assert.deepEqual(plain.connection, ['close', 'close', 'close', 'close', 'close']);
});

test('keepalive_requests: a cached upstream connection serves that many requests, then closes', async (t) => {
  const backend = await startHttpBackend();
  t.after(() => backend.close());
  const proxy = await startTestProxy(conf(`
    upstream pooled { server ${backend.addr}; keepalive 4; keepalive_requests 3; }
    server {
      listen 127.0.0.1:0;
      location / {
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_pass http://pooled;
      }
    }`), { t });
  for (let i = 0; i < 9; i++) assert.equal((await send(proxy.port, 'GET', `/k${i}`)).status, 200);
  const ports = backend.requests.map((r) => r.remotePort);
  assert.equal(ports.length, 9);
  assert.equal(new Set(ports).size, 3, 'nine sequential requests over connections of three requests each');
  assert.deepEqual([ports[0], ports[1]], [ports[2], ports[2]]);
  assert.notEqual(ports[3], ports[2]);
});

test('request headers: Host is $proxy_host, client headers pass in order, hop-by-hop ones are stripped, "" removes one', async (t) => {
  const backend = await startHttpBackend();
  t.after(() => backend.close());
  const proxy = await startTestProxy(conf(`
    upstream named_backend { server ${backend.addr}; }
    server {
      listen 127.0.0.1:0;
      location / { proxy_pass http://named_backend; }
      location /direct/ { proxy_pass http://${backend.addr}; }
      location /host/ {
        proxy_set_header Host $host;
        proxy_pass http://named_backend;
      }
      location /rules/ {
        proxy_set_header Accept-Language "";
        proxy_set_header X-Added "v-$request_method";
        proxy_pass http://named_backend;
      }
    }`), { t });
  const clientHeaders: [string, string][] = [
    ['User-Agent', 'tester/1'],
    ['X-Custom', 'one'],
    ['Keep-Alive', 'timeout=5'],
    ['X-Custom', 'two'],
    ['TE', 'trailers'],
    ['Trailer', 'X-Checksum'],
    ['Proxy-Authorization', 'Basic eDp5'],
    ['Proxy-Connection', 'keep-alive'],
    ['X-Hop', 'listed in Connection'],
    ['Accept-Language', 'en'],
    ['Cookie', 'a=1; b=2'],
  ];
  const ask = async (path: string): Promise<string[]> => {
    const r = await rawRequest(proxy.port,
      `GET ${path} HTTP/1.1\r\nHost: Example.COM:8080\r\n${clientHeaders.map(([n, v]) => `${n}: ${v}\r\n`).join('')}`
      + 'Connection: keep-alive, X-Hop\r\n\r\n');
    assert.equal(r.head?.statusCode, 200, path);
    return (JSON.parse(r.body.toString()) as EchoHttpReport).rawHeaders;
  };
  const passed = ['User-Agent', 'tester/1', 'X-Custom', 'one', 'X-Custom', 'two', 'Accept-Language', 'en', 'Cookie', 'a=1; b=2'];

  assert.deepEqual(await ask('/'), ['Host', 'named_backend', 'Connection', 'close', ...passed]);
  assert.deepEqual(await ask('/direct/x'), ['Host', backend.addr, 'Connection', 'close', ...passed]);
  assert.deepEqual(await ask('/host/x'), ['Host', 'example.com', 'Connection', 'close', ...passed]);
  assert.deepEqual(await ask('/rules/x'), [
    'Host', 'named_backend', 'X-Added', 'v-GET', 'Connection', 'close',
    'User-Agent', 'tester/1', 'X-Custom', 'one', 'X-Custom', 'two', 'Cookie', 'a=1; b=2',
  ]);
});

test('proxy_set_header inheritance: http > server > location, and a level with its own list inherits nothing', async (t) => {
  const backend = await startHttpBackend();
  t.after(() => backend.close());
  const proxy = await startTestProxy(conf(`
    proxy_set_header X-Level http;
    proxy_set_header X-Http yes;
    upstream u { server ${backend.addr}; }
    server {
      listen 127.0.0.1:0;
      server_name inherits.test;
      location / { proxy_pass http://u; }
    }
    server {
      listen 127.0.0.1:0;
      server_name own.test;
      proxy_set_header X-Level server;
      proxy_set_header X-Server yes;
      location / { proxy_pass http://u; }
      location /own/ {
        proxy_set_header X-Location yes;
        proxy_pass http://u;
      }
    }`), { t });
  const ask = async (host: string, path: string): Promise<Record<string, string | string[]>> => {
    const res = await rawRequest(proxy.port, `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nX-Level: client\r\n\r\n`);
    assert.equal(res.head?.statusCode, 200);
    const h = (JSON.parse(res.body.toString()) as EchoHttpReport).headers;
    return { level: h['x-level'] ?? '-', http: h['x-http'] ?? '-', server: h['x-server'] ?? '-', location: h['x-location'] ?? '-' };
  };
  assert.deepEqual(await ask('inherits.test', '/'), { level: 'http', http: 'yes', server: '-', location: '-' });
  assert.deepEqual(await ask('own.test', '/'), { level: 'server', http: '-', server: 'yes', location: '-' });
  // Not set at this level: the client's own X-Level passes.
  assert.deepEqual(await ask('own.test', '/own/x'), { level: 'client', http: '-', server: '-', location: 'yes' });
});

test('proxy_pass without a URI sends the request line byte for byte; the whole head is exact', async (t) => {
  const backend = await startRawBackend(async (conn) => {
    await conn.readUntil('\r\n\r\n');
    conn.socket.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
  });
  t.after(() => backend.close());
  const proxy = await startTestProxy(conf(`
    upstream b { server ${backend.addr}; }
    server { listen 127.0.0.1:0; location / { proxy_pass http://b; } }`), { t });
  const target = '/a%2Fb/%7Euser/./c;p=1/%D0%B6?q=a%20b&r=%2F+x&&empty=';
  const res = await rawRequest(proxy.port, `GET ${target} HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n\r\n`);
  assert.equal(res.head?.statusCode, 200);
  assert.equal(res.body.toString(), 'ok');
  const conn = backend.connections[0];
  assert.ok(conn);
  assert.equal(conn.received.toString('latin1'), `GET ${target} HTTP/1.1\r\nHost: b\r\nConnection: close\r\nAccept: */*\r\n\r\n`);
});

test('proxy_pass with a URI replaces the matched location prefix of the normalised URI (nginx rule), the query kept', async (t) => {
  const backend = await startHttpBackend();
  t.after(() => backend.close());
  const proxy = await startTestProxy(conf(`
    upstream b { server ${backend.addr}; }
    server {
      listen 127.0.0.1:0;
      location /api/ { proxy_pass http://b/v2/; }
      location = /exact { proxy_pass http://b/elsewhere; }
      location /strip { proxy_pass http://b/; }
    }`), { t });
  const cases: [string, string][] = [
    ['/api/x?q', '/v2/x?q'],
    ['/api/x?q=1&r=%2F', '/v2/x?q=1&r=%2F'],
    ['/api/', '/v2/'],
    ['/api/a%20b/c', '/v2/a%20b/c'],
    // The normalised URI goes, escaped as nginx escapes it (checked against nginx 1.22).
    ['/api/x/../y', '/v2/y'],
    ['/api/./q', '/v2/q'],
    ['/api/%7Euser', '/v2/~user'],
    ['/api/x//y', '/v2/x/y'],
    ['/api/%2Fz', '/v2/z'],
    ['/api/%D0%B6', '/v2/%D0%B6'],
    ['/exact?k=v', '/elsewhere?k=v'],
    ['/stripped/y', '/ped/y'],
  ];
  for (const [from, to] of cases) {
    const r = await send(proxy.port, 'GET', from);
    assert.equal(r.status, 200, from);
    assert.equal(echoOf(r).url, to, from);
  }
});

test('return: 200 with text, 301 with an absolute Location, 404 with the error page, 444 closes without a response', async (t) => {
  const proxy = await startTestProxy(conf(`
    log_format st '$request_uri $status';
    server {
      listen 127.0.0.1:0;
      access_log /dev/stderr st;
      location /text { return 200 "hello $request_method"; }
      location /moved { return 301 /new/place?x=1; }
      location /away { return 302 http://other.example/; }
      location /gone { return 404; }
      location /drop { return 444; }
      location /broken { return 500; }
      location /unimplemented { return 501; }
    }`), { t });

  const text = await send(proxy.port, 'GET', '/text');
  assert.equal(text.status, 200);
  assert.equal(text.text, 'hello GET');
  assert.equal(headerValue(text.head, 'content-type'), 'text/plain');
  assert.equal(headerValue(text.head, 'content-length'), '9');
  assert.equal(headerValue(text.head, 'server'), 'sluice');

  const moved = await send(proxy.port, 'GET', '/moved');
  assert.equal(moved.status, 301);
  assert.equal(moved.head.reason, 'Moved Permanently');
  assert.equal(headerValue(moved.head, 'location'), `http://localhost:${proxy.port}/new/place?x=1`);
  assert.equal(moved.text, errorPage('301 Moved Permanently'));

  const away = await send(proxy.port, 'GET', '/away');
  assert.equal(away.status, 302);
  assert.equal(headerValue(away.head, 'location'), 'http://other.example/');

  const gone = await send(proxy.port, 'GET', '/gone');
  assert.equal(gone.status, 404);
  assert.equal(headerValue(gone.head, 'content-type'), 'text/html');
  assert.equal(gone.text, errorPage('404 Not Found'));

  const drop = await rawRequest(proxy.port, 'GET /drop HTTP/1.1\r\nHost: localhost\r\n\r\n', { until: 'close' });
  assert.equal(drop.closed, true);
  assert.equal(drop.data.length, 0);
  // nginx logs the 444 it "sent".
  await proxy.waitForErrorLine('/drop 444');

  // nginx ends keep-alive after a 500 or 501 it answers itself (ngx_http_special_response_handler).
  for (const [path, status] of [['/broken', '500 Internal Server Error'], ['/unimplemented', '501 Not Implemented']] as const) {
    const r = await rawRequest(proxy.port, `GET ${path} HTTP/1.1\r\nHost: localhost\r\n\r\n`, { until: 'close' });
    assert.equal(r.head?.statusLine, `HTTP/1.1 ${status}`);
    assert.equal(headerValue(r.head, 'connection'), 'close');
    assert.equal(r.body.toString(), errorPage(status));
    assert.equal(r.closed, true);
  }
  await proxy.waitForErrorLine('/unimplemented 501');
  const logged = proxy.errorLines.filter((l) => /^\/\S+ \d{3}$/.test(l)).sort();
  assert.deepEqual(logged, ['/away 302', '/broken 500', '/drop 444', '/gone 404', '/moved 301', '/text 200', '/unimplemented 501']);
});

test('add_header: on success codes only unless "always"; a level with its own add_header inherits none', async (t) => {
  const backend = await startHttpBackend((req, res) => {
    res.writeHead(req.url?.endsWith('/missing') === true ? 404 : 200, { 'Content-Length': '2' });
    res.end('ok');
  });
  t.after(() => backend.close());
  const proxy = await startTestProxy(conf(`
    server {
      listen 127.0.0.1:0;
      add_header X-Server s;
      location / { proxy_pass http://${backend.addr}; }
      location /own/ {
        add_header X-Normal n;
        add_header X-Always a always;
        proxy_pass http://${backend.addr};
      }
      location /gone { return 404; }
      location /gone-always {
        add_header X-Always a always;
        add_header X-Normal n;
        return 404;
      }
    }`), { t });
  const added = async (path: string): Promise<[number, Record<string, string | undefined>]> => {
    const r = await send(proxy.port, 'GET', path);
    return [r.status, {
      server: headerValue(r.head, 'x-server'), normal: headerValue(r.head, 'x-normal'), always: headerValue(r.head, 'x-always'),
    }];
  };
  assert.deepEqual(await added('/'), [200, { server: 's', normal: undefined, always: undefined }]);
  assert.deepEqual(await added('/missing'), [404, { server: undefined, normal: undefined, always: undefined }]);
  assert.deepEqual(await added('/own/x'), [200, { server: undefined, normal: 'n', always: 'a' }]);
  assert.deepEqual(await added('/own/missing'), [404, { server: undefined, normal: undefined, always: 'a' }]);
  assert.deepEqual(await added('/gone'), [404, { server: undefined, normal: undefined, always: undefined }]);
  assert.deepEqual(await added('/gone-always'), [404, { server: undefined, normal: undefined, always: 'a' }]);
});

test('proxy_redirect: default rewrites the proxy_pass URL to the location, off leaves it, FROM TO replaces a prefix', async (t) => {
  const backend = await startHttpBackend((req, res) => {
    res.writeHead(302, { Location: req.headers['x-location'] ?? '/', Refresh: `0; url=${String(req.headers['x-location'])}`, 'Content-Length': '0' });
    res.end();
  });
  t.after(() => backend.close());
  const proxy = await startTestProxy(conf(`
    upstream b { server ${backend.addr}; }
    server {
      listen 127.0.0.1:0;
      location / { proxy_pass http://b; }
      location /api/ { proxy_pass http://b/v2/; }
      location /off/ {
        proxy_redirect off;
        proxy_pass http://b;
      }
      location /custom/ {
        proxy_redirect http://internal.example/ https://public.example/app/;
        proxy_pass http://b;
      }
      location /re/ {
        proxy_redirect ~^http://internal\\.example/(\\w+) /new/$1;
        proxy_pass http://b;
      }
    }`), { t });
  const location = async (path: string, sent: string): Promise<string | undefined> => {
    const r = await send(proxy.port, 'GET', path, [['X-Location', sent]]);
    assert.equal(r.status, 302);
    return headerValue(r.head, 'location');
  };
  // A Location proxy_redirect rewrote to a path is made absolute (absolute_redirect, checked
  // against nginx 1.22.1); one it leaves alone is relayed as it is.
  const here = `http://localhost:${proxy.port}`;
  assert.equal(await location('/x', 'http://b/login?next=%2F'), `${here}/login?next=%2F`);
  assert.equal(await location('/x', 'http://elsewhere/login'), 'http://elsewhere/login');
  assert.equal(await location('/x', '/relative'), '/relative');
  assert.equal(await location('/api/x', 'http://b/v2/login'), `${here}/api/login`);
  assert.equal(await location('/api/x', 'http://b/v1/login'), 'http://b/v1/login');
  assert.equal(await location('/off/x', 'http://b/login'), 'http://b/login');
  assert.equal(await location('/custom/x', 'http://internal.example/a/b'), 'https://public.example/app/a/b');
  // A regex rule replaces the whole value (the unmatched tail goes), then made absolute.
  assert.equal(await location('/re/x', 'http://internal.example/abc/def?x=1'), `${here}/new/abc`);
  assert.equal(await location('/re/x', 'http://other.example/abc'), 'http://other.example/abc');
});

test('proxy_redirect rewrites the URL inside a Refresh header as well as Location', async (t) => {
  const backend = await startHttpBackend((req, res) => {
    res.writeHead(200, { Refresh: `5; url=${String(req.headers['x-location'])}`, 'Content-Length': '0' });
    res.end();
  });
  t.after(() => backend.close());
  const proxy = await startTestProxy(conf(`
    upstream b { server ${backend.addr}; }
    server { listen 127.0.0.1:0; location /api/ { proxy_pass http://b/v2/; } }`), { t });
  const r = await send(proxy.port, 'GET', '/api/x', [['X-Location', 'http://b/v2/next']]);
  assert.equal(r.status, 200);
  assert.equal(headerValue(r.head, 'refresh'), '5; url=/api/next');
});

test('no matching location gives 404 with the error page', async (t) => {
  const backend = await startHttpBackend();
  t.after(() => backend.close());
  const proxy = await startTestProxy(conf(`
    server { listen 127.0.0.1:0; location /only/ { proxy_pass http://${backend.addr}; } }`), { t });
  const r = await send(proxy.port, 'GET', '/elsewhere');
  assert.equal(r.status, 404);
  assert.equal(headerValue(r.head, 'server'), 'sluice');
  assert.equal(headerValue(r.head, 'content-type'), 'text/html');
  assert.equal(r.text, errorPage('404 Not Found'));
  assert.equal(backend.requests.length, 0);
});

test('a malformed request (bad request line, bad header line) gets 400 with the nginx page and a close', async (t) => {
  const backend = await startHttpBackend();
  t.after(() => backend.close());
  const proxy = await startTestProxy(conf(`
    server { listen 127.0.0.1:0; location / { proxy_pass http://${backend.addr}; } }`), { t });
  const bad = [
    'THIS IS NOT HTTP\r\n\r\n',
    'GET / HTTP/1.1\r\nHost: localhost\r\nBad Header Line\r\n\r\n',
    'GET / HTTP/1.1\r\nHost: localhost\r\nX Space: y\r\n\r\n',
  ];
  for (const bytes of bad) {
    const r = await rawRequest(proxy.port, bytes, { until: 'close' });
    assert.ok(r.head, `a response to ${JSON.stringify(bytes)}`);
    assert.equal(r.head.statusCode, 400, JSON.stringify(bytes));
    assert.equal(headerValue(r.head, 'server'), 'sluice', JSON.stringify(bytes));
    assert.equal(headerValue(r.head, 'connection'), 'close', JSON.stringify(bytes));
    assert.equal(r.body.toString(), errorPage('400 Bad Request'), JSON.stringify(bytes));
    assert.equal(r.closed, true);
  }
  assert.equal(backend.requests.length, 0);
});

test('an HTTP/1.1 request without Host gets 400 with the nginx page, like any bad request', async (t) => {
  const backend = await startHttpBackend();
  t.after(() => backend.close());
  const proxy = await startTestProxy(conf(`
    server { listen 127.0.0.1:0; location / { proxy_pass http://${backend.addr}; } }`), { t });
  const r = await rawRequest(proxy.port, 'GET / HTTP/1.1\r\n\r\n', { until: 'close' });
  assert.equal(r.head?.statusCode, 400);
  assert.equal(headerValue(r.head, 'server'), 'sluice');
  assert.equal(r.body.toString(), errorPage('400 Bad Request'));
  assert.equal(r.closed, true);
  assert.equal(backend.requests.length, 0);
});

test('an upstream that answers garbage gives 502 with the error page and an error-log line', async (t) => {
  const backend = await startRawBackend(async (conn) => {
    await conn.readUntil('\r\n\r\n');
    conn.socket.end('this is not http\r\n\r\n');
  });
  t.after(() => backend.close());
  const proxy = await startTestProxy(conf(`
    server { listen 127.0.0.1:0; location / { proxy_pass http://${backend.addr}; } }`), { t });
  const r = await send(proxy.port, 'GET', '/x');
  assert.equal(r.status, 502);
  assert.equal(headerValue(r.head, 'server'), 'sluice');
  assert.equal(r.text, errorPage('502 Bad Gateway'));
  await proxy.waitForErrorLine(/upstream sent invalid header while reading response header from upstream.*request: "GET \/x HTTP\/1\.1"/);
});

test('response headers: repeated Set-Cookie relayed separately, hop-by-hop dropped, Server is sluice, upstream Date not passed', async (t) => {
  const backend = await startHttpBackend((_req, res) => {
    res.setHeader('Connection', 'keep-alive, X-Secret');
    res.setHeader('X-Secret', 'for the proxy only');
    res.setHeader('Keep-Alive', 'timeout=5, max=3');
    res.setHeader('Set-Cookie', ['a=1; Path=/', 'b=2; HttpOnly']);
    res.setHeader('Server', 'backend/1.0');
    res.setHeader('X-Multi', ['x', 'y']);
    res.setHeader('Content-Length', '0');
    res.end();
  });
  t.after(() => backend.close());
  const proxy = await startTestProxy(conf(`
    server { listen 127.0.0.1:0; location / { proxy_pass http://${backend.addr}; } }`), { t });
  const r = await send(proxy.port, 'GET', '/');
  assert.equal(r.status, 200);
  assert.deepEqual(headerValues(r.head, 'set-cookie'), ['a=1; Path=/', 'b=2; HttpOnly']);
  assert.deepEqual(headerValues(r.head, 'x-multi'), ['x', 'y']);
  assert.deepEqual(headerValues(r.head, 'server'), ['sluice']);
  assert.equal(headerValues(r.head, 'date').length, 1);
  assert.equal(headerValue(r.head, 'x-secret'), undefined);
  assert.equal(headerValue(r.head, 'trailer'), undefined);
  assert.notEqual(headerValue(r.head, 'keep-alive'), 'timeout=5, max=3');
});

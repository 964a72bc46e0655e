/**
 * The client limits of ngx_http_core_module (issue 13): client_max_body_size (413 from the
 * declared length before any byte of the body is read, or while a chunked body streams; no
 * "100 Continue" before a 413; inherited per location, 0 for no limit), keepalive_requests (the
 * Nth response on a connection closes it), and that other Expect values pass as nginx lets them.
 */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { test } from 'node:test';
import { startHttpBackend, startRawBackend } from '../helpers/backends.js';
import { testCerts } from '../helpers/certs.js';
import { h2Connect, h2Request } from '../helpers/h2-client.js';
import { CliProcess } from '../helpers/cli-process.js';
import { recorderFor } from '../helpers/byte-recorder.js';
import { conf, infoConf } from '../helpers/config-text.js';
import { tempDir } from '../helpers/temp.js';
import { startTestProxy } from '../helpers/proxy.js';
import { completeResponse, headerValue, rawConnect, rawRequest, readUntil, waitForClose } from '../helpers/raw-client.js';
import { delay, waitFor, withTimeout } from '../helpers/wait.js';

test('client_max_body_size: a declared body over the limit gets 413 and closes, the upstream never sees it; at the limit it passes', async (t) => {
  const backend = await startHttpBackend();
  t.after(() => backend.close());
  const proxy = await startTestProxy(infoConf(`
    client_max_body_size 10;
    server {
      listen 127.0.0.1:0;
      location / { proxy_pass http://${backend.addr}; }
      location /big { client_max_body_size 1k; proxy_pass http://${backend.addr}; }
      location /free { client_max_body_size 0; proxy_pass http://${backend.addr}; }
      location /ret { return 204; }
    }`), { t });

  const over = await rawRequest(proxy.port, 'POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n', { until: 'close' });
  assert.equal(over.head?.statusCode, 413);
  assert.equal(headerValue(over.head, 'connection'), 'close');
  assert.match(over.body.toString(), /413 Request Entity Too Large/);
  await proxy.waitForErrorLine(/\[error\] .*client intended to send too large body: 11 bytes, client: 127\.0\.0\.1, .*request: "POST \/x HTTP\/1\.1"/);
  // nginx's find-config phase comes before `return` (the rewrite phase).
  const ret = await rawRequest(proxy.port, 'POST /ret HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n', { until: 'close' });
  assert.equal(ret.head?.statusCode, 413);
  assert.equal(backend.requests.length, 0);

  const at = await rawRequest(proxy.port, 'POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n0123456789');
  assert.equal(at.head?.statusCode, 200);
  const big = await rawRequest(proxy.port, `POST /big HTTP/1.1\r\nHost: a\r\nContent-Length: 1024\r\n\r\n${'b'.repeat(1024)}`);
  assert.equal(big.head?.statusCode, 200);
  const free = await rawRequest(proxy.port, `POST /free HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n${'f'.repeat(100_000)}`);
  assert.equal(free.head?.statusCode, 200);
  assert.equal(backend.requests.length, 3);
  assert.equal(backend.requests[2]?.body.length, 100_000);
});

test('client_max_body_size: Expect: 100-continue gets a 413 without "100 Continue", or "100 Continue" once the body is wanted', async (t) => {
  const backend = await startHttpBackend();
  t.after(() => backend.close());
  const proxy = await startTestProxy(infoConf(`
    client_max_body_size 10;
    server { listen 127.0.0.1:0; location / { proxy_pass http://${backend.addr}; } }`), { t });

  const refused = await rawRequest(proxy.port, 'POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 11\r\n\r\n', { until: 'close' });
  assert.equal(refused.head?.statusCode, 413);
  assert.doesNotMatch(refused.data.toString('latin1'), /100 Continue/);

  const client = await rawConnect(proxy.port);
  t.after(() => client.destroy());
  client.write('POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n');
  await readUntil(client, 'HTTP/1.1 100 Continue\r\n\r\n');
  client.write('hello');
  const answer = await readUntil(client, '"body":"hello"');
  assert.match(answer.toString(), /^HTTP\/1\.1 200 /);
  // The proxy answered the expectation itself: the upstream is not asked again (nginx drops Expect).
  assert.equal(backend.requests[0]?.headers.expect, undefined);

  // nginx ignores expectations it does not know; Node alone would answer 417.
  const other = await rawRequest(proxy.port, 'GET / HTTP/1.1\r\nHost: a\r\nExpect: something-else\r\n\r\n');
  assert.equal(other.head?.statusCode, 200);
});

test('client_max_body_size: a chunked body that outgrows the limit while streaming ends the try with 413', async (t) => {
  // The backend waits for the whole body before it answers, as most applications do.
  const backend = await startHttpBackend((req, res) => {
    req.resume();
    req.on('end', () => res.end('whole'));
  });
  t.after(() => backend.close());
  const proxy = await startTestProxy(infoConf(`
    client_max_body_size 100;
    server { listen 127.0.0.1:0; location / { proxy_pass http://${backend.addr}; } }`), { t });

  const chunk = (s: string): string => `${s.length.toString(16)}\r\n${s}\r\n`;
  const small = await rawRequest(proxy.port, `POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n${chunk('x'.repeat(60))}${chunk('y'.repeat(40))}0\r\n\r\n`);
  assert.equal(small.head?.statusCode, 200);
  assert.equal(small.body.toString(), 'whole');

  const client = await rawConnect(proxy.port);
  t.after(() => client.destroy());
  client.write(`POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n${chunk('x'.repeat(60))}`);
  await waitFor(() => backend.requests.length === 1, { what: 'the request to reach the upstream' });
  client.write(chunk('y'.repeat(41)));
  const answer = await readUntil(client, '</html>');
  assert.match(answer.toString(), /^HTTP\/1\.1 413 Request Entity Too Large\r\n/);
  await waitForClose(client);
  await proxy.waitForErrorLine(/\[error\] .*client intended to send too large chunked body: 60\+41 bytes/);
});

test('keepalive_requests: the Nth response on a connection says Connection: close and the connection ends', async (t) => {
  const backend = await startHttpBackend();
  t.after(() => backend.close());
  const proxy = await startTestProxy(conf(`
    keepalive_requests 3;
    server { listen 127.0.0.1:0; location / { proxy_pass http://${backend.addr}; } location /ret { return 200 "r"; } }`), { t });
  const client = await rawConnect(proxy.port);
  t.after(() => client.destroy());
  for (const [i, path] of ['/a', '/ret', '/b'].entries()) {
    client.write(`GET ${path} HTTP/1.1\r\nHost: a\r\n\r\n`);
    const response = completeResponse(await readUntil(client, (b) => completeResponse(b, 'GET') !== null), 'GET');
    assert.equal(response?.head.statusCode, 200);
    const close = headerValue(response?.head, 'connection');
    if (i < 2) assert.notEqual(close, 'close', `request ${i + 1}`);
    else assert.equal(close, 'close', 'the third response ends the connection');
  }
  await waitForClose(client);
});

test('client_max_body_size over HTTP/2: a declared length over it gets 413; a body without one is counted as it streams', async (t) => {
  const backend = await startHttpBackend((req, res) => {
    req.resume();
    req.on('end', () => res.end('whole'));
  });
  t.after(() => backend.close());
  const certs = await testCerts();
  const proxy = await startTestProxy(infoConf(`
    client_max_body_size 100;
    server {
      listen 127.0.0.1:0 ssl http2;
      ssl_certificate ${certs.localhost.certFile};
      ssl_certificate_key ${certs.localhost.keyFile};
      location / { proxy_pass http://${backend.addr}; }
    }`), { t });
  const client = await h2Connect(proxy.port, { ca: certs.ca.cert });
  t.after(() => client.close());
  const post = { ':method': 'POST', ':path': '/', ':authority': 'localhost', ':scheme': 'https' };

  const declared = await h2Request(client, { ...post, 'content-length': '101' }, 'x'.repeat(101));
  assert.equal(declared.status, 413);
  await proxy.waitForErrorLine(/client intended to send too large body: 101 bytes/);
  const fits = await h2Request(client, post, ['x'.repeat(60), 'y'.repeat(40)]);
  assert.equal(fits.status, 200);
  assert.equal(fits.text, 'whole');
  const streamed = await h2Request(client, post, ['x'.repeat(60), 'y'.repeat(60)]);
  assert.equal(streamed.status, 413);
  await proxy.waitForErrorLine(/client intended to send too large chunked body: (0\+120|60\+60) bytes/);
});

/**
 * Resolves once the proxy holds only the connection that asks (stub_status at /status): a
 * lingering connection's client keeps its side open, so only the proxy can tell it closed.
 * Returns the milliseconds since `since`.
 */
async function othersClosed(port: number, since: number, timeoutMs: number): Promise<number> {
  await waitFor(async () => /^Active connections: 1 /.test((await rawRequest(port, 'GET /status HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')).body.toString()) || null,
    { what: 'the proxy to close the lingering connection', timeoutMs, intervalMs: 50 });
  return Date.now() - since;
}

/** Sends a POST declaring `size` bytes and keeps sending its body as fast as the proxy reads. */
function uploadInto(port: number, size: number): { socket: Socket; answer: Promise<string> } {
  const socket = connect({ port, host: '127.0.0.1' });
  let got = '';
  socket.on('data', (d: Buffer) => void (got += d.toString('latin1')));
  const answer = new Promise<string>((resolve) => {
    socket.on('error', () => resolve(got));
    socket.on('close', () => resolve(got));
  });
  socket.write(`POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: ${size}\r\n\r\n`);
  const block = Buffer.alloc(64 * 1024, 0x61);
  let sent = 0;
  const pump = (): void => {
    while (sent < size && !socket.destroyed) {
      sent += block.length;
      if (!socket.write(block)) {
        socket.once('drain', pump);
        return;
      }
    }
  };
  socket.once('connect', pump);
  return { socket, answer };
}

test('lingering_close: an upload answered with 413 while the client still sends reaches the client whole (no reset first)', async (t) => {
  // The proxy in its own process: in the test's process the client reads the answer between two
  // of the proxy's own steps and never sees the reset that a close at once gives.
  const dir = tempDir(t);
  dir.write('sluice.conf', conf(`
    client_max_body_size 1k;
    lingering_timeout 500ms;
    server { listen 127.0.0.1:0; location / { return 200 "ok"; } }`));
  const proxy = new CliProcess(t, ['-c', dir.join('sluice.conf'), '-p', dir.path], dir.path);
  const port = await proxy.port();
  // Closing at once makes the kernel reset a connection with unread bytes: the client then often
  // never reads the 413 (without lingering: lost in most of these tries).
  for (let i = 0; i < 8; i++) {
    const { socket, answer } = uploadInto(port, 64 * 1024 * 1024);
    t.after(() => socket.destroy());
    const text = await withTimeout(answer, 20_000, 'the upload connection to end');
    assert.match(text, /^HTTP\/1\.1 413 Request Entity Too Large\r\n[^]*<\/html>\r\n$/, `try ${i + 1}`);
  }
});

test('lingering_timeout and lingering_time bound how long a connection ended by Sluice is read', async (t) => {
  const proxy = await startTestProxy(conf(`
    client_max_body_size 1k;
    server {
      listen 127.0.0.1:0;
      location /quiet { lingering_timeout 300ms; return 200 "ok"; }
      location /busy { lingering_time 1s; lingering_timeout 5s; return 200 "ok"; }
      location = /status { stub_status; }
    }`), { t });
  // Silent after its head: closed about lingering_timeout after the answer.
  const quiet = await rawConnect(proxy.port, { allowHalfOpen: true });
  t.after(() => quiet.destroy());
  quiet.write('POST /quiet HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n');
  await readUntil(quiet, '</html>');
  const quietFor = await othersClosed(proxy.port, Date.now(), 5_000);
  assert.ok(quietFor >= 200, `the client had its lingering_timeout (${quietFor} ms)`);

  // Sends a little every 100 ms, forever: lingering_time ends it.
  const busy = await rawConnect(proxy.port, { allowHalfOpen: true });
  t.after(() => busy.destroy());
  busy.write('POST /busy HTTP/1.1\r\nHost: a\r\nContent-Length: 100000000\r\n\r\n');
  await readUntil(busy, '</html>');
  const answeredBusy = Date.now();
  busy.on('error', () => undefined);
  const feeding = setInterval(() => {
    if (!busy.destroyed) busy.write('x'.repeat(100));
  }, 100);
  t.after(() => clearInterval(feeding));
  const busyFor = await othersClosed(proxy.port, answeredBusy, 10_000);
  assert.ok(busyFor >= 900, `the client had its lingering_time (${busyFor} ms)`);
});

test('lingering_close off closes at once; always lingers even when the body was read', async (t) => {
  const backend = await startHttpBackend();
  t.after(() => backend.close());
  const proxy = await startTestProxy(conf(`
    server {
      listen 127.0.0.1:0;
      location /off { lingering_close off; lingering_timeout 30s; client_max_body_size 1k; return 200 "ok"; }
      location /always { lingering_close always; lingering_timeout 400ms; proxy_pass http://${backend.addr}; }
      location = /status { stub_status; }
    }`), { t });
  const off = await rawConnect(proxy.port, { allowHalfOpen: true });
  t.after(() => off.destroy());
  off.write('POST /off HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n');
  await readUntil(off, '</html>');
  // Long before the 30 s lingering_timeout that `on` would give it.
  await othersClosed(proxy.port, Date.now(), 15_000);

  // The whole request was read and the response says close: `always` still waits for the client.
  const always = await rawConnect(proxy.port, { allowHalfOpen: true });
  t.after(() => always.destroy());
  always.write('GET /always HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
  await readUntil(always, (b) => completeResponse(b, 'GET') !== null);
  const alwaysFor = await othersClosed(proxy.port, Date.now(), 5_000);
  assert.ok(alwaysFor >= 300, `lingering_close always waited for the client (${alwaysFor} ms)`);
});

test('reset_timedout_connection: a client that times out gets a reset instead of a FIN (client_body_timeout, client_header_timeout)', async (t) => {
  const backend = await startHttpBackend();
  t.after(() => backend.close());
  const proxy = await startTestProxy(conf(`
    client_body_timeout 300ms;
    client_header_timeout 300ms;
    server {
      listen 127.0.0.1:0;
      reset_timedout_connection on;
      location / { proxy_pass http://${backend.addr}; }
      location /fin { reset_timedout_connection off; proxy_pass http://${backend.addr}; }
    }`), { t });
  const stall = async (bytes: string): Promise<NodeJS.ErrnoException | null> => {
    const socket = await rawConnect(proxy.port, { allowHalfOpen: true });
    t.after(() => socket.destroy());
    socket.write(bytes);
    // A FIN leaves a half-open client open (ended); a reset closes it with an error.
    await waitFor(() => recorderFor(socket).ended || recorderFor(socket).error !== null || null, { what: 'a FIN or a reset', timeoutMs: 10_000 });
    return recorderFor(socket).error as NodeJS.ErrnoException | null;
  };
  const reset = await stall('POST /reset HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc');
  assert.equal(reset?.code, 'ECONNRESET', 'client_body_timeout with reset_timedout_connection on');
  const fin = await stall('POST /fin HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc');
  assert.equal(fin, null, 'reset_timedout_connection off: a plain close');
  // The head never ends: the default server's setting counts.
  const head = await stall('GET / HTTP/1.1\r\nHost: a\r\n');
  assert.equal(head?.code, 'ECONNRESET', 'client_header_timeout with reset_timedout_connection on');
});

test('large_client_header_buffers: a long request line gets 414, a long header line or a head too large 400 "Request Header Or Cookie Too Large"', async (t) => {
  const backend = await startHttpBackend();
  t.after(() => backend.close());
  const proxy = await startTestProxy(infoConf(`
    large_client_header_buffers 2 1k;
    client_header_buffer_size 512;
    server { listen 127.0.0.1:0; location / { proxy_pass http://${backend.addr}; } }`), { t });
  const get = (target: string, headers = ''): Promise<Awaited<ReturnType<typeof rawRequest>>> =>
    rawRequest(proxy.port, `GET ${target} HTTP/1.1\r\nHost: a\r\n${headers}\r\n`, { until: 'close' });

  const fits = await rawRequest(proxy.port, `GET /${'u'.repeat(900)} HTTP/1.1\r\nHost: a\r\nX-Long: ${'h'.repeat(900)}\r\n\r\n`);
  assert.equal(fits.head?.statusCode, 200);

  const uri = await get(`/${'u'.repeat(1100)}`);
  assert.equal(uri.head?.statusCode, 414);
  assert.match(uri.body.toString(), /<title>414 Request-URI Too Large<\/title>/);
  await proxy.waitForErrorLine(/\[info\] .*client sent too long URI while reading client request line/);

  const line = await get('/', `Cookie: ${'c'.repeat(1100)}\r\n`);
  assert.equal(line.head?.statusCode, 400);
  assert.equal(line.head?.reason, 'Bad Request');
  assert.match(line.body.toString(), /^<html>\r\n<head><title>400 Request Header Or Cookie Too Large<\/title><\/head>\r\n<body>\r\n<center><h1>400 Bad Request<\/h1><\/center>\r\n<center>Request Header Or Cookie Too Large<\/center>\r\n/);
  await proxy.waitForErrorLine(/\[info\] .*client sent too long header line: "Cookie: c{100}/);

  // Every line fits, the head as a whole does not (2 x 1k).
  const many = await get('/', `A: ${'a'.repeat(900)}\r\nB: ${'b'.repeat(900)}\r\nC: ${'c'.repeat(900)}\r\n`);
  assert.equal(many.head?.statusCode, 400);
  assert.match(many.body.toString(), /Request Header Or Cookie Too Large/);
  assert.equal(backend.requests.length, 1, 'only the request that fits went upstream');
});

test('large_client_header_buffers: the default (4 8k) takes an 18 KiB head that Node alone would refuse past 16 KiB', async (t) => {
  // A raw upstream: Node's own HTTP server would refuse such a head itself.
  const backend = await startRawBackend(async (c) => {
    await c.readUntil('\r\n\r\n');
    c.socket.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok');
  });
  t.after(() => backend.close());
  const proxy = await startTestProxy(conf(`
    server { listen 127.0.0.1:0; location / { proxy_pass http://${backend.addr}; } }`), { t });
  const cookies = ['a', 'b', 'c'].map((n) => `Cookie: ${n}=${n.repeat(6000)}\r\n`).join('');
  const big = await rawRequest(proxy.port, `GET / HTTP/1.1\r\nHost: a\r\n${cookies}\r\n`);
  assert.equal(big.head?.statusCode, 200, 'an 18 KiB head in 6 KiB lines fits 4 x 8k');
  const over = await rawRequest(proxy.port, `GET / HTTP/1.1\r\nHost: a\r\nCookie: ${'x'.repeat(8200)}\r\n\r\n`, { until: 'close' });
  assert.equal(over.head?.statusCode, 400);
});

test('limit_rate and limit_rate_after pace a response body to the client, nothing lost', async (t) => {
  const body = Buffer.alloc(300 * 1024);
  for (let i = 0; i < body.length; i++) body[i] = (i * 7) & 0xff;
  const backend = await startHttpBackend((_req, res) => {
    res.writeHead(200, { 'Content-Length': String(body.length) });
    res.end(body);
  });
  t.after(() => backend.close());
  const proxy = await startTestProxy(conf(`
    server {
      listen 127.0.0.1:0;
      location / { proxy_pass http://${backend.addr}; }
      location /slow { limit_rate 100k; limit_rate_after 100k; proxy_pass http://${backend.addr}; }
    }`), { t });
  const fetchBody = async (path: string): Promise<{ ms: number; data: Buffer }> => {
    const started = Date.now();
    const r = await rawRequest(proxy.port, `GET ${path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`, { until: 'close', timeoutMs: 20_000 });
    return { ms: Date.now() - started, data: r.body };
  };
  const slow = await fetchBody('/slow');
  assert.ok(slow.data.equals(body), 'the paced body arrived whole');
  // 100k unpaced + 100k in the first second + 100k in the next: not before a second has passed.
  assert.ok(slow.ms >= 950, `300k at 100k/s after 100k took ${slow.ms} ms`);
  const fast = await fetchBody('/');
  assert.ok(fast.data.equals(body));
});

test('keepalive_time and keepalive_disable: an old connection, or a browser nginx does not trust, is not kept alive', async (t) => {
  const proxy = await startTestProxy(conf(`
    server {
      listen 127.0.0.1:0;
      location / { return 200 "ok"; }
      location /young { keepalive_time 10ms; return 200 "ok"; }
      location /safari { keepalive_disable safari; return 200 "ok"; }
      location /none { keepalive_disable none; return 200 "ok"; }
    }`), { t });
  const connection = async (path: string, ua: string): Promise<string | undefined> => {
    const r = await rawRequest(proxy.port, `GET ${path} HTTP/1.1\r\nHost: a\r\nUser-Agent: ${ua}\r\n\r\n`);
    return headerValue(r.head!, 'connection');
  };
  const msie6 = 'Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.0)';
  const safari = 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15';
  const chrome = 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36';
  // nginx's default is keepalive_disable msie6.
  assert.equal(await connection('/', msie6), 'close');
  assert.equal(await connection('/', `${msie6.slice(0, -1)}; SV1)`), 'keep-alive');
  assert.equal(await connection('/', safari), 'keep-alive');
  assert.equal(await connection('/safari', safari), 'close');
  assert.equal(await connection('/safari', chrome), 'keep-alive');
  assert.equal(await connection('/none', msie6), 'keep-alive');

  // keepalive_time: the second request comes after the connection's 10 ms are over.
  const client = await rawConnect(proxy.port);
  t.after(() => client.destroy());
  client.write('GET /young HTTP/1.1\r\nHost: a\r\n\r\n');
  const first = completeResponse(await readUntil(client, (b) => completeResponse(b, 'GET') !== null), 'GET');
  assert.notEqual(headerValue(first!.head, 'connection'), 'close', 'the first request is young enough');
  await delay(50);
  client.write('GET /young HTTP/1.1\r\nHost: a\r\n\r\n');
  const second = completeResponse(await readUntil(client, (b) => completeResponse(b, 'GET') !== null), 'GET');
  assert.equal(headerValue(second!.head, 'connection'), 'close');
});

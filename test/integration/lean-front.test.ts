/**
 * Plain requests on the lean HTTP/1.1 front end (server/lean-front.ts, issue 15 item 1): the
 * same requests against the lean front end and Node's HTTP server (SLUICE_FRONT=node), with the
 * same answers, and the lean front end's counters saying which one read each request: keep-alive
 * across requests, pipelining in order, the connection handed to Node's server mid-way for a
 * request with a body, `Connection: close`, HTTP/1.0, keepalive_requests, HEAD, 204/304, a body
 * of unknown length re-framed (chunked on a keep-alive HTTP/1.1 connection, else delimited by the
 * close), Content-Length bodies, TLS, local answers and the access log's per-request figures.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { leanFrontCounts } from '../../src/server/lean-front.js';
import { startHttpBackend } from '../helpers/backends.js';
import { FRONTS, withFront } from '../helpers/front.js';
import type { Front } from '../helpers/front.js';
import type { HttpBackend } from '../helpers/backends.js';
import { testCerts } from '../helpers/certs.js';
import { waitForFileLine } from '../helpers/log-files.js';
import { startTestProxy } from '../helpers/proxy.js';
import type { TestProxy } from '../helpers/proxy.js';
import { completeResponse, headerValue, rawConnect, rawRequest, readUntil, waitForClose } from '../helpers/raw-client.js';
import type { ResponseHead } from '../helpers/raw-client.js';
import { tempDir } from '../helpers/temp.js';
import { tlsConnect } from '../helpers/tls-client.js';
import { waitFor } from '../helpers/wait.js';

/** The backend: a POST gets its path and body (its length when long), `/nolength` answers without Content-Length, `/empty` with 204, `/same` with 304; else the path with its length. */
async function backendFor(t: TestContext): Promise<HttpBackend> {
  const backend = await startHttpBackend((req, res) => {
    const url = req.url ?? '/';
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method === 'POST') {
        // A short body is echoed, a long one counted.
        const body = Buffer.concat(chunks);
        const text = `${url}:${body.length <= 64 ? body.toString('latin1') : String(body.length)}`;
        res.writeHead(200, { 'Content-Length': Buffer.byteLength(text) });
        res.end(text);
      } else if (url === '/nolength') {
        res.writeHead(200, { 'Content-Type': 'text/plain' });
        res.write('part one, ');
        setImmediate(() => res.end('part two'));
      } else if (url === '/empty') {
        res.writeHead(204);
        res.end();
      } else if (url === '/same') {
        res.writeHead(304, { ETag: '"x"' });
        res.end();
      } else {
        res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': Buffer.byteLength(url) });
        res.end(url);
      }
    });
  });
  t.after(() => backend.close());
  return backend;
}

async function startPair(t: TestContext, front: Front, extra = ''): Promise<{ proxy: TestProxy; log: string }> {
  const backend = await backendFor(t);
  const log = tempDir(t).join('access.log');
  const proxy = await withFront(front, () => startTestProxy(`
events {}
http {
  log_format lean '$request_uri $status $connection_requests $pipe $request_length $bytes_sent';
  client_max_body_size 2m;
  ${extra}
  server {
    listen 127.0.0.1:0;
    server_name localhost;
    access_log ${log} lean;
    location = /local { return 200 "local answer\\n"; }
    location = /http10 { proxy_pass http://${backend.addr}/nolength; }
    location / { proxy_pass http://${backend.addr}; proxy_http_version 1.1; }
  }
}`, { t }));
  return { proxy, log };
}

const get = (path: string, headers = ''): string => `GET ${path} HTTP/1.1\r\nHost: localhost\r\n${headers}\r\n`;

/** Reads `count` complete responses from `socket` (for `methods`, in order), consuming them. */
async function responses(socket: Awaited<ReturnType<typeof rawConnect>>, count: number, methods: readonly string[] = []): Promise<{ head: ResponseHead; body: string }[]> {
  const split = (b: Buffer): { head: ResponseHead; body: string }[] | null => {
    const out: { head: ResponseHead; body: string }[] = [];
    let offset = 0;
    for (let i = 0; i < count; i++) {
      const r = completeResponse(b.subarray(offset), methods[i] ?? 'GET');
      if (r === null) return null;
      out.push({ head: r.head, body: r.body.toString('latin1') });
      offset += r.length;
    }
    return out;
  };
  const bytes = await readUntil(socket, (b) => split(b) !== null);
  return split(bytes) as { head: ResponseHead; body: string }[];
}

/** Writes `bytes` and lets the proxy read them before going on. */
async function written(socket: Awaited<ReturnType<typeof rawConnect>>, bytes: string): Promise<void> {
  await new Promise<void>((resolve) => socket.write(bytes, () => resolve()));
  await new Promise((resolve) => setImmediate(resolve));
}

/** What the lean front end counted while `run` ran. */
async function counted(run: () => Promise<void>): Promise<{ plain: number; handedOver: number; taken: number }> {
  const before = { ...leanFrontCounts };
  await run();
  return { plain: leanFrontCounts.plain - before.plain, handedOver: leanFrontCounts.handedOver - before.handedOver, taken: leanFrontCounts.taken - before.taken };
}

for (const front of FRONTS) {
  const lean = front === 'lean';

  test(`${front} front end: keep-alive across requests and pipelined requests answered in order, with $connection_requests and $pipe`, async (t) => {
    const { proxy, log } = await startPair(t, front);
    const socket = await rawConnect(proxy.port);
    t.after(() => socket.destroy());
    const c = await counted(async () => {
      socket.write(get('/a'));
      const [a] = await responses(socket, 1);
      assert.equal(a?.head.statusCode, 200);
      assert.equal(a?.body, '/a');
      assert.equal(headerValue(a!.head, 'connection'), 'keep-alive');
      socket.write(get('/local'));
      const [local] = await responses(socket, 1);
      assert.equal(local?.body, 'local answer\n');
      // Three in one packet: answered in order, on the same connection.
      socket.write(get('/p1') + get('/p2') + get('/p3'));
      const three = await responses(socket, 3);
      assert.deepEqual(three.map((r) => r.body), ['/p1', '/p2', '/p3']);
    });
    assert.deepEqual(c, lean ? { plain: 5, handedOver: 0, taken: 0 } : { plain: 0, handedOver: 0, taken: 0 });
    const lines = await waitForFileLine(log, '/p3 ');
    const fields = lines.map((l) => l.split(' '));
    // The lean front end reads a pipelined request once the one before it is answered, as nginx
    // does; Node's server reads them together, so their $connection_requests is the count when
    // each is logged (checked on the lean front end only).
    const shown = (f: string[]): string => (lean ? f.slice(0, 4) : [f[0], f[1], f[3]]).join(' ');
    const expected = ['/a 200 1 .', '/local 200 2 .', '/p1 200 3 .', '/p2 200 4 p', '/p3 200 5 p'];
    assert.deepEqual(fields.map(shown), lean ? expected : expected.map((l) => shown(l.split(' '))));
    const sent = fields.map((f) => Number(f[5]));
    assert.ok(sent.every((n) => n > 100), `$bytes_sent counts each response head and body: ${sent.join(' ')}`);
  });

  test(`${front} front end: a request with a chunked body mid-connection goes to Node's server, which keeps the connection`, async (t) => {
    const { proxy } = await startPair(t, front);
    const socket = await rawConnect(proxy.port);
    t.after(() => socket.destroy());
    const c = await counted(async () => {
      socket.write(get('/before'));
      assert.equal((await responses(socket, 1))[0]?.body, '/before');
      socket.write('POST /upload HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n');
      assert.equal((await responses(socket, 1))[0]?.body, '/upload:abc');
      socket.write(get('/after'));
      assert.equal((await responses(socket, 1))[0]?.body, '/after');
    });
    assert.deepEqual(c, lean ? { plain: 1, handedOver: 1, taken: 0 } : { plain: 0, handedOver: 0, taken: 0 });
  });

  test(`${front} front end: Connection: close, HTTP/1.0 with and without keep-alive, and keepalive_requests end the connection after their answer`, async (t) => {
    const { proxy } = await startPair(t, front, 'keepalive_requests 2;');
    const c = await counted(async () => {
      // Connection: close: answered, then closed; what was pipelined after it is never read, as
      // nginx does (Node's llhttp refuses those bytes: that refusal is not answered either).
      const closing = await rawRequest(proxy.port, get('/x', 'Connection: close\r\n') + get('/never'), { until: 'close' });
      assert.equal(closing.head?.statusCode, 200);
      assert.equal(closing.body.toString(), '/x');
      assert.equal(headerValue(closing.head!, 'connection'), 'close');
      assert.equal((closing.data.toString('latin1').match(/HTTP\/1\.1 /g) ?? []).length, 1, 'one answer');
      // The same behind a chunked body (the lean front end hands that request to Node's server).
      const chunked = 'POST /c HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n';
      const closingChunked = await rawRequest(proxy.port, chunked + get('/never'), { until: 'close' });
      assert.equal(closingChunked.head?.statusCode, 200);
      assert.equal(closingChunked.body.toString(), '/c:abc');
      assert.equal((closingChunked.data.toString('latin1').match(/HTTP\/1\.1 /g) ?? []).length, 1, 'one answer');

      // HTTP/1.0 without keep-alive: closed after the answer.
      const old = await rawRequest(proxy.port, 'GET /y HTTP/1.0\r\nHost: localhost\r\n\r\n', { until: 'close' });
      assert.equal(old.head?.statusCode, 200);
      assert.equal(old.body.toString(), '/y');
      assert.equal(headerValue(old.head!, 'connection'), 'close');

      // HTTP/1.0 with keep-alive: kept.
      const kept = await rawConnect(proxy.port);
      t.after(() => kept.destroy());
      kept.write('GET /k1 HTTP/1.0\r\nHost: localhost\r\nConnection: keep-alive\r\n\r\n');
      const [k1] = await responses(kept, 1);
      assert.equal(headerValue(k1!.head, 'connection'), 'keep-alive');
      // keepalive_requests 2: the second request is the connection's last.
      kept.write('GET /k2 HTTP/1.0\r\nHost: localhost\r\nConnection: keep-alive\r\n\r\n');
      const [k2] = await responses(kept, 1);
      assert.equal(k2?.body, '/k2');
      assert.equal(headerValue(k2!.head, 'connection'), 'close');
      await waitForClose(kept);
    });
    assert.deepEqual(c, lean ? { plain: 4, handedOver: 1, taken: 0 } : { plain: 0, handedOver: 0, taken: 0 });
  });

  test(`${front} front end: HEAD, 204 and 304 carry no body; a body of unknown length is chunked on keep-alive HTTP/1.1, delimited by the close on HTTP/1.0`, async (t) => {
    const { proxy } = await startPair(t, front);
    const socket = await rawConnect(proxy.port);
    t.after(() => socket.destroy());
    const c = await counted(async () => {
      socket.write(`HEAD /head HTTP/1.1\r\nHost: localhost\r\n\r\n${get('/empty')}${get('/same')}${get('/nolength')}${get('/after')}`);
      const [head, empty, same, chunked, after] = await responses(socket, 5, ['HEAD']);
      assert.equal(head?.head.statusCode, 200);
      assert.equal(headerValue(head!.head, 'content-length'), '5', 'HEAD keeps the Content-Length of the GET');
      assert.equal(head?.body, '');
      assert.equal(empty?.head.statusCode, 204);
      assert.equal(same?.head.statusCode, 304);
      assert.equal(headerValue(chunked!.head, 'transfer-encoding'), 'chunked');
      assert.equal(chunked?.body, 'part one, part two');
      assert.equal(after?.body, '/after', 'the connection goes on after each');
    });
    assert.deepEqual(c, lean ? { plain: 5, handedOver: 0, taken: 0 } : { plain: 0, handedOver: 0, taken: 0 });

    // HTTP/1.0 (the upstream answers HTTP/1.0 without a length too): the close delimits the body.
    const old = await rawRequest(proxy.port, 'GET /http10 HTTP/1.0\r\nHost: localhost\r\nConnection: keep-alive\r\n\r\n', { until: 'close' });
    assert.equal(old.head?.statusCode, 200);
    assert.equal(headerValue(old.head!, 'transfer-encoding'), undefined);
    assert.equal(headerValue(old.head!, 'connection'), 'close');
    assert.equal(old.data.toString('latin1').split('\r\n\r\n')[1], 'part one, part two');
  });

  test(`${front} front end: an idle keep-alive connection closes after keepalive_timeout, without an answer`, async (t) => {
    const { proxy } = await startPair(t, front, 'keepalive_timeout 1s;');
    const socket = await rawConnect(proxy.port);
    t.after(() => socket.destroy());
    socket.write(get('/a'));
    assert.equal((await responses(socket, 1))[0]?.body, '/a');
    await waitForClose(socket, 10_000);
  });
}

for (const front of FRONTS) {
  test(`${front} front end: a graceful shutdown closes an idle keep-alive connection at once`, async (t) => {
    const { proxy } = await startPair(t, front);
    const socket = await rawConnect(proxy.port);
    t.after(() => socket.destroy());
    socket.write(get('/a'));
    assert.equal((await responses(socket, 1))[0]?.body, '/a');
    const closed = proxy.close();
    await waitForClose(socket);
    await closed;
  });
}

for (const front of FRONTS) {
  const lean = front === 'lean';

  test(`${front} front end: Content-Length bodies: whole, split over packets, with the next request in the body's last packet, large, unread by a local answer, too large`, async (t) => {
    const { proxy } = await startPair(t, front);
    const socket = await rawConnect(proxy.port);
    t.after(() => socket.destroy());
    const post = (path: string, body: string): string => `POST ${path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
    const c = await counted(async () => {
      socket.write(post('/whole', 'hello'));
      assert.equal((await responses(socket, 1))[0]?.body, '/whole:hello');
      // The head alone, then the body in two packets, the second one with the next request.
      // (Each part is let reach the proxy alone; should two coalesce, the answers are the same.)
      await written(socket, 'POST /split HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10\r\n\r\n');
      await written(socket, '01234');
      socket.write(`56789${get('/next')}`);
      const [split, next] = await responses(socket, 2);
      assert.equal(split?.body, '/split:0123456789');
      assert.equal(next?.body, '/next');
      // 1 MB: read with backpressure, counted by the backend.
      const big = 'x'.repeat(1024 * 1024);
      socket.write(post('/big', big));
      assert.equal((await responses(socket, 1))[0]?.body, `/big:${big.length}`);
      // A local answer reads no body: it is dropped, and the next request is read after it.
      socket.write(post('/local', 'unread body') + get('/after-local'));
      const [local, after] = await responses(socket, 2);
      assert.equal(local?.body, 'local answer\n');
      assert.equal(after?.body, '/after-local');
    });
    assert.deepEqual(c, lean ? { plain: 6, handedOver: 0, taken: 0 } : { plain: 0, handedOver: 0, taken: 0 });

    // client_max_body_size: 413 from the declared length, and the connection closes.
    const tooLarge = await rawRequest(proxy.port, `POST /x HTTP/1.1\r\nHost: localhost\r\nContent-Length: ${3 * 1024 * 1024}\r\n\r\nabc`, { until: 'close' });
    assert.equal(tooLarge.head?.statusCode, 413);
  });

  test(`${front} front end: a client that leaves in the middle of a body is logged 400, as nginx logs a body cut short`, async (t) => {
    const { proxy, log } = await startPair(t, front);
    const socket = await rawConnect(proxy.port);
    socket.write('POST /gone HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\nonly part');
    await waitFor(() => ((proxy.handle.stats?.snapshot().connections.writing ?? 0) > 0 ? true : null), { what: 'the request to be read' });
    socket.destroy();
    const lines = await waitForFileLine(log, '/gone ');
    assert.equal(lines[0]?.split(' ')[1], '400');
  });
}

for (const front of FRONTS) {
  const lean = front === 'lean';

  test(`${front} front end: plain requests over TLS, kept alive; ssl_verify_client's refusal is answered by the same front end`, async (t) => {
    const certs = await testCerts();
    const backend = await backendFor(t);
    const tls = (extra: string): string => `
      listen 127.0.0.1:0 ssl;
      server_name localhost;
      ssl_certificate ${certs.localhost.certFile};
      ssl_certificate_key ${certs.localhost.keyFile};
      ${extra}
      location / { proxy_pass http://${backend.addr}; }`;
    const proxy = await withFront(front, () => startTestProxy(`events {}\nhttp {\n  server {${tls('')}\n  }\n}`, { t }));
    const socket = await tlsConnect(proxy.port, { servername: 'localhost', ca: certs.ca.cert });
    t.after(() => socket.destroy());
    const c = await counted(async () => {
      socket.write(get('/one') + get('/two'));
      assert.deepEqual((await responses(socket, 2)).map((r) => r.body), ['/one', '/two']);
    });
    assert.deepEqual(c, lean ? { plain: 2, handedOver: 0, taken: 0 } : { plain: 0, handedOver: 0, taken: 0 });

    const verifying = await withFront(front, () => startTestProxy(`events {}\nhttp {\n  server {${tls(`ssl_verify_client on; ssl_client_certificate ${certs.ca.certFile};`)}\n  }\n}`, { t }));
    const noCert = await tlsConnect(verifying.port, { servername: 'localhost', ca: certs.ca.cert });
    t.after(() => noCert.destroy());
    noCert.write(get('/secret'));
    const [refused] = await responses(noCert, 1);
    assert.equal(refused?.head.statusCode, 400);
    assert.match(refused?.body ?? '', /No required SSL certificate was sent/);
  });
}

for (const front of FRONTS) {
  const lean = front === 'lean';

  test(`${front} front end: Expect: 100-continue gets "100 Continue" once the body is wanted, and the connection goes on`, async (t) => {
    const { proxy } = await startPair(t, front);
    const socket = await rawConnect(proxy.port);
    t.after(() => socket.destroy());
    const c = await counted(async () => {
      socket.write('POST /expect HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n');
      const interim = await readUntil(socket, 'HTTP/1.1 100 Continue\r\n\r\n');
      assert.equal(interim.toString('latin1'), 'HTTP/1.1 100 Continue\r\n\r\n');
      socket.write('body');
      const [answer] = await responses(socket, 1);
      assert.equal(answer?.body, '/expect:body');
      assert.equal(headerValue(answer!.head, 'connection'), 'keep-alive');
      socket.write(get('/after'));
      assert.equal((await responses(socket, 1))[0]?.body, '/after');
    });
    assert.deepEqual(c, lean ? { plain: 2, handedOver: 0, taken: 0 } : { plain: 0, handedOver: 0, taken: 0 });
  });
}

/**
 * The two HTTP/1.1 front ends (issue 15, item 1): the lean one (server/lean-front.ts: it reads each
 * request head itself and takes complete upgrade heads and plain requests without a chunked body)
 * and Node's HTTP server (what the lean one hands everything else to, and all of it with
 * SLUICE_FRONT=node). The same raw requests go to a proxy with each, and get the same answers:
 * every request-smuggling and malformed-input case, as a plain request and as a WebSocket
 * handshake, with the status Sluice answered before the lean front end (nginx's, checked in
 * request-head.test.ts and bare-lf.test.ts), and the connection closed after a refusal. The lean
 * front end's counters say which one read each head, so a case the lean path should take cannot
 * silently go to Node's (plain requests on the lean path: lean-front.test.ts). */
import assert from 'node:assert/strict';
import { connect as tlsConnectRaw } from 'node:tls';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { leanFrontCounts } from '../../src/server/lean-front.js';
import { startHttpBackend } from '../helpers/backends.js';
import { FRONTS, withFront } from '../helpers/front.js';
import type { Front } from '../helpers/front.js';
import type { HttpBackend } from '../helpers/backends.js';
import { testCerts } from '../helpers/certs.js';
import { startTestProxy } from '../helpers/proxy.js';
import type { TestProxy } from '../helpers/proxy.js';
import { recorderFor } from '../helpers/byte-recorder.js';
import { waitFor } from '../helpers/wait.js';
import {
  SAMPLE_ACCEPT, completeResponse, headerValue, maskedFrame, parseResponseHead, rawConnect, rawRequest, readFrame, readUntil, waitForBytes,
  waitForClose, wsHandshakeRequest,
} from '../helpers/raw-client.js';

const WS = 'Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n';

interface Shape {
  readonly bytes: string;
  readonly status: number;
  /** With the lean front end: whether it reads this head itself (else Node's server does), a plain request as an upgrade. */
  readonly lean?: boolean;
}

interface Case {
  readonly name: string;
  readonly plain?: Shape;
  readonly upgrade?: Shape;
}

/** A request head: `line` is the request line, `headers` the lines after Host (each ending CRLF). */
function head(line: string, headers = '', { host = 'Host: localhost\r\n', upgrade = false, body = '' } = {}): string {
  return `${line}\r\n${host}${upgrade ? WS : ''}${headers}\r\n${body}`;
}
const get = (headers = '', o: { line?: string; host?: string } = {}): string => head(o.line ?? 'GET / HTTP/1.1', headers, { ...(o.host === undefined ? {} : { host: o.host }) });
const ws = (headers = '', o: { line?: string; host?: string; body?: string } = {}): string => head(o.line ?? 'GET / HTTP/1.1', headers, { upgrade: true, ...(o.host === undefined ? {} : { host: o.host }), body: o.body ?? '' });
const chunked = (body: string): string => head('POST / HTTP/1.1', 'Transfer-Encoding: chunked\r\n', { body });

const LONG = 'a'.repeat(1100);

const CASES: readonly Case[] = [
  { name: 'a clean request', plain: { bytes: get(), status: 200, lean: true }, upgrade: { bytes: ws(), status: 101, lean: true } },
  { name: 'a Content-Length body', plain: { bytes: head('POST / HTTP/1.1', 'Content-Length: 3\r\n', { body: 'abc' }), status: 200, lean: true } },
  // Request smuggling: framing that two parsers could read differently.
  { name: 'Content-Length with Transfer-Encoding', plain: { bytes: head('POST / HTTP/1.1', 'Content-Length: 3\r\nTransfer-Encoding: chunked\r\n', { body: '0\r\n\r\n' }), status: 400 }, upgrade: { bytes: ws('Content-Length: 3\r\nTransfer-Encoding: chunked\r\n'), status: 400, lean: false } },
  { name: 'Transfer-Encoding before Content-Length', plain: { bytes: head('POST / HTTP/1.1', 'Transfer-Encoding: chunked\r\nContent-Length: 3\r\n', { body: '0\r\n\r\n' }), status: 400 }, upgrade: { bytes: ws('Transfer-Encoding: chunked\r\nContent-Length: 3\r\n'), status: 400, lean: false } },
  { name: 'two equal Content-Length lines', plain: { bytes: head('POST / HTTP/1.1', 'Content-Length: 3\r\nContent-Length: 3\r\n', { body: 'abc' }), status: 400 }, upgrade: { bytes: ws('Content-Length: 0\r\nContent-Length: 0\r\n'), status: 400, lean: false } },
  { name: 'two different Content-Length lines', plain: { bytes: head('POST / HTTP/1.1', 'Content-Length: 3\r\nContent-Length: 4\r\n', { body: 'abcd' }), status: 400 }, upgrade: { bytes: ws('Content-Length: 0\r\nContent-Length: 1\r\n'), status: 400, lean: false } },
  { name: 'Content-Length: 3, 3 (a list)', plain: { bytes: head('POST / HTTP/1.1', 'Content-Length: 3, 3\r\n', { body: 'abc' }), status: 400 }, upgrade: { bytes: ws('Content-Length: 0, 0\r\n'), status: 400, lean: false } },
  { name: 'Content-Length: +3', plain: { bytes: head('POST / HTTP/1.1', 'Content-Length: +3\r\n', { body: 'abc' }), status: 400 }, upgrade: { bytes: ws('Content-Length: +0\r\n'), status: 400, lean: false } },
  { name: 'Transfer-Encoding: gzip, chunked (a list)', plain: { bytes: head('POST / HTTP/1.1', 'Transfer-Encoding: gzip, chunked\r\n', { body: '0\r\n\r\n' }), status: 501 }, upgrade: { bytes: ws('Transfer-Encoding: gzip, chunked\r\n'), status: 501, lean: true } },
  { name: 'Transfer-Encoding: chunked, gzip', plain: { bytes: head('POST / HTTP/1.1', 'Transfer-Encoding: chunked, gzip\r\n'), status: 501 } },
  { name: 'Transfer-Encoding: chunked, chunked', plain: { bytes: head('POST / HTTP/1.1', 'Transfer-Encoding: chunked, chunked\r\n', { body: '0\r\n\r\n' }), status: 501 }, upgrade: { bytes: ws('Transfer-Encoding: chunked, chunked\r\n'), status: 501, lean: false } },
  { name: 'Transfer-Encoding: identity', plain: { bytes: head('POST / HTTP/1.1', 'Transfer-Encoding: identity\r\n'), status: 501 }, upgrade: { bytes: ws('Transfer-Encoding: identity\r\n'), status: 501, lean: true } },
  { name: 'two Transfer-Encoding lines', plain: { bytes: head('POST / HTTP/1.1', 'Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n', { body: '0\r\n\r\n' }), status: 400 }, upgrade: { bytes: ws('Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n'), status: 400, lean: false } },
  { name: 'HTTP/1.0 with Transfer-Encoding', plain: { bytes: head('POST / HTTP/1.0', 'Transfer-Encoding: chunked\r\n', { body: '0\r\n\r\n' }), status: 400 }, upgrade: { bytes: ws('Transfer-Encoding: chunked\r\n', { line: 'GET / HTTP/1.0' }), status: 400, lean: true } },
  // Header lines llhttp refuses.
  { name: 'obs-fold', plain: { bytes: get('X-A: a\r\n  folded\r\n'), status: 400 }, upgrade: { bytes: ws('X-A: a\r\n  folded\r\n'), status: 400, lean: false } },
  { name: 'a bare CR inside a value', plain: { bytes: get('X-A: a\rb\r\n'), status: 400 }, upgrade: { bytes: ws('X-A: a\rb\r\n'), status: 400, lean: false } },
  { name: 'NUL inside a value', plain: { bytes: get('X-A: a\0b\r\n'), status: 400 }, upgrade: { bytes: ws('X-A: a\0b\r\n'), status: 400, lean: false } },
  { name: 'a control character (0x01) inside a value', plain: { bytes: get('X-A: a\x01b\r\n'), status: 400 }, upgrade: { bytes: ws('X-A: a\x01b\r\n'), status: 400, lean: false } },
  { name: 'DEL inside a value', plain: { bytes: get('X-A: a\x7fb\r\n'), status: 400 }, upgrade: { bytes: ws('X-A: a\x7fb\r\n'), status: 400, lean: false } },
  { name: 'whitespace before the colon', plain: { bytes: get('X-A : b\r\n'), status: 400 }, upgrade: { bytes: ws('X-A : b\r\n'), status: 400, lean: false } },
  { name: 'a header line without a colon', plain: { bytes: get('X-A\r\n'), status: 400 }, upgrade: { bytes: ws('X-A\r\n'), status: 400, lean: false } },
  // Invalid header names nginx ignores (ignore_invalid_headers on): the request goes on.
  { name: 'an underscore in a header name (ignored)', plain: { bytes: get('X_A: b\r\n'), status: 200, lean: true }, upgrade: { bytes: ws('X_A: b\r\n'), status: 101, lean: true } },
  // Chunked bodies (a handshake has none: what follows its head belongs to the tunnel).
  { name: 'a chunk size that is not hex', plain: { bytes: chunked('zz\r\nabc\r\n0\r\n\r\n'), status: 400 } },
  { name: 'a negative chunk size', plain: { bytes: chunked('-3\r\nabc\r\n0\r\n\r\n'), status: 400 } },
  { name: 'a chunk size that overflows', plain: { bytes: chunked('fffffffffffffffff\r\nabc\r\n0\r\n\r\n'), status: 400 } },
  { name: 'a space inside a chunk size', plain: { bytes: chunked('3 3\r\nabc\r\n0\r\n\r\n'), status: 400 } },
  { name: 'a control character in a chunk extension', plain: { bytes: chunked('3;a\x01b\r\nabc\r\n0\r\n\r\n'), status: 400 } },
  { name: 'chunk data longer than its size', plain: { bytes: chunked('3\r\nabcd\r\n0\r\n\r\n'), status: 400 } },
  { name: 'a well-formed chunk extension', plain: { bytes: chunked('3;name="v"\r\nabc\r\n0\r\n\r\n'), status: 200 } },
  // Targets and Host.
  { name: 'absolute-form target', plain: { bytes: get('', { line: 'GET http://localhost/ HTTP/1.1' }), status: 200 }, upgrade: { bytes: ws('', { line: 'GET http://localhost/ HTTP/1.1' }), status: 101, lean: true } },
  { name: 'absolute-form target with userinfo', plain: { bytes: get('', { line: 'GET http://u:p@localhost/ HTTP/1.1' }), status: 400 }, upgrade: { bytes: ws('', { line: 'GET http://u:p@localhost/ HTTP/1.1' }), status: 400, lean: true } },
  { name: 'two Host lines', plain: { bytes: get('Host: other\r\n'), status: 400, lean: true }, upgrade: { bytes: ws('Host: other\r\n'), status: 400, lean: true } },
  { name: 'no Host on HTTP/1.1', plain: { bytes: get('', { host: '' }), status: 400, lean: true }, upgrade: { bytes: ws('', { host: '' }), status: 400, lean: true } },
  { name: 'a Host with a slash', plain: { bytes: get('', { host: 'Host: a/b\r\n' }), status: 400, lean: true }, upgrade: { bytes: ws('', { host: 'Host: a/b\r\n' }), status: 400, lean: true } },
  // Request lines.
  { name: 'HTTP/2.0 request line', plain: { bytes: get('', { line: 'GET / HTTP/2.0' }), status: 505, lean: true }, upgrade: { bytes: ws('', { line: 'GET / HTTP/2.0' }), status: 505, lean: true } },
  { name: 'HTTP/3.0 request line', plain: { bytes: get('', { line: 'GET / HTTP/3.0' }), status: 505 }, upgrade: { bytes: ws('', { line: 'GET / HTTP/3.0' }), status: 505, lean: false } },
  { name: 'HTTP/0.9 request line', plain: { bytes: get('', { line: 'GET / HTTP/0.9' }), status: 400, lean: true }, upgrade: { bytes: ws('', { line: 'GET / HTTP/0.9' }), status: 400, lean: true } },
  { name: 'a request line without a version', plain: { bytes: 'GET /\r\n\r\n', status: 400, lean: true } },
  { name: 'a lower-case version', plain: { bytes: get('', { line: 'GET / http/1.1' }), status: 400 }, upgrade: { bytes: ws('', { line: 'GET / http/1.1' }), status: 400, lean: false } },
  { name: 'a control character in the method', plain: { bytes: get('', { line: 'G\x01T / HTTP/1.1' }), status: 400 }, upgrade: { bytes: ws('', { line: 'G\x01T / HTTP/1.1' }), status: 400, lean: false } },
  { name: 'a space in the target', plain: { bytes: get('', { line: 'GET /a b HTTP/1.1' }), status: 400 }, upgrade: { bytes: ws('', { line: 'GET /a b HTTP/1.1' }), status: 400, lean: false } },
  { name: 'a WebSocket handshake that is a POST', upgrade: { bytes: ws('Content-Length: 0\r\n', { line: 'POST / HTTP/1.1' }), status: 400, lean: true } },
  { name: 'a WebSocket handshake without a key', upgrade: { bytes: 'GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n', status: 400, lean: true } },
  // Sizes: large_client_header_buffers 4 1k.
  { name: 'a request line longer than a buffer', plain: { bytes: get('', { line: `GET /${LONG} HTTP/1.1` }), status: 414, lean: true }, upgrade: { bytes: ws('', { line: `GET /${LONG} HTTP/1.1` }), status: 414, lean: true } },
  { name: 'a header line longer than a buffer', plain: { bytes: get(`X-Long: ${LONG}\r\n`), status: 400, lean: true }, upgrade: { bytes: ws(`X-Long: ${LONG}\r\n`), status: 400, lean: true } },
  { name: 'a head larger than all buffers', plain: { bytes: get(`X-1: ${'b'.repeat(900)}\r\n`.repeat(5)), status: 400 }, upgrade: { bytes: ws(`X-1: ${'b'.repeat(900)}\r\n`.repeat(5)), status: 400, lean: false } },
];

const CONFIG = (backend: HttpBackend): string => `
error_log stderr info;
events {}
http {
  large_client_header_buffers 4 1k;
  client_header_timeout 1s;
  server {
    listen 127.0.0.1:0;
    server_name localhost;
    location / { proxy_pass http://${backend.addr}; }
  }
}`;

async function startPair(t: TestContext, front: Front): Promise<{ backend: HttpBackend; proxy: TestProxy }> {
  const backend = await startHttpBackend();
  t.after(() => backend.close());
  const proxy = await withFront(front, () => startTestProxy(CONFIG(backend), { t }));
  return { backend, proxy };
}

for (const front of FRONTS) {
  test(`${front} front end: malformed and smuggling request heads get today's statuses, as plain requests and as WebSocket handshakes`, async (t) => {
    const { backend, proxy } = await startPair(t, front);
    for (const c of CASES) {
      for (const kind of ['plain', 'upgrade'] as const) {
        const shape = c[kind];
        if (shape === undefined) continue;
        const what = `${front}, ${c.name} (${kind})`;
        const before = { ...leanFrontCounts };
        const seen = backend.requests.length;
        const refused = shape.status >= 400;
        const r = await rawRequest(proxy.port, shape.bytes, { until: refused ? 'close' : 'response' });
        assert.equal(r.head?.statusCode, shape.status, `${what}: ${JSON.stringify(r.data.toString('latin1').slice(0, 100))}`);
        if (refused) {
          assert.equal(r.closed, true, `${what}: the connection closes after the refusal`);
          assert.equal(backend.requests.length, seen, `${what}: nothing reached the upstream`);
        }
        if (shape.status === 101) assert.equal(headerValue(r.head, 'sec-websocket-accept'), SAMPLE_ACCEPT, what);
        const taken = leanFrontCounts.taken - before.taken;
        const handed = leanFrontCounts.handedOver - before.handedOver;
        const plain = leanFrontCounts.plain - before.plain;
        const by = shape.lean === true ? 'lean front end' : 'Node server';
        if (front === 'node') assert.deepEqual([taken, handed, plain], [0, 0, 0], `${what}: the lean front end is off`);
        else if (kind === 'upgrade') assert.deepEqual([taken, handed, plain], shape.lean === true ? [1, 0, 0] : [0, 1, 0], `${what}: read by the ${by}`);
        else assert.deepEqual([taken, handed, plain], shape.lean === true ? [0, 0, 1] : [0, 1, 0], `${what}: answered by the ${by}`);
      }
    }
  });

  test(`${front} front end: keep-alive and pipelining go on through the handover; an upgrade after a request, or split over packets, still switches`, async (t) => {
    const { proxy } = await startPair(t, front);
    // Two requests in one packet, then a third on the same connection.
    const socket = await rawConnect(proxy.port);
    t.after(() => socket.destroy());
    socket.write(`${get('', { line: 'GET /1 HTTP/1.1' })}${get('', { line: 'GET /2 HTTP/1.1' })}`);
    const twoAnswers = (b: Buffer): boolean => (b.toString('latin1').match(/HTTP\/1\.1 200 /g) ?? []).length === 2 && completeResponse(b.subarray(b.lastIndexOf('HTTP/1.1 200 '))) !== null;
    await readUntil(socket, twoAnswers);
    socket.write(get('', { line: 'GET /3 HTTP/1.1' }));
    const third = await readUntil(socket, (b) => completeResponse(b) !== null);
    assert.equal(completeResponse(third)?.head.statusCode, 200);
    // An upgrade on the same keep-alive connection: Node's server reads it.
    socket.write(ws());
    const switched = await readUntil(socket, (b) => b.includes('\r\n\r\n'));
    assert.equal(parseResponseHead(switched).statusCode, 101);
    socket.write(maskedFrame(1, 'after a request'));
    assert.equal((await readFrame(socket)).payload.toString(), 'after a request');

    // A handshake split over two packets: the lean front end hands it to Node's server.
    const split = await rawConnect(proxy.port);
    t.after(() => split.destroy());
    const bytes = ws();
    await new Promise<void>((resolve) => split.write(bytes.slice(0, 30), () => resolve()));
    // Lets the first packet reach the proxy alone (if the two coalesce, the lean front end reads the whole head: the answer is the same).
    await new Promise((resolve) => setImmediate(resolve));
    split.write(bytes.slice(30));
    const splitHead = await readUntil(split, (b) => b.includes('\r\n\r\n'));
    assert.equal(parseResponseHead(splitHead).statusCode, 101);
    split.write(maskedFrame(1, 'split'));
    assert.equal((await readFrame(split)).payload.toString(), 'split');

    // A frame in the packet of the handshake: kept, and sent upstream after the 101.
    const eager = await rawConnect(proxy.port);
    t.after(() => eager.destroy());
    eager.write(Buffer.concat([Buffer.from(ws(), 'latin1'), maskedFrame(1, 'eager')]));
    const eagerHead = await readUntil(eager, (b) => b.includes('\r\n\r\n'));
    assert.equal(parseResponseHead(eagerHead).statusCode, 101);
    assert.equal((await readFrame(eager)).payload.toString(), 'eager');
  });

  test(`${front} front end: client_header_timeout closes a connection that sends nothing, or half a head, without an answer`, async (t) => {
    const { proxy } = await startPair(t, front);
    for (const partial of ['', 'GET / HTTP/1.1\r\nHost: localhost\r\n', `GET / HTTP/1.1\r\nHost: localhost\r\n${WS}`]) {
      const socket = await rawConnect(proxy.port);
      t.after(() => socket.destroy());
      if (partial !== '') socket.write(partial);
      await waitForClose(socket, 10_000);
      assert.equal(recorderFor(socket).all.length, 0, `${front}: ${JSON.stringify(partial)}: no answer`);
    }
    await proxy.waitForErrorLine(/client timed out/);
  });

  test(`${front} front end: a client that ends its side before sending anything gets the connection closed`, async (t) => {
    // client_header_timeout at its default (60 s), so that it is not what closes the connection.
    const proxy = await withFront(front, () => startTestProxy('events {}\nhttp { server { listen 127.0.0.1:0; return 200; } }', { t }));
    const socket = await rawConnect(proxy.port, { allowHalfOpen: true });
    t.after(() => socket.destroy());
    socket.end();
    await waitForClose(socket);
    assert.equal(recorderFor(socket).all.length, 0, 'no answer');
    await waitFor(() => proxy.handle.stats?.snapshot().connections.active === 0 || null, { what: 'the connection to leave the registry' });
  });

  test(`${front} front end: a WebSocket handshake over TLS`, async (t) => {
    const certs = await testCerts();
    const backend = await startHttpBackend();
    t.after(() => backend.close());
    const proxy = await withFront(front, () => startTestProxy(`
events {}
http {
  server {
    listen 127.0.0.1:0 ssl;
    server_name localhost;
    ssl_certificate ${certs.localhost.certFile};
    ssl_certificate_key ${certs.localhost.keyFile};
    location / { proxy_pass http://${backend.addr}; }
  }
}`, { t }));
    const before = { ...leanFrontCounts };
    const socket = tlsConnectRaw({ port: proxy.port, host: '127.0.0.1', servername: 'localhost', ca: certs.ca.cert });
    t.after(() => socket.destroy());
    recorderFor(socket);
    await new Promise<void>((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject));
    socket.write(wsHandshakeRequest({ host: 'localhost' }));
    const answer = await waitForBytes(socket, (b) => b.includes('\r\n\r\n'));
    assert.equal(parseResponseHead(answer).statusCode, 101);
    recorderFor(socket).consume(answer.indexOf('\r\n\r\n') + 4);
    socket.write(maskedFrame(1, 'over tls'));
    assert.equal((await readFrame(socket)).payload.toString(), 'over tls');
    assert.equal(leanFrontCounts.taken - before.taken, front === 'lean' ? 1 : 0, 'read by the lean front end');
  });
}

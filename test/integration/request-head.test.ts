/**
 * Hostile request heads nginx refuses (issue 11, items 8-11): raw request bytes in, the status and
 * whether the connection closes out, and that nothing refused (or pipelined behind a refusal)
 * reaches the upstream. Every row was checked against nginx 1.22.1 with the same bytes; the one
 * row that differs says so (docs/differences-from-nginx.md).
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { test } from 'node:test';
import { startHttpBackend } from '../helpers/backends.js';
import { recorderFor } from '../helpers/byte-recorder.js';
import { startTestProxy } from '../helpers/proxy.js';
import { completeResponse, headerValue, parseResponseHead, rawRequest, readUntil, waitForBytes, wsHandshakeRequest } from '../helpers/raw-client.js';
import { waitFor } from '../helpers/wait.js';

/** nginx's default lingering_timeout, which a connection refused before any server is known gets. */
const LINGERING_TIMEOUT_MS = 5_000;

interface Row {
  readonly name: string;
  readonly bytes: string;
  readonly status: number;
  /** The connection closes after the answer (else a second request on it is answered). */
  readonly closes: boolean;
  /** The info line nginx logs for the refusal. */
  readonly log?: RegExp;
}

const CHUNKED_BODY = '3\r\nabc\r\n0\r\n\r\n';
const post = (te: string): string => `POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ${te}\r\n\r\n${CHUNKED_BODY}`;
const upgrade = (extra: readonly [string, string][] = [], path = '/'): string => wsHandshakeRequest({ path, host: 'localhost', extraHeaders: extra });

const ROWS: readonly Row[] = [
  // 8: the userinfo of an absolute-form target is no host to route by.
  { name: 'absolute-form target with user:password', bytes: 'GET http://user:pw@internal.example/ HTTP/1.1\r\nHost: x\r\n\r\n', status: 400, closes: true, log: /client sent invalid request while reading client request line/ },
  { name: 'absolute-form target with a user', bytes: 'GET http://user@internal.example/ HTTP/1.1\r\nHost: x\r\n\r\n', status: 400, closes: true },
  { name: 'absolute-form target without userinfo', bytes: 'GET http://internal.example/ HTTP/1.1\r\nHost: x\r\n\r\n', status: 200, closes: false },
  // 9: Host is a unique header, as are the ones nginx processes with process_unique_header_line.
  { name: 'two different Host lines', bytes: 'GET / HTTP/1.1\r\nHost: user\r\nHost: internal.example\r\n\r\n', status: 400, closes: true, log: /client sent duplicate host header: "Host: internal.example", previous value: "Host: user"/ },
  { name: 'the same Host twice', bytes: 'GET / HTTP/1.1\r\nHost: user\r\nHost: user\r\n\r\n', status: 400, closes: true },
  { name: 'two Host lines, a request pipelined behind', bytes: 'GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\nGET /next HTTP/1.1\r\nHost: a\r\n\r\n', status: 400, closes: true },
  { name: 'two Authorization lines', bytes: 'GET / HTTP/1.1\r\nHost: a\r\nAuthorization: a\r\nAuthorization: b\r\n\r\n', status: 400, closes: true, log: /client sent duplicate header line: "Authorization: b", previous value: "Authorization: a"/ },
  { name: 'two If-None-Match lines', bytes: 'GET / HTTP/1.1\r\nHost: a\r\nIf-None-Match: "a"\r\nIf-None-Match: "b"\r\n\r\n', status: 400, closes: true },
  { name: 'two Cookie lines (not unique)', bytes: 'GET / HTTP/1.1\r\nHost: a\r\nCookie: a=1\r\nCookie: b=2\r\n\r\n', status: 200, closes: false },
  // 10: RFC 9112 6.1, Transfer-Encoding is not HTTP/1.0.
  { name: 'HTTP/1.0 with Transfer-Encoding: chunked, a request pipelined behind', bytes: `POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n${CHUNKED_BODY}GET /next HTTP/1.0\r\n\r\n`, status: 400, closes: true, log: /client sent HTTP\/1\.0 request with "Transfer-Encoding" header while reading client request headers/ },
  { name: 'HTTP/1.0 keep-alive with Transfer-Encoding: chunked, a request pipelined behind', bytes: `POST / HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n${CHUNKED_BODY}GET /next HTTP/1.0\r\n\r\n`, status: 400, closes: true },
  { name: 'HTTP/1.0 with Transfer-Encoding: chunked, gzip', bytes: 'POST / HTTP/1.0\r\nTransfer-Encoding: chunked, gzip\r\n\r\n', status: 400, closes: true },
  // 11: nginx decodes a lone "chunked" and answers any other Transfer-Encoding with 501.
  { name: 'Transfer-Encoding: identity, chunked', bytes: post('identity, chunked'), status: 501, closes: true, log: /client sent unknown "Transfer-Encoding": "identity, chunked" while reading client request headers/ },
  { name: 'Transfer-Encoding: identity', bytes: 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n', status: 501, closes: true },
  { name: 'Transfer-Encoding: gzip, chunked', bytes: post('gzip, chunked'), status: 501, closes: true },
  { name: 'Transfer-Encoding: chunked, gzip', bytes: post('chunked, gzip'), status: 501, closes: true, log: /client sent unknown "Transfer-Encoding": "chunked, gzip"/ },
  { name: 'Transfer-Encoding: gzip', bytes: 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n', status: 501, closes: true },
  { name: 'Transfer-Encoding: chunked, chunked', bytes: post('chunked, chunked'), status: 501, closes: true },
  { name: 'Transfer-Encoding: chunked;q=1', bytes: post('chunked;q=1'), status: 501, closes: true },
  { name: 'Transfer-Encoding: ,chunked', bytes: post(',chunked'), status: 501, closes: true },
  { name: 'an empty Transfer-Encoding', bytes: 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \r\n\r\n', status: 501, closes: true },
  { name: 'two Transfer-Encoding: chunked lines', bytes: 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n' + CHUNKED_BODY, status: 400, closes: true, log: /client sent duplicate header line: "Transfer-Encoding: chunked", previous value: "Transfer-Encoding: chunked"/ },
  { name: 'Transfer-Encoding and Content-Length', bytes: 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n' + CHUNKED_BODY, status: 400, closes: true },
  { name: 'Transfer-Encoding: CHUNKED', bytes: post('CHUNKED'), status: 200, closes: false },
  { name: 'two Content-Length lines', bytes: 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc', status: 400, closes: true },
  // 11: versions. nginx reads any HTTP/1.x as 1.1 and refuses a higher major version with 505.
  { name: 'HTTP/2.0 on an HTTP/1 listener', bytes: 'GET / HTTP/2.0\r\nHost: a\r\n\r\n', status: 505, closes: true, log: /client sent invalid version while reading client request line/ },
  { name: 'HTTP/3.0', bytes: 'GET / HTTP/3.0\r\nHost: a\r\n\r\n', status: 505, closes: true },
  { name: 'HTTP/2 (no minor version)', bytes: 'GET / HTTP/2\r\nHost: a\r\n\r\n', status: 505, closes: true },
  { name: 'HTTP/9.9', bytes: 'GET / HTTP/9.9\r\nHost: a\r\n\r\n', status: 505, closes: true },
  { name: 'HTTP/0.9 written out', bytes: 'GET / HTTP/0.9\r\nHost: a\r\n\r\n', status: 400, closes: true },
  // The one difference: nginx answers HTTP/1.2 as 1.1 (200, kept open); Node's parser refuses it.
  { name: 'HTTP/1.2 (nginx: 200; Node\'s parser refuses it)', bytes: 'GET / HTTP/1.2\r\nHost: a\r\n\r\n', status: 400, closes: true },
  { name: 'HTTP/1.1', bytes: 'GET / HTTP/1.1\r\nHost: a\r\n\r\n', status: 200, closes: false },
  { name: 'HTTP/1.0 keep-alive', bytes: 'GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n', status: 200, closes: false },
  // The same checks on upgrade requests (Node hands those over on another path).
  { name: 'WebSocket upgrade with two Host lines', bytes: upgrade([['Host', 'b']]), status: 400, closes: true },
  { name: 'WebSocket upgrade over HTTP/2.0', bytes: upgrade().replace(' HTTP/1.1\r\n', ' HTTP/2.0\r\n'), status: 505, closes: true },
  { name: 'WebSocket upgrade with Transfer-Encoding: identity, chunked', bytes: upgrade([['Transfer-Encoding', 'identity, chunked']]) + '0\r\n\r\n', status: 501, closes: true },
  { name: 'WebSocket upgrade to an absolute-form target with userinfo', bytes: upgrade([], 'http://u@localhost/'), status: 400, closes: true },
  { name: 'WebSocket upgrade', bytes: upgrade(), status: 101, closes: false },
];

test('hostile request heads get nginx\'s status and close; nothing refused reaches the upstream', async (t) => {
  const backend = await startHttpBackend();
  t.after(() => backend.close());
  const proxy = await startTestProxy(`
error_log stderr info;
events {}
http {
  server {
    listen 127.0.0.1:0;
    server_name localhost;
    location / { proxy_pass http://${backend.addr}; proxy_set_header Host $host; }
  }
  server { listen 127.0.0.1:0; server_name user; return 200 "user\\n"; }
  server {
    listen 127.0.0.1:0;
    server_name internal.example;
    location / { proxy_pass http://${backend.addr}; proxy_set_header Host $host; }
  }
}`, { t });

  for (const row of ROWS) {
    const before = backend.requests.length;
    const r = await rawRequest(proxy.port, row.bytes, { until: row.closes ? 'close' : 'response', keepOpen: !row.closes });
    try {
      assert.equal(r.head?.statusCode, row.status, `${row.name}: ${JSON.stringify(r.data.toString('latin1').slice(0, 120))}`);
      if (row.closes) {
        assert.equal(r.closed, true, `${row.name}: the connection closes`);
        const answers = r.data.toString('latin1').match(/HTTP\/1\.1 \d{3} /g) ?? [];
        assert.equal(answers.length, 1, `${row.name}: one answer, none for what was pipelined behind it`);
        if (row.status !== 101) assert.equal(headerValue(r.head, 'connection'), 'close', row.name);
      } else if (row.status !== 101) {
        // Kept open: the next request on the connection is answered.
        r.socket.write('GET /again HTTP/1.1\r\nHost: localhost\r\n\r\n');
        const next = await readUntil(r.socket, (b) => completeResponse(b) !== null);
        assert.equal(completeResponse(next)?.head.statusCode, 200, `${row.name}: a second request on the connection`);
      }
    } finally {
      r.socket.destroy();
    }
    if (row.log !== undefined) await proxy.waitForErrorLine(row.log);
    if (row.status >= 400) {
      // A request sent after the refusal is the next one the upstream sees: the refused one and
      // whatever was pipelined behind it never went there.
      const marker = await rawRequest(proxy.port, `GET /after-${before} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`);
      assert.equal(marker.head?.statusCode, 200);
      assert.deepEqual(backend.requests.slice(before).map((q) => q.url), [`/after-${before}`], `${row.name}: reached the upstream`);
    }
  }

  // The absolute-form target named the server and the Host the upstream got (item 8).
  const named = backend.requests.find((q) => q.url === '/' && q.headers['host'] === 'internal.example');
  assert.ok(named, 'http://internal.example/ went to the internal.example server with its host');
  assert.equal(backend.requests.some((q) => q.headers['host'] === 'user'), false, 'no request went upstream as "Host: user"');
});

test('a client that never closes after a refusal loses the connection after nginx\'s lingering timeout: its slot comes back', async (t) => {
  const proxy = await startTestProxy(`
events { worker_connections 1; }
http { server { listen 127.0.0.1:0; return 200 "ok"; } }`, { t });
  // Half-open capable, and never ends its side: a client that takes the FIN and stays.
  const holder = connect({ port: proxy.port, host: '127.0.0.1', allowHalfOpen: true });
  t.after(() => holder.destroy());
  recorderFor(holder);
  holder.write('GET / HTTP/3.0\r\nHost: a\r\n\r\n');
  await waitForBytes(holder, (b) => completeResponse(b) !== null);
  assert.equal(parseResponseHead(recorderFor(holder).all).statusCode, 505);
  const refused = await rawRequest(proxy.port, 'GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n', { until: 'close' });
  assert.equal(refused.head?.statusCode, 503, 'the held connection takes the only slot');
  const started = Date.now();
  await waitFor(async () => (await rawRequest(proxy.port, 'GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n', { until: 'close' })).head?.statusCode === 200 || null,
    { what: 'the slot to come back', timeoutMs: LINGERING_TIMEOUT_MS + 5000, intervalMs: 250 });
  assert.ok(Date.now() - started >= LINGERING_TIMEOUT_MS - 1000, 'the client had its lingering time');
});

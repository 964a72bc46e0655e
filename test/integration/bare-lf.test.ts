/**
 * Bare-LF line ends (issue 14, fidelity item 1): nginx accepts a request head, chunked framing and
 * an upstream response head whose lines end in LF alone (Test::Nginx and many of nginx's test
 * backends write them); Sluice does too, through two llhttp flags (src/proxy/front/bare-lf.ts),
 * while every smuggling case stays refused. Every row was checked against nginx 1.22.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startHttpBackend, startRawBackend } from '../helpers/backends.js';
import { conf } from '../helpers/config-text.js';
import { startTestProxy } from '../helpers/proxy.js';
import { rawRequest } from '../helpers/raw-client.js';

interface Row {
  readonly name: string;
  readonly bytes: string;
  readonly status: number;
  /** The body the upstream got, for the rows that reach it. */
  readonly upstreamBody?: string;
  /**
   * A bad chunk is found once the head went upstream (the body streams; request buffering is
   * another item of issue 14): the upstream connection is cut, no second request follows.
   */
  readonly badBody?: boolean;
}

const ROWS: readonly Row[] = [
  { name: 'a GET with LF only', bytes: 'GET /lf HTTP/1.0\nHost: localhost\n\n', status: 200 },
  { name: 'HTTP/1.1, LF and CRLF mixed', bytes: 'GET /mixed HTTP/1.1\nHost: localhost\r\nConnection: close\n\r\n', status: 200 },
  { name: 'a body with Content-Length', bytes: 'POST /cl HTTP/1.1\nHost: localhost\nContent-Length: 3\nConnection: close\n\nabc', status: 200, upstreamBody: 'abc' },
  { name: 'chunked framing with LF', bytes: 'POST /ch HTTP/1.1\nHost: localhost\nTransfer-Encoding: chunked\nConnection: close\n\n3\nabc\n2;ext=1\nde\n0\r\n\r\n', status: 200, upstreamBody: 'abcde' },
  // Smuggling stays closed.
  { name: 'Content-Length with Transfer-Encoding', bytes: 'POST / HTTP/1.1\nHost: localhost\nContent-Length: 3\nTransfer-Encoding: chunked\n\n0\n\n', status: 400 },
  { name: 'two Content-Lengths', bytes: 'POST / HTTP/1.1\nHost: localhost\nContent-Length: 3\nContent-Length: 4\n\nabcd', status: 400 },
  { name: 'obs-fold', bytes: 'GET / HTTP/1.1\nHost: localhost\nX-A: a\n b\n\n', status: 400 },
  { name: 'a bare CR inside the header lines', bytes: 'GET / HTTP/1.1\nHost: localhost\rX-A: b\n\n', status: 400 },
  { name: 'NUL in a header value', bytes: 'GET / HTTP/1.1\nHost: localhost\nX-A: a\0b\n\n', status: 400 },
  { name: 'an invalid chunk size', bytes: 'POST / HTTP/1.1\nHost: localhost\nTransfer-Encoding: chunked\n\n3x\nabc\n0\n\n', status: 400, badBody: true },
  { name: 'an invalid chunk size, Connection: close', bytes: 'POST / HTTP/1.1\nHost: localhost\nTransfer-Encoding: chunked\nConnection: close\n\n3x\nabc\n0\n\n', status: 400, badBody: true },
  { name: 'a space after the chunk size', bytes: 'POST / HTTP/1.1\nHost: localhost\nTransfer-Encoding: chunked\n\n3 \nabc\n0\n\n', status: 400, badBody: true },
  { name: 'chunk data without its line end', bytes: 'POST / HTTP/1.1\nHost: localhost\nTransfer-Encoding: chunked\n\n3\nabc0\n\n', status: 400, badBody: true },
  { name: 'a space before the colon', bytes: 'GET / HTTP/1.1\nHost : localhost\n\n', status: 400 },
];

test('request heads and chunked framing with bare LF are accepted; smuggling cases stay 400', async (t) => {
  const backend = await startHttpBackend();
  t.after(() => backend.close());
  const proxy = await startTestProxy(conf(`server { listen 127.0.0.1:0; location / { proxy_pass http://${backend.addr}; } }`), { t });
  for (const [i, row] of ROWS.entries()) {
    const before = backend.requests.length;
    const r = await rawRequest(proxy.port, row.bytes.replace(' / HTTP', ` /row${i} HTTP`), { until: 'close' });
    assert.equal(r.head?.statusCode, row.status, `${row.name}: ${JSON.stringify(r.data.toString('latin1').slice(0, 100))}`);
    if (row.status === 200) {
      assert.equal(backend.requests.length, before + 1, `${row.name}: reached the upstream`);
      if (row.upstreamBody !== undefined) {
        const got = backend.requests[before]!;
        await (async () => { for (let i = 0; i < 100 && got.body !== row.upstreamBody; i++) await new Promise((r2) => setImmediate(r2)); })();
        assert.equal(got.body, row.upstreamBody, row.name);
      }
    } else if (row.badBody !== true) {
      assert.equal(backend.requests.some((q) => q.url === `/row${i}`), false, `${row.name}: nothing reached the upstream`);
    }
  }
});

test('keep-alive: bare-LF requests pipelined on one connection are each answered', async (t) => {
  const backend = await startHttpBackend();
  t.after(() => backend.close());
  const proxy = await startTestProxy(conf(`server { listen 127.0.0.1:0; location / { proxy_pass http://${backend.addr}; } }`), { t });
  const r = await rawRequest(proxy.port, 'GET /one HTTP/1.1\nHost: localhost\n\nGET /two HTTP/1.1\nHost: localhost\nConnection: close\n\n', { until: 'close' });
  assert.equal(r.data.toString('latin1').match(/HTTP\/1\.1 200 /g)?.length, 2);
  assert.deepEqual(backend.requests.map((q) => q.url), ['/one', '/two']);
});

test('an upstream answer with bare-LF head lines and chunked framing is relayed, not a 502', async (t) => {
  const backend = await startRawBackend(async (conn) => {
    const head = (await conn.readUntil('\r\n\r\n')).toString('latin1');
    if (head.startsWith('GET /chunked')) {
      conn.socket.end('HTTP/1.1 200 OK\nTransfer-Encoding: chunked\nX-Up: lf\nConnection: close\n\n3\nabc\n2\nde\n0\r\n\r\n');
    } else {
      conn.socket.end('HTTP/1.0 200 OK\nX-Up: lf\nContent-Type: text/plain\n\nhello');
    }
  });
  t.after(() => backend.close());
  const proxy = await startTestProxy(conf(`server { listen 127.0.0.1:0; location / { proxy_pass http://${backend.addr}; } }`), { t });
  const plain = await rawRequest(proxy.port, 'GET /plain HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n', { until: 'close' });
  assert.equal(plain.head?.statusCode, 200, plain.data.toString('latin1'));
  assert.match(plain.data.toString('latin1'), /\r\nX-Up: lf\r\n/);
  assert.equal(plain.body.toString(), 'hello');
  const chunked = await rawRequest(proxy.port, 'GET /chunked HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n', { until: 'close' });
  assert.equal(chunked.head?.statusCode, 200, chunked.data.toString('latin1'));
  assert.equal(chunked.body.toString(), 'abcde');
});

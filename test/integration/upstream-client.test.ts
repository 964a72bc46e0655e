/**
 * The upstream clients (src/proxy/client/): which one a process uses (the lean one where Node's
 * internals are all there), and what both must do, as nginx does: `npm test` runs this file once
 * with each (SLUICE_UPSTREAM_CLIENT=node for `http.request`). The head goes out exactly as built,
 * the same bytes from both clients over plain TCP and TLS, 1xx answers are skipped,
 * close-delimited bodies end at the FIN, an idle cached connection that the server closes or that
 * times out is never used again, a connection that sent more than its one response is never
 * reused, and an oversized or broken response head gives 502. Exact bytes on the upstream side
 * come from a raw backend.
 */
import assert from 'node:assert/strict';
import { IncomingMessage } from 'node:http';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import { loadInternals } from '../../src/proxy/client/lean-client.js';
import { UPSTREAM_CLIENTS, chooseUpstreamClient, upstreamClient } from '../../src/proxy/client/registry.js';
import { startRawBackend, type RawConnection } from '../helpers/backends.js';
import { testCerts } from '../helpers/certs.js';
import { conf } from '../helpers/config-text.js';
import { startTestProxy } from '../helpers/proxy.js';
import { SAMPLE_ACCEPT, SAMPLE_KEY, rawRequest, sendRequest, wsHandshakeRequest } from '../helpers/raw-client.js';
import { waitFor } from '../helpers/wait.js';

const WAIT_MS = 10_000;

/** A proxy in front of `addr` with an upstream of one server, `keepalive 4` and `Connection ""`. */
function pooledConfig(addr: string, upstreamExtra = ''): string {
  return `
events {}
http {
  upstream app { server ${addr}; keepalive 4; ${upstreamExtra} }
  server {
    listen 127.0.0.1:0;
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}`;
}

async function get(port: number, path: string): Promise<{ status: number; body: string }> {
  const { status, body } = await sendRequest(port, path);
  return { status, body };
}

/** Reads one request head from `conn` and answers it with `reply`; resolves with the head's text. */
async function answerOne(conn: RawConnection, reply: string): Promise<string> {
  const bytes = await conn.readUntil('\r\n\r\n', WAIT_MS);
  conn.socket.write(reply);
  return bytes.toString('latin1');
}

const OK = (body: string): string => `HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n${body}`;

test('upstreams use Sluice\'s client where Node\'s internals are there, http.request where SLUICE_UPSTREAM_CLIENT=node or they are not', () => {
  assert.notEqual(loadInternals(), null, 'require("_http_common").HTTPParser or _addHeaderLine is missing: every request would go through http.request');
  assert.equal(UPSTREAM_CLIENTS.lean?.name, 'lean');
  assert.equal(chooseUpstreamClient({}).name, 'lean');
  assert.equal(chooseUpstreamClient({ SLUICE_UPSTREAM_CLIENT: 'node' }).name, 'node');
  assert.equal(chooseUpstreamClient({}, { lean: null, node: UPSTREAM_CLIENTS.node }).name, 'node');
  assert.equal(chooseUpstreamClient({ SLUICE_UPSTREAM_CLIENT: 'undici' }).name, 'undici', 'measurement only, and only when asked for');
  const asked = process.env['SLUICE_UPSTREAM_CLIENT'];
  assert.equal(upstreamClient.name, asked === 'node' || asked === 'undici' ? asked : 'lean');
});

test('Node\'s internals are checked as a whole: any piece missing or of another shape, and the lean client is not offered', () => {
  const common = createRequire(import.meta.url)('_http_common') as { HTTPParser: Record<string, unknown> & { prototype: Record<string, unknown> } };
  const P = common.HTTPParser;
  const proto = IncomingMessage.prototype;
  assert.notEqual(loadInternals(common, proto), null);
  assert.equal(loadInternals(null, proto), null, 'no _http_common');
  assert.equal(loadInternals({}, proto), null, 'no HTTPParser');
  assert.equal(loadInternals(common, {}), null, 'no _addHeaderLine');
  // A parser class like Node's with one constant or one method gone.
  const STATICS = ['RESPONSE', 'kOnHeaders', 'kOnHeadersComplete', 'kOnBody', 'kOnMessageComplete', 'kLenientNone'];
  const METHODS = ['initialize', 'execute', 'finish', 'close'];
  const without = (name: string): unknown => {
    const Fake = function Fake(): void {} as unknown as Record<string, unknown> & { prototype: Record<string, unknown> };
    for (const k of STATICS) if (k !== name) Fake[k] = P[k];
    Fake.prototype = Object.fromEntries(METHODS.filter((m) => m !== name).map((m) => [m, P.prototype[m]]));
    return { HTTPParser: Fake };
  };
  assert.notEqual(loadInternals(without(''), proto), null, 'the stand-in with every piece passes');
  for (const k of STATICS) assert.equal(loadInternals(without(k), proto), null, `without HTTPParser.${k}`);
  for (const m of METHODS) assert.equal(loadInternals(without(m), proto), null, `without HTTPParser#${m}`);
});

test('the request head goes out in one write, exactly as built: no Connection header is added for "Connection \\"\\""', async (t) => {
  const heads: string[] = [];
  const backend = await startRawBackend(async (conn) => {
    heads.push(await answerOne(conn, OK('one')));
  });
  t.after(() => backend.close());
  const proxy = await startTestProxy(pooledConfig(backend.addr), { t });
  assert.deepEqual(await get(proxy.port, '/a?b=c'), { status: 200, body: 'one' });
  assert.equal(heads.length, 1);
  assert.equal(heads[0], 'GET /a?b=c HTTP/1.1\r\nHost: app\r\n\r\n');
});

test('without a keepalive cache the proxy closes the upstream connection after the response, also when the rules sent no Connection header', async (t) => {
  const backend = await startRawBackend(async (conn) => {
    await answerOne(conn, OK('once'));
  });
  t.after(() => backend.close());
  const proxy = await startTestProxy(`
events {}
http {
  server {
    listen 127.0.0.1:0;
    location / { proxy_pass http://${backend.addr}; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}`, { t });
  assert.deepEqual(await get(proxy.port, '/'), { status: 200, body: 'once' });
  const conn = await backend.nextConnection();
  await waitFor(() => conn.ended || conn.socket.destroyed, { timeoutMs: WAIT_MS, what: 'the proxy to close its upstream connection' });
});

test('1xx answers before the response are skipped; the final response is relayed', async (t) => {
  const backend = await startRawBackend(async (conn) => {
    await answerOne(conn, 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n' + OK('final'));
  });
  t.after(() => backend.close());
  const proxy = await startTestProxy(pooledConfig(backend.addr), { t });
  assert.deepEqual(await get(proxy.port, '/'), { status: 200, body: 'final' });
});

test('a response head of more header lines than the parser hands over at once (32) is relayed whole, in order, on two keep-alive requests', async (t) => {
  const lines = Array.from({ length: 70 }, (_, i) => `X-Line-${i}: v${i}`);
  const backend = await startRawBackend(async (conn) => {
    for (let n = 0; n < 2; n++) await answerOne(conn, `HTTP/1.1 200 OK\r\n${lines.join('\r\n')}\r\nContent-Length: 2\r\n\r\nok`);
  });
  t.after(() => backend.close());
  const proxy = await startTestProxy(pooledConfig(backend.addr), { t });
  for (let n = 0; n < 2; n++) {
    const res = await sendRequest(proxy.port, '/');
    assert.equal(res.status, 200);
    assert.equal(res.body, 'ok');
    const relayed = res.head.headers.filter(([name]) => name.startsWith('X-Line-')).map(([name, v]) => `${name}: ${v}`);
    assert.deepEqual(relayed, lines);
  }
});

test('a close-delimited body (no length) is relayed whole and ends at the upstream FIN; that connection is not kept', async (t) => {
  const body = 'x'.repeat(100_000);
  const backend = await startRawBackend(async (conn) => {
    await conn.readUntil('\r\n\r\n', WAIT_MS);
    conn.socket.end(`HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n${body}`);
  });
  t.after(() => backend.close());
  const proxy = await startTestProxy(pooledConfig(backend.addr), { t });
  for (let i = 0; i < 2; i++) {
    const r = await get(proxy.port, `/${i}`);
    assert.equal(r.status, 200);
    assert.equal(r.body.length, body.length);
  }
  assert.equal(backend.connections.length, 2, 'a closed connection is never reused');
});

test('keep-alive: one connection serves sequential requests; one the server closes while idle is dropped, not used', async (t) => {
  let served = 0;
  const backend = await startRawBackend(async (conn) => {
    for (;;) {
      const head = await conn.readUntil('\r\n\r\n', WAIT_MS).catch(() => null);
      if (head === null) return;
      served++;
      conn.socket.write(OK(`r${served}`));
      if (head.toString('latin1').includes('/last-on-this')) {
        // Close the idle connection a moment after answering (as a server's keep-alive timeout would).
        setTimeout(() => conn.socket.end(), 50);
        return;
      }
    }
  });
  t.after(() => backend.close());
  const proxy = await startTestProxy(pooledConfig(backend.addr), { t });
  assert.equal((await get(proxy.port, '/1')).body, 'r1');
  assert.equal((await get(proxy.port, '/2')).body, 'r2');
  assert.equal(backend.connections.length, 1, 'the second request reused the first connection');
  assert.equal((await get(proxy.port, '/last-on-this')).body, 'r3');
  await waitFor(() => backend.openSockets() === 0, { timeoutMs: WAIT_MS, what: 'the idle connection to close' });
  const errorsBefore = proxy.errorLines.length;
  assert.equal((await get(proxy.port, '/4')).body, 'r4');
  assert.equal(backend.connections.length, 2, 'a new connection after the idle one was closed');
  assert.equal(proxy.errorLines.length, errorsBefore, 'no error: the dead connection was never tried');
});

test('keepalive_timeout closes an idle cached connection', async (t) => {
  const backend = await startRawBackend(async (conn) => {
    await answerOne(conn, OK('a'));
  });
  t.after(() => backend.close());
  const proxy = await startTestProxy(pooledConfig(backend.addr, 'keepalive_timeout 200ms;'), { t });
  assert.equal((await get(proxy.port, '/')).body, 'a');
  assert.equal(backend.openSockets(), 1, 'cached after the response');
  // The proxy's FIN (the raw backend is half-open capable, so its own side stays until it ends it).
  const started = Date.now();
  await backend.connections[0]!.readToEnd(WAIT_MS);
  assert.ok(Date.now() - started < 5000, 'closed after about 200 ms, not at some other timeout');
});

test('a connection that sends bytes after its response is never reused', async (t) => {
  const backend = await startRawBackend(async (conn) => {
    await answerOne(conn, OK('first') + OK('unasked'));
  });
  t.after(() => backend.close());
  const proxy = await startTestProxy(pooledConfig(backend.addr), { t });
  assert.equal((await get(proxy.port, '/')).body, 'first');
  // The proxy closes it at once instead of caching it (a cached one would stay open for 60 s).
  await backend.connections[0]!.readToEnd(WAIT_MS);
});

test('a response head too large for the parser, or broken, gives 502 "upstream sent invalid header"', async (t) => {
  const big = `HTTP/1.1 200 OK\r\nX-Big: ${'b'.repeat(100 * 1024)}\r\nContent-Length: 0\r\n\r\n`;
  const backend = await startRawBackend(async (conn) => {
    const head = await conn.readUntil('\r\n\r\n', WAIT_MS);
    conn.socket.write(head.toString('latin1').includes('/big') ? big : 'HTTP/1.1 2OO OK\r\n\r\n');
  });
  t.after(() => backend.close());
  const proxy = await startTestProxy(pooledConfig(backend.addr), { t });
  assert.equal((await get(proxy.port, '/big')).status, 502);
  assert.equal((await get(proxy.port, '/broken')).status, 502);
  await proxy.waitForErrorLine(/upstream sent invalid header while reading response header from upstream/);
});

/**
 * Reads each request a connection brings (head and body, by Content-Length or chunked), keeps its
 * bytes, and answers it: 101 to an upgrade (then the connection is done), else a 2-byte 200.
 */
async function recordRequests(conn: RawConnection, seen: string[]): Promise<void> {
  for (;;) {
    const head = await conn.readUntil('\r\n\r\n', WAIT_MS).catch(() => null);
    if (head === null) return;
    let bytes = head;
    const text = head.toString('latin1');
    const length = /\r\ncontent-length: *(\d+)/i.exec(text);
    if (length !== null) {
      const total = text.indexOf('\r\n\r\n') + 4 + Number(length[1]);
      if (bytes.length < total) bytes = Buffer.concat([bytes, await conn.readUntil((b) => bytes.length + b.length >= total, WAIT_MS)]);
    } else if (/\r\ntransfer-encoding: *chunked/i.test(text) && !bytes.subarray(-5).equals(Buffer.from('0\r\n\r\n'))) {
      bytes = Buffer.concat([bytes, await conn.readUntil('0\r\n\r\n', WAIT_MS)]);
    }
    seen.push(bytes.toString('latin1'));
    if (/\r\nupgrade:/i.test(text)) {
      conn.socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${SAMPLE_ACCEPT}\r\n\r\n`);
      return;
    }
    conn.socket.write(text.startsWith('HEAD ') ? 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n' : OK('ok'));
  }
}

for (const scheme of ['http', 'https'] as const) {
  test(`${scheme}: every request goes upstream as the same bytes under both clients (this file runs under each)`, async (t) => {
    const certs = await testCerts();
    const seen: string[] = [];
    const backend = await startRawBackend((conn) => recordRequests(conn, seen), scheme === 'https' ? { tls: certs.localhost } : {});
    t.after(() => backend.close());
    const proxy = await startTestProxy(conf(`
  upstream app { server ${backend.addr}; keepalive 4; }
  server {
    listen 127.0.0.1:0;
    location /close/ { proxy_pass ${scheme}://${backend.addr}; }
    location /keep/ { proxy_pass ${scheme}://app; proxy_http_version 1.1; proxy_set_header Connection ""; }
    location /ws/ { proxy_pass ${scheme}://app; proxy_http_version 1.1; }
    location /stream/ { proxy_pass ${scheme}://app; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_request_buffering off; }
  }`), { t });
    const cases: [request: string, upstream: string][] = [
      // nginx's defaults: Host $proxy_host, Connection close; the client's headers follow in order.
      ['GET /close/a?b=c HTTP/1.1\r\nHost: client.test\r\nX-A: 1\r\nCookie: c=1\r\nX-B: 2\r\n\r\n',
        `GET /close/a?b=c HTTP/1.1\r\nHost: ${backend.addr}\r\nConnection: close\r\nX-A: 1\r\nCookie: c=1\r\nX-B: 2\r\n\r\n`],
      ['DELETE /close/d HTTP/1.1\r\nHost: client.test\r\n\r\n',
        `DELETE /close/d HTTP/1.1\r\nHost: ${backend.addr}\r\nConnection: close\r\n\r\n`],
      // No Connection header at all under `Connection ""`: neither "keep-alive" nor "close" is added.
      ['GET /keep/g HTTP/1.1\r\nHost: client.test\r\nX-A: 1\r\n\r\n',
        'GET /keep/g HTTP/1.1\r\nHost: app\r\nX-A: 1\r\n\r\n'],
      ['POST /keep/p HTTP/1.1\r\nHost: client.test\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello',
        'POST /keep/p HTTP/1.1\r\nHost: app\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello'],
      // A body-less POST gets no framing header: no "Content-Length: 0", no chunked encoding (nginx sends none).
      ['POST /keep/empty HTTP/1.1\r\nHost: client.test\r\n\r\n',
        'POST /keep/empty HTTP/1.1\r\nHost: app\r\n\r\n'],
      // A chunked body is read whole (proxy_request_buffering on) and goes with its length, as nginx sends it...
      ['PUT /keep/chunked HTTP/1.1\r\nHost: client.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
        'PUT /keep/chunked HTTP/1.1\r\nHost: app\r\nContent-Length: 5\r\n\r\nhello'],
      // ...and also with request buffering off when it came whole with the head (nginx had it read
      // already; request-buffering.test.ts streams one chunked).
      ['PUT /stream/chunked HTTP/1.1\r\nHost: client.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
        'PUT /stream/chunked HTTP/1.1\r\nHost: app\r\nContent-Length: 5\r\n\r\nhello'],
      ['HEAD /keep/h HTTP/1.1\r\nHost: client.test\r\n\r\n',
        'HEAD /keep/h HTTP/1.1\r\nHost: app\r\n\r\n'],
      [wsHandshakeRequest({ path: '/ws/', extraHeaders: [['Sec-WebSocket-Protocol', 'chat']] }),
        `GET /ws/ HTTP/1.1\r\nHost: app\r\nUpgrade: websocket\r\nConnection: upgrade\r\nSec-WebSocket-Key: ${SAMPLE_KEY}\r\n` +
        'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat\r\n\r\n'],
    ];
    for (const [request, upstream] of cases) {
      const n = seen.length;
      const until = request.includes('Upgrade: websocket') ? '\r\n\r\n' : 'response';
      const r = await rawRequest(proxy.port, request, { until });
      assert.ok(r.head !== null && r.head.statusCode < 300, `${request.split('\r\n')[0]}: ${r.data.toString('latin1')}`);
      assert.equal(seen.length, n + 1);
      assert.equal(seen[n], upstream, `${upstreamClient.name} client, ${request.split('\r\n')[0]}`);
    }
  });
}

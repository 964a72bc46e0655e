/**
 * Response compression end to end (gzip and, as the documented extension, Brotli): which responses
 * are compressed and with exactly which headers, on proxied responses (HTTP/1.1, HTTP/2, the
 * refusal of an upgrade) and local answers; bodies that decompress to the original; a streamed
 * response flushed as it comes; a 64 MiB body to a slow reader with backpressure holding; and
 * `$gzip_ratio` / `$brotli_ratio`.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request, type IncomingMessage, type ServerResponse } from 'node:http';
import { test, type TestContext } from 'node:test';
import { brotliDecompressSync, createGunzip, gunzipSync } from 'node:zlib';
import { startHttpBackend, type HttpBackend } from '../helpers/backends.js';
import { testCerts } from '../helpers/certs.js';
import { conf } from '../helpers/config-text.js';
import { h2Connect, h2Request } from '../helpers/h2-client.js';
import { startTestProxy, type TestProxy } from '../helpers/proxy.js';
import { headerValue, rawRequest, type RawResponse, type ResponseHead } from '../helpers/raw-client.js';
import { tempDir } from '../helpers/temp.js';
import { delay, waitFor, withTimeout } from '../helpers/wait.js';

const WAIT_MS = 10_000;
const HTML = Buffer.from(`<!doctype html><title>t</title>${'<p>compress me, please</p>\n'.repeat(100)}`);

/**
 * The upstream: `/page` is HTML with Content-Length, a strong ETag and Accept-Ranges; the query
 * changes one thing at a time (`type`, `status`, `ce` = Content-Encoding, `len` = body length,
 * `chunked`, `etag`, header `h=Name:Value`).
 */
function upstreamPage(req: IncomingMessage, res: ServerResponse): void {
  const q = new URL(req.url ?? '/', 'http://x').searchParams;
  const body = q.has('len') ? HTML.subarray(0, Number(q.get('len'))) : HTML;
  const headers: [string, string][] = [];
  if (q.get('type') !== '') headers.push(['Content-Type', q.get('type') ?? 'text/html']);
  if (!q.has('chunked')) headers.push(['Content-Length', String(body.length)]);
  headers.push(['ETag', q.get('etag') ?? '"v1"'], ['Accept-Ranges', 'bytes']);
  if (q.has('ce')) headers.push(['Content-Encoding', q.get('ce')!]);
  for (const h of q.getAll('h')) headers.push([h.slice(0, h.indexOf(':')), h.slice(h.indexOf(':') + 1)]);
  res.writeHead(Number(q.get('status') ?? 200), headers.flat());
  res.end(req.method === 'HEAD' ? undefined : body);
}

async function pageBackend(t: TestContext): Promise<HttpBackend> {
  const b = await startHttpBackend(upstreamPage);
  t.after(() => b.close());
  return b;
}

interface Answer {
  readonly head: ResponseHead;
  readonly body: Buffer;
  readonly closed: boolean;
}

async function get(port: number, target: string, headers: [string, string][] = [], method = 'GET', version = '1.1'): Promise<Answer> {
  let text = `${method} ${target} HTTP/${version}\r\nHost: localhost\r\n`;
  for (const [n, v] of headers) text += `${n}: ${v}\r\n`;
  const res = await rawRequest(port, `${text}Connection: close\r\n\r\n`, { until: 'close', timeoutMs: WAIT_MS });
  assert.ok(res.head, `a response to ${target}`);
  return { head: res.head, body: res.body, closed: res.closed };
}

/** The proxy with `http` lines and one server that proxies everything to `backend`. */
function proxyTo(t: TestContext, backend: HttpBackend, http: string): Promise<TestProxy> {
  return startTestProxy(conf(`${http}\n  server { listen 127.0.0.1:0; location / { proxy_pass http://${backend.addr}; } }`), { t });
}

/** A response to GET `path` with `Accept-Encoding: gzip`, read by Node's client (body not yet read). */
function gzipResponse(port: number, path: string): Promise<IncomingMessage> {
  return withTimeout(new Promise<IncomingMessage>((resolve, reject) => {
    request({ port, host: '127.0.0.1', path, headers: { 'accept-encoding': 'gzip' } }, resolve).on('error', reject).end();
  }), WAIT_MS, `the response head to ${path}`);
}

const names = (a: Answer): string[] => a.head.headers.map(([n]) => n);
const GZIP: [string, string] = ['Accept-Encoding', 'gzip, deflate'];

test('gzip on a proxied response: exactly nginx\'s head (no Content-Length or Accept-Ranges, weak ETag, Vary) and a body that gunzips to the original', async (t) => {
  const backend = await pageBackend(t);
  const proxy = await proxyTo(t, backend, 'gzip on; gzip_vary on;');
  const a = await get(proxy.port, '/page', [GZIP]);
  assert.equal(a.head.statusCode, 200);
  assert.deepEqual(names(a), ['Server', 'Content-Type', 'ETag', 'Content-Encoding', 'Vary', 'Date', 'Connection', 'Transfer-Encoding']);
  assert.equal(headerValue(a.head, 'content-encoding'), 'gzip');
  assert.equal(headerValue(a.head, 'etag'), 'W/"v1"');
  assert.equal(headerValue(a.head, 'vary'), 'Accept-Encoding');
  assert.equal(headerValue(a.head, 'transfer-encoding'), 'chunked');
  assert.deepEqual(gunzipSync(a.body), HTML);
  assert.ok(a.body.length < HTML.length / 5, `compressed: ${a.body.length} of ${HTML.length} bytes`);

  // The same response to a client that does not accept gzip: as the upstream sent it, with Vary.
  const plain = await get(proxy.port, '/page');
  assert.deepEqual(names(plain), ['Server', 'Content-Type', 'Content-Length', 'ETag', 'Accept-Ranges', 'Vary', 'Date', 'Connection']);
  assert.equal(headerValue(plain.head, 'etag'), '"v1"');
  assert.deepEqual(plain.body, HTML);
});

test('gzip: which responses are compressed and which are left as they are, with or without Vary', async (t) => {
  const backend = await pageBackend(t);
  const proxy = await startTestProxy(conf(`gzip on; gzip_vary on; gzip_min_length 100; gzip_types text/css;
    server { listen 127.0.0.1:0;
      location / { proxy_pass http://${backend.addr}; }
      location /any/ { gzip_types *; proxy_pass http://${backend.addr}/; }
      location /http10/ { gzip_http_version 1.0; proxy_pass http://${backend.addr}/; }
    }`), { t });
  // [target, request headers, compressed?, Vary?]
  const cases: [string, [string, string][], boolean, boolean][] = [
    ['/page', [GZIP], true, true],
    ['/page?type=text/css', [GZIP], true, true],
    ['/page?type=TEXT/HTML;%20charset=UTF-8', [GZIP], true, true],
    // nginx cuts the type before `;` only for a charset parameter.
    ['/page?type=text/html;%20level=1', [GZIP], false, false],
    ['/page?type=application/json', [GZIP], false, false],
    ['/page?type=', [GZIP], false, false],
    ['/any/page?type=', [GZIP], true, true],
    ['/any/page?type=image/png', [GZIP], true, true],
    ['/page?status=404', [GZIP], true, true],
    ['/page?status=403', [GZIP], true, true],
    ['/page?status=206', [GZIP], false, false],
    ['/page?status=500', [GZIP], false, false],
    ['/page?status=410', [GZIP], false, false],
    ['/page?ce=br', [GZIP], false, false],
    ['/page?ce=identity', [GZIP], false, false],
    ['/page?len=99', [GZIP], false, false],
    ['/page?len=100', [GZIP], true, true],
    // Without a Content-Length, gzip_min_length cannot apply.
    ['/page?len=10&chunked', [GZIP], true, true],
    ['/page', [], false, true],
    ['/page', [['Accept-Encoding', 'gzip;q=0']], false, true],
    ['/page', [['Accept-Encoding', 'br']], false, true],
    ['/page', [GZIP, ['Via', '1.1 cdn']], false, true],
  ];
  for (const [target, headers, compressed, vary] of cases) {
    const a = await get(proxy.port, target, headers);
    const what = `${target} ${JSON.stringify(headers)}`;
    assert.equal(headerValue(a.head, 'content-encoding') === 'gzip', compressed, `${what}: Content-Encoding ${headerValue(a.head, 'content-encoding')}`);
    assert.equal(headerValue(a.head, 'vary'), vary ? 'Accept-Encoding' : undefined, `${what}: Vary`);
    if (compressed) {
      assert.equal(headerValue(a.head, 'content-length'), undefined, what);
      assert.equal(headerValue(a.head, 'accept-ranges'), undefined, what);
      assert.ok(gunzipSync(a.body).length > 0, what);
    } else if (!target.includes('ce=')) {
      assert.equal(headerValue(a.head, 'etag'), '"v1"', `${what}: the ETag stays strong`);
    }
  }
  // HTTP/1.0: not by default (gzip_http_version 1.1); with 1.0 the body ends with the connection.
  const old = await get(proxy.port, '/page', [GZIP], 'GET', '1.0');
  assert.equal(headerValue(old.head, 'content-encoding'), undefined);
  const ten = await get(proxy.port, '/http10/page', [GZIP], 'GET', '1.0');
  assert.equal(headerValue(ten.head, 'content-encoding'), 'gzip');
  assert.equal(headerValue(ten.head, 'connection'), 'close');
  assert.equal(headerValue(ten.head, 'transfer-encoding'), undefined);
  assert.equal(headerValue(ten.head, 'content-length'), undefined);
  assert.ok(ten.closed);
  assert.deepEqual(gunzipSync(ten.body), HTML);
});

test('gzip: HEAD gets the compressed head and no body; ETags that are weak stay, invalid ones go', async (t) => {
  const backend = await pageBackend(t);
  const proxy = await proxyTo(t, backend, 'gzip on;');
  const head = await get(proxy.port, '/page', [GZIP], 'HEAD');
  assert.deepEqual(names(head), ['Server', 'Content-Type', 'ETag', 'Content-Encoding', 'Date', 'Connection']);
  assert.equal(head.body.length, 0);
  assert.equal(headerValue((await get(proxy.port, '/page?etag=W/"w"', [GZIP])).head, 'etag'), 'W/"w"');
  const invalid = await get(proxy.port, '/page?etag=v1', [GZIP]);
  assert.equal(headerValue(invalid.head, 'content-encoding'), 'gzip');
  assert.equal(headerValue(invalid.head, 'etag'), undefined, 'nginx drops an ETag that is not a quoted string');
});

test('gzip_proxied: a request with Via is judged on the response\'s Expires, Cache-Control, Last-Modified and ETag', async (t) => {
  const backend = await pageBackend(t);
  const proxy = await startTestProxy(conf(`gzip on;
    server { listen 127.0.0.1:0;
      location / { gzip_proxied no-cache no_etag; proxy_pass http://${backend.addr}; }
      location /any/ { gzip_proxied any; proxy_pass http://${backend.addr}/; }
      location /expired/ { gzip_proxied expired; proxy_pass http://${backend.addr}/; }
    }`), { t });
  const via: [string, string][] = [GZIP, ['Via', '1.1 cache']];
  const coded = async (target: string): Promise<string | undefined> => headerValue((await get(proxy.port, target, via)).head, 'content-encoding');
  assert.equal(await coded('/page?h=Cache-Control:no-cache'), 'gzip');
  assert.equal(await coded('/page?h=Cache-Control:max-age=60'), undefined);
  assert.equal(await coded('/page'), undefined, 'no_etag: the page has an ETag');
  assert.equal(await coded('/any/page?h=Cache-Control:max-age=60'), 'gzip');
  assert.equal(await coded('/expired/page?h=Expires:Thu,%2001%20Jan%201970%2000:00:00%20GMT'), 'gzip');
  assert.equal(await coded('/expired/page?h=Expires:Fri,%2001%20Jan%202100%2000:00:00%20GMT'), undefined);
  assert.equal(await coded('/expired/page?h=Expires:0'), undefined);
});

test('gzip_disable: a User-Agent regex (caseless) and msie6 keep the body as it is', async (t) => {
  const backend = await pageBackend(t);
  const proxy = await proxyTo(t, backend, 'gzip on; gzip_disable msie6 "^curl/";');
  const ua = async (agent: string): Promise<string | undefined> => headerValue((await get(proxy.port, '/page', [GZIP, ['User-Agent', agent]])).head, 'content-encoding');
  assert.equal(await ua('CURL/8.5.0'), undefined);
  assert.equal(await ua('Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1)'), undefined);
  assert.equal(await ua('Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1; SV1)'), 'gzip');
  assert.equal(await ua('Mozilla/5.0 Firefox/120.0'), 'gzip');
});

test('brotli: preferred when the client accepts both, gzip otherwise; $gzip_ratio and $brotli_ratio in the access log', async (t) => {
  const backend = await pageBackend(t);
  const dir = tempDir(t);
  const log = dir.join('access.log');
  const proxy = await startTestProxy(conf(`gzip on; gzip_comp_level 6; brotli on; brotli_comp_level 5;
    log_format ratio '$request_uri $gzip_ratio $brotli_ratio $body_bytes_sent';
    server { listen 127.0.0.1:0; access_log ${log} ratio;
      location / { proxy_pass http://${backend.addr}; }
      location /css/ { brotli_types text/css; proxy_pass http://${backend.addr}/; }
    }`), { t });
  const both = await get(proxy.port, '/page?both', [['Accept-Encoding', 'gzip, deflate, br']]);
  assert.equal(headerValue(both.head, 'content-encoding'), 'br');
  assert.equal(headerValue(both.head, 'etag'), 'W/"v1"');
  assert.deepEqual(brotliDecompressSync(both.body), HTML);
  const gz = await get(proxy.port, '/page?gz', [GZIP]);
  assert.equal(headerValue(gz.head, 'content-encoding'), 'gzip');
  // brotli_types does not list text/css here: gzip_types neither, so nothing applies.
  const css = await get(proxy.port, '/page?type=text/css&css', [['Accept-Encoding', 'gzip, br']]);
  assert.equal(headerValue(css.head, 'content-encoding'), undefined);
  const css2 = await get(proxy.port, '/css/page?type=text/css', [['Accept-Encoding', 'gzip, br']]);
  assert.equal(headerValue(css2.head, 'content-encoding'), 'br');
  const plain = await get(proxy.port, '/page?plain');
  assert.equal(headerValue(plain.head, 'content-encoding'), undefined);

  // nginx's two decimals, half up on the third: round(100 x in / out), in integers.
  const ratio = (body: Buffer): string => {
    const hundredths = Math.floor((HTML.length * 200 + body.length) / (2 * body.length));
    return `${Math.floor(hundredths / 100)}.${String(hundredths % 100).padStart(2, '0')}`;
  };
  const lines = await waitFor(() => {
    const text = readFileSync(log, 'utf8');
    return text.split('\n').length > 5 ? text.split('\n') : undefined;
  }, { what: 'five access log lines', timeoutMs: WAIT_MS });
  assert.equal(lines[0], `/page?both - ${ratio(both.body)} ${both.body.length}`);
  assert.equal(lines[1], `/page?gz ${ratio(gz.body)} - ${gz.body.length}`);
  assert.equal(lines[4], `/page?plain - - ${HTML.length}`);
});

test('local answers are compressed as nginx does: its 404 page, `return 200` text of a listed type; never a 502', async (t) => {
  const proxy = await startTestProxy(conf(`gzip on; gzip_vary on; gzip_types text/plain;
    server { listen 127.0.0.1:0;
      location /text { return 200 "${'a fine body of text '.repeat(10)}"; }
      location /tiny { return 200 "tiny"; }
      location /gone { proxy_pass http://127.0.0.1:1; }
    }`), { t });
  const missing = await get(proxy.port, '/nowhere', [GZIP]);
  assert.equal(missing.head.statusCode, 404);
  assert.deepEqual(names(missing), ['Server', 'Content-Type', 'Content-Encoding', 'Vary', 'Date', 'Connection', 'Transfer-Encoding']);
  assert.match(gunzipSync(missing.body).toString(), /<title>404 Not Found<\/title>/);
  const text = await get(proxy.port, '/text', [GZIP]);
  assert.equal(headerValue(text.head, 'content-encoding'), 'gzip');
  assert.equal(gunzipSync(text.body).toString(), 'a fine body of text '.repeat(10));
  const tiny = await get(proxy.port, '/tiny', [GZIP]);
  assert.equal(headerValue(tiny.head, 'content-encoding'), undefined, 'shorter than gzip_min_length');
  assert.equal(headerValue(tiny.head, 'vary'), undefined);
  const bad = await get(proxy.port, '/gone', [GZIP]);
  assert.equal(bad.head.statusCode, 502);
  assert.equal(headerValue(bad.head, 'content-encoding'), undefined);
  const head = await get(proxy.port, '/nowhere', [GZIP], 'HEAD');
  assert.equal(headerValue(head.head, 'content-encoding'), 'gzip');
  assert.equal(head.body.length, 0);
});

test('answers to an upgrade request (relayed refusals and local pages) are compressed like any response, ended by the close', async (t) => {
  const body = Buffer.from(`<html>${'upgrade refused '.repeat(40)}</html>`);
  const backend = await startHttpBackend(undefined, {
    onUpgrade: (_req, socket) => {
      socket.end(`HTTP/1.1 403 Forbidden\r\nContent-Type: text/html\r\nContent-Length: ${body.length}\r\n\r\n${body.toString()}`);
    },
  });
  t.after(() => backend.close());
  const proxy = await startTestProxy(conf(`gzip on;
    server { listen 127.0.0.1:0; location / { proxy_pass http://${backend.addr}; } location /local { return 404; } }`), { t });
  const upgrade = (path: string): Promise<RawResponse> => rawRequest(proxy.port, `GET ${path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n`
    + 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nAccept-Encoding: gzip\r\n\r\n', { until: 'close', timeoutMs: WAIT_MS });
  const refused = await upgrade('/ws');
  assert.equal(refused.head?.statusCode, 403);
  assert.equal(headerValue(refused.head!, 'content-encoding'), 'gzip');
  assert.equal(headerValue(refused.head!, 'content-length'), undefined);
  assert.equal(headerValue(refused.head!, 'connection'), 'close');
  assert.deepEqual(gunzipSync(refused.body), body);
  const local = await upgrade('/local');
  assert.equal(local.head?.statusCode, 404);
  assert.equal(headerValue(local.head!, 'content-encoding'), 'gzip');
  assert.equal(headerValue(local.head!, 'content-length'), undefined);
  assert.equal(headerValue(local.head!, 'connection'), 'close');
  assert.match(gunzipSync(local.body).toString(), /<title>404 Not Found<\/title>/);
});

test('HTTP/2: the compressed response has content-encoding and vary, no content-length, and decompresses to the original', async (t) => {
  const backend = await pageBackend(t);
  const certs = await testCerts();
  const proxy = await startTestProxy(conf(`gzip on; gzip_vary on; brotli on;
    server {
      listen 127.0.0.1:0 ssl http2;
      ssl_certificate ${certs.localhost.certFile};
      ssl_certificate_key ${certs.localhost.keyFile};
      location / { proxy_pass http://${backend.addr}; }
    }`), { t });
  const client = await h2Connect(proxy.port, { ca: certs.ca.cert, timeoutMs: WAIT_MS });
  t.after(() => client.close());
  const gz = await h2Request(client, { ':path': '/page', 'accept-encoding': 'gzip' }, undefined, WAIT_MS);
  assert.equal(gz.status, 200);
  assert.equal(gz.headers['content-encoding'], 'gzip');
  assert.equal(gz.headers['vary'], 'Accept-Encoding');
  assert.equal(gz.headers['content-length'], undefined);
  assert.equal(gz.headers['accept-ranges'], undefined);
  assert.equal(gz.headers['etag'], 'W/"v1"');
  assert.deepEqual(gunzipSync(gz.body), HTML);
  const br = await h2Request(client, { ':path': '/page', 'accept-encoding': 'gzip, deflate, br' }, undefined, WAIT_MS);
  assert.equal(br.headers['content-encoding'], 'br');
  assert.deepEqual(brotliDecompressSync(br.body), HTML);
  const head = await h2Request(client, { ':path': '/page', ':method': 'HEAD', 'accept-encoding': 'gzip' }, undefined, WAIT_MS);
  assert.equal(head.headers['content-encoding'], 'gzip');
  assert.equal(head.body.length, 0);
  const missing = await h2Request(client, { ':path': '/page?status=404&len=10&chunked', 'accept-encoding': 'gzip' }, undefined, WAIT_MS);
  assert.equal(missing.status, 404);
  assert.equal(gunzipSync(missing.body).toString(), HTML.subarray(0, 10).toString());
});

test('a streamed response is flushed as it comes: the client decompresses the first event before the upstream ends', async (t) => {
  let finish: (() => void) | null = null;
  const backend = await startHttpBackend((_req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/event-stream' });
    res.write('data: first event\n\n');
    finish = () => res.end('data: last event\n\n');
  });
  t.after(() => backend.close());
  const proxy = await proxyTo(t, backend, 'gzip on; gzip_types text/event-stream;');
  const res = await gzipResponse(proxy.port, '/events');
  t.after(() => res.destroy());
  assert.equal(res.headers['content-encoding'], 'gzip');
  let text = '';
  const gunzip = createGunzip();
  gunzip.on('data', (c: Buffer) => void (text += c.toString()));
  res.pipe(gunzip);
  await waitFor(() => text.includes('first event') || undefined, { what: 'the first event, decompressed', timeoutMs: WAIT_MS });
  assert.ok(!text.includes('last event'));
  (finish as (() => void) | null)?.();
  await withTimeout(new Promise((resolve) => gunzip.once('end', resolve)), WAIT_MS, 'the end of the stream');
  assert.equal(text, 'data: first event\n\ndata: last event\n\n');
});

test('64 MiB through gzip to a slow reader: backpressure holds the upstream back, and every byte arrives', async (t) => {
  const TOTAL = 64 * 1024 * 1024;
  const CHUNK = 64 * 1024;
  let flushed = 0;
  const sent = createHash('sha256');
  const backend = await startHttpBackend((_req, res) => {
    res.writeHead(200, { 'Content-Type': 'application/octet-stream' });
    let written = 0;
    // Random bytes do not compress: what the client holds back is the size of what was sent.
    const pump = (): void => {
      while (written < TOTAL) {
        const chunk = randomBytes(CHUNK);
        sent.update(chunk);
        written += CHUNK;
        const more = res.write(chunk, () => void (flushed += CHUNK));
        if (!more) {
          res.once('drain', pump);
          return;
        }
      }
      res.end();
    };
    pump();
  });
  t.after(() => backend.close());
  // Streaming (proxy_buffering off): with buffering the upstream would be read into a temp file.
  const proxy = await proxyTo(t, backend, 'gzip on; gzip_types application/octet-stream; proxy_buffering off;');
  const res = await gzipResponse(proxy.port, '/big');
  t.after(() => res.destroy());
  assert.equal(res.headers['content-encoding'], 'gzip');
  res.pause();
  // The client reads nothing: the upstream must come to a stop well short of the body.
  let last = -1;
  let still = 0;
  await waitFor(async () => {
    await delay(100);
    still = flushed === last ? still + 1 : 0;
    last = flushed;
    return still >= 5 || undefined;
  }, { what: 'the upstream to stall while the client does not read', timeoutMs: 30_000 });
  assert.ok(flushed < 32 * 1024 * 1024, `the upstream wrote ${flushed} bytes to a client that read none`);
  const received = createHash('sha256');
  let bytes = 0;
  const gunzip = createGunzip();
  gunzip.on('data', (c: Buffer) => {
    received.update(c);
    bytes += c.length;
  });
  res.pipe(gunzip);
  await withTimeout(new Promise((resolve, reject) => {
    gunzip.once('end', resolve);
    gunzip.once('error', reject);
  }), 60_000, 'the whole body');
  assert.equal(bytes, TOTAL);
  assert.equal(received.digest('hex'), sent.digest('hex'));
});

test('a client that leaves mid-body: the upstream exchange ends and the proxy answers the next request', async (t) => {
  let upstreamClosed = false;
  const backend = await startHttpBackend((req, res) => {
    if (req.url === '/ok') {
      res.writeHead(200, { 'Content-Type': 'text/html', 'Content-Length': HTML.length });
      res.end(HTML);
      return;
    }
    res.writeHead(200, { 'Content-Type': 'text/html' });
    const timer = setInterval(() => res.write(randomBytes(16 * 1024).toString('hex')), 5);
    res.on('close', () => {
      clearInterval(timer);
      upstreamClosed = true;
    });
  });
  t.after(() => backend.close());
  const proxy = await proxyTo(t, backend, 'gzip on;');
  const res = await gzipResponse(proxy.port, '/endless');
  let got = 0;
  await withTimeout(new Promise<void>((resolve) => {
    res.on('data', (c: Buffer) => {
      got += c.length;
      if (got > 64 * 1024) resolve();
    });
  }), WAIT_MS, 'some compressed body');
  res.destroy();
  await waitFor(() => upstreamClosed || undefined, { what: 'the upstream response to be closed', timeoutMs: WAIT_MS });
  const ok = await get(proxy.port, '/ok', [GZIP]);
  assert.deepEqual(gunzipSync(ok.body), HTML);
});

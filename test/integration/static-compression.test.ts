/**
 * Static files through the compression filter and gzip_static / brotli_static, as nginx serves
 * them: a compressible file is compressed (Vary, no Content-Length, weak ETag) and a Range request
 * then gets the whole compressed 200 (nginx's gzip filter turns ranges off), while a client that
 * does not accept gzip gets its 206; FILE.gz / FILE.br are served with their own length and
 * validators and FILE's type. Over HTTP/1.1 and HTTP/2.
 */
import assert from 'node:assert/strict';
import { statSync, utimesSync } from 'node:fs';
import { test } from 'node:test';
import { brotliCompressSync, brotliDecompressSync, gunzipSync, gzipSync } from 'node:zlib';
import { testCerts } from '../helpers/certs.js';
import { conf } from '../helpers/config-text.js';
import { h2Connect, h2Request } from '../helpers/h2-client.js';
import { startTestProxy } from '../helpers/proxy.js';
import { tempDir, type TempDir } from '../helpers/temp.js';
import { get, request } from './static-support.js';

const WAIT_MS = 10_000;
/** A small file (read at once) and one larger than a read chunk (streamed from the file). */
const SMALL = Buffer.from('body { color: red; }\n'.repeat(200));
const LARGE = Buffer.from(Array.from({ length: 40_000 }, (_, i) => `.c${i} { margin: ${i % 97}px; }\n`).join(''));

function site(t: Parameters<typeof tempDir>[0]): TempDir {
  const dir = tempDir(t);
  dir.write('html/small.css', SMALL);
  dir.write('html/large.css', LARGE);
  dir.write('html/pre.css', SMALL);
  dir.write('html/pre.css.gz', gzipSync(SMALL));
  dir.write('html/pre.css.br', brotliCompressSync(SMALL));
  // Only the .gz exists: gzip_static serves it without FILE.
  dir.write('html/only.css.gz', gzipSync(SMALL));
  for (const f of ['small.css', 'pre.css', 'pre.css.gz', 'pre.css.br']) utimesSync(dir.join('html', f), 1609556645, 1609556645);
  return dir;
}

function etagOf(path: string): string {
  const s = statSync(path);
  return `"${Math.floor(s.mtimeMs / 1000).toString(16)}-${s.size.toString(16)}"`;
}

test('gzip on: a static .css file is compressed (Vary, chunked, weak ETag) and gunzips to the file, small and streamed', async (t) => {
  const dir = site(t);
  const proxy = await startTestProxy(conf('types { text/css css; } gzip on; gzip_types text/css; gzip_vary on; server { listen 127.0.0.1:0; }'), { t, prefix: dir.path });
  for (const [name, content] of [['small.css', SMALL], ['large.css', LARGE]] as const) {
    const a = await get(proxy.port, `/${name}`, { 'Accept-Encoding': 'gzip' });
    assert.equal(a.status, 200, name);
    assert.equal(a.header('content-encoding'), 'gzip', name);
    assert.equal(a.header('vary'), 'Accept-Encoding', name);
    assert.equal(a.header('content-length'), undefined, name);
    assert.equal(a.header('accept-ranges'), undefined, name);
    assert.equal(a.header('transfer-encoding'), 'chunked', name);
    assert.equal(a.header('etag'), `W/${etagOf(dir.join('html', name))}`, name);
    assert.equal(a.header('content-type'), 'text/css', name);
    assert.deepEqual(gunzipSync(a.body), content, name);
  }
  // A client that does not accept gzip gets the file as it is, with Vary.
  const plain = await get(proxy.port, '/small.css');
  assert.equal(plain.status, 200);
  assert.equal(plain.header('content-encoding'), undefined);
  assert.equal(plain.header('content-length'), String(SMALL.length));
  assert.equal(plain.header('vary'), 'Accept-Encoding');
  assert.deepEqual(plain.body, SMALL);
  const head = await request(proxy.port, 'HEAD', '/large.css', { 'Accept-Encoding': 'gzip' });
  assert.equal(head.status, 200);
  assert.equal(head.header('content-encoding'), 'gzip');
  assert.equal(head.header('content-length'), undefined);
  assert.equal(head.body.length, 0);
});

test('gzip on: a Range request gets the whole compressed 200 when it compresses, and a 206 (with Vary) when the client does not accept gzip', async (t) => {
  const dir = site(t);
  const proxy = await startTestProxy(conf('types { text/css css; } gzip on; gzip_types text/css; gzip_vary on; server { listen 127.0.0.1:0; }'), { t, prefix: dir.path });
  const whole = await get(proxy.port, '/small.css', { 'Accept-Encoding': 'gzip', Range: 'bytes=0-9' });
  assert.equal(whole.status, 200);
  assert.equal(whole.header('content-range'), undefined);
  assert.equal(whole.header('content-encoding'), 'gzip');
  assert.deepEqual(gunzipSync(whole.body), SMALL);
  const part = await get(proxy.port, '/small.css', { Range: 'bytes=0-9' });
  assert.equal(part.status, 206);
  assert.equal(part.header('content-range'), `bytes 0-9/${SMALL.length}`);
  assert.equal(part.header('content-encoding'), undefined);
  assert.equal(part.header('vary'), 'Accept-Encoding');
  assert.deepEqual(part.body, SMALL.subarray(0, 10));
  // Compressing turns ranges off, so a range no file could satisfy is no 416 either.
  const beyond = await get(proxy.port, '/small.css', { 'Accept-Encoding': 'gzip', Range: `bytes=${SMALL.length + 10}-` });
  assert.equal(beyond.status, 200);
  assert.deepEqual(gunzipSync(beyond.body), SMALL);
});

test('gzip_static on: FILE.gz is served with Content-Encoding gzip, its own length and ETag, FILE\'s type, no ranges; others get FILE', async (t) => {
  const dir = site(t);
  const proxy = await startTestProxy(conf('types { text/css css; } gzip_static on; gzip_vary on; server { listen 127.0.0.1:0; }'), { t, prefix: dir.path });
  const gz = gzipSync(SMALL);
  const a = await get(proxy.port, '/pre.css', { 'Accept-Encoding': 'gzip', Range: 'bytes=0-9' });
  assert.equal(a.status, 200);
  assert.equal(a.header('content-encoding'), 'gzip');
  assert.equal(a.header('content-type'), 'text/css');
  assert.equal(a.header('content-length'), String(gz.length));
  assert.equal(a.header('etag'), etagOf(dir.join('html/pre.css.gz')));
  assert.equal(a.header('accept-ranges'), undefined);
  assert.equal(a.header('vary'), 'Accept-Encoding');
  assert.deepEqual(gunzipSync(a.body), SMALL);
  // The revalidation of FILE.gz: a 304 that still says it varies by Accept-Encoding (as nginx).
  const again = await get(proxy.port, '/pre.css', { 'Accept-Encoding': 'gzip', 'If-None-Match': a.header('etag')! });
  assert.equal(again.status, 304);
  assert.equal(again.header('vary'), 'Accept-Encoding');
  assert.equal(again.header('content-encoding'), undefined);
  const head = await request(proxy.port, 'HEAD', '/pre.css', { 'Accept-Encoding': 'gzip' });
  assert.equal(head.header('content-encoding'), 'gzip');
  assert.equal(head.header('content-length'), String(gz.length));
  assert.equal(head.body.length, 0);
  const plain = await get(proxy.port, '/pre.css');
  assert.equal(plain.header('content-encoding'), undefined);
  assert.equal(plain.header('content-length'), String(SMALL.length));
  assert.equal(plain.header('vary'), 'Accept-Encoding');
  assert.deepEqual(plain.body, SMALL);
  const only = await get(proxy.port, '/only.css', { 'Accept-Encoding': 'gzip' });
  assert.equal(only.status, 200);
  assert.deepEqual(gunzipSync(only.body), SMALL);
  assert.equal((await get(proxy.port, '/only.css')).status, 404);
});

test('gzip_static always serves FILE.gz to every client; brotli_static serves FILE.br to a client that accepts br', async (t) => {
  const dir = site(t);
  const proxy = await startTestProxy(conf(`server {
      listen 127.0.0.1:0;
      location /a/ { alias html/; gzip_static always; }
      location / { brotli_static on; gzip_static on; }
    }`), { t, prefix: dir.path });
  const always = await get(proxy.port, '/a/pre.css');
  assert.equal(always.status, 200);
  assert.equal(always.header('content-encoding'), 'gzip');
  assert.deepEqual(gunzipSync(always.body), SMALL);
  const br = await get(proxy.port, '/pre.css', { 'Accept-Encoding': 'gzip, br' });
  assert.equal(br.header('content-encoding'), 'br');
  assert.equal(br.header('content-length'), String(statSync(dir.join('html/pre.css.br')).size));
  assert.equal(br.header('etag'), etagOf(dir.join('html/pre.css.br')));
  assert.deepEqual(brotliDecompressSync(br.body), SMALL);
  const gz = await get(proxy.port, '/pre.css', { 'Accept-Encoding': 'gzip' });
  assert.equal(gz.header('content-encoding'), 'gzip');
});

test('HTTP/2: a static file is gzip-compressed and a Range request then gets the whole 200; gzip_static serves FILE.gz', async (t) => {
  const dir = site(t);
  const certs = await testCerts();
  const proxy = await startTestProxy(conf(`types { text/css css; } gzip on; gzip_types text/css; gzip_static on;
    server {
      listen 127.0.0.1:0 ssl http2;
      ssl_certificate ${certs.localhost.certFile};
      ssl_certificate_key ${certs.localhost.keyFile};
    }`), { t, prefix: dir.path });
  const client = await h2Connect(proxy.port, { ca: certs.ca.cert, timeoutMs: WAIT_MS });
  t.after(() => client.close());
  const a = await h2Request(client, { ':path': '/large.css', 'accept-encoding': 'gzip', range: 'bytes=0-9' }, undefined, WAIT_MS);
  assert.equal(a.status, 200);
  assert.equal(a.headers['content-encoding'], 'gzip');
  assert.equal(a.headers['content-length'], undefined);
  assert.deepEqual(gunzipSync(a.body), LARGE);
  const part = await h2Request(client, { ':path': '/large.css', range: 'bytes=0-9' }, undefined, WAIT_MS);
  assert.equal(part.status, 206);
  assert.deepEqual(part.body, LARGE.subarray(0, 10));
  const pre = await h2Request(client, { ':path': '/pre.css', 'accept-encoding': 'gzip' }, undefined, WAIT_MS);
  assert.equal(pre.headers['content-encoding'], 'gzip');
  assert.equal(pre.headers['content-length'], String(gzipSync(SMALL).length));
  assert.deepEqual(gunzipSync(pre.body), SMALL);
});

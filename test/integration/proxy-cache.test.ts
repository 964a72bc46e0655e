/**
 * proxy_cache (issue 19): real backends that count what reaches them, a proxy caching into a
 * temp directory, and `X-Cache-Status: $upstream_cache_status` on every answer. MISS then HIT,
 * what keeps a response out of the cache (Cache-Control, Set-Cookie, Vary: *, proxy_no_cache,
 * proxy_cache_valid, proxy_buffering off, an upgrade), what changes when it is stored
 * (proxy_ignore_headers, proxy_cache_min_uses, proxy_cache_methods, X-Accel-Expires), BYPASS,
 * EXPIRED, Vary variants, HEAD converted to GET, conditional and range requests answered from an
 * entry, a large body streamed while it is written, an upstream cut short, and the entries'
 * nginx layout on disk.
 */
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { startHttpBackend } from '../helpers/backends.js';
import { conf } from '../helpers/config-text.js';
import { startTestProxy } from '../helpers/proxy.js';
import { headerValue, rawRequest, sendRequest } from '../helpers/raw-client.js';
import { tempDir } from '../helpers/temp.js';
import { parsePrometheus, sampleValue } from '../helpers/prometheus.js';
import { waitFor } from '../helpers/wait.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** A backend answering with `handler`, counting requests by path. */
async function countingBackend(t: TestContext, handler: Handler) {
  const hits = new Map<string, number>();
  const methods: string[] = [];
  const seen: IncomingMessage['headers'][] = [];
  const backend = await startHttpBackend((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    hits.set(path, (hits.get(path) ?? 0) + 1);
    methods.push(req.method ?? '');
    seen.push(req.headers);
    handler(req, res);
  });
  t.after(() => backend.close());
  return { backend, hits: (p: string) => hits.get(p) ?? 0, methods, seen };
}

/** Answers `body of PATH` with the headers the query asks for (`?h=Name:Value&h=...`). */
const echoHandler: Handler = (req, res) => {
  const url = new URL(req.url ?? '/', 'http://x');
  const headers: Record<string, string | string[]> = { 'Content-Type': 'text/plain' };
  for (const h of url.searchParams.getAll('h')) {
    const at = h.indexOf(':');
    const name = h.slice(0, at);
    const value = h.slice(at + 1);
    const had = headers[name];
    headers[name] = had === undefined ? value : [...(Array.isArray(had) ? had : [had]), value];
  }
  const status = Number(url.searchParams.get('status') ?? '200');
  res.writeHead(status, headers);
  res.end(`body of ${url.pathname}`);
};

/** A caching proxy in front of `port`; `location` lines go in `location /`, `http` lines in http {}. */
async function cachingProxy(t: TestContext, port: number, location = '', http = '') {
  const dir = tempDir(t, 'sluice-cache-');
  const cachePath = join(dir.path, 'cache');
  const proxy = await startTestProxy(conf(`
  proxy_cache_path ${cachePath} levels=1:2 keys_zone=zone1:1m;
  proxy_temp_path ${join(dir.path, 'temp')};
  ${http}
  server {
    listen 127.0.0.1:0;
    location / {
      proxy_pass http://127.0.0.1:${port};
      proxy_cache zone1;
      proxy_cache_valid 200 10m;
      add_header X-Cache-Status $upstream_cache_status always;
      ${location}
    }
  }`), { t, prefix: dir.path });
  return { proxy, cachePath };
}

async function get(port: number, path: string, headers: readonly string[] = [], method = 'GET') {
  const r = await sendRequest(port, path, ['Host: localhost', ...headers], { method });
  return { status: r.status, cache: headerValue(r.head, 'x-cache-status') ?? '', body: r.body, head: r.head, bytes: r.bytes };
}

test('MISS then HIT: the upstream is asked once, the entry is md5(key) under levels=1:2 and the body the same', async (t) => {
  const b = await countingBackend(t, echoHandler);
  const { proxy, cachePath } = await cachingProxy(t, b.backend.port);
  const first = await get(proxy.port, '/a?x=1');
  assert.equal(first.status, 200);
  assert.equal(first.cache, 'MISS');
  assert.equal(first.body, 'body of /a');
  const second = await get(proxy.port, '/a?x=1');
  assert.equal(second.cache, 'HIT');
  assert.equal(second.body, 'body of /a');
  assert.equal(headerValue(second.head, 'content-type'), 'text/plain');
  // The upstream sent it chunked: so does the hit, as nginx's (no Content-Length to give).
  assert.equal(headerValue(second.head, 'content-length'), undefined);
  assert.equal(headerValue(second.head, 'transfer-encoding'), 'chunked');
  assert.equal(b.hits('/a'), 1);
  // Another URI is another key.
  assert.equal((await get(proxy.port, '/a?x=2')).cache, 'MISS');
  const md5 = createHash('md5').update(`http127.0.0.1:${b.backend.port}/a?x=1`).digest('hex');
  assert.ok(existsSync(join(cachePath, md5.slice(-1), md5.slice(-3, -1), md5)), `entry ${md5} in ${cachePath}`);
});

test('Cache-Control no-store, private and no-cache, Set-Cookie and Vary: * keep a response out; proxy_ignore_headers lets it in', async (t) => {
  const b = await countingBackend(t, echoHandler);
  const { proxy } = await cachingProxy(t, b.backend.port);
  for (const q of ['h=Cache-Control:no-store', 'h=Cache-Control:private', 'h=Cache-Control:no-cache', 'h=Set-Cookie:a=1', 'h=Vary:*', 'h=Cache-Control:max-age=0', 'h=Expires:Thu, 01 Jan 1970 00:00:00 GMT', 'h=X-Accel-Expires:0']) {
    assert.equal((await get(proxy.port, `/n?${encodeQuery(q)}`)).cache, 'MISS', q);
    assert.equal((await get(proxy.port, `/n?${encodeQuery(q)}`)).cache, 'MISS', q);
  }
  assert.equal(b.hits('/n'), 16);
  const ignoring = await cachingProxy(t, b.backend.port, 'proxy_ignore_headers Set-Cookie Cache-Control;');
  assert.equal((await get(ignoring.proxy.port, '/i?h=Set-Cookie:a=1&h=Cache-Control:no-store')).cache, 'MISS');
  const hit = await get(ignoring.proxy.port, '/i?h=Set-Cookie:a=1&h=Cache-Control:no-store');
  assert.equal(hit.cache, 'HIT');
  // nginx stores the Set-Cookie it was told to ignore, and sends it with every hit.
  assert.equal(headerValue(hit.head, 'set-cookie'), 'a=1');
});

test('Cache-Control max-age, Expires and X-Accel-Expires make a response cacheable, a 404 without a proxy_cache_valid line for it', async (t) => {
  const b = await countingBackend(t, echoHandler);
  const { proxy } = await cachingProxy(t, b.backend.port);
  const future = new Date(Date.now() + 3600_000).toUTCString();
  let i = 0;
  for (const q of ['h=Cache-Control:public, max-age=60', 'h=Cache-Control:s-maxage=60', `h=Expires:${future}`, 'h=X-Accel-Expires:60', 'h=X-Accel-Expires:60&h=Cache-Control:no-store', 'status=404&h=Cache-Control:max-age=60']) {
    const path = `/v${i++}`;
    const target = `${path}?${encodeQuery(q)}`;
    assert.equal((await get(proxy.port, target)).cache, 'MISS', q);
    const hit = await get(proxy.port, target);
    assert.equal(hit.cache, 'HIT', q);
    // X-Accel-Expires is nginx's own: hidden from the client, on a hit too.
    assert.equal(headerValue(hit.head, 'x-accel-expires'), undefined);
  }
});

test('proxy_cache_valid by status: 404 cached only where a line names it; `any` for every status', async (t) => {
  const b = await countingBackend(t, echoHandler);
  const plain = await cachingProxy(t, b.backend.port);
  await get(plain.proxy.port, '/p?status=404');
  const again = await get(plain.proxy.port, '/p?status=404');
  assert.equal(again.status, 404);
  assert.equal(again.cache, 'MISS');
  const any = await cachingProxy(t, b.backend.port, 'proxy_cache_valid 200 1m; proxy_cache_valid any 1m;');
  await get(any.proxy.port, '/q?status=404');
  const hit = await get(any.proxy.port, '/q?status=404');
  assert.equal(hit.status, 404);
  assert.equal(hit.cache, 'HIT');
  assert.equal(hit.body, 'body of /q');
});

test('proxy_cache_bypass answers from upstream (BYPASS) and still stores; proxy_no_cache stores nothing', async (t) => {
  const b = await countingBackend(t, echoHandler);
  const { proxy } = await cachingProxy(t, b.backend.port, 'proxy_cache_bypass $arg_nocache; proxy_no_cache $http_x_no_store;');
  assert.equal((await get(proxy.port, '/b?nocache=1')).cache, 'BYPASS');
  assert.equal((await get(proxy.port, '/b?nocache=1')).cache, 'BYPASS');
  assert.equal(b.hits('/b'), 2);
  // The bypassed response was stored under its key (the query is part of it).
  assert.equal((await get(proxy.port, '/b?nocache=0')).cache, 'MISS');
  assert.equal((await get(proxy.port, '/b?nocache=0')).cache, 'HIT');
  assert.equal((await get(proxy.port, '/s', ['X-No-Store: 1'])).cache, 'MISS');
  assert.equal((await get(proxy.port, '/s')).cache, 'MISS');
  assert.equal((await get(proxy.port, '/s')).cache, 'HIT');
});

test('proxy_cache_min_uses 3: stored on the third request for a key', async (t) => {
  const b = await countingBackend(t, echoHandler);
  const { proxy } = await cachingProxy(t, b.backend.port, 'proxy_cache_min_uses 3;');
  const seen = [];
  for (let i = 0; i < 4; i++) seen.push((await get(proxy.port, '/m')).cache);
  assert.deepEqual(seen, ['MISS', 'MISS', 'MISS', 'HIT']);
});

test('proxy_cache_methods: POST is not cached by default (no cache status), is with POST listed', async (t) => {
  const b = await countingBackend(t, echoHandler);
  const plain = await cachingProxy(t, b.backend.port);
  const p1 = await sendRequest(plain.proxy.port, '/post', ['Host: localhost'], { method: 'POST', body: 'x' });
  // add_header sends nothing for an empty value.
  assert.equal(headerValue(p1.head, 'x-cache-status'), undefined);
  const withPost = await cachingProxy(t, b.backend.port, 'proxy_cache_methods POST;');
  const a = await sendRequest(withPost.proxy.port, '/post2', ['Host: localhost'], { method: 'POST', body: 'x' });
  const c = await sendRequest(withPost.proxy.port, '/post2', ['Host: localhost'], { method: 'POST', body: 'x' });
  assert.deepEqual([headerValue(a.head, 'x-cache-status'), headerValue(c.head, 'x-cache-status')], ['MISS', 'HIT']);
  assert.equal(b.hits('/post2'), 1);
});

test('HEAD goes upstream as GET (proxy_cache_convert_head) and the stored body serves a later GET; off sends HEAD', async (t) => {
  const b = await countingBackend(t, echoHandler);
  const { proxy } = await cachingProxy(t, b.backend.port);
  const head = await rawRequest(proxy.port, 'HEAD /h HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
  assert.equal(headerValue(head.head!, 'x-cache-status'), 'MISS');
  assert.equal(head.body.length, 0);
  assert.deepEqual(b.methods, ['GET']);
  const got = await get(proxy.port, '/h');
  assert.equal(got.cache, 'HIT');
  assert.equal(got.body, 'body of /h');
  const headHit = await rawRequest(proxy.port, 'HEAD /h HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
  assert.equal(headerValue(headHit.head!, 'x-cache-status'), 'HIT');
  assert.equal(headerValue(headHit.head!, 'content-length'), undefined);
  assert.equal(headHit.body.length, 0);
  const off = await cachingProxy(t, b.backend.port, 'proxy_cache_convert_head off;');
  await rawRequest(off.proxy.port, 'HEAD /h2 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
  assert.equal(b.methods.at(-1), 'HEAD');
});

test('Vary: each variant of the request headers it names is its own entry', async (t) => {
  const b = await countingBackend(t, (req, res) => {
    res.writeHead(200, { Vary: 'Accept-Language', 'Content-Type': 'text/plain' });
    res.end(`lang ${req.headers['accept-language'] ?? 'none'}`);
  });
  const { proxy } = await cachingProxy(t, b.backend.port);
  const en1 = await get(proxy.port, '/v', ['Accept-Language: en']);
  const fr1 = await get(proxy.port, '/v', ['Accept-Language: fr']);
  const en2 = await get(proxy.port, '/v', ['Accept-Language: en']);
  const fr2 = await get(proxy.port, '/v', ['Accept-Language: fr']);
  assert.deepEqual([en1.cache, fr1.cache, en2.cache, fr2.cache], ['MISS', 'MISS', 'HIT', 'HIT']);
  assert.deepEqual([en2.body, fr2.body], ['lang en', 'lang fr']);
  assert.equal(b.hits('/v'), 2);
});

test('a hit answers If-None-Match with 304 (without the body\'s headers); the conditions do not go upstream', async (t) => {
  const b = await countingBackend(t, (_req, res) => {
    res.writeHead(200, { ETag: '"v1"', 'Content-Type': 'text/plain', 'Content-Length': '10' });
    res.end('0123456789');
  });
  const { proxy } = await cachingProxy(t, b.backend.port);
  await get(proxy.port, '/r', ['If-None-Match: "zz"']);
  assert.equal(b.seen[0]!['if-none-match'], undefined);
  const notModified = await get(proxy.port, '/r', ['If-None-Match: "v1"']);
  assert.deepEqual([notModified.status, notModified.cache], [304, 'HIT']);
  // nginx's not_modified filter takes the type and length away.
  assert.equal(headerValue(notModified.head, 'content-type'), undefined);
  assert.equal(headerValue(notModified.head, 'content-length'), undefined);
  assert.equal(b.hits('/r'), 1);
});

test('a large body streams to the client while it is written; the hit is the same bytes; a body cut short is not stored', async (t) => {
  const big = randomBytes(3 * 1024 * 1024);
  const b = await countingBackend(t, (req, res) => {
    if (req.url === '/cut') {
      res.writeHead(200, { 'Content-Length': String(big.length) });
      res.write(big.subarray(0, 100_000));
      setImmediate(() => res.socket?.destroy());
      return;
    }
    res.writeHead(200, { 'Content-Length': String(big.length) });
    res.end(big);
  });
  const { proxy, cachePath } = await cachingProxy(t, b.backend.port);
  const sha = (x: Buffer): string => createHash('sha256').update(x).digest('hex');
  const first = await get(proxy.port, '/big');
  assert.equal(first.cache, 'MISS');
  assert.equal(sha(first.bytes), sha(big));
  const second = await get(proxy.port, '/big');
  assert.equal(second.cache, 'HIT');
  assert.equal(sha(second.bytes), sha(big));
  await rawRequest(proxy.port, 'GET /cut HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
  await rawRequest(proxy.port, 'GET /cut HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
  assert.equal(b.hits('/cut'), 2);
  // Only the one complete entry is on disk, and no temp file is left.
  assert.equal(listFiles(cachePath).length, 1);
  await waitFor(() => listFiles(join(cachePath, '..', 'temp')).length === 0);
});

test('proxy_buffering off: nothing is stored (nginx caches what its event pipe buffers)', async (t) => {
  const b = await countingBackend(t, echoHandler);
  const { proxy } = await cachingProxy(t, b.backend.port, 'proxy_buffering off;');
  assert.equal((await get(proxy.port, '/u')).cache, 'MISS');
  assert.equal((await get(proxy.port, '/u')).cache, 'MISS');
});

test('an entry past its time is EXPIRED: fetched again and replaced', async (t) => {
  const b = await countingBackend(t, (_req, res) => {
    // Valid until the next whole second: soon EXPIRED, without a fixed sleep.
    res.writeHead(200, { 'X-Accel-Expires': `@${Math.floor(Date.now() / 1000) + 1}` });
    res.end('e');
  });
  const { proxy } = await cachingProxy(t, b.backend.port);
  assert.equal((await get(proxy.port, '/e')).cache, 'MISS');
  // nginx counts whole seconds: fresh through the second it names, expired the one after.
  const until = (Math.floor(Date.now() / 1000) + 2) * 1000;
  await waitFor(() => Date.now() >= until + 10, { timeoutMs: 4000 });
  assert.equal((await get(proxy.port, '/e')).cache, 'EXPIRED');
  assert.equal(b.hits('/e'), 2);
});

test('an upgrade through a caching location is a tunnel, never cached; the cache status is empty', async (t) => {
  const b = await countingBackend(t, echoHandler);
  const { proxy } = await cachingProxy(t, b.backend.port, 'proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection "upgrade";');
  const req = 'GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n';
  const r1 = await rawRequest(proxy.port, req, { until: '\r\n\r\n' });
  assert.equal(r1.head?.statusCode, 101);
  assert.equal(headerValue(r1.head!, 'x-cache-status'), undefined);
});

test('the manager removes the least recently used entries over max_size', async (t) => {
  const b = await countingBackend(t, (_req, res) => res.end(Buffer.alloc(40 * 1024, 1)));
  const small = await cachingProxyWith(t, b.backend.port, 'max_size=100k');
  for (const p of ['/1', '/2', '/3', '/4']) assert.equal((await get(small.proxy.port, p)).cache, 'MISS');
  await waitFor(() => listFiles(small.cachePath).length <= 2);
  // The most recent entry stays.
  assert.equal((await get(small.proxy.port, '/4')).cache, 'HIT');
  assert.equal((await get(small.proxy.port, '/1')).cache, 'MISS');
});

test('metrics: hits, misses, bytes from cache, stores, size and entries by zone', async (t) => {
  const b = await countingBackend(t, echoHandler);
  const dir = tempDir(t, 'sluice-cache-');
  const proxy = await startTestProxy(conf(`
  proxy_cache_path ${join(dir.path, 'cache')} keys_zone=metered${b.backend.port}:1m;
  server {
    listen 127.0.0.1:0;
    location = /metrics { sluice_metrics; }
    location / { proxy_pass http://127.0.0.1:${b.backend.port}; proxy_cache metered${b.backend.port}; proxy_cache_valid 200 1m; }
  }`), { t, prefix: dir.path });
  await get(proxy.port, '/x');
  await get(proxy.port, '/x');
  await get(proxy.port, '/x');
  const families = parsePrometheus((await get(proxy.port, '/metrics')).body);
  const zone = `metered${b.backend.port}`;
  assert.equal(sampleValue(families, 'sluice_cache_requests_total', { zone, result: 'hit' }), 2);
  assert.equal(sampleValue(families, 'sluice_cache_requests_total', { zone, result: 'miss' }), 1);
  assert.equal(sampleValue(families, 'sluice_cache_sent_bytes_total', { zone }), 2 * 'body of /x'.length);
  assert.equal(sampleValue(families, 'sluice_cache_stores_total', { zone }), 1);
  assert.equal(sampleValue(families, 'sluice_cache_entries', { zone }), 1);
  assert.ok((sampleValue(families, 'sluice_cache_size_bytes', { zone }) ?? 0) > 'body of /x'.length);
});

/** A caching proxy whose proxy_cache_path has `params` too. */
async function cachingProxyWith(t: TestContext, port: number, params: string) {
  const dir = tempDir(t, 'sluice-cache-');
  const cachePath = join(dir.path, 'cache');
  const proxy = await startTestProxy(conf(`
  proxy_cache_path ${cachePath} keys_zone=z${port}x:1m ${params};
  server {
    listen 127.0.0.1:0;
    location / {
      proxy_pass http://127.0.0.1:${port};
      proxy_cache z${port}x;
      proxy_cache_valid 200 10m;
      add_header X-Cache-Status $upstream_cache_status always;
    }
  }`), { t, prefix: dir.path });
  return { proxy, cachePath };
}

/** `a=b c&d=e` with each value percent-encoded. */
function encodeQuery(q: string): string {
  return q.split('&').map((p) => {
    const at = p.indexOf('=');
    return `${p.slice(0, at)}=${encodeURIComponent(p.slice(at + 1))}`;
  }).join('&');
}

/** Every file under `dir` (recursively), or none when it does not exist. */
function listFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) if (e.isFile()) out.push(e.name);
  return out;
}

/**
 * Responses from the cache go through the response filters a relayed response goes through
 * (issue 19), as nginx sends a cached response through its whole filter chain: gzip (and brotli)
 * compress a stored uncompressed response for a client that accepts it, under gzip_types,
 * gzip_min_length, gzip_vary and gzip_proxied; the range filter steps aside for a compressed hit
 * (the whole compressed 200, as from nginx 1.22: test/e2e/proxy-cache.e2e.test.ts); SSI processes
 * a stored page on every hit; an expired entry answering (STALE) is compressed too.
 */
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { startHttpBackend } from '../helpers/backends.js';
import { conf } from '../helpers/config-text.js';
import { startTestProxy } from '../helpers/proxy.js';
import { tempDir } from '../helpers/temp.js';
import { cacheGet } from './proxy-cache-support.js';
import { waitFor } from '../helpers/wait.js';

const TEXT = 'a stored body of plain text that compresses well. '.repeat(20);
const GZ = 'Accept-Encoding: gzip';

interface Upstream {
  port: number;
  hits: number;
  failing: boolean;
  /** The last X-Accel-Expires sent (ms): the entry is valid through that second. */
  expires: number;
}

/**
 * Answers TEXT with a Content-Length, Accept-Ranges, a strong ETag; `/small` a short body, `/png`
 * an image type, `/chunked` no length, `/ssi` a page with an SSI echo, `/soon` an entry that
 * expires at the next whole second. While `failing`, it closes the connection.
 */
async function upstream(t: TestContext): Promise<Upstream> {
  const u: Upstream = { port: 0, hits: 0, failing: false, expires: 0 };
  const b = await startHttpBackend((req, res) => {
    u.hits++;
    if (u.failing) {
      req.socket.destroy();
      return;
    }
    const p = new URL(req.url ?? '/', 'http://x').pathname;
    const body = p.endsWith('/small') ? 'short' : p.endsWith('/ssi') ? '<p>arg x is <!--# echo var="arg_x" default="none" --></p>' : TEXT;
    const headers: Record<string, string> = {
      'Content-Type': p.endsWith('/png') ? 'image/png' : p.endsWith('/ssi') ? 'text/html' : 'text/plain',
      ETag: '"s1"', 'Accept-Ranges': 'bytes',
    };
    if (p.endsWith('/soon')) {
      const at = Math.floor(Date.now() / 1000) + 1;
      u.expires = at * 1000;
      headers['X-Accel-Expires'] = `@${at}`;
    }
    if (!p.endsWith('/chunked')) headers['Content-Length'] = String(Buffer.byteLength(body));
    res.writeHead(200, headers);
    res.end(body);
  });
  u.port = b.port;
  t.after(() => b.close());
  return u;
}

async function cachingProxy(t: TestContext, port: number) {
  const dir = tempDir(t, 'sluice-cache-filters-');
  return startTestProxy(conf(`
  proxy_cache_path ${join(dir.path, 'cache')} levels=1:2 keys_zone=zone1:1m;
  proxy_temp_path ${join(dir.path, 'temp')};
  server {
    listen 127.0.0.1:0;
    add_header X-Cache-Status $upstream_cache_status always;
    proxy_cache zone1;
    proxy_cache_valid 200 10m;
    gzip on; gzip_types text/plain; gzip_min_length 20; gzip_vary on;
    location / { proxy_pass http://127.0.0.1:${port}; }
    location /any/ { proxy_pass http://127.0.0.1:${port}; gzip_proxied any; gzip_vary off; }
    location /br/ { proxy_pass http://127.0.0.1:${port}; brotli on; brotli_types text/plain; }
    location /ssi/ { proxy_pass http://127.0.0.1:${port}; ssi on; proxy_cache_key $uri; }
    location /stale/ { proxy_pass http://127.0.0.1:${port}; proxy_cache_use_stale error; }
  }`), { t, prefix: dir.path });
}

const get = cacheGet;

test('a hit is compressed for a client that accepts gzip (the same body once gunzipped) and sent as stored to one that does not', async (t) => {
  const u = await upstream(t);
  const proxy = await cachingProxy(t, u.port);
  const miss = await get(proxy.port, '/a');
  assert.equal(miss.cache, 'MISS');
  assert.equal(miss.h('content-encoding'), undefined);

  const gz = await get(proxy.port, '/a', [GZ]);
  assert.equal(gz.cache, 'HIT');
  assert.equal(gz.status, 200);
  assert.equal(gz.h('content-encoding'), 'gzip');
  assert.equal(gz.h('content-length'), undefined);
  assert.equal(gz.h('transfer-encoding'), 'chunked');
  assert.equal(gz.h('accept-ranges'), undefined);
  assert.equal(gz.h('etag'), 'W/"s1"');
  assert.equal(gz.h('vary'), 'Accept-Encoding');
  assert.ok(gz.bytes.length < TEXT.length / 4, `compressed: ${gz.bytes.length} bytes`);
  assert.equal(gunzipSync(gz.bytes).toString(), TEXT);

  const plainHit = await get(proxy.port, '/a');
  assert.equal(plainHit.cache, 'HIT');
  assert.equal(plainHit.h('content-encoding'), undefined);
  assert.equal(plainHit.h('content-length'), String(TEXT.length));
  assert.equal(plainHit.h('etag'), '"s1"');
  // gzip_vary: the filter considered the response, whatever this client gets.
  assert.equal(plainHit.h('vary'), 'Accept-Encoding');
  assert.equal(plainHit.bytes.toString(), TEXT);

  // HEAD gets the head a GET would: compressed, no length.
  const head = await get(proxy.port, '/a', [GZ], 'HEAD');
  assert.equal(head.cache, 'HIT');
  assert.equal(head.h('content-encoding'), 'gzip');
  assert.equal(head.h('content-length'), undefined);
  assert.equal(u.hits, 1);
});

test('a response compressed on its miss is stored uncompressed: its hit for a client without gzip is the plain body', async (t) => {
  const u = await upstream(t);
  const proxy = await cachingProxy(t, u.port);
  const miss = await get(proxy.port, '/b', [GZ]);
  assert.equal(miss.cache, 'MISS');
  assert.equal(miss.h('content-encoding'), 'gzip');
  assert.equal(gunzipSync(miss.bytes).toString(), TEXT);
  const plain = await get(proxy.port, '/b');
  assert.equal(plain.cache, 'HIT');
  assert.equal(plain.h('content-encoding'), undefined);
  assert.equal(plain.bytes.toString(), TEXT);
  const chunked = [await get(proxy.port, '/c/chunked', [GZ]), await get(proxy.port, '/c/chunked', [GZ])];
  assert.deepEqual(chunked.map((r) => [r.cache, r.h('content-encoding'), gunzipSync(r.bytes).toString()]), [['MISS', 'gzip', TEXT], ['HIT', 'gzip', TEXT]]);
  assert.equal(u.hits, 2);
});

test('gzip_min_length and gzip_types hold on hits, and gzip_proxied decides for a request with Via', async (t) => {
  const u = await upstream(t);
  const proxy = await cachingProxy(t, u.port);
  for (const path of ['/small', '/png']) {
    await get(proxy.port, path);
    const hit = await get(proxy.port, path, [GZ]);
    assert.equal(hit.cache, 'HIT', path);
    assert.equal(hit.h('content-encoding'), undefined, path);
    assert.equal(hit.h('vary'), undefined, path);
    assert.ok(hit.h('content-length') !== undefined, path);
  }
  await get(proxy.port, '/a');
  // gzip_proxied off (the default): a request through another proxy gets it uncompressed.
  const via = await get(proxy.port, '/a', [GZ, 'Via: 1.1 cdn']);
  assert.equal(via.cache, 'HIT');
  assert.equal(via.h('content-encoding'), undefined);
  assert.equal(via.h('vary'), 'Accept-Encoding');
  await get(proxy.port, '/any/a');
  const any = await get(proxy.port, '/any/a', [GZ, 'Via: 1.1 cdn']);
  assert.equal(any.cache, 'HIT');
  assert.equal(any.h('content-encoding'), 'gzip');
  // gzip_vary off there.
  assert.equal(any.h('vary'), undefined);
  assert.equal(gunzipSync(any.bytes).toString(), TEXT);
});

test('a Range on a hit: the whole compressed 200 for a gzip client (as nginx), a 206 with Vary for one without', async (t) => {
  const u = await upstream(t);
  const proxy = await cachingProxy(t, u.port);
  await get(proxy.port, '/r');
  const gz = await get(proxy.port, '/r', [GZ, 'Range: bytes=0-3']);
  assert.equal(gz.cache, 'HIT');
  assert.equal(gz.status, 200);
  assert.equal(gz.h('content-encoding'), 'gzip');
  assert.equal(gz.h('content-range'), undefined);
  assert.equal(gunzipSync(gz.bytes).toString(), TEXT);
  // A range the body cannot satisfy: no 416 either, the filter never sees it.
  const beyond = await get(proxy.port, '/r', [GZ, 'Range: bytes=99999-']);
  assert.equal(beyond.status, 200);
  assert.equal(beyond.h('content-encoding'), 'gzip');
  const plain = await get(proxy.port, '/r', ['Range: bytes=0-3']);
  assert.equal(plain.status, 206);
  assert.equal(plain.h('content-range'), `bytes 0-3/${TEXT.length}`);
  assert.equal(plain.h('vary'), 'Accept-Encoding');
  assert.equal(plain.bytes.toString(), TEXT.slice(0, 4));
  // The not_modified filter runs before gzip: the stored strong ETag answers 304.
  const cond = await get(proxy.port, '/r', [GZ, 'If-None-Match: "s1"']);
  assert.equal(cond.status, 304);
  assert.equal(cond.h('content-encoding'), undefined);
});

test('brotli compresses a hit for a client that accepts it', async (t) => {
  const u = await upstream(t);
  const proxy = await cachingProxy(t, u.port);
  await get(proxy.port, '/br/a');
  const br = await get(proxy.port, '/br/a', ['Accept-Encoding: gzip, br']);
  assert.equal(br.cache, 'HIT');
  assert.equal(br.h('content-encoding'), 'br');
  assert.equal(brotliDecompressSync(br.bytes).toString(), TEXT);
});

test('SSI processes a stored page on every hit', async (t) => {
  const u = await upstream(t);
  const proxy = await cachingProxy(t, u.port);
  const miss = await get(proxy.port, '/ssi/ssi?x=one');
  assert.equal(miss.cache, 'MISS');
  assert.equal(miss.bytes.toString(), '<p>arg x is one</p>');
  const hit = await get(proxy.port, '/ssi/ssi?x=two');
  assert.equal(hit.cache, 'HIT');
  assert.equal(hit.bytes.toString(), '<p>arg x is two</p>');
  assert.equal(hit.h('content-length'), undefined);
  assert.equal(hit.h('etag'), undefined);
  assert.equal(u.hits, 1);
});

test('an expired entry answering for a failed upstream (STALE) is compressed too', async (t) => {
  const u = await upstream(t);
  const proxy = await cachingProxy(t, u.port);
  const stored = await get(proxy.port, '/stale/soon');
  assert.equal(stored.cache, 'MISS');
  // Valid through the second X-Accel-Expires names (nginx compares whole seconds).
  await waitFor(() => Date.now() >= u.expires + 1050, { timeoutMs: 4000, what: 'the entry to expire' });
  u.failing = true;
  const stale = await get(proxy.port, '/stale/soon', [GZ]);
  assert.equal(stale.cache, 'STALE');
  assert.equal(stale.h('content-encoding'), 'gzip');
  assert.equal(gunzipSync(stale.bytes).toString(), TEXT);
});

/**
 * Ranges and conditions on responses the cache takes part in (issue 19), as nginx 1.22 answers
 * them (test/e2e/proxy-cache.e2e.test.ts compares side by side): the range filter acts where the
 * upstream sent Accept-Ranges and a Content-Length; a hit answers one range (206), several
 * (multipart/byteranges), none it can satisfy (416) and honours If-Range; a miss sends neither
 * Range nor the conditions upstream, cuts one range from the response while the whole of it is
 * stored, and answers If-None-Match with 304; proxy_cache_min_uses and
 * proxy_cache_max_range_offset make the request uncacheable, and it then goes upstream as it is.
 */
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { startHttpBackend } from '../helpers/backends.js';
import { conf } from '../helpers/config-text.js';
import { startTestProxy } from '../helpers/proxy.js';
import { sendRequest } from '../helpers/raw-client.js';
import { tempDir } from '../helpers/temp.js';
import { cacheGet } from './proxy-cache-support.js';

const BODY = '0123456789abcdefghij';
const LAST_MODIFIED = 'Thu, 01 Jan 2026 00:00:00 GMT';

/**
 * A backend answering BODY with a Content-Length, an ETag and Last-Modified, and Accept-Ranges
 * unless the path has `noar` (`chunked`: no length); it answers a Range itself only on `/honour`
 * paths, and records the Range it saw.
 */
async function rangeBackend(t: TestContext) {
  const hits = new Map<string, number>();
  const ranges: (string | undefined)[] = [];
  const backend = await startHttpBackend((req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    hits.set(path, (hits.get(path) ?? 0) + 1);
    ranges.push(req.headers.range);
    const headers: Record<string, string> = { 'Content-Type': 'text/plain', ETag: '"v1"', 'Last-Modified': LAST_MODIFIED };
    if (!path.includes('noar')) headers['Accept-Ranges'] = 'bytes';
    if (path.includes('nostore')) headers['Cache-Control'] = 'no-store';
    if (req.headers.range !== undefined && path.includes('honour')) {
      res.writeHead(206, { ...headers, 'Content-Range': `bytes 0-1/${BODY.length}`, 'Content-Length': '2' });
      res.end(BODY.slice(0, 2));
      return;
    }
    if (!path.includes('chunked')) headers['Content-Length'] = String(BODY.length);
    res.writeHead(200, headers);
    res.end(BODY);
  });
  t.after(() => backend.close());
  return { port: backend.port, hits: (p: string) => hits.get(p) ?? 0, lastRange: () => ranges.at(-1) };
}

async function cachingProxy(t: TestContext, port: number, location = '') {
  const dir = tempDir(t, 'sluice-cache-ranges-');
  const proxy = await startTestProxy(conf(`
  proxy_cache_path ${join(dir.path, 'cache')} levels=1:2 keys_zone=zone1:1m;
  proxy_temp_path ${join(dir.path, 'temp')};
  server {
    listen 127.0.0.1:0;
    add_header X-Cache-Status $upstream_cache_status always;
    proxy_cache zone1;
    proxy_cache_valid 200 10m;
    location / { proxy_pass http://127.0.0.1:${port}; ${location} }
    location /min/ { proxy_pass http://127.0.0.1:${port}; proxy_cache_min_uses 2; }
    location /offset/ { proxy_pass http://127.0.0.1:${port}; proxy_cache_max_range_offset 5; }
    location /zero/ { proxy_pass http://127.0.0.1:${port}; proxy_cache_max_range_offset 0; }
  }`), { t, prefix: dir.path });
  return proxy;
}

const get = cacheGet;

test('a hit answers one range with 206, several as multipart/byteranges, none with 416, and a 200 with Accept-Ranges', async (t) => {
  const b = await rangeBackend(t);
  const proxy = await cachingProxy(t, b.port);
  assert.equal((await get(proxy.port, '/r')).cache, 'MISS');
  const whole = await get(proxy.port, '/r');
  assert.deepEqual([whole.status, whole.cache, whole.body, whole.h('accept-ranges')], [200, 'HIT', BODY, 'bytes']);
  const one = await get(proxy.port, '/r', ['Range: bytes=4-7']);
  assert.deepEqual([one.status, one.cache, one.body], [206, 'HIT', '4567']);
  assert.equal(one.h('content-range'), `bytes 4-7/${BODY.length}`);
  assert.equal(one.h('content-length'), '4');
  assert.equal(one.h('accept-ranges'), undefined);
  const suffix = await get(proxy.port, '/r', ['Range: bytes=-3']);
  assert.deepEqual([suffix.status, suffix.body], [206, 'hij']);
  const multi = await get(proxy.port, '/r', ['Range: bytes=0-2,10-']);
  assert.equal(multi.status, 206);
  const boundary = /^multipart\/byteranges; boundary=(\d{20})$/.exec(multi.h('content-type') ?? '')?.[1];
  assert.ok(boundary !== undefined, multi.h('content-type'));
  assert.equal(multi.body, `\r\n--${boundary}\r\nContent-Type: text/plain\r\nContent-Range: bytes 0-2/20\r\n\r\n012`
    + `\r\n--${boundary}\r\nContent-Type: text/plain\r\nContent-Range: bytes 10-19/20\r\n\r\nabcdefghij\r\n--${boundary}--\r\n`);
  assert.equal(multi.h('content-length'), String(Buffer.byteLength(multi.body)));
  const none = await get(proxy.port, '/r', ['Range: bytes=100-']);
  // add_header ... always ran for the 200 and runs again for the 416 page, as in nginx.
  assert.deepEqual([none.status, none.cache, none.h('content-range'), none.h('content-type')], [416, 'HIT, HIT', `bytes */${BODY.length}`, 'text/html']);
  assert.match(none.body, /416 Requested Range Not Satisfiable/);
  // A Range nginx ignores (not bytes=, a backwards range) gets the whole entry.
  for (const range of ['items=1-2', 'bytes=5-1']) {
    const r = await get(proxy.port, '/r', [`Range: ${range}`]);
    assert.deepEqual([r.status, r.body], [range === 'bytes=5-1' ? 416 : 200, range === 'bytes=5-1' ? r.body : BODY], range);
  }
  const head = await get(proxy.port, '/r', ['Range: bytes=1-2'], 'HEAD');
  assert.deepEqual([head.status, head.h('content-range'), head.body], [206, `bytes 1-2/${BODY.length}`, '']);
  assert.equal(b.hits('/r'), 1);
});

test('If-Range on a hit: the entity tag or the date must match, else the whole entry', async (t) => {
  const b = await rangeBackend(t);
  const proxy = await cachingProxy(t, b.port);
  await get(proxy.port, '/i');
  const cases: [string, number][] = [['"v1"', 206], ['"v2"', 200], ['W/"v1"', 200], [LAST_MODIFIED, 206], ['Thu, 01 Jan 2026 00:00:01 GMT', 200]];
  for (const [ifRange, status] of cases) {
    const r = await get(proxy.port, '/i', ['Range: bytes=0-0', `If-Range: ${ifRange}`]);
    assert.deepEqual([r.status, r.cache, r.body], [status, 'HIT', status === 206 ? '0' : BODY], ifRange);
  }
});

test('no ranges where the upstream sent no Accept-Ranges, or no length (chunked): the whole entry', async (t) => {
  const b = await rangeBackend(t);
  const proxy = await cachingProxy(t, b.port);
  for (const path of ['/noar', '/chunked']) {
    const miss = await get(proxy.port, path, ['Range: bytes=1-2']);
    const hit = await get(proxy.port, path, ['Range: bytes=1-2']);
    assert.deepEqual([miss.status, miss.cache, miss.body, hit.status, hit.cache, hit.body], [200, 'MISS', BODY, 200, 'HIT', BODY], path);
    assert.equal(hit.h('accept-ranges'), undefined, path);
  }
});

test('a miss sends no Range upstream, cuts one range from the response and stores all of it; several ranges get the whole response', async (t) => {
  const b = await rangeBackend(t);
  const proxy = await cachingProxy(t, b.port);
  const miss = await get(proxy.port, '/m', ['Range: bytes=2-5']);
  assert.deepEqual([miss.status, miss.cache, miss.body, miss.h('content-range')], [206, 'MISS', '2345', `bytes 2-5/${BODY.length}`]);
  assert.equal(b.lastRange(), undefined);
  const hit = await get(proxy.port, '/m');
  assert.deepEqual([hit.status, hit.cache, hit.body], [200, 'HIT', BODY]);
  const multi = await get(proxy.port, '/m2', ['Range: bytes=0-1,4-5']);
  assert.deepEqual([multi.status, multi.cache, multi.body, multi.h('accept-ranges')], [200, 'MISS', BODY, 'bytes']);
  assert.equal(b.hits('/m'), 1);
});

test('a miss answers a range it cannot satisfy with 416 and stores nothing', async (t) => {
  const b = await rangeBackend(t);
  const proxy = await cachingProxy(t, b.port);
  const none = await get(proxy.port, '/u', ['Range: bytes=50-']);
  assert.deepEqual([none.status, none.cache, none.h('content-range')], [416, 'MISS, MISS', `bytes */${BODY.length}`]);
  assert.equal((await get(proxy.port, '/u')).cache, 'MISS');
  assert.equal(b.hits('/u'), 2);
});

test('a miss answers If-None-Match / If-Modified-Since with 304 and still stores the response; a failed If-Match is a 412, not stored', async (t) => {
  const b = await rangeBackend(t);
  const proxy = await cachingProxy(t, b.port);
  const inm = await get(proxy.port, '/c', ['If-None-Match: "v1"']);
  assert.deepEqual([inm.status, inm.cache, inm.body, inm.h('content-type')], [304, 'MISS', '', undefined]);
  assert.deepEqual([(await get(proxy.port, '/c')).cache, b.hits('/c')], ['HIT', 1]);
  const ims = await get(proxy.port, '/c2', [`If-Modified-Since: ${LAST_MODIFIED}`]);
  assert.deepEqual([ims.status, ims.cache], [304, 'MISS']);
  const failed = await get(proxy.port, '/c3', ['If-Match: "other"']);
  assert.deepEqual([failed.status, failed.cache], [412, 'MISS']);
  assert.deepEqual([(await get(proxy.port, '/c3')).cache, b.hits('/c3')], ['MISS', 2]);
});

test('a response its headers keep out of the cache is relayed as it is: no range cut, no 304, its own Accept-Ranges', async (t) => {
  const b = await rangeBackend(t);
  const proxy = await cachingProxy(t, b.port);
  const r = await get(proxy.port, '/nostore', ['Range: bytes=1-2', 'If-None-Match: "v1"']);
  assert.deepEqual([r.status, r.cache, r.body, r.h('accept-ranges')], [200, 'MISS', BODY, 'bytes']);
  assert.equal(b.lastRange(), undefined);
});

test('below proxy_cache_min_uses the request goes upstream with its Range (nothing is stored); once cacheable, ranges are cut here', async (t) => {
  const b = await rangeBackend(t);
  const proxy = await cachingProxy(t, b.port);
  const first = await get(proxy.port, '/min/honour', ['Range: bytes=0-1']);
  assert.deepEqual([first.status, first.cache, first.body, b.lastRange()], [206, 'MISS', '01', 'bytes=0-1']);
  const second = await get(proxy.port, '/min/honour', ['Range: bytes=3-4']);
  assert.deepEqual([second.status, second.cache, second.body, b.lastRange()], [206, 'MISS', '34', undefined]);
  const third = await get(proxy.port, '/min/honour', ['Range: bytes=5-6']);
  assert.deepEqual([third.status, third.cache, third.body], [206, 'HIT', '56']);
});

test('proxy_cache_max_range_offset: a range from the offset on, or from the end, goes upstream uncached; a hit serves any range', async (t) => {
  const b = await rangeBackend(t);
  const proxy = await cachingProxy(t, b.port);
  const above = await get(proxy.port, '/offset/honour', ['Range: bytes=5-']);
  assert.deepEqual([above.status, above.cache, b.lastRange()], [206, 'MISS', 'bytes=5-']);
  const last = await get(proxy.port, '/offset/honour', ['Range: bytes=-1']);
  assert.deepEqual([last.cache, b.lastRange()], ['MISS', 'bytes=-1']);
  const below = await get(proxy.port, '/offset/honour', ['Range: bytes=4-6']);
  assert.deepEqual([below.status, below.cache, below.body, b.lastRange()], [206, 'MISS', '456', undefined]);
  const hit = await get(proxy.port, '/offset/honour', ['Range: bytes=15-']);
  assert.deepEqual([hit.status, hit.cache, hit.body], [206, 'HIT', 'fghij']);
  const zero = await get(proxy.port, '/zero/honour', ['Range: bytes=0-0']);
  assert.deepEqual([zero.cache, b.lastRange()], ['MISS', 'bytes=0-0']);
  const plain = await get(proxy.port, '/zero/honour');
  assert.deepEqual([plain.status, plain.cache], [200, 'MISS']);
  assert.equal((await get(proxy.port, '/zero/honour')).cache, 'HIT');
});

test('ranges of an entry too large to be read with its header come from the file (one range and several)', async (t) => {
  const big = Buffer.alloc(300 * 1024);
  for (let i = 0; i < big.length; i++) big[i] = 97 + (i % 26);
  const backend = await startHttpBackend((_req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': String(big.length), 'Accept-Ranges': 'bytes' });
    res.end(big);
  });
  t.after(() => backend.close());
  const proxy = await cachingProxy(t, backend.port);
  assert.equal((await get(proxy.port, '/big')).cache, 'MISS');
  const one = await get(proxy.port, '/big', ['Range: bytes=200000-200009']);
  assert.deepEqual([one.status, one.cache, one.body], [206, 'HIT', big.subarray(200000, 200010).toString()]);
  const multi = await get(proxy.port, '/big', ['Range: bytes=0-1,307190-']);
  assert.equal(multi.status, 206);
  assert.match(multi.body, /Content-Range: bytes 0-1\/307200\r\n\r\nab\r\n/);
  assert.match(multi.body, new RegExp(`Content-Range: bytes 307190-307199/307200\\r\\n\\r\\n${big.subarray(307190).toString()}\\r\\n--`));
  const whole = await sendRequest(proxy.port, '/big', ['Host: localhost']);
  assert.ok(whole.bytes.equals(big));
});

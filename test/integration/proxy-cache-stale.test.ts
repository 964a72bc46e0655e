/**
 * proxy_cache's answers with expired entries (issue 19): proxy_cache_use_stale (error, http_500,
 * updating), proxy_cache_revalidate (a conditional request upstream, 304 -> REVALIDATED) and
 * proxy_cache_lock (one request fills the cache, the others wait; lock_timeout lets them go
 * upstream, uncached). Entries expire by X-Accel-Expires at the next whole second, so the waits
 * are bounded ones for the clock, never fixed sleeps.
 */
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { startHttpBackend } from '../helpers/backends.js';
import { conf } from '../helpers/config-text.js';
import { startTestProxy } from '../helpers/proxy.js';
import { headerValue, sendRequest } from '../helpers/raw-client.js';
import { tempDir } from '../helpers/temp.js';
import { waitFor } from '../helpers/wait.js';

interface Control {
  mode: 'ok' | '500' | 'close' | 'hold';
  hits: number;
  seen: IncomingMessage['headers'][];
  /** Answers held in `hold` mode. */
  held: (() => void)[];
}

/** Whole seconds: the entry expires at the next one. */
const soon = (): string => `@${Math.floor(Date.now() / 1000) + 1}`;

async function backend(t: TestContext, answer: (req: IncomingMessage, res: ServerResponse, n: number) => void = plain) {
  const c: Control = { mode: 'ok', hits: 0, seen: [], held: [] };
  const b = await startHttpBackend((req, res) => {
    const n = ++c.hits;
    c.seen.push(req.headers);
    if (c.mode === 'close') {
      req.socket.destroy();
      return;
    }
    if (c.mode === '500') {
      res.writeHead(500, { 'Content-Type': 'text/plain' });
      res.end('upstream broke');
      return;
    }
    if (c.mode === 'hold') {
      c.held.push(() => answer(req, res, n));
      return;
    }
    answer(req, res, n);
  });
  t.after(() => b.close());
  return { port: b.port, c };
}

function plain(_req: IncomingMessage, res: ServerResponse, n: number): void {
  res.writeHead(200, { 'X-Accel-Expires': soon(), 'Content-Type': 'text/plain' });
  res.end(`version ${n}`);
}

/** Fresh for a minute. */
function fresh(_req: IncomingMessage, res: ServerResponse, n: number): void {
  res.writeHead(200, { 'Cache-Control': 'max-age=60' });
  res.end(`version ${n}`);
}

async function proxyFor(t: TestContext, port: number, location: string) {
  const dir = tempDir(t, 'sluice-cache-');
  const proxy = await startTestProxy(conf(`
  proxy_cache_path ${join(dir.path, 'cache')} keys_zone=stale${port}:1m;
  server {
    listen 127.0.0.1:0;
    location / {
      proxy_pass http://127.0.0.1:${port};
      proxy_cache stale${port};
      add_header X-Cache-Status $upstream_cache_status always;
      ${location}
    }
  }`), { t, prefix: dir.path });
  return proxy;
}

/** Requests sent by {@link get}, for comparing with access log lines. */
let sent = 0;

async function get(port: number, path: string) {
  sent++;
  const r = await sendRequest(port, path);
  return { status: r.status, cache: headerValue(r.head, 'x-cache-status') ?? '', body: r.body };
}

/**
 * Waits (bounded) until an entry stored now (fresh until the next whole second) has expired:
 * nginx counts whole seconds, so that is the second after.
 */
async function expired(): Promise<void> {
  const at = (Math.floor(Date.now() / 1000) + 2) * 1000;
  await waitFor(() => Date.now() >= at + 5, { timeoutMs: 4000 });
}

test('proxy_cache_use_stale error http_500: the expired entry answers (STALE) when the upstream fails; unlisted, the failure shows', async (t) => {
  const b = await backend(t);
  const proxy = await proxyFor(t, b.port, 'proxy_cache_use_stale error http_500;');
  assert.equal((await get(proxy.port, '/s')).cache, 'MISS');
  await expired();
  b.c.mode = 'close';
  const afterError = await get(proxy.port, '/s');
  assert.deepEqual([afterError.status, afterError.cache, afterError.body], [200, 'STALE', 'version 1']);
  b.c.mode = '500';
  const after500 = await get(proxy.port, '/s');
  assert.deepEqual([after500.status, after500.cache, after500.body], [200, 'STALE', 'version 1']);
  const plainProxy = await proxyFor(t, b.port, '');
  b.c.mode = 'ok';
  await get(plainProxy.port, '/p');
  await expired();
  b.c.mode = 'close';
  const failed = await get(plainProxy.port, '/p');
  assert.deepEqual([failed.status, failed.cache], [502, 'EXPIRED']);
});

test('proxy_cache_revalidate: the expired entry goes upstream with If-None-Match / If-Modified-Since; a 304 makes it fresh (REVALIDATED)', async (t) => {
  const lastModified = 'Thu, 01 Jan 2026 00:00:00 GMT';
  const b = await backend(t, (req, res, n) => {
    if (req.headers['if-none-match'] === '"v1"') {
      res.writeHead(304, { 'Cache-Control': 'max-age=60', ETag: '"v1"' });
      res.end();
      return;
    }
    res.writeHead(200, { 'X-Accel-Expires': soon(), ETag: '"v1"', 'Last-Modified': lastModified });
    res.end(`version ${n}`);
  });
  const proxy = await proxyFor(t, b.port, 'proxy_cache_revalidate on;');
  assert.equal((await get(proxy.port, '/r')).cache, 'MISS');
  await expired();
  const again = await get(proxy.port, '/r');
  assert.deepEqual([again.status, again.cache, again.body], [200, 'REVALIDATED', 'version 1']);
  assert.equal(b.c.seen[1]!['if-none-match'], '"v1"');
  assert.equal(b.c.seen[1]!['if-modified-since'], lastModified);
  // The 304's max-age=60 is the entry's new lifetime.
  assert.equal((await get(proxy.port, '/r')).cache, 'HIT');
  assert.equal(b.c.hits, 2);
});

test('proxy_cache_lock: concurrent requests for one key send one upstream; the others wait and HIT', async (t) => {
  const b = await backend(t, fresh);
  const proxy = await proxyFor(t, b.port, 'proxy_cache_lock on;');
  b.c.mode = 'hold';
  const first = get(proxy.port, '/l');
  await waitFor(() => b.c.held.length === 1);
  const second = get(proxy.port, '/l');
  const third = get(proxy.port, '/l');
  b.c.mode = 'ok';
  b.c.held.shift()!();
  const answers = await Promise.all([first, second, third]);
  assert.deepEqual(answers.map((a) => a.cache), ['MISS', 'HIT', 'HIT']);
  assert.deepEqual(answers.map((a) => a.body), ['version 1', 'version 1', 'version 1']);
  assert.equal(b.c.hits, 1);
});

test('proxy_cache_lock_timeout: a request that waited too long goes upstream itself, and its answer is not stored', async (t) => {
  const b = await backend(t, fresh);
  const proxy = await proxyFor(t, b.port, 'proxy_cache_lock on; proxy_cache_lock_timeout 200ms;');
  b.c.mode = 'hold';
  const first = get(proxy.port, '/t');
  await waitFor(() => b.c.held.length === 1);
  b.c.mode = 'ok';
  const second = await get(proxy.port, '/t');
  assert.deepEqual([second.cache, second.body], ['MISS', 'version 2']);
  b.c.held.shift()!();
  assert.equal((await first).body, 'version 1');
  // The first request's answer is the stored one; the second's was not stored.
  const third = await get(proxy.port, '/t');
  assert.deepEqual([third.cache, third.body], ['HIT', 'version 1']);
});

test('proxy_cache_use_stale updating: while one request refreshes an expired entry, the others get it (UPDATING)', async (t) => {
  const b = await backend(t);
  const proxy = await proxyFor(t, b.port, 'proxy_cache_use_stale updating;');
  assert.equal((await get(proxy.port, '/u')).cache, 'MISS');
  await expired();
  b.c.mode = 'hold';
  const refreshing = get(proxy.port, '/u');
  await waitFor(() => b.c.held.length === 1);
  const meanwhile = await get(proxy.port, '/u');
  assert.deepEqual([meanwhile.cache, meanwhile.body], ['UPDATING', 'version 1']);
  b.c.mode = 'ok';
  b.c.held.shift()!();
  const refreshed = await refreshing;
  assert.deepEqual([refreshed.cache, refreshed.body], ['EXPIRED', 'version 2']);
});

/** Asks again (bounded) until the answer has this cache status: a background request ends on its own time. */
function until(port: number, path: string, cache: string) {
  return waitFor(async () => {
    const r = await get(port, path);
    return r.cache === cache ? r : null;
  }, { what: `a ${cache} answer` });
}

/** The first version expires at the next whole second, the later ones are fresh for a minute. */
function firstExpires(req: IncomingMessage, res: ServerResponse, n: number): void {
  if (n === 1) plain(req, res, n);
  else fresh(req, res, n);
}

/** A location with `directives` whose entry for `path` (stored by a MISS) has expired. */
async function expiredEntry(t: TestContext, path: string, directives: string) {
  const b = await backend(t, firstExpires);
  const { port } = await proxyFor(t, b.port, directives);
  assert.equal((await get(port, path)).cache, 'MISS');
  await expired();
  return { b, port };
}

const BACKGROUND = 'proxy_cache_use_stale updating; proxy_cache_background_update on;';

test('proxy_cache_background_update: an expired entry answers at once (STALE) while one background request refreshes it; the next request HITs the new version', async (t) => {
  const log = join(tempDir(t, 'sluice-cache-log-').path, 'access.log');
  const { b, port } = await expiredEntry(t, '/b', `${BACKGROUND} access_log ${log};`);
  const sentBefore = sent - 1;
  b.c.mode = 'hold';
  // The client's answer does not wait for the refresh, which the upstream holds.
  const stale = await get(port, '/b');
  assert.deepEqual([stale.status, stale.cache, stale.body], [200, 'STALE', 'version 1']);
  await waitFor(() => b.c.held.length === 1, { what: 'the background request' });
  // Concurrent requests while it runs: the entry answers them, nothing more goes upstream.
  const meanwhile = await Promise.all([get(port, '/b'), get(port, '/b'), get(port, '/b')]);
  assert.deepEqual(meanwhile.map((a) => [a.cache, a.body]), Array(3).fill(['UPDATING', 'version 1']));
  assert.equal(b.c.hits, 2);
  b.c.mode = 'ok';
  b.c.held.shift()!();
  const hit = await until(port, '/b', 'HIT');
  assert.equal(hit.body, 'version 2');
  assert.equal(b.c.hits, 2);
  // The background request goes without a body (docs/differences-from-nginx.md).
  assert.equal(b.c.seen[1]!['content-length'], undefined);
  // One access log line per client request: the background request has none (nginx).
  const lines = (): string[] => readFileSync(log, 'utf8').split('\n').filter((l) => l !== '');
  await waitFor(() => lines().length >= sent - sentBefore, { what: 'the access log lines' });
  assert.equal(lines().length, sent - sentBefore);
});

test('proxy_cache_background_update: a failing refresh leaves the expired entry answering (STALE), each time trying again', async (t) => {
  const { b, port } = await expiredEntry(t, '/f', BACKGROUND);
  b.c.mode = 'close';
  const first = await get(port, '/f');
  assert.deepEqual([first.status, first.cache, first.body], [200, 'STALE', 'version 1']);
  await waitFor(() => b.c.hits === 2, { what: 'the failed background request' });
  // Once it failed, the key is free again: the next request is STALE and starts another refresh.
  const again = await until(port, '/f', 'STALE');
  assert.deepEqual([again.status, again.body], [200, 'version 1']);
  await waitFor(() => b.c.hits === 3, { what: 'the second background request' });
  b.c.mode = '500';
  const third = await until(port, '/f', 'STALE');
  assert.equal(third.body, 'version 1');
  await waitFor(() => b.c.hits === 4, { what: 'the third background request' });
  // The 500 was not stored (no proxy_cache_valid for it): the entry still answers.
  const fourth = await until(port, '/f', 'STALE');
  assert.equal(fourth.body, 'version 1');
});

test('proxy_cache_background_update without proxy_cache_use_stale updating has no effect (nginx): the request refreshes the entry itself', async (t) => {
  const { b, port } = await expiredEntry(t, '/n', 'proxy_cache_background_update on;');
  const refreshed = await get(port, '/n');
  assert.deepEqual([refreshed.cache, refreshed.body], ['EXPIRED', 'version 2']);
  assert.equal(b.c.hits, 2);
});

/** Fresh for one second, with the Cache-Control extensions `ext` (RFC 5861). */
function withExtension(ext: string) {
  return (_req: IncomingMessage, res: ServerResponse, n: number): void => {
    res.writeHead(200, { 'Cache-Control': `max-age=1, ${ext}`, 'Content-Type': 'text/plain' });
    res.end(`version ${n}`);
  };
}

test('stale-while-revalidate, without proxy_cache_use_stale: while one request fetches the expired entry, the others get it (UPDATING)', async (t) => {
  const b = await backend(t, withExtension('stale-while-revalidate=60'));
  const proxy = await proxyFor(t, b.port, '');
  assert.equal((await get(proxy.port, '/w')).cache, 'MISS');
  await expired();
  b.c.mode = 'hold';
  const fetching = get(proxy.port, '/w');
  await waitFor(() => b.c.held.length === 1, { what: 'the fetch of the expired entry' });
  const meanwhile = await get(proxy.port, '/w');
  assert.deepEqual([meanwhile.status, meanwhile.cache, meanwhile.body], [200, 'UPDATING', 'version 1']);
  b.c.held.splice(0).forEach((answer) => answer());
  const fetched = await fetching;
  assert.deepEqual([fetched.cache, fetched.body], ['EXPIRED', 'version 2']);
  assert.equal(b.c.hits, 2);
});

test('stale-while-revalidate with proxy_cache_background_update: STALE at once, one background request refreshes the entry', async (t) => {
  const b = await backend(t, withExtension('stale-while-revalidate=60'));
  const proxy = await proxyFor(t, b.port, 'proxy_cache_background_update on;');
  assert.equal((await get(proxy.port, '/b')).cache, 'MISS');
  await expired();
  const stale = await get(proxy.port, '/b');
  assert.deepEqual([stale.status, stale.cache, stale.body], [200, 'STALE', 'version 1']);
  await waitFor(async () => (await get(proxy.port, '/b')).cache === 'HIT', { what: 'the refreshed entry' });
  assert.equal((await get(proxy.port, '/b')).body, 'version 2');
  assert.equal(b.c.hits, 2);
});

test('stale-if-error, without proxy_cache_use_stale: a failed upstream gets the expired entry (STALE); a 500 it answers is relayed (nginx 1.22)', async (t) => {
  const b = await backend(t, withExtension('stale-if-error=60'));
  const proxy = await proxyFor(t, b.port, '');
  assert.equal((await get(proxy.port, '/e')).cache, 'MISS');
  await expired();
  b.c.mode = 'close';
  const failed = await get(proxy.port, '/e');
  assert.deepEqual([failed.status, failed.cache, failed.body], [200, 'STALE', 'version 1']);
  b.c.mode = '500';
  const broke = await get(proxy.port, '/e');
  assert.deepEqual([broke.status, broke.cache], [500, 'EXPIRED']);
});

test('a stale-while-revalidate / stale-if-error value that is not a number keeps the response out of the cache (nginx)', async (t) => {
  const b = await backend(t, withExtension('stale-while-revalidate=soon'));
  const proxy = await proxyFor(t, b.port, '');
  assert.deepEqual([(await get(proxy.port, '/n')).cache, (await get(proxy.port, '/n')).cache], ['MISS', 'MISS']);
  const b2 = await backend(t, withExtension('stale-if-error=1x'));
  const proxy2 = await proxyFor(t, b2.port, '');
  assert.deepEqual([(await get(proxy2.port, '/n')).cache, (await get(proxy2.port, '/n')).cache], ['MISS', 'MISS']);
});

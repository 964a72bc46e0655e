// nginx (the installed 1.22) and Sluice side by side on proxy_cache: the same config, the same
// request sequences, one backend that counts what reaches it; the statuses, X-Cache-Status
// ($upstream_cache_status), bodies and upstream request counts must agree.
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { startHttpBackend } from '../helpers/backends.js';
import { nginxAndSluice } from '../helpers/nginx.js';
import { headerValue, rawRequest } from '../helpers/raw-client.js';
import { tempDir } from '../helpers/temp.js';
import { waitFor } from '../helpers/wait.js';

/**
 * A cache directory for each server (nginx's workers run as another user: open to all), by the
 * port nginxAndSluice gives the config (0 for Sluice's).
 */
function cacheDirs(t: TestContext, prefix: string): (port: number) => string {
  const dirs = tempDir(t, prefix);
  chmodSync(dirs.path, 0o777);
  return (port) => {
    const d = join(dirs.path, port === 0 ? 'sluice' : 'nginx');
    mkdirSync(d, { recursive: true, mode: 0o777 });
    chmodSync(d, 0o777);
    return d;
  };
}

interface Step {
  readonly method?: string;
  readonly path: string;
  readonly headers?: readonly string[];
}

test('e2e: proxy_cache answers the same request sequences as nginx (MISS, HIT, BYPASS, EXPIRED, STALE, variants, HEAD, ranges, conditions, background update, stale-while-revalidate, stale-if-error)', async (t) => {
  let hits = 0;
  let failing = false;
  let expiresAt = 0;
  /** The version the /bg paths answer with: a refreshed entry shows the new one. */
  let generation = 0;
  /** While set, /held paths answer only when the test calls the functions queued here. */
  let holding = false;
  const held: (() => void)[] = [];
  const backend = await startHttpBackend((req, res) => {
    hits++;
    if (failing) {
      req.socket.destroy();
      return;
    }
    if (holding && (req.url ?? '').includes('/held')) {
      holding = false;
      held.push(() => {
        res.writeHead(200, { 'Content-Type': 'text/plain', 'Cache-Control': 'max-age=1, stale-while-revalidate=60' });
        res.end(`held gen ${generation}`);
      });
      return;
    }
    const url = new URL(req.url ?? '/', 'http://x');
    const p = url.pathname;
    const headers: Record<string, string> = { 'Content-Type': 'text/plain', ETag: '"e1"' };
    if (p.endsWith('/nostore')) headers['Cache-Control'] = 'no-store';
    if (p.includes('/swr')) headers['Cache-Control'] = 'max-age=1, stale-while-revalidate=60';
    if (p.includes('/sie')) headers['Cache-Control'] = 'max-age=1, stale-if-error=60';
    if (p.endsWith('/private')) headers['Cache-Control'] = 'private, max-age=60';
    if (p.endsWith('/maxage')) headers['Cache-Control'] = 'max-age=60';
    if (p.endsWith('/cookie')) headers['Set-Cookie'] = 'a=1';
    if (p.endsWith('/accel0')) headers['X-Accel-Expires'] = '0';
    if (p.endsWith('/vary')) headers['Vary'] = 'Accept-Language';
    if (p.endsWith('/varystar')) headers['Vary'] = '*';
    if (p.startsWith('/ar') || p.includes('/cl')) headers['Accept-Ranges'] = 'bytes';
    if (p.startsWith('/ar') || p.includes('/cl')) headers['Last-Modified'] = 'Thu, 01 Jan 2026 00:00:00 GMT';
    // Only these have a Content-Length (the others go chunked): nginx's range filter needs it.
    const text = `body ${p} ${req.headers['accept-language'] ?? ''} ${req.method} range ${req.headers.range ?? '-'}`;
    if (p.includes('/cl')) headers['Content-Length'] = String(text.length);
    if (p.startsWith('/short/') || p.startsWith('/bg')) headers['X-Accel-Expires'] = `@${expiresAt}`;
    const status = p.endsWith('/404') ? 404 : p.endsWith('/500') ? 500 : 200;
    res.writeHead(status, headers);
    res.end(p.includes('/cl') ? text : `body ${p} ${req.headers['accept-language'] ?? ''} ${req.method}${p.startsWith('/bg') || p.includes('/swr') || p.includes('/sie') ? ` gen ${generation}` : ''}`);
  });
  t.after(() => backend.close());
  const cacheDir = cacheDirs(t, 'sluice-e2e-cache-');
  const ports = await nginxAndSluice(t, (port) => `
    proxy_cache_path ${cacheDir(port)} levels=1:2 keys_zone=e2e:1m;
    server { listen 127.0.0.1:${port};
      add_header X-Cache-Status $upstream_cache_status always;
      proxy_cache e2e;
      proxy_cache_valid 200 10m;
      location / { proxy_pass http://${backend.addr}; proxy_cache_bypass $arg_nocache; proxy_no_cache $arg_nostore; }
      location /valid404/ { proxy_pass http://${backend.addr}; proxy_cache_valid 200 404 10m; }
      location /min/ { proxy_pass http://${backend.addr}; proxy_cache_min_uses 2; }
      location /offset/ { proxy_pass http://${backend.addr}; proxy_cache_max_range_offset 5; }
      location /short/ { proxy_pass http://${backend.addr}; proxy_cache_use_stale error http_500; }
      location /off/ { proxy_pass http://${backend.addr}; proxy_cache off; }
      location /bg/ { proxy_pass http://${backend.addr}; proxy_cache_use_stale updating; proxy_cache_background_update on; }
      location /bgno/ { proxy_pass http://${backend.addr}; proxy_cache_background_update on; }
      location /ext/ { proxy_pass http://${backend.addr}; proxy_cache_background_update on; }
    }`);

  const sequence: Step[] = [
    { path: '/a' }, { path: '/a' }, { path: '/a?x=1' }, { path: '/a?x=1' },
    { path: '/nostore' }, { path: '/nostore' }, { path: '/private' }, { path: '/private' },
    { path: '/maxage' }, { path: '/maxage' }, { path: '/cookie' }, { path: '/cookie' },
    { path: '/accel0' }, { path: '/accel0' }, { path: '/varystar' }, { path: '/varystar' },
    { path: '/b?nocache=1' }, { path: '/b?nocache=1' }, { path: '/c?nostore=1' }, { path: '/c?nostore=1' },
    { path: '/404' }, { path: '/404' }, { path: '/valid404/404' }, { path: '/valid404/404' },
    { method: 'HEAD', path: '/h' }, { path: '/h' }, { method: 'HEAD', path: '/h' },
    { path: '/vary', headers: ['Accept-Language: en'] }, { path: '/vary', headers: ['Accept-Language: fr'] },
    { path: '/vary', headers: ['Accept-Language: en'] }, { path: '/vary', headers: ['Accept-Language: fr'] },
    { path: '/a', headers: ['Range: bytes=0-3'] }, { path: '/a', headers: ['If-None-Match: "e1"'] },
    { path: '/a', headers: ['Range: bytes=100-'] },
    { path: '/ar' }, { path: '/ar', headers: ['Range: bytes=1-4'] }, { path: '/ar', headers: ['Range: bytes=100-'] },
    { path: '/ar', headers: ['If-Modified-Since: Thu, 01 Jan 2099 00:00:00 GMT', 'If-None-Match: "other"'] },
    { path: '/min/x' }, { path: '/min/x' }, { path: '/min/x' },
    // Ranges where the upstream allows them (Accept-Ranges and a Content-Length): cut from a miss
    // (one range), served from a hit (one, several, none satisfiable), If-Range; a miss's 416 is
    // not stored; conditions answered on a miss.
    { path: '/cl/a', headers: ['Range: bytes=4-9'] }, { path: '/cl/a', headers: ['Range: bytes=4-9'] },
    { path: '/cl/a', headers: ['Range: bytes=0-3,10-'] }, { path: '/cl/a', headers: ['Range: bytes=-4'] },
    { path: '/cl/a', headers: ['Range: bytes=500-'] }, { method: 'HEAD', path: '/cl/a', headers: ['Range: bytes=1-2'] },
    { path: '/cl/a', headers: ['Range: bytes=0-1', 'If-Range: "e1"'] }, { path: '/cl/a', headers: ['Range: bytes=0-1', 'If-Range: "e2"'] },
    { path: '/cl/a', headers: ['Range: bytes=0-1', 'If-Range: Thu, 01 Jan 2026 00:00:00 GMT'] },
    { path: '/cl/a', headers: ['Range: bytes=0-1', 'If-Range: Thu, 01 Jan 2026 00:00:01 GMT'] },
    { path: '/cl/b', headers: ['Range: bytes=0-3,10-'] }, { path: '/cl/c', headers: ['Range: bytes=500-'] }, { path: '/cl/c' },
    { path: '/cl/d', headers: ['If-None-Match: "e1"'] }, { path: '/cl/d', headers: ['If-None-Match: "e1"'] },
    { path: '/cl/e', headers: ['If-Match: "zz"'] }, { path: '/cl/e' }, { path: '/cl/nostore', headers: ['Range: bytes=1-2'] },
    { path: '/min/cl/x', headers: ['Range: bytes=1-2'] }, { path: '/min/cl/x', headers: ['Range: bytes=1-2'] }, { path: '/min/cl/x', headers: ['Range: bytes=1-2'] },
    { path: '/offset/cl/x', headers: ['Range: bytes=5-'] }, { path: '/offset/cl/x', headers: ['Range: bytes=-3'] },
    { path: '/offset/cl/x', headers: ['Range: bytes=4-8'] }, { path: '/offset/cl/x', headers: ['Range: bytes=7-'] },
    { method: 'POST', path: '/post' }, { method: 'POST', path: '/post' }, { path: '/off/x' }, { path: '/off/x' },
  ];
  const run = async (port: number, steps: readonly Step[]): Promise<string[]> => {
    const out: string[] = [];
    for (const s of steps) {
      const before = hits;
      const method = s.method ?? 'GET';
      const body = method === 'POST' ? 'Content-Length: 1\r\n' : '';
      const r = await rawRequest(port, `${method} ${s.path} HTTP/1.1\r\nHost: localhost\r\n${(s.headers ?? []).map((h) => `${h}\r\n`).join('')}${body}Connection: close\r\n\r\n${method === 'POST' ? 'x' : ''}`);
      const h = (name: string): string => headerValue(r.head!, name) ?? '-';
      // The multipart boundary is a counter of the server's: each has its own.
      const text = r.body.toString('latin1').replace(/<hr><center>[^<]*<\/center>/, '').replace(/\d{20}/g, 'BOUNDARY');
      out.push(`${method} ${s.path} ${(s.headers ?? []).join(',')} -> ${r.head?.statusCode} ${h('x-cache-status')} upstream+${hits - before} range ${h('content-range')} ar ${h('accept-ranges')} ct ${h('content-type').replace(/\d{20}/, 'BOUNDARY')} ${text}`);
    }
    return out;
  };
  /**
   * Waits until the background request that reached the upstream has put its entry in place:
   * until then the old one answers UPDATING (from the cache, so these looks change no count).
   */
  const refreshedEntry = (port: number, path: string): Promise<boolean> => waitFor(async () => {
    const r = await rawRequest(port, `GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`);
    return headerValue(r.head!, 'x-cache-status') !== 'UPDATING';
  }, { what: `the refreshed entry of ${path}` });
  const nginx = await run(ports.nginx, sequence);
  const sluice = await run(ports.sluice, sequence);
  assert.deepEqual(sluice, nginx);

  // Expiry, then an upstream that fails: EXPIRED with a working upstream, STALE without one.
  const expiring = async (port: number): Promise<string[]> => {
    expiresAt = Math.floor(Date.now() / 1000) + 1;
    const first = await run(port, [{ path: '/short/e' }, { path: '/short/s' }, { path: '/short/s' }]);
    await waitFor(() => Date.now() >= (expiresAt + 1) * 1000 + 50, { timeoutMs: 4000 });
    expiresAt = Math.floor(Date.now() / 1000) + 60;
    const expired = await run(port, [{ path: '/short/e' }, { path: '/short/e' }]);
    failing = true;
    const stale = await run(port, [{ path: '/short/s' }, { path: '/short/none' }]);
    failing = false;
    return [...first, ...expired, ...stale];
  };
  const nginxExpiry = await expiring(ports.nginx);
  const sluiceExpiry = await expiring(ports.sluice);
  assert.deepEqual(sluiceExpiry.map((l) => l.replace(/<[^]*$/, '')), nginxExpiry.map((l) => l.replace(/<[^]*$/, '')));

  // proxy_cache_background_update: with `updating`, the expired entry answers (STALE, the old
  // body) and one background request refreshes it, after which the new body is a HIT; without
  // `updating` it has no effect (EXPIRED, fetched by the request). Whether the background request
  // reached the upstream before the STALE answer was read is timing, so that step's count is left
  // out and the total is compared once it has come.
  const background = async (port: number): Promise<string[]> => {
    generation = 1;
    expiresAt = Math.floor(Date.now() / 1000) + 1;
    const first = await run(port, [{ path: '/bg/x' }, { path: '/bgno/x' }]);
    await waitFor(() => Date.now() >= (expiresAt + 1) * 1000 + 50, { timeoutMs: 4000 });
    generation = 2;
    expiresAt = Math.floor(Date.now() / 1000) + 60;
    const before = hits;
    const stale = (await run(port, [{ path: '/bg/x' }])).map((l) => l.replace(/ upstream\+\d+ /, ' '));
    await waitFor(() => hits === before + 1, { what: 'the background update' });
    await refreshedEntry(port, '/bg/x');
    const after = await run(port, [{ path: '/bg/x' }, { path: '/bgno/x' }, { path: '/bg/x' }]);
    return [...first, ...stale, ...after, `upstream requests since the expiry: ${hits - before}`];
  };
  const nginxBackground = await background(ports.nginx);
  const sluiceBackground = await background(ports.sluice);
  assert.deepEqual(sluiceBackground, nginxBackground);

  // Cache-Control stale-while-revalidate / stale-if-error (nginx 1.11.10+), with no
  // proxy_cache_use_stale anywhere: within the window an expired entry answers while another
  // request fetches it (UPDATING), at once while a background request refreshes it
  // (proxy_cache_background_update: STALE), and for an upstream that fails (STALE).
  const extensions = async (port: number): Promise<string[]> => {
    generation = 1;
    const stored = Date.now();
    const first = await run(port, [{ path: '/swr/held' }, { path: '/ext/swr' }, { path: '/sie' }]);
    await waitFor(() => Date.now() >= stored + 2200, { timeoutMs: 5000 });
    generation = 2;
    holding = true;
    const before = hits;
    const fetching = run(port, [{ path: '/swr/held' }]);
    await waitFor(() => hits === before + 1, { what: 'the fetch of the expired entry' });
    const updating = await run(port, [{ path: '/swr/held' }]);
    for (const answer of held.splice(0)) answer();
    const fetched = await fetching;
    const b2 = hits;
    const stale = (await run(port, [{ path: '/ext/swr' }])).map((l) => l.replace(/ upstream\+\d+ /, ' '));
    await waitFor(() => hits === b2 + 1, { what: 'the background update' });
    await refreshedEntry(port, '/ext/swr');
    const refreshed = await run(port, [{ path: '/ext/swr' }]);
    failing = true;
    const failed = await run(port, [{ path: '/sie' }]);
    failing = false;
    return [...first, ...updating, ...fetched, ...stale, ...refreshed, ...failed];
  };
  const nginxExtensions = await extensions(ports.nginx);
  const sluiceExtensions = await extensions(ports.sluice);
  assert.deepEqual(sluiceExtensions, nginxExtensions);
});

test('e2e: responses from the cache go through gzip as in nginx (compressed for a client that accepts it, gzip_min_length, gzip_types, gzip_vary, gzip_proxied, ranges, conditions, HEAD)', async (t) => {
  let hits = 0;
  const TEXT = 'a cached body of plain text, long enough to be compressed. '.repeat(8);
  const backend = await startHttpBackend((req, res) => {
    hits++;
    const p = new URL(req.url ?? '/', 'http://x').pathname;
    const body = p.endsWith('/small') ? 'tiny body' : p.endsWith('/empty') ? '' : `${TEXT}${p}`;
    const headers: Record<string, string> = {
      'Content-Type': p.endsWith('/png') ? 'image/png' : 'text/plain', ETag: '"g1"',
      'Last-Modified': 'Thu, 01 Jan 2026 00:00:00 GMT', 'Accept-Ranges': 'bytes',
    };
    if (p.endsWith('/maxage')) headers['Cache-Control'] = 'max-age=60';
    if (!p.endsWith('/chunked')) headers['Content-Length'] = String(Buffer.byteLength(body));
    res.writeHead(200, headers);
    res.end(body);
  });
  t.after(() => backend.close());
  const cacheDir = cacheDirs(t, 'sluice-e2e-cache-gzip-');
  const ports = await nginxAndSluice(t, (port) => `
    proxy_cache_path ${cacheDir(port)} levels=1:2 keys_zone=gz:1m;
    server { listen 127.0.0.1:${port};
      add_header X-Cache-Status $upstream_cache_status always;
      proxy_cache gz;
      proxy_cache_valid 200 10m;
      gzip on; gzip_types text/plain; gzip_min_length 20;
      location / { proxy_pass http://${backend.addr}; gzip_vary on; }
      location /any/ { proxy_pass http://${backend.addr}; gzip_proxied any; }
      location /expired/ { proxy_pass http://${backend.addr}; gzip_proxied expired; }
      location /nogzip/ { proxy_pass http://${backend.addr}; gzip off; }
    }`);
  const GZ = 'Accept-Encoding: gzip';
  const sequence: Step[] = [
    // Stored from a miss without Accept-Encoding, then hits for clients that accept gzip or not.
    { path: '/a' }, { path: '/a', headers: [GZ] }, { path: '/a' }, { path: '/a', headers: ['Accept-Encoding: br;q=1, gzip;q=0'] },
    { path: '/a', headers: [GZ, 'Range: bytes=0-3'] }, { path: '/a', headers: ['Range: bytes=0-3'] },
    { path: '/a', headers: [GZ, 'Range: bytes=0-3,10-12'] }, { path: '/a', headers: [GZ, 'Range: bytes=9999-'] },
    { method: 'HEAD', path: '/a', headers: [GZ] }, { method: 'HEAD', path: '/a' },
    { path: '/a', headers: [GZ, 'If-None-Match: "g1"'] }, { path: '/a', headers: [GZ, 'If-None-Match: W/"g1"'] },
    { path: '/a', headers: [GZ, 'If-Match: "other"'] },
    // A miss for a gzip client stores the uncompressed response.
    { path: '/b', headers: [GZ] }, { path: '/b' }, { path: '/b', headers: [GZ] },
    { path: '/small', headers: [GZ] }, { path: '/small', headers: [GZ] },
    { path: '/png', headers: [GZ] }, { path: '/png', headers: [GZ] },
    { path: '/chunked', headers: [GZ] }, { path: '/chunked', headers: [GZ] }, { path: '/chunked', headers: [GZ, 'Range: bytes=0-3'] },
    { path: '/empty', headers: [GZ] }, { path: '/empty', headers: [GZ] },
    // gzip_proxied: a request with Via is compressed only where it allows it.
    { path: '/a', headers: [GZ, 'Via: 1.1 cdn'] }, { path: '/any/a', headers: [GZ, 'Via: 1.1 cdn'] }, { path: '/any/a', headers: [GZ, 'Via: 1.1 cdn'] },
    { path: '/expired/maxage', headers: [GZ, 'Via: 1.1 cdn'] }, { path: '/expired/maxage', headers: [GZ, 'Via: 1.1 cdn'] },
    { path: '/nogzip/a', headers: [GZ] }, { path: '/nogzip/a', headers: [GZ] },
  ];
  const run = async (port: number): Promise<string[]> => {
    const out: string[] = [];
    for (const s of sequence) {
      const before = hits;
      const method = s.method ?? 'GET';
      const r = await rawRequest(port, `${method} ${s.path} HTTP/1.1\r\nHost: localhost\r\n${(s.headers ?? []).map((h) => `${h}\r\n`).join('')}Connection: close\r\n\r\n`);
      const h = (name: string): string => headerValue(r.head!, name) ?? '-';
      const coding = h('content-encoding');
      const body = coding === 'gzip' && r.body.length > 0 ? gunzipSync(r.body) : r.body;
      const text = body.toString('latin1').replace(/<hr><center>[^<]*<\/center>/, '').replace(/\d{20}/g, 'BOUNDARY');
      out.push(`${method} ${s.path} ${(s.headers ?? []).join(',')} -> ${r.head?.statusCode} ${h('x-cache-status')} upstream+${hits - before} ce ${coding} cl ${(r.head?.statusCode ?? 0) < 300 ? h('content-length') : 'page'} te ${h('transfer-encoding')} vary ${h('vary')} etag ${h('etag')} ar ${h('accept-ranges')} range ${h('content-range')} ct ${h('content-type').replace(/\d{20}/, 'BOUNDARY')} ${text}`);
    }
    return out;
  };
  const nginx = await run(ports.nginx);
  const sluice = await run(ports.sluice);
  assert.deepEqual(sluice, nginx);
});

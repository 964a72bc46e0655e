/**
 * `limit_conn_zone ... fleet` and `limit_req_zone ... fleet` (issue 17, shared limits): Sluice
 * instances sharing a real redis-server meet one limit per key, a closed tunnel frees a place on
 * another instance, a dead instance's holds expire with its record, and with Redis stopped each
 * instance falls back to its own counts and rejoins when Redis returns.
 */
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startHttpBackends } from '../helpers/backends.js';
import type { HttpBackend } from '../helpers/backends.js';
import { httpGet } from '../helpers/cli-process.js';
import { parsePrometheus, sampleValue } from '../helpers/prometheus.js';
import { startTestProxy } from '../helpers/proxy.js';
import type { TestProxy } from '../helpers/proxy.js';
import { startRedis } from '../helpers/redis.js';
import type { RunningRedis } from '../helpers/redis.js';
import { waitFor, withTimeout } from '../helpers/wait.js';

const PERIODS = 'heartbeat=200ms ttl=1s counts_cache=50ms timeout=500ms';

/** $binary_remote_addr of 127.0.0.1, as the Redis key ends with it. */
const LOOPBACK = String.fromCharCode(127, 0, 0, 1);

function limitsConfig(redisUrl: string, name: string, backend: HttpBackend): string {
  return `fleet ${redisUrl} name=${name} ${PERIODS};
error_log stderr notice;
events {}
http {
  limit_conn_zone $binary_remote_addr zone=perip:1m fleet;
  limit_req_zone $binary_remote_addr zone=rpm:1m rate=1r/m fleet;
  limit_conn_zone $binary_remote_addr zone=mine:1m;
  server {
    listen 127.0.0.1:0;
    location = /status { sluice_status; }
    location = /metrics { sluice_metrics; }
    location /ws { limit_conn perip 4; proxy_pass http://${backend.addr}; }
    location /req { limit_req zone=rpm burst=4 nodelay; proxy_pass http://${backend.addr}; }
    location /both { limit_conn perip 4; limit_conn mine 1; proxy_pass http://${backend.addr}; }
  }
}`;
}

async function startInstances(t: TestContext, redis: RunningRedis, names: readonly string[]): Promise<TestProxy[]> {
  const [backend] = await startHttpBackends(t, 'b1');
  const proxies: TestProxy[] = [];
  for (const name of names) proxies.push(await startTestProxy(limitsConfig(redis.url, name, backend!), { t }));
  await waitFor(() => proxies.every((p) => p.handle.stats.snapshot().fleet?.members.length === names.length),
    { what: 'the members to see each other', timeoutMs: 5_000, intervalMs: 20 });
  return proxies;
}

/** A tunnel through `proxy`, or the status that refused it. */
async function tunnel(proxy: TestProxy, path = '/ws'): Promise<WebSocket | number> {
  const ws = new WebSocket(proxy.wsUrl(path));
  return withTimeout(new Promise<WebSocket | number>((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      res.resume();
      ws.terminate();
    });
    ws.once('error', reject);
  }), 5_000, 'a tunnel to open or be refused');
}

async function open(proxy: TestProxy, path = '/ws'): Promise<WebSocket> {
  const r = await tunnel(proxy, path);
  if (typeof r === 'number') assert.fail(`refused with ${r}`);
  return r;
}

function closeAll(tunnels: readonly WebSocket[]): Promise<void[]> {
  return Promise.all(tunnels.map((ws) => new Promise<void>((resolve) => {
    if (ws.readyState === WebSocket.CLOSED) return resolve();
    ws.once('close', () => resolve());
    ws.close();
  })));
}

/** The fleet's open count for 127.0.0.1 in zone "perip", summed over the members' fields. */
async function held(redis: RunningRedis): Promise<number> {
  const values = await redis.command('HVALS', `sluice:{fleet}:limit_conn:perip:${LOOPBACK}`) as string[];
  return values.reduce((n, v) => n + Number(v), 0);
}

test('limit_conn ... fleet: tunnels spread over two instances are refused at the fleet total; a closed one frees a place on the other', async (t) => {
  const redis = await startRedis(t);
  const [a, b] = await startInstances(t, redis, ['a', 'b']) as [TestProxy, TestProxy];
  const tunnels: WebSocket[] = [];
  t.after(() => closeAll(tunnels));
  tunnels.push(await open(a), await open(b), await open(a), await open(b));
  assert.equal(await tunnel(a), 503, 'the 5th on a');
  assert.equal(await tunnel(b), 503, 'the 5th on b');
  assert.equal(await held(redis), 4);
  assert.deepEqual(await redis.command('HGET', `sluice:{fleet}:limit_conn:perip:${LOOPBACK}`, `a/${process.pid}`), '2');

  await closeAll([tunnels.shift()!]);
  await waitFor(async () => (await held(redis)) === 3, { what: 'a\'s closed tunnel released in Redis', timeoutMs: 5_000, intervalMs: 20 });
  tunnels.push(await open(b));
  assert.equal(await tunnel(b), 503);
  assert.equal(a.errorLines.filter((l) => /limiting connections by zone "perip"/.test(l)).length, 1, a.errorLines.join('\n'));

  // A level with a fleet zone and a local one: refused by the local one, the fleet hold is given back.
  await closeAll(tunnels.splice(0));
  await waitFor(async () => (await held(redis)) === 0, { what: 'every hold released', timeoutMs: 5_000, intervalMs: 20 });
  tunnels.push(await open(a, '/both'));
  assert.equal(await tunnel(a, '/both'), 503, 'limit_conn mine 1 on this instance');
  await waitFor(async () => (await held(redis)) === 1, { what: 'the refused request\'s fleet hold given back', timeoutMs: 5_000, intervalMs: 20 });
  tunnels.push(await open(b, '/both'));
  assert.equal(await held(redis), 2);
});

test('limit_conn ... fleet: a hold whose acquire timed out on a hung Redis, and then ran there, is given back when Redis answers again', async (t) => {
  const redis = await startRedis(t);
  const [a] = await startInstances(t, redis, ['a']) as [TestProxy];
  const tunnels: WebSocket[] = [];
  t.after(() => closeAll(tunnels));
  // Hung: the acquire script is sent, times out (timeout=500ms), the tunnel counts locally.
  redis.pause();
  const during = await open(a);
  await closeAll([during]);
  // Resumed: Redis runs the script it had queued, taking a hold nobody holds any more.
  redis.resume();
  await waitFor(() => a.handle.stats.snapshot().fleet?.redisUp === true, { what: 'the member back in the fleet', timeoutMs: 5_000, intervalMs: 20 });
  // The next fleet answer gives the stray hold back: only the new tunnel stays counted.
  tunnels.push(await open(a));
  await waitFor(async () => (await held(redis)) === 1, { what: 'the stray hold released (one tunnel open)', timeoutMs: 5_000, intervalMs: 20 });
  await closeAll(tunnels.splice(0));
  await waitFor(async () => (await held(redis)) === 0, { what: 'nothing held', timeoutMs: 5_000, intervalMs: 20 });
});

test('limit_conn ... fleet: a dead instance\'s holds stop counting once its record expires', async (t) => {
  const redis = await startRedis(t);
  const [a] = await startInstances(t, redis, ['a']) as [TestProxy];
  // A member that died holding 3 of the 4: its record expires after its ttl, as a killed instance's does.
  await redis.command('SET', 'sluice:{fleet}:member:ghost/1', JSON.stringify({ n: 'ghost', p: 1, h: 'h', s: 0, w: 0, t: 3, c: 3, u: {} }), 'PX', 1500);
  await redis.command('SADD', 'sluice:{fleet}:members', 'ghost/1');
  await redis.command('HSET', `sluice:{fleet}:limit_conn:perip:${LOOPBACK}`, 'ghost/1', 3);
  const tunnels: WebSocket[] = [];
  t.after(() => closeAll(tunnels));
  tunnels.push(await open(a));
  assert.equal(await tunnel(a), 503, 'the ghost\'s 3 count while its record lives');
  await waitFor(async () => (await redis.command('EXISTS', 'sluice:{fleet}:member:ghost/1')) === 0, { what: 'the ghost\'s record to expire', timeoutMs: 5_000, intervalMs: 50 });
  for (let i = 0; i < 3; i++) tunnels.push(await open(a));
  assert.equal(await tunnel(a), 503);
  assert.equal(await redis.command('HEXISTS', `sluice:{fleet}:limit_conn:perip:${LOOPBACK}`, 'ghost/1'), 0, 'the dead member\'s field is dropped');

  // A graceful stop leaves the fleet: its holds stop counting at once.
  const b = await startTestProxy(limitsConfig(redis.url, 'b', (await startHttpBackends(t, 'b2'))[0]!), { t });
  await waitFor(() => b.handle.stats.snapshot().fleet?.members.length === 2, { what: 'b to join', timeoutMs: 5_000, intervalMs: 20 });
  await closeAll(tunnels.splice(0, 2));
  await waitFor(async () => (await held(redis)) === 2, { what: 'two released', timeoutMs: 5_000, intervalMs: 20 });
  const onB = [await open(b), await open(b)];
  assert.equal(await tunnel(a), 503);
  // b goes: its holds leave with its record.
  await b.stop();
  await waitFor(async () => (await redis.command('EXISTS', `sluice:{fleet}:member:b/${process.pid}`)) === 0, { what: 'b to leave', timeoutMs: 5_000, intervalMs: 20 });
  tunnels.push(await open(a), await open(a));
  assert.equal(await tunnel(a), 503);
  await closeAll(onB);
});

test('limit_req ... fleet: requests over three instances count in one bucket', async (t) => {
  const redis = await startRedis(t);
  const proxies = await startInstances(t, redis, ['a', 'b', 'c']);
  // rate=1r/m, burst=4, nodelay: 5 pass, then 503 (a minute leaks one request).
  const statuses: number[] = [];
  for (let i = 0; i < 8; i++) statuses.push((await httpGet(proxies[i % 3]!.port, '/req')).status);
  assert.deepEqual(statuses, [200, 200, 200, 200, 200, 503, 503, 503]);
  const bucket = await redis.command('HGET', `sluice:{fleet}:limit_req:rpm:${LOOPBACK}`, 'e');
  // The 5th request left 4 in excess (a refused one is not accounted, as in nginx).
  assert.ok(Number(bucket) > 3900 && Number(bucket) <= 4000, `excess ${String(bucket)}`);
  const ttl = Number(await redis.command('PTTL', `sluice:{fleet}:limit_req:rpm:${LOOPBACK}`));
  assert.ok(ttl > 60_000 && ttl <= 360_000, `the bucket expires once leaked empty (plus a minute): ${ttl}`);
  assert.ok(proxies[2]!.errorLines.some((l) => /limiting requests, excess: (5\.000|4\.9\d\d) by zone "rpm"/.test(l)), proxies[2]!.errorLines.join('\n'));
});

test('Redis stopped mid-test: fleet zones count locally, nothing crashes, and they count in Redis again when it returns', async (t) => {
  const redis = await startRedis(t);
  const [a, b] = await startInstances(t, redis, ['a', 'b']) as [TestProxy, TestProxy];
  const tunnels: WebSocket[] = [];
  t.after(() => closeAll(tunnels));
  tunnels.push(await open(a), await open(b));

  await redis.stop();
  for (const p of [a, b]) await waitFor(() => p.handle.stats.snapshot().fleet?.redisUp === false, { what: 'Redis seen down', timeoutMs: 5_000, intervalMs: 20 });
  // Each instance now limits on its own: 4 more each (the tunnels opened before count in Redis only).
  for (const p of [a, b]) {
    for (let i = 0; i < 4; i++) tunnels.push(await open(p));
    assert.equal(await tunnel(p), 503, 'the local limit');
    const line = await p.waitForErrorLine(/limit zone "perip"/, 2_000);
    assert.match(line, /\[warn\] \d+#0: fleet: limit zone "perip" counts on this instance only \(redis unreachable\) until redis is reachable again$/);
  }
  const statuses: number[] = [];
  for (let i = 0; i < 6; i++) statuses.push((await httpGet(a.port, '/req')).status);
  assert.deepEqual(statuses, [200, 200, 200, 200, 200, 503], 'limit_req on a\'s own bucket');
  const snap = a.handle.stats.snapshot().fleet!;
  assert.deepEqual(snap.limits!.local, ['perip', 'rpm']);
  assert.ok(snap.limits!.fallbacks >= 11, `fallbacks ${snap.limits!.fallbacks}`);
  const metrics = parsePrometheus((await httpGet(a.port, '/metrics')).body);
  assert.equal(sampleValue(metrics, 'sluice_fleet_limit_zone_local', { zone: 'perip' }), 1);
  assert.equal(sampleValue(metrics, 'sluice_fleet_limit_fallbacks_total', {}), snap.limits!.fallbacks + 0);
  assert.equal(a.errorLines.filter((l) => l.includes('limit zone "perip"')).length, 1, 'logged once per outage');

  // Local holds go back to the local store, whatever Redis does meanwhile.
  await closeAll(tunnels.splice(2));
  await redis.start();
  for (const p of [a, b]) await waitFor(() => p.handle.stats.snapshot().fleet?.members.length === 2, { what: 'the members back', timeoutMs: 10_000, intervalMs: 20 });
  // The restarted Redis is empty: 4 new tunnels fill the fleet's limit again.
  const after = [await open(a), await open(b), await open(a), await open(b)];
  tunnels.push(...after);
  assert.equal(await tunnel(a), 503);
  assert.equal(await held(redis), 4);
  const line = await a.waitForErrorLine(/count across the fleet again/, 2_000);
  assert.match(line, /\[notice\] \d+#0: fleet: limit zones "perip"(, "rpm")? count across the fleet again$/);
  assert.deepEqual(a.handle.stats.snapshot().fleet!.limits!.local, []);
});

/**
 * A fleet of Sluice instances sharing state through a real redis-server (issue 17): membership on
 * /status and /metrics, `least_conn fleet` balancing tunnels opened on three instances where each
 * instance's own least_conn does not, a dead member's connections ceasing to count after its ttl,
 * Redis stopped and restarted under load, Sentinel, and reloads that keep one connection.
 */
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startHttpBackends } from '../helpers/backends.js';
import type { HttpBackend } from '../helpers/backends.js';
import { CliProcess, httpGet } from '../helpers/cli-process.js';
import { tempDir } from '../helpers/temp.js';
import { testCerts } from '../helpers/certs.js';
import { parsePrometheus, sampleValue } from '../helpers/prometheus.js';
import { startTestProxy } from '../helpers/proxy.js';
import type { TestProxy } from '../helpers/proxy.js';
import { startRedis, startSentinel } from '../helpers/redis.js';
import type { RunningRedis } from '../helpers/redis.js';
import { waitFor, withTimeout } from '../helpers/wait.js';
import type { StatsSnapshot } from '../../src/observability/stats.js';

/** Short periods, so that the fleet settles within a test's bounded waits. */
const PERIODS = 'heartbeat=200ms ttl=1s counts_cache=50ms timeout=500ms';

function fleetConfig(redisUrl: string, name: string, method: string, backends: readonly HttpBackend[], extra = ''): string {
  return `fleet ${redisUrl} name=${name} ${PERIODS} ${extra};
error_log stderr notice;
events {}
http {
  upstream ws {
    ${method};
${backends.map((b) => `    server ${b.addr};`).join('\n')}
  }
  server {
    listen 127.0.0.1:0;
    location = /status { sluice_status; }
    location = /metrics { sluice_metrics; }
    location / { proxy_pass http://ws; }
  }
}`;
}

function snapshot(p: TestProxy): StatsSnapshot {
  return p.handle.stats.snapshot();
}

/** An open tunnel through `proxy`, and the backend the proxy chose (the echo's X-Echo-Id). */
interface Tunnel {
  readonly ws: WebSocket;
  readonly backend: string;
}

async function openTunnel(proxy: TestProxy): Promise<Tunnel> {
  const ws = new WebSocket(proxy.wsUrl('/'));
  const backend = await withTimeout(new Promise<string>((resolve, reject) => {
    ws.once('upgrade', (res) => resolve(String(res.headers['x-echo-id'])));
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`status ${res.statusCode}`)));
  }), 5_000, 'a tunnel to open');
  await withTimeout(new Promise<void>((resolve) => (ws.readyState === WebSocket.OPEN ? resolve() : ws.once('open', () => resolve()))), 5_000, 'open');
  return { ws, backend };
}

async function closeTunnels(tunnels: readonly Tunnel[]): Promise<void> {
  await Promise.all(tunnels.map((t) => new Promise<void>((resolve) => {
    if (t.ws.readyState === WebSocket.CLOSED) return resolve();
    t.ws.once('close', () => resolve());
    t.ws.close();
  })));
}

function countBy(tunnels: readonly Tunnel[], ids: readonly string[]): Record<string, number> {
  const out: Record<string, number> = Object.fromEntries(ids.map((id) => [id, 0]));
  for (const t of tunnels) if (t.ws.readyState === WebSocket.OPEN) out[t.backend] = (out[t.backend] ?? 0) + 1;
  return out;
}

/** Waits until `viewer` has read `member`'s record with this many tunnels open. */
async function seen(viewer: TestProxy, member: string, tunnels: number): Promise<void> {
  await waitFor(() => snapshot(viewer).fleet?.members.find((m) => m.name === member)?.tunnels === tunnels,
    { what: `${member}'s ${tunnels} tunnels in the fleet as another member reads it`, timeoutMs: 5_000, intervalMs: 20 });
}

async function startFleet(t: TestContext, redis: RunningRedis, method: string, backends: readonly HttpBackend[], prefix: string): Promise<TestProxy[]> {
  const proxies: TestProxy[] = [];
  for (const name of ['a', 'b', 'c']) proxies.push(await startTestProxy(fleetConfig(redis.url, name, method, backends, `key_prefix=${prefix}`), { t }));
  await waitFor(() => proxies.every((p) => snapshot(p).fleet?.members.length === 3), { what: 'three members to see each other', timeoutMs: 5_000, intervalMs: 20 });
  return proxies;
}

/**
 * The unbalancing pattern: A opens 40 tunnels (10 per backend), then its clients on b1 and b2
 * leave; B opens 20, then C 8. A process that counts only its own tunnels spreads B's and C's
 * evenly and leaves b3 and b4 with 10 more each; the fleet fills b1 and b2 first.
 */
async function unbalancingRun(t: TestContext, redis: RunningRedis, method: string, backends: readonly HttpBackend[], prefix: string): Promise<{ counts: Record<string, number>; proxies: TestProxy[]; tunnels: Tunnel[] }> {
  const [a, b, c] = await startFleet(t, redis, method, backends, prefix) as [TestProxy, TestProxy, TestProxy];
  const tunnels: Tunnel[] = [];
  t.after(() => closeTunnels(tunnels));
  const ids = backends.map((x) => x.id);
  for (let i = 0; i < 40; i++) tunnels.push(await openTunnel(a));
  assert.deepEqual(countBy(tunnels, ids), { b1: 10, b2: 10, b3: 10, b4: 10 });
  await closeTunnels(tunnels.filter((x) => x.backend === 'b1' || x.backend === 'b2'));
  await waitFor(() => snapshot(a).tunnels.open === 20, { what: 'A to have 20 tunnels', timeoutMs: 5_000, intervalMs: 10 });
  await seen(b, 'a', 20);
  for (let i = 0; i < 20; i++) tunnels.push(await openTunnel(b));
  await seen(c, 'b', 20);
  await seen(c, 'a', 20);
  for (let i = 0; i < 8; i++) tunnels.push(await openTunnel(c));
  return { counts: countBy(tunnels, ids), proxies: [a, b, c], tunnels };
}

function spread(counts: Record<string, number>): number {
  const v = Object.values(counts);
  return Math.max(...v) - Math.min(...v);
}

test('least_conn fleet balances tunnels opened on three instances where each instance\'s own least_conn does not', async (t) => {
  const redis = await startRedis(t);
  const backends = await startHttpBackends(t, 'b1', 'b2', 'b3', 'b4');

  const local = await unbalancingRun(t, redis, 'least_conn', backends, 'local:');
  assert.deepEqual(local.counts, { b1: 7, b2: 7, b3: 17, b4: 17 }, 'each instance balanced only its own tunnels');
  await closeTunnels(local.tunnels);
  for (const p of local.proxies) await p.stop();

  const fleet = await unbalancingRun(t, redis, 'least_conn fleet', backends, 'fleet:');
  assert.ok(spread(fleet.counts) <= 2, `within a few of each other: ${JSON.stringify(fleet.counts)}`);
  assert.equal(Object.values(fleet.counts).reduce((n, x) => n + x, 0), 48);

  // Every member's view: its tunnels and its open connections per backend, on /status and /metrics.
  const [a] = fleet.proxies as [TestProxy];
  await seen(a, 'c', 8);
  const status = JSON.parse((await httpGet(a.port, '/status')).body) as StatsSnapshot;
  assert.equal(status.fleet!.redisUp, true);
  assert.deepEqual(status.fleet!.members.map((m) => [m.name, m.tunnels]), [['a', 20], ['b', 20], ['c', 8]]);
  const aView = status.fleet!.members[0]!.upstreams['ws']!;
  assert.deepEqual(backends.map((x) => aView[x.addr]![0]), [0, 0, 10, 10]);
  assert.equal(status.fleet!.self, `a/${process.pid}`);
  const metrics = parsePrometheus((await httpGet(a.port, '/metrics')).body);
  assert.equal(sampleValue(metrics, 'sluice_fleet_redis_up', { url: redis.url }), 1);
  assert.equal(sampleValue(metrics, 'sluice_fleet_members', {}), 3);
  assert.equal(sampleValue(metrics, 'sluice_fleet_member_tunnels_open', { member: `b/${process.pid}`, name: 'b' }), 20);
  assert.equal(sampleValue(metrics, 'sluice_fleet_member_server_connections', { member: `a/${process.pid}`, upstream: 'ws', server: backends[2]!.addr }), 10);
});

test('Redis stopped mid-test: nothing crashes, instances fall back to local counts and keep proxying, and rejoin when it returns', async (t) => {
  const redis = await startRedis(t);
  const backends = await startHttpBackends(t, 'b1', 'b2', 'b3', 'b4');
  const proxies = await startFleet(t, redis, 'least_conn fleet', backends, 'down:');
  const tunnels: Tunnel[] = [];
  t.after(() => closeTunnels(tunnels));
  for (const p of proxies) for (let i = 0; i < 4; i++) tunnels.push(await openTunnel(p));

  await redis.stop();
  for (const p of proxies) {
    const line = await p.waitForErrorLine(/fleet: redis/, 5_000);
    assert.match(line, new RegExp(`\\[error\\] \\d+#0: fleet: redis ${redis.url.replace(/[/.]/g, '\\$&')} unreachable \\(.+\\), balancing on this instance's own counts until it returns$`));
  }
  for (const p of proxies) {
    await waitFor(() => snapshot(p).fleet?.redisUp === false, { what: 'Redis shown down', timeoutMs: 5_000, intervalMs: 20 });
    assert.deepEqual(snapshot(p).fleet!.members, [], 'no stale members while Redis is down');
    const metrics = parsePrometheus((await httpGet(p.port, '/metrics')).body);
    assert.equal(sampleValue(metrics, 'sluice_fleet_redis_up', { url: redis.url }), 0);
  }
  // New tunnels are still proxied, on local counts: each instance spreads its own 4 more evenly.
  const during: Tunnel[] = [];
  for (const p of proxies) for (let i = 0; i < 4; i++) during.push(await openTunnel(p));
  tunnels.push(...during);
  assert.equal(during.length, 12);
  for (const echo of await Promise.all(during.map((x) => new Promise<string>((resolve) => {
    x.ws.once('message', (m) => resolve(String(m)));
    x.ws.send('ping');
  })))) assert.equal(echo, 'ping');
  // One line per outage, however long it lasts.
  await new Promise((r) => setTimeout(r, 300));
  for (const p of proxies) assert.equal(p.errorLines.filter((l) => l.includes('fleet: redis')).length, 1, p.errorLines.join('\n'));

  await redis.start();
  for (const p of proxies) {
    const line = await p.waitForErrorLine(/reachable again/, 10_000);
    assert.match(line, /\[notice\] \d+#0: fleet: redis redis:\/\/127\.0\.0\.1:\d+ reachable again, member "[abc]\/\d+" rejoins the fleet$/);
  }
  for (const p of proxies) {
    await waitFor(() => snapshot(p).fleet?.members.map((m) => m.tunnels).join() === '8,8,8',
      { what: 'every member back with its 8 tunnels', timeoutMs: 5_000, intervalMs: 20 });
    assert.equal(snapshot(p).fleet!.redisUp, true);
  }
  assert.equal(await redis.command('SCARD', 'down:{fleet}:members'), 3);
});

test('a member that stops writing stops counting once its record expires; a graceful stop leaves at once', async (t) => {
  const redis = await startRedis(t);
  const backends = await startHttpBackends(t, 'b1', 'b2');
  const proxy = await startTestProxy(fleetConfig(redis.url, 'a', 'least_conn fleet', backends), { t });
  // A member that died with 50 tunnels on b1: its last record, expiring as a dead member's does.
  const ghost = { n: 'ghost', p: 1, h: 'h', s: 0, w: 0, t: 50, c: 50, u: { ws: { [backends[0]!.addr]: [50, 'up'], [backends[1]!.addr]: [0, 'up'] } } };
  await redis.command('SET', 'sluice:{fleet}:member:ghost/1', JSON.stringify(ghost), 'PX', 1500);
  await redis.command('SADD', 'sluice:{fleet}:members', 'ghost/1');
  await waitFor(() => snapshot(proxy).fleet?.members.length === 2, { what: 'the ghost to be read', timeoutMs: 5_000, intervalMs: 20 });
  const tunnels: Tunnel[] = [];
  t.after(() => closeTunnels(tunnels));
  for (let i = 0; i < 4; i++) tunnels.push(await openTunnel(proxy));
  assert.deepEqual(countBy(tunnels, ['b1', 'b2']), { b1: 0, b2: 4 }, 'b1 counts the ghost\'s 50');
  await waitFor(() => snapshot(proxy).fleet?.members.length === 1, { what: 'the ghost\'s record to expire', timeoutMs: 5_000, intervalMs: 20 });
  assert.equal(await redis.command('SISMEMBER', 'sluice:{fleet}:members', 'ghost/1'), 0, 'an expired member leaves the set');
  for (let i = 0; i < 4; i++) tunnels.push(await openTunnel(proxy));
  assert.deepEqual(countBy(tunnels, ['b1', 'b2']), { b1: 4, b2: 4 });

  const other = await startTestProxy(fleetConfig(redis.url, 'b', 'least_conn fleet', backends), { t });
  await waitFor(() => snapshot(proxy).fleet?.members.length === 2, { what: 'b to join', timeoutMs: 5_000, intervalMs: 20 });
  await other.stop();
  assert.equal(await redis.command('EXISTS', `sluice:{fleet}:member:b/${process.pid}`), 0, 'a graceful stop deletes the record');
  await waitFor(() => snapshot(proxy).fleet?.members.length === 1, { what: 'b to leave', timeoutMs: 2_000, intervalMs: 20 });
});

/** The fleet's connections Redis sees (CLIENT SETNAME sluice:NAME/PID). */
async function fleetClients(redis: RunningRedis): Promise<string[]> {
  const list = String(await redis.command('CLIENT', 'LIST'));
  return [...list.matchAll(/ name=(sluice:\S+)/g)].map((m) => m[1]!).sort();
}

test('reloads keep one connection to the same Redis, move to another Redis cleanly, and leave the fleet without `fleet`', async (t) => {
  const redis = await startRedis(t);
  const other = await startRedis(t, { password: 'p@ss/word' });
  const backends = await startHttpBackends(t, 'b1');
  const proxy = await startTestProxy(fleetConfig(redis.url, 'a', 'least_conn fleet', backends), { t });
  const id = `a/${process.pid}`;
  await waitFor(async () => (await fleetClients(redis)).length === 1, { what: 'the member to connect', timeoutMs: 5_000, intervalMs: 20 });
  for (let i = 0; i < 3; i++) await proxy.handle.reload({ text: fleetConfig(redis.url, 'a', 'least_conn fleet', backends) });
  assert.deepEqual(await fleetClients(redis), [`sluice:${id}`], 'one connection after three reloads');

  // A new name: the old member leaves at once, the connection stays.
  await proxy.handle.reload({ text: fleetConfig(redis.url, 'renamed', 'least_conn fleet', backends) });
  await waitFor(() => snapshot(proxy).fleet?.members.map((m) => m.id).join() === `renamed/${process.pid}`, { what: 'the renamed member alone', timeoutMs: 5_000, intervalMs: 20 });
  assert.equal(await redis.command('EXISTS', `sluice:{fleet}:member:${id}`), 0);
  assert.equal((await fleetClients(redis)).length, 1);

  // Another Redis (with a password): the old connection closes, the member leaves the old Redis.
  await proxy.handle.reload({ text: fleetConfig(other.url, 'a', 'least_conn fleet', backends) });
  await waitFor(async () => (await fleetClients(other)).length === 1 && (await fleetClients(redis)).length === 0, { what: 'the move to the other Redis', timeoutMs: 5_000, intervalMs: 20 });
  assert.equal(await redis.command('SCARD', 'sluice:{fleet}:members'), 0);
  await waitFor(() => snapshot(proxy).fleet?.members.length === 1 && snapshot(proxy).fleet?.url === `redis://:***@127.0.0.1:${other.port}`, { what: 'the member on the other Redis', timeoutMs: 5_000, intervalMs: 20 });

  // Without `fleet`: the member leaves and the connection closes.
  await proxy.handle.reload({ text: fleetConfig(other.url, 'a', 'least_conn fleet', backends).replace(/^fleet .*\n/, '').replace('least_conn fleet', 'least_conn') });
  await waitFor(async () => (await fleetClients(other)).length === 0, { what: 'the connection to close', timeoutMs: 5_000, intervalMs: 20 });
  assert.equal(await other.command('SCARD', 'sluice:{fleet}:members'), 0);
  assert.equal(snapshot(proxy).fleet, undefined);
});

test('Sentinel: members find the master through redis-sentinel:// and register there', async (t) => {
  const master = await startRedis(t);
  const sentinel = await startSentinel(t, master);
  const backends = await startHttpBackends(t, 'b1');
  const proxy = await startTestProxy(fleetConfig(sentinel.url, 'a', 'least_conn fleet', backends), { t });
  await waitFor(() => snapshot(proxy).fleet?.members.length === 1, { what: 'the member registered through Sentinel', timeoutMs: 10_000, intervalMs: 20 });
  assert.equal(snapshot(proxy).fleet!.redisUp, true);
  assert.equal(snapshot(proxy).fleet!.url, sentinel.url);
  assert.equal(await master.command('SISMEMBER', 'sluice:{fleet}:members', `a/${process.pid}`), 1, 'the record is on the master');
});

test('a Redis that is down when the instance starts: the instance serves on local counts and joins when Redis comes', async (t) => {
  const redis = await startRedis(t);
  await redis.stop();
  const backends = await startHttpBackends(t, 'b1', 'b2');
  const proxy = await startTestProxy(fleetConfig(redis.url, 'a', 'least_conn fleet', backends), { t });
  await proxy.waitForErrorLine(/fleet: redis .* unreachable/, 5_000);
  const tunnel = await openTunnel(proxy);
  t.after(() => closeTunnels([tunnel]));
  assert.equal(snapshot(proxy).fleet!.redisUp, false);
  await redis.start();
  await proxy.waitForErrorLine(/reachable again/, 10_000);
  await waitFor(() => snapshot(proxy).fleet?.members[0]?.tunnels === 1, { what: 'the member with its tunnel', timeoutMs: 5_000, intervalMs: 20 });
});

test('worker_processes 2: each worker is a member NAME/PID, /status (merged by the primary) lists both, a graceful stop removes them', async (t) => {
  const redis = await startRedis(t);
  const backends = await startHttpBackends(t, 'b1', 'b2');
  const dir = tempDir(t);
  const file = dir.write('fleet.conf', `worker_processes 2;\n${fleetConfig(redis.url, 'edge', 'least_conn fleet', backends)}`);
  const child = new CliProcess(t, ['-c', file], dir.path);
  const port = await child.port();
  await waitFor(async () => (await redis.command('SCARD', 'sluice:{fleet}:members')) === 2, { what: 'two worker members', timeoutMs: 10_000, intervalMs: 50 });
  const ids = (await redis.command('SMEMBERS', 'sluice:{fleet}:members')) as string[];
  assert.ok(ids.every((id) => /^edge\/\d+$/.test(id)) && !ids.includes(`edge/${child.pid}`), `workers, not the primary: ${ids.join()}`);
  // Tunnels on whichever worker (opened faster than counts_cache, so a worker may not have read
  // the other's latest pick yet: within a few, not exact).
  const tunnels: Tunnel[] = [];
  t.after(() => closeTunnels(tunnels));
  const proxy = { wsUrl: (path: string) => `ws://127.0.0.1:${port}${path}` } as TestProxy;
  for (let i = 0; i < 6; i++) tunnels.push(await openTunnel(proxy));
  const status = async (): Promise<StatsSnapshot> => JSON.parse((await httpGet(port, '/status')).body) as StatsSnapshot;
  await waitFor(async () => (await status()).fleet?.members.reduce((n, m) => n + m.tunnels, 0) === 6, { what: 'the six tunnels in the fleet', timeoutMs: 5_000, intervalMs: 50 });
  const fleet = (await status()).fleet!;
  assert.deepEqual(fleet.members.map((m) => m.id).sort(), [...ids].sort());
  assert.equal(fleet.redisUp, true);
  assert.ok(spread(countBy(tunnels, ['b1', 'b2'])) <= 2, JSON.stringify(countBy(tunnels, ['b1', 'b2'])));
  await closeTunnels(tunnels);
  await child.stop('SIGQUIT');
  assert.equal(await redis.command('SCARD', 'sluice:{fleet}:members'), 0, 'each worker left the fleet on its way out');
});

test('rediss:// with ca=: the member talks TLS to Redis, trusting the given CA only', async (t) => {
  const certs = await testCerts();
  const redis = await startRedis(t, { tls: { certFile: certs.localhost.certFile, keyFile: certs.localhost.keyFile, caFile: certs.ca.certFile, ca: certs.ca.cert } });
  const backends = await startHttpBackends(t, 'b1');
  const proxy = await startTestProxy(fleetConfig(redis.url, 'a', 'least_conn fleet', backends, `ca=${certs.ca.certFile}`), { t });
  await waitFor(() => snapshot(proxy).fleet?.members.length === 1, { what: 'the member registered over TLS', timeoutMs: 5_000, intervalMs: 20 });
  assert.equal(await redis.command('SISMEMBER', 'sluice:{fleet}:members', `a/${process.pid}`), 1);
  // Another CA: the handshake fails, the instance serves on local counts.
  const wrong = await startTestProxy(fleetConfig(redis.url, 'b', 'least_conn fleet', backends, `ca=${certs.otherCa.certFile}`), { t });
  const line = await wrong.waitForErrorLine(/fleet: redis/, 5_000);
  assert.match(line, /unreachable \(.*(certificate|self.signed|verify).*\)/i);
  assert.equal(snapshot(wrong).fleet!.redisUp, false);
});

test('a hung Redis (connections open, no answers) counts as down after timeout=, and requests never wait for it', async (t) => {
  const redis = await startRedis(t);
  const backends = await startHttpBackends(t, 'b1', 'b2');
  const proxy = await startTestProxy(fleetConfig(redis.url, 'a', 'least_conn fleet', backends), { t });
  await waitFor(() => snapshot(proxy).fleet?.members.length === 1, { what: 'the member registered', timeoutMs: 5_000, intervalMs: 20 });
  redis.pause();
  const line = await proxy.waitForErrorLine(/fleet: redis/, 5_000);
  assert.match(line, /unreachable \(Command timed out\)/);
  const tunnels: Tunnel[] = [];
  t.after(() => closeTunnels(tunnels));
  for (let i = 0; i < 4; i++) tunnels.push(await openTunnel(proxy));
  assert.deepEqual(countBy(tunnels, ['b1', 'b2']), { b1: 2, b2: 2 });
  redis.resume();
  await proxy.waitForErrorLine(/reachable again/, 5_000);
  await waitFor(() => snapshot(proxy).fleet?.members[0]?.tunnels === 4, { what: 'the member back with its 4 tunnels', timeoutMs: 5_000, intervalMs: 20 });
});

test('Redis Cluster: redis-cluster:// reaches a (one-node) cluster, the fleet\'s keys in one hash slot', async (t) => {
  const node = await startRedis(t, { args: ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-announce-ip', '127.0.0.1'] });
  // One master serving every slot: a cluster ioredis must discover through CLUSTER SLOTS.
  await node.command('CLUSTER', 'ADDSLOTSRANGE', 0, 16383);
  await waitFor(async () => /cluster_state:ok/.test(String(await node.command('CLUSTER', 'INFO'))), { what: 'the cluster to be ok', timeoutMs: 10_000, intervalMs: 50 });
  const backends = await startHttpBackends(t, 'b1', 'b2');
  const url = `redis-cluster://127.0.0.1:${node.port}`;
  const a = await startTestProxy(fleetConfig(url, 'a', 'least_conn fleet', backends), { t });
  const b = await startTestProxy(fleetConfig(url, 'b', 'least_conn fleet', backends), { t });
  await waitFor(() => [a, b].every((p) => snapshot(p).fleet?.members.length === 2), { what: 'two members through the cluster', timeoutMs: 10_000, intervalMs: 20 });
  assert.equal(await node.command('CLUSTER', 'KEYSLOT', 'sluice:{fleet}:members'), await node.command('CLUSTER', 'KEYSLOT', `sluice:{fleet}:member:a/${process.pid}`));
  const tunnels: Tunnel[] = [];
  t.after(() => closeTunnels(tunnels));
  for (let i = 0; i < 2; i++) tunnels.push(await openTunnel(a));
  await seen(b, 'a', 2);
  for (let i = 0; i < 2; i++) tunnels.push(await openTunnel(b));
  assert.deepEqual(countBy(tunnels, ['b1', 'b2']), { b1: 2, b2: 2 });
});

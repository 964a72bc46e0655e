/**
 * `sticky learn` with `fleet`: the session table is in a real redis-server, so a session the
 * upstream created through instance A routes requests that reach instance B; with Redis stopped,
 * each instance answers from its own table and nothing fails.
 */
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { startHttpBackend } from '../helpers/backends.js';
import type { HttpBackend } from '../helpers/backends.js';
import { startTestProxy } from '../helpers/proxy.js';
import type { TestProxy } from '../helpers/proxy.js';
import { startRedis } from '../helpers/redis.js';
import { waitFor } from '../helpers/wait.js';

async function sessionBackend(t: TestContext, id: string): Promise<HttpBackend> {
  let n = 0;
  const b = await startHttpBackend((req, res) => {
    if (!/(^|;\s*)sid=/.test(req.headers.cookie ?? '')) res.setHeader('Set-Cookie', `sid=${id}-${++n}; Path=/`);
    res.setHeader('X-Backend', id);
    res.end(id);
  }, { id });
  t.after(() => b.close());
  return b;
}

function config(redisUrl: string, name: string, backends: readonly HttpBackend[]): string {
  return `fleet ${redisUrl} name=${name} heartbeat=200ms ttl=1s counts_cache=50ms timeout=500ms;
error_log stderr notice;
events {}
http {
  upstream app {
    ${backends.map((b) => `server ${b.addr};`).join(' ')}
    sticky learn create=$upstream_cookie_sid lookup=$cookie_sid zone=client_sessions:1m timeout=10m;
  }
  server { listen 127.0.0.1:0; location / { proxy_pass http://app; } }
}`;
}

async function get(proxy: TestProxy, cookie?: string): Promise<{ backend: string; sid: string | null }> {
  const res = await fetch(proxy.url('/'), { headers: cookie === undefined ? {} : { cookie } });
  await res.text();
  return { backend: res.headers.get('x-backend') ?? '', sid: res.headers.get('set-cookie')?.split(';')[0] ?? null };
}

test('sticky learn with fleet: a session learnt on instance A routes on instance B; Redis down, each instance keeps serving', async (t) => {
  const redis = await startRedis(t);
  const backends = [await sessionBackend(t, 'b1'), await sessionBackend(t, 'b2'), await sessionBackend(t, 'b3')];
  const a = await startTestProxy(config(redis.url, 'a', backends), { t });
  const b = await startTestProxy(config(redis.url, 'b', backends), { t });
  await waitFor(() => a.handle.stats.snapshot().fleet?.redisUp === true && b.handle.stats.snapshot().fleet?.redisUp === true,
    { what: 'both instances on Redis', timeoutMs: 5_000, intervalMs: 20 });

  const sessions: { sid: string; owner: string }[] = [];
  for (let i = 0; i < 3; i++) {
    const first = await get(a);
    sessions.push({ sid: first.sid!, owner: first.backend });
  }
  assert.deepEqual(sessions.map((s) => s.owner).sort(), ['b1', 'b2', 'b3'], 'round robin on A');
  for (const s of sessions) {
    await waitFor(async () => (await redis.command('GET', `sluice:{fleet}:sticky:client_sessions:${s.sid.slice(4)}`)) !== null,
      { what: `${s.sid} in Redis`, timeoutMs: 5_000, intervalMs: 20 });
    const pttl = Number(await redis.command('PTTL', `sluice:{fleet}:sticky:client_sessions:${s.sid.slice(4)}`));
    assert.ok(pttl > 0 && pttl <= 600_000, `expires after timeout=10m: ${pttl}`);
    for (let i = 0; i < 3; i++) assert.equal((await get(b, s.sid)).backend, s.owner, `${s.sid} on B`);
  }
  assert.equal(await redis.command('GET', `sluice:{fleet}:sticky:client_sessions:${sessions[0]!.sid.slice(4)}`), backends.find((x) => x.id === sessions[0]!.owner)!.addr);

  await redis.stop();
  await waitFor(() => b.handle.stats.snapshot().fleet?.redisUp === false, { what: 'Redis seen down', timeoutMs: 5_000, intervalMs: 20 });
  // A knows its sessions from its own table; B, which never learnt them, balances (and keeps serving).
  for (const s of sessions) assert.equal((await get(a, s.sid)).backend, s.owner);
  const served = new Set<string>();
  for (let i = 0; i < 3; i++) served.add((await get(b, sessions[0]!.sid)).backend);
  assert.deepEqual([...served].sort(), ['b1', 'b2', 'b3']);
  // A session learnt on B during the outage sticks on B.
  const during = await get(b);
  for (let i = 0; i < 3; i++) assert.equal((await get(b, during.sid!)).backend, during.backend);
});

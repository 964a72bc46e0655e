/**
 * `fleet` without any Redis (the normal suite: only Node and npm): `sluice -t` checks the
 * directive without connecting, reports its problems with file:line, and an instance whose Redis
 * never answers serves on local counts, says so once, and shows it on /status and /metrics.
 * The fleet itself, on a real redis-server, is test/e2e/fleet.e2e.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startHttpBackends } from '../helpers/backends.js';
import { httpGet, okLines, runCli } from '../helpers/cli-process.js';
import { refusedPort } from '../helpers/ports.js';
import { parsePrometheus, sampleValue } from '../helpers/prometheus.js';
import { startTestProxy } from '../helpers/proxy.js';
import { tempDir } from '../helpers/temp.js';
import { withTimeout } from '../helpers/wait.js';
import type { StatsSnapshot } from '../../src/observability/stats.js';

test('-t checks a fleet config without connecting to Redis, and reports a bad one with file:line', async (t) => {
  const dir = tempDir(t);
  const port = await refusedPort();
  const good = dir.write('good.conf', `fleet redis://:secret@127.0.0.1:${port}/2 name=edge-1 counts_cache=100ms;
events {}
http { upstream u { least_conn fleet; server 127.0.0.1:1; } server { listen 127.0.0.1:0; location / { proxy_pass http://u; } } }
`);
  const ok = await runCli(['-t', '-c', good]);
  assert.equal(ok.stderr, okLines(good));
  assert.equal(ok.code, 0);

  const bad = dir.write('bad.conf', `fleet redis://127.0.0.1:${port} heartbeat=2s ttl=1s;
events {}
http { upstream u { least_conn fleet; server 127.0.0.1:1; } }
`);
  const res = await runCli(['-t', '-c', bad]);
  assert.equal(res.code, 1);
  assert.match(res.stderr, new RegExp(`sluice: \\[emerg\\] "ttl" must be longer than "heartbeat" in "fleet" directive in ${bad.replace(/[.]/g, '\\.')}:1`));
  const missing = dir.write('missing.conf', 'events {}\nhttp {\n  upstream u { least_conn fleet; server 127.0.0.1:1; }\n}\n');
  const res2 = await runCli(['-t', '-c', missing]);
  assert.equal(res2.code, 1);
  assert.match(res2.stderr, new RegExp(`"least_conn fleet" requires the "fleet" directive in ${missing.replace(/[.]/g, '\\.')}:3`));
});

test('a Redis that never answers: tunnels are proxied on local counts, the log says so once, /status and /metrics show it', async (t) => {
  const port = await refusedPort();
  const [a, b] = await startHttpBackends(t, 'a', 'b');
  const url = `redis://127.0.0.1:${port}`;
  const proxy = await startTestProxy(`fleet ${url} name=alone counts_cache=20ms timeout=200ms;
events {}
http {
  upstream ws { least_conn fleet; server ${a!.addr}; server ${b!.addr}; }
  server {
    listen 127.0.0.1:0;
    location = /status { sluice_status; }
    location = /metrics { sluice_metrics; }
    location / { proxy_pass http://ws; }
  }
}`, { t });
  const line = await proxy.waitForErrorLine(/fleet: redis/, 5_000);
  // Refused at once; on a loaded machine the client's 200 ms connect timeout can come first.
  assert.match(line, new RegExp(`\\[error\\] \\d+#0: fleet: redis redis://127\\.0\\.0\\.1:${port} unreachable \\(connect (ECONNREFUSED 127\\.0\\.0\\.1:${port}|ETIMEDOUT)\\), balancing on this instance's own counts until it returns$`));
  const sockets: WebSocket[] = [];
  t.after(() => { for (const s of sockets) s.terminate(); });
  const ids: string[] = [];
  for (let i = 0; i < 4; i++) {
    const ws = new WebSocket(proxy.wsUrl('/'));
    sockets.push(ws);
    ids.push(await withTimeout(new Promise<string>((resolve, reject) => {
      ws.once('upgrade', (res) => resolve(String(res.headers['x-echo-id'])));
      ws.once('error', reject);
    }), 5_000, 'a tunnel'));
  }
  assert.deepEqual(ids.sort(), ['a', 'a', 'b', 'b'], 'least_conn on local counts');
  const status = JSON.parse((await httpGet(proxy.port, '/status')).body) as StatsSnapshot;
  assert.equal(status.fleet!.redisUp, false);
  assert.equal(status.fleet!.url, url);
  assert.deepEqual(status.fleet!.members, []);
  assert.match(status.fleet!.error!, /ECONNREFUSED/);
  assert.equal(status.upstreams['ws']!.method, 'least_conn fleet');
  const metrics = parsePrometheus((await httpGet(proxy.port, '/metrics')).body);
  assert.equal(sampleValue(metrics, 'sluice_fleet_redis_up', { url }), 0);
  assert.equal(sampleValue(metrics, 'sluice_fleet_members', {}), 0);
  // Reconnects keep failing (every 100 ms, then up to every 2 s): still one line for the outage.
  await new Promise((r) => setTimeout(r, 400));
  assert.equal(proxy.errorLines.filter((l) => l.includes('fleet:')).length, 1, proxy.errorLines.join('\n'));
});

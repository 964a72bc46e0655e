/**
 * `limit_conn_zone ... fleet` and `limit_req_zone ... fleet` without a reachable Redis (nothing
 * listens on the fleet's port): each instance counts on its own store, never waits, logs it once
 * per zone and shows it on /status. The shared counting itself is tested with a real redis-server
 * in test/e2e/fleet-limits.e2e.test.ts.
 */
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { test } from 'node:test';
import { startHttpBackend } from '../helpers/backends.js';
import { conf } from '../helpers/config-text.js';
import { refusedPort } from '../helpers/ports.js';
import { startTestProxy } from '../helpers/proxy.js';
import { rawRequest, rawWebSocket, wsHandshakeRequest } from '../helpers/raw-client.js';
import { httpGet } from '../helpers/cli-process.js';

test('fleet limit zones with Redis unreachable: local limits apply, logged once per zone, shown on /status', async (t) => {
  const backend = await startHttpBackend();
  t.after(() => backend.close());
  const redisPort = await refusedPort();
  const proxy = await startTestProxy(conf(`
    limit_conn_zone $binary_remote_addr zone=perip:1m fleet;
    limit_req_zone $binary_remote_addr zone=rpm:1m rate=1r/m fleet;
    server {
      listen 127.0.0.1:0;
      location = /status { sluice_status; }
      location /ws { limit_conn perip 2; proxy_pass http://${backend.addr}; }
      location /req { limit_req zone=rpm burst=1 nodelay; proxy_pass http://${backend.addr}; }
    }`, `fleet redis://127.0.0.1:${redisPort} name=solo timeout=200ms;\nerror_log stderr notice;`), { t });
  const open: Socket[] = [];
  t.after(() => { for (const s of open) s.destroy(); });
  for (let i = 0; i < 2; i++) {
    const ws = await rawWebSocket(proxy.port, { path: '/ws' });
    open.push(ws.socket);
    assert.equal(ws.head.statusCode, 101);
  }
  const refused = await rawRequest(proxy.port, wsHandshakeRequest({ path: '/ws' }), { until: 'response' });
  refused.socket.destroy();
  assert.equal(refused.head!.statusCode, 503);
  assert.deepEqual([(await httpGet(proxy.port, '/req')).status, (await httpGet(proxy.port, '/req')).status, (await httpGet(proxy.port, '/req')).status], [200, 200, 503]);
  const line = await proxy.waitForErrorLine(/limit zone "perip"/);
  assert.match(line, /\[warn\] \d+#0: fleet: limit zone "perip" counts on this instance only \(redis unreachable\) until redis is reachable again$/);
  assert.equal(proxy.errorLines.filter((l) => l.includes('limit zone "perip"')).length, 1, proxy.errorLines.join('\n'));
  assert.equal(proxy.errorLines.filter((l) => l.includes('limit zone "rpm"')).length, 1, proxy.errorLines.join('\n'));
  const status = JSON.parse((await httpGet(proxy.port, '/status')).body) as { fleet: { redisUp: boolean; limits: { local: string[]; fallbacks: number } } };
  assert.equal(status.fleet.redisUp, false);
  assert.deepEqual(status.fleet.limits, { local: ['perip', 'rpm'], fallbacks: 6 });
});

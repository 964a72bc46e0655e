/**
 * limit_req_zone / limit_req: requests and WebSocket handshakes per key under nginx's leaky bucket.
 * `nodelay` passes the burst at once and refuses the rest; without it the burst is delayed on a
 * timer; `delay=N` lets N pass at once and delays the rest; a client that leaves while delayed
 * ends its request (499) without reaching the backend. limit_req_status, limit_req_log_level
 * (delays log one level lower), dry run, $limit_req_status, inheritance. Rates are chosen so that
 * what leaks during a test never changes an outcome (1r/m: one request a minute); no timing is
 * asserted.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { startHttpBackend, type HttpBackend } from '../helpers/backends.js';
import { conf } from '../helpers/config-text.js';
import { fileLines, waitForFileLine } from '../helpers/log-files.js';
import { errorPage } from '../helpers/pages.js';
import { startTestProxy, type TestProxy } from '../helpers/proxy.js';
import { headerValue, rawConnect, rawRequest, rawWebSocket, wsHandshakeRequest } from '../helpers/raw-client.js';
import { tempDir } from '../helpers/temp.js';
import { testCerts } from '../helpers/certs.js';
import { h2Connect, h2Request, h2WebSocket } from '../helpers/h2-client.js';
import { parsePrometheus, sampleValue } from '../helpers/prometheus.js';
import { waitFor } from '../helpers/wait.js';

interface Seen {
  readonly status: number;
  readonly limit: string | undefined;
}

async function get(port: number, path: string, extra = ''): Promise<Seen> {
  const r = await rawRequest(port, `GET ${path} HTTP/1.1\r\nHost: a\r\n${extra}Connection: close\r\n\r\n`);
  assert.ok(r.head, `a response to ${path}`);
  return { status: r.head.statusCode, limit: headerValue(r.head, 'x-limit-req') };
}

/**
 * An echo backend and a proxy with `limit_req_zone ... zone=one` at `rate`, `$limit_req_status`
 * sent as X-Limit-Req, `http` lines in http {}, `main` lines, `listen` parameters and
 * `server(upstream)` in its server.
 */
async function limited(t: TestContext, rate: string, server: (upstream: string) => string, http = '', main = '', listen = ''): Promise<{ backend: HttpBackend; proxy: TestProxy }> {
  const backend = await startHttpBackend();
  t.after(() => backend.close());
  const proxy = await startTestProxy(conf(`
    limit_req_zone $binary_remote_addr zone=one:1m rate=${rate};
    ${http}
    server {
      listen 127.0.0.1:0${listen};
      add_header X-Limit-Req $limit_req_status always;
      ${server(`http://${backend.addr}`)}
    }`, main), { t });
  return { backend, proxy };
}

test('limit_req burst nodelay: the burst passes at once, the rest gets 503 with nginx\'s page and log line', async (t) => {
  const { backend, proxy } = await limited(t, '1r/m', (up) => `location /nodelay { limit_req zone=one burst=2 nodelay; proxy_pass ${up}; }`);
  const seen: Seen[] = [];
  for (let i = 0; i < 5; i++) seen.push(await get(proxy.port, '/nodelay'));
  assert.deepEqual(seen, [
    { status: 200, limit: 'PASSED' }, { status: 200, limit: 'PASSED' }, { status: 200, limit: 'PASSED' },
    { status: 503, limit: 'REJECTED' }, { status: 503, limit: 'REJECTED' },
  ]);
  assert.equal(backend.requests.length, 3);
  const r = await rawRequest(proxy.port, 'GET /nodelay HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
  assert.equal(r.body.toString(), errorPage('503 Service Temporarily Unavailable'));
  // The excess is nginx's: three requests over, less what leaked at 1r/m (a few milli-requests).
  await proxy.waitForErrorLine(/\[error\] \d+#0: \*\d+ limiting requests, excess: [23]\.\d{3} by zone "one", client: 127\.0\.0\.1, server: , request: "GET \/nodelay HTTP\/1\.1", host: "a"$/);
});

test('limit_req counts WebSocket handshakes; limit_req_status and limit_req_log_level; inheritance', async (t) => {
  const backend = await startHttpBackend();
  t.after(() => backend.close());
  const proxy = await startTestProxy(conf(`
    limit_req_zone $binary_remote_addr zone=hs:1m rate=1r/m;
    limit_req_zone $http_x_user zone=user:1m rate=1r/m;
    server {
      listen 127.0.0.1:0;
      limit_req zone=hs;
      limit_req_status 429;
      limit_req_log_level notice;
      location /ws { proxy_pass http://${backend.addr}; }
      location /own { limit_req zone=user nodelay; proxy_pass http://${backend.addr}; }
    }`, 'error_log stderr info;'), { t });
  const handshake = async (): Promise<number> => {
    const r = await rawRequest(proxy.port, wsHandshakeRequest({ path: '/ws' }), { until: 'response' });
    r.socket.destroy();
    return r.head!.statusCode;
  };
  assert.equal(await handshake(), 101);
  assert.equal(await handshake(), 429);
  await proxy.waitForErrorLine(/\[notice\] .*limiting requests, excess: [01]\.\d{3} by zone "hs", client: 127\.0\.0\.1/);
  // /own has a limit_req of its own: the server's is not inherited (the hs zone is spent by now).
  assert.equal((await get(proxy.port, '/own', 'X-User: ann\r\n')).status, 200);
  assert.equal((await get(proxy.port, '/own', 'X-User: ann\r\n')).status, 429);
  assert.equal((await get(proxy.port, '/own', 'X-User: bob\r\n')).status, 200);
  // No X-User: an empty key is not limited.
  for (let i = 0; i < 3; i++) assert.equal((await get(proxy.port, '/own')).status, 200);
});

test('limit_req without nodelay delays the burst on a timer; over the burst is refused', async (t) => {
  const { backend, proxy } = await limited(t, '1r/s', (up) => `location / { limit_req zone=one burst=1; proxy_pass ${up}; }`, '', 'error_log stderr info;');
  assert.deepEqual(await get(proxy.port, '/'), { status: 200, limit: 'PASSED' });
  // Two at once within the second: one fits the burst and waits its turn, the other is refused.
  const both = await Promise.all([get(proxy.port, '/'), get(proxy.port, '/')]);
  both.sort((a, b) => a.status - b.status);
  assert.deepEqual(both, [{ status: 200, limit: 'DELAYED' }, { status: 503, limit: 'REJECTED' }]);
  // Delays log one level below limiting (error -> warn).
  await proxy.waitForErrorLine(/\[warn\] .*delaying request, excess: 0\.\d{3}, by zone "one", client: 127\.0\.0\.1/);
  assert.equal(backend.requests.length, 2);
});

test('limit_req delay=N passes N at once and delays the rest; a client that leaves while delayed ends with 499, the backend never sees it', async (t) => {
  const log = tempDir(t).join('access.log');
  const { backend, proxy } = await limited(t, '1r/m', (up) => `access_log ${log} limits; location / { limit_req zone=one burst=3 delay=1; proxy_pass ${up}; }`,
    "log_format limits '$request_uri $status $limit_req_status';", 'error_log stderr info;');
  assert.deepEqual(await get(proxy.port, '/1'), { status: 200, limit: 'PASSED' });
  assert.deepEqual(await get(proxy.port, '/2'), { status: 200, limit: 'PASSED' });
  // The third is over delay=1: delayed (a minute at 1r/m); its client gives up.
  for (const path of ['/3', '/4']) {
    const socket = await rawConnect(proxy.port);
    socket.write(`GET ${path} HTTP/1.1\r\nHost: a\r\n\r\n`);
    await proxy.waitForErrorLine(new RegExp(`\\[warn\\] .*delaying request, excess: \\d\\.\\d{3}, by zone "one", client: 127\\.0\\.0\\.1, server: , request: "GET ${path} HTTP/1\\.1"`));
    socket.destroy();
    await waitForFileLine(log, `${path} 499 DELAYED`);
  }
  // Delayed requests were accounted: the fifth is over the burst.
  assert.deepEqual(await get(proxy.port, '/5'), { status: 503, limit: 'REJECTED' });
  assert.deepEqual(backend.requests.map((r) => r.url), ['/1', '/2']);
  await waitForFileLine(log, '/5 503');
  assert.deepEqual(fileLines(log), ['/1 200 PASSED', '/2 200 PASSED', '/3 499 DELAYED', '/4 499 DELAYED', '/5 503 REJECTED']);
});

test('limit_req_dry_run logs and passes; $limit_req_status says so', async (t) => {
  const { backend, proxy } = await limited(t, '1r/m', (up) => `limit_req_dry_run on;
      location / { limit_req zone=one; proxy_pass ${up}; }
      location /burst { limit_req zone=one burst=5; proxy_pass ${up}; }`, '', 'error_log stderr info;');
  assert.deepEqual(await get(proxy.port, '/'), { status: 200, limit: 'PASSED' });
  assert.deepEqual(await get(proxy.port, '/'), { status: 200, limit: 'REJECTED_DRY_RUN' });
  await proxy.waitForErrorLine(/\[error\] .*limiting requests, dry run, excess: [01]\.\d{3} by zone "one", client: 127\.0\.0\.1, server: , request: "GET \/ HTTP\/1\.1"/);
  assert.deepEqual(await get(proxy.port, '/burst'), { status: 200, limit: 'DELAYED_DRY_RUN' });
  await proxy.waitForErrorLine(/\[warn\] .*delaying request, dry run, excess: [01]\.\d{3}, by zone "one"/);
  await waitFor(() => backend.requests.length === 3, { what: 'every request at the backend' });
});

test('limit_req over HTTP/2: extended CONNECT handshakes and plain streams share the bucket', async (t) => {
  const certs = await testCerts();
  const { proxy } = await limited(t, '1r/m', (up) => `
      http2 on;
      ssl_certificate ${certs.localhost.certFile};
      ssl_certificate_key ${certs.localhost.keyFile};
      location / { limit_req zone=one burst=1 nodelay; proxy_pass ${up}; }`, '', '', ' ssl');
  const client = await h2Connect(proxy.port);
  t.after(() => client.close());
  const ws = await h2WebSocket(client, '/ws');
  assert.equal(Number(ws.headers[':status']), 200);
  const plain = await h2Request(client, { ':path': '/plain' });
  assert.deepEqual([plain.status, plain.headers['x-limit-req']], [200, 'PASSED']);
  const refused = await h2WebSocket(client, '/ws');
  assert.deepEqual([Number(refused.headers[':status']), refused.headers['x-limit-req']], [503, 'REJECTED']);
  refused.stream.close();
  ws.stream.close();
});

test('limit zone figures: /metrics and the status JSON count each zone\'s outcomes as $limit_req_status / $limit_conn_status say them', async (t) => {
  const { proxy } = await limited(t, '1r/m', (up) => `
      location = /metrics { sluice_metrics; }
      location = /status.json { sluice_status; }
      location /req { limit_req zone=figures burst=1 nodelay; proxy_pass ${up}; }
      location /dry { limit_req zone=dry burst=1 nodelay; limit_req_dry_run on; proxy_pass ${up}; }
      location /conn { limit_conn perip 1; proxy_pass ${up}; }
      location /conn-dry { limit_conn perip 1; limit_conn_dry_run on; proxy_pass ${up}; }`,
  `limit_req_zone $binary_remote_addr zone=figures:1m rate=1r/m;
    limit_req_zone $binary_remote_addr zone=dry:1m rate=1r/m;
    limit_conn_zone $binary_remote_addr zone=perip:1m;`);
  const statuses: number[] = [];
  for (const path of ['/req', '/req', '/req', '/dry', '/dry', '/dry']) statuses.push((await get(proxy.port, path)).status);
  // A tunnel holds perip's place: the next handshake is refused, and passes under dry run.
  const held = await rawWebSocket(proxy.port, { path: '/conn' });
  t.after(() => held.socket.destroy());
  statuses.push(held.head.statusCode);
  for (const path of ['/conn', '/conn-dry']) {
    const r = await rawRequest(proxy.port, wsHandshakeRequest({ path }), { until: 'response' });
    r.socket.destroy();
    statuses.push(r.head!.statusCode);
  }
  assert.deepEqual(statuses, [200, 200, 503, 200, 200, 200, 101, 503, 101]);
  const families = parsePrometheus((await rawRequest(proxy.port, 'GET /metrics HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')).body.toString());
  const req = (zone: string, result: string): number | undefined => sampleValue(families, 'sluice_limit_req_requests_total', { zone, result });
  assert.deepEqual([req('figures', 'passed'), req('figures', 'rejected'), req('figures', 'delayed')], [2, 1, 0]);
  assert.deepEqual([req('dry', 'passed'), req('dry', 'rejected_dry_run'), req('dry', 'rejected')], [2, 1, 0]);
  const conn = (result: string): number | undefined => sampleValue(families, 'sluice_limit_conn_requests_total', { zone: 'perip', result });
  assert.deepEqual([conn('passed'), conn('rejected'), conn('rejected_dry_run')], [1, 1, 1]);
  const status = JSON.parse((await rawRequest(proxy.port, 'GET /status.json HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')).body.toString()) as Record<string, unknown>;
  // Other zones count the file's earlier tests (counters live for the process).
  const reqs = status['limitReqs'] as Record<string, unknown>;
  assert.deepEqual({ figures: reqs['figures'], dry: reqs['dry'] }, {
    figures: { passed: 2, delayed: 0, rejected: 1, delayed_dry_run: 0, rejected_dry_run: 0 },
    dry: { passed: 2, delayed: 0, rejected: 0, delayed_dry_run: 0, rejected_dry_run: 1 },
  });
  assert.deepEqual(status['limitConns'], { perip: { passed: 1, rejected: 1, rejected_dry_run: 1 } });
});

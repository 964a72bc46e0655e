/**
 * The client-limit and tuning directives (issue 13): values, inheritance, contexts and nginx's
 * messages for bad values.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bad, good, http, show } from './fixtures.js';

test('client limits: values, defaults (nginx\'s) and http > server > location inheritance', async () => {
  const config = await good(http(
    '  client_max_body_size 10m;',
    '  large_client_header_buffers 8 16k;',
    '  keepalive_disable safari msie6;',
    '  limit_rate 1m;',
    '  server {',
    '    listen 8080;',
    '    lingering_close always;',
    '    location / { return 204; }',
    '    location /up { client_max_body_size 0; keepalive_requests 5; keepalive_time 10m; lingering_timeout 2s; limit_rate_after 500k; keepalive_disable none; return 204; }',
    '  }',
    '  server { listen 8081; return 204; }',
  ));
  const [first, second] = config.http!.servers;
  const root = first!.locations.find((l) => l.pattern === '/')!.settings;
  const up = first!.locations.find((l) => l.pattern === '/up')!.settings;
  assert.equal(root.clientMaxBodySize, 10 * 1024 * 1024);
  assert.equal(up.clientMaxBodySize, 0);
  assert.deepEqual(root.largeClientHeaderBuffers, { number: 8, size: 16 * 1024 });
  assert.equal(root.lingeringClose, 'always');
  assert.equal(up.lingeringTimeout, 2000);
  assert.equal(up.lingeringTime, 30_000);
  assert.equal(root.keepaliveRequests, 1000);
  assert.equal(up.keepaliveRequests, 5);
  assert.equal(up.keepaliveTime, 600_000);
  assert.deepEqual(root.keepaliveDisable, ['safari', 'msie6']);
  assert.deepEqual(up.keepaliveDisable, []);
  assert.equal(root.limitRate, 1024 * 1024);
  assert.equal(up.limitRateAfter, 500 * 1024);
  assert.equal(second!.settings.lingeringClose, 'on');
  assert.equal(second!.settings.resetTimedoutConnection, false);
  assert.equal(second!.settings.clientBodyBufferSize, 16 * 1024);
});

test('nginx\'s hash and pool sizes load (Sluice has no such tables to size) and are still checked', async () => {
  await good(http(
    '  server_names_hash_max_size 1024;',
    '  server_names_hash_bucket_size 128;',
    '  variables_hash_max_size 2048;',
    '  variables_hash_bucket_size 64;',
    '  map_hash_max_size 4096;',
    '  map_hash_bucket_size 64;',
    '  proxy_headers_hash_max_size 1024;',
    '  proxy_headers_hash_bucket_size 128;',
    '  connection_pool_size 512;',
    '  request_pool_size 4k;',
    '  client_body_temp_path /var/cache/nginx/client_temp 1 2;',
    '  proxy_temp_path /tmp/proxy_temp;',
    '  fastcgi_temp_path /tmp/fastcgi 2;',
    '  uwsgi_temp_path /tmp/uwsgi;',
    '  scgi_temp_path /tmp/scgi;',
    '  server { listen 8080; proxy_headers_hash_bucket_size 256; return 204; }',
  ));
  const problems = await bad(http(
    '  server_names_hash_bucket_size 12x;',
    '  client_max_body_size 1q;',
    '  large_client_header_buffers 0 8k;',
    '  server { listen 8080; lingering_close sometimes; server_names_hash_max_size 10; keepalive_disable opera; return 204; }',
    '  proxy_temp_path /tmp/p 3;',
  ));
  assert.deepEqual(problems.map(show), [
    '"server_names_hash_bucket_size" directive invalid value in <inline>:3',
    '"client_max_body_size" directive invalid value in <inline>:4',
    '"large_client_header_buffers" directive invalid value in <inline>:5',
    'invalid value "sometimes" in "lingering_close" directive, it must be "off", "on" or "always" in <inline>:6',
    '"server_names_hash_max_size" directive is not allowed here in <inline>:6',
    'invalid value "opera" in "keepalive_disable" directive, it must be "none", "msie6" or "safari" in <inline>:6',
    'invalid value "3" in "proxy_temp_path" directive in <inline>:7',
  ]);
});

test('proxy_buffer_size is kept; proxy_buffers and proxy_busy_buffers_size are checked as nginx checks them', async () => {
  const config = await good(http(
    '  proxy_buffer_size 16k;',
    '  proxy_buffers 4 32k;',
    '  proxy_busy_buffers_size 64k;',
    '  server { listen 8080; location / { proxy_buffer_size 8k; proxy_pass http://127.0.0.1:9; } location /d { proxy_pass http://127.0.0.1:9; } }',
  ));
  const locations = config.http!.servers[0]!.locations;
  assert.equal(locations.find((l) => l.pattern === '/')!.settings.proxyBufferSize, 8 * 1024);
  assert.equal(locations.find((l) => l.pattern === '/d')!.settings.proxyBufferSize, 16 * 1024);
  const problems = await bad(http('  proxy_buffers 1 4k;', '  server { listen 8080; proxy_buffers 4 0; proxy_busy_buffers_size x; return 204; }'));
  assert.deepEqual(problems.map(show), [
    'there must be at least 2 "proxy_buffers" in <inline>:3',
    '"proxy_buffers" directive invalid value in <inline>:4',
    '"proxy_busy_buffers_size" directive invalid value in <inline>:4',
  ]);
});

test('listen socket parameters: ipv6only, backlog, bind, reuseport and so_keepalive, with nginx\'s messages', async () => {
  const config = await good(http(
    '  server { listen [::]:8080 ipv6only=off; listen 127.0.0.1:8081 bind backlog=1024 so_keepalive=30m::10; listen 8082 so_keepalive=off; listen 8083 reuseport; return 204; }',
  ));
  const [v6, local, plain, reuse] = config.http!.servers[0]!.listens;
  assert.deepEqual(v6!.socket, { ipv6only: false, backlog: 511, bind: true, reuseport: false, keepalive: null });
  assert.deepEqual(local!.socket, { ipv6only: true, backlog: 1024, bind: true, reuseport: false, keepalive: { on: true, idleMs: 1_800_000 } });
  assert.deepEqual(plain!.socket, { ipv6only: true, backlog: 511, bind: true, reuseport: false, keepalive: { on: false, idleMs: 0 } });
  // reuseport implies bind, as in nginx (where Node has no reusePort it is warned about: listen-reuseport.test.ts).
  assert.deepEqual(reuse!.socket, { ipv6only: true, backlog: 511, bind: true, reuseport: true, keepalive: null });
  const problems = await bad(http('  server { listen [::]:80 ipv6only=maybe; listen 81 backlog=x; listen 82 so_keepalive=soon; return 204; }'));
  assert.deepEqual(problems.map(show), [
    'invalid ipv6only flags "maybe" in "[::]:80" of the "listen" directive in <inline>:3',
    'invalid backlog "x" in "81" of the "listen" directive in <inline>:3',
    'invalid so_keepalive value: "soon" in "82" of the "listen" directive in <inline>:3',
  ]);
});

test('realip directives: networks checked, header kept lower-cased, proxy_protocol accepted as the PROXY header', async () => {
  const config = await good(http('  set_real_ip_from 10.0.0.0/8;', '  set_real_ip_from ::1;', '  real_ip_header X-Forwarded-For;', '  real_ip_recursive on;', '  server { listen 8080; return 204; }'));
  const s = config.http!.servers[0]!.settings;
  assert.equal(s.realIpFrom.length, 2);
  assert.equal(s.realIpHeader, 'x-forwarded-for');
  assert.equal(s.realIpRecursive, true);
  const pp = await good(http('  real_ip_header proxy_protocol;', '  server { listen 8080 proxy_protocol; return 204; }'));
  assert.equal(pp.http!.servers[0]!.settings.realIpHeader, 'proxy_protocol');
  assert.equal(pp.http!.servers[0]!.listens[0]!.proxyProtocol, true);
  const problems = await bad(http('  set_real_ip_from example.com;', '  server { listen 8080; return 204; }'));
  assert.deepEqual(problems.map(show), ['invalid parameter "example.com" in <inline>:3']);
});

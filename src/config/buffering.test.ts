/**
 * The body buffering directives (issue 14): values, nginx's defaults, inheritance, and nginx's
 * messages for bad values.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { bad, good, http, show } from './fixtures.js';

test('buffering: nginx\'s defaults, values and http > server > location inheritance', async () => {
  const config = await good(http(
    '  proxy_request_buffering off;',
    '  client_body_temp_path /var/tmp/body 1 2;',
    '  proxy_buffers 16 8k;',
    '  proxy_ignore_headers X-Accel-Buffering expires;',
    '  server {',
    '    listen 8080;',
    '    location / { proxy_pass http://127.0.0.1:9; }',
    '    location /b { proxy_pass http://127.0.0.1:9; proxy_request_buffering on; client_body_in_file_only clean; proxy_set_body "a=$arg_a"; proxy_method POST; proxy_temp_path tmp/p 2; proxy_max_temp_file_size 0; proxy_temp_file_write_size 16k; proxy_busy_buffers_size 16k; proxy_ignore_client_abort on; client_body_in_single_buffer on; }',
    '  }',
  ), { prefix: '/srv/sluice' });
  const settings = (p: string) => config.http!.servers[0]!.locations.find((l) => l.pattern === p)!.settings.buffering;
  const root = settings('/');
  const b = settings('/b');
  assert.equal(root.requestBuffering, false);
  assert.deepEqual(root.clientBodyTempPath, { path: '/var/tmp/body', levels: [1, 2] });
  assert.deepEqual(root.proxyTempPath, { path: resolve('/srv/sluice', 'proxy_temp'), levels: [] });
  assert.deepEqual(root.proxyBuffers, { number: 16, size: 8192 });
  assert.deepEqual([...root.ignoreHeaders], ['x-accel-buffering', 'expires']);
  assert.equal(root.clientBodyInFileOnly, 'off');
  assert.equal(root.proxySetBody, null);
  assert.equal(root.maxTempFileSize, 1024 * 1024 * 1024);
  assert.equal(root.ignoreClientAbort, false);
  assert.equal(b.requestBuffering, true);
  assert.equal(b.clientBodyInFileOnly, 'clean');
  assert.ok(b.proxySetBody !== null && b.proxyMethod?.constant === 'POST');
  assert.deepEqual(b.proxyTempPath, { path: resolve('/srv/sluice', 'tmp/p'), levels: [2] });
  assert.equal(b.maxTempFileSize, 0);
  assert.equal(b.tempFileWriteSize, 16 * 1024);
  assert.equal(b.busyBuffersSize, 16 * 1024);
  assert.equal(b.ignoreClientAbort, true);
  assert.equal(b.clientBodyInSingleBuffer, true);
  assert.deepEqual(b.clientBodyTempPath, root.clientBodyTempPath, 'inherited');
  const defaults = (await good(http('  server { listen 8080; location / { proxy_pass http://127.0.0.1:9; } }'), { prefix: '/p' })).http!.servers[0]!.locations[0]!.settings;
  assert.equal(defaults.buffering.requestBuffering, true);
  assert.equal(defaults.proxyBuffering, true);
  assert.deepEqual(defaults.buffering.clientBodyTempPath, { path: '/p/client_body_temp', levels: [] });
});

test('buffering: nginx\'s messages for bad values', async () => {
  const problems = await bad(http(
    '  proxy_request_buffering maybe;',
    '  client_body_in_file_only sometimes;',
    '  client_body_temp_path /tmp/b 1 3;',
    '  proxy_ignore_headers X-Accel-Buffering X-Nothing;',
    '  proxy_max_temp_file_size 1q;',
    '  server { listen 8080; location / { proxy_set_body "$nope"; proxy_method; proxy_pass http://127.0.0.1:9; } }',
  ));
  assert.deepEqual(problems.map(show), [
    'invalid value "maybe" in "proxy_request_buffering" directive, it must be "on" or "off" in <inline>:3',
    'invalid value "sometimes" in "client_body_in_file_only" directive, it must be "off", "on" or "clean" in <inline>:4',
    'invalid value "3" in "client_body_temp_path" directive in <inline>:5',
    'invalid value "X-Nothing" in "proxy_ignore_headers" directive in <inline>:6',
    '"proxy_max_temp_file_size" directive invalid value in <inline>:7',
    'invalid number of arguments in "proxy_method" directive in <inline>:8',
    'unknown "nope" variable in <inline>:8',
  ]);
});

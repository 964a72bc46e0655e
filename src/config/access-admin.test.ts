/** allow / deny and the status handlers in the config: syntax, inheritance, nginx's messages. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bad, good, http, show } from './fixtures.js';

test('allow/deny: rules in order; a level with rules of its own inherits none', async () => {
  const c = await good(http(
    '  allow 10.0.0.0/8;',
    '  deny all;',
    '  server {',
    '    listen 8080;',
    '    location /a { proxy_pass http://127.0.0.1:9000; }',
    '    location /b { allow 2001:db8::/32; deny 192.168.1.7; proxy_pass http://127.0.0.1:9000; }',
    '  }',
  ));
  const server = c.http!.servers[0]!;
  assert.deepEqual(c.http!.settings.access.map((r) => [r.deny, r.text]), [[false, '10.0.0.0/8'], [true, 'all']]);
  assert.equal(server.settings.access, c.http!.settings.access, 'a server without rules inherits http\'s');
  assert.deepEqual(server.locations[0]!.settings.access.map((r) => r.text), ['10.0.0.0/8', 'all']);
  const b = server.locations[1]!.settings.access;
  assert.deepEqual(b.map((r) => [r.deny, r.family, r.text]), [[false, 6, '2001:db8::/32'], [true, 4, '192.168.1.7']]);
  assert.equal(b[1]!.loc.line, 8);
});

test('allow/deny and status handlers: errors with nginx wording and hints', async () => {
  const problems = await bad(http(
    '  server {',
    '    listen 8080;',
    '    allow example.com;',
    '    deny 10.0.0.0/33;',
    '    allow unix:;',
    '    location /s { stub_status off; }',
    '    location /m { sluice_metrics; proxy_pass http://127.0.0.1:9000; }',
    '    location /d { sluice_dashboard; sluice_status; }',
    '    location /x { sluice_status on; }',
    '  }',
    '  sluice_metrics;',
  ));
  assert.deepEqual(problems.map(show), [
    'invalid parameter "example.com" in <inline>:5',
    'invalid parameter "10.0.0.0/33" in <inline>:6',
    'invalid parameter "unix:" in <inline>:7',
    'invalid value "off" in "stub_status" directive in <inline>:8',
    '"sluice_metrics" cannot be combined with "proxy_pass" in one location in <inline>:9',
    '"sluice_status" cannot be combined with "sluice_dashboard" in one location in <inline>:10',
    'invalid number of arguments in "sluice_status" directive in <inline>:11',
    '"sluice_metrics" directive is not allowed here in <inline>:13',
  ]);
  assert.match(problems[0]!.hint ?? '', /host names are not accepted/);
});

test('status handlers: stub_status in server and location (old "on" form too); handlers are not inherited', async () => {
  const c = await good(http(
    '  server {',
    '    listen 8080;',
    '    stub_status;',
    '    location = /status { stub_status on; }',
    '    location /metrics { sluice_metrics; location /metrics/inner { } }',
    '    location = /json { sluice_status; }',
    '    location /dash { sluice_dashboard; }',
    '  }',
  ));
  const s = c.http!.servers[0]!;
  assert.equal(s.settings.adminHandler, 'stub_status');
  assert.deepEqual(s.locations.map((l) => l.settings.adminHandler), ['stub_status', 'metrics', 'status', 'dashboard']);
  assert.equal(s.locations[1]!.locations[0]!.settings.adminHandler, null);
  assert.equal(c.http!.settings.adminHandler, null);
});

/**
 * limit_conn_zone / limit_req_zone / limit_conn / limit_req: nginx's messages for every malformed
 * line (checked against nginx 1.22's `nginx -t`), zones used before they are defined, and the
 * merge (a level with limits of its own inherits none; the other directives one by one).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bad, http, load, show } from './fixtures.js';

test('limit zones and limits: nginx\'s messages', async () => {
  const problems = await bad(http(
    '  limit_conn_zone $binary_remote_addr zone=a:1k;',
    '  limit_conn_zone $binary_remote_addr zone=a;',
    '  limit_conn_zone $binary_remote_addr foo=1;',
    '  limit_req_zone $binary_remote_addr zone=r:1m rate=0r/s;',
    '  limit_req_zone $binary_remote_addr zone=r:1m rate=1r/h;',
    '  limit_req_zone $binary_remote_addr rate=1r/s foo;',
    '  limit_req_zone $binary_remote_addr zone=ok:1m rate=1r/s;',
    '  limit_req_zone $uri zone=ok:1m rate=1r/s;',
    '  limit_req_zone $binary_remote_addr zone=ok:2m rate=1r/s;',
    '  limit_conn_zone $binary_remote_addr zone=ok:1m;',
    '  limit_conn_zone $binary_remote_addr zone=c:1m;',
    '  server {',
    '    listen 8080;',
    '    location /a { limit_req zone=ok burst=0; }',
    '    location /b { limit_req zone=ok delay=0; }',
    '    location /c { limit_req burst=3; }',
    '    location /d { limit_req zone=ok x; }',
    '    location /e { limit_req zone=ok; limit_req zone=ok; }',
    '    location /f { limit_conn c 0; }',
    '    location /g { limit_conn c 70000; }',
    '    location /h { limit_conn c 1; limit_conn c 2; }',
    '    location /i { limit_conn_status 600; limit_req_status abc; }',
    '    location /j { limit_req_log_level debug; limit_conn_dry_run maybe; }',
    '    location /k { limit_req zone=nope; limit_conn ok 1; }',
    '  }',
  ));
  assert.deepEqual(problems.map(show), [
    'zone "zone=a:1k" is too small in <inline>:3',
    'invalid zone size "zone=a" in <inline>:4',
    'invalid parameter "foo=1" in <inline>:5',
    'invalid rate "rate=0r/s" in <inline>:6',
    'invalid rate "rate=1r/h" in <inline>:7',
    'invalid parameter "foo" in <inline>:8',
    'limit_req_zone "ok" is already bound to key "$binary_remote_addr" in <inline>:10',
    'the size 2097152 of shared memory zone "ok" conflicts with already declared size 1048576 in <inline>:11',
    'the shared memory zone "ok" is already declared for a different use in <inline>:12',
    'invalid burst value "burst=0" in <inline>:16',
    'invalid delay value "delay=0" in <inline>:17',
    '"limit_req" must have "zone" parameter in <inline>:18',
    'invalid parameter "x" in <inline>:19',
    '"limit_req" directive is duplicate in <inline>:20',
    'invalid number of connections "0" in <inline>:21',
    'connection limit must be less 65536 in <inline>:22',
    '"limit_conn" directive is duplicate in <inline>:23',
    'value must be between 400 and 599 in <inline>:24',
    '"limit_req_status" directive invalid number in <inline>:24',
    'invalid value "debug" in "limit_req_log_level" directive, it must be "info", "notice", "warn" or "error" in <inline>:25',
    'invalid value "maybe" in "limit_conn_dry_run" directive, it must be "on" or "off" in <inline>:25',
    'zero size shared memory zone "nope" in <inline>:26',
    'the shared memory zone "ok" is already declared for a different use in <inline>:26',
  ]);
});

test('limits merge as nginx\'s: a level with limits of its own inherits none; status, level, dry run one by one', async () => {
  const r = await load(http(
    '  limit_req_zone $binary_remote_addr zone=one:1m rate=30r/m;',
    '  limit_conn_zone $binary_remote_addr zone=perip:10m;',
    '  limit_req zone=one burst=5;',
    '  limit_conn perip 10;',
    '  limit_req_status 429;',
    '  server {',
    '    listen 8080;',
    '    limit_conn_log_level warn;',
    '    location /own { limit_req zone=one nodelay; limit_conn_dry_run on; }',
    '    location /inherited { }',
    '  }',
  ));
  assert.ok(r.ok, r.ok ? '' : r.problems.map(show).join('\n'));
  const zones = r.config.http!.limitZones;
  assert.deepEqual({ ...zones.get('one'), key: undefined, at: undefined }, { kind: 'req', name: 'one', key: undefined, keyText: '$binary_remote_addr', size: 1048576, rate: 500, at: undefined });
  const [own, inherited] = r.config.http!.servers[0]!.locations.map((l) => l.settings.limits);
  assert.deepEqual(own!.req, [{ zone: 'one', burst: 0, delay: Number.MAX_SAFE_INTEGER }]);
  assert.deepEqual(own!.conn, [{ zone: 'perip', conn: 10 }]);
  assert.deepEqual([own!.reqStatus, own!.connLogLevel, own!.connDryRun, own!.reqLogLevel], [429, 'warn', true, 'error']);
  assert.deepEqual(inherited!.req, [{ zone: 'one', burst: 5000, delay: 0 }]);
  assert.equal(inherited!.connDryRun, false);
});

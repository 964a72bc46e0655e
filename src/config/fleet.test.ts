/**
 * The `fleet` directive (main context) and `least_conn fleet`: what they load to, every problem
 * with its file:line and hint (docs/configuration.md#fleet).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hostname } from 'node:os';
import { bad, good, lines, show } from './fixtures.js';
import { parseFleetUrl } from './directives/fleet.js';

function withFleet(fleet: string, method = 'least_conn fleet;'): string {
  return lines(fleet, 'events {}', 'http {', `  upstream u { ${method} server 127.0.0.1:1; }`, '  server { location / { proxy_pass http://u; } }', '}');
}

test('fleet: defaults, every parameter, and least_conn fleet', async () => {
  const config = await good(withFleet('fleet redis://127.0.0.1:6390;'));
  const f = config.fleet!;
  assert.equal(f.mode, 'standalone');
  assert.deepEqual(f.nodes, [{ host: '127.0.0.1', port: 6390 }]);
  assert.deepEqual([f.tls, f.username, f.password, f.db, f.ca], [false, null, null, 0, null]);
  assert.equal(f.name, hostname().replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 64));
  assert.deepEqual([f.keyPrefix, f.heartbeat, f.ttl, f.countsCache, f.timeout], ['sluice:', 1000, 3000, 250, 1000]);
  assert.deepEqual(f.loc, { file: '<inline>', line: 1 });
  assert.deepEqual(config.http!.upstreams.get('u')!.method, { name: 'least_conn', fleet: true });

  const g = (await good(withFleet('fleet redis://:p%40ss@redis.test/3 name=edge-1 key_prefix=app:fleet: heartbeat=500ms counts_cache=100ms timeout=2s;', 'least_conn;'))).fleet!;
  assert.deepEqual([g.password, g.db, g.name, g.keyPrefix, g.heartbeat, g.ttl, g.countsCache, g.timeout], ['p@ss', 3, 'edge-1', 'app:fleet:', 500, 1500, 100, 2000]);
  assert.equal(g.display, 'redis://:***@redis.test/3', 'the password never shows');
  assert.equal((await good(withFleet('fleet redis://h ttl=10s;', 'least_conn;'))).fleet!.ttl, 10_000);
});

test('fleet URLs: users, TLS, Sentinel, Cluster, IPv6', () => {
  assert.deepEqual(parseFleetUrl('rediss://app:pw@r.test:6380'), {
    mode: 'standalone', nodes: [{ host: 'r.test', port: 6380 }], tls: true, username: 'app', password: 'pw', masterName: null, db: 0, display: 'rediss://app:***@r.test:6380',
  });
  const s = parseFleetUrl('redis-sentinel://:pw@s1,s2:26380,[::1]/mymaster/2');
  assert.ok(typeof s !== 'string');
  assert.deepEqual([s.mode, s.nodes, s.masterName, s.db, s.password], ['sentinel', [{ host: 's1', port: 26379 }, { host: 's2', port: 26380 }, { host: '::1', port: 26379 }], 'mymaster', 2, 'pw']);
  const c = parseFleetUrl('redis-cluster://n1:7000,n2:7001');
  assert.ok(typeof c !== 'string');
  assert.deepEqual([c.mode, c.nodes.length, c.tls], ['cluster', 2, false]);
  // A lone user part is the password, as ioredis and redis-cli read it.
  const lone = parseFleetUrl('redis://secret@h');
  assert.ok(typeof lone !== 'string');
  assert.deepEqual([lone.username, lone.password], [null, 'secret']);
  for (const [url, why] of [
    ['http://h', /starts with redis:\/\//],
    ['redis://a,b', /names one server/],
    ['redis://h:99999', /invalid port/],
    ['redis://h/x', /not a database number/],
    ['redis://h/1/2', /more path/],
    ['redis-sentinel://s1', /names the master/],
    ['redis-cluster://n1/1', /database 0 only/],
    ['redis://:%zz@h', /%-escape/],
    ['redis://', /has no host/],
  ] as const) {
    const r = parseFleetUrl(url);
    assert.ok(typeof r === 'string' && why.test(r), `${url}: ${String(r)}`);
  }
});

test('fleet problems: URL, parameters, context, duplicates, least_conn fleet without fleet', async () => {
  const cases: [string, string[], RegExp?][] = [
    [withFleet('fleet http://h;'), ['invalid URL "http://h" in "fleet" directive in <inline>:1'], /redis:\/\//],
    [withFleet('fleet redis://h name=a/b;'), ['invalid parameter "name=a/b" in <inline>:1'], /1 to 64 letters/],
    [withFleet('fleet redis://h "key_prefix={x}";'), ['invalid parameter "key_prefix={x}" in <inline>:1'], /up to 64 letters/],
    [withFleet('fleet redis://h heartbeat=soon;'), ['invalid parameter "heartbeat=soon" in <inline>:1'], /not a time/],
    [withFleet('fleet redis://h bogus=1;'), ['invalid parameter "bogus=1" in <inline>:1'], /name=, key_prefix=/],
    [withFleet('fleet redis://h tls;'), ['invalid parameter "tls" in <inline>:1']],
    [withFleet('fleet redis://h heartbeat=2s ttl=1s;'), ['"ttl" must be longer than "heartbeat" in "fleet" directive in <inline>:1'], /ttl=6000ms/],
    [withFleet('fleet redis://h sentinel_password=x;'), ['invalid parameter "sentinel_password=x" in <inline>:1'], /redis-sentinel/],
    [withFleet('fleet redis://h ca=/nonexistent.pem;'), ['invalid parameter "ca=/nonexistent.pem" in <inline>:1'], /TLS URL/],
    [withFleet('fleet rediss://h ca=/nonexistent.pem;'), ['cannot read "/nonexistent.pem" in "fleet" directive (ENOENT) in <inline>:1']],
    [lines('fleet redis://a;', 'fleet redis://b;', 'events {}'), ['"fleet" directive is duplicate in <inline>:2']],
    [lines('events {}', 'http { fleet redis://h; }'), ['"fleet" directive is not allowed here in <inline>:2']],
    [withFleet('fleet;', 'least_conn;'), ['invalid number of arguments in "fleet" directive in <inline>:1']],
    [lines('events {}', 'http {', '  upstream u { least_conn fleet; server 127.0.0.1:1; }', '}'), ['"least_conn fleet" requires the "fleet" directive in <inline>:3'], /fleet redis:\/\/HOST:6379/],
    [withFleet('fleet redis://h;', 'least_conn all;'), ['invalid number of arguments in "least_conn" directive in <inline>:4'], /least_conn fleet/],
  ];
  for (const [text, expected, hint] of cases) {
    const problems = await bad(text);
    assert.deepEqual(problems.map(show), expected, text);
    if (hint) assert.match(problems[0]!.hint ?? '', hint, text);
  }
});

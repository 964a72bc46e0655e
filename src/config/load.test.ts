/** Valid configurations: what they load to. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultServerByListen, formatProblem, loadConfig } from './load.js';
import { bad, good, http, lines, lookups, show } from './fixtures.js';
import { workersAcceptShared } from '../server/reuseport.js';
import type { ComplexValue, LocationConfig, ServerConfig, Settings } from './types.js';
import type { ReturnAction } from './types.js';

/** The action of a level's first `return` line (its rewrite script's step). */
function returnOf(settings: Settings): ReturnAction | null {
  const step = settings.rewrite.script?.find((x) => x.op === 'return');
  return step?.op === 'return' ? step.action : null;
}

const CLASSIC = lines(
  'events {}',
  'http {',
  '  map $http_upgrade $connection_upgrade { default upgrade; \'\' close; }',
  '  upstream websocket { server localhost:8010; server localhost:8011; }',
  '  server {',
  '    listen 80;',
  '    location / {',
  '      proxy_pass http://websocket;',
  '      proxy_http_version 1.1;',
  '      proxy_set_header Upgrade $http_upgrade;',
  '      proxy_set_header Connection $connection_upgrade;',
  '      proxy_set_header Host $host;',
  '      proxy_set_header X-Real-IP $remote_addr;',
  '      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;',
  '      proxy_read_timeout 7200s;',
  '    }',
  '  }',
  '}',
);

const v = (name: string) => ({ variable: name });

function headerList(s: Settings): [string, string][] {
  return s.proxySetHeaders.map((h) => [h.name, h.value.raw]);
}

test('the classic WebSocket config loads to what the data plane expects', async () => {
  const config = await good(CLASSIC);
  assert.equal(config.file, '<inline>');
  assert.equal(config.prefix, process.cwd());
  assert.equal(config.workerProcesses, 1);
  assert.equal(config.workerConnections, 512);
  assert.equal(config.pid, `${process.cwd()}/sluice.pid`);
  assert.deepEqual(config.errorLogs, [{ path: 'stderr', level: 'error' }]);
  assert.deepEqual(config.sources, [{ file: '<inline>', text: CLASSIC }]);
  const h = config.http!;

  assert.equal(h.maps.length, 1);
  const map = h.maps[0]!;
  assert.equal(map.variable, 'connection_upgrade');
  assert.deepEqual(map.source.parts, [v('http_upgrade')]);
  assert.equal(map.defaultValue!.constant, 'upgrade');
  assert.deepEqual([...map.exact.keys()], ['']);
  assert.equal(map.exact.get('')!.constant, 'close');
  assert.deepEqual(map.loc, { file: '<inline>', line: 3 });

  assert.deepEqual([...h.upstreams.keys()], ['websocket']);
  const up = h.upstreams.get('websocket')!;
  assert.equal(up.implicit, false);
  assert.deepEqual(up.servers.map((s) => [s.name, s.address.host, s.address.port, s.address.family, s.weight, s.maxFails, s.failTimeout]), [
    ['localhost:8010', '127.0.0.1', 8010, 4, 1, 1, 10_000],
    ['localhost:8011', '127.0.0.1', 8011, 4, 1, 1, 10_000],
  ]);
  assert.equal(up.keepalive, 0);
  assert.equal(up.keepaliveTimeout, 60_000);
  assert.equal(up.keepaliveRequests, 1000);

  assert.equal(h.servers.length, 1);
  const server = h.servers[0]!;
  assert.deepEqual(server.listens, [{ key: '0.0.0.0:80', host: '0.0.0.0', port: 80, defaultServer: false, ssl: false, http2: false, proxyProtocol: false, loc: { file: '<inline>', line: 6 } }]);
  assert.deepEqual(server.serverNames, [{ kind: 'exact', name: '' }]);
  assert.equal(server.primaryName, '');
  assert.equal(server.settings.proxyPass, null);
  assert.equal(server.locations.length, 1);

  const loc = server.locations[0]!;
  assert.equal(loc.modifier, '');
  assert.equal(loc.pattern, '/');
  assert.equal(loc.regex, null);
  assert.deepEqual(loc.loc, { file: '<inline>', line: 7 });
  const s = loc.settings;
  assert.deepEqual(s.proxyPass, { url: 'http://websocket', scheme: 'http', upstream: 'websocket', uri: null, proxyHost: 'websocket', tls: null });
  assert.equal(s.proxyHttpVersion, '1.1');
  assert.deepEqual(headerList(s), [
    ['Upgrade', '$http_upgrade'],
    ['Connection', '$connection_upgrade'],
    ['Host', '$host'],
    ['X-Real-IP', '$remote_addr'],
    ['X-Forwarded-For', '$proxy_add_x_forwarded_for'],
  ]);
  assert.deepEqual(s.proxySetHeaders[1]!.value.parts, [v('connection_upgrade')]);
  assert.equal(s.proxyReadTimeout, 7_200_000);
  assert.equal(s.proxyConnectTimeout, 60_000);
  assert.equal(s.proxySendTimeout, 60_000);
  assert.deepEqual(s.proxyRedirect, { mode: 'default' });
  assert.deepEqual([...s.proxyNextUpstream], ['error', 'timeout']);
  assert.equal(s.proxyNextUpstreamTries, 0);
  assert.equal(s.proxyNextUpstreamTimeout, 0);
  assert.equal(s.proxyBuffering, true);
  assert.deepEqual(s.addHeaders, []);
  assert.deepEqual(s.accessLogs, []);
  assert.deepEqual(s.errorLogs, [{ path: 'stderr', level: 'error' }]);
  assert.equal(s.keepaliveTimeout, 75_000);
  assert.equal(s.defaultType, 'text/plain');
  assert.deepEqual(s.rewrite, { script: null, log: false, uninitializedWarn: true });
});

test('the classic config loads with the system resolver (localhost via /etc/hosts)', async () => {
  const r = await loadConfig({ text: CLASSIC });
  if (!r.ok) assert.fail(r.problems.map(formatProblem).join('\n'));
  const servers = r.config.http!.upstreams.get('websocket')!.servers;
  assert.ok(servers.length >= 2);
  for (const s of servers) {
    assert.ok(s.address.host === '127.0.0.1' || s.address.host === '::1', s.address.host);
    assert.ok(s.address.port === 8010 || s.address.port === 8011);
  }
});

test('the result is deep-frozen: mutation throws in strict mode', async () => {
  const config = await good(CLASSIC);
  const h = config.http!;
  const loc = h.servers[0]!.locations[0]!;
  assert.throws(() => { (config as { workerProcesses: number }).workerProcesses = 2; }, TypeError);
  assert.throws(() => { (loc.settings as { proxyReadTimeout: number }).proxyReadTimeout = 1; }, TypeError);
  assert.throws(() => { (loc.settings.proxySetHeaders as unknown[]).push({}); }, TypeError);
  assert.throws(() => { (h.servers[0]!.listens[0] as { port: number }).port = 1; }, TypeError);
  assert.throws(() => { (h.upstreams as Map<string, unknown>).set('x', {}); }, TypeError);
  assert.throws(() => { (h.upstreams as Map<string, unknown>).delete('websocket'); }, TypeError);
  assert.throws(() => { (h.maps[0]!.exact as Map<string, unknown>).clear(); }, TypeError);
  assert.throws(() => { (loc.settings.proxyNextUpstream as Set<string>).add('http_500'); }, TypeError);
  assert.throws(() => { (h.upstreams.get('websocket')!.servers[0]!.address as { port: number }).port = 1; }, TypeError);
  assert.ok(Object.isFrozen(config.sources[0]));
  assert.equal(h.upstreams.size, 1);
  assert.ok(h.upstreams instanceof Map);
});

test('frozen regexes still match', async () => {
  const config = await good(http('  server {', '    server_name ~^(?P<sub>\\w+)\\.example\\.com$;', '    location ~* \\.PNG$ { }', '  }'));
  const server = config.http!.servers[0]!;
  const name = server.serverNames[0]!;
  assert.equal(name.kind, 'regex');
  const re = (name as { regex: RegExp }).regex;
  assert.ok(Object.isFrozen(re));
  assert.equal(re.exec('WWW.example.com')!.groups!['sub'], 'WWW');
  assert.ok(server.locations[0]!.regex!.test('/a/b.png'));
  assert.ok(server.locations[0]!.regex!.test('/a/b.png'));
});

test('inheritance: proxy_set_header, add_header, access_log replace per level; scalars inherit', async () => {
  const config = await good(http(
    '  proxy_set_header A http;',
    '  add_header H http;',
    '  access_log /var/log/http.log;',
    '  proxy_connect_timeout 5s;',
    '  proxy_http_version 1.1;',
    '  keepalive_timeout 30s;',
    '  default_type application/json;',
    '  server {',
    '    listen 8080;',
    '    proxy_read_timeout 2m;',
    '    location /inherit { }',
    '    location /own {',
    '      proxy_set_header B own;',
    '      add_header H2 own always;',
    '      access_log /dev/stdout;',
    '      access_log /dev/stderr combined if=$arg_log;',
    '      proxy_connect_timeout 1s;',
    '      location /own/nested { }',
    '      location /own/off { access_log off; proxy_http_version 1.0; }',
    '    }',
    '  }',
    '  server {',
    '    listen 8081;',
    '    proxy_set_header C server;',
    '    access_log server.log;',
    '    location / { }',
    '  }',
  ));
  const h = config.http!;
  assert.deepEqual(headerList(h.settings), [['A', 'http']]);
  const [s1, s2] = h.servers as [ServerConfig, ServerConfig];
  const [inherit, own] = s1.locations as [LocationConfig, LocationConfig];
  const [nested, off] = own.locations as [LocationConfig, LocationConfig];

  assert.deepEqual(headerList(inherit.settings), [['A', 'http']]);
  assert.deepEqual(inherit.settings.addHeaders.map((a) => [a.name, a.value.raw, a.always]), [['H', 'http', false]]);
  assert.deepEqual(inherit.settings.accessLogs.map((a) => a.path), ['/var/log/http.log']);
  assert.equal(inherit.settings.proxyConnectTimeout, 5000);
  assert.equal(inherit.settings.proxyReadTimeout, 120_000);
  assert.equal(inherit.settings.proxyHttpVersion, '1.1');
  assert.equal(inherit.settings.keepaliveTimeout, 30_000);
  assert.equal(inherit.settings.defaultType, 'application/json');

  assert.deepEqual(headerList(own.settings), [['B', 'own']]);
  assert.deepEqual(own.settings.addHeaders.map((a) => [a.name, a.always]), [['H2', true]]);
  assert.deepEqual(own.settings.accessLogs.map((a) => [a.path, a.format, a.condition?.raw ?? null, a.loc.line]), [
    ['stdout', 'combined', null, 17],
    ['stderr', 'combined', '$arg_log', 18],
  ]);
  assert.equal(own.settings.proxyConnectTimeout, 1000);
  assert.equal(own.settings.proxyReadTimeout, 120_000);

  assert.deepEqual(headerList(nested.settings), [['B', 'own']]);
  assert.equal(nested.settings.proxyConnectTimeout, 1000);
  assert.deepEqual(nested.settings.accessLogs.map((a) => a.path), ['stdout', 'stderr']);
  assert.deepEqual(off.settings.accessLogs, []);
  assert.equal(off.settings.proxyHttpVersion, '1.0');
  assert.deepEqual(headerList(off.settings), [['B', 'own']]);

  assert.deepEqual(headerList(s2.locations[0]!.settings), [['C', 'server']]);
  assert.deepEqual(s2.settings.accessLogs.map((a) => a.path), [`${process.cwd()}/server.log`]);
  assert.equal(s2.locations[0]!.settings.proxyReadTimeout, 60_000);
});

test('client timeouts: nginx defaults, inheritance, and keepalive_timeout\'s header value set with its timeout', async () => {
  const config = await good(http(
    '  client_header_timeout 10s;',
    '  send_timeout 20s;',
    '  keepalive_timeout 30s 25;',
    '  server {',
    '    listen 8080;',
    '    client_body_timeout 5s;',
    '    location /inherit { }',
    '    location /own { send_timeout 1s; keepalive_timeout 40s; client_body_timeout 2m; }',
    '  }',
    '  server {',
    '    listen 8081;',
    '    client_header_timeout 3s;',
    '  }',
  ));
  const h = config.http!;
  const [s1, s2] = h.servers as [ServerConfig, ServerConfig];
  const [inherit, own] = s1.locations as [LocationConfig, LocationConfig];
  const pick = (s: ServerConfig['settings']) => [s.clientHeaderTimeout, s.clientBodyTimeout, s.sendTimeout, s.keepaliveTimeout, s.keepaliveHeader];
  assert.deepEqual(pick(inherit.settings), [10_000, 5_000, 20_000, 30_000, 25]);
  // A keepalive_timeout line without a second value sends no Keep-Alive header, as in nginx.
  assert.deepEqual(pick(own.settings), [10_000, 120_000, 1_000, 40_000, 0]);
  assert.deepEqual(pick(s2.settings), [3_000, 60_000, 20_000, 30_000, 25]);
  const bare = await good(http('  server { listen 8080; }'));
  assert.deepEqual(pick(bare.http!.servers[0]!.settings), [60_000, 60_000, 60_000, 75_000, 0]);
});

test('proxy_pass and return are not inherited; error_log defaults to the main level', async () => {
  const config = await good(lines(
    'error_log /var/log/sluice.log warn;',
    'error_log stderr;',
    'events {}',
    'http {',
    '  server {',
    '    return 404;',
    '    location /a {',
    '      proxy_pass http://127.0.0.1:9000;',
    '      location /a/b { }',
    '    }',
    '    location /c {',
    '      return 301 https://example.com$request_uri;',
    '      return 200;',
    '      error_log /dev/stderr debug;',
    '    }',
    '  }',
    '}',
  ));
  assert.deepEqual(config.errorLogs, [{ path: '/var/log/sluice.log', level: 'warn' }, { path: 'stderr', level: 'error' }]);
  const server = config.http!.servers[0]!;
  assert.deepEqual(returnOf(server.settings), { code: 404, text: null });
  assert.deepEqual(server.settings.errorLogs, config.errorLogs);
  const [a, c] = server.locations as [LocationConfig, LocationConfig];
  assert.equal(returnOf(a.settings), null);
  assert.equal(a.settings.proxyPass!.upstream, '127.0.0.1:9000');
  assert.equal(a.locations[0]!.settings.proxyPass, null);
  assert.equal(returnOf(c.settings)!.code, 301);
  assert.deepEqual(returnOf(c.settings)!.text!.parts, [{ text: 'https://example.com' }, v('request_uri')]);
  assert.deepEqual(c.settings.errorLogs, [{ path: 'stderr', level: 'debug' }]);
});

test('return forms', async () => {
  const config = await good(http(
    '  server {',
    '    location /a { return 204; }',
    '    location /b { return 200 "hello $remote_addr"; }',
    '    location /c { return http://example.com/; }',
    '    location /d { return $scheme://example.com; }',
    '    location /e { return 0; }',
    '  }',
  ));
  const acts = config.http!.servers[0]!.locations.map((l) => [returnOf(l.settings)!.code, returnOf(l.settings)!.text?.raw ?? null]);
  assert.deepEqual(acts, [[204, null], [200, 'hello $remote_addr'], [302, 'http://example.com/'], [302, '$scheme://example.com'], [0, null]]);
});

test('proxy_cache_bypass and proxy_no_cache load (without proxy_cache they have nothing to act on, as in nginx)', async () => {
  const config = await good(http(
    '  proxy_no_cache $http_pragma;',
    '  server {',
    '    location / { proxy_cache_bypass $cookie_nocache $arg_nocache; proxy_cache_bypass $http_x_bypass; proxy_pass http://127.0.0.1:9; }',
    '  }',
  ));
  assert.equal(config.http!.servers[0]!.locations[0]!.settings.proxyPass?.uri ?? null, null);
});

test('proxy settings parse', async () => {
  const config = await good(http(
    '  server {',
    '    location / {',
    '      proxy_pass http://127.0.0.1:1;',
    '      proxy_next_upstream error timeout http_502 http_503 non_idempotent;',
    '      proxy_next_upstream_tries 3;',
    '      proxy_next_upstream_timeout 10s;',
    '      proxy_buffering off;',
    '      proxy_send_timeout 1h30m;',
    '      proxy_redirect http://127.0.0.1:1/ /;',
    '      proxy_redirect ~*^http://(\\w+)/(.*)$ /$1/$2;',
    '    }',
    '    location /off { proxy_next_upstream off; proxy_redirect off; }',
    '  }',
  ));
  const [main, off] = config.http!.servers[0]!.locations as [LocationConfig, LocationConfig];
  const s = main.settings;
  assert.deepEqual([...s.proxyNextUpstream], ['error', 'timeout', 'http_502', 'http_503', 'non_idempotent']);
  assert.equal(s.proxyNextUpstreamTries, 3);
  assert.equal(s.proxyNextUpstreamTimeout, 10_000);
  assert.equal(s.proxyBuffering, false);
  assert.equal(s.proxySendTimeout, 5_400_000);
  assert.equal(s.proxyRedirect.mode, 'rules');
  const rules = (s.proxyRedirect as { rules: readonly { from: ComplexValue | RegExp; to: ComplexValue }[] }).rules;
  assert.equal((rules[0]!.from as ComplexValue).constant, 'http://127.0.0.1:1/');
  assert.equal(rules[0]!.to.constant, '/');
  const re = rules[1]!.from as RegExp;
  assert.ok(re instanceof RegExp);
  assert.equal(re.flags, 'i');
  assert.ok(re.test('HTTP://host/x'));
  assert.deepEqual(rules[1]!.to.parts, [{ text: '/' }, v('1'), { text: '/' }, v('2')]);
  assert.equal(off.settings.proxyNextUpstream.size, 0);
  assert.deepEqual(off.settings.proxyRedirect, { mode: 'off' });
});

test('proxy_pass forms: upstream vs implicit, uri, proxyHost', async () => {
  lookups.length = 0;
  const config = await good(http(
    '  server {',
    '    location /a { proxy_pass http://pool; }',
    '    location /b { proxy_pass http://POOL/api/; }',
    '    location /c { proxy_pass http://127.0.0.1:8080; }',
    '    location /d { proxy_pass http://127.0.0.1:8080/x?y=1; }',
    '    location /e { proxy_pass http://backend.test; }',
    '    location /f { proxy_pass http://backend.test:80/; }',
    '    location /g { proxy_pass http://[::1]:9000/; }',
    '    location /h { proxy_pass http://v6.test:81; }',
    '    location ~ ^/re { proxy_pass http://pool; }',
    '    location @named { proxy_pass http://127.0.0.1:8080; }',
    '  }',
    '  upstream pool { server 10.1.1.1:7000 weight=3 max_fails=0 fail_timeout=30 backup; server backend.test:7001 down; }',
  ));
  const h = config.http!;
  const pp = h.servers[0]!.locations.map((l) => l.settings.proxyPass!);
  assert.deepEqual(pp.map((p) => [p.upstream, p.uri, p.proxyHost]), [
    ['pool', null, 'pool'],
    ['pool', '/api/', 'POOL'],
    ['127.0.0.1:8080', null, '127.0.0.1:8080'],
    ['127.0.0.1:8080', '/x?y=1', '127.0.0.1:8080'],
    ['backend.test:80', null, 'backend.test'],
    ['backend.test:80', '/', 'backend.test'],
    ['[::1]:9000', '/', '[::1]:9000'],
    ['v6.test:81', null, 'v6.test:81'],
    ['pool', null, 'pool'],
    ['127.0.0.1:8080', null, '127.0.0.1:8080'],
  ]);
  assert.equal(pp[1]!.url, 'http://POOL/api/');
  assert.deepEqual([...h.upstreams.keys()], ['pool', '127.0.0.1:8080', 'backend.test:80', '[::1]:9000', 'v6.test:81']);
  const pool = h.upstreams.get('pool')!;
  assert.deepEqual(pool.servers.map((s) => [s.name, s.address.host, s.address.port, s.weight, s.maxFails, s.failTimeout, s.backup, s.down]), [
    ['10.1.1.1:7000', '10.1.1.1', 7000, 3, 0, 30_000, true, false],
    ['backend.test:7001', '10.0.0.1', 7001, 1, 1, 10_000, false, true],
    ['backend.test:7001', '10.0.0.2', 7001, 1, 1, 10_000, false, true],
  ]);
  const implicit = h.upstreams.get('backend.test:80')!;
  assert.equal(implicit.implicit, true);
  assert.deepEqual(implicit.servers.map((s) => [s.address.host, s.address.port]), [['10.0.0.1', 80], ['10.0.0.2', 80]]);
  assert.deepEqual(implicit.loc, { file: '<inline>', line: 8 });
  assert.deepEqual(h.upstreams.get('[::1]:9000')!.servers.map((s) => s.address), [{ host: '::1', port: 9000, family: 6 }]);
  assert.deepEqual(h.upstreams.get('v6.test:81')!.servers.map((s) => s.address), [{ host: '::1', port: 81, family: 6 }]);
  // IP literals never reach the resolver; each name is looked up once.
  assert.deepEqual([...lookups].sort(), ['backend.test', 'v6.test']);
});

test('map: exact keys lower-cased, regexes in order, hostnames, default, escapes, include of values', async () => {
  const config = await good(http(
    '  map $http_host $site {',
    '    hostnames;',
    '    volatile;',
    '    default "none";',
    '    Example.COM exact;',
    '    *.example.com wildcard;',
    '    .example.org both;',
    '    www.example.* prefix;',
    '    ~^api\\.(?P<zone>\\w+)$ api-$zone;',
    '    ~*^CDN cdn;',
    '    \\~tilde escaped;',
    '    \\default literal-default;',
    '    \'\' empty;',
    '  }',
    '  map $uri $plain { A a; b $1; }',
    '  server { add_header X "$site$plain"; }',
  ));
  const [m, plain] = config.http!.maps;
  assert.equal(m!.hostnames, true);
  assert.equal(m!.volatile, true);
  assert.equal(m!.defaultValue!.constant, 'none');
  assert.deepEqual([...m!.exact.keys()], ['example.com', 'example.org', '~tilde', 'default', '']);
  assert.equal(m!.exact.get('example.org')!.constant, 'both');
  assert.deepEqual(m!.suffixes.map((s) => [s.suffix, s.value.constant]), [['.example.com', 'wildcard'], ['.example.org', 'both']]);
  assert.deepEqual(m!.prefixes.map((p) => [p.prefix, p.value.constant]), [['www.example.', 'prefix']]);
  assert.equal(m!.regexes.length, 2);
  assert.equal(m!.regexes[0]!.regex.exec('api.eu')!.groups!['zone'], 'eu');
  assert.deepEqual(m!.regexes[0]!.value.parts, [{ text: 'api-' }, v('zone')]);
  assert.ok(m!.regexes[1]!.regex.test('cdn.example.com'));
  assert.equal(plain!.hostnames, false);
  assert.deepEqual([...plain!.exact.keys()], ['a', 'b']);
  assert.equal(plain!.defaultValue, null);
});

test('map keys are exact strings without hostnames: wildcards are literal', async () => {
  const config = await good(http('  map $host $x { *.example.com star; }', '  server { add_header X $x; }'));
  assert.deepEqual([...config.http!.maps[0]!.exact.keys()], ['*.example.com']);
  assert.equal(config.http!.maps[0]!.suffixes.length, 0);
});

test('a map may be used before it is defined; variable names are case-insensitive', async () => {
  const config = await good(http('  server { add_header X $Later; }', '  map $uri $later { default 1; }'));
  assert.deepEqual(config.http!.servers[0]!.settings.addHeaders[0]!.value.parts, [v('later')]);
});

test('listen forms and key normalisation', async () => {
  const config = await good(http(
    '  server {',
    '    listen 8080;',
    '    listen 127.0.0.1;',
    '    listen *:8081;',
    '    listen [::1]:8082 default_server;',
    '    listen [0:0::0]:8083;',
    '    listen localhost:8084;',
    '    listen 0;',
    '    listen backend.test:8085;',
    '    listen 10.0.0.9:8086 default;',
    '  }',
    '  server { }',
  ));
  const [s, bare] = config.http!.servers as [ServerConfig, ServerConfig];
  assert.deepEqual(s.listens.map((l) => [l.key, l.host, l.port, l.defaultServer, l.loc.line]), [
    ['0.0.0.0:8080', '0.0.0.0', 8080, false, 4],
    ['127.0.0.1:80', '127.0.0.1', 80, false, 5],
    ['0.0.0.0:8081', '0.0.0.0', 8081, false, 6],
    ['[::1]:8082', '::1', 8082, true, 7],
    ['[::]:8083', '::', 8083, false, 8],
    ['127.0.0.1:8084', '127.0.0.1', 8084, false, 9],
    ['0.0.0.0:0', '0.0.0.0', 0, false, 10],
    ['10.0.0.1:8085', '10.0.0.1', 8085, false, 11],
    ['10.0.0.2:8085', '10.0.0.2', 8085, false, 11],
    ['10.0.0.9:8086', '10.0.0.9', 8086, true, 12],
  ]);
  assert.deepEqual(bare.listens.map((l) => [l.key, l.defaultServer, l.loc.line]), [['0.0.0.0:80', false, 14]]);
});

test('default server per listen key: default_server, else the first server', async () => {
  const config = await good(http(
    '  server { listen 8080; server_name a; }',
    '  server { listen 8080; listen 8081; server_name b; }',
    '  server { listen 8081 default_server; server_name c; }',
    '  server { listen 8082; server_name d; }',
  ));
  const defaults = defaultServerByListen(config.http!);
  assert.deepEqual([...defaults].map(([key, s]) => [key, s.primaryName]), [
    ['0.0.0.0:8080', 'a'],
    ['0.0.0.0:8081', 'c'],
    ['0.0.0.0:8082', 'd'],
  ]);
});

test('server_name forms', async () => {
  const config = await good(http(
    '  server {',
    '    server_name Example.COM *.example.net .example.org www.example.*;',
    '    server_name ~^(?<sub>.+)\\.example\\.io$ _ "";',
    '  }',
  ));
  const s = config.http!.servers[0]!;
  assert.equal(s.primaryName, 'example.com');
  const names = s.serverNames.map((n) => (n.kind === 'regex' ? ['regex', n.regex.source, n.regex.flags] : n.kind === 'exact' ? ['exact', n.name] : n.kind === 'suffix' ? ['suffix', n.suffix] : ['prefix', n.prefix]));
  assert.deepEqual(names, [
    ['exact', 'example.com'],
    ['suffix', '.example.net'],
    ['exact', 'example.org'],
    ['suffix', '.example.org'],
    ['prefix', 'www.example.'],
    ['regex', '^(?<sub>.+)\\.example\\.io$', 'i'],
    ['exact', '_'],
    ['exact', ''],
  ]);
});

test('location tree: modifiers, glued modifiers, nesting, named, regex', async () => {
  const config = await good(http(
    '  server {',
    '    location / {',
    '      location /api/ { location ~ \\.json$ { } }',
    '      location ~* \\.png$ { }',
    '    }',
    '    location = /exact { }',
    '    location =/glued { }',
    '    location ^~ /static/ { }',
    '    location ^~/s2/ { }',
    '    location ~^/x { }',
    '    location ~*^/y { }',
    '    location ~ ^/z { location ~ zz { } }',
    '    location @fallback { }',
    '    location /exact { }',
    '  }',
  ));
  const locs = config.http!.servers[0]!.locations;
  const shape = (l: LocationConfig): unknown => [l.modifier, l.pattern, l.regex === null ? null : l.regex.flags, l.loc.line, l.locations.map(shape)];
  assert.deepEqual(locs.map(shape), [
    ['', '/', null, 4, [
      ['', '/api/', null, 5, [['~', '\\.json$', '', 5, []]]],
      ['~*', '\\.png$', 'i', 6, []],
    ]],
    ['=', '/exact', null, 8, []],
    ['=', '/glued', null, 9, []],
    ['^~', '/static/', null, 10, []],
    ['^~', '/s2/', null, 11, []],
    ['~', '^/x', '', 12, []],
    ['~*', '^/y', 'i', 13, []],
    ['~', '^/z', '', 14, [['~', 'zz', '', 14, []]]],
    ['@', '@fallback', null, 15, []],
    ['', '/exact', null, 16, []],
  ]);
  assert.ok(locs[6]!.regex!.test('/Y/1'));
  assert.ok(!locs[5]!.regex!.test('/X'));
});

test('log formats: combined is predefined, strings concatenate, escape', async () => {
  const config = await good(http(
    '  log_format main escape=json \'{"ip":"$remote_addr",\'',
    '                              \'"status":$status}\';',
    '  access_log /tmp/x.log main if=$loggable;',
    '  map $status $loggable { ~^[23] 0; default 1; }',
  ));
  const f = config.http!.logFormats;
  assert.deepEqual([...f.keys()], ['combined', 'main']);
  assert.equal(f.get('combined')!.format.raw,
    '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"');
  assert.equal(f.get('main')!.escape, 'json');
  assert.equal(f.get('main')!.format.raw, '{"ip":"$remote_addr","status":$status}');
  const log = config.http!.settings.accessLogs[0]!;
  assert.deepEqual([log.path, log.format, log.condition!.parts], ['/tmp/x.log', 'main', [v('loggable')]]);
});

test('main context: worker_processes, pid, events, relative paths against the prefix', async () => {
  const config = await good(lines('worker_processes auto;', 'pid run/sluice.pid;', 'events { worker_connections 2048; }'), { prefix: '/srv/app' });
  assert.equal(config.workerProcesses, 'auto');
  assert.equal(config.pid, '/srv/app/run/sluice.pid');
  assert.equal(config.workerConnections, 2048);
  assert.equal(config.prefix, '/srv/app');
  assert.equal(config.http, null);
  const four = await good(lines('worker_processes 4;', 'events {}'));
  assert.equal(four.workerProcesses, 4);
});

test('events: accept_mutex is off by default (as nginx: the workers accept for themselves), on hands them connections in turn', async () => {
  assert.equal((await good(lines('events {}'))).acceptMutex, false);
  assert.equal((await good(lines('events { accept_mutex on; }'))).acceptMutex, true);
  assert.equal((await good(lines('events { accept_mutex off; }'))).acceptMutex, false);
  assert.equal(workersAcceptShared(await good(lines('events {}')), true), true);
  assert.equal(workersAcceptShared(await good(lines('events { accept_mutex off; }')), true), true);
  assert.equal(workersAcceptShared(await good(lines('events { accept_mutex on; }')), true), false);
  assert.equal(workersAcceptShared(await good(lines('events { accept_mutex on; }')), false), false);
  // nginx's accept mutex does not apply to reuseport sockets: without Node's reusePort they are one shared socket.
  const reuse = lines('events { accept_mutex on; }', 'http { server { listen 127.0.0.1:8080 reuseport; } }');
  assert.equal(workersAcceptShared(await good(reuse), false), true);
  assert.equal(workersAcceptShared(await good(reuse), true), false);
  assert.deepEqual((await bad(lines('events { accept_mutex sometimes; }'))).map(show), ['invalid value "sometimes" in "accept_mutex" directive, it must be "on" or "off" in <inline>:1']);
});

test('-g directives apply to the main context and report as <command line>', async () => {
  const config = await good(lines('events {}'), { globalDirectives: 'worker_processes 2; pid /tmp/g.pid;' });
  assert.equal(config.workerProcesses, 2);
  assert.equal(config.pid, '/tmp/g.pid');

  const r = await loadConfig({ text: lines('worker_processes 3;', 'events {}'), globalDirectives: 'worker_processes 2; bogus 1;' });
  assert.equal(r.ok, false);
  assert.deepEqual(!r.ok && r.problems.map(formatProblem), [
    '[emerg] unknown directive "bogus" in <command line>:1',
    '[emerg] "worker_processes" directive is duplicate in <inline>:1',
  ]);
  const syntax = await loadConfig({ text: 'events {}', globalDirectives: 'worker_processes 2' });
  assert.deepEqual(!syntax.ok && syntax.problems.map(formatProblem), [
    '[emerg] unexpected end of parameter, expecting ";" in <command line>:1',
  ]);
});

test('formatProblem matches nginx', () => {
  assert.equal(formatProblem({ message: 'unknown directive "x"', file: '/etc/sluice.conf', line: 3, hint: 'h' }),
    '[emerg] unknown directive "x" in /etc/sluice.conf:3');
  assert.equal(formatProblem({ message: 'no "events" section in configuration', file: '/etc/sluice.conf', line: 0 }),
    '[emerg] no "events" section in configuration');
});

/**
 * Load balancing methods, sticky cookies, zones, server parameters, active health checks and
 * match blocks (issue 3): what each loads to, and every problem with its file:line.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bad, good, http, show } from './fixtures.js';
import type { HealthCheckConfig, MatchConfig, UpstreamConfig } from './types.js';

const at = (line: number) => ({ file: '<inline>', line });

function upstream(config: { http: { upstreams: ReadonlyMap<string, UpstreamConfig> } | null }, name: string): UpstreamConfig {
  const u = config.http!.upstreams.get(name);
  assert.ok(u !== undefined, `upstream ${name}`);
  return u;
}

/** A health check with every default, for the given place and Host. */
function check(line: number, host: string, over: Partial<HealthCheckConfig> = {}): HealthCheckConfig {
  return {
    interval: 5000, jitter: 0, fails: 1, passes: 1, uri: '/', port: null, type: 'http', match: null, host, loc: at(line), ...over,
  };
}

test('defaults: round-robin, no sticky, no zone, no health checks, no caps', async () => {
  const config = await good(http(
    '  upstream u { server 127.0.0.1:1; }',
    '  server { location / { proxy_pass http://u; } location /i { proxy_pass http://127.0.0.1:2; } }',
  ));
  for (const name of ['u', '127.0.0.1:2']) {
    const u = upstream(config, name);
    assert.deepEqual(u.method, { name: 'round_robin' });
    assert.equal(u.sticky, null);
    assert.equal(u.zone, null);
    assert.deepEqual(u.healthChecks, []);
    assert.deepEqual(u.servers.map((s) => [s.maxConns, s.slowStart]), [[0, 0]]);
  }
  assert.equal(config.http!.matches.size, 0);
  assert.ok(config.http!.matches instanceof Map);
});

test('each balancing method loads to its typed value, before or after the server lines', async () => {
  const config = await good(http(
    '  upstream lc { least_conn; server 127.0.0.1:1 backup; server 127.0.0.1:2; }',
    '  upstream ih { server 127.0.0.1:1 weight=2; ip_hash; }',
    '  upstream h { hash $remote_addr; server 127.0.0.1:1; }',
    '  upstream hc { server 127.0.0.1:1; hash "$arg_room:${cookie_sid}-$http_x_user" consistent; }',
    '  upstream r { random; server 127.0.0.1:1; }',
    '  upstream r2 { random two; server 127.0.0.1:1; }',
    '  upstream r2l { random two least_conn; server 127.0.0.1:1; }',
  ));
  assert.deepEqual(upstream(config, 'lc').method, { name: 'least_conn' });
  assert.deepEqual(upstream(config, 'lc').servers.map((s) => s.backup), [true, false]);
  assert.deepEqual(upstream(config, 'ih').method, { name: 'ip_hash' });
  assert.deepEqual(upstream(config, 'h').method, {
    name: 'hash', consistent: false, key: { raw: '$remote_addr', parts: [{ variable: 'remote_addr' }], constant: null },
  });
  assert.deepEqual(upstream(config, 'hc').method, {
    name: 'hash',
    consistent: true,
    key: {
      raw: '$arg_room:${cookie_sid}-$http_x_user',
      parts: [{ variable: 'arg_room' }, { text: ':' }, { variable: 'cookie_sid' }, { text: '-' }, { variable: 'http_x_user' }],
      constant: null,
    },
  });
  assert.deepEqual(upstream(config, 'r').method, { name: 'random', two: false });
  assert.deepEqual(upstream(config, 'r2').method, { name: 'random', two: true });
  assert.deepEqual(upstream(config, 'r2l').method, { name: 'random', two: true });
});

test('a hash key may use a map variable defined later', async () => {
  const config = await good(http('  upstream u { hash $room; server 127.0.0.1:1; }', '  map $uri $room { default a; }'));
  assert.deepEqual(upstream(config, 'u').method, { name: 'hash', consistent: false, key: { raw: '$room', parts: [{ variable: 'room' }], constant: null } });
});

test('server parameters max_conns and slow_start', async () => {
  const config = await good(http(
    '  upstream u {',
    '    least_conn;',
    '    server 127.0.0.1:1 max_conns=100 slow_start=30s;',
    '    server 127.0.0.1:2 max_conns=0 slow_start=1m30s backup;',
    '    server 127.0.0.1:3 slow_start=0;',
    '  }',
    '  upstream h { hash $uri; server 127.0.0.1:4 max_conns=7 down; }',
  ));
  assert.deepEqual(upstream(config, 'u').servers.map((s) => [s.address.port, s.maxConns, s.slowStart, s.backup]), [
    [1, 100, 30_000, false],
    [2, 0, 90_000, true],
    [3, 0, 0, false],
  ]);
  assert.deepEqual(upstream(config, 'h').servers.map((s) => [s.maxConns, s.slowStart, s.down]), [[7, 0, true]]);
});

test('sticky cookie: every parameter, and the minimal form', async () => {
  const config = await good(http(
    '  upstream a { server 127.0.0.1:1; sticky cookie srv_id expires=1h domain=.example.com path=/app httponly secure samesite=Strict; }',
    '  upstream b { sticky cookie route; server 127.0.0.1:1; }',
    '  upstream c { ip_hash; sticky cookie c expires=max samesite=none; server 127.0.0.1:1; }',
  ));
  assert.deepEqual(upstream(config, 'a').sticky, {
    name: 'srv_id', expires: 3_600_000, domain: '.example.com', path: '/app', httpOnly: true, secure: true, sameSite: 'strict', secret: null,
  });
  assert.deepEqual(upstream(config, 'b').sticky, {
    name: 'route', expires: null, domain: null, path: '/', httpOnly: false, secure: false, sameSite: null, secret: null,
  });
  const c = upstream(config, 'c');
  assert.equal(c.sticky!.expires, Number.POSITIVE_INFINITY);
  assert.equal(c.sticky!.sameSite, 'none');
  assert.deepEqual(c.method, { name: 'ip_hash' });
});

test('sticky cookie secret_file: the file\'s key (trimmed, hashed); a missing or short file is a problem with file:line', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-sticky-'));
  try {
    const key = join(dir, 'sticky.key');
    writeFileSync(key, ' 0123456789abcdef0123456789abcdef\n');
    writeFileSync(join(dir, 'short.key'), 'abc\n');
    const config = await good(http(`  upstream a { server 127.0.0.1:1; sticky cookie sid secret_file=${key}; }`));
    assert.deepEqual(upstream(config, 'a').sticky!.secret, createHash('sha256').update('0123456789abcdef0123456789abcdef').digest('hex'));
    const problems = await bad(http(
      `  upstream a { server 127.0.0.1:1; sticky cookie sid secret_file=${join(dir, 'missing.key')}; }`,
      `  upstream b { server 127.0.0.1:1; sticky cookie sid secret_file=${join(dir, 'short.key')}; }`,
    ));
    assert.deepEqual(problems.map((p) => `${p.message} in ${p.file}:${p.line}`), [
      `open() "${join(dir, 'missing.key')}" failed (2: No such file or directory) in <inline>:3`,
      `"${join(dir, 'short.key')}" must hold at least 16 bytes of secret in <inline>:4`,
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('zone: sizes, and a zone shared by upstreams takes the size one of them gives', async () => {
  const config = await good(http(
    '  upstream a { zone backend 64k; server 127.0.0.1:1; }',
    '  upstream b { zone backend; server 127.0.0.1:2; }',
    '  upstream c { zone other; server 127.0.0.1:3; }',
    '  upstream d { zone other 1m; server 127.0.0.1:4; }',
    '  upstream e { zone small 32k; server 127.0.0.1:5; }',
  ));
  assert.deepEqual(upstream(config, 'a').zone, { name: 'backend', size: 65_536 });
  assert.deepEqual(upstream(config, 'b').zone, { name: 'backend', size: 65_536 });
  assert.deepEqual(upstream(config, 'c').zone, { name: 'other', size: 1_048_576 });
  assert.deepEqual(upstream(config, 'd').zone, { name: 'other', size: 1_048_576 });
  assert.deepEqual(upstream(config, 'e').zone, { name: 'small', size: 32_768 });
});

test('health_check attaches to the explicit upstream of its location, with every parameter', async () => {
  const config = await good(http(
    '  match ok { status 200; }',
    '  upstream pool { zone pool 64k; server 127.0.0.1:1; server 127.0.0.1:2; }',
    '  server {',
    '    location / {',
    '      proxy_pass http://pool;',
    '      health_check;',
    '      health_check interval=2s jitter=500ms fails=3 passes=2 uri=/health?full=1 port=8081 type=http match=ok;',
    '      health_check type=websocket uri=/ws interval=250ms;',
    '      health_check type=tcp port=9;',
    '    }',
    '  }',
  ));
  assert.deepEqual(upstream(config, 'pool').healthChecks, [
    check(8, 'pool'),
    check(9, 'pool', { interval: 2000, jitter: 500, fails: 3, passes: 2, uri: '/health?full=1', port: 8081, match: 'ok' }),
    check(10, 'pool', { type: 'websocket', uri: '/ws', interval: 250 }),
    check(11, 'pool', { type: 'tcp', port: 9 }),
  ]);
});

test('health_check: implicit upstreams, several locations, nested locations, Host from proxy_pass', async () => {
  const config = await good(http(
    '  server {',
    '    location /a { proxy_pass http://Pool/api/; health_check uri=/a; }',
    '    location /b { proxy_pass http://127.0.0.1:8080; health_check uri=/b; }',
    '    location /c {',
    '      proxy_pass http://pool;',
    '      location /c/d { proxy_pass http://127.0.0.1:8080/; health_check uri=/d match=later; }',
    '      health_check uri=/c;',
    '    }',
    '    location /e { proxy_pass http://backend.test; health_check; }',
    '    location /f { proxy_pass http://pool; }',
    '  }',
    '  server {',
    '    location / { proxy_pass http://127.0.0.1:8080; health_check uri=/other-server; }',
    '  }',
    '  upstream pool { server 127.0.0.1:1; }',
    '  match later { status 200-299; }',
  ));
  assert.deepEqual(upstream(config, 'pool').healthChecks, [
    check(4, 'Pool', { uri: '/a' }),
    check(9, 'pool', { uri: '/c' }),
  ]);
  assert.deepEqual(upstream(config, '127.0.0.1:8080').healthChecks, [
    check(5, '127.0.0.1:8080', { uri: '/b' }),
    check(8, '127.0.0.1:8080', { uri: '/d', match: 'later' }),
    check(15, '127.0.0.1:8080', { uri: '/other-server' }),
  ]);
  const implicit = upstream(config, 'backend.test:80');
  assert.equal(implicit.implicit, true);
  assert.deepEqual(implicit.healthChecks, [check(11, 'backend.test')]);
  // Map order is unchanged by attaching checks: explicit upstreams first, then implicit ones.
  assert.deepEqual([...config.http!.upstreams.keys()], ['pool', '127.0.0.1:8080', 'backend.test:80']);
});

test('match blocks parse to their typed tests', async () => {
  const config = await good(http(
    '  match full {',
    '    status 200;',
    '    status ! 500;',
    '    status 200 204;',
    '    status 200-399;',
    '    status ! 400-599;',
    '    status 301-303 307;',
    '    header Content-Type = text/html;',
    '    header Content-Type != "text/html; charset=utf-8";',
    '    header Connection ~ close;',
    '    header Connection !~ ^keep-alive$;',
    '    header Host;',
    '    header ! X-Accel-Redirect;',
    '    body ~ "Welcome";',
    '    body !~ "error";',
    '  }',
    '  match empty { }',
  ));
  const matches = config.http!.matches;
  assert.deepEqual([...matches.keys()], ['full', 'empty']);
  const m = matches.get('full')!;
  const regexes = (m.headers.filter((h) => h.op === '~' || h.op === '!~') as { regex: RegExp }[]).map((h) => h.regex);
  const expected: MatchConfig = {
    name: 'full',
    status: [
      { negate: false, ranges: [[200, 200]] },
      { negate: true, ranges: [[500, 500]] },
      { negate: false, ranges: [[200, 200], [204, 204]] },
      { negate: false, ranges: [[200, 399]] },
      { negate: true, ranges: [[400, 599]] },
      { negate: false, ranges: [[301, 303], [307, 307]] },
    ],
    headers: [
      { name: 'Content-Type', op: '=', value: 'text/html' },
      { name: 'Content-Type', op: '!=', value: 'text/html; charset=utf-8' },
      { name: 'Connection', op: '~', regex: regexes[0]! },
      { name: 'Connection', op: '!~', regex: regexes[1]! },
      { name: 'Host', op: 'present' },
      { name: 'X-Accel-Redirect', op: 'absent' },
    ],
    body: [
      { negate: false, regex: m.body[0]!.regex },
      { negate: true, regex: m.body[1]!.regex },
    ],
    loc: at(3),
  };
  assert.deepEqual(m, expected);
  assert.deepEqual(regexes.map((r) => [r.source, r.flags]), [['close', ''], ['^keep-alive$', '']]);
  assert.deepEqual(m.body.map((b) => [b.regex.source, b.regex.flags]), [['Welcome', ''], ['error', '']]);
  assert.ok(regexes[0]!.test('close'));
  assert.ok(!m.body[0]!.regex.test('welcome'));
  assert.deepEqual(matches.get('empty'), { name: 'empty', status: [], headers: [], body: [], loc: at(19) });
});

test('the new config is deep-frozen too', async () => {
  const config = await good(http(
    '  match ok { status 200; header X ~ y; }',
    '  upstream u { hash $uri; sticky cookie s; zone z 64k; server 127.0.0.1:1; }',
    '  server { location / { proxy_pass http://u; health_check match=ok; } }',
  ));
  const u = upstream(config, 'u');
  assert.throws(() => { (u.healthChecks as unknown[]).push({}); }, TypeError);
  assert.throws(() => { (u.healthChecks[0] as { interval: number }).interval = 1; }, TypeError);
  assert.throws(() => { (u.sticky as { name: string }).name = 'x'; }, TypeError);
  assert.throws(() => { (u.method as { name: string }).name = 'x'; }, TypeError);
  assert.throws(() => { (config.http!.matches as Map<string, unknown>).set('x', {}); }, TypeError);
  assert.throws(() => { (config.http!.matches.get('ok')!.status as unknown[]).push({}); }, TypeError);
  assert.ok(Object.isFrozen(config.http!.matches.get('ok')!.status[0]!.ranges[0]));
});

interface Case {
  readonly name: string;
  readonly text: string;
  readonly problems: readonly string[];
  /** Expected hints, by index into `problems` (checked with includes()). */
  readonly hints?: Readonly<Record<number, string>>;
}

const loc = (...body: string[]) => http('  upstream u { server 127.0.0.1:1; }', '  server {', ...body, '  }');

const CASES: readonly Case[] = [
  {
    name: 'a second balancing method',
    text: http(
      '  upstream u {',
      '    least_conn;',
      '    server 127.0.0.1:1;',
      '    ip_hash;',
      '    least_conn;',
      '  }',
      '  upstream v { hash $uri; hash $uri consistent; server 127.0.0.1:1; }',
    ),
    problems: [
      'load balancing method redefined in <inline>:6',
      'load balancing method redefined in <inline>:7',
      'load balancing method redefined in <inline>:9',
    ],
    hints: { 0: 'upstream "u" already uses "least_conn" (<inline>:4); keep one balancing method', 2: 'already uses "hash"' },
  },
  {
    name: 'backup and slow_start with hash, ip_hash and random, before or after the method',
    text: http(
      '  upstream h {',
      '    hash $remote_addr;',
      '    server 127.0.0.1:1 backup;',
      '  }',
      '  upstream i {',
      '    server 127.0.0.1:1 slow_start=10s backup;',
      '    ip_hash;',
      '  }',
      '  upstream r { random two; server 127.0.0.1:1 slow_start=5s; }',
      '  upstream ok { least_conn; server 127.0.0.1:1 slow_start=5s backup; }',
    ),
    problems: [
      'balancing method does not support parameter "backup" in <inline>:5',
      'balancing method does not support parameter "slow_start=10s" in <inline>:8',
      'balancing method does not support parameter "backup" in <inline>:8',
      'balancing method does not support parameter "slow_start=5s" in <inline>:11',
    ],
    hints: { 0: '"hash" (<inline>:4)', 1: '"ip_hash" (<inline>:9)', 3: 'use round-robin or least_conn' },
  },
  {
    name: 'hash and random arguments',
    text: http(
      '  upstream u {',
      '    server 127.0.0.1:1;',
      '    hash $remote_addr ketama;',
      '  }',
      '  upstream v { server 127.0.0.1:1; hash $nope; }',
      '  upstream w { server 127.0.0.1:1; hash; }',
      '  upstream x { server 127.0.0.1:1; random least_conn; }',
      '  upstream y { server 127.0.0.1:1; random two round_robin; }',
      '  upstream z { server 127.0.0.1:1; random two least_conn now; }',
      '  upstream q { server 127.0.0.1:1; ip_hash on; least_conn 1; }',
      '  upstream m { server 127.0.0.1:1; hash "${uri"; }',
    ),
    problems: [
      'invalid parameter "ketama" in <inline>:5',
      'unknown "nope" variable in <inline>:7',
      'invalid number of arguments in "hash" directive in <inline>:8',
      'invalid parameter "least_conn" in <inline>:9',
      'invalid parameter "round_robin" in <inline>:10',
      'invalid number of arguments in "random" directive in <inline>:11',
      'invalid number of arguments in "ip_hash" directive in <inline>:12',
      'invalid number of arguments in "least_conn" directive in <inline>:12',
      'the closing bracket in "uri" variable is missing in <inline>:13',
    ],
    hints: { 0: '"consistent"' },
  },
  {
    name: 'balancing directives outside upstream',
    text: http('  least_conn;', '  server { hash $uri; }'),
    problems: ['"least_conn" directive is not allowed here in <inline>:3', '"hash" directive is not allowed here in <inline>:4'],
    hints: { 0: 'upstream' },
  },
  {
    name: 'sticky: route is not implemented; learn\'s problems; other forms',
    text: http(
      '  upstream a { server 127.0.0.1:1; sticky route $route_cookie $route_uri; }',
      '  upstream b { server 127.0.0.1:1; sticky learn create=$upstream_cookie_sid lookup=$cookie_sid; }',
      '  upstream c { server 127.0.0.1:1; sticky cookies srv; }',
      '  upstream d { server 127.0.0.1:1; sticky cookie; }',
      '  upstream e { server 127.0.0.1:1; sticky cookie srv; sticky cookie srv2; }',
      '  upstream f { server 127.0.0.1:1; sticky; }',
    ),
    problems: [
      'the "route" method of the "sticky" directive is not implemented in <inline>:3',
      '"zone" parameter is missing in "sticky learn" in <inline>:4',
      'invalid parameter "cookies" in <inline>:5',
      'invalid number of arguments in "sticky" directive in <inline>:6',
      '"sticky" directive is duplicate in <inline>:7',
      'invalid number of arguments in "sticky" directive in <inline>:8',
    ],
    hints: { 0: 'use "sticky cookie NAME;"', 1: 'zone=NAME:SIZE', 3: 'needs a name' },
  },
  {
    name: 'sticky cookie parameters',
    text: http(
      '  upstream u {',
      '    server 127.0.0.1:1;',
      '    sticky cookie "a b" expires=soon expires=500ms "domain=a;b" path=app "path=/a;b" samesite=always http_only secure=on;',
      '  }',
    ),
    problems: [
      'invalid parameter "a b" in <inline>:5',
      'invalid parameter "expires=soon" in <inline>:5',
      'invalid parameter "expires=500ms" in <inline>:5',
      'invalid parameter "domain=a;b" in <inline>:5',
      'invalid parameter "path=app" in <inline>:5',
      'invalid parameter "path=/a;b" in <inline>:5',
      'invalid parameter "samesite=always" in <inline>:5',
      'invalid parameter "http_only" in <inline>:5',
      'invalid parameter "secure=on" in <inline>:5',
    ],
    hints: { 0: 'token', 1: '"max"', 6: 'strict, lax or none', 7: 'httponly' },
  },
  {
    name: 'zone sizes and sharing',
    text: http(
      '  upstream a { zone z1 64q; server 127.0.0.1:1; }',
      '  upstream b { zone z2 16k; server 127.0.0.1:1; }',
      '  upstream c { zone z3 64k; server 127.0.0.1:1; }',
      '  upstream d { zone z3 128k; server 127.0.0.1:1; }',
      '  upstream e { zone z4; server 127.0.0.1:1; }',
      '  upstream f { zone z4; server 127.0.0.1:1; }',
      '  upstream g { zone z5 64k; zone z6 64k; server 127.0.0.1:1; }',
      '  upstream h { zone ""; server 127.0.0.1:1; }',
      '  zone z7 64k;',
    ),
    problems: [
      'invalid zone size "64q" in <inline>:3',
      'zone "z2" is too small in <inline>:4',
      'the size 131072 of shared memory zone "z3" conflicts with already declared size 65536 in <inline>:6',
      'zero size shared memory zone "z4" in <inline>:7',
      '"zone" directive is duplicate in <inline>:9',
      'invalid zone name "" in <inline>:10',
      '"zone" directive is not allowed here in <inline>:11',
    ],
    hints: { 1: '32k', 3: '"zone z4 64k;"' },
  },
  {
    name: 'max_conns and slow_start values',
    text: http(
      '  upstream u {',
      '    server 127.0.0.1:1 max_conns=-1;',
      '    server 127.0.0.1:2 max_conns;',
      '    server 127.0.0.1:3 slow_start=fast;',
      '    server 127.0.0.1:4 slow_start=500ms;',
      '  }',
    ),
    problems: [
      'invalid parameter "max_conns=-1" in <inline>:4',
      'invalid parameter "max_conns" in <inline>:5',
      'invalid parameter "slow_start=fast" in <inline>:6',
      'invalid parameter "slow_start=500ms" in <inline>:7',
    ],
    hints: { 0: 'max_conns is a whole number', 2: 'slow_start is a duration' },
  },
  {
    name: 'health_check without proxy_pass, and with a match that does not exist',
    text: loc(
      '    location /a { health_check; return 204; }',
      '    location /b {',
      '      proxy_pass http://u;',
      '      location /b/c { health_check uri=/c; }',
      '      health_check match=nosuch;',
      '    }',
      '    location /d { proxy_pass http://nowhere; health_check; }',
      '    location /e { proxy_pass ftp://u; health_check; }',
    ),
    problems: [
      '"health_check" directive requires "proxy_pass" in the same location in <inline>:5',
      '"health_check" directive requires "proxy_pass" in the same location in <inline>:8',
      'match "nosuch" not found in <inline>:9',
      'host not found in upstream "nowhere" in <inline>:11',
      'invalid URL prefix in "ftp://u" in <inline>:12',
    ],
    hints: { 0: 'add "proxy_pass http://UPSTREAM;"', 2: 'define "match nosuch { status 200-399; }" in http {}' },
  },
  {
    name: 'health_check probes over TLS are not implemented: only type=tcp is accepted for an https upstream',
    text: loc(
      '    location /a { proxy_pass https://u; health_check; }',
      '    location /b { proxy_pass https://u; health_check type=websocket; }',
      '    location /c { proxy_pass https://u; health_check type=tcp; }',
    ),
    problems: [
      '"health_check type=http" is not implemented for https upstreams in <inline>:5',
      '"health_check type=websocket" is not implemented for https upstreams in <inline>:6',
    ],
    hints: { 0: 'use "health_check type=tcp" for an https upstream' },
  },
  {
    name: 'health_check parameters',
    text: loc(
      '    location / {',
      '      proxy_pass http://u;',
      '      health_check interval=0 interval=x jitter=-1 fails=0 passes=two uri=health port=0 port=70000;',
      '      health_check type=udp type=grpc match= bogus=1 often;',
      '      health_check mandatory persistent keepalive_time=60s grpc_service=x grpc_status=12;',
      '      health_check type=tcp uri=/x match=m;',
      '    }',
    ),
    problems: [
      'invalid parameter "interval=0" in <inline>:7',
      'invalid parameter "interval=x" in <inline>:7',
      'invalid parameter "jitter=-1" in <inline>:7',
      'invalid parameter "fails=0" in <inline>:7',
      'invalid parameter "passes=two" in <inline>:7',
      'invalid parameter "uri=health" in <inline>:7',
      'invalid parameter "port=0" in <inline>:7',
      'invalid parameter "port=70000" in <inline>:7',
      'invalid parameter "type=udp" in <inline>:8',
      'the "type=grpc" parameter of the "health_check" directive is not implemented in <inline>:8',
      'invalid parameter "match=" in <inline>:8',
      'invalid parameter "bogus=1" in <inline>:8',
      'invalid parameter "often" in <inline>:8',
      'the "mandatory" parameter of the "health_check" directive is not implemented in <inline>:9',
      'the "persistent" parameter of the "health_check" directive is not implemented in <inline>:9',
      'the "keepalive_time" parameter of the "health_check" directive is not implemented in <inline>:9',
      'the "grpc_service" parameter of the "health_check" directive is not implemented in <inline>:9',
      'the "grpc_status" parameter of the "health_check" directive is not implemented in <inline>:9',
      'the "uri" parameter cannot be used with "type=tcp" in <inline>:10',
      'the "match" parameter cannot be used with "type=tcp" in <inline>:10',
    ],
    hints: { 0: 'more than 0', 5: 'starting with "/"', 8: 'http (the default), websocket or tcp', 12: 'interval=TIME', 19: 'use type=http' },
  },
  {
    name: 'health_check and match in the wrong context',
    text: http('  health_check;', '  server { match m { } }', '  upstream u { server 127.0.0.1:1; health_check; }'),
    problems: [
      '"health_check" directive is not allowed here in <inline>:3',
      '"match" directive is not allowed here in <inline>:4',
      '"health_check" directive is not allowed here in <inline>:5',
    ],
    hints: { 0: 'location', 1: 'http' },
  },
  {
    name: 'match tests',
    text: http(
      '  match m {',
      '    status;',
      '    status !;',
      '    status abc;',
      '    status 600;',
      '    status 400-200;',
      '    status !500;',
      '    status 200 20x;',
      '    header;',
      '    header !;',
      '    header Content-Type text/html;',
      '    header Content-Type == text/html;',
      '    header Connection ~ "(close";',
      '    header A = b c;',
      '    body "Welcome";',
      '    body = "Welcome";',
      '    body ~ "(x";',
      '    require $ok;',
      '    expect 200;',
      '    status 200 { }',
      '  }',
      '  match m { }',
    ),
    problems: [
      'invalid number of arguments in "status" directive in <inline>:4',
      'invalid number of arguments in "status" directive in <inline>:5',
      'invalid parameter "abc" in <inline>:6',
      'invalid parameter "600" in <inline>:7',
      'invalid parameter "400-200" in <inline>:8',
      'invalid parameter "!500" in <inline>:9',
      'invalid parameter "20x" in <inline>:10',
      'invalid number of arguments in "header" directive in <inline>:11',
      'invalid number of arguments in "header" directive in <inline>:12',
      'invalid number of arguments in "header" directive in <inline>:13',
      'invalid parameter "==" in <inline>:14',
      'invalid regular expression "(close": Unterminated group in <inline>:15',
      'invalid number of arguments in "header" directive in <inline>:16',
      'invalid number of arguments in "body" directive in <inline>:17',
      'invalid parameter "=" in <inline>:18',
      'invalid regular expression "(x": Unterminated group in <inline>:19',
      'the "require" test of the "match" block is not implemented in <inline>:20',
      'unknown directive "expect" in <inline>:21',
      'unexpected "{" in <inline>:22',
      'duplicate match "m" in <inline>:24',
    ],
    hints: { 5: 'write "!" apart from the codes', 10: '=, !=, ~ and !~', 17: 'status', 19: '<inline>:3 already defines it' },
  },
];

for (const c of CASES) {
  test(`invalid config: ${c.name}`, async () => {
    const problems = await bad(c.text);
    assert.deepEqual(problems.map(show), c.problems);
    for (const [index, hint] of Object.entries(c.hints ?? {})) {
      const got = problems[Number(index)]?.hint ?? '';
      assert.ok(got.includes(hint), `hint ${index}: ${JSON.stringify(got)} should include ${JSON.stringify(hint)}`);
    }
  });
}

test('a bad proxy_pass does not also fail the health_check of its location', async () => {
  const problems = await bad(http('  server {', '    location / { proxy_pass ftp://x; health_check; }', '  }'));
  assert.deepEqual(problems.map(show), ['invalid URL prefix in "ftp://x" in <inline>:4']);
});

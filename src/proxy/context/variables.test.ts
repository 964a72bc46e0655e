import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ComplexValue, MapConfig } from '../../config/types.js';
import { BUILTIN_VARIABLES, isBuiltinVariable } from '../../core/variable-names.js';
import { RequestContext } from './request-context.js';
import { Variables, builtinVariableNames, timeIso8601, timeLocal } from './variables.js';

function ctx(rawUri = '/p/a?x=1&Room=blue&flag', headers: Record<string, string | string[]> = {}, rawHeaders: string[] = []): RequestContext {
  const conn = { id: 7, requests: 1, startMs: 0, readMark: 0, remoteAddress: '10.1.2.3', remotePort: 5555, localAddress: '127.0.0.1', localPort: 8080, tls: false };
  return new RequestContext(conn, 'GET', rawUri, '1.1', headers, rawHeaders, performance.now());
}

const cv = (raw: string, parts: ComplexValue['parts']): ComplexValue => ({ raw, parts, constant: null });
const lit = (s: string): ComplexValue => ({ raw: s, parts: [{ text: s }], constant: s });

test('every variable name the config accepts has an evaluator, and no evaluator is unlisted', () => {
  const evaluated = new Set(builtinVariableNames());
  for (const name of BUILTIN_VARIABLES) assert.ok(evaluated.has(name), `no evaluator for $${name}`);
  for (const name of evaluated) assert.ok(isBuiltinVariable(name), `$${name} is evaluated but unknown to the config`);
});

test('request variables follow nginx', () => {
  const v = new Variables([]);
  const c = ctx('/p/a?x=1&Room=blue&flag', {
    host: 'Example.COM:8080', 'x-forwarded-for': '1.1.1.1', cookie: 'a=1; sid=abc', 'user-agent': 'ua',
    authorization: `Basic ${Buffer.from('bob:pw').toString('base64')}`,
  });
  assert.equal(v.get('host', c), 'example.com');
  assert.equal(v.get('http_host', c), 'Example.COM:8080');
  assert.equal(v.get('http_user_agent', c), 'ua');
  assert.equal(v.get('http_x_missing', c), undefined);
  assert.equal(v.get('remote_addr', c), '10.1.2.3');
  assert.equal(v.get('remote_port', c), '5555');
  assert.equal(v.get('remote_user', c), 'bob');
  assert.equal(v.get('server_addr', c), '127.0.0.1');
  assert.equal(v.get('server_port', c), '8080');
  assert.equal(v.get('scheme', c), 'http');
  assert.equal(v.get('request', c), 'GET /p/a?x=1&Room=blue&flag HTTP/1.1');
  assert.equal(v.get('request_uri', c), '/p/a?x=1&Room=blue&flag');
  assert.equal(v.get('uri', c), '/p/a');
  assert.equal(v.get('args', c), 'x=1&Room=blue&flag');
  assert.equal(v.get('is_args', c), '?');
  assert.equal(v.get('arg_x', c), '1');
  assert.equal(v.get('arg_room', c), 'blue', 'argument names are case-insensitive');
  assert.equal(v.get('arg_flag', c), undefined, 'nginx finds an argument only where "=" follows its name');
  assert.equal(v.get('arg_nope', c), undefined);
  assert.equal(v.get('cookie_sid', c), 'abc');
  assert.equal(v.get('cookie_zz', c), undefined);
  assert.equal(v.get('proxy_add_x_forwarded_for', c), '1.1.1.1, 10.1.2.3');
  assert.equal(v.get('proxy_add_x_forwarded_for', ctx('/')), '10.1.2.3');
  assert.equal(v.get('connection', c), '7');
  assert.equal(v.get('pid', c), String(process.pid));
  assert.equal(v.get('status', c), '000');
  c.status = 101;
  assert.equal(v.get('status', c), '101');
  assert.equal(v.get('upstream_addr', c), undefined);
  c.attempts.push({ addr: '127.0.0.1:1', status: 502, connectTime: 1, headerTime: 2, responseTime: 3, bytesSent: 0, bytesReceived: 0 });
  c.attempts.push({ addr: '127.0.0.1:2', status: 200, connectTime: 1.5, headerTime: -1, responseTime: -1, bytesSent: 0, bytesReceived: 0 });
  assert.equal(v.get('upstream_addr', c), '127.0.0.1:1, 127.0.0.1:2');
  assert.equal(v.get('upstream_status', c), '502, 200');
  assert.equal(v.get('upstream_connect_time', c), '0.001, 0.002');
  assert.match(v.get('request_time', c) ?? '', /^\d+\.\d{3}$/);
  assert.match(v.get('msec', c) ?? '', /^\d+\.\d{3}$/);
});

test('time formats match nginx', () => {
  const d = new Date(2026, 10, 2, 3, 4, 5);
  assert.match(timeLocal(d), /^02\/Nov\/2026:03:04:05 [+-]\d{4}$/);
  assert.match(timeIso8601(d), /^2026-11-02T03:04:05[+-]\d\d:\d\d$/);
});

test('evaluate joins literal text and variables; missing ones become empty', () => {
  const v = new Variables([]);
  const value = cv('$scheme://$host$request_uri$http_nope', [{ variable: 'scheme' }, { text: '://' }, { variable: 'host' }, { variable: 'request_uri' }, { variable: 'http_nope' }]);
  assert.equal(v.evaluate(value, ctx('/a?b', { host: 'h' })), 'http://h/a?b');
});

test('map: exact keys case-insensitive, regexes in order with captures, default, empty key', () => {
  const map: MapConfig = {
    variable: 'conn', source: cv('$http_upgrade', [{ variable: 'http_upgrade' }]), defaultValue: lit('upgrade'),
    hostnames: false, volatile: false,
    exact: new Map([['', lit('close')], ['websocket', lit('ws')]]),
    suffixes: [], prefixes: [],
    regexes: [{ regex: /^h(\d)c$/, value: cv('h2-$1', [{ text: 'h2-' }, { variable: '1' }]) }],
    loc: { file: 't', line: 1 },
  };
  const v = new Variables([map]);
  assert.equal(v.get('conn', ctx('/', {})), 'close');
  assert.equal(v.get('conn', ctx('/', { upgrade: 'WebSocket' })), 'ws');
  assert.equal(v.get('conn', ctx('/', { upgrade: 'h2c' })), 'h2-2');
  assert.equal(v.get('conn', ctx('/', { upgrade: 'other' })), 'upgrade');
});

test('map with hostnames: exact, then longest leading wildcard, then trailing wildcard', () => {
  const map: MapConfig = {
    variable: 'site', source: cv('$host', [{ variable: 'host' }]), defaultValue: lit('none'),
    hostnames: true, volatile: false,
    exact: new Map([['www.example.com', lit('exact')]]),
    suffixes: [{ suffix: '.example.com', value: lit('wild') }, { suffix: '.a.example.com', value: lit('deeper') }],
    prefixes: [{ prefix: 'mail.', value: lit('mail') }],
    regexes: [], loc: { file: 't', line: 1 },
  };
  const v = new Variables([map]);
  assert.equal(v.get('site', ctx('/', { host: 'www.example.com' })), 'exact');
  assert.equal(v.get('site', ctx('/', { host: 'x.example.com' })), 'wild');
  assert.equal(v.get('site', ctx('/', { host: 'x.a.example.com' })), 'deeper');
  assert.equal(v.get('site', ctx('/', { host: 'example.com' })), 'none', '*.example.com does not match example.com itself');
  assert.equal(v.get('site', ctx('/', { host: 'mail.other.org' })), 'mail');
  assert.equal(v.get('site', ctx('/', { host: 'other.org' })), 'none');
});

test('$arg_ edge cases as ngx_http_arg: any case, the first of repeated ones, "=" needed, empty values', () => {
  const v = new Variables([]);
  const c = ctx('/p?A=1&a=2&b&b=3&c=&D=x%20y&e=1=2');
  assert.equal(v.get('arg_a', c), '1', 'the first one, whatever its case');
  assert.equal(v.get('arg_A', c), '1');
  assert.equal(v.get('arg_b', c), '3', '"b" alone has no "=": the next one is found');
  assert.equal(v.get('arg_c', c), '');
  assert.equal(v.get('arg_d', c), 'x%20y', 'not decoded');
  assert.equal(v.get('arg_e', c), '1=2');
  assert.equal(v.get('arg_x', ctx('/p')), undefined);
});

test('$binary_remote_addr, $pipe, $limit_rate and $connections_*', () => {
  const figures = { active: 4, reading: 1, writing: 2, waiting: 1, accepted: 9, handled: 9, requests: 12 };
  const v = new Variables([], [], () => figures);
  const c = ctx('/');
  assert.equal(Buffer.from(v.get('binary_remote_addr', c) ?? '', 'latin1').toString('hex'), '0a010203');
  c.realIp = '2001:db8::1';
  assert.equal(Buffer.from(v.get('binary_remote_addr', c) ?? '', 'latin1').toString('hex'), '20010db8000000000000000000000001');
  c.realIp = '::ffff:10.0.0.1';
  assert.equal(Buffer.from(v.get('binary_remote_addr', c) ?? '', 'latin1').toString('hex'), '00000000000000000000ffff0a000001');
  assert.equal(v.get('pipe', c), '.');
  c.pipelined = true;
  assert.equal(v.get('pipe', c), 'p');
  assert.equal(v.get('limit_rate', c), '0');
  assert.deepEqual(['active', 'reading', 'writing', 'waiting'].map((k) => v.get(`connections_${k}`, c)), ['4', '1', '2', '1']);
  assert.equal(new Variables([]).get('connections_active', c), '0');
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ComplexValue, MapConfig } from '../../config/types.js';
import { RequestContext } from './request-context.js';
import { KEEP_ALL, tunnelKeep } from './tunnel-keep.js';
import { Variables, builtinVariableNames } from './variables.js';

const cv = (raw: string, parts: ComplexValue['parts']): ComplexValue => ({ raw, parts, constant: null });
const lit = (s: string): ComplexValue => ({ raw: s, parts: [{ text: s }], constant: s });

const MAP: MapConfig = {
  variable: 'conn_upgrade', source: cv('$http_upgrade', [{ variable: 'http_upgrade' }]), defaultValue: lit('upgrade'),
  hostnames: false, volatile: false, exact: new Map([['', lit('close')]]), suffixes: [], prefixes: [], regexes: [],
  loc: { file: 't', line: 1 },
};

/** A WebSocket session at the moment its tunnel opens, with something behind every variable. */
function openTunnelContext(v: Variables): RequestContext {
  const conn = { id: 7, requests: 1, startMs: 0, readMark: 0, remoteAddress: '10.1.2.3', remotePort: 5555, localAddress: '127.0.0.1', localPort: 8080, tls: false };
  const headers = {
    host: 'example.com:8080', upgrade: 'websocket', connection: 'Upgrade', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', 'x-probe': 'p',
    cookie: 'sid=abc; b=2', authorization: 'Basic dXNlcjpwdw==', 'user-agent': 'ua', referer: 'http://r/', 'x-forwarded-for': '1.1.1.1',
    'content-type': 'text/plain', 'content-length': '0',
  };
  const ctx = new RequestContext(conn, 'GET', '/ws/a?x=1&y=2', '1.1', headers, [], performance.now());
  ctx.status = 101;
  ctx.websocket = true;
  ctx.upgrade = 'websocket';
  ctx.tunnelStartMs = performance.now();
  ctx.upstreamHeaders = { upgrade: 'websocket', 'x-up': 'u', 'set-cookie': ['c=1; Path=/'] };
  ctx.sentList = ['Upgrade', 'websocket', 'X-Up', 'u', 'Sec-WebSocket-Protocol', 'chat'];
  ctx.attempts.push({ addr: '127.0.0.1:9000', status: 101, connectTime: 1, headerTime: 2, responseTime: -1, bytesSent: 10, bytesReceived: 20 });
  ctx.captures = ['/ws/a', 'a'];
  ctx.namedCaptures = { room: 'a' };
  v.get('conn_upgrade', ctx);
  return ctx;
}

/** Read from the clock, or from the file system: not comparable between two readings. */
const MOVING = new Set(['time_local', 'time_iso8601', 'msec', 'request_time', 'websocket_duration', 'document_root', 'realpath_root', 'request_filename']);

test('a compacted tunnel context reads every variable as it did before (each variable alone in the log format)', () => {
  const v = new Variables([MAP]);
  const names = [
    ...builtinVariableNames().filter((n) => !MOVING.has(n)),
    'http_x_probe', 'http_user_agent', 'http_referer', 'http_connection', 'cookie_sid', 'arg_x', 'sent_http_x_up', 'upstream_http_x_up',
    'upstream_cookie_c', '1', 'room', 'conn_upgrade',
  ];
  for (const name of names) {
    const ctx = openTunnelContext(v);
    const before = v.get(name, ctx);
    ctx.compactForTunnel(tunnelKeep([name], (n) => v.readsOtherVariables(n)));
    assert.equal(v.get(name, ctx), before, `$${name}`);
  }
});

test('what a tunnel keeps: the named request headers with Host and Upgrade; the rest only when a variable reads it; a map keeps all', () => {
  const v = new Variables([MAP]);
  const reads = (n: string): boolean => v.readsOtherVariables(n);
  const none = tunnelKeep(['remote_addr', 'status', 'request', 'upstream_addr', 'websocket_close_code'], reads);
  assert.deepEqual([...none.headers ?? []].sort(), ['host', 'upgrade']);
  assert.deepEqual([none.upstreamHeaders, none.sentHeaders, none.mapCache], [false, false, false]);
  const combined = tunnelKeep(['remote_addr', 'remote_user', 'time_local', 'request', 'status', 'body_bytes_sent', 'http_referer', 'http_user_agent'], reads);
  assert.deepEqual([...combined.headers ?? []].sort(), ['authorization', 'host', 'referer', 'upgrade', 'user-agent']);
  const upstream = tunnelKeep(['upstream_http_x_up', 'sent_http_x', 'cookie_a'], reads);
  assert.deepEqual([...upstream.headers ?? []].sort(), ['cookie', 'host', 'upgrade']);
  assert.deepEqual([upstream.upstreamHeaders, upstream.sentHeaders], [true, true]);
  assert.equal(tunnelKeep(['status', 'conn_upgrade'], reads), KEEP_ALL);
  assert.equal(tunnelKeep(['document_root'], reads), KEEP_ALL);

  const ctx = openTunnelContext(v);
  ctx.compactForTunnel(none);
  assert.deepEqual(ctx.headers, { host: 'example.com:8080', upgrade: 'websocket' });
  assert.deepEqual([ctx.upstreamHeaders, ctx.sentList, ctx.mapCache, ctx.rawHeaders], [null, null, null, []]);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Listen } from '../config/types.js';
import { planBinds } from './binds.js';

const at = { file: 'x', line: 1 };
const listen = (host: string, port: number, extra: Partial<Listen> = {}): Listen => ({
  key: `${host.includes(':') ? `[${host}]` : host}:${port}`, host, port, defaultServer: false, ssl: false, http2: false, proxyProtocol: false, loc: at, ...extra,
});

test('an address shares the wildcard socket of its port, unless `bind` (or a socket parameter) gives it its own', () => {
  const shared = planBinds([listen('0.0.0.0', 80), listen('127.0.0.1', 80)]);
  assert.deepEqual(shared.map((p) => [p.key, p.listenKeys]), [['0.0.0.0:80', ['0.0.0.0:80', '127.0.0.1:80']]]);
  const own = planBinds([listen('0.0.0.0', 80), listen('127.0.0.1', 80, { socket: { ipv6only: true, backlog: 64, bind: true, reuseport: false, keepalive: null } })]);
  assert.deepEqual(own.map((p) => [p.key, p.socket.backlog]), [['0.0.0.0:80', 511], ['127.0.0.1:80', 64]]);
});

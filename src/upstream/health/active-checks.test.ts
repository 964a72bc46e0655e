import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { HealthCheckConfig, UpstreamConfig } from '../../config/types.js';
import type { ErrorLog } from '../../observability/error-log.js';
import { testPeer } from '../balancers/fixtures.js';
import { PeerStates, UpstreamPool } from '../pool.js';
import { refusedPort } from '../../../test/helpers/ports.js';
import { ActiveHealthChecks } from './active-checks.js';

test('a failing check re-asserts a server that something else marked healthy meanwhile', async () => {
  const port = await refusedPort();
  const check: HealthCheckConfig = {
    interval: 1000, jitter: 0, fails: 1, passes: 1, uri: '/', port: null, type: 'tcp', match: null, host: 'u', loc: { file: 't', line: 1 },
  };
  const config: UpstreamConfig = {
    name: 'u', servers: [testPeer(port).server], keepalive: 0, keepaliveTimeout: 60_000, keepaliveRequests: 1000, implicit: false,
    method: { name: 'round_robin' }, sticky: null, zone: null, healthChecks: [check], resolver: null, resolverTimeout: 30_000, loc: { file: 't', line: 1 },
  };
  const lines: string[] = [];
  const log = { log: (level: string, message: string) => void lines.push(`[${level}] ${message}`) } as unknown as ErrorLog;
  const pool = new UpstreamPool(config, new PeerStates());
  const checks = new ActiveHealthChecks(pool, new Map(), log);
  const peer = pool.primary[0]!;

  await checks.runOnce(check);
  assert.equal(peer.state.healthy, false);
  // A reload that dropped the checks (and was rolled back) returned the server to service.
  peer.state.healthy = true;
  await checks.runOnce(check);
  assert.equal(peer.state.healthy, false);
  assert.deepEqual(lines, Array(2).fill(`[warn] peer is unhealthy (connect failed (ECONNREFUSED)), health check "tcp" of peer 127.0.0.1:${port} in upstream "u"`));
  // Further failures change nothing and say nothing.
  await checks.runOnce(check);
  assert.equal(lines.length, 2);
  checks.close();
});

test('a peer that a `server ... resolve` line added after the checks started is probed too', async () => {
  const port = await refusedPort();
  const check: HealthCheckConfig = {
    interval: 1000, jitter: 0, fails: 1, passes: 1, uri: '/', port: null, type: 'tcp', match: null, host: 'u', loc: { file: 't', line: 1 },
  };
  const line = testPeer(port, { name: `app.test:${port}`, resolve: 'app.test', loc: { file: 't', line: 2 } }).server;
  const config: UpstreamConfig = {
    name: 'u', servers: [line], keepalive: 0, keepaliveTimeout: 60_000, keepaliveRequests: 1000, implicit: false,
    method: { name: 'round_robin' }, sticky: null, zone: { name: 'u', size: 65536 }, healthChecks: [check], resolver: null, resolverTimeout: 30_000, loc: { file: 't', line: 1 },
  };
  const log = { log: () => undefined } as unknown as ErrorLog;
  const pool = new UpstreamPool(config, new PeerStates());
  const checks = new ActiveHealthChecks(pool, new Map(), log);
  assert.equal(pool.peers.length, 0);
  pool.setResolved(line, [{ host: '127.0.0.1', port: 0, family: 4 }]);
  await checks.runOnce(check);
  assert.equal(pool.peers[0]!.state.healthy, false);
  checks.close();
});

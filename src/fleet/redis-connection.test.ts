import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { FleetConfig } from '../config/types.js';
import { redisOptions, sameRedis } from './redis-connection.js';

const BASE: FleetConfig = {
  mode: 'standalone', nodes: [{ host: 'r.test', port: 6379 }], tls: false, ca: null, username: null, password: 'pw',
  sentinelPassword: null, masterName: null, db: 1, display: 'redis://:***@r.test', name: 'a', keyPrefix: 'sluice:',
  heartbeat: 1000, ttl: 3000, countsCache: 250, timeout: 700, loc: { file: 'f', line: 1 },
};

test('a reload keeps the connection when only the member\'s own parameters change', () => {
  assert.equal(sameRedis(BASE, { ...BASE, name: 'b', keyPrefix: 'x:', heartbeat: 5, ttl: 50, countsCache: 9, loc: { file: 'g', line: 2 } }), true);
  for (const change of [{ password: 'other' }, { db: 2 }, { tls: true }, { timeout: 800 }, { nodes: [{ host: 'r.test', port: 6380 }] }, { username: 'u' }, { mode: 'cluster' as const }]) {
    assert.equal(sameRedis(BASE, { ...BASE, ...change }), false, JSON.stringify(change));
  }
});

test('ioredis options: fail fast while disconnected, time-outs from timeout=, TLS with the CA and server name', () => {
  const o = redisOptions(BASE, 'sluice:a/1');
  assert.equal(o.enableOfflineQueue, false);
  assert.equal(o.maxRetriesPerRequest, 0);
  assert.deepEqual([o.connectTimeout, o.commandTimeout, o.db, o.password, o.username, o.tls, o.connectionName], [700, 700, 1, 'pw', undefined, undefined, 'sluice:a/1']);
  assert.deepEqual([1, 5, 100].map((n) => o.retryStrategy!(n)), [100, 500, 2000], 'reconnects back off to 2 s at most');
  assert.deepEqual(redisOptions({ ...BASE, tls: true, ca: 'PEM' }, 'x').tls, { ca: 'PEM', servername: 'r.test' });
});

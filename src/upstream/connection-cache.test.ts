import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import { ConnectionCache } from './connection-cache.js';

/** `n` connected client sockets to a local server; everything is destroyed after the test. */
async function sockets(t: { after(fn: () => unknown): void }, n: number): Promise<Socket[]> {
  const accepted = new Set<Socket>();
  const server = createServer((s) => {
    accepted.add(s);
    s.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const out: Socket[] = [];
  for (let i = 0; i < n; i++) {
    const s = connect({ host: '127.0.0.1', port });
    s.on('error', () => undefined);
    await new Promise<void>((resolve) => s.once('connect', resolve));
    out.push(s);
  }
  t.after(() => {
    for (const s of [...out, ...accepted]) s.destroy();
    server.close();
  });
  return out;
}

test('a kept connection is handed out only for its own key, last in first out, up to `max` per key', async (t) => {
  const [a1, a2, a3, b1] = await sockets(t, 4) as [Socket, Socket, Socket, Socket];
  const cache = new ConnectionCache(2, 60_000, 100);
  // The keys of one server under two TLS identities.
  assert.equal(cache.put('s|1', a1), true);
  assert.equal(cache.put('s|1', a2), true);
  assert.equal(cache.put('s|1', a3), false, 'the cache for this key is full');
  assert.equal(cache.put('s|2', b1), true);
  assert.equal(cache.idleCount(), 3);
  assert.equal(cache.take('s|1'), a2);
  assert.equal(cache.take('s|1'), a1);
  assert.equal(cache.take('s|1'), null, 'never one kept under another key');
  assert.equal(cache.take('s|2'), b1);
  assert.equal(cache.idleCount(), 0);
});

test('close() closes the idle connections and keeps none from then on; closeIdle() only empties it', async (t) => {
  const [a, b, c] = await sockets(t, 3) as [Socket, Socket, Socket];
  const cache = new ConnectionCache(4, 60_000, 100);
  cache.put('k', a);
  cache.closeIdle();
  assert.equal(a.destroyed, true);
  assert.equal(cache.put('k', b), true, 'a reload empties the cache; it still keeps connections');
  cache.close();
  assert.equal(b.destroyed, true);
  assert.equal(cache.put('k', c), false, 'shut down: a connection that finishes its request is closed by its owner');
  assert.equal(cache.idleCount(), 0);
});

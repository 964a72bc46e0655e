/**
 * Reloads that drop nothing (issue: operations): tunnels keep flowing across many reloads,
 * listeners on unchanged addresses never refuse a connection, a bad config keeps the old one,
 * tunnels to removed servers are drained with close 1001 as websocket_drain_timeout says, and
 * live upstream state survives.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startEchoServer } from '../../src/echo/echo-server.js';
import type { EchoServer } from '../../src/echo/echo-server.js';
import { events } from '../../src/observability/events.js';
import { httpGet } from '../helpers/cli-process.js';
import { startTestProxy } from '../helpers/proxy.js';
import { waitFor, withTimeout } from '../helpers/wait.js';

function config(servers: readonly EchoServer[], opts: { extraListen?: boolean; drain?: string; broken?: boolean; params?: string } = {}): string {
  return `events {}
http {
  ${opts.drain ? `websocket_drain_timeout ${opts.drain};` : ''}
  upstream app { ${servers.map((s) => `server 127.0.0.1:${s.port} ${opts.params ?? ''};`).join(' ')} }
  server {
    listen 127.0.0.1:0;
    location / { proxy_pass http://app; proxy_read_timeout 60s; }
    ${opts.broken ? 'proxy_pas http://app;' : ''}
  }
  ${opts.extraListen ? 'server { listen 127.0.0.2:0; location / { return 200 "extra"; } }' : ''}
}`;
}

interface Client {
  ws: WebSocket;
  id: string;
  sent: number;
  echoed: number;
  outOfOrder: number;
  closeCode: number | null;
}

async function openClient(port: number): Promise<Client> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/whoami`);
  const c: Client = { ws, id: '', sent: 0, echoed: 0, outOfOrder: 0, closeCode: null };
  ws.on('message', (data) => {
    const text = data.toString();
    if (c.id === '') {
      c.id = (JSON.parse(text) as { id: string }).id;
      return;
    }
    if (Number(text) !== c.echoed) c.outOfOrder++;
    c.echoed++;
  });
  ws.on('close', (code) => (c.closeCode = code));
  ws.on('error', () => {});
  await withTimeout(new Promise((r, j) => { ws.once('open', r); ws.once('error', j); }), 10_000, 'a tunnel to open');
  await waitFor(() => c.id !== '', { timeoutMs: 10_000, what: 'the whoami greeting' });
  return c;
}

test('200 tunnels keep flowing across 20 reloads; tunnels to a removed server are drained with 1001', async (t) => {
  const [a, b, c] = await Promise.all([startEchoServer({ id: 'A' }), startEchoServer({ id: 'B' }), startEchoServer({ id: 'C' })]);
  t.after(() => Promise.all([a!.close(), b!.close(), c!.close()]));
  const proxy = await startTestProxy(config([a!, b!]), { t, graceMs: 2000 });
  const port = proxy.port;

  const reloads: { ok: boolean; drained: number }[] = [];
  const onReload = (m: unknown): void => void reloads.push(m as { ok: boolean; drained: number });
  events.reload.subscribe(onReload);
  t.after(() => events.reload.unsubscribe(onReload));

  const clients: Client[] = [];
  for (let i = 0; i < 200; i += 20) clients.push(...(await Promise.all(Array.from({ length: 20 }, () => openClient(port)))));
  assert.equal(clients.filter((x) => x.id === 'A').length, 100);
  assert.equal(clients.filter((x) => x.id === 'B').length, 100);

  // Every tunnel sends a numbered message every 100 ms for the whole test.
  const pump = setInterval(() => {
    for (const x of clients) if (x.ws.readyState === WebSocket.OPEN) x.ws.send(String(x.sent++));
  }, 100);
  t.after(() => clearInterval(pump));
  // A prober keeps opening new connections to the unchanged listener: none may be refused.
  let probes = 0;
  const failures: string[] = [];
  let probing = true;
  const prober = (async () => {
    while (probing) {
      try {
        const status = (await httpGet(port)).status;
        if (status !== 200) failures.push(`status ${status}`);
        probes++;
      } catch (e) {
        failures.push((e as Error).message);
      }
    }
  })();

  // 20 reloads: the first replaces B by C (B's tunnels are drained 300-500 ms later), then the
  // upstream alternates between two parameter sets, a listener comes and goes, and one config
  // is invalid.
  let extraSeen = false;
  const probesBefore = probes;
  for (let i = 1; i <= 20; i++) {
    const params = i % 2 === 1 ? '' : 'weight=2 max_fails=3';
    const text = config([a!, c!], { extraListen: i % 4 === 1, drain: '300ms 200ms', broken: i === 7, params });
    if (i === 7) {
      await assert.rejects(proxy.handle.reload({ text }), /unknown directive "proxy_pas"/);
    } else {
      await proxy.handle.reload({ text });
      const extra = proxy.handle.listeners.find((l) => l.host === '127.0.0.2');
      if (i % 4 === 1) {
        assert.ok(extra, `reload ${i} adds the 127.0.0.2 listener`);
        assert.equal((await httpGet(extra.port, '/', { address: '127.0.0.2' })).status, 200);
        extraSeen = true;
      } else {
        assert.equal(extra, undefined, `reload ${i} removes the 127.0.0.2 listener`);
      }
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(extraSeen);
  const probesDuring = probes - probesBefore;
  // Wait for B's tunnels to be drained: websocket_drain_timeout 300 ms plus up to 200 ms jitter.
  await waitFor(() => clients.filter((x) => x.id === 'B').every((x) => x.closeCode !== null), { timeoutMs: 10_000, what: "B's tunnels to be drained" });
  // Let the last messages come back, then stop.
  clearInterval(pump);
  await waitFor(() => clients.filter((x) => x.id === 'A').every((x) => x.echoed === x.sent), { timeoutMs: 10_000, what: 'every message on A to be echoed' });
  // A busy machine makes fewer probes per second: wait for enough of them rather than assume a rate.
  await waitFor(() => probes > 20, { timeoutMs: 20_000, what: 'more than 20 probes' });
  probing = false;
  await prober;

  assert.deepEqual(failures, [], 'no connection to the unchanged listener was refused or failed');
  assert.ok(probesDuring > 0, 'the prober was answered while the reloads ran');
  for (const x of clients.filter((y) => y.id === 'A')) {
    assert.equal(x.closeCode, null, 'a tunnel to a kept server stays open');
    assert.equal(x.outOfOrder, 0);
    assert.ok(x.sent > 10);
  }
  for (const x of clients.filter((y) => y.id === 'B')) {
    assert.equal(x.closeCode, 1001, 'a drained tunnel is closed with 1001 (going away)');
    assert.equal(x.outOfOrder, 0, 'nothing was lost or reordered before the drain');
  }
  assert.equal(reloads.length, 20);
  assert.equal(reloads.filter((r) => !r.ok).length, 1);
  assert.equal(reloads[0]!.drained, 100, 'the switch to {A,C} leaves 100 tunnels on B');
  assert.ok(proxy.errorLines.some((l) => l.includes('[emerg]') && l.includes('unknown directive "proxy_pas"')));
  assert.ok(proxy.errorLines.some((l) => /\[alert\] \d+#0: reload failed: still serving the previous configuration$/.test(l)));
  for (const x of clients) x.ws.terminate();
});

test('without websocket_drain_timeout a tunnel to a removed server stays until it ends; live state survives', async (t) => {
  const [a, b] = await Promise.all([startEchoServer({ id: 'A' }), startEchoServer({ id: 'B' })]);
  t.after(() => Promise.all([a!.close(), b!.close()]));
  const proxy = await startTestProxy(config([a!, b!]), { t });
  const x = await openClient(proxy.port);
  const y = await openClient(proxy.port);
  assert.deepEqual([x.id, y.id].sort(), ['A', 'B']);
  const r = await proxy.handle.reload({ text: config([a!]) });
  assert.equal(r.drained, 1);
  await new Promise((res) => setTimeout(res, 300));
  for (const z of [x, y]) {
    z.ws.send(String(z.sent++));
  }
  await waitFor(() => x.echoed === 1 && y.echoed === 1, { timeoutMs: 5000, what: 'both tunnels to keep echoing' });
  assert.equal(x.closeCode, null);
  assert.equal(y.closeCode, null);
  // New tunnels go to the new config's only server.
  const z = await openClient(proxy.port);
  assert.equal(z.id, 'A');
  for (const w of [x, y, z]) w.ws.terminate();
});

test('graceful close gives tunnels the grace, then closes them with 1001 at a frame boundary', async (t) => {
  const a = await startEchoServer({ id: 'A' });
  t.after(() => a.close());
  const proxy = await startTestProxy(config([a]), { t });
  const x = await openClient(proxy.port);
  const big = Buffer.alloc(4 * 1024 * 1024, 7);
  x.ws.send(big);
  const closing = proxy.handle.close(200);
  await withTimeout(closing, 10_000, 'close to finish');
  await waitFor(() => x.closeCode !== null, { timeoutMs: 5000, what: 'the client to see the close' });
  // A close frame inserted inside the 4 MiB echo would corrupt the stream: the ws client would
  // report 1002 (protocol error) or 1006 (abnormal), never a parsed 1001.
  assert.equal(x.closeCode, 1001);
});

/**
 * Upstream connections are released: once a tunnel or a request is over, nothing of Sluice's
 * keeps the upstream socket (or the exchange around it) alive. Found by the benchmark's idle
 * memory figures: the lean client's HTTP parser, held by a global handle until it is deleted,
 * kept its last exchange and the socket for good. A child process with `--expose-gc` proxies
 * WebSocket upgrades and plain requests with `Connection: close`, watches every upstream socket
 * through the `net.client.socket` diagnostics channel with a FinalizationRegistry, and reports
 * how many were collected after the connections ended.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { tempDir } from '../helpers/temp.js';

const ROUNDS = 60;

function childScript(indexUrl: string): string {
  return `
import { createServer } from 'node:http';
import { connect } from 'node:net';
import { subscribe } from 'node:diagnostics_channel';
import { createHash } from 'node:crypto';
import { startProxy } from ${JSON.stringify(indexUrl)};

let registered = 0, collected = 0;
const registry = new FinalizationRegistry(() => { collected++; });
subscribe('net.client.socket', ({ socket }) => { registered++; registry.register(socket, 0); });

const backend = createServer((req, res) => { res.setHeader('Connection', 'close'); res.end('ok'); });
backend.on('upgrade', (req, socket) => {
  const accept = createHash('sha1').update(req.headers['sec-websocket-key'] + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
  socket.write('HTTP/1.1 101 Switching Protocols\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\nSec-WebSocket-Accept: ' + accept + '\\r\\n\\r\\n');
  socket.on('data', () => {});
  socket.on('error', () => {});
  socket.on('end', () => socket.end());
});
await new Promise((r) => backend.listen(0, '127.0.0.1', r));
const proxy = await startProxy({ text: \`events {} http {
  access_log off;
  map $http_upgrade $connection_upgrade { default upgrade; '' close; }
  upstream app { server 127.0.0.1:\${backend.address().port}; }
  server { listen 127.0.0.1:0; location / {
    proxy_pass http://app; proxy_http_version 1.1;
    proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection $connection_upgrade;
  } } }\` });
const port = proxy.listeners[0].port;

function exchange(head, until) {
  return new Promise((resolve, reject) => {
    const c = connect(port, '127.0.0.1');
    let got = '';
    c.on('error', reject);
    c.on('data', (d) => { got += d.toString('latin1'); if (until(got)) c.end(); });
    c.on('close', () => resolve(got));
    c.write(head);
  });
}
for (let i = 0; i < ${ROUNDS}; i++) {
  const up = await exchange('GET /ws HTTP/1.1\\r\\nHost: x\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\nSec-WebSocket-Version: 13\\r\\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\\r\\n\\r\\n', (s) => s.includes('\\r\\n\\r\\n'));
  if (!up.startsWith('HTTP/1.1 101')) throw new Error('no 101: ' + JSON.stringify(up));
  const plain = await exchange('GET / HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n', () => false);
  if (!plain.startsWith('HTTP/1.1 200')) throw new Error('no 200: ' + JSON.stringify(plain));
}
for (let i = 0; i < 200 && proxy.stats.snapshot().tunnels.open > 0; i++) await new Promise((r) => setTimeout(r, 25));
const open = proxy.stats.snapshot().tunnels.open;
for (let i = 0; i < 40 && collected < registered; i++) {
  globalThis.gc();
  await new Promise((r) => setTimeout(r, 25));
}
console.log(JSON.stringify({ registered, collected, open }));
await proxy.destroy();
backend.close();
process.exit(0);
`;
}

test('upstream sockets of finished tunnels and requests are garbage-collected', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  const script = dir.write('release.mjs', childScript(new URL('../../src/index.js', import.meta.url).href));
  const child = spawn(process.execPath, ['--expose-gc', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  assert.equal(code, 0, `child failed: ${err}`);
  const r = JSON.parse(out.trim().split('\n').pop() ?? '{}') as { registered: number; collected: number; open: number };
  assert.equal(r.open, 0, 'every tunnel closed');
  // Per round: two exchanges, each a client socket of this script's and an upstream socket of Sluice's.
  assert.ok(r.registered >= 4 * ROUNDS, `every socket seen: ${JSON.stringify(r)}`);
  // The sockets of the last exchange or two may still be referenced from the event loop's last turn.
  assert.ok(r.collected >= r.registered - 4, `upstream sockets still alive after GC: ${JSON.stringify(r)}`);
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import WebSocket from 'ws';
import type { EchoHttpReport } from '../../src/echo/echo-http.js';
import { startHttpBackend } from './backends.js';
import { headerValue, rawConnect, rawRequest, rawWebSocket, readFrame, waitForClose, wsHandshakeRequest } from './raw-client.js';
import { once, waitFor } from './wait.js';

test('startHttpBackend: default JSON names the backend and records raw headers and body', async (t) => {
  const backend = await startHttpBackend(undefined, { id: 'alpha' });
  t.after(() => backend.close());
  assert.equal(backend.addr, `127.0.0.1:${backend.port}`);
  assert.equal(backend.url('/x'), `http://127.0.0.1:${backend.port}/x`);
  const response = await fetch(backend.url('/items?id=7'), {
    method: 'POST', body: 'payload', headers: { 'X-Custom': 'Value' },
  });
  assert.equal(response.status, 200);
  assert.equal(response.headers.get('x-echo-id'), 'alpha');
  const report = await response.json() as EchoHttpReport;
  assert.equal(report.id, 'alpha');
  assert.equal(report.method, 'POST');
  assert.equal(report.url, '/items?id=7');
  assert.equal(report.headers['x-custom'], 'Value');
  assert.equal(report.body, 'payload');
  assert.equal(backend.requests.length, 1);
  const [seen] = backend.requests;
  assert.equal(seen?.upgrade, false);
  assert.equal(seen?.body, 'payload');
  assert.ok(seen?.rawHeaders.includes('X-Custom'), 'raw header names keep their case');
});

test('startHttpBackend: a custom handler answers and requests are still recorded', async (t) => {
  const backend = await startHttpBackend((req, res, record, self) => {
    res.writeHead(418, { 'Content-Type': 'text/plain' });
    res.end(`${self.id} saw ${record.method} ${req.url ?? ''}`);
  }, { id: 'teapot' });
  t.after(() => backend.close());
  const res = await rawRequest(backend.port, 'DELETE /pot HTTP/1.1\r\nHost: h\r\nX-Dup: 1\r\nX-Dup: 2\r\n\r\n');
  assert.equal(res.head?.statusCode, 418);
  assert.equal(res.body.toString(), 'teapot saw DELETE /pot');
  assert.deepEqual(backend.requests[0]?.headers['x-dup'], ['1', '2']);
});

test('startHttpBackend: WebSocket upgrades are echoed and recorded as upgrades', async (t) => {
  const backend = await startHttpBackend(undefined, { id: 'ws-b' });
  t.after(() => backend.close());
  const ws = new WebSocket(`ws://127.0.0.1:${backend.port}/whoami`, ['proto']);
  ws.on('error', () => undefined);
  t.after(() => ws.terminate());
  // The whoami message comes in the same packet as the 101: listen before awaiting the open.
  const upgraded = once(ws, 'upgrade', 5000);
  const greeted = once(ws, 'message', 5000);
  const [upgradeResponse] = await upgraded;
  assert.equal((upgradeResponse as { headers: Record<string, string> }).headers['x-echo-id'], 'ws-b');
  const [hello] = await greeted;
  assert.deepEqual(JSON.parse(String(hello)), { id: 'ws-b' });
  ws.send('round trip');
  const [echo] = await once(ws, 'message', 5000);
  assert.equal(String(echo), 'round trip');
  assert.equal(backend.requests.length, 1);
  assert.equal(backend.requests[0]?.upgrade, true);
  assert.equal(backend.requests[0]?.headers['sec-websocket-protocol'], 'proto');
});

test('startHttpBackend: onUpgrade replaces the echo (here: refuses with 403)', async (t) => {
  const backend = await startHttpBackend(undefined, {
    onUpgrade: (_req, socket) => socket.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\nConnection: close\r\n\r\nno'),
  });
  t.after(() => backend.close());
  const res = await rawRequest(backend.port, wsHandshakeRequest());
  assert.equal(res.head?.statusCode, 403);
  assert.equal(res.body.toString(), 'no');
  assert.equal(backend.requests[0]?.upgrade, true);
});

test('startHttpBackend: close() destroys keep-alive and WebSocket sockets, and is idempotent', async () => {
  const backend = await startHttpBackend();
  const keepAlive = await rawConnect(backend.port);
  keepAlive.write('GET / HTTP/1.1\r\nHost: h\r\n\r\n');
  const { socket: tunnel, head } = await rawWebSocket(backend.port);
  assert.equal(head.statusCode, 101);
  assert.equal(headerValue(head, 'x-echo-id'), backend.id);
  await waitFor(() => backend.openSockets() === 2, { what: 'two open sockets' });
  const first = backend.close();
  assert.equal(backend.close(), first);
  await first;
  await waitForClose(keepAlive, 2000);
  await waitForClose(tunnel, 2000);
  assert.equal(backend.openSockets(), 0);
  await assert.rejects(readFrame(tunnel, 100));
});

/**
 * Upstream servers on unix domain sockets, as nginx writes them: `server unix:/path;` in an
 * upstream block and `proxy_pass http://unix:/path[:/uri]`. HTTP requests and WebSocket tunnels
 * go over the socket; `$upstream_addr` reads "unix:/path"; the default Host is "localhost"
 * (nginx's $proxy_host for a socket); a dead socket is a 502 like a refused port.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { test } from 'node:test';
import WebSocket, { WebSocketServer } from 'ws';
import { conf } from '../helpers/config-text.js';
import { waitForFileLine } from '../helpers/log-files.js';
import { startTestProxy } from '../helpers/proxy.js';
import { sendRequest } from '../helpers/raw-client.js';
import { tempDir } from '../helpers/temp.js';
import { once, withTimeout } from '../helpers/wait.js';

/** An HTTP + WebSocket echo on a unix socket: answers JSON {url, host}, echoes WebSocket messages. */
async function unixBackend(t: import('node:test').TestContext, path: string): Promise<{ requests: IncomingMessage[] }> {
  const requests: IncomingMessage[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    requests.push(req);
    res.setHeader('Content-Type', 'application/json');
    res.end(JSON.stringify({ url: req.url, host: req.headers.host, via: 'unix' }));
  });
  const wss = new WebSocketServer({ server });
  wss.on('connection', (ws, req) => {
    requests.push(req);
    ws.on('message', (m, binary) => ws.send(m, { binary }));
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  t.after(() => new Promise<void>((resolve) => {
    for (const c of wss.clients) c.terminate();
    wss.close();
    server.closeAllConnections();
    server.close(() => resolve());
  }));
  return { requests };
}

test('server unix:/path and proxy_pass http://unix:/path:/uri carry HTTP and WebSockets over the socket', async (t) => {
  const dir = tempDir(t);
  const a = dir.join('a.sock');
  const b = dir.join('b.sock');
  const backendA = await unixBackend(t, a);
  await unixBackend(t, b);
  const log = dir.join('access.log');
  const proxy = await startTestProxy(conf(`
    log_format u '$uri $status $upstream_addr';
    access_log ${log} u;
    upstream app { server unix:${a}; keepalive 4; }
    server {
      listen 127.0.0.1:0;
      location /app/ { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; }
      location /direct/ { proxy_pass http://unix:${b}:/inner/; }
      location /ws { proxy_pass http://app; }
      location /dead/ { proxy_pass http://unix:${dir.join('nothing.sock')}; }
    }`), { t });
  const one = await sendRequest(proxy.port, '/app/x?q=1');
  assert.equal(one.status, 200);
  assert.deepEqual(JSON.parse(one.body), { url: '/app/x?q=1', host: 'app', via: 'unix' });
  const two = await sendRequest(proxy.port, '/direct/y');
  assert.deepEqual(JSON.parse(two.body), { url: '/inner/y', host: 'localhost', via: 'unix' }, 'the URI part replaces the location; Host is "localhost"');
  assert.equal((await sendRequest(proxy.port, '/dead/z')).status, 502);

  const ws = new WebSocket(`ws://127.0.0.1:${proxy.port}/ws`);
  t.after(() => ws.terminate());
  await withTimeout(once(ws, 'open'), 5000, 'the WebSocket over a unix socket');
  ws.send('over the socket');
  const [echo] = await withTimeout(once(ws, 'message'), 5000, 'the echo') as [Buffer];
  assert.equal(echo.toString(), 'over the socket');
  ws.close(1000);
  await withTimeout(once(ws, 'close'), 5000, 'the close');
  assert.ok(backendA.requests.some((r) => r.url === '/ws'), 'the upgrade reached the socket');

  const lines = (await waitForFileLine(log, '/ws 101')).join('\n');
  assert.match(lines, new RegExp(`^/app/x 200 unix:${a.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}$`, 'm'));
  assert.match(lines, /^\/dead\/z 502 unix:\S+nothing\.sock$/m);
});

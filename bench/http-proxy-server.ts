/**
 * The `http-proxy` target: the node-http-proxy package as it is usually deployed, an HTTP server
 * whose requests go to `proxy.web` (through a keep-alive agent, as nginx and HAProxy reuse
 * upstream connections too) and whose upgrades go to `proxy.ws`.
 * Usage: node http-proxy-server.js BACKEND_PORT. Prints `listening on HOST:PORT` on stderr.
 */
import { Agent, createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import httpProxy from 'http-proxy';

const backendPort = Number(process.argv[2]);
const agent = new Agent({ keepAlive: true, maxSockets: 1024 });
const proxy = httpProxy.createProxyServer({ target: `http://127.0.0.1:${backendPort}`, ws: true, xfwd: false });
proxy.on('error', (_err: Error, _req: IncomingMessage, res: ServerResponse | Socket) => {
  if ('writeHead' in res) {
    if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
    res.end('bad gateway\n');
  } else {
    res.destroy();
  }
});
const webOptions = { agent };
const server = createServer((req, res) => proxy.web(req, res, webOptions));
server.keepAliveTimeout = 60_000;
server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
  socket.on('error', () => socket.destroy());
  proxy.ws(req, socket, head);
});
server.listen({ host: '127.0.0.1', port: 0, backlog: 4096 }, () => {
  const a = server.address();
  process.stderr.write(`listening on 127.0.0.1:${typeof a === 'object' && a ? a.port : 0}\n`);
});
process.on('disconnect', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));

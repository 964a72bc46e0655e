/**
 * The benchmark's echo backend, a child process of the harness: `ws` (with `bufferutil`,
 * per-message compression off) echoes every WebSocket message; plain HTTP `GET /bytes/N` answers
 * N bytes (cached), for wrk. Prints `listening on HOST:PORT (bufferutil native|js)` on stderr and
 * exits when the harness's IPC channel goes away.
 */
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { WebSocketServer } from 'ws';
import type { RawData, WebSocket } from 'ws';

const require = createRequire(import.meta.url);

function bufferutilKind(): string {
  try {
    const bu = require('bufferutil') as { mask: { toString(): string } };
    return bu.mask.toString().includes('[native code]') ? 'native' : 'js';
  } catch {
    return 'missing';
  }
}

const bodies = new Map<number, Buffer>();

function body(size: number): Buffer {
  let b = bodies.get(size);
  if (!b) {
    b = Buffer.alloc(size, 'x');
    bodies.set(size, b);
  }
  return b;
}

function onRequest(req: IncomingMessage, res: ServerResponse): void {
  const m = /^\/bytes\/(\d{1,8})$/.exec(req.url ?? '');
  const b = body(m ? Math.min(Number(m[1]), 16 * 1024 * 1024) : 2);
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': b.length });
  res.end(b);
  req.resume();
}

function onMessage(this: WebSocket, data: RawData, isBinary: boolean): void {
  this.send(data, { binary: isBinary });
}

function onError(): void {
  // A client that resets is not the backend's problem; ws closes the socket.
}

const host = process.argv[2] ?? '127.0.0.1';
const server = createServer({ keepAliveTimeout: 60_000 }, onRequest);
server.keepAliveTimeout = 60_000;
server.headersTimeout = 65_000;
server.maxConnections = 100_000;
const wss = new WebSocketServer({ server, perMessageDeflate: false, maxPayload: 64 * 1024 * 1024, clientTracking: false });
wss.on('connection', (ws: WebSocket) => {
  ws.on('message', onMessage);
  ws.on('error', onError);
});
server.listen({ host, port: 0, backlog: 4096 }, () => {
  const a = server.address();
  const port = typeof a === 'object' && a ? a.port : 0;
  process.stderr.write(`listening on ${host}:${port} (bufferutil ${bufferutilKind()})\n`);
});
process.on('disconnect', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));

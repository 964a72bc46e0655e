/**
 * The servers of the HTTP floor experiment (`node dist/bench/http-floor.js`): how much of Sluice's
 * CPU per proxied request is Node's `http` layers, measured by proxies that do less and less.
 *
 *   node http-floor-server.js node-answer BACKEND_PORT   Node's http server answering 2 bytes itself (no upstream)
 *   node http-floor-server.js node-proxy  BACKEND_PORT   http server + http.request on a keep-alive agent, piped
 *   node http-floor-server.js node-server BACKEND_PORT   Node's http server, the upstream side on raw
 *                                                        pooled sockets (no http.request, no Agent)
 *   node http-floor-server.js raw-proxy   BACKEND_PORT   net sockets only: request heads found by "\r\n\r\n",
 *                                                        passed to a pooled keep-alive upstream connection,
 *                                                        responses delimited by Content-Length
 *
 * These are measuring instruments, not proxies: the raw one handles only what wrk sends (GET
 * without a body, Content-Length responses, one request in flight per client connection). Each
 * prints `listening on 127.0.0.1:PORT` on stderr and exits with its IPC channel.
 */
import { Agent, createServer, request } from 'node:http';
import { connect, createServer as createNetServer } from 'node:net';
import type { Socket } from 'node:net';

const [kind, backendPortText] = process.argv.slice(2);
const backendPort = Number(backendPortText);
const TWO = Buffer.from('ok');

function listening(port: number): void {
  process.stderr.write(`listening on 127.0.0.1:${port}\n`);
}

function nodeAnswer(): void {
  const server = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': 2 });
    res.end(TWO);
    req.resume();
  });
  server.listen(0, '127.0.0.1', () => listening((server.address() as { port: number }).port));
}

function nodeProxy(): void {
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const server = createServer((req, res) => {
    const up = request({ host: '127.0.0.1', port: backendPort, method: req.method, path: req.url, headers: req.headers, agent }, (ur) => {
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      ur.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  server.listen(0, '127.0.0.1', () => listening((server.address() as { port: number }).port));
}

/** One idle keep-alive connection to the backend per entry. */
const idle: Socket[] = [];
const CRLF2 = Buffer.from('\r\n\r\n');
const EMPTY = Buffer.alloc(0);

interface Exchange {
  /** Where the whole response goes: the client socket, or a callback (node-server). */
  client: { write(b: Buffer): unknown };
  pending: Buffer<ArrayBufferLike>;
  need: number;
}

function upstreamFor(x: Exchange, head: Buffer): void {
  const up = idle.pop() ?? connect({ host: '127.0.0.1', port: backendPort, noDelay: true });
  (up as Socket & { x?: Exchange }).x = x;
  up.write(head);
  if (up.listenerCount('data') === 0) {
    up.on('data', (chunk: Buffer) => {
      const y = (up as Socket & { x?: Exchange }).x;
      if (!y) return;
      const buf = y.pending.length > 0 ? Buffer.concat([y.pending, chunk]) : chunk;
      if (y.need < 0) {
        const end = buf.indexOf(CRLF2);
        if (end < 0) {
          y.pending = buf;
          return;
        }
        const m = /\r\ncontent-length:\s*(\d+)/i.exec(buf.subarray(0, end).toString('latin1'));
        y.need = end + 4 + Number(m?.[1] ?? 0);
      }
      if (buf.length < y.need) {
        y.pending = buf;
        return;
      }
      y.client.write(buf.length === y.need ? buf : buf.subarray(0, y.need));
      y.pending = EMPTY;
      y.need = -1;
      (up as Socket & { x?: Exchange }).x = undefined;
      idle.push(up);
    });
    up.on('error', () => up.destroy());
  }
}

function nodeServer(): void {
  const server = createServer((req, res) => {
    let head = `${req.method} ${req.url} HTTP/1.1\r\n`;
    const raw = req.rawHeaders;
    for (let i = 0; i < raw.length; i += 2) head += `${raw[i]}: ${raw[i + 1]}\r\n`;
    const sink = {
      write(b: Buffer): void {
        const end = b.indexOf(CRLF2);
        const lines = b.subarray(0, end).toString('latin1').split('\r\n');
        const status = Number(lines[0]!.split(' ')[1]);
        const headers: string[] = [];
        for (const line of lines.slice(1)) {
          const c = line.indexOf(':');
          headers.push(line.slice(0, c), line.slice(c + 1).trim());
        }
        res.writeHead(status, headers);
        res.end(b.subarray(end + 4));
      },
    };
    upstreamFor({ client: sink, pending: EMPTY, need: -1 }, Buffer.from(`${head}\r\n`, 'latin1'));
    req.resume();
  });
  server.listen(0, '127.0.0.1', () => listening((server.address() as { port: number }).port));
}

function rawProxy(): void {
  const server = createNetServer({ noDelay: true }, (client) => {
    let pending: Buffer<ArrayBufferLike> = EMPTY;
    client.on('data', (chunk: Buffer) => {
      pending = pending.length > 0 ? Buffer.concat([pending, chunk]) : chunk;
      for (;;) {
        const end = pending.indexOf(CRLF2);
        if (end < 0) return;
        upstreamFor({ client, pending: EMPTY, need: -1 }, pending.subarray(0, end + 4));
        pending = pending.subarray(end + 4);
      }
    });
    client.on('error', () => client.destroy());
  });
  server.listen(0, '127.0.0.1', () => listening((server.address() as { port: number }).port));
}

switch (kind) {
  case 'node-answer': nodeAnswer(); break;
  case 'node-proxy': nodeProxy(); break;
  case 'node-server': nodeServer(); break;
  case 'raw-proxy': rawProxy(); break;
  default:
    process.stderr.write(`unknown server "${kind ?? ''}"\n`);
    process.exit(2);
}
process.on('disconnect', () => process.exit(0));

/**
 * A FastCGI responder on 127.0.0.1 port 0 (node:net, written from the FastCGI 1.0 specification,
 * independently of Sluice's client) for the fastcgi_pass tests: it records each request's
 * FCGI_BEGIN_REQUEST flags, params and stdin, and answers through a handler that may send the
 * CGI head and body in several records, stderr lines, garbage, or nothing at all.
 */
import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { once } from 'node:events';

export interface FcgiRequest {
  /** Which accepted connection carried it (0 for the first). */
  readonly connection: number;
  readonly role: number;
  readonly keepConn: boolean;
  readonly params: Map<string, string>;
  /** The FCGI_STDIN bytes, complete when the handler runs. */
  stdin: Buffer;
  /** The FCGI_STDIN records as they came (content lengths). */
  readonly stdinRecords: number[];
}

export interface FcgiReply {
  /** One FCGI_STDOUT record (split into several when longer than 65535 bytes). */
  stdout(data: string | Buffer): void;
  stderr(text: string): void;
  /** The empty FCGI_STDOUT record, then FCGI_END_REQUEST; closes the connection unless FCGI_KEEP_CONN. */
  end(appStatus?: number): void;
  /** Bytes as they are. */
  raw(data: Buffer | string): void;
  /** Closes the connection (FIN). */
  close(): void;
  readonly socket: Socket;
}

export type FcgiHandler = (req: FcgiRequest, reply: FcgiReply) => void | Promise<void>;

export interface FcgiResponder {
  readonly port: number;
  readonly requests: FcgiRequest[];
  /** Connections accepted so far. */
  connections: number;
  /** Called when a request's params are complete, before its stdin is (streaming checks). */
  onParams: ((req: FcgiRequest) => void) | null;
  close(): Promise<void>;
}

export function record(type: number, content: Buffer | string, requestId = 1): Buffer {
  const body = typeof content === 'string' ? Buffer.from(content, 'latin1') : content;
  const h = Buffer.alloc(8);
  h[0] = 1;
  h[1] = type;
  h.writeUInt16BE(requestId, 2);
  h.writeUInt16BE(body.length, 4);
  return Buffer.concat([h, body]);
}

function readLength(b: Buffer, at: number): [number, number] {
  const first = b[at] as number;
  if (first < 128) return [first, at + 1];
  return [b.readUInt32BE(at) & 0x7fffffff, at + 4];
}

function decodeParams(b: Buffer, into: Map<string, string>): void {
  let at = 0;
  while (at < b.length) {
    const [n, a1] = readLength(b, at);
    const [v, a2] = readLength(b, a1);
    into.set(b.toString('latin1', a2, a2 + n), b.toString('latin1', a2 + n, a2 + n + v));
    at = a2 + n + v;
  }
}

/** The default answer: 200, text/plain, the params SCRIPT_FILENAME, PATH_INFO and the stdin. */
export const echoHandler: FcgiHandler = (req, reply) => {
  reply.stdout('Content-Type: text/plain\r\n\r\n');
  reply.stdout(`script=${req.params.get('SCRIPT_FILENAME') ?? ''}\nstdin=${req.stdin.toString('latin1')}\n`);
  reply.end();
};

/** `path`: listen on that unix socket instead of a loopback port (`port` is then 0). */
export async function startFastcgiResponder(handler: FcgiHandler = echoHandler, options: { path?: string } = {}): Promise<FcgiResponder> {
  const sockets = new Set<Socket>();
  const state: FcgiResponder = {
    port: 0, requests: [], connections: 0, onParams: null,
    close: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
  const server: Server = createServer({ allowHalfOpen: true }, (socket) => {
    const connection = state.connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let pending = Buffer.alloc(0);
    let req: (FcgiRequest & { paramBytes: Buffer[] }) | null = null;
    const reply: FcgiReply = {
      socket,
      stdout: (data) => {
        const b = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
        for (let at = 0; at < b.length; at += 65535) socket.write(record(6, b.subarray(at, at + 65535)));
      },
      stderr: (text) => void socket.write(record(7, text)),
      end: (appStatus = 0) => {
        const body = Buffer.alloc(8);
        body.writeUInt32BE(appStatus, 0);
        socket.write(Buffer.concat([record(6, ''), record(3, body)]));
        if (req !== null && !req.keepConn) socket.end();
      },
      raw: (data) => void socket.write(data),
      close: () => void socket.end(),
    };
    socket.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 8) {
        const type = pending[1] as number;
        const length = pending.readUInt16BE(4);
        const total = 8 + length + (pending[6] as number);
        if (pending.length < total) break;
        const content = pending.subarray(8, 8 + length);
        pending = pending.subarray(total);
        if (type === 1) {
          req = {
            connection, role: content.readUInt16BE(0), keepConn: ((content[2] as number) & 1) === 1,
            params: new Map(), stdin: Buffer.alloc(0), stdinRecords: [], paramBytes: [],
          };
        } else if (type === 4 && req !== null) {
          if (length > 0) req.paramBytes.push(Buffer.from(content));
          else {
            decodeParams(Buffer.concat(req.paramBytes), req.params);
            state.onParams?.(req);
          }
        } else if (type === 5 && req !== null) {
          req.stdinRecords.push(length);
          if (length > 0) req.stdin = Buffer.concat([req.stdin, content]);
          else {
            const done = req;
            state.requests.push(done);
            void Promise.resolve(handler(done, reply)).catch(() => socket.destroy());
          }
        }
      }
    });
  });
  if (options.path !== undefined) server.listen(options.path);
  else server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return Object.assign(state, { port: options.path === undefined ? (server.address() as { port: number }).port : 0 });
}

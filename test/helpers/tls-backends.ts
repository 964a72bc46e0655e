import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { createServer as createNetServer } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { collectEchoReport, distinctHeaders } from '../../src/echo/echo-http.js';
import { acceptEchoUpgrade } from '../../src/echo/echo-websocket.js';
import type { BackendAddress } from './backends.js';
import { DEFAULT_WAIT_MS, withTimeout } from './wait.js';

/** One TLS connection an HTTPS backend accepted: what the handshake said. */
export interface TlsHandshakeRecord {
  /** The SNI name the client sent, or null. */
  readonly servername: string | null;
  /** The ALPN protocol chosen, or null when the client offered none. */
  readonly alpn: string | null;
  readonly protocol: string | null;
  /** The client certificate's subject CN, or null without one. */
  readonly clientCN: string | null;
  readonly clientAuthorized: boolean;
  /** The client resumed an earlier session (a ticket or session id) instead of a full handshake. */
  readonly resumed: boolean;
}

/** One request an HTTPS backend saw. */
export interface TlsRecordedRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: Record<string, string | string[]>;
  readonly upgrade: boolean;
  /** The handshake of the connection it came on. */
  readonly tls: TlsHandshakeRecord;
}

export interface HttpsBackend extends BackendAddress {
  readonly id: string;
  readonly requests: TlsRecordedRequest[];
  /** Every TLS connection accepted, in order. */
  readonly handshakes: TlsHandshakeRecord[];
  readonly server: HttpsServer;
  /** Connections open now. */
  openSockets(): number;
}

export interface HttpsBackendOptions {
  readonly cert: string;
  readonly key: string;
  /** @default `tls-backend-${port}` */
  readonly id?: string;
  /** Ask for a client certificate, verified against `ca` (not required). */
  readonly ca?: string;
  /** Offer these ALPN protocols. @default ['http/1.1'] */
  readonly alpn?: string[];
  readonly maxVersion?: 'TLSv1.2' | 'TLSv1.3';
  /** Wait this long after accepting a connection before reading its ClientHello (a slow handshake). */
  readonly handshakeDelayMs?: number;
  /** Answers requests instead of the echo (the request is recorded first). */
  readonly handler?: (req: IncomingMessage, res: ServerResponse) => void;
}

function handshakeOf(socket: TLSSocket): TlsHandshakeRecord {
  const peer = socket.getPeerCertificate();
  const cn = peer && Object.keys(peer).length > 0 ? String((peer.subject as unknown as Record<string, string>)['CN'] ?? '') : null;
  const sni = (socket as TLSSocket & { servername?: string | false }).servername;
  return {
    servername: typeof sni === 'string' ? sni : null,
    alpn: typeof socket.alpnProtocol === 'string' ? socket.alpnProtocol : null,
    protocol: socket.getProtocol(),
    clientCN: cn,
    clientAuthorized: socket.authorized,
    resumed: socket.isSessionReused(),
  };
}

/**
 * An HTTPS backend on 127.0.0.1, port 0, answering like `sluice echo` (a JSON report of the request;
 * WebSocket upgrades echoed) and recording each TLS handshake: SNI, ALPN, protocol, client certificate.
 */
export async function startHttpsBackend(options: HttpsBackendOptions): Promise<HttpsBackend> {
  const server = createHttpsServer({
    cert: options.cert,
    key: options.key,
    ALPNProtocols: options.alpn ?? ['http/1.1'],
    ...(options.ca === undefined ? {} : { ca: options.ca, requestCert: true, rejectUnauthorized: false }),
    ...(options.maxVersion === undefined ? {} : { maxVersion: options.maxVersion }),
  });
  const sockets = new Set<Socket>();
  const requests: TlsRecordedRequest[] = [];
  const handshakes: TlsHandshakeRecord[] = [];
  const byConnection = new WeakMap<Socket, TlsHandshakeRecord>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('secureConnection', (s: TLSSocket) => {
    const h = handshakeOf(s);
    handshakes.push(h);
    byConnection.set(s, h);
  });
  server.on('tlsClientError', () => undefined);
  // With a handshake delay a plain listener takes the connections and hands each to the https
  // server late; the https server itself then never listens.
  const delay = options.handshakeDelayMs;
  const front = delay === undefined ? server : createNetServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    const timer = setTimeout(() => server.emit('connection', s), delay);
    s.once('close', () => clearTimeout(timer));
  });
  const port = await new Promise<number>((resolve, reject) => {
    front.once('error', reject);
    front.listen(0, '127.0.0.1', () => resolve((front.address() as AddressInfo).port));
  });
  const id = options.id ?? `tls-backend-${port}`;
  const record = (req: IncomingMessage, upgrade: boolean): void => {
    requests.push({
      method: req.method ?? '', url: req.url ?? '', headers: distinctHeaders(req), upgrade,
      tls: byConnection.get(req.socket) ?? handshakeOf(req.socket as TLSSocket),
    });
  };
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    record(req, false);
    if (options.handler !== undefined) {
      options.handler(req, res);
      return;
    }
    collectEchoReport(id, req, (report) => {
      const json = JSON.stringify(report);
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(json), 'X-Echo-Id': id });
      res.end(json);
    });
  });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    record(req, true);
    acceptEchoUpgrade(req, socket, head, { id });
  });
  let closing: Promise<void> | null = null;
  return {
    id, host: '127.0.0.1', port, addr: `127.0.0.1:${port}`, requests, handshakes, server,
    openSockets: () => sockets.size,
    close() {
      closing ??= (async () => {
        const stopped = new Promise<void>((resolve) => front.close(() => resolve()));
        for (const s of sockets) s.destroy();
        await withTimeout(stopped, DEFAULT_WAIT_MS, 'the https backend to stop');
      })();
      return closing;
    },
  };
}

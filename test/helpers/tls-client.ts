import { connect as tlsConnectRaw, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { recorderFor } from './byte-recorder.js';
import { completeResponse, waitForBytes, type ResponseHead } from './raw-client.js';
import { DEFAULT_WAIT_MS, withTimeout } from './wait.js';

/** Options for {@link tlsConnect}: Node's TLS client options, plus a bound on the handshake. */
export interface TlsConnectOptions extends Omit<ConnectionOptions, 'port' | 'host'> {
  /** @default '127.0.0.1' */
  host?: string;
  /** @default DEFAULT_WAIT_MS (5000) */
  timeoutMs?: number;
}

/**
 * A TLS connection with a recorder attached before the handshake (so the raw-client helpers —
 * `readUntil`, `readFrame`, `waitForClose` — work on it as on a TCP socket). Resolves after the
 * handshake; rejects if it fails or takes longer than `timeoutMs`. The caller destroys the socket.
 * Certificates are verified only when `ca` is given (`rejectUnauthorized` follows it).
 */
export async function tlsConnect(port: number, options: TlsConnectOptions = {}): Promise<TLSSocket> {
  const { host = '127.0.0.1', timeoutMs = DEFAULT_WAIT_MS, ...rest } = options;
  const socket = tlsConnectRaw({ port, host, rejectUnauthorized: rest.ca !== undefined, ...rest });
  recorderFor(socket);
  const secure = new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', resolve);
    socket.once('error', reject);
    socket.once('close', () => reject(new Error('the connection closed during the TLS handshake')));
  });
  try {
    await withTimeout(secure, timeoutMs, `a TLS handshake with port ${port}`);
  } catch (error) {
    socket.destroy();
    throw error;
  }
  return socket;
}

/** A complete HTTP/1.1 response read from a TLS socket. */
export interface TlsResponse {
  readonly head: ResponseHead;
  readonly body: Buffer;
  readonly text: string;
  readonly socket: TLSSocket;
  /** The server certificate's subject CN, read right after the handshake. */
  readonly peerCN: string;
}

/**
 * Connects with TLS, sends `GET path` (Host `host`, `Connection: close` unless told otherwise)
 * and reads one complete response. The socket is destroyed afterwards unless `keep` is set.
 */
export async function tlsGet(
  port: number, path: string,
  options: TlsConnectOptions & { hostHeader?: string; headers?: readonly (readonly [string, string])[]; keep?: boolean } = {},
): Promise<TlsResponse> {
  const { hostHeader, headers = [], keep = false, ...connectOptions } = options;
  const socket = await tlsConnect(port, connectOptions);
  const peerCN = String((socket.getPeerCertificate().subject as unknown as Record<string, string> | undefined)?.['CN'] ?? '');
  try {
    let request = `GET ${path} HTTP/1.1\r\nHost: ${hostHeader ?? options.servername ?? '127.0.0.1'}\r\n`;
    for (const [k, v] of headers) request += `${k}: ${v}\r\n`;
    if (!keep) request += 'Connection: close\r\n';
    socket.write(`${request}\r\n`);
    const bytes = await waitForBytes(socket, (b) => completeResponse(b) !== null, options.timeoutMs ?? DEFAULT_WAIT_MS);
    const r = completeResponse(bytes)!;
    recorderFor(socket).consume(r.length);
    return { head: r.head, body: r.body, text: r.body.toString('utf8'), socket, peerCN };
  } finally {
    if (!keep) socket.destroy();
  }
}

/** What {@link tlsResumeGet} saw. */
export interface ResumeAnswer {
  /** The response body. */
  readonly text: string;
  /** Whether the handshake resumed the offered session. */
  readonly reused: boolean;
  /** The last session the server gave (a ticket or a session id), to offer next time; null if none. */
  readonly session: Buffer | null;
  readonly protocol: string | null;
  /** The server certificate's subject CN. */
  readonly peerCN: string;
}

/**
 * One `GET path` with `Connection: close` over a new TLS connection that offers the session
 * `resume` (from an earlier answer), read to the end: by then the server has sent every TLS 1.3
 * ticket it sends.
 */
export async function tlsResumeGet(
  port: number, path: string, options: Omit<TlsConnectOptions, 'session'> & { resume?: Buffer | null; hostHeader?: string } = {},
): Promise<ResumeAnswer> {
  const { resume, hostHeader, host = '127.0.0.1', timeoutMs = DEFAULT_WAIT_MS, ...rest } = options;
  const socket = tlsConnectRaw({ port, host, rejectUnauthorized: rest.ca !== undefined, ...rest, ...(resume ? { session: resume } : {}) });
  let last: Buffer | null = null;
  let body = '';
  socket.on('session', (s: Buffer) => void (last = s));
  socket.setEncoding('utf8').on('data', (d: string) => void (body += d));
  const done = new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', () => socket.write(`GET ${path} HTTP/1.1\r\nHost: ${hostHeader ?? options.servername ?? host}\r\nConnection: close\r\n\r\n`));
    socket.once('end', resolve);
    socket.once('error', reject);
  });
  try {
    await withTimeout(done, timeoutMs, `a TLS request to port ${port}`);
    const peerCN = String((socket.getPeerCertificate().subject as unknown as Record<string, string> | undefined)?.['CN'] ?? '');
    const split = body.indexOf('\r\n\r\n');
    return { text: split === -1 ? body : body.slice(split + 4), reused: socket.isSessionReused(), session: last, protocol: socket.getProtocol(), peerCN };
  } finally {
    socket.destroy();
  }
}

/** The OCSP response a TLS client that asks for the certificate status gets stapled (null: none). */
export async function tlsStaple(port: number, options: TlsConnectOptions = {}): Promise<Buffer | null> {
  const { host = '127.0.0.1', timeoutMs = DEFAULT_WAIT_MS, ...rest } = options;
  // Node.js takes requestOCSP in the client options, though @types/node leaves it out of them.
  const socket = tlsConnectRaw({ port, host, rejectUnauthorized: false, ...rest, requestOCSP: true } as ConnectionOptions);
  let response: Buffer | null = null;
  socket.on('OCSPResponse', (r: Buffer | undefined) => void (response = r ?? null));
  try {
    await withTimeout(new Promise<void>((resolve, reject) => {
      socket.once('secureConnect', resolve);
      socket.once('error', reject);
    }), timeoutMs, `a TLS handshake with port ${port}`);
    return response;
  } finally {
    socket.destroy();
  }
}

import { connect, constants, type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import type { TLSSocket } from 'node:tls';
import { DEFAULT_WAIT_MS, once, withTimeout } from './wait.js';

/** An HTTP/2 client session to the proxy over TLS, see {@link h2Connect}. */
export interface H2Client {
  readonly session: ClientHttp2Session;
  /** The settings the server sent (enableConnectProtocol among them). */
  readonly remoteSettings: Record<string, unknown>;
  /** The TLS socket under the session (ALPN, certificate). */
  readonly socket: TLSSocket;
  close(): void;
}

export interface H2ConnectOptions {
  /** @default 'localhost' */
  servername?: string;
  /** CA to verify the proxy with; without it the certificate is not checked. */
  ca?: string;
  timeoutMs?: number;
}

/**
 * Opens an HTTP/2 session to 127.0.0.1:`port` (TLS, ALPN h2) and waits for the server's SETTINGS.
 * Rejects when ALPN does not pick h2 or after `timeoutMs`. `close()` is idempotent.
 */
export async function h2Connect(port: number, options: H2ConnectOptions = {}): Promise<H2Client> {
  const servername = options.servername ?? 'localhost';
  const session = connect(`https://${servername}:${port}`, {
    host: '127.0.0.1',
    servername,
    ...(options.ca === undefined ? { rejectUnauthorized: false } : { ca: options.ca }),
  });
  session.on('error', () => undefined);
  try {
    const [settings] = await withTimeout(
      new Promise<unknown[]>((resolve, reject) => {
        session.once('remoteSettings', (s) => resolve([s]));
        session.once('error', reject);
        session.once('close', () => reject(new Error('the session closed before the server SETTINGS')));
      }),
      options.timeoutMs ?? DEFAULT_WAIT_MS, `HTTP/2 SETTINGS from port ${port}`,
    );
    return {
      session,
      remoteSettings: settings as Record<string, unknown>,
      socket: session.socket as TLSSocket,
      close: () => {
        if (!session.destroyed) session.destroy();
      },
    };
  } catch (error) {
    session.destroy();
    throw error;
  }
}

/** A complete response on one stream. */
export interface H2Response {
  readonly headers: IncomingHttpHeaders;
  readonly status: number;
  readonly body: Buffer;
  readonly text: string;
}

/** Sends one request (with an optional body, sent in `chunks` writes) and reads the whole response. */
export async function h2Request(
  client: H2Client, headers: OutgoingHttpHeaders, body?: Buffer | string | readonly (Buffer | string)[], timeoutMs = DEFAULT_WAIT_MS,
): Promise<H2Response> {
  const stream = client.session.request(headers, { endStream: body === undefined });
  stream.on('error', () => undefined);
  if (body !== undefined) {
    for (const part of Array.isArray(body) ? body : [body]) stream.write(part);
    stream.end();
  }
  const [responseHeaders] = await once(stream, 'response', timeoutMs) as [IncomingHttpHeaders];
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  await withTimeout(new Promise<void>((resolve, reject) => {
    stream.once('end', resolve);
    stream.once('close', () => (stream.rstCode === constants.NGHTTP2_NO_ERROR ? resolve() : reject(new Error(`stream reset (${stream.rstCode})`))));
  }), timeoutMs, 'the end of the response');
  const b = Buffer.concat(chunks);
  return { headers: responseHeaders, status: Number(responseHeaders[':status']), body: b, text: b.toString('utf8') };
}

/** Opens an RFC 8441 WebSocket stream: extended CONNECT with `:protocol websocket`. Resolves with the stream and the response headers. */
export async function h2WebSocket(
  client: H2Client, path: string, extra: OutgoingHttpHeaders = {}, timeoutMs = DEFAULT_WAIT_MS,
): Promise<{ stream: ClientHttp2Stream; headers: IncomingHttpHeaders }> {
  const authority = `${(client.session as unknown as { originSet?: string[] }).originSet?.[0]?.replace(/^https:\/\//, '') ?? 'localhost'}`;
  const stream = client.session.request({
    ':method': 'CONNECT', ':protocol': 'websocket', ':scheme': 'https', ':path': path, ':authority': authority,
    'sec-websocket-version': '13', ...extra,
  });
  stream.on('error', () => undefined);
  const [headers] = await once(stream, 'response', timeoutMs) as [IncomingHttpHeaders];
  return { stream, headers };
}

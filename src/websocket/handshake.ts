import { acceptKey, isValidKey } from './accept-key.js';

/** The only protocol version RFC 6455 defines. */
export const WEBSOCKET_VERSION = '13';

/**
 * Header values as Node gives them: `req.headers` (duplicates joined by ", ") or
 * `req.headersDistinct` (one array entry per line). Names must be lower-case.
 */
export type HeaderBag = Readonly<Record<string, string | readonly string[] | undefined>>;

function lines(value: string | readonly string[] | undefined): readonly string[] {
  if (value === undefined) return [];
  return typeof value === 'string' ? [value] : value;
}

/**
 * The comma-separated tokens of a header, across repeated lines, trimmed, empties dropped
 * (RFC 9110 section 5.6.1). Case is kept.
 */
export function headerTokens(value: string | readonly string[] | undefined): string[] {
  const tokens: string[] = [];
  for (const line of lines(value)) {
    for (const part of line.split(',')) {
      const token = part.trim();
      if (token !== '') tokens.push(token);
    }
  }
  return tokens;
}

/**
 * Whether a header lists `token`, compared case-insensitively as a whole list element:
 * `Connection: keep-alive, Upgrade` has `upgrade`; `Connection: not-upgrade` does not.
 */
export function hasToken(value: string | readonly string[] | undefined, token: string): boolean {
  const wanted = token.toLowerCase();
  return headerTokens(value).some((t) => t.toLowerCase() === wanted);
}

/** Outcome of {@link checkClientHandshake}. */
export type ClientHandshakeCheck =
  | {
    readonly ok: true;
    readonly key: string;
    /** Offered subprotocols in the client's order (`Sec-WebSocket-Protocol`). */
    readonly protocols: readonly string[];
    /** Offered extensions, raw (`Sec-WebSocket-Extensions` tokens). */
    readonly extensions: readonly string[];
  }
  | {
    readonly ok: false;
    readonly statusCode: 400;
    /** Short text for the response body. */
    readonly reason: string;
    /** Headers the refusal should carry (`Sec-WebSocket-Version: 13` when the version was wrong). */
    readonly headers: readonly (readonly [string, string])[];
  };

/**
 * Validates a client's opening handshake as a server must (RFC 6455 section 4.2.1): GET, an
 * `Upgrade` listing `websocket`, a `Connection` listing `upgrade`, one well-formed
 * `Sec-WebSocket-Key` and `Sec-WebSocket-Version: 13`. A version mismatch names the supported
 * version in the refusal (section 4.4).
 */
export function checkClientHandshake(method: string | undefined, headers: HeaderBag): ClientHandshakeCheck {
  const refuse = (reason: string, extra: readonly (readonly [string, string])[] = []): ClientHandshakeCheck =>
    ({ ok: false, statusCode: 400, reason, headers: extra });
  if (method !== 'GET') return refuse(`a WebSocket handshake must use GET, not ${method ?? 'no method'}`);
  if (!hasToken(headers['upgrade'], 'websocket')) return refuse('Upgrade header must name websocket');
  if (!hasToken(headers['connection'], 'upgrade')) return refuse('Connection header must list upgrade');
  const keys = lines(headers['sec-websocket-key']);
  if (keys.length !== 1 || !isValidKey(keys[0]!)) {
    return refuse('Sec-WebSocket-Key must be one base64-encoded 16-byte value');
  }
  const versions = lines(headers['sec-websocket-version']);
  if (versions.length !== 1 || versions[0]!.trim() !== WEBSOCKET_VERSION) {
    return refuse('Sec-WebSocket-Version must be 13', [['Sec-WebSocket-Version', WEBSOCKET_VERSION]]);
  }
  return {
    ok: true,
    key: keys[0]!,
    protocols: headerTokens(headers['sec-websocket-protocol']),
    extensions: headerTokens(headers['sec-websocket-extensions']),
  };
}

/** Options for {@link serverHandshakeResponse}. */
export interface ServerHandshakeOptions {
  /** The chosen subprotocol; omitted when null/undefined. */
  protocol?: string | null;
  /** More header lines, written in order after the WebSocket ones. */
  extraHeaders?: readonly (readonly [string, string])[];
}

/** The exact text of a 101 response accepting `key` (RFC 6455 section 4.2.2), ending in CRLF CRLF. */
export function serverHandshakeResponse(key: string, options: ServerHandshakeOptions = {}): string {
  let head = 'HTTP/1.1 101 Switching Protocols\r\n' +
    'Upgrade: websocket\r\n' +
    'Connection: Upgrade\r\n' +
    `Sec-WebSocket-Accept: ${acceptKey(key)}\r\n`;
  if (options.protocol !== undefined && options.protocol !== null) head += `Sec-WebSocket-Protocol: ${options.protocol}\r\n`;
  for (const [name, value] of options.extraHeaders ?? []) head += `${name}: ${value}\r\n`;
  return head + '\r\n';
}

/** Outcome of {@link checkServerHandshake}. */
export type ServerHandshakeCheck =
  | { readonly ok: true; readonly protocol: string | null }
  | { readonly ok: false; readonly reason: string };

/**
 * Validates a server's answer to our handshake as a client must (RFC 6455 section 4.1): status
 * 101, `Upgrade: websocket`, `Connection: upgrade`, the right `Sec-WebSocket-Accept`, a subprotocol
 * only if one of ours, and no extension we did not offer (we offer none).
 */
export function checkServerHandshake(
  key: string,
  statusCode: number | undefined,
  headers: HeaderBag,
  offeredProtocols: readonly string[] = [],
): ServerHandshakeCheck {
  if (statusCode !== 101) return { ok: false, reason: `expected status 101, got ${statusCode ?? 'none'}` };
  if (!hasToken(headers['upgrade'], 'websocket')) return { ok: false, reason: '101 without Upgrade: websocket' };
  if (!hasToken(headers['connection'], 'upgrade')) return { ok: false, reason: '101 without Connection: upgrade' };
  const accepts = lines(headers['sec-websocket-accept']);
  if (accepts.length !== 1 || accepts[0]!.trim() !== acceptKey(key)) {
    return { ok: false, reason: 'missing or wrong Sec-WebSocket-Accept' };
  }
  if (headerTokens(headers['sec-websocket-extensions']).length > 0) {
    return { ok: false, reason: 'server chose an extension that was not offered' };
  }
  const chosen = headerTokens(headers['sec-websocket-protocol']);
  if (chosen.length === 0) return { ok: true, protocol: null };
  if (chosen.length > 1 || !offeredProtocols.includes(chosen[0]!)) {
    return { ok: false, reason: `server chose subprotocol ${chosen.join(', ')} that was not offered` };
  }
  return { ok: true, protocol: chosen[0]! };
}

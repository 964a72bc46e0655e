/**
 * nginx's checks of an HTTP/1 request head that Node's parser (llhttp) lets through or answers
 * otherwise (ngx_http_parse_request_line, ngx_http_process_request_headers and
 * ngx_http_process_request_header in nginx 1.22): a refusal names the status and nginx's info
 * line, and the connection closes after it, as nginx has not turned keep-alive on yet when it
 * refuses a head. Checked against nginx 1.22 (test/integration/request-head.test.ts).
 */
import type { Socket } from 'node:net';
import { ERROR_CATALOG } from '../../core/errors.js';
import type { ErrorCode } from '../../core/errors.js';

/** Why a request head is refused: the catalog code, its status, and nginx's error-log wording (logged at info). */
export interface HeadRefusal {
  readonly code: ErrorCode;
  readonly status: number;
  readonly log: string;
}

function refusal(code: ErrorCode, log: string = ERROR_CATALOG[code].text): HeadRefusal {
  return { code, status: ERROR_CATALOG[code].status, log };
}

const WHILE_LINE = ' while reading client request line';
const WHILE_HEADERS = ' while reading client request headers';

/**
 * Headers nginx takes once (ngx_http_process_unique_header_line and ngx_http_process_host), each
 * with its bit: a second line is a 400, whatever its value. Content-Length and Transfer-Encoding
 * are refused twice by llhttp before a request reaches Sluice.
 */
const UNIQUE_HEADERS: ReadonlyMap<string, number> = new Map([
  'host', 'content-length', 'transfer-encoding', 'authorization', 'if-modified-since', 'if-unmodified-since',
  'if-match', 'if-none-match', 'if-range', 'content-range', 'expect',
].map((name, i) => [name, 1 << i]));
const TRANSFER_ENCODING_BIT = UNIQUE_HEADERS.get('transfer-encoding') as number;

/** The lengths of those names as bits: most header names are ruled out without lower-casing them. */
const UNIQUE_LENGTHS = [...UNIQUE_HEADERS.keys()].reduce((bits, name) => bits | (1 << name.length), 0);

/** An absolute-form target whose authority carries userinfo (`http://user:pw@host/`). */
const USERINFO = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*@/i;

/** What the checks read of a request (Node's IncomingMessage has all of it). */
export interface RequestHead {
  readonly url?: string | undefined;
  readonly httpVersionMajor: number;
  readonly httpVersionMinor: number;
  readonly rawHeaders: readonly string[];
}

/**
 * The refusal nginx would give this head, or null. In nginx's order: the request line (version,
 * then the target), a repeated unique header, then Transfer-Encoding (RFC 9112 6.1: never on
 * HTTP/1.0; nginx decodes only a lone `chunked`).
 */
/** nginx prints at most this much of a header line it refuses as too long (NGX_MAX_ERROR_STR - 300). */
const LONG_LINE_SHOWN = 1748;

/**
 * large_client_header_buffers' SIZE: nginx keeps each line of a head in one buffer, so a request
 * line (with its CRLF) longer than SIZE gets 414 and a header line longer than it 400 "Request
 * Header Or Cookie Too Large" (its internal 494). The whole head is bounded by Node's parser
 * (maxHeaderSize, set to NUMBER x SIZE by the proxy server).
 */
export function headSizeRefusal(req: RequestHead & { readonly method?: string | undefined }, lineLimit: number): HeadRefusal | null {
  const url = req.url ?? '';
  if ((req.method ?? '').length + url.length + 12 > lineLimit) return refusal('CLIENT_URI_TOO_LONG');
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    const value = raw[i + 1] as string;
    if (name.length + value.length + 4 <= lineLimit) continue;
    const line = `${name}: ${value}`;
    return refusal('CLIENT_HEADER_TOO_LARGE', `client sent too long header line: "${line.slice(0, LONG_LINE_SHOWN)}..."${WHILE_HEADERS}`);
  }
  return null;
}

export function headRefusal(req: RequestHead): HeadRefusal | null {
  // "HTTP/2.0" on an HTTP/1 connection (llhttp accepts it); nginx reads 1.x with any minor
  // version as 1.1 and refuses a higher major one. "HTTP/0.9" is no version nginx knows.
  if (req.httpVersionMajor > 1) return refusal('CLIENT_HTTP_VERSION');
  if (req.httpVersionMajor === 0) return refusal('CLIENT_BAD_REQUEST', `client sent invalid request${WHILE_LINE}`);
  const url = req.url ?? '';
  // nginx's request-line parser has no userinfo state: "@" in the authority is an invalid request.
  // Routing by it would pick `server_name user` for http://user:pw@internal.example/.
  if (url.charCodeAt(0) !== 0x2f && USERINFO.test(url)) return refusal('CLIENT_BAD_REQUEST', `client sent invalid request${WHILE_LINE}`);
  const raw = req.rawHeaders;
  let te: string | null = null;
  let seen = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (name.length > 30 || ((UNIQUE_LENGTHS >>> name.length) & 1) === 0) continue;
    const lower = name.toLowerCase();
    const bit = UNIQUE_HEADERS.get(lower);
    if (bit === undefined) continue;
    if ((seen & bit) !== 0) {
      const p = indexOfName(raw, lower);
      const previous = `${raw[p] as string}: ${raw[p + 1] as string}`;
      const what = lower === 'host' ? 'duplicate host header' : 'duplicate header line';
      return refusal('CLIENT_BAD_REQUEST', `client sent ${what}: "${name}: ${raw[i + 1] as string}", previous value: "${previous}"${WHILE_HEADERS}`);
    }
    seen |= bit;
    if (bit === TRANSFER_ENCODING_BIT) te = raw[i + 1] as string;
  }
  if (te !== null) {
    if (req.httpVersionMinor === 0) return refusal('CLIENT_BAD_REQUEST', `client sent HTTP/1.0 request with "Transfer-Encoding" header${WHILE_HEADERS}`);
    if (te.length !== 7 || te.toLowerCase() !== 'chunked') return refusal('CLIENT_UNKNOWN_TRANSFER_ENCODING', `client sent unknown "Transfer-Encoding": "${te}"${WHILE_HEADERS}`);
  }
  return null;
}

/** Index of the first header line named `lower` (case-insensitive). */
function indexOfName(raw: readonly string[], lower: string): number {
  for (let i = 0; i < raw.length; i += 2) if ((raw[i] as string).toLowerCase() === lower) return i;
  return -1;
}

/** The request line and header lines of a raw head, as far as they arrived. */
function headLines(packet: Buffer | undefined): string[] {
  if (packet === undefined) return [];
  const text = packet.toString('latin1');
  const end = /\r?\n\r?\n/.exec(text)?.index ?? -1;
  return (end === -1 ? text : text.slice(0, end)).split(/\r?\n/);
}

/** "Name: value" with the whitespace around the value dropped, as nginx prints a header line. */
function headerLine(line: string): string {
  const colon = line.indexOf(':');
  return `${line.slice(0, colon).trimEnd()}: ${line.slice(colon + 1).trim()}`;
}

/**
 * The status for a head llhttp refused, where nginx answers otherwise than 400: a version above
 * HTTP/1 gets 505, a Transfer-Encoding other than a lone `chunked` 501 (a repeated one, or one on
 * HTTP/1.0, stays 400). Reads the bytes llhttp was parsing (`rawPacket`); null when it has
 * nothing to add.
 */
export function parseErrorRefusal(err: NodeJS.ErrnoException & { rawPacket?: Buffer }): HeadRefusal | null {
  if (err.code === 'HPE_INVALID_VERSION') {
    const line = headLines(err.rawPacket)[0] ?? '';
    const m = / HTTP\/(\d+)(?:\.\d+)?$/.exec(line);
    if (m !== null && Number(m[1]) > 1) return refusal('CLIENT_HTTP_VERSION');
    return null;
  }
  if (err.code === 'HPE_HEADER_OVERFLOW') {
    // The head outgrew large_client_header_buffers as a whole: a request line that never ended
    // is a too long URI (414), else the headers are too large (494, sent as 400).
    const text = err.rawPacket?.toString('latin1') ?? '';
    return text.includes('\n') ? refusal('CLIENT_HEADER_TOO_LARGE', `client sent too large request${WHILE_HEADERS}`) : refusal('CLIENT_URI_TOO_LONG');
  }
  if (err.code === 'HPE_INVALID_TRANSFER_ENCODING') {
    const lines = headLines(err.rawPacket);
    if (/ HTTP\/1\.0$/.test(lines[0] ?? '')) return refusal('CLIENT_BAD_REQUEST', `client sent HTTP/1.0 request with "Transfer-Encoding" header${WHILE_HEADERS}`);
    const te = lines.filter((l) => /^transfer-encoding\s*:/i.test(l)).map(headerLine);
    if (te.length > 1) return refusal('CLIENT_BAD_REQUEST', `client sent duplicate header line: "${te[1] as string}", previous value: "${te[0] as string}"${WHILE_HEADERS}`);
    if (te.length === 0) return null;
    const value = (te[0] as string).slice((te[0] as string).indexOf(':') + 2);
    // llhttp refuses Content-Length before a chunked Transfer-Encoding here (after it, elsewhere):
    // nginx's 400 either way (ngx_http_process_request_header).
    if (value.toLowerCase() === 'chunked' && lines.some((l) => /^content-length\s*:/i.test(l))) {
      return refusal('CLIENT_BAD_REQUEST', `client sent "Content-Length" and "Transfer-Encoding" headers at the same time${WHILE_HEADERS}`);
    }
    return refusal('CLIENT_UNKNOWN_TRANSFER_ENCODING', `client sent unknown "Transfer-Encoding": "${value}"${WHILE_HEADERS}`);
  }
  return null;
}

/**
 * Connections whose last answered request ends them: requests pipelined behind it are never
 * handled (nginx reads nothing more from such a connection; Node's parser would go on and hand
 * them over, and they would reach an upstream while the client never sees their answer).
 */
const closing = new WeakSet<Socket>();

/** The response being sent ends this connection: ignore whatever the client pipelined after it. */
export function markClosing(socket: Socket): void {
  closing.add(socket);
}

export function isClosing(socket: Socket): boolean {
  return closing.has(socket);
}

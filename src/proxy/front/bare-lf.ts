/**
 * nginx accepts a bare LF as the end of every line of an HTTP/1.x head and of chunked framing
 * (ngx_http_parse_request_line, ngx_http_parse_header_line, ngx_http_parse_chunked: `case LF:`
 * beside `case CR:`), and nginx's own test suite (Test::Nginx) and many of its backends write
 * them. llhttp, Node's parser, refuses them unless told otherwise, and Node's only switch,
 * `insecureHTTPParser`, turns on every leniency at once (CL with TE, spaces in chunk sizes, data
 * after close, keep-alive on close...). These are the two llhttp flags, and only these, that
 * accept LF alone:
 *
 * - `kLenientOptionalCRBeforeLF`: LF without CR ends a header line;
 * - `kLenientOptionalLFAfterCR`: in llhttp 9 the same acceptance for the request/status line and
 *   the chunk-size and chunk-data line ends (llhttp ties those to this flag).
 *
 * What stays refused (test/integration/bare-lf.test.ts): Content-Length with Transfer-Encoding,
 * two Content-Lengths, obs-fold, NUL and a bare CR inside a header line, invalid chunk sizes,
 * chunk data without its line end. The one thing the second flag admits beyond nginx is a bare
 * CR standing for the line end after the request line or a chunk size (nginx: 400); it cannot
 * smuggle a request, because Sluice never forwards the client's head or framing: the upstream
 * gets a head Sluice writes (CRLF) and a body it frames again (Content-Length or its own chunks).
 */
import { createRequire } from 'node:module';
import type { Server } from 'node:http';
import type { Socket } from 'node:net';

interface LenientParser {
  initialize(type: number, resource: object, maxHeaderSize: number, lenient: number, connections?: object): void;
}

interface ParserFlags {
  readonly REQUEST: number;
  readonly RESPONSE: number;
  readonly kLenientOptionalCRBeforeLF?: number;
  readonly kLenientOptionalLFAfterCR?: number;
}

const parserClass = loadParserClass();

/** The llhttp leniency flags for bare-LF line ends (0 where this Node has no such flags). */
export const BARE_LF_FLAGS: number =
  (parserClass?.kLenientOptionalCRBeforeLF ?? 0) | (parserClass?.kLenientOptionalLFAfterCR ?? 0);

function loadParserClass(): ParserFlags | null {
  try {
    const common = createRequire(import.meta.url)('_http_common') as { HTTPParser?: ParserFlags };
    return common.HTTPParser ?? null;
  } catch {
    return null;
  }
}

/**
 * After Node's own 'connection' listener gave the socket its request parser (initialized with no
 * leniency), initializes it again with the bare-LF flags; nothing was parsed yet (the listener runs
 * synchronously on accept). Where this Node lacks the shape (no parser, no flags), requests with
 * bare LF keep getting 400, as before.
 */
export function acceptBareLf(server: Server, socket: Socket): void {
  const parser = (socket as Socket & { parser?: Partial<LenientParser> | null }).parser;
  if (parserClass === null || BARE_LF_FLAGS === 0 || typeof parser?.initialize !== 'function') return;
  parser.initialize(
    parserClass.REQUEST,
    { type: 'HTTPINCOMINGMESSAGE', socket },
    (server as Server & { maxHeaderSize?: number }).maxHeaderSize ?? 0,
    BARE_LF_FLAGS,
    connectionsOf(server),
  );
}

let connectionsKey: symbol | null = null;

/**
 * Node's list of the server's connections (client_header_timeout is checked on it), as Node's own
 * initialize passed it; a server that never listened itself (the TLS front end's) has none.
 */
function connectionsOf(server: Server): object | undefined {
  if (connectionsKey === null) {
    connectionsKey = Object.getOwnPropertySymbols(server).find((s) => s.description === 'http.server.connections') ?? null;
    if (connectionsKey === null) return undefined;
  }
  const list = (server as unknown as Record<symbol, unknown>)[connectionsKey];
  return typeof list === 'object' && list !== null ? list : undefined;
}

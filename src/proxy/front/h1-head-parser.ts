/**
 * The lean HTTP/1.1 front end's request-head parser: llhttp, Node's own parser, through
 * `_http_common`'s HTTPParser (REQUEST type), as the lean upstream client parses responses
 * (client/lean-client.ts). It reads the bytes at a request boundary of a connection and gives a
 * complete request head (the fields of IncomingMessage the front ends read, without the stream),
 * with what llhttp says of it: an upgrade Node's server would hand to its `'upgrade'` listener,
 * and whether the connection may stay open after it. Anything else (a parse error, a head not yet
 * complete, CONNECT) is null, and the connection goes to Node's server with its bytes untouched
 * (server/lean-front.ts): same parser, same flags, same limits, so every head Node refuses is
 * still refused by Node, with the same status.
 */
import { createRequire } from 'node:module';
import { IncomingMessage } from 'node:http';
import type { IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import { BARE_LF_FLAGS } from './bare-lf.js';

/** What the upgrade front end reads of a request (Node's IncomingMessage has all of it). */
export interface UpgradeRequest {
  readonly method?: string | undefined;
  readonly url?: string | undefined;
  readonly httpVersion: string;
  readonly httpVersionMajor: number;
  readonly httpVersionMinor: number;
  readonly headers: IncomingHttpHeaders;
  readonly rawHeaders: string[];
  readonly socket: Socket;
}

/** A request head read by the lean front end: an {@link UpgradeRequest} and the head's length in bytes. */
export interface LeanHead extends UpgradeRequest {
  readonly headLength: number;
  /** llhttp's upgrade flag: Node's server would give this request to its `'upgrade'` listener. */
  readonly upgrade: boolean;
  /** llhttp's keep-alive verdict (HTTP/1.1 without `Connection: close`, HTTP/1.0 with `keep-alive`), as Node's server starts a response with. */
  readonly keepAlive: boolean;
  /** A request that has all of its bytes: no body, or one read already (IncomingMessage's field). */
  readonly complete: boolean;
}

interface RequestParser {
  initialize(type: number, resource: object, maxHeaderSize: number, lenient: number): void;
  execute(data: Buffer): number | Error;
  [key: number]: unknown;
}

interface RequestParserClass {
  new (): RequestParser;
  readonly REQUEST: number;
  readonly kOnHeaders: number;
  readonly kOnHeadersComplete: number;
  readonly kOnBody: number;
  readonly kOnMessageComplete: number;
}

type AddHeaderLine = (this: object, field: string, value: string, dest: IncomingHttpHeaders) => void;

/** Node's server keeps at most this many header lines (`maxHeadersCount`, default 2000); so do we. */
const MAX_HEADER_PAIRS = 2000;

const HEADER_RULES = { joinDuplicateHeaders: false };

/** Where the parser's callbacks leave what they read; one parse at a time (execute is synchronous). */
const state = {
  complete: false,
  upgrade: false,
  keepAlive: false,
  major: 0,
  minor: 0,
  method: '',
  url: '',
  headers: [] as string[],
};

let methods: readonly string[] = [];
let addHeaderLine: AddHeaderLine | null = null;
let P: RequestParserClass | null = null;
let parser: RequestParser | null = null;

/** Every internal piece is checked once at load; without one of them the lean front end is off. */
function load(): boolean {
  let common: { HTTPParser?: Partial<RequestParserClass>; methods?: unknown } | null;
  try {
    common = createRequire(import.meta.url)('_http_common') as { HTTPParser?: Partial<RequestParserClass>; methods?: unknown } | null;
  } catch {
    return false;
  }
  const C = common?.HTTPParser;
  const add = (IncomingMessage.prototype as unknown as { _addHeaderLine?: unknown })._addHeaderLine;
  if (typeof C !== 'function' || typeof add !== 'function' || !Array.isArray(common?.methods)) return false;
  for (const k of ['REQUEST', 'kOnHeaders', 'kOnHeadersComplete', 'kOnBody', 'kOnMessageComplete'] as const) {
    if (typeof C[k] !== 'number') return false;
  }
  const proto = (C as { prototype?: Record<string, unknown> }).prototype ?? {};
  if (typeof proto['initialize'] !== 'function' || typeof proto['execute'] !== 'function') return false;
  P = C as RequestParserClass;
  methods = common?.methods as string[];
  addHeaderLine = add as AddHeaderLine;
  return true;
}

/** Whether this Node has what the lean front end parses with. */
export const LEAN_PARSER_AVAILABLE: boolean = load();

function parserOnHeaders(headers: string[], url: string): void {
  for (const h of headers) state.headers.push(h);
  if (url) state.url += url;
}

function parserOnHeadersComplete(
  major: number, minor: number, headers: string[] | undefined, method: number, url: string | undefined,
  _status: number, _message: string, upgrade: boolean, keepAlive: boolean,
): number {
  state.complete = true;
  state.upgrade = upgrade;
  state.keepAlive = keepAlive;
  state.major = major;
  state.minor = minor;
  state.method = methods[method] ?? '';
  if (url) state.url += url;
  if (headers !== undefined) {
    if (state.headers.length === 0) state.headers = headers;
    else for (const h of headers) state.headers.push(h);
  }
  // 2: stop after the head (llhttp's upgrade): the execute returns the head's length; a body,
  // if any, is read by whoever takes the request.
  return 2;
}

function parserOnBody(): void {}

function parserOnMessageComplete(): void {}

function parserInstance(C: RequestParserClass): RequestParser {
  if (parser === null) {
    parser = new C();
    parser[C.kOnHeaders] = parserOnHeaders;
    parser[C.kOnHeadersComplete] = parserOnHeadersComplete;
    parser[C.kOnBody] = parserOnBody;
    parser[C.kOnMessageComplete] = parserOnMessageComplete;
  }
  return parser;
}

/** The async resource the parser reports to async_hooks (Node's server gives its IncomingMessage's). */
const RESOURCE = { type: 'SLUICE_LEAN_FRONT' };

/**
 * The request whose whole head starts `bytes`, or null for anything Node's server should read
 * instead (a head not complete yet, a parse error, CONNECT). `maxHeaderSize` is the server's
 * (large_client_header_buffers), the leniency flags are Node's server's (bare-lf.ts), so a head
 * that llhttp refuses here is refused by Node's parser too, and answered by it as today.
 */
export function parseRequestHead(bytes: Buffer, socket: Socket, maxHeaderSize: number): LeanHead | null {
  const C = P;
  if (C === null) return null;
  const p = parserInstance(C);
  state.complete = false;
  state.upgrade = false;
  state.keepAlive = false;
  state.url = '';
  state.headers = [];
  p.initialize(C.REQUEST, RESOURCE, maxHeaderSize, BARE_LF_FLAGS);
  const n = p.execute(bytes);
  if (typeof n !== 'number' || !state.complete || state.method === 'CONNECT') return null;
  let raw = state.headers;
  state.headers = [];
  if (raw.length > MAX_HEADER_PAIRS * 2) raw = raw.slice(0, MAX_HEADER_PAIRS * 2);
  return new ParsedHead(socket, state.method, state.url, state.major, state.minor, raw, n, state.upgrade, state.keepAlive);
}

/** A parsed head: the headers object is built on first use, with Node's rules for repeated lines. */
class ParsedHead implements LeanHead {
  readonly socket: Socket;
  readonly method: string;
  readonly url: string;
  readonly httpVersionMajor: number;
  readonly httpVersionMinor: number;
  readonly rawHeaders: string[];
  readonly headLength: number;
  readonly upgrade: boolean;
  readonly keepAlive: boolean;
  readonly complete = true;
  #headers: IncomingHttpHeaders | null = null;

  constructor(socket: Socket, method: string, url: string, major: number, minor: number, raw: string[], headLength: number, upgrade: boolean, keepAlive: boolean) {
    this.socket = socket;
    this.method = method;
    this.url = url;
    this.httpVersionMajor = major;
    this.httpVersionMinor = minor;
    this.rawHeaders = raw;
    this.headLength = headLength;
    this.upgrade = upgrade;
    this.keepAlive = keepAlive;
  }

  get httpVersion(): string {
    return `${this.httpVersionMajor}.${this.httpVersionMinor}`;
  }

  get headers(): IncomingHttpHeaders {
    if (this.#headers === null) {
      const h: IncomingHttpHeaders = {};
      const raw = this.rawHeaders;
      const add = addHeaderLine as AddHeaderLine;
      for (let i = 0; i < raw.length; i += 2) add.call(HEADER_RULES, raw[i] as string, raw[i + 1] as string, h);
      this.#headers = h;
    }
    return this.#headers;
  }
}

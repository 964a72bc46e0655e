/**
 * The FastCGI 1.0 wire format (the FastCGI specification, sections 3 and 5), as nginx's
 * ngx_http_fastcgi_module writes and reads it: request id 1, the responder role, records padded
 * to 8 bytes, FCGI_PARAMS and FCGI_STDIN streams ended by an empty record.
 */

export const FCGI_VERSION = 1;
export const FCGI_BEGIN_REQUEST = 1;
export const FCGI_END_REQUEST = 3;
export const FCGI_PARAMS = 4;
export const FCGI_STDIN = 5;
export const FCGI_STDOUT = 6;
export const FCGI_STDERR = 7;
const FCGI_RESPONDER = 1;
const FCGI_KEEP_CONN = 1;
/** nginx uses one request per connection, always id 1. */
const REQUEST_ID = 1;
const HEADER_SIZE = 8;
/** A record's content is at most 65535 bytes; nginx fills records up to 32 KiB. */
const MAX_CONTENT = 32 * 1024;

function header(type: number, length: number, padding: number): Buffer {
  const h = Buffer.allocUnsafe(HEADER_SIZE);
  h[0] = FCGI_VERSION;
  h[1] = type;
  h.writeUInt16BE(REQUEST_ID, 2);
  h.writeUInt16BE(length, 4);
  h[6] = padding;
  h[7] = 0;
  return h;
}

const PADDING = Buffer.alloc(8);

/** The records that carry `content` in a stream of `type` (none for empty content: see {@link endOfStream}). */
export function streamRecords(type: number, content: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < content.length; at += MAX_CONTENT) {
    const part = content.subarray(at, Math.min(content.length, at + MAX_CONTENT));
    const padding = (8 - (part.length % 8)) % 8;
    out.push(header(type, part.length, padding), part);
    if (padding > 0) out.push(PADDING.subarray(0, padding));
  }
  return out;
}

/** The empty record that ends a stream (FCGI_PARAMS, FCGI_STDIN). */
export function endOfStream(type: number): Buffer {
  return header(type, 0, 0);
}

/** FCGI_BEGIN_REQUEST for the responder role, with FCGI_KEEP_CONN when the connection is to stay open. */
export function beginRequest(keepConn: boolean): Buffer {
  const body = Buffer.alloc(8);
  body.writeUInt16BE(FCGI_RESPONDER, 0);
  body[2] = keepConn ? FCGI_KEEP_CONN : 0;
  return Buffer.concat([header(FCGI_BEGIN_REQUEST, 8, 0), body]);
}

function lengthBytes(n: number): Buffer {
  if (n < 128) return Buffer.from([n]);
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE((n | 0x80000000) >>> 0, 0);
  return b;
}

/** Name-value pairs in the FastCGI encoding (section 3.4): lengths of 1 byte, or 4 with the top bit set. */
export function encodeParams(params: readonly (readonly [string, string])[]): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of params) {
    const n = Buffer.from(name, 'latin1');
    const v = Buffer.from(value, 'latin1');
    parts.push(lengthBytes(n.length), lengthBytes(v.length), n, v);
  }
  return Buffer.concat(parts);
}

/** What the reader reports: a record's content (never padding), in order. */
export interface RecordSink {
  record(type: number, requestId: number, content: Buffer): void;
  /** A record with a version other than 1: the stream cannot be read further. */
  invalid(reason: string): void;
}

/**
 * Reads records from a byte stream cut anywhere: headers and contents may span chunks. Content is
 * handed over whole per record (at most 64 KiB), so the caller never sees a partial record.
 */
export class RecordReader {
  #pending: Buffer | null = null;
  #failed = false;

  constructor(private readonly sink: RecordSink) {}

  push(chunk: Buffer): void {
    if (this.#failed) return;
    let data = this.#pending === null ? chunk : Buffer.concat([this.#pending, chunk]);
    this.#pending = null;
    while (data.length >= HEADER_SIZE) {
      if (data[0] !== FCGI_VERSION) {
        this.#failed = true;
        this.sink.invalid(`upstream sent unsupported FastCGI protocol version: ${data[0]}`);
        return;
      }
      const length = data.readUInt16BE(4);
      const total = HEADER_SIZE + length + (data[6] as number);
      if (data.length < total) break;
      this.sink.record(data[1] as number, data.readUInt16BE(2), data.subarray(HEADER_SIZE, HEADER_SIZE + length));
      if (this.#failed) return;
      data = data.subarray(total);
    }
    if (data.length > 0) this.#pending = Buffer.from(data);
  }

  /** Stops reading (the exchange is over). */
  stop(): void {
    this.#failed = true;
    this.#pending = null;
  }

  /** Bytes of an unfinished record. */
  get midRecord(): boolean {
    return this.#pending !== null;
  }
}

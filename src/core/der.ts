/**
 * A small reader and writer of DER (ITU-T X.690), for the few ASN.1 structures Sluice handles
 * itself: DH parameters (`ssl_dhparam`), OCSP requests and responses (RFC 6960, `ssl_stapling`)
 * and the parts of certificates those need. Node's crypto reads certificates and keys but has no
 * OCSP, and silently ignores DH parameters it cannot parse.
 */

/** One TLV: its tag byte, its content, and the bytes of the whole element. */
export interface Der {
  readonly tag: number;
  readonly content: Buffer;
  /** Tag, length and content: what a hash or a signature covers. */
  readonly raw: Buffer;
}

export const TAG = {
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  ENUMERATED: 0x0a,
  SEQUENCE: 0x30,
  GENERALIZED_TIME: 0x18,
} as const;

export class DerError extends Error {}

/** Reads the element at `offset`; throws DerError when the bytes are not DER. */
export function readDer(buf: Buffer, offset = 0): Der {
  if (offset + 2 > buf.length) throw new DerError('truncated element');
  const tag = buf[offset]!;
  if ((tag & 0x1f) === 0x1f) throw new DerError('multi-byte tags are not supported');
  let len = buf[offset + 1]!;
  let at = offset + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || at + n > buf.length) throw new DerError('bad length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[at + i]!;
    at += n;
  }
  if (at + len > buf.length) throw new DerError('truncated element');
  return { tag, content: buf.subarray(at, at + len), raw: buf.subarray(offset, at + len) };
}

/** The elements of a constructed element's content, in order. */
export function children(el: Der): Der[] {
  const out: Der[] = [];
  let at = 0;
  while (at < el.content.length) {
    const child = readDer(el.content, at);
    out.push(child);
    at += child.raw.length;
  }
  return out;
}

/** The child at `index`, checked to carry `tag`. */
export function childAt(el: Der, index: number, tag?: number): Der {
  const c = children(el)[index];
  if (c === undefined) throw new DerError(`element ${index} is missing`);
  if (tag !== undefined && c.tag !== tag) throw new DerError(`element ${index} has tag 0x${c.tag.toString(16)}, not 0x${tag.toString(16)}`);
  return c;
}

/** The dotted form of an OBJECT IDENTIFIER's content. */
export function oidText(content: Buffer): string {
  if (content.length === 0) throw new DerError('empty OID');
  const first = content[0]!;
  const parts = [Math.min(2, Math.floor(first / 40)), first - Math.min(2, Math.floor(first / 40)) * 40];
  let v = 0;
  for (let i = 1; i < content.length; i++) {
    const b = content[i]!;
    v = v * 128 + (b & 0x7f);
    if ((b & 0x80) === 0) {
      parts.push(v);
      v = 0;
    }
  }
  return parts.join('.');
}

/** An INTEGER's magnitude in bits (the leading sign byte of a positive number not counted). */
export function integerBits(content: Buffer): number {
  let i = 0;
  while (i < content.length - 1 && content[i] === 0) i++;
  const top = content[i] ?? 0;
  return (content.length - i - 1) * 8 + (top === 0 ? 0 : Math.floor(Math.log2(top)) + 1);
}

/** A GeneralizedTime ("20261204101500Z") as epoch milliseconds. */
export function generalizedTime(content: Buffer): number {
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(?:\.\d+)?Z$/.exec(content.toString('latin1'));
  if (m === null) throw new DerError('bad GeneralizedTime');
  return Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
}

function lengthBytes(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** Encodes one element from its tag and content (or its children's encodings). */
export function encode(tag: number, content: Buffer | readonly Buffer[]): Buffer {
  const body = Buffer.isBuffer(content) ? content : Buffer.concat(content as Buffer[]);
  return Buffer.concat([Buffer.from([tag]), lengthBytes(body.length), body]);
}

/** The DER of an OBJECT IDENTIFIER in dotted form. */
export function encodeOid(dotted: string): Buffer {
  const parts = dotted.split('.').map(Number);
  const bytes = [parts[0]! * 40 + parts[1]!];
  for (const p of parts.slice(2)) {
    const group: number[] = [p & 0x7f];
    for (let v = Math.floor(p / 128); v > 0; v = Math.floor(v / 128)) group.unshift((v & 0x7f) | 0x80);
    bytes.push(...group);
  }
  return encode(TAG.OID, Buffer.from(bytes));
}

/** The bytes of every PEM block labelled `label` ("CERTIFICATE", "DH PARAMETERS"). */
export function pemBlocks(text: string, label: RegExp): Buffer[] {
  const out: Buffer[] = [];
  const re = /-----BEGIN ([A-Z0-9. ]+)-----([\s\S]*?)-----END \1-----/g;
  for (const m of text.matchAll(re)) {
    if (label.test(m[1]!)) out.push(Buffer.from(m[2]!.replace(/\s+/g, ''), 'base64'));
  }
  return out;
}

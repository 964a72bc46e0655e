/**
 * nginx's range filter (ngx_http_range_filter_module) for files Sluice serves: `Range: bytes=`
 * with If-Range, one range as a 206 with Content-Range, several as multipart/byteranges, 416
 * when none can be satisfied, and the whole file (200, `Accept-Ranges: bytes`) when the header
 * is malformed in the ways nginx ignores, asks for more ranges than `max_ranges`, or asks for
 * more bytes in several ranges than the file has (a denial-of-service guard of nginx's).
 */
import type { FileSettings } from '../config/types.js';
import { parseHttpTime } from '../proxy/answer/http-date.js';

/** One range, `end` exclusive. */
export interface ByteRange {
  readonly start: number;
  readonly end: number;
}

/** What a body read from a file is made of, in order: text (part headers) and byte ranges of the file. */
export type BodyPart = string | ByteRange;

export type RangeAnswer =
  | { readonly kind: 'whole' }
  | { readonly kind: 'unsatisfiable' }
  | { readonly kind: 'ranges'; readonly ranges: readonly ByteRange[] };

const WHOLE: RangeAnswer = Object.freeze({ kind: 'whole' });
const UNSATISFIABLE: RangeAnswer = Object.freeze({ kind: 'unsatisfiable' });
const MAX_OFF_T = (1n << 63n) - 1n;

/**
 * If-Range (RFC 9110 13.1.5 as nginx reads it): a value ending in `"` is an entity tag that must
 * equal the ETag exactly; anything else a date that must equal Last-Modified.
 */
export function ifRangeHolds(ifRange: string | undefined, etag: string | null, lastModified: number): boolean {
  if (ifRange === undefined) return true;
  if (ifRange.length >= 2 && ifRange.endsWith('"')) return etag !== null && ifRange === etag;
  if (lastModified === -1) return false;
  return parseHttpTime(ifRange) === lastModified;
}

/** ngx_http_range_parse for a `Range` header and a body of `size` bytes. */
export function parseRanges(header: string | undefined, size: number, files: FileSettings): RangeAnswer {
  if (files.maxRanges === 0) return WHOLE;
  if (header === undefined || header.length < 7 || header.slice(0, 6).toLowerCase() !== 'bytes=') return WHOLE;
  const length = BigInt(size);
  const c = (i: number): string => (i < header.length ? header[i]! : '\0');
  const digit = (i: number): boolean => c(i) >= '0' && c(i) <= '9';
  let allowed = files.maxRanges ?? 0x7fffffff;
  const ranges: ByteRange[] = [];
  let total = 0n;
  let p = 6;
  for (;;) {
    let start = 0n;
    let end = 0n;
    let suffix = false;
    let found = false;
    while (c(p) === ' ') p++;
    if (c(p) !== '-') {
      if (!digit(p)) return UNSATISFIABLE;
      while (digit(p)) {
        start = start * 10n + BigInt(c(p++).charCodeAt(0) - 48);
        if (start > MAX_OFF_T) return UNSATISFIABLE;
      }
      while (c(p) === ' ') p++;
      if (c(p++) !== '-') return UNSATISFIABLE;
      while (c(p) === ' ') p++;
      if (c(p) === ',' || c(p) === '\0') {
        end = length;
        found = true;
      }
    } else {
      suffix = true;
      p++;
    }
    if (!found) {
      if (!digit(p)) return UNSATISFIABLE;
      while (digit(p)) {
        end = end * 10n + BigInt(c(p++).charCodeAt(0) - 48);
        if (end > MAX_OFF_T) return UNSATISFIABLE;
      }
      while (c(p) === ' ') p++;
      if (c(p) !== ',' && c(p) !== '\0') return UNSATISFIABLE;
      if (suffix) {
        start = end < length ? length - end : 0n;
        end = length - 1n;
      }
      end = end >= length ? length : end + 1n;
    }
    if (start < end) {
      ranges.push({ start: Number(start), end: Number(end) });
      total += end - start;
      if (total > MAX_OFF_T) return UNSATISFIABLE;
      if (allowed-- === 0) return WHOLE;
    } else if (start === 0n) {
      return WHOLE;
    }
    if (c(p++) !== ',') break;
  }
  if (ranges.length === 0) return UNSATISFIABLE;
  if (ranges.length === 1) return { kind: 'ranges', ranges };
  if (total > length) return WHOLE;
  // With max_ranges unset nginx also refuses ranges whose parts would cost more than the file.
  if (files.maxRanges === null && total + BigInt(ranges.length) * 256n > length + 4096n) return WHOLE;
  return { kind: 'ranges', ranges };
}

let boundarySeed = Math.floor(Math.random() * 1e9);

/** A multipart/byteranges boundary as nginx makes it: a number written with 20 digits. */
export function nextBoundary(): string {
  boundarySeed = (boundarySeed + 1) % 1e15;
  return String(boundarySeed).padStart(20, '0');
}

/** The part header before each range's bytes (nginx's boundary_header plus the range). */
export function partHeader(boundary: string, type: string, r: ByteRange, size: number): string {
  const ct = type === '' ? '' : `Content-Type: ${type}\r\n`;
  return `\r\n--${boundary}\r\n${ct}Content-Range: bytes ${r.start}-${r.end - 1}/${size}\r\n\r\n`;
}

/** The closing boundary. */
export function lastBoundary(boundary: string): string {
  return `\r\n--${boundary}--\r\n`;
}

/** A multipart/byteranges body: its parts (part headers and ranges, in order), length and boundary. */
export interface Multipart {
  readonly parts: BodyPart[];
  readonly length: number;
  readonly boundary: string;
}

/** The multipart/byteranges body of several ranges of a body of `size` bytes whose type is `type`. */
export function multipartBody(ranges: readonly ByteRange[], type: string, size: number): Multipart {
  const boundary = nextBoundary();
  const parts: BodyPart[] = [];
  let length = 0;
  for (const r of ranges) {
    const h = partHeader(boundary, type, r, size);
    parts.push(h, r);
    length += h.length + (r.end - r.start);
  }
  const tail = lastBoundary(boundary);
  parts.push(tail);
  length += tail.length;
  return { parts, length, boundary };
}

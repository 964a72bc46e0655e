/**
 * A cache entry file: a header, then the response body as the upstream sent it (de-chunked).
 * nginx writes a binary struct, the key and the raw upstream head before the body; Sluice writes
 * its own header in the same place: the 8-byte magic `SLCACHE1`, the header's length (uint32
 * big-endian), and the header as JSON (key, times, status, the upstream's raw header lines, the
 * Vary of the response and the request's variant). A file with another magic, a cut header or
 * another key (an md5 collision) is not an entry: the lookup treats it as a miss and replaces it.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

const MAGIC = Buffer.from('SLCACHE1', 'latin1');
/** What the first read takes: most headers fit. */
const FIRST_READ = 4096;
/** An entry file of at most this many bytes is read whole when it is opened (one read for a hit). */
const WHOLE_READ = 64 * 1024;
/** A header larger than this is not one Sluice wrote. */
const MAX_HEADER = 1024 * 1024;

export interface EntryMeta {
  readonly key: string;
  /** ms since the epoch after which the entry is EXPIRED. */
  readonly validUntil: number;
  /** ms since the epoch when it was stored. */
  readonly date: number;
  readonly status: number;
  readonly message: string;
  /** The upstream's header lines as received, flat [name, value, ...]. */
  readonly headers: readonly string[];
  /** The response's Vary value, or null. */
  readonly vary: string | null;
  /** md5 of the request headers Vary names, as they were for the stored response. */
  readonly variant: string | null;
  /** Cache-Control stale-while-revalidate: seconds past validUntil it may answer while being fetched (absent: 0). */
  readonly updatingSec?: number;
  /** Cache-Control stale-if-error (or stale-while-revalidate): seconds past validUntil it may answer for a failed upstream (absent: 0). */
  readonly errorSec?: number;
}

/** The bytes that go in front of the body. */
export function entryHeader(meta: EntryMeta): Buffer {
  const json = Buffer.from(JSON.stringify(meta), 'utf8');
  const len = Buffer.allocUnsafe(4);
  len.writeUInt32BE(json.length, 0);
  return Buffer.concat([MAGIC, len, json]);
}

/** An entry opened for reading: its descriptor stays open for the body (the caller closes it). */
export interface OpenEntry {
  readonly meta: EntryMeta;
  readonly fd: number;
  /** Where the body starts in the file. */
  readonly bodyStart: number;
  /** Body bytes (the rest of the file: the header is written before the body's length is known). */
  readonly length: number;
  /** The body, when the file was small enough to be read whole; else null (read it from `fd`). */
  readonly data: Buffer | null;
}

/**
 * Opens and reads an entry's header; null when there is none (or none Sluice can use) for this key.
 * The calls are synchronous, as nginx reads its cache files (blocking I/O in the event loop, unless
 * `aio`): an entry is a page-cached file read in microseconds, where each trip through libuv's
 * thread pool cost a hit more than a millisecond on a busy machine (docs/benchmarks.md, scenario
 * 7). An entry of at most WHOLE_READ bytes is read in one call, its body kept in `data`.
 */
export async function openEntry(path: string, key: string): Promise<OpenEntry | null> {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return null;
  }
  try {
    const size = fstatSync(fd).size;
    const whole = size <= WHOLE_READ;
    const first = Buffer.allocUnsafe(whole ? size : FIRST_READ);
    const bytesRead = readSync(fd, first, 0, first.length, 0);
    if (bytesRead < 12 || !first.subarray(0, 8).equals(MAGIC)) return closed(fd);
    const len = first.readUInt32BE(8);
    if (len > MAX_HEADER) return closed(fd);
    let json: Buffer;
    if (12 + len <= bytesRead) {
      json = first.subarray(12, 12 + len);
    } else {
      json = Buffer.allocUnsafe(len);
      if (readSync(fd, json, 0, len, 12) < len) return closed(fd);
    }
    const meta = JSON.parse(json.toString('utf8')) as EntryMeta;
    if (meta.key !== key) return closed(fd);
    const bodyStart = 12 + len;
    const data = whole && bytesRead === size ? first.subarray(bodyStart) : null;
    return { meta, fd, bodyStart, length: size - bodyStart, data };
  } catch {
    return closed(fd);
  }
}

function closed(fd: number): null {
  closeEntry(fd);
  return null;
}

/** Closes an entry's descriptor synchronously (see openEntry); a failure is of no consequence. */
export function closeEntry(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // already gone
  }
}

/**
 * `proxy_buffering on` for one response (nginx's event pipe): the upstream body is read as fast as
 * the upstream sends it, kept in memory up to `proxy_buffers` (NUMBER x SIZE), beyond that in a
 * temp file under `proxy_temp_path` up to `proxy_max_temp_file_size`, and handed to the client as
 * fast as it reads. A slow client no longer holds the upstream: its connection is released (or
 * goes back to the keep-alive cache) once the whole response is in. Only when memory and file are
 * both full does reading the upstream wait, as with `proxy_buffering off`.
 *
 * Order is kept: once bytes go to the file, every later chunk goes there too until the reader has
 * caught up with the file's end; then chunks go to memory again.
 */
import { Readable } from 'node:stream';
import type { Settings, TempPath } from '../../config/types.js';
import type { UpstreamMessage } from '../client/upstream-client.js';
import { knownLength } from '../cache/cache-ranges.js';
import { responseBuffered } from './accel-headers.js';
import { createTempFile, removeTempFile } from './temp-file.js';
import type { TempFile } from './temp-file.js';

export interface SpoolOptions {
  /** proxy_buffers NUMBER x SIZE: the bytes kept in memory. */
  readonly memory: number;
  readonly tempPath: TempPath;
  /** proxy_max_temp_file_size: 0 writes no file. */
  readonly maxFile: number;
  /** proxy_temp_file_write_size: the most bytes one write gives the file. */
  readonly writeSize: number;
  /** The temp file could not be made or written: the response goes on unbuffered (logged by the caller). */
  readonly onFileError: (err: NodeJS.ErrnoException) => void;
}

/**
 * Whether a response under `proxy_buffering` (or `X-Accel-Buffering: yes`) is read whole into
 * memory at once: its Content-Length fits proxy_buffers (NUMBER x SIZE), so a spool would never
 * reach the temp file. Such a body is relayed without a spool and without pausing the upstream
 * (relayBody's `unpaused`): the same bytes held, the same early release of the upstream
 * connection, at a fraction of a spool's cost per response (docs/benchmarks.md, "Plain HTTP cost
 * per request since 31755f6").
 */
export function fitsBuffers(s: Settings, up: UpstreamMessage): boolean {
  const length = knownLength(up.headers);
  if (length < 0) return false;
  const b = s.buffering;
  return length <= b.proxyBuffers.number * b.proxyBuffers.size && responseBuffered(s, up);
}

/** How much one read from the file hands on. */
const READ_SIZE = 64 * 1024;

export class ResponseSpool extends Readable {
  readonly #up: Readable;
  readonly #o: SpoolOptions;
  /** Chunks go to the file (until the reader catches up with it). */
  #toFile = false;
  #file: TempFile | null = null;
  #opening = false;
  /** Waiting for the file: not yet written. */
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #writing = false;
  /** Bytes written to the file so far, and read back from it. */
  #written = 0;
  #read = 0;
  #reading = false;
  #upEnded = false;
  #upPaused = false;
  /** The file failed: what is left streams with backpressure. */
  #noFile = false;

  constructor(up: Readable, o: SpoolOptions) {
    super({ highWaterMark: Math.max(1, o.memory) });
    this.#up = up;
    this.#o = o;
    up.on('data', this.#onData);
    up.once('end', this.#onEnd);
  }

  readonly #onData = (chunk: Buffer): void => {
    if (this.destroyed) return;
    if (!this.#toFile) {
      if (this.push(chunk)) return;
      // Memory is full: on to the file, or (none allowed) the upstream waits for the client.
      if (this.#o.maxFile === 0 || this.#noFile) this.#pauseUp();
      else this.#toFile = true;
      return;
    }
    this.#pending.push(chunk);
    this.#pendingBytes += chunk.length;
    if (this.#written + this.#pendingBytes >= this.#o.maxFile) this.#pauseUp();
    this.#write();
  };

  readonly #onEnd = (): void => {
    this.#upEnded = true;
    if (!this.#toFile) this.push(null);
    else this.#pump();
  };

  #pauseUp(): void {
    if (this.#upPaused) return;
    this.#upPaused = true;
    this.#up.pause();
  }

  #resumeUp(): void {
    if (!this.#upPaused || this.destroyed) return;
    this.#upPaused = false;
    this.#up.resume();
  }

  #write(): void {
    if (this.#writing || this.#opening || this.#pending.length === 0 || this.destroyed) return;
    if (this.#file === null) {
      this.#opening = true;
      createTempFile(this.#o.tempPath, false).then((file) => {
        this.#opening = false;
        if (this.destroyed) {
          removeTempFile(file, false);
          return;
        }
        this.#file = file;
        this.#write();
      }, (err: NodeJS.ErrnoException) => this.#fileFailed(err));
      return;
    }
    // At most proxy_temp_file_write_size per write.
    const batch: Buffer[] = [];
    let bytes = 0;
    while (this.#pending.length > 0 && bytes < this.#o.writeSize) {
      const c = this.#pending.shift() as Buffer;
      batch.push(c);
      bytes += c.length;
    }
    this.#pendingBytes -= bytes;
    this.#writing = true;
    const file = this.#file;
    file.handle.writev(batch, this.#written).then(() => {
      this.#writing = false;
      if (this.destroyed) {
        removeTempFile(file, false);
        return;
      }
      this.#written += bytes;
      this.#pump();
      this.#write();
    }, (err: NodeJS.ErrnoException) => {
      this.#writing = false;
      this.#fileFailed(err);
    });
  }

  /** Without a file the rest streams: what waited for it goes to memory, in order. */
  #fileFailed(err: NodeJS.ErrnoException): void {
    this.#opening = false;
    this.#noFile = true;
    this.#o.onFileError(err);
    if (this.destroyed) return;
    if (this.#written > this.#read) {
      // Bytes already in the file cannot be skipped: the response is cut short.
      this.destroy(err);
      return;
    }
    this.#toFile = false;
    const pending = this.#pending;
    this.#pending = [];
    this.#pendingBytes = 0;
    let room = true;
    for (const c of pending) room = this.push(c);
    if (!room) this.#pauseUp();
    if (this.#upEnded) this.push(null);
  }

  override _read(): void {
    if (this.#toFile) this.#pump();
    else this.#resumeUp();
  }

  /** Hands the client the next part of the file, or returns to memory once the file is read. */
  #pump(): void {
    if (this.#reading || this.destroyed || !this.#toFile) return;
    if (this.#read < this.#written) {
      const file = this.#file as TempFile;
      const length = Math.min(READ_SIZE, this.#written - this.#read);
      const buf = Buffer.allocUnsafe(length);
      this.#reading = true;
      file.handle.read(buf, 0, length, this.#read).then(({ bytesRead }) => {
        this.#reading = false;
        if (this.destroyed) return;
        this.#read += bytesRead;
        // More of the file may go out while the client keeps up (push answers true); else _read asks.
        if (this.push(bytesRead === length ? buf : buf.subarray(0, bytesRead))) this.#pump();
      }, (err: Error) => {
        this.#reading = false;
        this.destroy(err);
      });
      return;
    }
    if (this.#writing || this.#opening || this.#pending.length > 0) return;
    // The reader caught up with the file: memory again.
    this.#toFile = false;
    if (this.#upEnded) this.push(null);
    else this.#resumeUp();
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    this.#up.removeListener('data', this.#onData);
    this.#up.removeListener('end', this.#onEnd);
    this.#pending = [];
    if (this.#file !== null && !this.#writing) removeTempFile(this.#file, false);
    cb(err);
  }
}

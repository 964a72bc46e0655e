/**
 * Request body buffering (nginx's ngx_http_read_client_request_body with request buffering on):
 * the whole body is read before an upstream is chosen, in memory up to client_body_buffer_size,
 * beyond that (or always, under client_body_in_file_only) in a temp file under
 * client_body_temp_path. The result can be sent any number of times (one stream per try), which
 * is what lets proxy_next_upstream repeat a request with a body.
 */
import { Readable } from 'node:stream';
import type { BufferingSettings } from '../../config/types.js';
import { createTempFile, removeTempFile } from './temp-file.js';
import type { TempFile } from './temp-file.js';

/** A request body read whole. */
export interface BufferedBody {
  readonly length: number;
  /** The body when it is in memory (`$request_body`), else null. */
  readonly memory: Buffer | null;
  /** The temp file when it is in one (`$request_body_file`), else null. */
  readonly file: TempFile | null;
  /** A new stream of the whole body, for one try. */
  open(): Readable;
  /** The request is over: the file is closed, and removed unless `client_body_in_file_only on`. */
  dispose(): void;
}

export type BodyReadResult =
  | { readonly kind: 'body'; readonly body: BufferedBody }
  /** client_max_body_size: the figures nginx logs ("...: 1048000+4096 bytes"). */
  | { readonly kind: 'too-large'; readonly received: number; readonly chunk: number }
  /** The client went away (or the stream failed) before the body was complete. */
  | { readonly kind: 'gone' }
  /** The temp file could not be made or written (nginx: 500 and the system call in the log). */
  | { readonly kind: 'file-error'; readonly error: NodeJS.ErrnoException };

export interface BodyReadOptions {
  /** client_body_buffer_size. */
  readonly bufferSize: number;
  /** client_max_body_size (0: no limit). */
  readonly limit: number;
  readonly settings: BufferingSettings;
  /** Called at once (before the result) when the body ends incomplete: the client left or the stream failed. */
  readonly onGone?: () => void;
}

const EMPTY = Buffer.alloc(0);

function noop(): void {}

class MemoryBody implements BufferedBody {
  readonly file = null;
  constructor(readonly memory: Buffer) {}
  get length(): number {
    return this.memory.length;
  }
  open(): Readable {
    return Readable.from(this.memory.length === 0 ? [] : [this.memory], { objectMode: false });
  }
  dispose(): void {}
}

class FileBody implements BufferedBody {
  readonly memory = null;
  #disposed = false;
  constructor(readonly file: TempFile, readonly length: number, readonly keep: boolean) {}
  open(): Readable {
    // Positional reads from the start on the one descriptor: each try reads the whole file.
    const stream = this.file.handle.createReadStream({ start: 0, autoClose: false, emitClose: true });
    // A try still sending when the request ends (proxy_ignore_client_abort) reads a closed file:
    // that try fails by its send timeout, never by an unhandled 'error'.
    stream.on('error', noop);
    return stream;
  }
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    removeTempFile(this.file, this.keep);
  }
}

/** Reads `body` whole; never rejects. */
export function readRequestBody(body: Readable, o: BodyReadOptions): Promise<BodyReadResult> {
  return new Promise((resolve) => new BodyReader(body, o, resolve).start());
}

/** One body being read: memory chunks, then (past the buffer) a temp file written in order. */
class BodyReader {
  readonly #body: Readable;
  readonly #o: BodyReadOptions;
  readonly #done: (r: BodyReadResult) => void;
  #chunks: Buffer[] = [];
  #received = 0;
  /** Bytes waiting for the file (opening, or a write in flight). */
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #toFile = false;
  #file: TempFile | null = null;
  #writing = false;
  #ended = false;
  #settled = false;

  constructor(body: Readable, o: BodyReadOptions, done: (r: BodyReadResult) => void) {
    this.#body = body;
    this.#o = o;
    this.#done = done;
  }

  start(): void {
    const body = this.#body;
    if (this.#o.settings.clientBodyInFileOnly !== 'off') this.#spill();
    body.on('data', this.#onData);
    body.once('end', this.#onEnd);
    body.once('aborted', this.#onGone);
    body.once('close', this.#onClose);
    body.on('error', this.#onGone);
    if (body.readableEnded) this.#onEnd();
  }

  readonly #onData = (chunk: Buffer): void => {
    if (this.#settled) return;
    const limit = this.#o.limit;
    if (limit > 0 && this.#received + chunk.length > limit) {
      this.#finish({ kind: 'too-large', received: this.#received, chunk: chunk.length });
      return;
    }
    this.#received += chunk.length;
    if (!this.#toFile) {
      this.#chunks.push(chunk);
      if (this.#received > this.#o.bufferSize) this.#spill();
      return;
    }
    this.#pending.push(chunk);
    this.#pendingBytes += chunk.length;
    // Reading waits while more than a buffer's worth is on its way to the disk.
    if (this.#pendingBytes > this.#o.bufferSize) this.#body.pause();
    this.#flush();
  };

  readonly #onEnd = (): void => {
    if (this.#settled || this.#ended) return;
    this.#ended = true;
    if (!this.#toFile) {
      const memory = this.#chunks.length === 1 ? this.#chunks[0] as Buffer : this.#chunks.length === 0 ? EMPTY : Buffer.concat(this.#chunks);
      this.#finish({ kind: 'body', body: new MemoryBody(memory) });
      return;
    }
    this.#flush();
  };

  readonly #onClose = (): void => {
    if (!this.#ended) this.#onGone();
  };

  readonly #onGone = (): void => {
    if (this.#ended || this.#settled) return;
    this.#o.onGone?.();
    this.#finish({ kind: 'gone' });
  };

  /** From here on the body goes to a temp file (the memory part first, in order). */
  #spill(): void {
    this.#toFile = true;
    this.#pending = this.#chunks;
    this.#pendingBytes = this.#received;
    this.#chunks = [];
    this.#writing = true;
    this.#body.pause();
    const s = this.#o.settings;
    createTempFile(s.clientBodyTempPath, s.clientBodyInFileOnly !== 'off').then((file) => {
      this.#file = file;
      this.#writing = false;
      if (this.#settled) {
        removeTempFile(file, false);
        return;
      }
      this.#body.resume();
      this.#flush();
    }, (err: NodeJS.ErrnoException) => this.#finish({ kind: 'file-error', error: err }));
  }

  #flush(): void {
    if (this.#writing || this.#file === null || this.#settled) return;
    if (this.#pending.length === 0) {
      if (this.#ended) this.#finish({ kind: 'body', body: new FileBody(this.#file, this.#received, this.#o.settings.clientBodyInFileOnly === 'on') });
      return;
    }
    const chunks = this.#pending;
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#writing = true;
    const file = this.#file;
    file.handle.writev(chunks).then(() => {
      this.#writing = false;
      if (this.#settled) {
        removeTempFile(file, false);
        return;
      }
      if (!this.#ended) this.#body.resume();
      this.#flush();
    }, (err: NodeJS.ErrnoException) => {
      this.#writing = false;
      if (this.#settled) removeTempFile(file, false);
      else this.#finish({ kind: 'file-error', error: err });
    });
  }

  #finish(r: BodyReadResult): void {
    if (this.#settled) return;
    this.#settled = true;
    const body = this.#body;
    body.removeListener('data', this.#onData);
    body.removeListener('end', this.#onEnd);
    body.removeListener('aborted', this.#onGone);
    body.removeListener('close', this.#onClose);
    // The 'error' listener stays: a stream failing later must not throw from an event.
    // A file is the result's now, or nobody's (a write in flight removes it when it completes).
    if (r.kind !== 'body' && this.#file !== null && !this.#writing) removeTempFile(this.#file, false);
    this.#chunks = [];
    this.#pending = [];
    this.#done(r);
  }
}

/**
 * With request buffering off nginx still has the body in its one buffer when it fits
 * client_body_buffer_size, and `$request_body` shows it: `onBody` gets a copy of a streamed body
 * no larger than `max`, once it has ended. Listening starts when the body flows (a 'data'
 * listener any earlier would start the flow).
 */
export function copyStreamedBody(body: Readable, max: number, onBody: (copy: Buffer) => void): void {
  const chunks: Buffer[] = [];
  let size = 0;
  const onData = (chunk: Buffer): void => {
    size += chunk.length;
    if (size > max) {
      body.removeListener('data', onData);
      body.removeListener('end', onEnd);
      chunks.length = 0;
      return;
    }
    chunks.push(chunk);
  };
  const onEnd = (): void => onBody(Buffer.concat(chunks));
  const listen = (): void => {
    body.on('data', onData);
    body.once('end', onEnd);
  };
  if (body.readableFlowing === true) listen();
  else body.once('resume', listen);
}

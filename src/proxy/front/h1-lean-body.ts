/**
 * A plain request with a Content-Length body that the lean front end took (server/lean-front.ts):
 * its head (the fields of IncomingMessage the front ends read) and its body as a stream, the
 * part of IncomingMessage Sluice's request front end and body readers use (h1-request.ts,
 * body/request-body.ts): `data`/`end`, `complete` once every declared byte arrived, and
 * `'aborted'` then `'close'` when the client goes first. The connection feeds it the bytes after
 * the head, exactly the declared length (the rest is the next request); when the reader does
 * not keep up, reading the client pauses ({@link LeanBodyRequest.feed} answers false) until the
 * reader asks for more.
 */
import { Readable } from 'node:stream';
import type { IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import type { LeanHead } from './h1-head-parser.js';

export class LeanBodyRequest extends Readable implements LeanHead {
  readonly #head: LeanHead;
  /** Body bytes still to come. */
  left: number;
  complete = false;

  constructor(head: LeanHead, length: number) {
    super();
    this.#head = head;
    this.left = length;
  }

  get socket(): Socket {
    return this.#head.socket;
  }

  get method(): string | undefined {
    return this.#head.method;
  }

  get url(): string | undefined {
    return this.#head.url;
  }

  get httpVersion(): string {
    return this.#head.httpVersion;
  }

  get httpVersionMajor(): number {
    return this.#head.httpVersionMajor;
  }

  get httpVersionMinor(): number {
    return this.#head.httpVersionMinor;
  }

  get headers(): IncomingHttpHeaders {
    return this.#head.headers;
  }

  get rawHeaders(): string[] {
    return this.#head.rawHeaders;
  }

  get headLength(): number {
    return this.#head.headLength;
  }

  get upgrade(): boolean {
    return false;
  }

  get keepAlive(): boolean {
    return this.#head.keepAlive;
  }

  /**
   * Body bytes from the client (at most `left`); false when the reader's buffer is full (the
   * connection pauses reading until `_read`). Ends the stream with the last declared byte.
   */
  feed(part: Buffer): boolean {
    this.left -= part.length;
    const more = this.destroyed ? true : this.push(part);
    if (this.left === 0) {
      this.complete = true;
      if (!this.destroyed) this.push(null);
    }
    return more;
  }

  /** The client went before the whole body arrived (IncomingMessage's `'aborted'`, then `'close'`). */
  abort(): void {
    if (this.complete || this.destroyed) return;
    this.emit('aborted');
    this.destroy();
  }

  override _read(): void {
    const socket = this.#head.socket;
    if (!this.complete && socket.isPaused()) socket.resume();
  }
}

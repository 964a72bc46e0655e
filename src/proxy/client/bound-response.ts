/**
 * The shape every upstream client's response takes for the relaying code (the fields of
 * IncomingMessage it reads, {@link UpstreamMessage}): a Readable body bound to the exchange that
 * feeds it. Reading resumes the exchange's paused body; destroying the body before it is complete
 * marks it aborted (IncomingMessage's 'aborted') and aborts the exchange; once the exchange is
 * over it detaches, and the body no longer reaches the connection. The lean, FastCGI and undici
 * clients extend it, each keeping only how it builds `headers`.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';

/** What a response needs of the exchange behind it. */
export interface BodySource {
  /** The relaying side wants more of the body: resume reading from the upstream. */
  resumeBody(): void;
  /** The body was destroyed before it was complete: end the exchange (the connection is not reused). */
  abort(): void;
}

export abstract class BoundResponse extends Readable {
  readonly statusCode: number;
  readonly statusMessage: string;
  readonly rawHeaders: string[];
  complete = false;
  aborted = false;
  #source: BodySource | null;

  /** `highWaterMark`: the body's buffer (the upstream socket's, for the clients that own one); Readable's default without it. */
  constructor(source: BodySource, status: number, message: string, rawHeaders: string[], highWaterMark?: number) {
    super(highWaterMark === undefined ? undefined : { highWaterMark });
    this.#source = source;
    this.statusCode = status;
    this.statusMessage = message;
    this.rawHeaders = rawHeaders;
  }

  abstract get headers(): IncomingHttpHeaders;

  /** @internal The exchange is over: the body no longer depends on the connection. */
  detach(): void {
    this.#source = null;
  }

  override _read(): void {
    this.#source?.resumeBody();
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    if (!this.complete) {
      this.aborted = true;
      this.emit('aborted');
      this.#source?.abort();
    }
    cb(err);
  }
}

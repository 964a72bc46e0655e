import type { Readable } from 'node:stream';

/**
 * A response Sluice makes itself whose body streams (a file, a directory listing): the front end
 * sends the head (adding Server and Date), then the body under send_timeout with backpressure.
 */
export interface StreamedResponse {
  readonly status: number;
  /** Flat [name, value, ...]: Content-Length when the length is known (else the body is chunked). */
  readonly headers: string[];
  /** null for no body (HEAD, 304, an empty file). Whoever gets it consumes or destroys it. */
  readonly body: Readable | null;
}

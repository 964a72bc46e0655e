import type { IncomingMessage, ServerResponse } from 'node:http';

/** The request body kept in an echo report; the rest is read and dropped so keep-alive still works. */
export const MAX_ECHO_BODY_BYTES = 1024 * 1024;

/** What the echo backend answers to an ordinary HTTP request, as JSON. */
export interface EchoHttpReport {
  /** Which backend answered. */
  id: string;
  method: string;
  /** The request target exactly as received (path and query, percent-encoding untouched). */
  url: string;
  httpVersion: string;
  /** Lower-case names; a header sent once is a string, one sent on several lines is an array. */
  headers: Record<string, string | string[]>;
  /** Names and values as received, alternating, case kept. */
  rawHeaders: string[];
  remoteAddress: string | null;
  remotePort: number | null;
  /** The body as UTF-8, at most {@link MAX_ECHO_BODY_BYTES} bytes of it. */
  body: string;
  /** The full body length in bytes (more than `body` holds when it was cut). */
  bodyBytes: number;
}

/** Header values keyed by lower-case name: a string when sent once, an array when repeated. */
export function distinctHeaders(req: IncomingMessage): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, values] of Object.entries(req.headersDistinct)) {
    if (values === undefined) continue;
    out[name] = values.length === 1 ? values[0]! : values;
  }
  return out;
}

/**
 * Reads the request body (keeping the first MiB) and calls back with the report. Never throws; a
 * client that goes away mid-body simply gets no callback.
 */
export function collectEchoReport(id: string, req: IncomingMessage, done: (report: EchoHttpReport) => void): void {
  const kept: Buffer[] = [];
  let keptBytes = 0;
  let totalBytes = 0;
  req.on('data', (chunk: Buffer) => {
    totalBytes += chunk.length;
    if (keptBytes < MAX_ECHO_BODY_BYTES) {
      const part = chunk.subarray(0, MAX_ECHO_BODY_BYTES - keptBytes);
      kept.push(part);
      keptBytes += part.length;
    }
  });
  req.on('error', ignoreError);
  req.on('end', () => {
    done({
      id,
      method: req.method ?? '',
      url: req.url ?? '',
      httpVersion: req.httpVersion,
      headers: distinctHeaders(req),
      rawHeaders: req.rawHeaders,
      remoteAddress: req.socket.remoteAddress ?? null,
      remotePort: req.socket.remotePort ?? null,
      body: Buffer.concat(kept, keptBytes).toString('utf8'),
      bodyBytes: totalBytes,
    });
  });
}

/**
 * Answers `req` with 200 and the {@link EchoHttpReport} as JSON, plus an `X-Echo-Id` header naming
 * the backend (so HEAD requests and tests that only look at headers can tell backends apart).
 */
export function respondWithEcho(id: string, req: IncomingMessage, res: ServerResponse): void {
  collectEchoReport(id, req, (report) => {
    const json = JSON.stringify(report);
    res.writeHead(200, {
      'Content-Type': 'application/json',
      'Content-Length': Buffer.byteLength(json),
      'X-Echo-Id': id,
    });
    res.end(json);
  });
}

function ignoreError(): void {
  // A client that resets mid-body is normal for a test backend; the socket's own handler cleans up.
}

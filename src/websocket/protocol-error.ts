/**
 * A violation of RFC 6455 detected while reading frames, reported as a value (never thrown) so the
 * data plane can answer it with a close frame carrying `closeCode` and then drop the connection.
 */
export interface WsProtocolError {
  readonly kind: 'error';
  /** The close code to send: 1002 protocol error, 1007 invalid payload data, 1009 too big. */
  readonly closeCode: 1002 | 1007 | 1009;
  /** Why, in words fit for a log line (and short enough for a close reason, <= 123 bytes). */
  readonly reason: string;
}

/** Builds a {@link WsProtocolError}. */
export function wsProtocolError(closeCode: WsProtocolError['closeCode'], reason: string): WsProtocolError {
  return Object.freeze({ kind: 'error', closeCode, reason });
}

import { isUtf8 } from 'node:buffer';
import { wsProtocolError, type WsProtocolError } from './protocol-error.js';

/** Close status codes (RFC 6455 section 7.4.1) that Sluice sends or checks for. */
export const CloseCode = Object.freeze({
  NORMAL: 1000,
  GOING_AWAY: 1001,
  PROTOCOL_ERROR: 1002,
  UNSUPPORTED_DATA: 1003,
  /** Reserved: never on the wire; means "the close frame had no status code". */
  NO_STATUS: 1005,
  /** Reserved: never on the wire; means "the connection dropped without a close frame". */
  ABNORMAL: 1006,
  INVALID_PAYLOAD: 1007,
  POLICY_VIOLATION: 1008,
  MESSAGE_TOO_BIG: 1009,
  MANDATORY_EXTENSION: 1010,
  INTERNAL_ERROR: 1011,
} as const);

/** The longest close reason that fits a control frame: 125 bytes minus the 2-byte code. */
export const MAX_CLOSE_REASON_BYTES = 123;

/**
 * Whether `code` may appear in a close frame on the wire (RFC 6455 section 7.4): 1000-1003,
 * 1007-1014 (the IANA registry), and 3000-4999 for libraries and applications.
 * 1004, 1005, 1006 and 1015 are reserved and must never be sent.
 */
export function isValidCloseCode(code: number): boolean {
  if (!Number.isInteger(code)) return false;
  if (code >= 1000 && code <= 1003) return true;
  if (code >= 1007 && code <= 1014) return true;
  return code >= 3000 && code <= 4999;
}

/** A decoded close frame body. `code` is 1005 (NO_STATUS) when the body was empty. */
export interface ClosePayload {
  readonly kind: 'close';
  readonly code: number;
  readonly reason: string;
}

/**
 * Decodes the body of a close frame (RFC 6455 section 5.5.1): empty, or a 2-byte code followed by
 * a UTF-8 reason. A 1-byte body or a code that may not be sent is a 1002 error; a reason that is not
 * valid UTF-8 is a 1007 error (section 8.1).
 */
export function parseClosePayload(payload: Buffer): ClosePayload | WsProtocolError {
  if (payload.length === 0) return { kind: 'close', code: CloseCode.NO_STATUS, reason: '' };
  if (payload.length === 1) return wsProtocolError(1002, 'close frame body of 1 byte');
  const code = payload.readUInt16BE(0);
  if (!isValidCloseCode(code)) return wsProtocolError(1002, `invalid close code ${code}`);
  const reasonBytes = payload.subarray(2);
  if (!isUtf8(reasonBytes)) return wsProtocolError(1007, 'close reason is not valid UTF-8');
  return { kind: 'close', code, reason: reasonBytes.toString('utf8') };
}

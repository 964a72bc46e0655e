import { randomBytes } from 'node:crypto';
import { isValidCloseCode, MAX_CLOSE_REASON_BYTES } from './close-codes.js';
import { applyMask } from './mask.js';
import { Opcode } from './opcodes.js';

/**
 * How to mask a frame: `true` for a fresh random key (what a client must do, RFC 6455
 * section 5.3), a 4-byte Buffer to use that key (deterministic tests), `false`/unset for no mask
 * (what a server must do).
 */
export type MaskOption = Buffer | boolean | undefined;

/** What {@link encodeFrame} encodes. */
export interface FrameSpec {
  /** @default true */
  fin?: boolean;
  /** RSV1..RSV3 as a 3-bit number. @default 0 */
  rsv?: number;
  opcode: number;
  /** Strings are encoded as UTF-8. @default empty */
  payload?: Buffer | string;
  /** @default undefined (not masked) */
  mask?: MaskOption;
}

/** Header fields for {@link encodeFrameHeader}. */
export interface FrameHeaderSpec {
  fin: boolean;
  rsv: number;
  opcode: number;
  payloadLength: number;
  /** The 4-byte masking key, or null for an unmasked frame. */
  maskKey: Buffer | null;
}

const EMPTY = Buffer.alloc(0);

/** Resolves a {@link MaskOption} to a key (or null). Throws RangeError for a key that is not 4 bytes. */
export function resolveMaskKey(mask: MaskOption): Buffer | null {
  if (mask === undefined || mask === false) return null;
  if (mask === true) return randomBytes(4);
  if (mask.length !== 4) throw new RangeError(`a masking key is 4 bytes, got ${mask.length}`);
  return mask;
}

/**
 * Encodes a frame header (RFC 6455 section 5.2) using the shortest length form. Writing the header
 * and an unmasked payload separately (cork, write, write, uncork) avoids copying big payloads.
 * Throws RangeError for fields that cannot be represented (opcode > 15, rsv > 7, bad length).
 */
export function encodeFrameHeader(spec: FrameHeaderSpec): Buffer {
  const { fin, rsv, opcode, payloadLength, maskKey } = spec;
  if (!Number.isInteger(opcode) || opcode < 0 || opcode > 0xf) throw new RangeError(`opcode ${opcode} is not 0..15`);
  if (!Number.isInteger(rsv) || rsv < 0 || rsv > 7) throw new RangeError(`rsv ${rsv} is not 0..7`);
  if (!Number.isSafeInteger(payloadLength) || payloadLength < 0) {
    throw new RangeError(`payload length ${payloadLength} is not a non-negative safe integer`);
  }
  const lengthBytes = payloadLength < 126 ? 0 : payloadLength <= 0xffff ? 2 : 8;
  const header = Buffer.allocUnsafe(2 + lengthBytes + (maskKey === null ? 0 : 4));
  header[0] = (fin ? 0x80 : 0) | (rsv << 4) | opcode;
  const maskBit = maskKey === null ? 0 : 0x80;
  if (lengthBytes === 0) {
    header[1] = maskBit | payloadLength;
  } else if (lengthBytes === 2) {
    header[1] = maskBit | 126;
    header.writeUInt16BE(payloadLength, 2);
  } else {
    header[1] = maskBit | 127;
    header.writeUInt32BE(Math.floor(payloadLength / 2 ** 32), 2);
    header.writeUInt32BE(payloadLength >>> 0, 6);
  }
  if (maskKey !== null) maskKey.copy(header, 2 + lengthBytes);
  return header;
}

/**
 * Encodes one frame into a single Buffer. It encodes exactly what it is given, including frames the
 * RFC forbids (a fragmented ping, a 200-byte close, a reserved opcode), because tests need to send
 * those; the helpers below ({@link encodeClose}, {@link encodePing}, {@link encodePong}) validate.
 * The payload is never modified: masking works on a copy.
 */
export function encodeFrame(spec: FrameSpec): Buffer {
  const payload = toBuffer(spec.payload);
  const maskKey = resolveMaskKey(spec.mask);
  const header = encodeFrameHeader({
    fin: spec.fin ?? true,
    rsv: spec.rsv ?? 0,
    opcode: spec.opcode,
    payloadLength: payload.length,
    maskKey,
  });
  const frame = Buffer.allocUnsafe(header.length + payload.length);
  header.copy(frame, 0);
  payload.copy(frame, header.length);
  if (maskKey !== null) applyMask(frame.subarray(header.length), maskKey);
  return frame;
}

/**
 * Encodes a close frame (RFC 6455 section 5.5.1). Without a code the body is empty. The reason is
 * cut to 123 bytes at a character boundary, so a long reason never makes an invalid frame.
 * Throws RangeError for a code that may not be sent (1005, 1006, 999, ...).
 */
export function encodeClose(code?: number, reason = '', mask?: MaskOption): Buffer {
  if (code === undefined) return encodeFrame({ opcode: Opcode.CLOSE, mask });
  if (!isValidCloseCode(code)) throw new RangeError(`close code ${code} may not be sent (RFC 6455 section 7.4)`);
  const reasonBytes = truncateUtf8(reason, MAX_CLOSE_REASON_BYTES);
  const body = Buffer.allocUnsafe(2 + reasonBytes.length);
  body.writeUInt16BE(code, 0);
  reasonBytes.copy(body, 2);
  return encodeFrame({ opcode: Opcode.CLOSE, payload: body, mask });
}

/** Encodes a ping. Throws RangeError for a payload over 125 bytes (RFC 6455 section 5.5). */
export function encodePing(payload: Buffer | string = EMPTY, mask?: MaskOption): Buffer {
  return encodeControl(Opcode.PING, payload, mask);
}

/** Encodes a pong; answer a ping with the ping's payload (RFC 6455 section 5.5.3). */
export function encodePong(payload: Buffer | string = EMPTY, mask?: MaskOption): Buffer {
  return encodeControl(Opcode.PONG, payload, mask);
}

/** Encodes a single-frame text message. */
export function encodeText(text: string, mask?: MaskOption): Buffer {
  return encodeFrame({ opcode: Opcode.TEXT, payload: text, mask });
}

/** Encodes a single-frame binary message. */
export function encodeBinary(data: Buffer, mask?: MaskOption): Buffer {
  return encodeFrame({ opcode: Opcode.BINARY, payload: data, mask });
}

function encodeControl(opcode: number, payload: Buffer | string, mask: MaskOption): Buffer {
  const body = toBuffer(payload);
  if (body.length > 125) throw new RangeError(`control frame payload of ${body.length} bytes exceeds 125`);
  return encodeFrame({ opcode, payload: body, mask });
}

function toBuffer(payload: Buffer | string | undefined): Buffer {
  if (payload === undefined) return EMPTY;
  return typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
}

/** The UTF-8 bytes of `text`, cut to at most `maxBytes` without splitting a character. */
function truncateUtf8(text: string, maxBytes: number): Buffer {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= maxBytes) return bytes;
  let end = maxBytes;
  // Back up over continuation bytes (10xxxxxx) to the start of the character that would be cut.
  while (end > 0 && (bytes[end] & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end);
}

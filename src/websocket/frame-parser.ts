import { applyMask } from './mask.js';
import { isControlOpcode, isKnownOpcode } from './opcodes.js';
import { wsProtocolError, type WsProtocolError } from './protocol-error.js';

/**
 * The largest frame payload a {@link FrameParser} accepts unless told otherwise: 64 MiB.
 * A bigger frame is reported as a 1009 (message too big) error before any of its payload is buffered.
 */
export const DEFAULT_MAX_PAYLOAD = 64 * 1024 * 1024;

/** One decoded frame (RFC 6455 section 5.2). */
export interface Frame {
  readonly kind: 'frame';
  readonly fin: boolean;
  /** RSV1..RSV3 as a 3-bit number (RSV1 is 0b100). Non-zero only when an extension allows it. */
  readonly rsv: number;
  readonly opcode: number;
  /** Whether the frame was masked on the wire; `payload` is always unmasked. */
  readonly masked: boolean;
  readonly payload: Buffer;
}

/** What {@link FrameParser.next} yields. Check `kind` to tell them apart. */
export type FrameResult = Frame | WsProtocolError;

/** Options for {@link FrameParser}. */
export interface FrameParserOptions {
  /**
   * Largest payload accepted for one frame, in bytes.
   * @default DEFAULT_MAX_PAYLOAD (64 MiB)
   */
  maxPayload?: number;
  /**
   * `true` on the server side: every frame from a client must be masked (RFC 6455 section 5.1).
   * `false` on the client side: frames from a server must not be. Leave unset to accept both
   * (for a tool that only inspects frames).
   * @default undefined
   */
  expectMasked?: boolean;
}

interface PendingHeader {
  fin: boolean;
  rsv: number;
  opcode: number;
  maskKey: Buffer | null;
  length: number;
}

const EMPTY = Buffer.alloc(0);
const TWO_TO_THE_32 = 2 ** 32;

/**
 * An incremental RFC 6455 frame parser. Feed it Buffers split anywhere with {@link push} and pull
 * frames with {@link next} (or do both with {@link feed}). It never throws on bad input: a protocol
 * violation comes out once as a {@link WsProtocolError} carrying the close code to send, after which
 * the parser is failed and ignores further input. It does not judge RSV bits (that depends on the
 * negotiated extensions) nor fragmentation order (see `MessageAssembler`).
 *
 * Memory is bounded by `maxPayload` plus one frame header plus whatever the caller pushes
 * before pulling; the caller is expected to pull after every push.
 */
export class FrameParser {
  readonly maxPayload: number;
  readonly expectMasked: boolean | undefined;
  #chunks: Buffer[] = [];
  #buffered = 0;
  #header: PendingHeader | null = null;
  #error: WsProtocolError | null = null;
  #errorReported = false;

  constructor(options: FrameParserOptions = {}) {
    this.maxPayload = options.maxPayload ?? DEFAULT_MAX_PAYLOAD;
    this.expectMasked = options.expectMasked;
  }

  /** Bytes received but not yet returned as part of a frame. */
  get bufferedBytes(): number {
    return this.#buffered;
  }

  /** The protocol error that stopped this parser, or null while it is healthy. */
  get error(): WsProtocolError | null {
    return this.#error;
  }

  /** Appends received bytes. The parser keeps a reference; do not modify `chunk` afterwards. */
  push(chunk: Buffer): void {
    if (this.#error !== null || chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
  }

  /**
   * The next complete frame, a protocol error (returned once), or null when more bytes are needed
   * (or after the error has been returned).
   */
  next(): FrameResult | null {
    if (this.#error !== null) {
      if (this.#errorReported) return null;
      this.#errorReported = true;
      return this.#error;
    }
    if (this.#header === null) {
      const header = this.#readHeader();
      if (header === null) return this.#error === null ? null : this.next();
      this.#header = header;
    }
    const header = this.#header;
    if (this.#buffered < header.length) return null;
    this.#header = null;
    let payload: Buffer;
    if (header.length === 0) {
      payload = EMPTY;
    } else if (header.maskKey !== null) {
      payload = Buffer.allocUnsafe(header.length);
      this.#consumeInto(payload);
      applyMask(payload, header.maskKey);
    } else {
      payload = this.#consume(header.length);
    }
    return {
      kind: 'frame',
      fin: header.fin,
      rsv: header.rsv,
      opcode: header.opcode,
      masked: header.maskKey !== null,
      payload,
    };
  }

  /** {@link push} then collect every available result; the array ends with the error, if one occurs. */
  feed(chunk: Buffer): FrameResult[] {
    this.push(chunk);
    const results: FrameResult[] = [];
    for (let r = this.next(); r !== null; r = this.next()) {
      results.push(r);
      if (r.kind === 'error') break;
    }
    return results;
  }

  #fail(closeCode: WsProtocolError['closeCode'], reason: string): null {
    this.#error = wsProtocolError(closeCode, reason);
    this.#chunks = [];
    this.#buffered = 0;
    return null;
  }

  /** Parses and consumes a frame header once all of it is buffered (RFC 6455 section 5.2). */
  #readHeader(): PendingHeader | null {
    if (this.#buffered < 2) return null;
    const first = this.#peek(2);
    const b0 = first[0];
    const b1 = first[1];
    const fin = (b0 & 0x80) !== 0;
    const rsv = (b0 >> 4) & 0x7;
    const opcode = b0 & 0x0f;
    const masked = (b1 & 0x80) !== 0;
    const length7 = b1 & 0x7f;

    if (!isKnownOpcode(opcode)) {
      return this.#fail(1002, `reserved opcode 0x${opcode.toString(16)}`);
    }
    if (isControlOpcode(opcode)) {
      // Section 5.5: control frames MUST have a payload of 125 bytes or less and MUST NOT be fragmented.
      if (!fin) return this.#fail(1002, 'fragmented control frame');
      if (length7 > 125) return this.#fail(1002, 'control frame payload over 125 bytes');
    }
    if (this.expectMasked === true && !masked) return this.#fail(1002, 'unmasked frame from client');
    if (this.expectMasked === false && masked) return this.#fail(1002, 'masked frame from server');

    const lengthBytes = length7 === 126 ? 2 : length7 === 127 ? 8 : 0;
    const headerLength = 2 + lengthBytes + (masked ? 4 : 0);
    if (this.#buffered < headerLength) return null;
    const head = this.#peek(headerLength);

    let length = length7;
    if (length7 === 126) {
      length = head.readUInt16BE(2);
    } else if (length7 === 127) {
      const high = head.readUInt32BE(2);
      // Section 5.2: "the most significant bit MUST be 0".
      if ((high & 0x80000000) !== 0) return this.#fail(1002, '64-bit payload length with the top bit set');
      length = high * TWO_TO_THE_32 + head.readUInt32BE(6);
    }
    if (length > this.maxPayload) {
      return this.#fail(1009, `frame payload of ${length} bytes exceeds the limit of ${this.maxPayload}`);
    }
    const maskKey = masked ? Buffer.from(head.subarray(headerLength - 4, headerLength)) : null;
    this.#skip(headerLength);
    return { fin, rsv, opcode, maskKey, length };
  }

  /** The first `n` buffered bytes without consuming them (a copy only when they span chunks). */
  #peek(n: number): Buffer {
    const first = this.#chunks[0];
    if (first.length >= n) return first.subarray(0, n);
    const out = Buffer.allocUnsafe(n);
    let offset = 0;
    for (const chunk of this.#chunks) {
      offset += chunk.copy(out, offset, 0, Math.min(chunk.length, n - offset));
      if (offset === n) break;
    }
    return out;
  }

  #skip(n: number): void {
    this.#buffered -= n;
    while (n > 0) {
      const first = this.#chunks[0];
      if (first.length <= n) {
        this.#chunks.shift();
        n -= first.length;
      } else {
        this.#chunks[0] = first.subarray(n);
        n = 0;
      }
    }
  }

  /** Removes and returns `n` bytes; a view of the pushed chunk when they lie in one. */
  #consume(n: number): Buffer {
    const first = this.#chunks[0];
    if (first.length >= n) {
      const out = first.subarray(0, n);
      this.#skip(n);
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    this.#consumeInto(out);
    return out;
  }

  /** Fills `out` with the next `out.length` buffered bytes and consumes them. */
  #consumeInto(out: Buffer): void {
    let offset = 0;
    while (offset < out.length) {
      const first = this.#chunks[0];
      const take = Math.min(first.length, out.length - offset);
      first.copy(out, offset, 0, take);
      offset += take;
      this.#skip(take);
    }
  }
}

import { isUtf8 } from 'node:buffer';
import type { Frame } from './frame-parser.js';
import { isControlOpcode, Opcode } from './opcodes.js';
import { wsProtocolError, type WsProtocolError } from './protocol-error.js';

/** The largest reassembled message a {@link MessageAssembler} accepts unless told otherwise: 64 MiB. */
export const DEFAULT_MAX_MESSAGE_SIZE = 64 * 1024 * 1024;

/** A complete data message, reassembled from one or more frames. */
export interface Message {
  readonly kind: 'message';
  readonly opcode: typeof Opcode.TEXT | typeof Opcode.BINARY;
  /** The RSV bits of the first frame (extensions such as permessage-deflate mark messages there). */
  readonly rsv: number;
  readonly data: Buffer;
  /** How many frames carried it. */
  readonly frames: number;
}

/** Options for {@link MessageAssembler}. */
export interface MessageAssemblerOptions {
  /**
   * Largest total message size, in bytes; a bigger message fails with 1009.
   * @default DEFAULT_MAX_MESSAGE_SIZE (64 MiB)
   */
  maxMessageSize?: number;
  /**
   * Check that text messages are valid UTF-8 and fail with 1007 otherwise (RFC 6455 section 8.1).
   * Turn it off only when an extension (compression) changes the payload bytes.
   * @default true
   */
  validateUtf8?: boolean;
}

/**
 * Reassembles fragmented data messages (RFC 6455 section 5.4): a text or binary frame with FIN
 * clear starts a message, continuation frames extend it, the one with FIN set ends it. Control
 * frames may arrive between fragments and are handed back at once, unchanged. Never throws: a
 * continuation with nothing to continue, a new data frame in the middle of a message, an oversize
 * message or invalid UTF-8 text come out once as a {@link WsProtocolError}; the assembler then
 * ignores everything.
 */
export class MessageAssembler {
  readonly maxMessageSize: number;
  readonly validateUtf8: boolean;
  #opcode: typeof Opcode.TEXT | typeof Opcode.BINARY | null = null;
  #rsv = 0;
  #fragments: Buffer[] = [];
  #size = 0;
  #failed = false;

  constructor(options: MessageAssemblerOptions = {}) {
    this.maxMessageSize = options.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE;
    this.validateUtf8 = options.validateUtf8 ?? true;
  }

  /** Whether a fragmented message has started and not yet ended. */
  get inMessage(): boolean {
    return this.#opcode !== null;
  }

  /**
   * Takes the next frame. Returns a complete {@link Message}, the frame itself when it is a control
   * frame, a {@link WsProtocolError}, or null when the frame was a fragment of an unfinished message
   * (or the assembler has already failed).
   */
  push(frame: Frame): Message | Frame | WsProtocolError | null {
    if (this.#failed) return null;
    if (isControlOpcode(frame.opcode)) return frame;

    if (frame.opcode === Opcode.CONTINUATION) {
      if (this.#opcode === null) return this.#fail(1002, 'continuation frame without a message to continue');
    } else {
      if (this.#opcode !== null) return this.#fail(1002, 'new data frame before the fragmented message ended');
      if (frame.opcode !== Opcode.TEXT && frame.opcode !== Opcode.BINARY) {
        return this.#fail(1002, `unexpected opcode 0x${frame.opcode.toString(16)}`);
      }
      if (frame.fin) return this.#complete(frame.opcode, frame.rsv, frame.payload, 1);
      this.#opcode = frame.opcode;
      this.#rsv = frame.rsv;
    }

    this.#size += frame.payload.length;
    if (this.#size > this.maxMessageSize) {
      return this.#fail(1009, `message exceeds the limit of ${this.maxMessageSize} bytes`);
    }
    this.#fragments.push(frame.payload);
    if (!frame.fin) return null;

    const opcode = this.#opcode!;
    const count = this.#fragments.length;
    const data = count === 1 ? this.#fragments[0]! : Buffer.concat(this.#fragments, this.#size);
    this.#opcode = null;
    this.#fragments = [];
    this.#size = 0;
    return this.#complete(opcode, this.#rsv, data, count);
  }

  #complete(opcode: Message['opcode'], rsv: number, data: Buffer, frames: number): Message | WsProtocolError {
    if (data.length > this.maxMessageSize) {
      return this.#fail(1009, `message exceeds the limit of ${this.maxMessageSize} bytes`);
    }
    if (opcode === Opcode.TEXT && this.validateUtf8 && !isUtf8(data)) {
      return this.#fail(1007, 'text message is not valid UTF-8');
    }
    return { kind: 'message', opcode, rsv, data, frames };
  }

  #fail(closeCode: WsProtocolError['closeCode'], reason: string): WsProtocolError {
    this.#failed = true;
    this.#opcode = null;
    this.#fragments = [];
    this.#size = 0;
    return wsProtocolError(closeCode, reason);
  }
}

/**
 * Follows frame boundaries in one direction of a WebSocket tunnel without parsing payloads, so
 * that a transparent tunnel can tell where it may insert a frame of its own (a close 1001 on drain
 * or shutdown) without splitting one, count messages and see the first close frame's status code
 * (the access log's $websocket_* variables). Each header is read whole before a byte of it is
 * passed on, so that a frame can be refused before anything of it leaves the proxy
 * (websocket_max_frame_size, websocket_max_message_size). A header split across reads is held
 * back until it is complete (at most 14 bytes, plus the two bytes of a close frame's status code,
 * RFC 6455 5.5.1); payload bytes are skipped by count, never copied. The native addon follows the
 * same rules in C (native/sluice_tunnel.c, cur_walk).
 */
import { Opcode } from './opcodes.js';

/** Which limit a frame broke. */
export type FrameViolation = 'frame' | 'message' | 'rate';

/** Asked at the first frame of each data message (websocket_message_rate): whether it may pass now. */
export interface MessageGate {
  take(): boolean;
  /** Over the rate, the message is a violation ('rate') rather than held back. */
  readonly settings: { readonly close: boolean };
}

/** The limits of one direction, in payload bytes as on the wire; 0: none. */
export interface FrameLimits {
  readonly maxFrame: number;
  readonly maxMessage: number;
}

const NOTHING = Buffer.alloc(0);

/** {@link FrameGuard.state} of a guard that has read nothing yet: at a frame boundary, no message begun. */
export const START_CURSOR: readonly number[] = Object.freeze([0, 2, 0, 0, 0, 0, 0]);

export class FrameGuard {
  readonly #maxFrame: number;
  readonly #maxMessage: number;
  /** The start of a header (or close frame) that the last chunk ended inside. */
  #held: Buffer | null = null;
  /** Payload bytes of the current frame still to pass. */
  #remaining = 0;
  /** Payload bytes of the data message in progress, its earlier fragments. */
  #message = 0;
  #closeSeen = false;
  #own = false;
  /** The held bytes were passed on already (a tunnel without guardrails): kept for reading the header only. */
  #heldPassed = false;
  /** Bytes at the start of the data being walked that were passed on with an earlier chunk. */
  #passed = 0;
  /** Data messages whose final frame went by. */
  messages = 0;
  /** The status code of the first close frame: 1005 when it has none (RFC 6455 7.1.5); 0 before one. */
  closeCode = 0;
  /**
   * The payload of the ping Sluice sent to this side (websocket_ping_interval): a pong carrying it
   * answers Sluice, not the other endpoint, and is taken out of the stream. null: none awaited.
   */
  pongToken: Buffer | null = null;
  /** Pongs to Sluice's pings taken out so far. */
  pongs = 0;
  /** websocket_message_rate of this direction, or null. */
  gate: MessageGate | null = null;
  /** A message was held back at its first header for the rate: feed again (an empty chunk will do) once a token is due. */
  blocked = false;
  /** Set when a frame broke a limit: nothing from that frame on may pass. */
  violation: FrameViolation | null = null;
  /** The payload length announced by the frame that broke the limit (with the message's earlier fragments). */
  violationSize = 0;

  /**
   * Whether a header is held back until it is whole (a guardrail may refuse its frame, hold its
   * message back or take it out). Without guardrails, bytes pass as they come, the bytes of a header
   * cut by the end of a read passing too (a tunnel may carry anything, frames or not): the guard
   * keeps a copy only to read the header.
   */
  readonly holdsHeaders: boolean;

  constructor(limits: FrameLimits, holdsHeaders = limits.maxFrame > 0 || limits.maxMessage > 0) {
    this.#maxFrame = limits.maxFrame;
    this.#maxMessage = limits.maxMessage;
    this.holdsHeaders = holdsHeaders;
  }

  /**
   * True once the header of a close frame passed: this side started (or answered) the close
   * handshake, which is who ended the session, whichever TCP connection closes first (RFC 6455
   * 7.1.1: the server closes first, also when the client asked).
   */
  get closeSeen(): boolean {
    return this.#closeSeen;
  }

  /** True between frames, as far as the bytes passed on go (held header bytes were never passed). */
  get atBoundary(): boolean {
    return this.#remaining === 0 && !(this.#held !== null && this.#heldPassed);
  }

  /** Bytes of a header are held back, read but not passed on. */
  get holding(): boolean {
    return this.#held !== null;
  }

  /**
   * The state, for the native addon's cursor when it takes the tunnel (never while `holding`):
   * [have, need, len7, masked, extended, remaining, payload bytes of the data message in progress].
   */
  state(): number[] {
    return [0, 2, 0, 0, 0, this.#remaining, this.#message];
  }

  /**
   * Going away: passes bytes up to the end of the frame in flight and returns that offset (0 when at
   * a boundary), or -1 when the chunk ends inside the frame. Held header bytes are dropped: they
   * belong to a frame that never started on the other side.
   */
  advanceToBoundary(chunk: Buffer): number {
    this.blocked = false;
    if (this.#held !== null && this.#heldPassed) return this.#finishPassedFrame(chunk);
    this.#held = null;
    if (this.#remaining === 0) return 0;
    if (chunk.length < this.#remaining) {
      this.#remaining -= chunk.length;
      return -1;
    }
    const cut = this.#remaining;
    this.#remaining = 0;
    return cut;
  }

  /**
   * Walks `chunk` (after any bytes held from the last one) and returns what may be passed on: all
   * of it, less a header it ends inside (held for the next chunk), or, when a frame breaks a limit
   * (`violation` set), the bytes before that frame's header.
   */
  feed(chunk: Buffer): Buffer {
    if (this.violation !== null) return NOTHING;
    this.blocked = false;
    let data = chunk;
    // Whether `data` is a buffer of this guard's own (held before), which may be held again as it is.
    this.#own = this.#held !== null;
    this.#passed = 0;
    if (this.#held !== null) {
      data = chunk.length === 0 ? this.#held : Buffer.concat([this.#held, chunk]);
      if (this.#heldPassed) this.#passed = this.#held.length;
      this.#held = null;
      this.#heldPassed = false;
    }
    const n = data.length;
    let i = 0;
    /** Pieces kept when a pong to Sluice was taken out, and where the next piece starts. */
    let parts: Buffer[] | null = null;
    let from = 0;
    while (i < n) {
      if (this.#remaining > 0) {
        const take = Math.min(this.#remaining, n - i);
        this.#remaining -= take;
        i += take;
        continue;
      }
      const start = i;
      if (n - start < 2) return joined(parts, this.#hold(data, start), from);
      const b0 = data[start] as number;
      const b1 = data[start + 1] as number;
      const len7 = b1 & 0x7f;
      const masked = (b1 & 0x80) !== 0;
      const ext = len7 === 126 ? 2 : len7 === 127 ? 8 : 0;
      const headerLength = 2 + ext + (masked ? 4 : 0);
      if (n - start < headerLength) return joined(parts, this.#hold(data, start), from);
      const length = len7 === 126 ? data.readUInt16BE(start + 2)
        : len7 === 127 ? data.readUInt32BE(start + 2) * 0x1_0000_0000 + data.readUInt32BE(start + 6) : len7;
      const opcode = b0 & 0x0f;
      const fin = (b0 & 0x80) !== 0;
      if (this.#maxFrame > 0 && length > this.#maxFrame) return joined(parts, this.#refuse(data, start, 'frame', length), from);
      if (opcode < Opcode.CLOSE) {
        // Control frames (RFC 6455 5.5: at most 125 bytes, between fragments) belong to no message.
        const total = (opcode === Opcode.CONTINUATION ? this.#message : 0) + length;
        if (this.#maxMessage > 0 && total > this.#maxMessage) return joined(parts, this.#refuse(data, start, 'message', total), from);
        if (opcode !== Opcode.CONTINUATION && this.gate !== null && !this.gate.take()) {
          if (this.gate.settings.close) return joined(parts, this.#refuse(data, start, 'rate', 0), from);
          this.blocked = true;
          return joined(parts, this.#hold(data, start), from);
        }
        this.#message = fin ? 0 : total;
        if (fin) this.messages++;
      } else if (opcode === Opcode.CLOSE && !this.#closeSeen) {
        if (length >= 2 && n - start < headerLength + 2) return joined(parts, this.#hold(data, start), from);
        this.#closeSeen = true;
        this.closeCode = length < 2 ? 1005 : closeCodeAt(data, start + headerLength, masked ? start + headerLength - 4 : -1);
      } else if (opcode === Opcode.CLOSE) {
        this.#closeSeen = true;
      } else if (opcode === Opcode.PONG && this.pongToken !== null && length === this.pongToken.length) {
        if (n - start < headerLength + length) return joined(parts, this.#hold(data, start), from);
        if (payloadIs(data, start + headerLength, masked ? start + headerLength - 4 : -1, this.pongToken)) {
          this.pongToken = null;
          this.pongs++;
          (parts ??= []).push(data.subarray(from, start));
          i = from = start + headerLength + length;
          continue;
        }
      }
      this.#remaining = length;
      i = start + headerLength;
    }
    return parts === null ? data.subarray(this.#passed) : joined(parts, data, from);
  }

  /** advanceToBoundary where a header was cut and passed on: its frame ends where the whole header says. */
  #finishPassedFrame(chunk: Buffer): number {
    const had = (this.#held as Buffer).length;
    const data = Buffer.concat([this.#held as Buffer, chunk]);
    this.#held = null;
    const end = frameEnd(data);
    if (end < 0) {
      this.#held = data;
      return -1;
    }
    if (end - had <= chunk.length) return end - had;
    this.#remaining = end - data.length;
    return -1;
  }

  #hold(data: Buffer, start: number): Buffer {
    if (!this.holdsHeaders) {
      this.#held = Buffer.from(data.subarray(start));
      this.#heldPassed = true;
      return data.subarray(this.#passed);
    }
    this.#heldPassed = false;
    // A message held back for the rate is fed again as it is: no copy of what is already a copy.
    this.#held = start === 0 && this.#own ? data : Buffer.from(data.subarray(start));
    return data.subarray(0, start);
  }

  #refuse(data: Buffer, start: number, violation: FrameViolation, size: number): Buffer {
    this.violation = violation;
    this.violationSize = size;
    return data.subarray(0, start);
  }
}

/** The length of the frame at the start of `data` (header and payload), or -1 when its header is not whole. */
function frameEnd(data: Buffer): number {
  if (data.length < 2) return -1;
  const len7 = (data[1] as number) & 0x7f;
  const headerLength = 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + ((data[1] as number) & 0x80 ? 4 : 0);
  if (data.length < headerLength) return -1;
  const length = len7 === 126 ? data.readUInt16BE(2) : len7 === 127 ? data.readUInt32BE(2) * 0x1_0000_0000 + data.readUInt32BE(6) : len7;
  return headerLength + length;
}

/** `upTo` (what may pass of `data`), less the pieces taken out before `from`. */
function joined(parts: Buffer[] | null, upTo: Buffer, from: number): Buffer {
  if (parts === null) return upTo;
  parts.push(upTo.subarray(from));
  return Buffer.concat(parts);
}

/** Whether the payload at `at` (masked with the key at `keyAt`, -1: not masked) is `token`. */
function payloadIs(data: Buffer, at: number, keyAt: number, token: Buffer): boolean {
  for (let j = 0; j < token.length; j++) {
    const b = (data[at + j] as number) ^ (keyAt >= 0 ? data[keyAt + (j & 3)] as number : 0);
    if (b !== token[j]) return false;
  }
  return true;
}

/** The status code at `at`, unmasked with the key at `keyAt` (-1: not masked). */
function closeCodeAt(data: Buffer, at: number, keyAt: number): number {
  let hi = data[at] as number;
  let lo = data[at + 1] as number;
  if (keyAt >= 0) {
    hi ^= data[keyAt] as number;
    lo ^= data[keyAt + 1] as number;
  }
  return hi * 256 + lo;
}

/**
 * The bytes the load driver writes and the little it needs to read: a fixed handshake request,
 * client frames built and masked once (the same buffer is written for every message, so the
 * driver spends nothing per message on framing), and a counter that walks server frames without
 * copying payloads.
 */

/** RFC 6455 1.3's sample key; its accept value is checked by the proxies that check. */
export const WS_KEY = 'dGhlIHNhbXBsZSBub25jZQ==';

export function handshakeRequest(host: string, path: string): Buffer {
  return Buffer.from(
    `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${WS_KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    'latin1',
  );
}

const MASK = Buffer.from([0x37, 0xfa, 0x21, 0x3d]);

/** One masked client frame with FIN set (RFC 6455 5.2). */
export function maskedFrame(opcode: number, payload: Buffer): Buffer {
  const len = payload.length;
  const ext = len < 126 ? 0 : len < 65536 ? 2 : 8;
  const head = 2 + ext + 4;
  const out = Buffer.allocUnsafe(head + len);
  out[0] = 0x80 | opcode;
  if (ext === 0) out[1] = 0x80 | len;
  else if (ext === 2) {
    out[1] = 0x80 | 126;
    out.writeUInt16BE(len, 2);
  } else {
    out[1] = 0x80 | 127;
    out.writeBigUInt64BE(BigInt(len), 2);
  }
  MASK.copy(out, 2 + ext);
  for (let i = 0; i < len; i++) out[head + i] = payload[i]! ^ MASK[i & 3]!;
  return out;
}

/** A binary message of `size` bytes, masked, ready to write any number of times. */
export function binaryMessage(size: number): Buffer {
  const payload = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) payload[i] = (i * 31 + 7) & 0xff;
  return maskedFrame(0x2, payload);
}

/** A masked close frame with status 1000. */
export const CLOSE_FRAME = maskedFrame(0x8, Buffer.from([0x03, 0xe8]));

/**
 * Walks the server-to-client frame stream and counts completed data messages. Payload bytes are
 * skipped, never copied; only a header split across reads is buffered (at most 14 bytes).
 */
export class FrameCounter {
  #head = Buffer.alloc(14);
  #have = 0;
  #need = 2;
  #left = 0;
  #byte0 = 0;
  /** A close frame arrived. */
  closed = false;
  /** Payload bytes of data frames seen. */
  payloadBytes = 0;
  /** Control or unexpected frames seen (pings, pongs, unknown opcodes). */
  other = 0;

  /** Feeds bytes from `start`; returns how many data messages completed in them. */
  feed(buf: Buffer, start = 0): number {
    let done = 0;
    let i = start;
    const n = buf.length;
    while (i < n) {
      if (this.#left > 0) {
        const take = Math.min(this.#left, n - i);
        this.#left -= take;
        i += take;
        if ((this.#byte0 & 0x0f) < 3) this.payloadBytes += take;
        if (this.#left === 0) done += this.#finish();
        continue;
      }
      this.#head[this.#have++] = buf[i++]!;
      if (this.#have === 2) {
        const b1 = this.#head[1]!;
        const len7 = b1 & 0x7f;
        this.#need = 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + (b1 & 0x80 ? 4 : 0);
      }
      if (this.#have >= 2 && this.#have === this.#need) {
        const h = this.#head;
        const len7 = h[1]! & 0x7f;
        const len = len7 === 126 ? h.readUInt16BE(2) : len7 === 127 ? Number(h.readBigUInt64BE(2)) : len7;
        this.#byte0 = h[0]!;
        this.#have = 0;
        this.#need = 2;
        this.#left = len;
        if (len === 0) done += this.#finish();
      }
    }
    return done;
  }

  #finish(): number {
    const fin = (this.#byte0 & 0x80) !== 0;
    const op = this.#byte0 & 0x0f;
    if (op === 0x8) {
      this.closed = true;
      return 0;
    }
    if (op < 3) return fin ? 1 : 0;
    this.other++;
    return 0;
  }
}

/**
 * Follows frame boundaries in a WebSocket byte stream without parsing payloads, so a transparent
 * tunnel can tell where it may insert a frame of its own (a close 1001 on drain or shutdown)
 * without splitting one. Only frame headers are read; payload bytes are skipped by count.
 */
export class FrameCursor {
  /** Header bytes seen so far of the frame being read (0 at a boundary). */
  #headerHave = 0;
  /** Header length once known (2 until the second byte says more). */
  #headerNeed = 2;
  /** The 7-bit length and mask bit, from the second header byte. */
  #len7 = 0;
  #masked = false;
  /** Extended length bytes collected (big-endian). */
  #extended = 0;
  /** Payload bytes still to skip. */
  #remaining = 0;
  #closeSeen = false;

  /**
   * True once the header of a close frame went by: this side started (or answered) the close
   * handshake, which is who ended the session, whichever TCP connection closes first (RFC 6455
   * 7.1.1: the server closes first, also when the client asked).
   */
  get closeSeen(): boolean {
    return this.#closeSeen;
  }

  /** True between frames. */
  get atBoundary(): boolean {
    return this.#headerHave === 0 && this.#remaining === 0;
  }

  /** The state, for the native tunnel's cursor: [have, need, len7, masked, extended, remaining]. */
  state(): number[] {
    return [this.#headerHave, this.#headerNeed, this.#len7, this.#masked ? 1 : 0, this.#extended, this.#remaining];
  }

  /** Advances over the whole chunk. */
  advance(chunk: Buffer): void {
    this.#walk(chunk, false);
  }

  /**
   * Advances until the first frame boundary at or after the start of `chunk` and returns its
   * offset (0 when already at one), or -1 when the chunk ends inside a frame (all consumed).
   */
  advanceToBoundary(chunk: Buffer): number {
    if (this.atBoundary) return 0;
    return this.#walk(chunk, true);
  }

  #walk(chunk: Buffer, stopAtBoundary: boolean): number {
    let i = 0;
    const n = chunk.length;
    while (i < n) {
      if (this.#remaining > 0) {
        const take = Math.min(this.#remaining, n - i);
        this.#remaining -= take;
        i += take;
        if (this.#remaining === 0 && stopAtBoundary) return i;
        continue;
      }
      // Reading a header.
      const b = chunk[i++] as number;
      const at = this.#headerHave++;
      if (at === 0) {
        if ((b & 0x0f) === 0x8) this.#closeSeen = true;
      } else if (at === 1) {
        this.#masked = (b & 0x80) !== 0;
        this.#len7 = b & 0x7f;
        const ext = this.#len7 === 126 ? 2 : this.#len7 === 127 ? 8 : 0;
        this.#headerNeed = 2 + ext + (this.#masked ? 4 : 0);
        this.#extended = 0;
      } else if (at >= 2 && at < 2 + (this.#len7 === 126 ? 2 : this.#len7 === 127 ? 8 : 0)) {
        this.#extended = this.#extended * 256 + b;
      }
      if (this.#headerHave === this.#headerNeed) {
        this.#remaining = this.#len7 < 126 ? this.#len7 : this.#extended;
        this.#headerHave = 0;
        this.#headerNeed = 2;
        if (this.#remaining === 0 && stopAtBoundary) return i;
      }
    }
    return this.atBoundary && stopAtBoundary ? n : -1;
  }
}

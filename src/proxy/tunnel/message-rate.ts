/**
 * websocket_message_rate: a token bucket per direction of a WebSocket tunnel. Each data message
 * takes a token when its first frame's header is read; the bucket holds `burst` tokens (at least
 * one) and refills at `rate` per second. Without a token the relay stops before that header (it
 * holds the bytes and pauses reading the sender: backpressure, nothing lost) until one is due, or,
 * with `close`, ends the tunnel with 1008 to the sender.
 */
import type { WebSocketMessageRate } from '../../config/types.js';

/** The directive's settings (config/types.ts WebSocketMessageRate). */
export type MessageRateSettings = WebSocketMessageRate;

export class MessageRate {
  readonly settings: MessageRateSettings;
  #tokens: number;
  #last: number;
  /** The timer that resumes a sender held back; null when none is. */
  timer: NodeJS.Timeout | null = null;

  constructor(settings: MessageRateSettings) {
    this.settings = settings;
    this.#tokens = this.#size;
    this.#last = performance.now();
  }

  get #size(): number {
    return Math.max(1, this.settings.burst);
  }

  /** Takes a token for a message if one is there. */
  take(): boolean {
    const now = performance.now();
    this.#tokens = Math.min(this.#size, this.#tokens + ((now - this.#last) * this.settings.rate) / 1000);
    this.#last = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  /** Ms until the next token. */
  waitMs(): number {
    return Math.max(1, Math.ceil(((1 - this.#tokens) * 1000) / this.settings.rate));
  }

  stop(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }
}

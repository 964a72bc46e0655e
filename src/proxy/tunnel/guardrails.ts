/**
 * The WebSocket guardrails of a location (websocket_max_frame_size, websocket_max_message_size,
 * websocket_ping_interval / _timeout, websocket_message_rate), built once when the location's
 * proxy route is compiled (session/proxy-route.ts): every tunnel of the location shares them, in
 * the shapes both engines take (the relay's settings objects, the addon's array of numbers), so a
 * handshake builds none of them.
 */
import type { Settings } from '../../config/types.js';
import type { FrameLimits } from '../../websocket/frame-guard.js';
import type { MessageRateSettings } from './message-rate.js';
import type { PingSettings } from './pinger.js';

const NO_LIMITS: FrameLimits = Object.freeze({ maxFrame: 0, maxMessage: 0 });

export class TunnelGuardrails {
  /** The frame and message size limits; null: neither is set. */
  readonly guards: FrameLimits | null;
  /** The size limits as the refusal lines name them (zeros where none is set). */
  readonly limits: FrameLimits;
  /** null: no pings. */
  readonly pings: PingSettings | null;
  /** null: no message rate. */
  readonly rate: MessageRateSettings | null;
  /**
   * As the addon takes them (native/sluice_tunnel.c `adopt`):
   * [maxFrame, maxMessage, pingInterval, pingTimeout, rate, burst, close, both].
   */
  readonly native: readonly number[];

  constructor(guards: FrameLimits | null, pings: PingSettings | null, rate: MessageRateSettings | null) {
    this.guards = guards;
    this.limits = guards ?? NO_LIMITS;
    this.pings = pings;
    this.rate = rate;
    this.native = Object.freeze([
      this.limits.maxFrame, this.limits.maxMessage, pings?.interval ?? 0, pings?.timeout ?? 0,
      rate?.rate ?? 0, rate?.burst ?? 0, rate?.close === true ? 1 : 0, rate?.both === true ? 1 : 0,
    ]);
  }
}

/** The guardrails `settings` put on a WebSocket tunnel; null where it sets none. */
export function tunnelGuardrailsOf(settings: Settings): TunnelGuardrails | null {
  const guards = settings.websocketMaxFrame === 0 && settings.websocketMaxMessage === 0
    ? null : { maxFrame: settings.websocketMaxFrame, maxMessage: settings.websocketMaxMessage };
  const pings = settings.websocketPingInterval === 0
    ? null : { interval: settings.websocketPingInterval, timeout: settings.websocketPingTimeout };
  const rate = settings.websocketMessageRate;
  return guards === null && pings === null && rate === null ? null : new TunnelGuardrails(guards, pings, rate);
}

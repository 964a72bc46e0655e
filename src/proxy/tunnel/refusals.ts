/**
 * What a tunnel says when a WebSocket guardrail ends it, whichever engine saw it (the TypeScript
 * relay, or the native addon's report): the reason (the metrics' and the access log's), the
 * error-log line and its level, and the close code the offending side gets.
 */
import { CloseCode } from '../../websocket/close-codes.js';
import type { FrameLimits, FrameViolation } from '../../websocket/frame-guard.js';
import type { MessageRateSettings } from './message-rate.js';
import type { PingSettings } from './pinger.js';

export interface Refusal {
  readonly reason: string;
  readonly line: string;
  readonly code: number;
  readonly level: 'info' | 'error';
}

type Side = 'client' | 'upstream';

/**
 * A frame over websocket_max_frame_size or a message over websocket_max_message_size (`size`: the
 * payload the header announced, with the message's earlier fragments); RFC 6455 7.4.1: 1009, "a
 * message that is too big for it to process". As nginx's "client intended to send too large body".
 */
export function sizeRefusal(side: Side, violation: Exclude<FrameViolation, 'rate'>, size: number, limits: FrameLimits): Refusal {
  const directive = violation === 'frame' ? 'websocket_max_frame_size' : 'websocket_max_message_size';
  const limit = violation === 'frame' ? limits.maxFrame : limits.maxMessage;
  return {
    reason: `${side} ${violation} too large`,
    line: `${side} intended to send too large WebSocket ${violation}: ${size} bytes (${directive} ${limit})`,
    code: CloseCode.MESSAGE_TOO_BIG,
    level: 'error',
  };
}

/** websocket_message_rate ... close; RFC 6455 7.4.1: 1008, "a message that violates its policy". */
export function rateRefusal(side: Side, rate: MessageRateSettings): Refusal {
  return {
    reason: `${side} message rate exceeded`,
    line: `limiting WebSocket messages of ${side} by websocket_message_rate ${rate.text}`,
    code: CloseCode.POLICY_VIOLATION,
    level: 'error',
  };
}

/**
 * No answer within websocket_ping_timeout: the other side gets 1001 ("going away": its peer is gone,
 * as when a browser leaves the page; 1011 would blame an error in the server). A silent client is
 * an everyday event (info, as nginx's client time-outs), a silent upstream an error.
 */
export function pingRefusal(side: Side, pings: PingSettings): Refusal {
  return {
    reason: `${side} ping timeout`,
    line: `${side} did not answer a WebSocket ping within ${pings.timeout}ms (websocket_ping_timeout)`,
    code: CloseCode.GOING_AWAY,
    level: side === 'client' ? 'info' : 'error',
  };
}
